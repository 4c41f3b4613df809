"""Drift engine: reference profiles, window summaries and the check, by known answers and against raw samples.

The statistics ``check`` computes from two summaries are compared with the raw-sample registry of
:mod:`include.retraining.monitoring.drift_methods` (and so with scipy / Evidently): exactly where the engine
has the same bins, within a measured bound where it bins (Wasserstein, Kolmogorov-Smirnov).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats

from include.retraining.config import DriftSection
from include.retraining.monitoring import drift
from include.retraining.monitoring import drift_methods as dm

LN = math.log
DEFAULTS = DriftSection()


def profile_and_window(reference: Any, current: Any, **kwargs: Any) -> tuple[dict, dict]:
    """The profile of a one-feature numeric reference ``x`` and the summary of the current sample on it."""
    profile = drift.build_profile(pd.DataFrame({"x": reference}), ["x"], [], **kwargs)
    return profile, drift.summarize(pd.DataFrame({"x": current}), profile)


def feature(result: dict, name: str = "x") -> dict:
    (found,) = [f for f in result["features"] if f["feature"] == name]
    return found


def binned_w(profile: dict, window: dict, col: str = "x") -> float:
    """The engine's normalised Wasserstein distance, unrounded, from the profile and the window summary."""
    return drift.summary_wasserstein(profile["numeric"][col], window["numeric"][col])


def settings(**kwargs: Any) -> DriftSection:
    return DriftSection.model_validate(kwargs)


# --- psi ----------------------------------------------------------------------------------------


def test_psi_known_answer() -> None:
    expected = (0.25 - 0.5) * LN(0.25 / 0.5) + (0.75 - 0.5) * LN(0.75 / 0.5)
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert expected == pytest.approx(0.274653, abs=1e-6)
    three = 2 * (0.5 - 0.2) * LN(0.5 / 0.2)  # the middle bin (0.3 on both sides) adds nothing
    assert drift.psi([5, 3, 2], [2, 3, 5]) == pytest.approx(three)


def test_psi_of_identical_histograms_is_zero_and_uses_proportions() -> None:
    assert drift.psi([3, 7, 10], [3, 7, 10]) == 0.0
    assert drift.psi([3, 7, 10], [30, 70, 100]) == pytest.approx(0.0, abs=1e-15)
    assert drift.psi([25, 75], [50, 50]) == pytest.approx(drift.psi([50, 50], [25, 75]))  # symmetric


def test_psi_floors_empty_bins_at_epsilon() -> None:
    eps = drift.EPSILON
    expected = (0.5 - 1.0) * LN(0.5 / 1.0) + (0.5 - eps) * LN(0.5 / eps)
    assert drift.psi([10, 0], [5, 5]) == pytest.approx(expected)
    assert math.isfinite(drift.psi([10, 0], [0, 10]))


def test_psi_rejects_bad_histograms() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        drift.psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one value on each side"):
        drift.psi([0, 0], [1, 1])
    with pytest.raises(ValueError, match="at least one value on each side"):
        drift.psi([1, 1], [0, 0])


# --- quantile_edges and numeric_histogram --------------------------------------------------------


def test_quantile_edges_known_answer_and_ties() -> None:
    # 1..10, linear interpolation: positions 9*q for q = .25, .5, .75 -> 3.25, 5.5, 7.75
    assert drift.quantile_edges(np.arange(1, 11, dtype=float), 4) == pytest.approx([3.25, 5.5, 7.75])
    values = np.array([np.nan, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.inf, -np.inf])
    assert drift.quantile_edges(values, 4) == pytest.approx([3.25, 5.5, 7.75])  # only finite values
    assert drift.quantile_edges(np.array([1.0, 1, 1, 1, 2]), 4) == [1.0]  # ties merged: fewer bins
    assert drift.quantile_edges(np.array([np.nan, np.nan]), 10) == []


def test_numeric_histogram_bins_are_closed_on_the_right() -> None:
    counts, missing = drift.numeric_histogram(np.array([0.0, 1.0, 1.5, 2.0, 3.0, np.nan]), [1.0, 2.0])
    assert (counts, missing) == ([2, 2, 1], 1)  # (-inf, 1], (1, 2], (2, inf)
    assert drift.numeric_histogram(np.array([-np.inf, np.inf, np.nan]), [0.0]) == ([1, 1], 1)
    assert drift.numeric_histogram(np.array([5.0, 7.0]), []) == ([2], 0)


# --- build_profile -------------------------------------------------------------------------------


def tiny_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "x": [1, 2, 3, 4, 5, 6, 7, np.nan],
        "c": pd.Series([1, "1", "a", "a", None, 2, "a", 1], dtype=object),
    })


