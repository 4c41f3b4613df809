"""Drift methods: each statistic on hand-built samples with known answers, the registry, defaults, BH and shares."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from include.retraining.monitoring import drift
from include.retraining.monitoring import drift_methods as dm
from include.retraining.monitoring.drift_methods import (
    CATEGORICAL,
    EPSILON,
    NUMERIC,
    REGISTRY,
    DriftMethod,
    benjamini_hochberg,
    binned_counts,
    category_counts,
    chisquare_p_value,
    distance_edges,
    get_method,
    jensenshannon_distance,
    jensenshannon_from_counts,
    ks_p_value,
    linf_distance,
    method_for,
    population_stability_index,
    psi,
    psi_categorical,
    psi_numeric,
    wasserstein_normed,
    weighted_drift_share,
)

LN = math.log


def cats(**counts: int) -> np.ndarray:
    """A categorical sample with the given count of each category."""
    return np.array([k for k, n in counts.items() for _ in range(n)], dtype=object)


def chi2_sf_1df(x: float) -> float:
    """Survival function of chi-square with one degree of freedom, by hand: erfc(sqrt(x / 2))."""
    return math.erfc(math.sqrt(x / 2))


# --- ks -----------------------------------------------------------------------------------------


def test_ks_identical_samples_p_value_one() -> None:
    x = np.random.default_rng(0).normal(size=300)
    assert ks_p_value(x, x.copy()) == pytest.approx(1.0)


def test_ks_disjoint_small_samples_exact_p_value() -> None:
    # D = 1; exactly 2 of the C(6, 3) = 20 orderings are as extreme (all of one sample first).
    assert ks_p_value(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])) == pytest.approx(2 / 20)


def test_ks_detects_a_shift_and_drops_missing_values() -> None:
    rng = np.random.default_rng(1)
    ref = np.r_[rng.normal(size=1000), np.nan, np.inf]
    assert ks_p_value(ref, rng.normal(0.5, 1, 1000)) < 1e-10
    assert ks_p_value(ref, rng.normal(0.0, 1, 1000)) > 0.01


def test_empty_sample_after_dropping_missing_is_an_error() -> None:
    with pytest.raises(ValueError, match="current sample has no finite values"):
        ks_p_value(np.array([1.0, 2.0]), np.array([np.nan, np.nan]))
    with pytest.raises(ValueError, match="reference sample has no non-missing values"):
        linf_distance(np.array([None, np.nan], dtype=object), cats(a=2))


# --- wasserstein --------------------------------------------------------------------------------


def test_wasserstein_identical_is_zero_and_shift_is_shift_over_std() -> None:
    ref = np.array([0.0, 1.0, 2.0, 3.0])  # population std sqrt(1.25)
    assert wasserstein_normed(ref, ref.copy()) == 0.0
    assert wasserstein_normed(ref, ref + 0.5) == pytest.approx(0.5 / math.sqrt(1.25))


def test_wasserstein_shifted_normal_is_about_shift_over_std() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(10, 2, 20_000)
    assert wasserstein_normed(ref, rng.normal(11, 2, 20_000)) == pytest.approx(0.5, abs=0.03)


def test_wasserstein_constant_reference_uses_the_std_floor() -> None:
    assert wasserstein_normed(np.full(10, 3.0), np.full(10, 3.002)) == pytest.approx(2.0)


# --- psi ----------------------------------------------------------------------------------------


def test_population_stability_index_known_answer_and_errors() -> None:
    expected = (0.25 - 0.5) * LN(0.25 / 0.5) + (0.75 - 0.5) * LN(0.75 / 0.5)
    assert population_stability_index([50, 50], [25, 75]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="differ in length"):
        population_stability_index([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one value"):
        population_stability_index([0, 0], [1, 1])


def test_psi_categorical_known_answer() -> None:
    expected = (0.25 - 0.5) * LN(0.25 / 0.5) + (0.75 - 0.5) * LN(0.75 / 0.5)
    assert psi_categorical(cats(a=50, b=50), cats(a=25, b=75)) == pytest.approx(expected)
    assert psi(cats(a=50, b=50), cats(a=25, b=75)) == pytest.approx(expected)  # dispatch on dtype


def test_psi_numeric_identical_is_zero() -> None:
    x = np.random.default_rng(3).normal(size=500)
    assert psi_numeric(x, x.copy()) == 0.0


def test_psi_numeric_everything_in_the_first_decile_bin() -> None:
    ref = np.arange(1.0, 101.0)  # deciles: 10 bins of 10 values
    cur = np.full(40, 5.0)  # all in [1, e1]; the two out-of-range bins are empty on both sides (term 0)
    expected = (1 - 0.1) * LN(1 / 0.1) + 9 * (EPSILON - 0.1) * LN(EPSILON / 0.1)
    assert psi_numeric(ref, cur) == pytest.approx(expected)
    assert psi(ref, cur) == pytest.approx(expected)


def test_psi_numeric_values_outside_the_reference_range_have_bins_of_their_own() -> None:
    ref = np.arange(1.0, 101.0)
    assert distance_edges(ref).tolist() == [np.nextafter(1.0, -np.inf), *drift.quantile_edges(ref, 10), 100.0]
    # all below the minimum: reference share 0 there (floored at EPSILON), not the first decile's 0.1
    below = (1 - EPSILON) * LN(1 / EPSILON) + 10 * (EPSILON - 0.1) * LN(EPSILON / 0.1)
    assert psi_numeric(ref, np.zeros(40)) == pytest.approx(below)
    # 5 % beyond the maximum, the rest as the reference: ~0.05 ln(0.05 / EPSILON) = 0.31 (0.019 on the deciles alone)
    cur = np.concatenate([np.repeat(ref, 19), np.full(100, 1000.0)])
    expected = (0.05 - EPSILON) * LN(0.05 / EPSILON) + 10 * (0.095 - 0.1) * LN(0.095 / 0.1)
    assert psi_numeric(ref, cur) == pytest.approx(expected)
    assert psi_numeric(ref, ref.copy()) == 0.0  # the reference itself: its outer bins are empty
    # the minimum and maximum themselves are inside: a window of just those is no value out of range
    assert binned_counts(np.array([1.0, 100.0]), distance_edges(ref))[[0, -1]].tolist() == [0, 0]


def test_psi_numeric_equals_the_profile_based_check_in_drift() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.gamma(2.0, size=3000), rng.gamma(2.4, size=1000)
    assert cur.max() > ref.max()
    profile = drift.build_profile(pd.DataFrame({"x": ref}), ["x"], [])
    edges = drift.distance_edges(profile["numeric"]["x"])  # the profile's deciles + out-of-range edges
    assert edges == distance_edges(ref).tolist()
    expected = drift.psi(drift.numeric_histogram(ref, edges)[0], drift.numeric_histogram(cur, edges)[0])
    assert psi_numeric(ref, cur) == pytest.approx(expected, abs=1e-12)


# --- jensen-shannon -----------------------------------------------------------------------------


def test_jensenshannon_categorical_known_answers() -> None:
    assert jensenshannon_distance(cats(a=3, b=7), cats(a=3, b=7)) == 0.0
    assert jensenshannon_distance(cats(a=5), cats(b=5)) == pytest.approx(math.sqrt(LN(2)))
    # p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4)
    kl_p = 0.5 * LN(0.5 / 0.75) + 0.5 * LN(0.5 / 0.25)
    kl_q = LN(1 / 0.75)
    assert jensenshannon_distance(cats(a=5, b=5), cats(a=8)) == pytest.approx(math.sqrt((kl_p + kl_q) / 2))


def test_jensenshannon_numeric_disjoint_and_identical() -> None:
    ref = np.linspace(0, 1, 100)
    assert jensenshannon_distance(ref, ref.copy()) == 0.0
    assert jensenshannon_distance(ref, ref + 10) == pytest.approx(math.sqrt(LN(2)))


def test_jensenshannon_numeric_few_distinct_values_fall_in_separate_decile_bins() -> None:
    # deciles of two values: edges 1, 1.5 and 2, so each value has a bin, as a category would
    ref, cur = np.array([1.0] * 5 + [2.0] * 5), np.array([1.0] * 8)
    assert jensenshannon_distance(ref, cur) == pytest.approx(jensenshannon_distance(cats(a=5, b=5), cats(a=8)))


def test_jensenshannon_numeric_is_on_the_psi_bins() -> None:
    rng = np.random.default_rng(9)
    ref, cur = rng.normal(size=3000), rng.normal(0.5, 1.5, 2000)
    edges = distance_edges(ref)
    expected = jensenshannon_from_counts(binned_counts(ref, edges), binned_counts(cur, edges))
    assert jensenshannon_distance(ref, cur) == pytest.approx(expected, abs=1e-12)
    assert REGISTRY["jensenshannon"].statistic(ref, cur, NUMERIC) == pytest.approx(expected, abs=1e-12)


# --- chi-square ---------------------------------------------------------------------------------


def test_chisquare_by_hand() -> None:
    # expected (60, 40), observed (40, 60): (20^2 / 60) + (20^2 / 40)
    assert chisquare_p_value(cats(a=60, b=40), cats(a=40, b=60)) == pytest.approx(chi2_sf_1df(400 / 60 + 400 / 40))
    # current of another size: expected 50 * (0.6, 0.4) = (30, 20), observed (20, 30)
    assert chisquare_p_value(cats(a=60, b=40), cats(a=20, b=30)) == pytest.approx(chi2_sf_1df(100 / 30 + 100 / 20))


def test_chisquare_identical_new_category_and_single_category() -> None:
    assert chisquare_p_value(cats(a=30, b=20, c=10), cats(a=30, b=20, c=10)) == pytest.approx(1.0)
    assert chisquare_p_value(cats(a=30, b=20), cats(a=30, b=19, c=1)) == 0.0
    assert chisquare_p_value(cats(a=30), cats(a=5)) == 1.0


# --- l-infinity ---------------------------------------------------------------------------------


def test_linf_by_hand() -> None:
    assert linf_distance(cats(a=70, b=30), cats(a=40, b=60)) == pytest.approx(0.3)
    assert linf_distance(cats(a=5, b=5), cats(a=5, b=3, c=2)) == pytest.approx(0.2)  # b -0.2, c +0.2
    assert linf_distance(cats(a=5, b=5), cats(b=1, a=1)) == 0.0


def test_category_counts_union_in_reference_order_missing_dropped() -> None:
    categories, ref, cur = category_counts(
        np.array(["b", "a", "b", None], dtype=object), np.array(["c", "a", np.nan], dtype=object)
    )
    assert categories == ["b", "a", "c"]
    assert ref.tolist() == [2, 1, 0] and cur.tolist() == [0, 1, 1]


# --- declarations -------------------------------------------------------------------------------


def test_registry_declares_the_methods() -> None:
    assert set(REGISTRY) == {"ks", "psi", "wasserstein", "jensenshannon", "chisquare", "linf"}
    assert REGISTRY["ks"].kinds == frozenset({NUMERIC}) and REGISTRY["ks"].kind_of_statistic == "p_value"
    assert REGISTRY["chisquare"].kinds == frozenset({CATEGORICAL})
    assert REGISTRY["linf"].kinds == frozenset({CATEGORICAL})
    for name in ("psi", "jensenshannon"):
        assert REGISTRY[name].kinds == frozenset({NUMERIC, CATEGORICAL})
    for name, method in REGISTRY.items():
        assert method.name == name and method.description and method.default_threshold > 0


def test_every_method_gives_no_drift_on_identical_samples_of_each_kind() -> None:
    rng = np.random.default_rng(5)
    samples = {NUMERIC: rng.normal(size=400), CATEGORICAL: rng.choice(np.array(list("abcde"), dtype=object), 400)}
    for method in REGISTRY.values():
        for kind in method.kinds:
            value = method.statistic(samples[kind], samples[kind].copy(), kind)
            assert value == pytest.approx(1.0 if method.kind_of_statistic == "p_value" else 0.0), (method.name, kind)
            assert not method.drifted(value)


def test_statistic_uses_the_declared_kind() -> None:
    codes_ref, codes_cur = np.array([1] * 60 + [2] * 40), np.array([1] * 40 + [2] * 60)
    chisquare = get_method("chisquare")
    assert chisquare.statistic(codes_ref, codes_cur, CATEGORICAL) == pytest.approx(chi2_sf_1df(400 / 60 + 400 / 40))
    psi_method = get_method("psi")
    as_categories = psi_method.statistic(codes_ref, codes_cur, CATEGORICAL)
    assert as_categories == pytest.approx(psi_categorical(cats(a=60, b=40), cats(a=40, b=60)))
    with pytest.raises(ValueError, match=r"accepts \['numeric'\] columns, not 'categorical'"):
        get_method("ks").statistic(codes_ref, codes_cur, CATEGORICAL)


def test_drifted_direction_threshold_and_nan() -> None:
    ks, wasserstein = get_method("ks"), get_method("wasserstein")
    assert ks.drifted(0.01) and not ks.drifted(0.05) and not ks.drifted(0.2)
    assert ks.drifted(0.04, threshold=0.05) and not ks.drifted(0.04, threshold=0.01)
    assert wasserstein.drifted(0.1) and wasserstein.drifted(0.5) and not wasserstein.drifted(0.09)
    assert not ks.drifted(math.nan) and not wasserstein.drifted(math.nan)


def test_declaration_is_validated() -> None:
    with pytest.raises(ValueError, match="kinds"):
        DriftMethod("x", frozenset({"text"}), 0.1, "distance", "", linf_distance)
    with pytest.raises(ValueError, match="kind_of_statistic"):
        DriftMethod("x", frozenset({NUMERIC}), 0.1, "score", "", linf_distance)  # type: ignore[arg-type]


def test_unknown_method_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown drift method 'kl'") as info:
        get_method("kl")
    for name in REGISTRY:
        assert name in str(info.value)
    assert get_method("psi") is REGISTRY["psi"]


def test_method_for_follows_evidently_defaults() -> None:
    assert method_for(NUMERIC, 1000, 50_000) == "ks"
    assert method_for(NUMERIC, 1001, 10) == "wasserstein"
    assert method_for(CATEGORICAL, 200, 200) == "chisquare"
    assert method_for(CATEGORICAL, 5000, 300) == "jensenshannon"
    for kind in (NUMERIC, CATEGORICAL):
        for n in (10, 5000):
            assert method_for(kind, n, n) in REGISTRY and kind in REGISTRY[method_for(kind, n, n)].kinds
    with pytest.raises(ValueError, match="valid kinds: categorical, numeric"):
        method_for("text", 10, 10)
    with pytest.raises(ValueError, match="non-empty reference"):
        method_for(NUMERIC, 0, 10)


# --- benjamini-hochberg -------------------------------------------------------------------------


def test_benjamini_hochberg_textbook_example() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04, 0.2 against k/5 * 0.05 = 0.01, 0.02, 0.03, 0.04, 0.05
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.2], q=0.05) == [True, True, True, True, False]
    # step-up: 0.03 and 0.031 miss their own thresholds (0.02, 0.03) but 0.039 <= 0.04 rejects all four
    assert benjamini_hochberg([0.9, 0.031, 0.001, 0.039, 0.03]) == [False, True, True, True, True]
    assert benjamini_hochberg([0.02, 0.03], q=0.01) == [False, False]


def test_benjamini_hochberg_nan_empty_and_errors() -> None:
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([math.nan, 0.01, 0.04]) == [False, True, True]  # m = 2
    with pytest.raises(ValueError, match="q must be"):
        benjamini_hochberg([0.1], q=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([1.5])


def test_benjamini_hochberg_agrees_with_scipy_adjusted_p_values() -> None:
    rng = np.random.default_rng(6)
    for _ in range(20):
        p = np.r_[rng.uniform(size=30), rng.uniform(0, 0.01, size=5)]
        adjusted = stats.false_discovery_control(p, method="bh")
        assert benjamini_hochberg(p.tolist(), q=0.1) == (adjusted <= 0.1).tolist()


# --- weighted drift share -----------------------------------------------------------------------


def test_weighted_drift_share() -> None:
    drifted = {"a": True, "b": False, "c": True}
    assert weighted_drift_share(drifted, {"a": 0.5, "b": 0.3, "c": 0.2}) == pytest.approx(0.7)
    assert weighted_drift_share(drifted, {"a": 5, "b": 3, "c": 2, "gone": 100}) == pytest.approx(0.7)
    assert weighted_drift_share(drifted, {}) == pytest.approx(2 / 3)
    assert weighted_drift_share({}, {"a": 1.0}) == 0.0
    assert weighted_drift_share({"a": False}, {}) == 0.0


def test_weighted_drift_share_missing_zero_and_negative_importance(caplog: pytest.LogCaptureFixture) -> None:
    drifted = {"a": True, "b": False, "c": True}
    with caplog.at_level(logging.WARNING):
        assert weighted_drift_share(drifted, {"a": 0.0, "b": 1.0}) == 0.0  # c has no importance: weight 0
        assert "no importance for 1 feature(s), weighted 0: c" in caplog.text
        assert weighted_drift_share(drifted, {"a": 0.0, "b": 0.0, "c": 0.0}) == pytest.approx(2 / 3)
        assert "sum to 0" in caplog.text
    with pytest.raises(ValueError, match="non-negative"):
        weighted_drift_share(drifted, {"a": -1.0})


def test_the_config_s_table_of_method_kinds_is_the_registry_s():
    """The configuration validates names against method_kinds (no heavy imports); it must match the registry."""
    from include.retraining.monitoring.drift_methods import REGISTRY
    from include.retraining.monitoring.method_kinds import METHOD_KINDS

    assert {name: method.kinds for name, method in REGISTRY.items()} == METHOD_KINDS


# --- p-values on the log10 scale ----------------------------------------------------------------------


@pytest.mark.parametrize(("statistic", "df", "expected"), [
    # log10 of the regularised upper incomplete gamma Q(df/2, x/2), computed with mpmath at 50 digits
    (2000.0, 3, -432.7418098593197),
    (1e5, 10, -21697.308391642706),
    (9000.0, 5000, -232.4093529069157),
    (30000.0, 5000, -3486.099983936474),
])
def test_chi_square_log_p_values_are_exact_far_below_the_float_range(statistic: float, df: int, expected: float) -> None:
    assert dm.chi2_log10_sf(statistic, df) == pytest.approx(expected, rel=1e-12)


def test_chi_square_log_p_values_agree_with_scipy_where_it_is_representable() -> None:
    for statistic, df in ((0.5, 1), (3.0, 2), (50.0, 3), (700.0, 40), (1200.0, 1000)):
        assert dm.chi2_log10_sf(statistic, df) == pytest.approx(math.log10(stats.chi2.sf(statistic, df)), rel=1e-9)
    assert dm.chi2_log10_sf(0.0, 3) == 0.0 and dm.chi2_log10_sf(math.inf, 3) == -math.inf


def test_ks_log_p_values_follow_scipy_then_its_tail() -> None:
    for d, en in ((0.05, 500), (0.1, 800), (0.02, 20_000)):
        exact = stats.kstwo.sf(d, en) if en <= 10_000 else stats.kstwobign.sf(d * math.sqrt(en))
        assert dm.ks_log10_sf(d, en) == pytest.approx(math.log10(exact), rel=1e-9)
    # beyond the float range: 2 exp(-2 en d^2), finite and decreasing in d
    assert dm.ks_log10_sf(0.5, 5000) == pytest.approx((math.log(2) - 2500) / math.log(10), rel=1e-12)
    assert dm.ks_log10_sf(1.0, 5000) < dm.ks_log10_sf(0.5, 5000) < -300


def test_adjusted_log_p_values_are_the_log_of_the_adjusted_p_values() -> None:
    p = [0.01, 0.04, 0.2, 1e-5, 0.03, float("nan")]
    logs = dm.adjusted_log10_p_values([math.log10(v) if v == v else float("nan") for v in p])
    for got, want in zip(logs, dm.adjusted_p_values(p), strict=True):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(math.log10(want), abs=1e-12)
    # far below 1e-300 the order and the m / rank factors survive
    tiny = dm.adjusted_log10_p_values([-900.0, -400.0, -2.0])
    assert tiny == pytest.approx([-900 + math.log10(3), -400 + math.log10(1.5), -2.0])
