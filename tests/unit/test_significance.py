"""Paired significance: bootstrap intervals and McNemar's test by known answers and by scikit-learn twins.

The vectorised named metrics are checked against the same metric from scikit-learn called
once per resample on the same indices (same seed), so every resample is compared, not just
the point estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from include.retraining import metrics as metrics_module
from include.retraining.metrics import HIGHER_IS_BETTER, classification_metrics
from include.retraining.release.significance import (
    Blocks,
    auc_fast,
    choose_blocks,
    mcnemar,
    min_detectable_effect,
    paired_bootstrap,
)


def binary_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a fair candidate and a weaker champion; scores rounded to 2 places so that ties occur."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    candidate = np.clip(0.3 * y + rng.normal(0.35, 0.25, rows), 0, 1).round(2)
    champion = np.clip(0.1 * y + rng.normal(0.45, 0.25, rows), 0, 1).round(2)
    return y, candidate, champion


def roc_auc_or_nan(y: np.ndarray, scores: np.ndarray) -> float:
    return roc_auc_score(y, scores) if len(np.unique(y)) == 2 else math.nan


# --- auc_fast ------------------------------------------------------------------------------------


def test_auc_fast_known_answer() -> None:
    # positives .7, .4, .9 against negatives .1, .6, .3: 3 + 2 + 3 of 9 pairs ordered correctly
    assert auc_fast([0, 1, 0, 1, 0, 1], [0.1, 0.7, 0.6, 0.4, 0.3, 0.9]) == pytest.approx(8 / 9)
    # one tie between a positive and a negative counts one half: (1 + 0.5) / 2
    assert auc_fast([0, 0, 1], [0.2, 0.5, 0.5]) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_fast_equals_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 5000)
    scores = (rng.random(5000) + 0.2 * y).round(1)  # about a dozen distinct values: ties everywhere
    assert len(np.unique(scores)) < 20
    assert auc_fast(y, scores) == pytest.approx(roc_auc_score(y, scores), rel=1e-12, abs=1e-12)
    assert auc_fast(y.astype(bool), scores) == pytest.approx(roc_auc_score(y, scores), rel=1e-12, abs=1e-12)


def test_auc_fast_one_class_is_nan_and_bad_input_is_refused() -> None:
    assert math.isnan(auc_fast([1, 1, 1], [0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="0/1"):
        auc_fast([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="rows"):
        auc_fast([0, 1], [0.1, 0.2, 0.3])


# --- paired_bootstrap: known answers -------------------------------------------------------------


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "f1", "rmse"])
def test_identical_models_differ_by_nothing(metric: str) -> None:
    y, scores, _ = binary_data(400)
    r = paired_bootstrap(y, scores, scores.copy(), metric, n_resamples=300)
    assert r["difference"] == 0
    assert r["ci_low"] <= 0 <= r["ci_high"]
    # every resample has difference 0, which counts as "not better": (300 + 1) / (300 + 1)
    assert r["p_value"] == pytest.approx(1.0)
    assert r["skipped"] == 0
    assert r["rows"] == 400 and r["n_resamples"] == 300 and r["confidence"] == 0.95


def test_perfect_candidate_against_random_champion() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    champion = rng.random(2000)
    r = paired_bootstrap(y, y.astype(float), champion, "roc_auc", n_resamples=1000)
    assert r["candidate"] == 1.0
    assert r["champion"] == pytest.approx(roc_auc_score(y, champion), rel=1e-12)
    assert r["champion"] == pytest.approx(0.5, abs=0.05)
    assert r["difference"] == pytest.approx(1 - roc_auc_score(y, champion), rel=1e-12)
    assert r["ci_low"] > 0.4
    assert r["ci_low"] <= r["difference"] <= r["ci_high"]
    assert r["p_value"] == pytest.approx(1 / 1001)  # no resample where the champion wins: the smallest possible


def test_loss_metrics_test_the_other_direction() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(50, 10, 1500)
    r = paired_bootstrap(y, y, y + rng.normal(0, 3, 1500), "rmse", n_resamples=500)
    assert r["higher_is_better"] is False
    assert r["candidate"] == 0.0
    assert r["ci_high"] < 0  # lower RMSE is better: the whole interval is an improvement
    assert r["p_value"] == pytest.approx(1 / 501)
    # the same comparison the wrong way round: the candidate is worse in every resample
    worse = paired_bootstrap(y, y + rng.normal(0, 3, 1500), y, "mae", n_resamples=500)
    assert worse["ci_low"] > 0
    assert worse["p_value"] == pytest.approx(1.0)


def test_callable_direction_can_be_set() -> None:
    y, good, bad = binary_data(800)
    as_gain = paired_bootstrap(y, good, bad, auc_fast, n_resamples=100)
    as_loss = paired_bootstrap(y, good, bad, auc_fast, n_resamples=100, higher_is_better=False)
    assert as_gain["difference"] == as_loss["difference"] > 0
    assert as_gain["p_value"] == pytest.approx(1 / 101)
    assert as_loss["p_value"] == pytest.approx(1.0)


def test_p_value_is_the_corrected_share_of_resamples_not_better() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 200)
    a, b = rng.random(200), rng.random(200)  # two random scorers: the candidate wins about half the time
    r = paired_bootstrap(y, a, b, "roc_auc", n_resamples=400, seed=5)
    twin = paired_bootstrap(y, a, b, auc_fast, n_resamples=400, seed=5)  # auc_fast: checked against sklearn above
    assert 0.05 < r["p_value"] < 0.95
    assert r["p_value"] == pytest.approx(twin["p_value"])
    k = r["p_value"] * 401 - 1
    assert k == pytest.approx(round(k))  # (k + 1) / (n + 1) with k a whole number of resamples


def test_binary_threshold_matches_the_metrics_module() -> None:
    y = np.array([0, 1, 1, 0, 1, 0])
    p = np.array([0.5, 0.5, 0.9, 0.2, 0.51, 0.7])  # exactly 0.5 is class 0, as argmax of [1 - p, p]
    # predicted [0, 0, 1, 0, 1, 1] against [0, 1, 1, 0, 1, 0]: 4 of 6 right
    expected = classification_metrics(y, np.column_stack([1 - p, p]))
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        r = paired_bootstrap(y, p, np.full(6, 0.25), name, n_resamples=20)
        assert r["candidate"] == pytest.approx(expected[name]), name
    assert paired_bootstrap(y, p, p, "accuracy", n_resamples=5)["candidate"] == pytest.approx(4 / 6)


# --- paired_bootstrap: vectorised named metrics against scikit-learn per resample -----------------


def _multiclass(rows: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    good = rng.dirichlet([1, 1, 1], rows)
    good[np.arange(rows), y] += 0.5
    good /= good.sum(axis=1, keepdims=True)
    return y, good, rng.dirichlet([1, 1, 1], rows)


def _labels(p: np.ndarray) -> np.ndarray:
    return (p > 0.5).astype(int)


BINARY_TWINS = {
    "roc_auc": roc_auc_or_nan,
    "accuracy": lambda y, p: accuracy_score(y, _labels(p)),
    "precision": lambda y, p: precision_score(y, _labels(p), zero_division=0),
    "recall": lambda y, p: recall_score(y, _labels(p), zero_division=0),
    "f1": lambda y, p: f1_score(y, _labels(p), zero_division=0),
    "brier": lambda y, p: brier_score_loss(y, p) if len(y) else math.nan,
    "log_loss": lambda y, p: metrics_module.log_loss(y, np.column_stack([1 - p, p])),
}
MULTICLASS_TWINS = {
    "brier": metrics_module.brier,
    "log_loss": metrics_module.log_loss,
    "roc_auc": lambda y, p: roc_auc_score(y, p, multi_class="ovr") if len(np.unique(y)) == 3 else math.nan,
    "accuracy": lambda y, p: accuracy_score(y, p.argmax(axis=1)),
    "precision": lambda y, p: precision_score(y, p.argmax(axis=1), average="macro", zero_division=0),
    "recall": lambda y, p: recall_score(y, p.argmax(axis=1), average="macro", zero_division=0),
    "f1": lambda y, p: f1_score(y, p.argmax(axis=1), average="macro", zero_division=0),
}
REGRESSION_TWINS = {
    "rmse": lambda y, p: math.sqrt(mean_squared_error(y, p)),
    "mae": mean_absolute_error,
    "r2": r2_score,
}
KEYS = ("candidate", "champion", "difference", "ci_low", "ci_high", "p_value", "skipped")


def _same(named: dict, twin: dict) -> None:
    for key in KEYS:
        assert named[key] == pytest.approx(twin[key], rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("metric", sorted(BINARY_TWINS))
def test_binary_named_metrics_equal_sklearn_on_every_resample(metric: str) -> None:
    y, cand, champ = binary_data(300, seed=11)
    _same(paired_bootstrap(y, cand, champ, metric, n_resamples=200, seed=2),
          paired_bootstrap(y, cand, champ, BINARY_TWINS[metric], n_resamples=200, seed=2,
                           higher_is_better=HIGHER_IS_BETTER[metric]))


@pytest.mark.parametrize("metric", sorted(MULTICLASS_TWINS))
def test_multiclass_named_metrics_equal_sklearn_on_every_resample(metric: str) -> None:
    y, cand, champ = _multiclass(60)
    named = paired_bootstrap(y, cand, champ, metric, n_resamples=200, seed=2)
    _same(named, paired_bootstrap(y, cand, champ, MULTICLASS_TWINS[metric], n_resamples=200, seed=2,
                                  higher_is_better=HIGHER_IS_BETTER[metric]))
    better = named["candidate"] > named["champion"]
    assert better if HIGHER_IS_BETTER[metric] else not better


@pytest.mark.parametrize("metric", ["precision", "recall", "f1"])
def test_macro_averages_skip_classes_absent_from_a_resample_like_sklearn(metric: str) -> None:
    y, cand, champ = _multiclass(30, seed=12)
    y[y == 2] = 0
    y[7] = 2  # class 2 is one row, which about a third of the resamples miss; only the candidate predicts it, there
    cand[:, 2] = 0.0
    cand[7] = [0.1, 0.1, 0.8]
    champ[:, 2] = 0.0
    named = paired_bootstrap(y, cand, champ, metric, n_resamples=300, seed=4)
    _same(named, paired_bootstrap(y, cand, champ, MULTICLASS_TWINS[metric], n_resamples=300, seed=4))


@pytest.mark.parametrize("metric", sorted(REGRESSION_TWINS))
def test_regression_named_metrics_equal_sklearn_on_every_resample(metric: str) -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(1000, 5, 250)  # a large mean: R2 must not lose its precision to it
    cand, champ = y + rng.normal(0, 1, 250), y + rng.normal(0, 2, 250)
    named = paired_bootstrap(y, cand, champ, metric, n_resamples=200, seed=2)
    twin = paired_bootstrap(y, cand, champ, REGRESSION_TWINS[metric], n_resamples=200, seed=2,
                            higher_is_better=metric == "r2")
    _same(named, twin)


def test_integer_predicted_labels_are_used_as_labels() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 500)
    cand = np.where(rng.random(500) < 0.85, y, 1 - y)
    champ = np.where(rng.random(500) < 0.6, y, 1 - y)
    r = paired_bootstrap(y, cand, champ, "f1", n_resamples=200)
    assert r["difference"] == pytest.approx(f1_score(y, cand) - f1_score(y, champ))
    assert r["ci_low"] > 0
    auc = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=50)
    assert auc["candidate"] == pytest.approx(roc_auc_score(y, cand))


# --- paired_bootstrap: skipping, reproducibility, size, input errors ------------------------------


def test_resamples_without_both_classes_are_skipped_and_counted() -> None:
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])  # a resample holds no positive with probability (7/8)^8 = 0.34
    cand = np.linspace(0.1, 0.8, 8)[::-1]
    champ = np.linspace(0.1, 0.8, 8)
    r = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=1000, seed=1)
    assert 250 < r["skipped"] < 440
    # a callable that is undefined exactly when the drawn rows hold no positive, on the same indices
    twin = paired_bootstrap(y, cand, champ, lambda t, s: 1.0 if t.any() else math.nan, n_resamples=1000, seed=1)
    assert r["skipped"] == twin["skipped"]
    # every kept resample has the candidate ranking the positive on top: AUC 1 against 0
    assert r["ci_low"] == r["ci_high"] == r["difference"] == 1.0
    assert r["p_value"] == pytest.approx(1 / (1000 - r["skipped"] + 1))


def test_undefined_on_all_rows_gives_nan_not_an_error() -> None:
    r = paired_bootstrap(np.zeros(50, dtype=int), np.random.default_rng(0).random(50), np.full(50, 0.5), "roc_auc")
    assert math.isnan(r["difference"]) and math.isnan(r["ci_low"]) and math.isnan(r["p_value"])
    assert r["skipped"] == r["n_resamples"] == 1000


def test_same_seed_same_answer_other_seed_other_interval() -> None:
    y, cand, champ = binary_data(1000, seed=4)
    first = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=300, seed=42)
    assert paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=300, seed=42) == first
    other = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=300, seed=43)
    assert other["difference"] == first["difference"]
    assert (other["ci_low"], other["ci_high"]) != (first["ci_low"], first["ci_high"])


def test_confidence_sets_the_width_of_the_interval() -> None:
    y, cand, champ = binary_data(1000, seed=4)
    wide = paired_bootstrap(y, cand, champ, "accuracy", n_resamples=500, confidence=0.99)
    narrow = paired_bootstrap(y, cand, champ, "accuracy", n_resamples=500, confidence=0.5)
    assert wide["ci_low"] < narrow["ci_low"] <= narrow["ci_high"] < wide["ci_high"]


def test_thousand_resamples_of_fifteen_thousand_rows() -> None:
    y, cand, champ = binary_data(15_000, seed=7)
    r = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=1000)
    assert r["rows"] == 15_000 and r["n_resamples"] == 1000 and r["skipped"] == 0
    expected = roc_auc_score(y, cand) - roc_auc_score(y, champ)
    assert r["difference"] == pytest.approx(expected, rel=1e-12)
    assert r["ci_low"] < r["difference"] < r["ci_high"]
    # the standard error of an AUC difference on 15,000 rows is well under 0.01: a narrow interval
    assert 0.005 < r["ci_high"] - r["ci_low"] < 0.05
    assert r["ci_low"] > 0 and r["p_value"] == pytest.approx(1 / 1001)


def test_bad_input_is_refused() -> None:
    y, cand, champ = binary_data(20)
    with pytest.raises(ValueError, match="unknown metric"):
        paired_bootstrap(y, cand, champ, "auc")
    with pytest.raises(ValueError, match="rows"):
        paired_bootstrap(y, cand[:-1], champ, "roc_auc")
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(y, cand, champ, "roc_auc", confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=0)
    with pytest.raises(ValueError, match="class indices"):
        paired_bootstrap(y + 5, cand, champ, "accuracy")
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap(y, np.full(20, np.nan), champ, "roc_auc")


# --- McNemar -------------------------------------------------------------------------------------


def mcnemar_rows(both_right: int, b: int, c: int, both_wrong: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two prediction vectors with the given 2x2 table (b: champion right only, c: candidate only)."""
    y = np.ones(both_right + b + c + both_wrong, dtype=int)
    cand_right = np.r_[np.ones(both_right), np.zeros(b), np.ones(c), np.zeros(both_wrong)].astype(bool)
    champ_right = np.r_[np.ones(both_right), np.ones(b), np.zeros(c), np.zeros(both_wrong)].astype(bool)
    return y, np.where(cand_right, 1, 0), np.where(champ_right, 1, 0)