def test_build_profile_known_answer() -> None:
    profile = drift.build_profile(tiny_frame(), ["x"], ["c"], bins=2, sample_rows=3, seed=1)
    assert profile["version"] == drift.PROFILE_VERSION == 3
    assert profile["rows"] == 8
    x = profile["numeric"]["x"]
    assert x["edges"] == [4.0]  # median of 1..7
    assert x["counts"] == [4, 3]  # 1, 2, 3, 4 | 5, 6, 7
    assert x["missing"] == 1
    assert x["discrete"] is True  # 7 distinct values <= fine_bins: every value is a fine edge
    below_min = float(np.nextafter(1.0, -np.inf))  # (-inf, below_min] holds exactly the values < min
    assert x["fine_edges"] == [below_min, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert x["fine_counts"] == [0, 1, 1, 1, 1, 1, 1, 1, 0]  # (-inf, 1-], (1-, 1], (1, 2], ..., (6, 7], (7, inf)
    assert x["mean"] == pytest.approx(4.0)
    assert x["std"] == pytest.approx(math.sqrt(28 / 6))  # ddof 1
    assert x["std_pop"] == pytest.approx(2.0)  # ddof 0: variance of 1..7 is 4
    assert (x["min"], x["max"]) == (1.0, 7.0)
    assert x["tail_means"] == [None, None]  # mean of the values < 1 and of those > 7: none in the reference
    assert len(x["sample"]) == 3  # bounded by sample_rows
    assert x["sample"] == sorted(x["sample"]) and len(set(x["sample"])) == 3
    assert set(x["sample"]) <= {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}
    # the integer 1 and the string "1" are one category
    assert profile["categorical"]["c"] == {"counts": {"1": 3, "a": 3, "2": 1}, "missing": 1}
    assert json.loads(json.dumps(profile)) == profile


def test_build_profile_sample_is_all_finite_values_when_fewer_than_sample_rows() -> None:
    frame = pd.DataFrame({"x": [3.0, np.inf, 1.0, np.nan, 2.0]})
    x = drift.build_profile(frame, ["x"], [], sample_rows=100)["numeric"]["x"]
    assert x["sample"] == [1.0, 2.0, 3.0]
    assert drift.build_profile(frame, ["x"], [], sample_rows=0)["numeric"]["x"]["sample"] == []
    big = drift.build_profile(pd.DataFrame({"x": np.random.default_rng(0).normal(size=3000)}), ["x"], [],
                              sample_rows=500)["numeric"]["x"]["sample"]
    assert len(big) == 500 and big == sorted(big)


def test_build_profile_of_a_continuous_feature() -> None:
    values = np.arange(1000, dtype=float)
    x = drift.build_profile(pd.DataFrame({"x": values}), ["x"], [], bins=4, fine_bins=10)["numeric"]["x"]
    assert x["edges"] == pytest.approx([249.75, 499.5, 749.25])
    assert x["discrete"] is False
    assert set(x["edges"]) <= set(x["fine_edges"])  # the coarse bins are unions of fine bins
    assert x["fine_edges"] == sorted(x["fine_edges"])
    deciles = [99.9 * k for k in range(1, 10)]
    tails = list(np.quantile(values, drift.TAIL_QUANTILES))  # 0.999, 4.995, 994.005, 998.001
    outer = [float(np.nextafter(0.0, -np.inf)), 999.0]  # below min, and max: values out of range get bins of their own
    assert x["fine_edges"] == pytest.approx(sorted({*x["edges"], *deciles, *tails, *outer}))
    assert x["fine_edges"][0] == outer[0] and x["fine_edges"][-1] == outer[1]
    assert sum(x["fine_counts"]) == sum(x["counts"]) == 1000
    assert len(x["fine_counts"]) == len(x["fine_edges"]) + 1
    # the open outer bins are empty in the reference; the next ones hold 0.1 % each, and their means are kept
    assert x["fine_counts"][:2] == [0, 1] and x["fine_counts"][-2:] == [1, 0]
    assert x["tail_means"] == [None, None]
    assert x["range_tail_means"] == [0.0, 999.0]
    assert x["std_pop"] == pytest.approx(np.std(values))


def test_build_profile_gives_a_point_mass_its_own_fine_bin() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(2, 1, 5000)
    values[:1500] = 0.0  # 30 % at 0, inside the continuous part's range
    x = drift.build_profile(pd.DataFrame({"x": values}), ["x"], [])["numeric"]["x"]
    below = float(np.max(values[values < 0]))
    edges = x["fine_edges"]
    assert 0.0 in edges and below in edges
    assert edges.index(0.0) == edges.index(below) + 1
    assert x["fine_counts"][edges.index(0.0)] == 1500  # the bin (below, 0] holds exactly the zeros


def test_build_profile_of_an_all_missing_column() -> None:
    x = drift.build_profile(pd.DataFrame({"x": [np.nan, np.nan]}), ["x"], [])["numeric"]["x"]
    assert (x["edges"], x["counts"], x["missing"]) == ([], [0], 2)
    assert (x["mean"], x["std"], x["std_pop"], x["min"], x["max"]) == (None, None, None, None, None)
    assert x["sample"] == [] and x["tail_means"] == [None, None]


def test_summarize_of_the_reference_reproduces_the_profile() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=4000), "k": rng.poisson(4, 4000).astype(float),
                          "c": rng.choice(["a", "b", "c"], 4000)})
    frame.loc[::97, "x"] = np.nan
    profile = drift.build_profile(frame, ["x", "k"], ["c"])
    window = drift.summarize(frame, profile)
    assert window["rows"] == 4000
    for col in ("x", "k"):
        ref, cur = profile["numeric"][col], window["numeric"][col]
        assert cur["counts"] == ref["fine_counts"]
        assert cur["missing"] == ref["missing"]
        assert (cur["mean"], cur["std"], cur["min"], cur["max"]) == (ref["mean"], ref["std"], ref["min"], ref["max"])
        assert cur["tail_means"] == ref["tail_means"]
        assert cur["out_of_range"] == 0
    assert window["categorical"]["c"] == profile["categorical"]["c"]
    assert drift.window_edges(profile) == {col: profile["numeric"][col]["fine_edges"] for col in ("x", "k")}
    assert drift.bounds(profile) == {col: (profile["numeric"][col]["min"], profile["numeric"][col]["max"])
                                     for col in ("x", "k")}


def test_summarize_leaves_out_features_the_frame_lacks() -> None:
    profile = drift.build_profile(tiny_frame(), ["x"], ["c"], bins=2)
    window = drift.summarize(pd.DataFrame({"y": [1.0]}), profile)
    assert window == {"rows": 1, "numeric": {}, "categorical": {}}
    assert drift.check(profile, window, DEFAULTS)["features"] == []


# --- the reference against itself ----------------------------------------------------------------


@pytest.mark.parametrize("rows", [600, 5000])  # p-value tests on small data, distances on large
def test_check_of_the_reference_against_itself_finds_nothing(rows: int) -> None:
    rng = np.random.default_rng(rows)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "k": rng.integers(0, 5, rows).astype(float),
                          "c": rng.choice(["a", "b", "c"], rows)})
    profile = drift.build_profile(frame, ["x", "k"], ["c"])
    result = drift.check(profile, drift.summarize(frame, profile), DEFAULTS)
    assert result["detected"] is False
    assert result["drifted_features"] == []
    assert result["drifted_share"] == 0.0 and result["unweighted_share"] == 0.0
    assert result["max_psi"] == 0.0
    assert (result["reference_rows"], result["current_rows"]) == (rows, rows)
    small = rows <= drift.SMALL_SAMPLE_ROWS
    for f in result["features"]:
        values = f["values"]
        assert f["method"] == (("ks" if small else "wasserstein") if f["kind"] == "numeric"
                               else ("chisquare" if small else "jensenshannon"))
        assert values["psi"] == 0.0 and values["jensenshannon"] == pytest.approx(0.0, abs=1e-8)
        if f["kind"] == "numeric":
            assert values["wasserstein"] == 0.0 and values["ks"] == 1.0 and f["ks_distance"] == 0.0
            assert f["current_mean"] == f["reference_mean"]
        else:
            assert values["chisquare"] == 1.0 and values["linf"] == 0.0
        assert f["drifted"] is False and f["strength"] == pytest.approx(0.0, abs=1e-8)
    assert json.loads(json.dumps(result)) == result  # plain JSON types, stored with the event


# --- statistics from summaries against the raw-sample registry ----------------------------------


