"""Drift: PSI, quantile edges, histograms, reference profiles and the dataset verdict, by known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from include.retraining.drift import (
    EPSILON,
    UNSEEN,
    build_profile,
    dataset_drift,
    feature_drift,
    numeric_histogram,
    psi,
    quantile_edges,
)

LN = math.log

# --- psi ----------------------------------------------------------------------------------------


def test_psi_known_answer() -> None:
    expected = (0.25 - 0.5) * LN(0.25 / 0.5) + (0.75 - 0.5) * LN(0.75 / 0.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_psi_of_identical_histograms_is_zero() -> None:
    assert psi([3, 7, 10], [3, 7, 10]) == 0.0
    assert psi([3, 7, 10], [30, 70, 100]) == pytest.approx(0.0, abs=1e-15)  # proportions, not counts


def test_psi_is_symmetric_and_uses_proportions() -> None:
    assert psi([25, 75], [50, 50]) == pytest.approx(psi([50, 50], [25, 75]))
    assert psi([1, 1], [1, 3]) == pytest.approx(psi([50, 50], [25, 75]))


def test_psi_floors_empty_bins_at_epsilon() -> None:
    # reference [1, 0] -> proportions [1, EPSILON]; current [0.5, 0.5]
    expected = (0.5 - 1.0) * LN(0.5 / 1.0) + (0.5 - EPSILON) * LN(0.5 / EPSILON)
    assert psi([10, 0], [5, 5]) == pytest.approx(expected)
    assert math.isfinite(psi([10, 0], [0, 10]))


def test_psi_rejects_bad_histograms() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one value on each side"):
        psi([0, 0], [1, 1])
    with pytest.raises(ValueError, match="at least one value on each side"):
        psi([1, 1], [0, 0])


# --- quantile_edges and numeric_histogram --------------------------------------------------------


def test_quantile_edges_known_answer() -> None:
    # 1..10, linear interpolation: positions 9*q for q = .25, .5, .75 -> 3.25, 5.5, 7.75
    assert quantile_edges(np.arange(1, 11, dtype=float), 4) == pytest.approx([3.25, 5.5, 7.75])
    assert quantile_edges(np.array([0.0, 10.0]), 2) == [5.0]


def test_quantile_edges_ignore_missing_and_infinite_values() -> None:
    values = np.array([np.nan, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.inf, -np.inf])
    assert quantile_edges(values, 4) == pytest.approx([3.25, 5.5, 7.75])
    assert quantile_edges(np.array([np.nan, np.nan]), 10) == []


def test_quantile_edges_drop_duplicates_so_ties_give_fewer_bins() -> None:
    assert quantile_edges(np.array([1.0, 1, 1, 1, 2]), 4) == [1.0]
    assert quantile_edges(np.full(20, 3.0), 10) == [3.0]


def test_numeric_histogram_bins_are_closed_on_the_right() -> None:
    # bins (-inf, 1], (1, 2], (2, inf): a value equal to an edge goes to the lower bin
    counts, missing = numeric_histogram(np.array([0.0, 1.0, 1.5, 2.0, 3.0, np.nan]), [1.0, 2.0])
    assert counts == [2, 2, 1]
    assert missing == 1


def test_numeric_histogram_edge_cases() -> None:
    assert numeric_histogram(np.array([5.0, np.nan, 7.0]), []) == ([2], 1)
    assert numeric_histogram(np.array([]), [1.0, 2.0]) == ([0, 0, 0], 0)
    assert numeric_histogram(np.array([np.nan, np.nan]), [1.0]) == ([0, 0], 2)
    assert numeric_histogram(np.array([-np.inf, np.inf]), [0.0]) == ([1, 1], 0)
    counts, _ = numeric_histogram(np.array([1, 2, 3]), [2])  # integers are fine too
    assert counts == [2, 1]


# --- build_profile -------------------------------------------------------------------------------


def reference_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1, 2, 3, 4, 5, 6, 7, np.nan],
            "c": ["a", "a", "a", "b", "b", None, "c", "a"],
        }
    )


def test_build_profile_known_answer() -> None:
    profile = build_profile(reference_frame(), ["x"], ["c"], bins=2)
    assert profile["version"] == 1
    assert profile["rows"] == 8
    x = profile["numeric"]["x"]
    assert x["edges"] == [4.0]  # median of 1..7
    assert x["counts"] == [4, 3]  # 1,2,3,4 | 5,6,7
    assert x["missing"] == 1
    assert x["mean"] == pytest.approx(4.0)
    assert x["std"] == pytest.approx(math.sqrt(28 / 6))  # sample std of 1..7
    assert (x["min"], x["max"]) == (1.0, 7.0)
    assert profile["categorical"]["c"] == {"counts": {"a": 4, "b": 2, "c": 1}, "missing": 1}
    assert json.loads(json.dumps(profile)) == profile  # JSON-serialisable as it is


def test_build_profile_of_an_all_missing_column() -> None:
    profile = build_profile(pd.DataFrame({"x": [np.nan, np.nan]}), ["x"], [], bins=10)
    assert profile["numeric"]["x"] == {
        "edges": [], "counts": [0], "missing": 2, "mean": None, "std": None, "min": None, "max": None,
    }


def test_build_profile_counts_categories_as_strings() -> None:
    profile = build_profile(pd.DataFrame({"k": [1, 1, 2]}), [], ["k"], bins=10)
    assert profile["categorical"]["k"]["counts"] == {"1": 2, "2": 1}


# --- feature_drift -------------------------------------------------------------------------------


def test_feature_drift_of_the_reference_itself_is_zero() -> None:
    frame = reference_frame()
    results = feature_drift(build_profile(frame, ["x"], ["c"], bins=2), frame, threshold=0.2)
    assert [(r["feature"], r["kind"], r["statistic"], r["drifted"]) for r in results] == [
        ("x", "numeric", 0.0, False),
        ("c", "categorical", 0.0, False),
    ]
    assert results[0]["reference_mean"] == pytest.approx(4.0)
    assert results[0]["current_mean"] == pytest.approx(4.0)
    assert results[1]["unseen_categories"] == []
    assert all(r["method"] == "psi" and r["threshold"] == 0.2 for r in results)


def test_numeric_drift_known_answer() -> None:
    profile = build_profile(pd.DataFrame({"x": [1, 2, 3, 4, 5, 6, 7, 8]}), ["x"], [], bins=2)
    assert profile["numeric"]["x"]["edges"] == [4.5]
    current = pd.DataFrame({"x": [1.0, 2.0, 3.0, 9.0]})  # [3, 1] against [4, 4]
    (result,) = feature_drift(profile, current, threshold=0.2)
    expected = (0.75 - 0.5) * LN(0.75 / 0.5) + (0.25 - 0.5) * LN(0.25 / 0.5)
    assert result["statistic"] == pytest.approx(expected, abs=1e-6)
    assert result["drifted"] is True  # 0.2747 >= 0.2
    assert feature_drift(profile, current, threshold=0.3)[0]["drifted"] is False
    assert result["current_mean"] == pytest.approx(3.75)


def test_missing_values_get_their_own_bin() -> None:
    profile = build_profile(pd.DataFrame({"x": [1, 2, 3, 4, 5, 6, 7, 8]}), ["x"], [], bins=2)
    current = pd.DataFrame({"x": [1.0, 2.0, np.nan, np.nan]})
    (result,) = feature_drift(profile, current, threshold=0.2)
    # reference [4, 4, missing 0] -> [.5, .5, EPS]; current [2, 0, missing 2] -> [.5, EPS, .5]
    expected = 0.0 + (EPSILON - 0.5) * LN(EPSILON / 0.5) + (0.5 - EPSILON) * LN(0.5 / EPSILON)
    assert result["statistic"] == pytest.approx(expected, abs=1e-6)
    assert result["drifted"] is True
    # without the missing bin the same current bins would be [2, 0] vs [4, 4]
    assert result["statistic"] > psi([4, 4], [2, 0])


def test_unseen_categories_share_one_extra_bin_and_are_listed() -> None:
    profile = build_profile(reference_frame(), [], ["c"], bins=2)  # a:4 b:2 c:1, missing 1
    current = pd.DataFrame({"c": ["a", "e", "d", "d", None]})
    (result,) = feature_drift(profile, current, threshold=0.2)
    # bins a, b, c, __unseen__, missing:
    ref = [4 / 8, 2 / 8, 1 / 8, EPSILON, 1 / 8]
    cur = [1 / 5, EPSILON, EPSILON, 3 / 5, 1 / 5]
    expected = sum((c - r) * LN(c / r) for r, c in zip(ref, cur, strict=True))
    assert result["statistic"] == pytest.approx(expected, abs=1e-6)
    assert result["unseen_categories"] == ["d", "e"]
    assert result["drifted"] is True
    assert UNSEEN == "__unseen__"


def test_unseen_categories_are_listed_at_most_ten() -> None:
    profile = build_profile(pd.DataFrame({"c": ["a"] * 5}), [], ["c"], bins=2)
    current = pd.DataFrame({"c": [f"n{i:02d}" for i in range(15)]})
    (result,) = feature_drift(profile, current, threshold=0.2)
    assert result["unseen_categories"] == [f"n{i:02d}" for i in range(10)]


def test_drifted_is_at_or_above_the_threshold() -> None:
    profile = build_profile(pd.DataFrame({"x": [1, 2, 3, 4, 5, 6, 7, 8]}), ["x"], [], bins=2)
    current = pd.DataFrame({"x": [1.0, 2.0, 3.0, 9.0]})
    value = psi([4, 4], [3, 1])
    assert feature_drift(profile, current, threshold=value)[0]["drifted"] is True
    assert feature_drift(profile, current, threshold=value + 1e-9)[0]["drifted"] is False


def test_empty_current_window_gives_no_statistic() -> None:
    frame = reference_frame()
    results = feature_drift(build_profile(frame, ["x"], ["c"], bins=2), frame.iloc[:0], threshold=0.2)
    assert [(r["statistic"], r["drifted"]) for r in results] == [(None, False), (None, False)]
    assert results[0]["current_mean"] is None


# --- dataset_drift -------------------------------------------------------------------------------


def result(feature: str, statistic: float | None, drifted: bool) -> dict:
    return {"feature": feature, "statistic": statistic, "drifted": drifted}


def test_dataset_drift_share_rule() -> None:
    results = [result("a", 0.05, False), result("b", 0.31, True), result("c", 0.1, False), result("d", None, False)]
    verdict = dataset_drift(results, drifted_share=0.25)
    assert verdict == {
        "detected": True,  # 1/4 = 0.25 >= 0.25
        "drifted_features": ["b"],
        "drifted_share": 0.25,
        "share_threshold": 0.25,
        "max_psi": 0.31,
    }
    assert dataset_drift(results, drifted_share=0.26)["detected"] is False


def test_dataset_drift_lists_drifted_features_worst_first() -> None:
    results = [result("a", 0.25, True), result("b", 0.9, True), result("c", 0.4, True)]
    verdict = dataset_drift(results, drifted_share=0.5)
    assert verdict["drifted_features"] == ["b", "c", "a"]
    assert verdict["drifted_share"] == 1.0
    assert verdict["max_psi"] == 0.9
    three = dataset_drift([result("a", 0.3, True), result("b", 0.0, False), result("c", 0.0, False)], 0.25)
    assert three["drifted_share"] == pytest.approx(0.3333)
    assert three["detected"] is True


def test_dataset_drift_with_no_features() -> None:
    assert dataset_drift([], drifted_share=0.25) == {
        "detected": False, "drifted_features": [], "drifted_share": 0.0, "share_threshold": 0.25, "max_psi": 0.0,
    }


def test_profile_and_drift_end_to_end_on_a_shifted_population() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 5000), "z": rng.normal(0, 1, 5000), "c": rng.choice(["a", "b"], 5000)})
    profile = build_profile(reference, ["x", "z"], ["c"], bins=10)
    assert len(profile["numeric"]["x"]["edges"]) == 9
    assert sum(profile["numeric"]["x"]["counts"]) == 5000
    current = pd.DataFrame({"x": rng.normal(1.0, 1, 2000), "z": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    results = {r["feature"]: r for r in feature_drift(profile, current, threshold=0.2)}
    assert results["x"]["drifted"] and results["x"]["statistic"] > 0.5  # a one-sigma shift
    assert not results["z"]["drifted"] and results["z"]["statistic"] < 0.05
    assert not results["c"]["drifted"]
    verdict = dataset_drift(list(results.values()), drifted_share=0.25)
    assert verdict["detected"] and verdict["drifted_features"] == ["x"]