def test_mcnemar_exact_known_answer() -> None:
    r = mcnemar(*mcnemar_rows(both_right=50, b=10, c=2, both_wrong=7))
    assert (r["b"], r["c"], r["method"]) == (10, 2, "exact")
    # 2 * P(X <= 2 | n=12, p=1/2) = 2 * (1 + 12 + 66) / 4096
    assert r["p_value"] == pytest.approx(2 * 79 / 4096, rel=1e-12)
    assert r["p_value"] == pytest.approx(0.0385742, abs=1e-7)
    assert r["candidate_better"] is False
    assert r["rows"] == 69
    swapped = mcnemar(*mcnemar_rows(both_right=50, b=2, c=10, both_wrong=7))
    assert swapped["p_value"] == pytest.approx(r["p_value"])
    assert swapped["candidate_better"] is True


def test_mcnemar_chi_square_known_answer() -> None:
    r = mcnemar(*mcnemar_rows(both_right=500, b=20, c=40, both_wrong=30))
    assert r["method"] == "chi2"
    assert r["statistic"] == pytest.approx((abs(20 - 40) - 1) ** 2 / 60)  # 361 / 60
    # chi-square with one degree of freedom: P(X > s) = erfc(sqrt(s / 2))
    assert r["p_value"] == pytest.approx(math.erfc(math.sqrt(361 / 120)), rel=1e-9)
    assert r["candidate_better"] is True


