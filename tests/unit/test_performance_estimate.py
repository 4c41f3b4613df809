"""Label-free performance estimates: hand-worked expected confusion counts, then statistical
behaviour on synthetic data whose true ``P(y | x)`` is known (fixed seeds, real scikit-learn)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from include.retraining.metrics import classification_metrics
from include.retraining.monitoring.performance_estimate import (
    ESTIMATED_METRICS,
    calibrate,
    estimate,
    estimated_drop,
    expected_metrics,
    fit_calibration,
    standard_error,
)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def binary_proba(p1: np.ndarray | list[float]) -> np.ndarray:
    p = np.asarray(p1, dtype=float)
    return np.column_stack([1 - p, p])


def overconfident_sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """True ``P(y=1) = sigmoid(z)``; the model says ``sigmoid(2 z)``: right ranking, too sure of itself."""
    z = rng.normal(0.3, 1.5, n)
    y = (rng.uniform(size=n) < sigmoid(z)).astype(int)
    return binary_proba(sigmoid(2 * z)), y


# The true concept for the covariate-shift tests: P(y=1 | x) = sigmoid(x @ W + B), the same in every window.
W = np.array([1.5, -1.0])
B = 0.2
REFERENCE_MEAN = (1.0, -1.0)
SHIFTED_MEAN = (0.0, 0.0)  # closer to the decision boundary: same concept, harder rows


def logistic_window(rng: np.random.Generator, n: int, mean: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(mean, 1.0, (n, 2))
    y = (rng.uniform(size=n) < sigmoid(x @ W + B)).astype(int)
    return x, y


# --- known answers -------------------------------------------------------------------------------


def test_binary_expected_metrics_known_answer() -> None:
    raw = binary_proba([0.9, 0.8, 0.3, 0.2])
    # predictions [1, 1, 0, 0]; chance each is right: .9, .8, .7, .8
    m = expected_metrics(raw, raw)
    assert m["accuracy"] == pytest.approx(3.2 / 4)
    # class 1: TP = .9 + .8, FP = .1 + .2, FN = .3 + .2
    assert m["precision"] == pytest.approx(1.7 / 2.0)
    assert m["recall"] == pytest.approx(1.7 / 2.2)
    assert m["f1"] == pytest.approx(3.4 / (3.4 + 0.3 + 0.5))
    assert m["rows"] == 4
    assert standard_error(raw, raw) == pytest.approx(np.sqrt(0.09 + 0.16 + 0.21 + 0.16) / 4)


def test_prediction_is_the_raw_argmax_not_the_calibrated_one() -> None:
    raw = binary_proba([0.55, 0.3])
    calibrated = binary_proba([0.4, 0.3])
    # the model serves class 1 for row 0 (raw .55), which calibration says is right 40% of the time
    m = expected_metrics(raw, calibrated)
    assert m["accuracy"] == pytest.approx((0.4 + 0.7) / 2)
    # class 1: TP .4, FP .6, FN .3
    assert m["precision"] == pytest.approx(0.4)
    assert m["recall"] == pytest.approx(0.4 / 0.7)
    assert m["f1"] == pytest.approx(0.8 / (0.8 + 0.6 + 0.3))


def test_multiclass_expected_metrics_are_macro_averages() -> None:
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    m = expected_metrics(p, p)  # predictions [0, 1, 2]
    assert m["accuracy"] == pytest.approx((0.6 + 0.5 + 0.7) / 3)
    # per class (TP, FP, FN): 0 -> (.6, .4, .3); 1 -> (.5, .5, .5); 2 -> (.7, .3, .4)
    assert m["precision"] == pytest.approx((0.6 + 0.5 + 0.7) / 3)
    assert m["recall"] == pytest.approx((0.6 / 0.9 + 0.5 / 1.0 + 0.7 / 1.1) / 3)
    assert m["f1"] == pytest.approx((1.2 / 1.9 + 1.0 / 2.0 + 1.4 / 2.1) / 3)


def test_calibrate_applies_the_curves_clips_and_renormalises() -> None:
    binary = {"method": "isotonic", "classes": 2, "rows": 100, "curves": [{"x": [0.2, 0.8], "y": [0.1, 0.9]}]}
    out = calibrate(binary, binary_proba([0.1, 0.5, 0.65, 0.95]))
    np.testing.assert_allclose(out[:, 1], [0.1, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(out[:, 0], 1 - out[:, 1])

    three = {
        "method": "isotonic",
        "classes": 3,
        "rows": 100,
        "curves": [
            {"x": [0.0, 1.0], "y": [0.0, 1.0]},
            {"x": [0.0, 1.0], "y": [0.0, 0.5]},
            {"x": [0.0, 1.0], "y": [0.0, 1.0]},
        ],
    }
    np.testing.assert_allclose(calibrate(three, np.array([[0.2, 0.4, 0.4]])), [[0.25, 0.25, 0.5]])
    # every curve at 0 below x = .5: a row calibrated to all zeros keeps its raw probabilities
    zero_below_half = {**three, "curves": [{"x": [0.5, 1.0], "y": [0.0, 1.0]}] * 3}
    np.testing.assert_allclose(calibrate(zero_below_half, np.array([[0.3, 0.3, 0.4]])), [[0.3, 0.3, 0.4]])


def test_estimated_drop_is_reference_minus_current() -> None:
    assert estimated_drop({"accuracy": 0.8, "f1": 0.7}, {"accuracy": 0.9, "f1": 0.6}, "accuracy") == pytest.approx(0.1)
    assert estimated_drop({"accuracy": 0.8, "f1": 0.7}, {"accuracy": 0.9, "f1": 0.6}, "f1") == pytest.approx(-0.1)


def test_unfitted_curve_matches_sklearn_isotonic_predict() -> None:
    proba, y = overconfident_sample(np.random.default_rng(10), 3000)
    cal = fit_calibration(y, proba, max_points=100_000)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(proba[:, 1], y)
    grid = np.linspace(-0.1, 1.1, 501)
    np.testing.assert_allclose(calibrate(cal, binary_proba(grid))[:, 1], iso.predict(grid), atol=1e-12)
    assert set(cal) == {"method", "classes", "rows", "curves"}
    assert (cal["method"], cal["classes"], cal["rows"], len(cal["curves"])) == ("isotonic", 2, 3000, 1)


# --- statistical behaviour -----------------------------------------------------------------------


def test_calibration_of_a_calibrated_model_is_near_identity() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=20_000) < p).astype(int)
    cal = fit_calibration(y, binary_proba(p))
    grid = np.linspace(0.05, 0.95, 19)
    deviation = np.abs(calibrate(cal, binary_proba(grid))[:, 1] - grid)
    assert deviation.max() < 0.06  # measured 0.041
    assert deviation.mean() < 0.025  # measured 0.016
    curve = cal["curves"][0]
    assert np.all(np.diff(curve["x"]) > 0) and np.all(np.diff(curve["y"]) >= 0)
    assert min(curve["y"]) >= 0 and max(curve["y"]) <= 1


def test_calibration_repairs_an_overconfident_model() -> None:
    rng = np.random.default_rng(1)
    cal = fit_calibration(*overconfident_sample(rng, 10_000)[::-1])
    proba, y = overconfident_sample(rng, 20_000)
    realised = classification_metrics(y, proba)
    estimated = estimate(cal, proba)
    naive = expected_metrics(proba, proba)
    for metric in ("accuracy", "f1"):
        assert estimated[metric] == pytest.approx(realised[metric], abs=0.015)
        assert abs(naive[metric] - realised[metric]) > 0.05  # raw confidence overstates it by ~0.09


def test_estimate_tracks_accuracy_drop_under_covariate_shift() -> None:
    """Inputs move toward the boundary, P(y | x) stays: accuracy really drops, the estimate sees it without labels."""
    rng = np.random.default_rng(2)
    model = LogisticRegression().fit(*logistic_window(rng, 5_000, REFERENCE_MEAN))
    x_val, y_val = logistic_window(rng, 20_000, REFERENCE_MEAN)
    cal = fit_calibration(y_val, model.predict_proba(x_val))
    x_ref, y_ref = logistic_window(rng, 20_000, REFERENCE_MEAN)
    x_new, y_new = logistic_window(rng, 20_000, SHIFTED_MEAN)
    ref_est, new_est = estimate(cal, model.predict_proba(x_ref)), estimate(cal, model.predict_proba(x_new))
    ref_real = classification_metrics(y_ref, model.predict_proba(x_ref))
    new_real = classification_metrics(y_new, model.predict_proba(x_new))
    for metric in ("accuracy", "f1"):
        realised_drop = ref_real[metric] - new_real[metric]
        assert realised_drop > 0.08  # the shift really hurts
        assert ref_est[metric] == pytest.approx(ref_real[metric], abs=0.02)
        assert new_est[metric] == pytest.approx(new_real[metric], abs=0.02)
        assert estimated_drop(new_est, ref_est, metric) == pytest.approx(realised_drop, abs=0.02)
    # the drop is far beyond row-level noise
    se = np.hypot(ref_est["accuracy_se"], new_est["accuracy_se"])
    assert estimated_drop(new_est, ref_est, "accuracy") > 10 * se


def test_gradient_boosting_under_covariate_shift() -> None:
    """A model whose raw scores are off: calibration brings the shifted estimate within a few points."""
    rng = np.random.default_rng(2)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0)
    model.fit(*logistic_window(rng, 5_000, REFERENCE_MEAN))
    x_val, y_val = logistic_window(rng, 20_000, REFERENCE_MEAN)
    cal = fit_calibration(y_val, model.predict_proba(x_val))
    x_new, y_new = logistic_window(rng, 20_000, SHIFTED_MEAN)
    proba = model.predict_proba(x_new)
    realised = classification_metrics(y_new, proba)
    estimated = estimate(cal, proba)
    naive = expected_metrics(proba, proba)
    # the trees' scores are not a sufficient summary of P(y | x), so P(y | score) moves a little with
    # the shift (the module's stated assumption holds only approximately): a wider tolerance
    assert estimated["accuracy"] == pytest.approx(realised["accuracy"], abs=0.03)
    assert estimated["f1"] == pytest.approx(realised["f1"], abs=0.03)
    assert abs(estimated["accuracy"] - realised["accuracy"]) < abs(naive["accuracy"] - realised["accuracy"])


def test_concept_drift_is_invisible_without_labels() -> None:
    """The stated limit: when P(y | x) changes, the inputs and the scores look the same, and so does the estimate."""
    rng = np.random.default_rng(5)
    model = LogisticRegression().fit(*logistic_window(rng, 5_000, REFERENCE_MEAN))
    x_val, y_val = logistic_window(rng, 10_000, REFERENCE_MEAN)
    cal = fit_calibration(y_val, model.predict_proba(x_val))
    x_new, y_new = logistic_window(rng, 20_000, REFERENCE_MEAN)
    flipped = np.where(rng.uniform(size=len(y_new)) < 0.3, 1 - y_new, y_new)  # 30% of labels now mean the opposite
    proba = model.predict_proba(x_new)
    estimated = estimate(cal, proba)
    assert estimated["accuracy"] == pytest.approx(classification_metrics(y_new, proba)["accuracy"], abs=0.02)
    assert classification_metrics(flipped, proba)["accuracy"] < estimated["accuracy"] - 0.15


def test_multiclass_macro_f1_estimate() -> None:
    rng = np.random.default_rng(3)
    weights = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])

    def window(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0.0, 1.0, (n, 2))
        logits = x @ weights.T
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return x, (rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)

    def overconfident(p: np.ndarray) -> np.ndarray:  # temperature 1/3: same argmax, far too sure
        e = p**3
        return e / e.sum(axis=1, keepdims=True)

    model = LogisticRegression().fit(*window(5_000))
    x_val, y_val = window(10_000)
    cal = fit_calibration(y_val, overconfident(model.predict_proba(x_val)))
    assert len(cal["curves"]) == 3
    x_new, y_new = window(20_000)
    proba = overconfident(model.predict_proba(x_new))
    realised = classification_metrics(y_new, proba)
    estimated = estimate(cal, proba)
    naive = expected_metrics(proba, proba)
    np.testing.assert_allclose(calibrate(cal, proba).sum(axis=1), 1.0)
    for metric in ESTIMATED_METRICS:
        assert estimated[metric] == pytest.approx(realised[metric], abs=0.02)
        assert abs(naive[metric] - realised[metric]) > 0.1


def test_standard_error_matches_the_spread_of_realised_accuracy() -> None:
    """With calibrated probabilities known, realised accuracy over many label draws spreads by ``accuracy_se``."""
    rng = np.random.default_rng(6)
    p = rng.uniform(size=2_000)
    proba = binary_proba(p)
    predicted_right = np.where(p > 0.5, p, 1 - p)
    draws = (rng.uniform(size=(400, len(p))) < predicted_right).mean(axis=1)
    se = standard_error(proba, proba)
    assert draws.mean() == pytest.approx(expected_metrics(proba, proba)["accuracy"], abs=3 * se / np.sqrt(400) + 1e-3)
    assert draws.std() == pytest.approx(se, rel=0.15)


# --- storage ------------------------------------------------------------------------------------


def test_json_round_trip_gives_identical_estimates() -> None:
    rng = np.random.default_rng(7)
    cal = fit_calibration(*overconfident_sample(rng, 5_000)[::-1])
    stored = json.loads(json.dumps(cal))
    assert stored == cal
    proba, _ = overconfident_sample(rng, 5_000)
    assert estimate(stored, proba) == estimate(cal, proba)


def test_thinning_keeps_few_points_ends_and_values() -> None:
    rng = np.random.default_rng(4)
    proba_val, y_val = overconfident_sample(rng, 20_000)
    full = fit_calibration(y_val, proba_val, max_points=100_000)
    thin = fit_calibration(y_val, proba_val, max_points=20)
    fx, fy = full["curves"][0]["x"], full["curves"][0]["y"]
    tx, ty = thin["curves"][0]["x"], thin["curves"][0]["y"]
    assert len(fx) > 60 and len(tx) == 20
    assert (tx[0], ty[0], tx[-1], ty[-1]) == (fx[0], fy[0], fx[-1], fy[-1])
    assert set(zip(tx, ty, strict=True)) <= set(zip(fx, fy, strict=True))
    assert np.all(np.diff(tx) > 0) and np.all(np.diff(ty) >= 0)
    proba, _ = overconfident_sample(rng, 20_000)
    assert np.abs(calibrate(full, proba) - calibrate(thin, proba)).max() < 0.05  # measured 0.036
    for metric in ("accuracy", "f1"):
        assert estimate(thin, proba)[metric] == pytest.approx(estimate(full, proba)[metric], abs=0.003)
    two = fit_calibration(y_val, proba_val, max_points=2)["curves"][0]
    assert (two["x"], two["y"]) == ([fx[0], fx[-1]], [fy[0], fy[-1]])


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "proba", "message"),
    [
        (np.zeros(99, int), binary_proba(np.full(100, 0.5)), r"y_true has shape \(99,\) but proba has 100 rows"),
        (np.zeros(100, int), np.full(100, 0.5), "must be a 2-D"),
        (np.zeros(100, int), np.ones((100, 1)), "at least 2 classes"),
        (np.r_[np.zeros(98, int), 2, 3], binary_proba(np.full(100, 0.5)), r"labels \[2, 3\] outside 0..1"),
        (np.full(100, 0.5), binary_proba(np.full(100, 0.5)), "integer class indices"),
        (np.zeros(49, int), binary_proba(np.full(49, 0.5)), "at least 50 held-out rows, got 49"),
        (np.zeros(100, int), binary_proba(np.r_[np.full(99, 0.5), np.nan]), "1 row.* NaN"),
    ],
)
def test_fit_calibration_rejects_bad_input(y: np.ndarray, proba: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_calibration(y, proba)


def test_other_errors_name_the_problem() -> None:
    cal = fit_calibration(np.tile([0, 1], 50), binary_proba(np.tile([0.3, 0.7], 50)))
    with pytest.raises(ValueError, match="max_points must be at least 2"):
        fit_calibration(np.tile([0, 1], 50), binary_proba(np.tile([0.3, 0.7], 50)), max_points=1)
    with pytest.raises(ValueError, match="proba has 3 columns but the calibration was fitted for 2 classes"):
        calibrate(cal, np.full((4, 3), 1 / 3))
    with pytest.raises(ValueError, match="NaN"):
        estimate(cal, binary_proba([0.2, np.nan]))
    with pytest.raises(ValueError, match="no rows"):
        estimate(cal, np.empty((0, 2)))
    with pytest.raises(ValueError, match=r"raw_proba has shape \(2, 2\) but calibrated has \(3, 2\)"):
        expected_metrics(binary_proba([0.2, 0.3]), binary_proba([0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="unknown calibration method 'platt'"):
        calibrate({**cal, "method": "platt"}, binary_proba([0.2]))
    with pytest.raises(ValueError, match="unknown metric 'roc_auc': estimated metrics are accuracy, precision"):
        estimated_drop({"accuracy": 0.8}, {"accuracy": 0.9}, "roc_auc")
    with pytest.raises(ValueError, match="reference_estimate has no 'f1'"):
        estimated_drop({"f1": 0.8}, {"accuracy": 0.9}, "f1")
