"""Label-free performance estimates for classifiers (confidence-based, as NannyML's CBPE).

Labels for a serving window often arrive days after its predictions, but the drift sensor
wants to know now whether the deployed model got worse. If the model's probabilities were
calibrated, the probability it gives its predicted class would be the chance that the
prediction is right, and the expected accuracy of a window would be the mean of those
probabilities; no label needed. Raw ``predict_proba`` is rarely calibrated (boosted trees
and over-regularised models are over- or under-confident), so:

1. :func:`fit_calibration` learns, on held-out rows whose labels are known (the validation
   split), a monotone map from the model's score to the observed frequency of the class:
   isotonic regression, one curve per class one-vs-rest (binary: class 1 only, class 0 is
   ``1 - p1``). Each curve is the isotonic fit's thresholds, thinned to at most
   ``max_points`` points (those that keep the curve closest to the full one) so that it
   fits in a JSON artifact; between points it is interpolated linearly, as scikit-learn's
   ``IsotonicRegression.predict`` does, and it is clipped at the ends.
2. :func:`calibrate` applies the curves to a window's raw probabilities (multiclass rows
   renormalised to sum to 1).
3. :func:`expected_metrics` turns calibrated probabilities into an expected confusion
   matrix. The prediction stays ``argmax`` of the *raw* probabilities, as the model serves
   it; for each class ``c``: expected ``TP_c`` is the sum of calibrated ``p_c`` over rows
   predicted ``c``, ``FP_c`` the sum of ``1 - p_c`` over those rows, ``FN_c`` the sum of
   ``p_c`` over the other rows. Binary precision/recall/F1 are class 1's; multiclass ones
   are macro averages over all ``k`` classes, as in :mod:`.metrics`.
4. :func:`estimate` does both and adds ``accuracy_se``, the standard error of the expected
   accuracy from row-level noise alone, so a caller can tell a drop from chance;
   :func:`estimated_drop` compares two estimates.

The assumption: the calibration learnt on held-out data stays valid on the new window.
That holds under covariate shift, where the inputs' distribution ``P(x)`` moves but
``P(y | x)`` stays the same, provided the model's score carries what ``x`` says about ``y``
(strictly, ``P(y | score)`` is unchanged; a well-specified model comes close). Rows moving
toward the decision boundary then lower the estimate just as they lower the real accuracy.
It cannot see concept drift, where ``P(y | x)`` itself changes: the model's confidence looks
the same while its answers get worse. Detecting that needs labels. The standard error
ignores the calibration curve's own estimation error, which shrinks with the number of
held-out rows and dominates when the window sits where they were few (for a window shifted
to the decision boundary, about 0.013 of accuracy with 5,000 held-out rows, 0.005 with 20,000).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METHOD = "isotonic"
MIN_CALIBRATION_ROWS = 50
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1")


def _check_proba(proba: np.ndarray, what: str) -> np.ndarray:
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (rows, classes) array, got shape {proba.shape}")
    if proba.shape[1] < 2:
        raise ValueError(f"{what} needs at least 2 classes (columns), got {proba.shape[1]}")
    if proba.shape[0] == 0:
        raise ValueError(f"{what} has no rows")
    bad = ~np.isfinite(proba)
    if bad.any():
        raise ValueError(f"{what} has {int(bad.any(axis=1).sum())} row(s) with NaN or infinite probabilities")
    return proba


def _thin(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` of the curve's points, both ends kept, chosen greedily.

    Starting from the two ends, the point farthest (vertically) from the current
    piecewise-linear curve is added until ``max_points`` are kept or the rest lie on it.
    A subset of a monotone curve stays monotone, and since the error of a piecewise-linear
    approximation is largest at the dropped points, the largest error left bounds the
    change of any calibrated value.
    """
    if len(x) <= max_points:
        return x, y
    keep = np.zeros(len(x), dtype=bool)
    keep[[0, -1]] = True
    for _ in range(max_points - 2):
        err = np.abs(np.interp(x, x[keep], y[keep]) - y)
        err[keep] = 0.0
        worst = int(err.argmax())
        if err[worst] <= 0.0:
            break
        keep[worst] = True
    return x[keep], y[keep]


def fit_calibration(y_true: np.ndarray, proba: np.ndarray, *, max_points: int = 200) -> dict[str, Any]:
    """Isotonic calibration curves, one per class one-vs-rest, fitted on held-out predictions.

    ``y_true`` are class indices ``0..k-1`` and ``proba`` the model's ``(n, k)``
    ``predict_proba`` on the same rows. Binary models get one curve (class 1). The result
    is plain JSON: ``{"method", "classes", "rows", "curves": [{"x": [...], "y": [...]}]}``.
    """
    from sklearn.isotonic import IsotonicRegression

    proba = _check_proba(proba, "proba")
    n, k = proba.shape
    y = np.asarray(y_true)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y_true has shape {y.shape} but proba has {n} rows: need one label per row")
    if n < MIN_CALIBRATION_ROWS:
        raise ValueError(f"calibration needs at least {MIN_CALIBRATION_ROWS} held-out rows, got {n}")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    y_float = y.astype(float)
    if not np.isfinite(y_float).all() or (y_float != np.round(y_float)).any():
        raise ValueError("y_true must hold integer class indices 0..k-1")
    out_of_range = (y_float < 0) | (y_float >= k)
    if out_of_range.any():
        bad = sorted({int(v) for v in y_float[out_of_range]})[:5]
        raise ValueError(f"y_true has labels {bad} outside 0..{k - 1} (proba has {k} columns)")
    labels = y_float.astype(np.int64)

    curves = []
    for c in [1] if k == 2 else range(k):
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(proba[:, c], (labels == c).astype(float))
        x, yc = _thin(np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float), max_points)
        curves.append({"x": [float(v) for v in x], "y": [float(v) for v in yc]})
    return {"method": METHOD, "classes": int(k), "rows": int(n), "curves": curves}