def test_mcnemar_switches_method_at_25_discordant_rows_and_handles_none() -> None:
    assert mcnemar(*mcnemar_rows(10, 12, 12, 0))["method"] == "exact"
    assert mcnemar(*mcnemar_rows(10, 12, 12, 0))["p_value"] == pytest.approx(1.0)
    assert mcnemar(*mcnemar_rows(10, 12, 13, 0))["method"] == "chi2"
    none = mcnemar(*mcnemar_rows(10, 0, 0, 3))
    assert (none["b"], none["c"], none["p_value"], none["candidate_better"]) == (0, 0, 1.0, False)


def test_mcnemar_works_on_string_labels_and_refuses_mismatched_shapes() -> None:
    y = np.array(["cat", "dog", "dog", "cat", "bird"])
    r = mcnemar(y, np.array(["cat", "dog", "cat", "cat", "bird"]), np.array(["dog", "dog", "dog", "bird", "bird"]))
    assert (r["b"], r["c"]) == (1, 2)
    with pytest.raises(ValueError, match="1-D"):
        mcnemar(y, y[:-1], y)


# --- blocks of time ---------------------------------------------------------------------------------


def _times(rows: int, every: str, start: str = "2026-01-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=rows, freq=every, tz="UTC")


def test_choose_blocks_takes_the_coarsest_period_with_enough_blocks() -> None:
    month = choose_blocks(_times(30 * 24, "h"))  # 30 days of hourly rows: days
    assert (month.unit, month.count, month.seconds, month.enough) == ("day", 30, 86_400, True)
    assert list(np.bincount(month.ids)) == [24] * 30
    two_days = choose_blocks(_times(2 * 24 * 6, "10min"))  # 2 days: 48 hours
    assert (two_days.unit, two_days.count) == ("hour", 48)
    three_hours = choose_blocks(_times(180, "min"))  # 3 hours: 12 quarters, 36 five-minute blocks
    assert (three_hours.unit, three_hours.count) == ("5min", 36)
    tiny = choose_blocks(_times(6, "h"))  # six rows an hour apart: at most six blocks of anything
    assert tiny.count == 6 and not tiny.enough
    assert choose_blocks(_times(30 * 24, "h"), unit="hour").unit == "hour"
    assert choose_blocks(_times(10, "h"), min_blocks=5, unit="row").count == 10
    assert choose_blocks(_times(50, "h"), min_blocks=2, unit="day").as_dict() == {
        "block": "day", "block_seconds": 86_400, "blocks": 3, "min_blocks": 2, "enough_blocks": True}


def test_choose_blocks_refuses_missing_times_and_unknown_units() -> None:
    ts = pd.Series([pd.Timestamp("2026-01-01", tz="UTC"), pd.NaT])
    with pytest.raises(ValueError, match="1 timestamps are missing"):
        choose_blocks(ts)
    with pytest.raises(ValueError, match="unknown block 'week'"):
        choose_blocks(_times(3, "h"), unit="week")


def test_one_block_claims_nothing() -> None:
    y, cand, champ = binary_data(2000, seed=1)
    one_day = choose_blocks(_times(2000, "30s"), unit="day")
    assert one_day.count == 1
    r = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=200, clusters=one_day)
    assert r["difference"] > 0.1  # a large gain on the rows...
    assert math.isnan(r["ci_low"]) and math.isnan(r["ci_high"])  # ...but one day cannot show it is not that day's
    assert r["enough_blocks"] is False and r["blocks"] == 1 and r["min_detectable_effect"] is None
    rows = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=200)
    assert rows["ci_low"] > 0 and rows["block"] == "row"  # the row bootstrap would have claimed it