def test_categorical_statistics_equal_the_registry() -> None:
    rng = np.random.default_rng(5)
    ref = rng.choice(["a", "b", "c", "d"], 3000, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    cur = rng.choice(["a", "b", "c", "d", "e"], 1500, p=[0.3, 0.3, 0.2, 0.15, 0.05]).astype(object)
    profile = drift.build_profile(pd.DataFrame({"c": ref}), [], ["c"])
    window = drift.summarize(pd.DataFrame({"c": cur}), profile)
    for method in ("chisquare", "jensenshannon", "psi", "linf"):
        result = drift.check(profile, window, settings(categorical_method=method))
        f = feature(result, "c")
        expected = dm.REGISTRY[method].statistic(ref, cur, dm.CATEGORICAL)
        assert f["method"] == method
        assert f["statistic"] == pytest.approx(round(expected, 8), abs=1e-9), method
    assert feature(result, "c")["unseen_categories"] == ["e"]
    # without an unseen category the chi-square p-value is a real number, still equal
    cur2 = rng.choice(["a", "b", "c", "d"], 800, p=[0.38, 0.3, 0.2, 0.12]).astype(object)
    window2 = drift.summarize(pd.DataFrame({"c": cur2}), profile)
    f2 = feature(drift.check(profile, window2, DEFAULTS), "c")
    assert f2["method"] == "chisquare" and 0 < f2["statistic"] < 1
    assert f2["statistic"] == pytest.approx(round(dm.chisquare_p_value(ref, cur2), 8), abs=1e-9)
    # with missing values the engine's PSI has a bin for them; the registry drops them
    cur3 = cur2.copy()
    cur3[:80] = None
    f3 = feature(drift.check(profile, drift.summarize(pd.DataFrame({"c": cur3}), profile),
                             settings(categorical_method="psi")), "c")
    counts = pd.Series(cur3).value_counts()
    r = [profile["categorical"]["c"]["counts"][k] for k in "abcd"] + [0]
    assert f3["statistic"] == pytest.approx(drift.psi(r, [counts.get(k, 0) for k in "abcd"] + [80]), abs=1e-8)
    assert f3["statistic"] > dm.psi_categorical(ref, cur3) + 0.01


def test_numeric_psi_equals_the_registry_on_the_same_decile_bins() -> None:
    rng = np.random.default_rng(6)
    for ref, cur in ((rng.normal(size=4000), rng.normal(0.3, 1.2, 2500)),
                     (rng.lognormal(size=4000), rng.lognormal(0.1, 1, 2500)),
                     (rng.poisson(3, 4000).astype(float), rng.poisson(3.4, 2500).astype(float))):
        profile, window = profile_and_window(ref, cur, bins=10)
        assert set(profile["numeric"]["x"]["edges"]) <= set(profile["numeric"]["x"]["fine_edges"])
        f = feature(drift.check(profile, window, settings(numeric_method="psi")))
        assert f["statistic"] == pytest.approx(round(dm.psi_numeric(ref, cur), 8), abs=1e-9)


def test_numeric_psi_counts_values_beyond_the_reference_range() -> None:
    rng = np.random.default_rng(11)
    ref = rng.normal(size=4000)
    cur = rng.normal(size=2000)
    cur[:100] = 10.0  # 5 % far beyond the reference's maximum
    profile, window = profile_and_window(ref, cur, bins=10)
    x = profile["numeric"]["x"]
    f = feature(drift.check(profile, window, settings(numeric_method="psi")))
    assert f["statistic"] == pytest.approx(round(dm.psi_numeric(ref, cur), 8), abs=1e-9)
    assert f["statistic"] > 0.25  # ~0.05 ln(0.05 / EPSILON) = 0.31 from the bin above the maximum alone
    on_deciles = drift.psi(*(drift.numeric_histogram(v, x["edges"])[0] for v in (ref, cur)))
    assert on_deciles < 0.1  # pooled into the open top decile the same values look like no drift


def test_a_version_2_profile_keeps_psi_and_jensenshannon_on_the_deciles() -> None:
    rng = np.random.default_rng(12)
    ref, cur = rng.normal(size=4000), rng.normal(0.5, 1.3, 2500)
    profile = drift.build_profile(pd.DataFrame({"x": ref}), ["x"], [])
    x = profile["numeric"]["x"]
    # as version 2 stored it: no edges isolating the values outside the reference's range
    c = x["fine_counts"]
    x.update(fine_edges=x["fine_edges"][1:-1], fine_counts=[c[0] + c[1], *c[2:-2], c[-2] + c[-1]])
    x["tail_means"] = drift.tail_means(ref, x["fine_edges"])
    del x["range_tail_means"]
    profile["version"] = 2
    assert drift.distance_edges(x) == x["edges"]
    window = drift.summarize(pd.DataFrame({"x": cur}), profile)
    values = feature(drift.check(profile, window, DEFAULTS))["values"]
    r, k = drift.numeric_histogram(ref, x["edges"])[0], drift.numeric_histogram(cur, x["edges"])[0]
    assert values["psi"] == pytest.approx(round(drift.psi(r, k), 8), abs=1e-9)
    assert values["jensenshannon"] == pytest.approx(round(dm.jensenshannon_from_counts(r, k), 8), abs=1e-9)
    w = window["numeric"]["x"]
    v2_wasserstein = drift.binned_wasserstein(x["fine_edges"], x["fine_counts"], w["counts"], (x["min"], x["max"]),
                                              (w["min"], w["max"]), False, x["tail_means"], w["tail_means"])
    assert values["wasserstein"] == pytest.approx(round(v2_wasserstein / x["std_pop"], 8), abs=1e-9)


def test_numeric_jensenshannon_is_on_the_psi_bins_and_equals_the_registry() -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=4000), rng.normal(0.4, 1, 2500)
    assert cur.max() > ref.max()  # some window values beyond the reference's range
    profile, window = profile_and_window(ref, cur, bins=10)
    x = profile["numeric"]["x"]
    edges = sorted({*x["edges"], float(np.nextafter(x["min"], -np.inf)), x["max"]})  # deciles + out of range
    assert drift.distance_edges(x) == edges
    ref_counts, _ = drift.numeric_histogram(ref, edges)
    cur_counts, _ = drift.numeric_histogram(cur, edges)
    f = feature(drift.check(profile, window, settings(numeric_method="jensenshannon")))
    expected = dm.jensenshannon_from_counts(ref_counts, cur_counts)
    assert f["statistic"] == pytest.approx(round(expected, 8), abs=1e-9)
    # one name, one definition: the registry computes the same from the raw samples
    assert f["statistic"] == pytest.approx(round(dm.REGISTRY["jensenshannon"].statistic(ref, cur, dm.NUMERIC), 8),
                                           abs=1e-9)
    # on the deciles alone (a version-2 profile) the values beyond the maximum joined the top decile
    assert f["statistic"] != pytest.approx(dm.jensenshannon_from_counts(*(drift.numeric_histogram(v, x["edges"])[0]
                                                                          for v in (ref, cur))), abs=1e-4)


# --- binned Wasserstein against the exact distance -----------------------------------------------


def wasserstein_gaps(cases: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float]]:
    """(binned, exact) normalised Wasserstein distance per case; also checks check() reports the binned one."""
    out = []
    for ref, cur in cases:
        profile, window = profile_and_window(ref, cur)
        binned = binned_w(profile, window)
        assert feature(drift.check(profile, window, DEFAULTS))["values"]["wasserstein"] == pytest.approx(
            round(binned, 8), abs=1e-9)
        out.append((binned, dm.wasserstein_normed(ref, cur)))
    return out


SEEDS = range(3)
N_REF, N_CUR = 20_000, 5_000


def test_binned_wasserstein_is_exact_for_discrete_features() -> None:
    """Every distinct reference value is a fine edge: the binned distance is the exact one (to 1e-9)
    when every window value inside the reference's range is one of its values, also when the window
    has values beyond that range (the outer bins' means place them). A window value between two
    reference values counts as the upper one: close, not exact."""
    cases = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        poisson = np.concatenate([rng.poisson(3, N_REF), np.arange(15)]).astype(float)  # no gaps in 0..14
        cases += [(poisson, rng.poisson(lam, N_CUR).astype(float)) for lam in (3, 3.5, 5, 8)]
        uniform = rng.integers(0, 50, N_REF).astype(float)
        cases += [(uniform, rng.integers(lo, hi, N_CUR).astype(float)) for lo, hi in ((0, 50), (0, 40), (5, 60))]
    for ref, cur in cases:
        inside = cur[(cur >= ref.min()) & (cur <= ref.max())]
        assert np.isin(inside, ref).all()
    assert max(cur.max() - ref.max() for ref, cur in cases) > 0  # some windows reach beyond the reference
    for binned, exact in wasserstein_gaps(cases):
        assert binned == pytest.approx(exact, abs=1e-9)
    ref, cur = np.array([0.0, 0.0, 0.0, 2.0] * 250), np.array([0.0, 1.0, 2.0, 2.0] * 300)
    below_zero = float(np.nextafter(0.0, -np.inf))
    assert drift.build_profile(pd.DataFrame({"x": ref}), ["x"], [])["numeric"]["x"]["fine_edges"] == [below_zero, 0.0, 2.0]
    ((binned, exact),) = wasserstein_gaps([(ref, cur)])  # 1 falls in the bin (0, 2]: counted as 2
    std = math.sqrt(0.75)  # reference: 3/4 at 0, 1/4 at 2
    assert exact == pytest.approx((0.5 + 0.25) / std)  # CDFs 3/4 against 1/4 on [0, 1), 1/2 on [1, 2)
    assert binned == pytest.approx(0.5 * 2 / std)  # 3/4 against 1/4 on [0, 2)