def calibrate(calibration: dict[str, Any], proba: np.ndarray) -> np.ndarray:
    """Calibrated ``(n, k)`` probabilities: the stored curves applied to raw ``proba``.

    Binary gives ``[1 - p, p]``; multiclass rows are renormalised to sum to 1 (a row whose
    calibrated values are all 0 keeps its raw probabilities).
    """
    proba = _check_proba(proba, "proba")
    if calibration.get("method") != METHOD:
        raise ValueError(f"unknown calibration method {calibration.get('method')!r}, expected {METHOD!r}")
    k = int(calibration["classes"])
    curves = calibration["curves"]
    if proba.shape[1] != k:
        raise ValueError(f"proba has {proba.shape[1]} columns but the calibration was fitted for {k} classes")
    if len(curves) != (1 if k == 2 else k):
        raise ValueError(f"calibration for {k} classes has {len(curves)} curves")

    def apply(curve: dict[str, list[float]], p: np.ndarray) -> np.ndarray:
        return np.interp(p, np.asarray(curve["x"], float), np.asarray(curve["y"], float))

    if k == 2:
        p1 = apply(curves[0], proba[:, 1])
        return np.column_stack([1.0 - p1, p1])
    cal = np.column_stack([apply(curve, proba[:, c]) for c, curve in enumerate(curves)])
    sums = cal.sum(axis=1, keepdims=True)
    zero = sums[:, 0] <= 0
    cal[~zero] /= sums[~zero]
    cal[zero] = proba[zero]
    return cal


def _check_pair(raw_proba: np.ndarray, calibrated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    raw = _check_proba(raw_proba, "raw_proba")
    cal = _check_proba(calibrated, "calibrated")
    if raw.shape != cal.shape:
        raise ValueError(f"raw_proba has shape {raw.shape} but calibrated has {cal.shape}: they must match")
    return raw, cal


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def expected_metrics(raw_proba: np.ndarray, calibrated: np.ndarray) -> dict[str, float]:
    """Expected accuracy, precision, recall and F1 of ``argmax(raw_proba)`` given calibrated probabilities."""
    raw, cal = _check_pair(raw_proba, calibrated)
    n, k = raw.shape
    pred = raw.argmax(axis=1)
    accuracy = float(cal[np.arange(n), pred].mean())
    precision, recall, f1 = [], [], []
    for c in [1] if k == 2 else range(k):
        predicted = pred == c
        tp = float(cal[predicted, c].sum())
        fp = float(predicted.sum()) - tp
        fn = float(cal[~predicted, c].sum())
        precision.append(_ratio(tp, tp + fp))
        recall.append(_ratio(tp, tp + fn))
        f1.append(_ratio(2 * tp, 2 * tp + fp + fn))
    return {
        "accuracy": accuracy,
        "precision": float(np.mean(precision)),
        "recall": float(np.mean(recall)),
        "f1": float(np.mean(f1)),
        "rows": float(n),
    }


def standard_error(raw_proba: np.ndarray, calibrated: np.ndarray) -> float:
    """Standard error of the expected accuracy: ``sqrt(sum p(1 - p)) / n``, ``p`` the predicted class's calibrated probability."""
    raw, cal = _check_pair(raw_proba, calibrated)
    n = raw.shape[0]
    p = cal[np.arange(n), raw.argmax(axis=1)]
    return float(math.sqrt(float((p * (1.0 - p)).sum())) / n)


def estimate(calibration: dict[str, Any], raw_proba: np.ndarray) -> dict[str, float]:
    """Estimated accuracy, precision, recall, F1, ``rows`` and ``accuracy_se`` of a window with no labels."""
    raw = _check_proba(raw_proba, "raw_proba")
    cal = calibrate(calibration, raw)
    out = expected_metrics(raw, cal)
    out["accuracy_se"] = standard_error(raw, cal)
    return out


def estimated_drop(estimate: dict[str, float], reference_estimate: dict[str, float], metric: str) -> float:
    """How much worse ``metric`` is estimated to be than on the reference: reference minus current, positive is worse."""
    if metric not in ESTIMATED_METRICS:
        raise ValueError(f"unknown metric {metric!r}: estimated metrics are {', '.join(ESTIMATED_METRICS)}")
    for name, values in (("estimate", estimate), ("reference_estimate", reference_estimate)):
        if metric not in values:
            raise ValueError(f"{name} has no {metric!r}: it has {sorted(values)}")
    return float(reference_estimate[metric]) - float(estimate[metric])