def test_independent_rows_in_many_blocks_agree_with_the_row_bootstrap() -> None:
    y, cand, champ = binary_data(4000, seed=2)
    blocks = choose_blocks(_times(4000, "15min"))  # about 42 days of rows that share nothing
    assert blocks.unit == "day" and blocks.count == 42
    by_row = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=1000, seed=3)
    by_day = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=1000, seed=3, clusters=blocks)
    assert by_day["se"] == pytest.approx(by_row["se"], rel=0.2)
    assert by_day["difference"] == by_row["difference"]
    width = lambda r: r["ci_high"] - r["ci_low"]  # noqa: E731
    assert width(by_day) == pytest.approx(width(by_row), rel=0.25)
    # the few-blocks correction: Student's t with 41 degrees of freedom over the normal quantile
    from scipy import stats

    assert by_day["few_blocks_factor"] == pytest.approx(stats.t.ppf(0.975, 41) / stats.norm.ppf(0.975), rel=1e-6)


def test_rows_sharing_a_daily_shock_widen_the_interval() -> None:
    """Each day one of the models has a good or a bad day (a shock shared by the day's rows); over the days the
    two are equal. The row bootstrap sees a significant difference; the day bootstrap does not."""
    rng = np.random.default_rng(4)
    days, per_day = 30, 200
    y = rng.integers(0, 2, days * per_day)
    day = np.repeat(np.arange(days), per_day)
    shock = rng.normal(0, 0.6, days)[day]  # the candidate's edge that day
    base = rng.normal(0, 1, y.size)
    cand = 1 / (1 + np.exp(-(base + (y - 0.5) * (1.0 + shock))))
    champ = 1 / (1 + np.exp(-(base + (y - 0.5) * 1.0 + rng.normal(0, 0.3, y.size))))
    blocks = choose_blocks(pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(day * 24 + rng.random(y.size) * 23,
                                                                                 unit="h"))
    assert blocks.unit == "day" and blocks.count == days
    by_row = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=500, seed=1)
    by_day = paired_bootstrap(y, cand, champ, "roc_auc", n_resamples=500, seed=1, clusters=blocks)
    assert by_day["se"] > 2 * by_row["se"]
    assert by_day["min_detectable_effect"] > 2 * by_row["min_detectable_effect"]