def test_binned_wasserstein_of_normal_shifts_and_scales() -> None:
    """N(0, 1) reference (20 000 rows) against N(shift, 1) and N(0, scale) windows (5 000 rows).

    Measured over 20 seeds (seeds 0-19 of this test), shifts 0, 0.1, 0.25, 0.5, 1 sd and scales
    0.5, 0.8, 1.25, 1.5, 2: |binned - exact| <= 0.0044 (shifts) and <= 0.0044 (scales), exact
    distances 0.011-1.03 (profile version 2, whose window tail bins had their means: 0.0040 and
    0.0022). The documented bound: 0.01. Far beyond the reference's range the window's mean in the
    reference's tail bin is estimated (drift._tail_bin_mean): shift 3 sd, 2.1 % (0.064; version 2: 0.003).
    """
    cases = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        ref = rng.normal(0, 1, N_REF)
        cases += [(ref, rng.normal(shift, 1, N_CUR)) for shift in (0, 0.1, 0.25, 0.5, 1.0)]
        cases += [(ref, rng.normal(0, scale, N_CUR)) for scale in (0.5, 0.8, 1.25, 1.5, 2.0)]
    gaps = wasserstein_gaps(cases)
    assert max(abs(b - e) for b, e in gaps) <= 0.01
    # a shift by d is d reference standard deviations
    shift_one = [gaps[10 * i + 4] for i in range(len(SEEDS))]
    assert all(binned == pytest.approx(1.0, abs=0.05) for binned, _ in shift_one)


def test_binned_wasserstein_of_lognormal_features() -> None:
    """LN(0, 1) reference against LN(mu, sigma) windows: a heavy right tail.

    Measured over 20 seeds: relative difference <= 4.8 % (absolute <= 0.0141) for the drifted
    windows (exact distance 0.13-0.41); absolute <= 0.0041 without drift (exact distance 0.01-0.03,
    where the relative difference, up to 22 %, is noise); profile version 2: 3.6 %, 0.0087, 0.0036.
    The documented bound: 5 % relative once drifted, 0.01 absolute.
    """
    drifted, same = [], []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        ref = rng.lognormal(0, 1, N_REF)
        drifted += [(ref, rng.lognormal(mu, sigma, N_CUR)) for mu, sigma in ((0.2, 1), (0.5, 0.8), (0, 1.3), (0, 0.8))]
        same.append((ref, rng.lognormal(0, 1, N_CUR)))
    for binned, exact in wasserstein_gaps(drifted):
        assert exact > 0.1
        assert binned == pytest.approx(exact, rel=0.05)
    for binned, exact in wasserstein_gaps(same):
        assert binned == pytest.approx(exact, abs=0.01)


def test_binned_wasserstein_of_mixtures_with_a_point_mass() -> None:
    """30 % at 0 inside N(2, 1) (the point mass gets its own fine bin) and a zero-inflated lognormal
    (the point mass at the minimum), against windows with another point-mass share or location.

    Measured over 20 seeds: |binned - exact| <= 0.0010 for the interior point mass (0.018 while the
    point mass shared its fine bin with the values just below it, spread over that bin) and <= 0.0082
    for the zero-inflated lognormal (0.0073 with profile version 2). The documented bound: 0.01.
    """

    def mixture(rng: np.random.Generator, n: int, zeros: float, mu: float, lognormal: bool = False) -> np.ndarray:
        values = rng.lognormal(mu, 1, n) if lognormal else rng.normal(mu, 1, n)
        values[rng.random(n) < zeros] = 0.0
        return values

    cases = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        for lognormal in (False, True):
            mu0 = 0.0 if lognormal else 2.0
            ref = mixture(rng, N_REF, 0.3, mu0, lognormal)
            cases += [(ref, mixture(rng, N_CUR, zeros, mu0 + dmu, lognormal))
                      for zeros, dmu in ((0.3, 0), (0.1, 0), (0.5, 0), (0.3, 0.3))]
    for binned, exact in wasserstein_gaps(cases):
        assert binned == pytest.approx(exact, abs=0.01)


def test_binned_wasserstein_known_answers() -> None:
    # two bins on [0, 2] with edge 1: all mass in (0, 1] against all in (1, 2]: uniform halves, distance 1
    assert drift.binned_wasserstein([1.0], [10, 0], [0, 10], (0.0, 2.0), (0.0, 2.0)) == pytest.approx(1.0)
    # discrete points 1 and 2: half the mass moves by 1
    assert drift.binned_wasserstein([1.0, 2.0], [10, 10, 0], [0, 20, 0], (1.0, 2.0), (2.0, 2.0),
                                    discrete=True) == pytest.approx(0.5)
    assert drift.binned_wasserstein([1.0], [5, 5], [5, 5], (0.0, 2.0), (0.0, 2.0)) == 0.0


# --- binned Kolmogorov-Smirnov ---------------------------------------------------------------------


def ks_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    cases = []
    for seed in SEEDS:
        rng = np.random.default_rng(100 + seed)
        ref = rng.normal(size=N_REF)
        cases += [("normal", ref, rng.normal(shift, scale, N_CUR)) for shift, scale in ((0, 1), (0.05, 1), (0.3, 1), (0, 1.3))]
        cases.append(("lognormal", rng.lognormal(size=N_REF), rng.lognormal(0.1, 1.1, N_CUR)))
        cases += [("discrete", rng.poisson(3, N_REF).astype(float), rng.poisson(lam, N_CUR).astype(float))
                  for lam in (3, 3.3)]
        cases.append(("discrete", rng.integers(0, 50, N_REF).astype(float), rng.integers(0, 45, N_CUR).astype(float)))
    return cases


def test_binned_ks_distance_is_a_lower_bound_short_by_at_most_one_fine_bin() -> None:
    """Measured over 20 seeds: exact - binned <= 0.0021 (normal) and <= 0.0025 (lognormal), where the
    largest pooled fine-bin share is 0.011-0.013; exact (to 1e-12) for discrete features."""
    for kind, ref, cur in ks_cases():
        profile, window = profile_and_window(ref, cur)
        fine_ref = np.asarray(profile["numeric"]["x"]["fine_counts"], dtype=float)
        fine_cur = np.asarray(window["numeric"]["x"]["counts"], dtype=float)
        d, p = drift.binned_ks(fine_ref, fine_cur)
        exact = stats.ks_2samp(ref, cur).statistic
        f = feature(drift.check(profile, window, settings(numeric_method="ks")))
        assert f["ks_distance"] == round(d, 6) and f["statistic"] == pytest.approx(drift.display_p(p), rel=1e-6)
        assert d <= exact + 1e-12
        largest_share = float(np.max((fine_ref + fine_cur) / (fine_ref.sum() + fine_cur.sum())))
        assert exact - d <= largest_share
        if kind == "discrete":
            assert d == pytest.approx(exact, abs=1e-12)
        else:
            assert exact - d <= 0.005


