"""Metrics by known answers: confusion counts and ranking pairs worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from include.retraining.errors import DataValidationError
from include.retraining.metrics import (
    CLASSIFICATION_METRICS,
    HIGHER_IS_BETTER,
    REGRESSION_METRICS,
    classification_metrics,
    clean,
    encode_labels,
    error_rate,
    metric_names,
    operating_threshold,
    predicted_labels,
    regression_metrics,
    score,
)


def binary_proba(p1: list[float]) -> np.ndarray:
    p = np.asarray(p1, dtype=float)
    return np.column_stack([1 - p, p])


def test_binary_classification_known_answer() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    # predictions at 0.5: [0, 1, 0, 1, 0, 1] -> TP 2, FP 1, FN 1, TN 2
    m = classification_metrics(y, binary_proba([0.1, 0.6, 0.3, 0.7, 0.4, 0.9]))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC: positives .7, .4, .9 against negatives .1, .6, .3 -> 3 + 2 + 3 of 9 pairs ordered correctly
    assert m["roc_auc"] == pytest.approx(8 / 9)
    assert set(m) == set(CLASSIFICATION_METRICS)


def test_binary_precision_and_recall_are_for_class_one() -> None:
    y = np.array([1, 1, 1, 1, 0])
    # predicted [1, 0, 0, 0, 1]: TP 1, FP 1, FN 3
    m = classification_metrics(y, binary_proba([0.9, 0.2, 0.3, 0.1, 0.8]))
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["recall"] == pytest.approx(1 / 4)
    assert m["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert m["accuracy"] == pytest.approx(1 / 5)


def test_a_score_of_exactly_one_half_is_the_negative_class() -> None:
    m = classification_metrics(np.array([1, 0]), binary_proba([0.5, 0.2]))
    assert m["recall"] == 0.0
    assert m["precision"] == 0.0  # no positive predictions: zero_division=0, no warning-as-error
    assert m["accuracy"] == 0.5


def test_multiclass_uses_macro_averages() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4], [0.1, 0.1, 0.8]])
    m = classification_metrics(y, proba)  # predicted [0, 1, 1, 2]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["roc_auc"] == pytest.approx(1.0)  # every class's positives outrank its negatives


def test_roc_auc_is_nan_when_it_is_undefined() -> None:
    assert math.isnan(classification_metrics(np.array([1, 1]), binary_proba([0.7, 0.2]))["roc_auc"])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    assert math.isnan(classification_metrics(np.array([0, 1, 1]), proba)["roc_auc"])  # class 2 absent


def test_regression_known_answer() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["mae"] == pytest.approx(1 / 3)
    assert m["r2"] == pytest.approx(1 - 1 / 2)  # SS_res 1, SS_tot 2
    assert set(m) == set(REGRESSION_METRICS)
    single = regression_metrics(np.array([2.0]), np.array([3.5]))
    assert math.isnan(single["r2"]) and single["rmse"] == pytest.approx(1.5) and single["mae"] == pytest.approx(1.5)


def test_encode_labels() -> None:
    assert encode_labels(["b", "a", "b"], ["a", "b"]).tolist() == [1, 0, 1]
    assert encode_labels([1.0, 0.0], [0, 1]).tolist() == [1, 0]  # 1.0 == 1
    assert encode_labels([], [0, 1]).tolist() == []
    with pytest.raises(DataValidationError, match=r"label value 'z' is not one of the model's classes \['a', 'b'\]"):
        encode_labels(["a", "z"], ["a", "b"])


def test_error_rate_and_metric_names() -> None:
    assert error_rate({"accuracy": 0.8}, "binary") == pytest.approx(0.2)
    assert error_rate({"accuracy": 0.8}, "multiclass") == pytest.approx(0.2)
    assert error_rate({"rmse": 3.5, "r2": 0.1}, "regression") == 3.5
    assert metric_names("regression") == ("r2", "rmse", "mae")
    assert metric_names("binary") == metric_names("multiclass") == CLASSIFICATION_METRICS
    assert not HIGHER_IS_BETTER["rmse"] and not HIGHER_IS_BETTER["mae"] and HIGHER_IS_BETTER["roc_auc"]


def test_clean_rounds_and_turns_nan_into_none() -> None:
    assert clean({"a": 0.123456789, "b": math.nan, "c": None, "d": np.float64(1.0), "e": 2}) == {
        "a": 0.123457, "b": None, "c": None, "d": 1.0, "e": 2.0,
    }
    assert type(clean({"d": np.float64(0.5)})["d"]) is float


class FixedModel:
    """A stand-in estimator whose outputs are fixed, to check which method ``score`` uses."""

    def __init__(self, proba: np.ndarray | None = None, pred: np.ndarray | None = None) -> None:
        self.proba, self.pred = proba, pred

    def predict_proba(self, features: object) -> np.ndarray:
        assert self.proba is not None
        return self.proba

    def predict(self, features: object) -> np.ndarray:
        assert self.pred is not None
        return self.pred


def test_score_uses_predict_proba_for_classifiers_and_predict_for_regression() -> None:
    y = np.array([0, 1, 1])
    m = score(FixedModel(proba=binary_proba([0.2, 0.9, 0.4])), None, y, "binary")
    assert m["accuracy"] == pytest.approx(2 / 3) and m["roc_auc"] == pytest.approx(1.0)
    r = score(FixedModel(pred=np.array([1.0, 2.0, 4.0])), None, np.array([1.0, 2.0, 3.0]), "regression")
    assert r["mae"] == pytest.approx(1 / 3)


def test_bootstrap_se_of_accuracy_is_the_binomial_standard_error() -> None:
    from include.retraining.metrics import bootstrap_se

    rng = np.random.default_rng(3)
    n = 2000
    y = rng.integers(0, 2, n)
    right = rng.random(n) < 0.8  # an 80 %-accurate classifier
    pred = np.where(right, y, 1 - y)
    proba = np.column_stack([1 - pred, pred]).astype(float)
    se = bootstrap_se(y, proba, "binary", "accuracy", resamples=400, seed=1)
    assert se == pytest.approx(math.sqrt(0.8 * 0.2 / n), rel=0.15)
    # above max_rows: measured on a subset and scaled, about the same
    assert bootstrap_se(y, proba, "binary", "accuracy", resamples=400, seed=1, max_rows=500) == pytest.approx(se, rel=0.25)
    assert bootstrap_se(y[:10], proba[:10], "binary", "accuracy") is None


# --- threshold-free losses and each model's own operating threshold ---------------------------------


def test_log_loss_and_brier_match_sklearn_and_are_lower_is_better() -> None:
    from sklearn.metrics import brier_score_loss
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p = rng.random(400)
    m = classification_metrics(y, binary_proba(p))
    assert m["log_loss"] == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert HIGHER_IS_BETTER["log_loss"] is False and HIGHER_IS_BETTER["brier"] is False
    # multiclass Brier: mean over rows of the squared distance to the one-hot truth (a perfect model: 0)
    y3 = np.array([0, 1, 2])
    proba = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    assert classification_metrics(y3, proba)["brier"] == pytest.approx((0.5 + 0.0 + 0.375) / 3)
    assert classification_metrics(y3, np.eye(3))["brier"] == 0.0
    assert classification_metrics(y3, proba)["log_loss"] == pytest.approx(-(np.log(0.5) + 0 + np.log(0.5)) / 3)


def test_threshold_metrics_at_a_given_operating_threshold() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    proba = binary_proba([0.1, 0.25, 0.3, 0.35, 0.4, 0.45])  # nothing above 0.5: recall 0 at the default cut
    assert classification_metrics(y, proba)["recall"] == 0.0
    m = classification_metrics(y, proba, threshold=0.325)
    assert (m["precision"], m["recall"], m["accuracy"]) == (1.0, 1.0, 1.0)
    assert m["roc_auc"] == classification_metrics(y, proba)["roc_auc"] == 1.0  # threshold-free: unchanged
    # a threshold of 0.5 is the argmax (a score of exactly 0.5 is negative)
    half = binary_proba([0.5, 0.6])
    assert list(predicted_labels(half, 0.5)) == list(predicted_labels(half)) == [0, 1]


def test_operating_threshold_maximises_f1_on_known_rows() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6])
    t = operating_threshold(y, p, "max_f1")
    # the best cut predicts the rows scored >= 0.35 positive: TP 4, FP 1, F1 8/9; halfway between 0.3 and 0.35
    assert t == pytest.approx(0.325)
    assert classification_metrics(y, binary_proba(p), t)["f1"] == pytest.approx(8 / 9)
    # balanced accuracy (Youden's J) picks the same cut here
    assert operating_threshold(y, p, "max_balanced_accuracy") == pytest.approx(0.325)
    assert operating_threshold(y, p, "fixed") == 0.5
    assert operating_threshold(np.zeros(5), p[:5]) == 0.5  # one class only: nothing to choose from
    with pytest.raises(ValueError, match="unknown operating point 'best'"):
        operating_threshold(y, p, "best")