def test_minimum_detectable_effect_shrinks_as_one_over_root_n() -> None:
    small = paired_bootstrap(*binary_data(1000, seed=6), "roc_auc", n_resamples=1000, seed=1)
    large = paired_bootstrap(*binary_data(4000, seed=6), "roc_auc", n_resamples=1000, seed=1)
    assert small["min_detectable_effect"] / large["min_detectable_effect"] == pytest.approx(2.0, rel=0.2)
    # (z(0.975) + z(0.8)) * se for rows; Student's t for blocks
    assert small["min_detectable_effect"] == pytest.approx((1.959964 + 0.841621) * small["se"], rel=1e-5)
    assert min_detectable_effect(0.01, 0.95, 0.8) == pytest.approx(0.0280159, rel=1e-5)
    assert min_detectable_effect(0.01, 0.95, 0.8, blocks=5) > min_detectable_effect(0.01, 0.95, 0.8, blocks=50)
    assert min_detectable_effect(0.01, 0.95, blocks=1) is None


def test_block_bootstrap_of_a_callable_metric_draws_whole_blocks() -> None:
    y, cand, champ = binary_data(300, seed=7)
    clusters = np.repeat(np.arange(30), 10)
    named = paired_bootstrap(y, cand, champ, "accuracy", n_resamples=200, seed=2, clusters=clusters)
    twin = paired_bootstrap(y, cand, champ, BINARY_TWINS["accuracy"], n_resamples=200, seed=2, clusters=clusters)
    _same(named, twin)
    assert named["blocks"] == 30 and named["block"] == "cluster"
    with pytest.raises(ValueError, match="clusters has 299 labels but there are 300 rows"):
        paired_bootstrap(y, cand, champ, "accuracy", clusters=clusters[1:])