def test_binned_ks_known_answer_and_p_value() -> None:
    d, p = drift.binned_ks([50, 50], [25, 75])  # CDFs at the edge: 0.5 against 0.25
    assert d == pytest.approx(0.25)
    assert p == pytest.approx(stats.kstwo.sf(0.25, round(100 * 100 / 200)))
    assert drift.binned_ks([10, 20, 30], [1, 2, 3]) == (0.0, 1.0)
    # the p-value falls as D grows, for the same sample sizes
    ps = [drift.binned_ks([500, 500], [500 - k, 500 + k])[1] for k in range(0, 200, 10)]
    assert ps[0] == 1.0
    assert all(a > b for a, b in zip(ps, ps[1:], strict=False))
    # for large samples, the asymptotic p-value as scipy's ks_2samp computes it (its limiting
    # distribution above 10 000 effective rows, within 0.005; see the speed-path test below)
    rng = np.random.default_rng(0)
    ref, cur = rng.integers(0, 20, 30_000).astype(float), rng.integers(0, 20, 20_000).astype(float)
    profile, window = profile_and_window(ref, cur)
    d, p = drift.binned_ks(profile["numeric"]["x"]["fine_counts"], window["numeric"]["x"]["counts"])
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert d == pytest.approx(exact.statistic, abs=1e-12)
    assert p == pytest.approx(exact.pvalue, abs=0.005)


# --- which method for which feature ----------------------------------------------------------------


def test_default_method_by_the_smaller_side() -> None:
    assert drift.default_method("numeric", 1000, 50_000) == "ks"
    assert drift.default_method("numeric", 50_000, 1000) == "ks"  # the window matters as much
    assert drift.default_method("numeric", 1001, 1001) == "wasserstein"
    assert drift.default_method("categorical", 200, 5000) == "chisquare"
    assert drift.default_method("categorical", 5000, 1001) == "jensenshannon"


def test_column_method_rules_and_thresholds() -> None:
    s = settings(columns={"x": {"method": "psi", "threshold": 0.3}, "y": {"threshold": 0.01}, "z": {"method": "auto"}},
                 thresholds={"wasserstein": 0.2, "chisquare": 0.01}, fdr_q=0.1)
    assert drift.column_method(s, "x", "numeric", 50, 50) == ("psi", 0.3)  # the column's own rule
    assert drift.column_method(s, "y", "numeric", 5000, 5000) == ("wasserstein", 0.01)  # own threshold
    assert drift.column_method(s, "z", "numeric", 5000, 5000) == ("wasserstein", 0.2)  # per-method threshold
    assert drift.column_method(s, "z", "numeric", 500, 5000) == ("ks", 0.1)  # p-values: fdr_q
    assert drift.column_method(s, "c", "categorical", 500, 500) == ("chisquare", 0.01)
    assert drift.column_method(s, "c", "categorical", 5000, 5000) == ("jensenshannon", 0.1)  # default
    assert drift.column_method(DEFAULTS, "c", "categorical", 5, 5) == ("chisquare", DEFAULTS.fdr_q)
    fixed = settings(numeric_method="psi", categorical_method="linf")
    assert drift.column_method(fixed, "x", "numeric", 50, 50) == ("psi", 0.1)
    assert drift.column_method(fixed, "c", "categorical", 50_000, 50_000) == ("linf", 0.1)


def test_a_column_method_of_the_wrong_kind_names_the_feature() -> None:
    s = settings(columns={"loan_purpose": {"method": "ks"}})
    with pytest.raises(ValueError, match="'loan_purpose'"):
        drift.column_method(s, "loan_purpose", "categorical", 5000, 5000)
    frame = pd.DataFrame({"loan_purpose": ["a", "b"] * 50})
    profile = drift.build_profile(frame, [], ["loan_purpose"])
    with pytest.raises(ValueError, match="'ks' for 'loan_purpose'"):
        drift.check(profile, drift.summarize(frame, profile), s)


@pytest.mark.parametrize("section", [
    {"numeric_method": "kolmogorov"},
    {"categorical_method": "chi2"},
    {"thresholds": {"wasserstien": 0.1}},
    {"columns": {"x": {"method": "emd"}}},
])
def test_unknown_method_names_are_rejected(section: dict) -> None:
    with pytest.raises(ValidationError, match="valid methods: chisquare, jensenshannon, ks, linf, psi, wasserstein"):
        DriftSection.model_validate(section)


def test_get_method_and_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown drift method 'kolmogorov'; valid methods: chisquare, "):
        dm.get_method("kolmogorov")
    assert dm.get_method("ks") is dm.REGISTRY["ks"]
    with pytest.raises(ValidationError, match="does not accept numeric"):
        DriftSection(numeric_method="chisquare")
    with pytest.raises(ValidationError, match="does not accept categorical"):
        DriftSection(categorical_method="wasserstein")


# --- Benjamini-Hochberg across features -------------------------------------------------------------


COLS20 = [f"x{i:02d}" for i in range(20)]