def test_clustered_mcnemar_known_answers() -> None:
    from scipy import stats

    y = np.zeros(40, dtype=int)
    cand = np.zeros(40, dtype=int)
    champ = np.zeros(40, dtype=int)
    champ[:12] = 1  # the champion wrong on 12 rows the candidate gets right: c = 12
    cand[30:33] = 1  # the candidate wrong on 3 rows the champion gets right: b = 3
    # one row per cluster: the cluster-robust variance n/(n-1) * (b + c - (c - b)^2 / n)
    alone = mcnemar(y, cand, champ, clusters=np.arange(40))
    spread = 40 / 39 * (15 - 81 / 40)
    assert alone["statistic"] == pytest.approx(81 / spread)
    assert alone["p_value"] == pytest.approx(stats.f.sf(81 / spread, 1, 39))
    assert alone["method"] == "clustered_f" and alone["candidate_better"] and alone["b"] == 3 and alone["c"] == 12
    # all 15 discordant rows in two of four clusters: the difference rests on two blocks, far weaker evidence
    clusters = np.repeat(np.arange(4), 10)
    few = mcnemar(y, cand, champ, clusters=clusters, min_blocks=2)
    d, mean = np.array([10 - 0, 2 - 0, 0 - 3, 0.0]), 9 / 40
    assert few["statistic"] == pytest.approx(81 / (4 / 3 * ((d - 10 * mean) ** 2).sum()))
    assert few["p_value"] > alone["p_value"]
    assert mcnemar(y, cand, champ, clusters=clusters, min_blocks=5)["p_value"] == 1.0  # too few blocks: no claim
    blocks = Blocks(np.arange(40), "row", None, 40, 20)
    assert mcnemar(y, cand, champ, clusters=blocks)["enough_blocks"] is True