def small_windows(seed: int, shift: float = 0.0, shifted: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(rng.normal(size=(2000, 20)), columns=COLS20)
    cur = pd.DataFrame(rng.normal(size=(500, 20)), columns=COLS20)
    cur[COLS20[:shifted]] += shift
    profile = drift.build_profile(ref, COLS20, [], sample_rows=0)
    return profile, drift.summarize(cur, profile)


def test_p_values_are_adjusted_together_and_decide() -> None:
    profile, window = small_windows(11, shift=0.4, shifted=4)
    result = drift.check(profile, window, DEFAULTS)
    features = result["features"]
    assert all(f["method"] == "ks" and f["kind_of_statistic"] == "p_value" for f in features)
    adjusted = dm.adjusted_p_values([f["statistic"] for f in features])
    for f, p_adj in zip(features, adjusted, strict=True):
        assert f["p_adjusted"] == pytest.approx(drift.display_p(p_adj), rel=1e-3, abs=1e-12)
        assert f["p_adjusted"] >= f["statistic"]
        assert f["threshold"] == DEFAULTS.fdr_q
        assert f["drifted"] is (f["p_adjusted"] < f["threshold"])
    assert set(result["drifted_features"]) == set(COLS20[:4])
    # 4 of 20 features carry 0.2 < 0.25 of the importance, but they moved far: the score counts how far
    assert result["drifted_share"] == 0.2
    strong = sum(min(f["strength"], 4.0) * f["importance"] for f in features if f["drifted"])
    assert result["drift_score"] == pytest.approx(strong, abs=1e-3) and result["detected"] is (strong >= 0.25)
    # the same verdicts as the BH step-up procedure (adjusted p < q versus p_(k) <= k q / m: no ties here)
    assert [f["drifted"] for f in features] == dm.benjamini_hochberg([f["statistic"] for f in features], 0.05)


def test_benjamini_hochberg_keeps_false_alarms_near_q() -> None:
    """20 features, no drift, 2 000 against 500 rows (KS), 30 windows: "any raw p < 0.05" fires in
    most windows (engine p-values 16/30, scipy's exact ones 23/30; 1 - 0.95^20 = 64 %), the BH rule
    at q = 0.05 in 2/30 (over 100 more seeds: 60 %, 68 % and 2 %)."""
    raw_any = scipy_any = bh_any = 0
    for seed in range(30):
        profile, window = small_windows(seed)
        result = drift.check(profile, window, DEFAULTS)
        raw_any += min(f["statistic"] for f in result["features"]) < 0.05
        bh_any += bool(result["drifted_features"])
        assert result["detected"] is False
        rng = np.random.default_rng(seed)
        ref, cur = rng.normal(size=(2000, 20)), rng.normal(size=(500, 20))
        scipy_any += min(stats.ks_2samp(ref[:, i], cur[:, i]).pvalue for i in range(20)) < 0.05
    assert raw_any >= 12 and scipy_any >= 16
    assert bh_any <= 3


def test_fdr_q_of_one_does_not_break_the_strength() -> None:
    profile, window = small_windows(1, shift=0.5, shifted=1)
    result = drift.check(profile, window, settings(fdr_q=1.0))
    assert all(math.isfinite(f["strength"]) for f in result["features"])
    assert result["drifted_features"][0] == "x00"


# --- importance-weighted verdict -----------------------------------------------------------------------


COLS5 = ["a", "b", "c", "d", "e"]


def five_features(shifts: dict[str, float], seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(rng.normal(size=(5000, 5)), columns=COLS5)
    cur = pd.DataFrame(rng.normal(size=(3000, 5)), columns=COLS5)
    for col, shift in shifts.items():
        cur[col] += shift
    profile = drift.build_profile(ref, COLS5, [], sample_rows=0)
    return profile, drift.summarize(cur, profile)


def test_an_important_drifted_feature_decides_an_unimportant_one_does_not() -> None:
    profile, window = five_features({"a": 0.8})
    heavy = drift.check(profile, window, DEFAULTS, importance={"a": 0.6, "b": 0.1, "c": 0.1, "d": 0.1, "e": 0.1})
    assert heavy["drifted_features"] == ["a"]
    assert heavy["drifted_share"] == pytest.approx(0.6) and heavy["share_threshold"] == 0.25
    assert heavy["detected"] is True and heavy["importance_weighted"] is True
    assert heavy["unweighted_share"] == 0.2
    assert feature(heavy, "a")["importance"] == pytest.approx(0.6)

    light = drift.check(profile, window, DEFAULTS, importance={"a": 0.02, "b": 0.245, "c": 0.245, "d": 0.245, "e": 0.245})
    assert light["drifted_features"] == ["a"]
    assert light["drifted_share"] == pytest.approx(0.02) and light["detected"] is False

    plain = drift.check(profile, window, settings(importance_weighted=False), importance={"a": 0.02, "b": 0.98})
    assert plain["drifted_share"] == 0.2 and plain["importance_weighted"] is False
    assert all(f["importance"] == 0.2 for f in plain["features"])

    unknown = drift.check(profile, window, DEFAULTS, importance=None)
    assert unknown["drifted_share"] == 0.2 and unknown["importance_weighted"] is False
    assert all(f["importance"] == 0.2 for f in unknown["features"])
    assert drift.check(profile, window, settings(drifted_share=0.2))["detected"] is True  # 0.2 >= 0.2


def test_importances_are_normalised_over_the_tested_features() -> None:
    profile, window = five_features({"a": 0.8})
    result = drift.check(profile, window, DEFAULTS, importance={"a": 3.0, "b": 1.0, "zz": 100.0})
    assert {f["feature"]: f["importance"] for f in result["features"]} == {"a": 0.75, "b": 0.25, "c": 0.0,
                                                                           "d": 0.0, "e": 0.0}
    assert result["drifted_share"] == 0.75
    zeros = drift.check(profile, window, DEFAULTS, importance=dict.fromkeys(COLS5, 0.0))
    assert zeros["drifted_share"] == 0.2  # all zero: equal weights


def test_drifted_features_are_ordered_by_importance_times_strength() -> None:
    profile, window = five_features({"a": 1.0, "b": 0.5})
    equal = drift.check(profile, window, DEFAULTS)
    a, b = feature(equal, "a"), feature(equal, "b")
    assert a["strength"] > b["strength"] > 1  # distance / threshold
    assert a["strength"] == pytest.approx(a["statistic"] / a["threshold"], abs=1e-4)
    assert equal["drifted_features"] == ["a", "b"]
    weighted = drift.check(profile, window, DEFAULTS, importance={"a": 0.1, "b": 0.5, "c": 0.4})
    assert weighted["drifted_features"] == ["b", "a"]
    assert weighted["drifted_share"] == pytest.approx(0.6)


# --- the rule that matters: large windows ----------------------------------------------------------------


def test_large_windows_without_meaningful_drift_do_not_alarm_but_real_drift_does() -> None:
    """200 000 rows per side: a 0.02 sd shift is real but immaterial. Every raw KS test flags it
    (p ~ 1e-6 or less), so the old rule "any feature with KS p < 0.05" alarms; the check does not
    (Wasserstein ~0.02 < 0.1). A 0.5 sd shift in the two most important features is detected."""
    rng = np.random.default_rng(0)
    n, cols = 200_000, [f"f{i}" for i in range(6)]
    ref = pd.DataFrame(rng.normal(size=(n, 6)), columns=cols)
    cur = pd.DataFrame(rng.normal(size=(n, 6)), columns=cols)
    cur[cols[:3]] += 0.02
    old_rule = [stats.ks_2samp(ref[c], cur[c]).pvalue < 0.05 for c in cols]
    assert any(old_rule) and all(old_rule[:3])
    profile = drift.build_profile(ref, cols, [])
    importance = dict(zip(cols, [0.3, 0.3, 0.1, 0.1, 0.1, 0.1], strict=True))
    quiet = drift.check(profile, drift.summarize(cur, profile), DEFAULTS, importance)
    assert quiet["detected"] is False and quiet["drifted_features"] == []
    assert all(f["method"] == "wasserstein" and f["statistic"] < 0.05 for f in quiet["features"])
    cur[cols[:2]] += 0.5
    loud = drift.check(profile, drift.summarize(cur, profile), DEFAULTS, importance)
    assert loud["detected"] is True and loud["drifted_features"] in (["f0", "f1"], ["f1", "f0"])
    assert loud["drifted_share"] == pytest.approx(0.6)
    assert all(feature(loud, c)["statistic"] == pytest.approx(0.52, abs=0.02) for c in cols[:2])


# --- missing values, out-of-range values, unseen categories ------------------------------------------------


def eight() -> dict:
    return drift.build_profile(pd.DataFrame({"x": [1, 2, 3, 4, 5, 6, 7, 8], "c": list("aaaabbcc")}),
                               ["x"], ["c"], bins=2)


def test_a_feature_all_missing_in_the_window_is_not_tested() -> None:
    profile = eight()
    window = drift.summarize(pd.DataFrame({"x": [np.nan] * 5, "c": [None] * 5}), profile)
    result = drift.check(profile, window, DEFAULTS)
    for f in result["features"]:
        assert f["statistic"] is None and f["p_adjusted"] is None and f["drifted"] is False
        assert f["note"] == "no values to compare" and f["values"] == {} and f["histogram"] is None
        assert f["missing_current"] == 1.0 and f["missing_reference"] == 0.0
    assert result["detected"] is False and result["max_psi"] == 0.0


def test_psi_adds_a_missing_bin_when_either_side_has_missing_values() -> None:
    profile = eight()
    assert profile["numeric"]["x"]["edges"] == [4.5]
    window = drift.summarize(pd.DataFrame({"x": [1.0, 2.0, np.nan, np.nan], "c": ["a", "a", "b", None]}), profile)
    result = drift.check(profile, window, settings(numeric_method="psi", categorical_method="psi"))
    eps = drift.EPSILON
    # x: reference [4, 4, missing 0] -> [.5, .5, EPS]; current [2, 0, missing 2] -> [.5, EPS, .5]
    expected = (eps - 0.5) * LN(eps / 0.5) + (0.5 - eps) * LN(0.5 / eps)
    assert feature(result, "x")["statistic"] == pytest.approx(expected, abs=1e-6)
    assert feature(result, "x")["statistic"] == pytest.approx(drift.psi([4, 4, 0], [2, 0, 2]), abs=1e-8)
    assert feature(result, "x")["missing_current"] == 0.5
    # missing values in the reference only: the bin is there too (the window's share 0)
    with_missing = drift.build_profile(tiny_frame(), ["x"], [], bins=2)  # [4, 3], 1 missing
    window = drift.summarize(pd.DataFrame({"x": [1.0, 2.0, 5.0, 6.0]}), with_missing)
    psi_x = feature(drift.check(with_missing, window, settings(numeric_method="psi")))["statistic"]
    assert psi_x == pytest.approx(drift.psi([4, 3, 1], [2, 2, 0]), abs=1e-8)
    assert psi_x != pytest.approx(drift.psi([4, 3], [2, 2]), abs=1e-3)
    # c: a, b, c, missing: [.5, .25, .25, 0] against [.5, .25, 0, .25]
    assert feature(result, "c")["statistic"] == pytest.approx(drift.psi([4, 2, 2, 0], [2, 1, 0, 1]), abs=1e-8)
    # no missing values on either side: no missing bin
    window = drift.summarize(pd.DataFrame({"x": [1.0, 2.0, 3.0, 9.0], "c": list("aabc")}), profile)
    result = drift.check(profile, window, settings(numeric_method="psi"))
    # bins < 1, [1, 4.5], (4.5, 8], > 8: the 9 lies beyond the reference's maximum, in a bin of its own
    assert feature(result, "x")["statistic"] == pytest.approx(drift.psi([0, 4, 4, 0], [0, 3, 0, 1]), abs=1e-8)
    assert feature(result, "x")["current_mean"] == pytest.approx(3.75)


def test_out_of_range_counts_values_outside_the_reference_range() -> None:
    values = np.array([0.0, 1.0, 5.0, 10.0, 11.0, np.inf, -np.inf, np.nan])
    assert drift.out_of_range(values, 1.0, 10.0) == 4  # 0, 11, +inf, -inf; NaN is not a value
    assert drift.out_of_range(values, None, None) is None
    profile = eight()
    window = drift.summarize(pd.DataFrame({"x": values, "c": ["a"] * 8}), profile)
    x = window["numeric"]["x"]
    assert x["out_of_range"] == 5  # 0, 10, 11, +inf, -inf against the reference's [1, 8]
    assert drift.bounds(profile) == {"x": (1.0, 8.0)}


def test_unseen_categories_are_listed_and_in_the_histogram() -> None:
    profile = eight()
    window = drift.summarize(pd.DataFrame({"x": [1.0] * 7, "c": ["a", "e", "d", "d", "a", "d", "e"]}), profile)
    f = feature(drift.check(profile, window, DEFAULTS), "c")
    assert f["unseen_categories"] == ["d", "e"]  # most frequent first
    # a category the reference never had: Pearson's statistic is infinite (the registry's p = 0, as Evidently);
    # the check counts half a row of each category more in the reference, so the p-value stays finite
    assert f["method"] == "chisquare" and 0 < f["statistic"] < 1e-3 and f["log10_p"] < -3
    assert f["drifted"] is True
    hist = dict(zip(f["histogram"]["bins"], zip(f["histogram"]["reference"], f["histogram"]["current"],
                                                strict=True), strict=True))
    assert hist["d"] == (0.0, round(3 / 7, 6)) and hist["e"] == (0.0, round(2 / 7, 6))
    assert hist["a"] == (0.5, round(2 / 7, 6))
    many = drift.summarize(pd.DataFrame({"x": [1.0] * 15, "c": [f"n{i:02d}" for i in range(15)]}), profile)
    assert feature(drift.check(profile, many, DEFAULTS), "c")["unseen_categories"] == [f"n{i:02d}" for i in range(10)]


# --- histograms in the result ----------------------------------------------------------------------------


def test_numeric_histogram_labels_and_shares() -> None:
    rng = np.random.default_rng(8)
    profile, window = profile_and_window(rng.normal(size=3000), rng.normal(0.5, 1, 2000))
    f = feature(drift.check(profile, window, DEFAULTS))
    edges = profile["numeric"]["x"]["edges"]
    bins = f["histogram"]["bins"]
    assert len(bins) == len(edges) + 1 == 10
    assert bins[0] == f"<= {edges[0]:.4g}" and bins[-1] == f"> {edges[-1]:.4g}"
    assert bins[1] == f"({edges[0]:.4g}, {edges[1]:.4g}]"
    assert sum(f["histogram"]["reference"]) == pytest.approx(1.0, abs=1e-5)
    assert sum(f["histogram"]["current"]) == pytest.approx(1.0, abs=1e-5)
    assert f["histogram"]["reference"] == pytest.approx([0.1] * 10, abs=1e-3)  # deciles
    assert f["histogram"]["current"][-1] > 0.2  # the shift moves mass up
    two = drift.check(eight(), drift.summarize(pd.DataFrame({"x": [1.0, 9.0]}), eight()), DEFAULTS)
    assert feature(two)["histogram"] == {"bins": ["<= 4.5", "> 4.5"], "reference": [0.5, 0.5], "current": [0.5, 0.5]}


def test_categorical_histogram_caps_the_number_of_bins() -> None:
    cap = drift.MAX_CATEGORY_BINS
    categories = [f"k{i:02d}" for i in range(cap + 10)]
    ref = pd.DataFrame({"c": [k for i, k in enumerate(categories) for _ in range(100 - i)]})
    profile = drift.build_profile(ref, [], ["c"])
    window = drift.summarize(ref, profile)
    f = feature(drift.check(profile, window, DEFAULTS), "c")
    bins = f["histogram"]["bins"]
    assert len(bins) == cap + 1 and bins[-1] == "other (10)"
    assert bins[0] == "k00"  # largest share first
    assert sum(f["histogram"]["reference"]) == pytest.approx(1.0, abs=1e-5)
    assert sum(f["histogram"]["current"]) == pytest.approx(1.0, abs=1e-5)
    other = sum(100 - i for i in range(cap, cap + 10)) / sum(100 - i for i in range(cap + 10))
    assert f["histogram"]["reference"][-1] == pytest.approx(other, abs=1e-6)


# --- a version-1 profile -------------------------------------------------------------------------------------


def test_a_version_1_profile_still_checks() -> None:
    old = {
        "version": 1,
        "rows": 8,
        "numeric": {"x": {"edges": [4.5], "counts": [4, 4], "missing": 0, "mean": 4.5,
                          "std": float(np.std(np.arange(1, 9), ddof=1)), "min": 1.0, "max": 8.0}},
        "categorical": {"c": {"counts": {"a": 4, "b": 4}, "missing": 0}},
    }
    assert drift.window_edges(old) == {"x": [4.5]}  # fine edges fall back to edges
    window = drift.summarize(pd.DataFrame({"x": [1.0, 2.0, 3.0, 9.0], "c": list("aaab")}), old)
    assert window["numeric"]["x"]["counts"] == [3, 1]
    assert window["numeric"]["x"]["out_of_range"] == 1
    result = drift.check(old, window, DEFAULTS)
    x = feature(result, "x")
    assert x["method"] == "ks"
    assert x["values"]["psi"] == pytest.approx(drift.psi([4, 4], [3, 1]), abs=1e-8)
    assert x["ks_distance"] == pytest.approx(0.25)
    assert x["values"]["wasserstein"] > 0
    assert x["histogram"]["bins"] == ["<= 4.5", "> 4.5"]
    assert feature(result, "c")["values"]["psi"] == pytest.approx(drift.psi([4, 4], [3, 1]), abs=1e-8)
    assert math.isfinite(x["strength"])


# --- speed paths: the grid binning and the limiting KS distribution give the same answers ---------


def test_bin_index_is_exactly_the_binary_search() -> None:
    rng = np.random.default_rng(11)
    for trial in range(20):
        values = np.concatenate([
            rng.normal(0, 1, 30_000), rng.lognormal(0, 2, 10_000), rng.integers(-3, 4, 5_000).astype(float),
            [np.inf, -np.inf],
        ])
        finite = values[np.isfinite(values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, 20 + 5 * trial)[1:-1]))
        probes = np.concatenate([values, edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
        assert np.array_equal(drift.bin_index(probes, edges), np.searchsorted(edges, probes, side="left"))


def test_binned_ks_p_value_matches_scipy_for_large_samples() -> None:
    """Above 10 000 effective rows the limiting distribution replaces kstwo: within 0.005 of ks_2samp's p."""
    from scipy import stats

    rng = np.random.default_rng(12)
    for shift in (0.0, 0.01, 0.02, 0.03):
        ref = rng.integers(0, 50, 40_000).astype(float)  # discrete: the binned D is the exact D
        cur = np.round(rng.normal(25 + shift * 14, 14, 30_000)).clip(0, 49)
        ref_counts, _ = drift.numeric_histogram(ref, np.arange(50.0))
        cur_counts, _ = drift.numeric_histogram(cur, np.arange(50.0))
        d, p = drift.binned_ks(ref_counts, cur_counts)
        exact = stats.ks_2samp(ref, cur, method="asymp")
        assert d == pytest.approx(exact.statistic, abs=1e-12)
        assert p == pytest.approx(exact.pvalue, abs=0.005)


# --- every scale: log-scale p-values, unverifiable features ----------------------------------------


def test_high_cardinality_categoricals_with_many_unseen_categories_are_judged_on_the_log_scale() -> None:
    """Thousands of categories, most of the window's never seen: a p-value far below 1e-300, finite on the
    log scale, and a check that never fails."""
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"id": rng.integers(0, 3000, 5000).astype(str), "x": rng.normal(size=5000)})
    cur = pd.DataFrame({"id": np.concatenate([rng.integers(0, 3000, 300), rng.integers(3000, 6000, 600)]).astype(str),
                        "x": rng.normal(size=900)})
    profile = drift.build_profile(ref, ["x"], ["id"])
    result = drift.check(profile, drift.summarize(cur, profile), DEFAULTS)
    f = feature(result, "id")
    assert f["method"] == "chisquare" and len(f["unseen_categories"]) == 10
    assert f["log10_p"] < -300 and math.isfinite(f["log10_p_adjusted"]) and f["drifted"] is True
    assert f["strength"] > 100 and result["detected"] is True and result["unverifiable_features"] == []
    assert feature(result, "x")["drifted"] is False


def test_numeric_p_values_far_below_1e300_keep_their_order() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
    cur = pd.DataFrame({"a": rng.normal(8, 1, 1000), "b": rng.normal(4, 1, 1000)})
    profile = drift.build_profile(ref, ["a", "b"], [])
    result = drift.check(profile, drift.summarize(cur, profile), settings(numeric_method="ks"))
    a, b = feature(result, "a"), feature(result, "b")
    assert a["log10_p_adjusted"] < -300 and b["log10_p_adjusted"] < -150  # D = 1 and ~0.98 on 500 effective rows
    assert a["log10_p_adjusted"] <= b["log10_p_adjusted"] and a["drifted"] and b["drifted"]
    assert a["p_adjusted"] == 0.0 and a["strength"] > 100  # the display copy underflows; the decision did not


def test_constant_and_broken_features_are_unverifiable_and_the_check_goes_on() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"flat": np.full(2000, 3.0), "x": rng.normal(size=2000), "c": rng.choice(list("ab"), 2000)})
    cur = pd.DataFrame({"flat": np.full(1500, 3.0), "x": rng.normal(1, 1, 1500), "c": rng.choice(list("ab"), 1500)})
    profile = drift.build_profile(ref, ["flat", "x"], ["c"])
    window = drift.summarize(cur, profile)
    result = drift.check(profile, window, DEFAULTS)  # Wasserstein above 1000 rows: no scale for a constant
    flat = feature(result, "flat")
    assert flat["unverifiable"] is True and "constant" in flat["note"] and flat["drifted"] is False
    assert result["unverifiable_features"] == ["flat"] and result["drifted_features"] == ["x"]
    # KS has no scale to lose: the constant column is judged (and quiet)
    assert "unverifiable" not in feature(drift.check(profile, window, settings(numeric_method="ks")), "flat")
    # a summary the statistic cannot read (one bin short): unverifiable with the error, never a failed run
    broken = {**window, "numeric": {**window["numeric"], "x": {**window["numeric"]["x"],
                                                                "counts": window["numeric"]["x"]["counts"][:-1]}}}
    x = feature(drift.check(profile, broken, DEFAULTS), "x")
    assert x["unverifiable"] is True and "could not be computed" in x["note"]


def _calibrated_profile(scores: list[float], old_format: bool) -> tuple[dict, dict]:
    """One KS feature whose window p-value is ~1e-12, with a calibrated limit given as -log10 scores."""
    rng = np.random.default_rng(3)
    profile, window = profile_and_window(rng.normal(size=800), rng.normal(0.36, 1, 800))
    windows = [{"start": "", "end": "", "rows": 800}] * len(scores)
    if old_format:  # as profiles stored before calibration version 2: per-window scores, capped at 300
        profile["calibration"] = {"windows": windows, "features": {"x": {"ks": scores}}}
    else:
        profile["calibration"] = {"version": 2, "windows": windows, "features": {"x": {"ks": scores}},
                                  "limits": {"x": {"ks": {"sampling": [float(np.mean(scores)), 0.0],
                                                          "between": [0.0, 0.0], "points": 0,
                                                          "status": "calibrated"}}}}
    return profile, window


@pytest.mark.parametrize("old_format", [True, False])
def test_a_p_value_of_1e_12_is_not_drifted_against_a_limit_of_1e_17(old_format: bool) -> None:
    """The issue's rounding bug: rounded to 8 decimals, p = 1e-12 became 0 < 1e-17 and counted as drift."""
    profile, window = _calibrated_profile([17.0] * 6, old_format)
    f = feature(drift.check(profile, window, settings(numeric_method="ks")))
    assert -14 < f["log10_p_adjusted"] < -9, f["log10_p_adjusted"]
    assert f["threshold_source"] == "calibrated" and f["log10_threshold"] == pytest.approx(-17)
    assert f["threshold"] == pytest.approx(1e-17) and f["drifted"] is False and f["strength"] < 1
    assert drift._log_verdict(-12.0, -17.0)[0] is False and drift._verdict("p_value", 1e-12, 1e-17)[0] is False
    assert drift._verdict("p_value", 0.0, 0.0)[0] is False  # an underflowed limit and p: no log of 0


def test_an_old_profile_with_scores_at_the_cap_is_judged_without_a_math_domain_error() -> None:
    """The issue's second stream: -log10 p capped at 300 in 5 of 6 calibration windows; the limit 10^-617
    underflowed to 0.0 and log10(0) raised in every check. On the log scale it is a limit like any other."""
    profile, window = _calibrated_profile([300.0, 300.0, 120.0, 300.0, 300.0, 300.0], old_format=True)
    result = drift.check(profile, window, settings(numeric_method="ks"))
    f = feature(result)
    assert f["log10_threshold"] < -400 and f["threshold"] == 0.0  # the display copy underflows, harmlessly
    assert f["drifted"] is False and result["detected"] is False
    assert result["calibration"]["status"] == "calibrated" and drift.calibration_note(result) is None
