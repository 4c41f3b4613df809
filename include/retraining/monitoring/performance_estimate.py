"""Label-free performance estimates: classifiers (confidence-based, as NannyML's CBPE) and regressors.

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
   are macro averages over all ``k`` classes, as in :mod:`.metrics`. ROC AUC
   (:func:`expected_roc_auc`) ranks the rows by the raw score and counts, for every pair of
   rows ``i != j``, the chance ``p_i (1 - p_j)`` that ``i`` is a positive and ``j`` a negative
   (a tie counts one half): expected AUC = ``sum_{i != j} p_i (1 - p_j) [s_i > s_j]`` over
   ``sum_{i != j} p_i (1 - p_j)``, the ratio of the expectations of the AUC's numerator and
   denominator, as CBPE's (it differs from the expected ratio by ``O(1/n)``). Sorting on the
   score and cumulative sums make it ``O(n log n)``. Multiclass: the macro average of the
   one-vs-rest AUCs (score ``proba[:, c]``, probability calibrated ``p_c``), as
   scikit-learn's ``multi_class="ovr"``; a class that cannot occur is left out of the average.
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

Regression (:func:`fit_error_profile`, :func:`estimate_regression`) has no probabilities, so the
same idea is carried by the residual ``r = y - prediction``: on the validation rows, whose targets
are known, the model's predictions are cut into bins at their quantiles (at most ``max_bins``,
each with at least ``min_bin_rows`` rows) and each bin keeps the mean of ``r``, of ``r**2`` and of
``|r|``: piecewise-constant curves ``E[r | prediction]``, ``E[r**2 | prediction]`` and
``E[|r| | prediction]``, plain JSON. On a window: estimated MSE is the mean over its rows of the
``r**2`` curve at their predictions (RMSE its square root), MAE the mean of the ``|r|`` curve, and
R2 is ``1 - MSE / Var(y)`` with ``Var(y)`` estimated as ``Var(prediction + bias) + mean(MSE - bias**2)``
(``bias`` the ``E[r | prediction]`` curve; with no bias it is ``Var(prediction) + MSE``).

Its assumption: the distribution of the residual given the prediction stays the same. Then a
covariate shift that moves rows toward predictions where the model errs more (a noisier region, a
region it fits badly) raises the estimated error as it raises the real one. It cannot see concept
drift, where the target's relation to the inputs changes and the same predictions err more, nor
errors in a region of predictions the validation rows never reached: predictions beyond the
validation's range get the end bins' errors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METHOD = "isotonic"
MIN_CALIBRATION_ROWS = 50
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
PROFILE_METHOD = "binned"
REGRESSION_ESTIMATED_METRICS = ("r2", "rmse", "mae")
LOWER_IS_BETTER = ("rmse", "mae")  # as metrics.HIGHER_IS_BETTER (not imported: this module needs NumPy only)


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


def _binary_expected_auc(score: np.ndarray, p: np.ndarray) -> float:
    """Expected AUC of ``score`` when row ``i`` is a positive with probability ``p[i]``; NaN if no pair can be mixed.

    ``sum_{i != j} p_i (1 - p_j) ([s_i > s_j] + [s_i == s_j] / 2)`` over ``sum_{i != j} p_i (1 - p_j)``:
    rows sorted by score and grouped by equal score, each group's positives weigh the negatives of
    the lower groups (a cumulative sum) and half of its own, less the pairs ``i = j``.
    """
    order = np.argsort(score, kind="stable")
    s, pos = score[order], p[order]
    neg = 1.0 - pos
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos_g, neg_g = np.add.reduceat(pos, starts), np.add.reduceat(neg, starts)
    same = float((pos * neg).sum())  # the pairs i = j, counted as ties in their own group
    below = np.cumsum(neg_g) - neg_g
    numerator = float(pos_g @ below) + 0.5 * (float(pos_g @ neg_g) - same)
    denominator = float(pos.sum()) * float(neg.sum()) - same
    return numerator / denominator if denominator > 0 else math.nan


def expected_roc_auc(raw_proba: np.ndarray, calibrated: np.ndarray) -> float:
    """Expected ROC AUC of the raw scores given calibrated probabilities (multiclass: macro one-vs-rest).

    NaN when no class can have both positives and negatives among the rows (every calibrated
    probability 0 or 1 alike); a class that cannot occur is left out of the multiclass average.
    """
    raw, cal = _check_pair(raw_proba, calibrated)
    k = raw.shape[1]
    aucs = [_binary_expected_auc(raw[:, c], cal[:, c]) for c in ([1] if k == 2 else range(k))]
    defined = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(defined)) if defined else math.nan


def expected_metrics(raw_proba: np.ndarray, calibrated: np.ndarray) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1 of ``argmax(raw_proba)`` and ROC AUC of its scores given calibrated probabilities."""
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
        "roc_auc": expected_roc_auc(raw, cal),
        "rows": float(n),
    }


def standard_error(raw_proba: np.ndarray, calibrated: np.ndarray) -> float:
    """Standard error of the expected accuracy: ``sqrt(sum p(1 - p)) / n``, ``p`` the predicted class's calibrated probability."""
    raw, cal = _check_pair(raw_proba, calibrated)
    n = raw.shape[0]
    p = cal[np.arange(n), raw.argmax(axis=1)]
    return float(math.sqrt(float((p * (1.0 - p)).sum())) / n)


def estimate(calibration: dict[str, Any], raw_proba: np.ndarray) -> dict[str, float]:
    """Estimated accuracy, precision, recall, F1, ROC AUC, ``rows`` and ``accuracy_se`` of a window with no labels."""
    raw = _check_proba(raw_proba, "raw_proba")
    cal = calibrate(calibration, raw)
    out = expected_metrics(raw, cal)
    out["accuracy_se"] = standard_error(raw, cal)
    return out


# --- regression -----------------------------------------------------------------------------------


def _check_predictions(y_pred: np.ndarray, what: str) -> np.ndarray:
    pred = np.asarray(y_pred, dtype=float)
    if pred.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of predictions, got shape {pred.shape}")
    if pred.shape[0] == 0:
        raise ValueError(f"{what} has no rows")
    bad = ~np.isfinite(pred)
    if bad.any():
        raise ValueError(f"{what} has {int(bad.sum())} NaN or infinite value(s)")
    return pred


def _bin_edges(pred: np.ndarray, max_bins: int, min_bin_rows: int) -> np.ndarray:
    """Inner edges cutting ``pred`` into at most ``max_bins`` quantile bins of at least ``min_bin_rows`` rows.

    Bin ``b`` holds ``edges[b - 1] <= pred < edges[b]``. Quantile edges that coincide (tied
    predictions) collapse; then the smallest bin is merged with its smaller neighbour until every
    bin is large enough.
    """
    bins = max(1, min(max_bins, len(pred) // min_bin_rows))
    edges = np.unique(np.quantile(pred, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    while len(edges):
        counts = np.bincount(np.searchsorted(edges, pred, side="right"), minlength=len(edges) + 1)
        small = int(counts.argmin())
        if counts[small] >= min_bin_rows:
            break
        if small == 0:
            drop = 0
        elif small == len(counts) - 1 or counts[small - 1] <= counts[small + 1]:
            drop = small - 1
        else:
            drop = small
        edges = np.delete(edges, drop)
    return edges


def fit_error_profile(y_true: np.ndarray, y_pred: np.ndarray, *, max_bins: int = 20,
                      min_bin_rows: int = 30) -> dict[str, Any]:
    """The residual's mean, squared mean and absolute mean per quantile bin of the prediction, on held-out rows.

    The result is plain JSON: ``{"method", "rows", "edges", "bin_rows", "bias", "mse", "mae"}``
    with ``len(edges) + 1`` bins (see :func:`_bin_edges`). Needs ``2 * min_bin_rows`` rows.
    """
    pred = _check_predictions(y_pred, "y_pred")
    y = _check_predictions(y_true, "y_true")
    if len(y) != len(pred):
        raise ValueError(f"y_true has {len(y)} rows but y_pred has {len(pred)}: need one target per prediction")
    if max_bins < 1 or min_bin_rows < 1:
        raise ValueError(f"max_bins and min_bin_rows must be at least 1, got {max_bins} and {min_bin_rows}")
    if len(pred) < 2 * min_bin_rows:
        raise ValueError(f"an error profile needs at least {2 * min_bin_rows} held-out rows, got {len(pred)}")
    edges = _bin_edges(pred, max_bins, min_bin_rows)
    idx = np.searchsorted(edges, pred, side="right")
    residual = y - pred
    counts = np.bincount(idx, minlength=len(edges) + 1)

    def per_bin(values: np.ndarray) -> list[float]:
        return [float(v) for v in np.bincount(idx, weights=values, minlength=len(edges) + 1) / counts]

    return {
        "method": PROFILE_METHOD,
        "rows": int(len(pred)),
        "edges": [float(e) for e in edges],
        "bin_rows": [int(c) for c in counts],
        "bias": per_bin(residual),
        "mse": per_bin(residual**2),
        "mae": per_bin(np.abs(residual)),
    }


def estimate_regression(profile: dict[str, Any], y_pred: np.ndarray) -> dict[str, float]:
    """Estimated MSE, RMSE, MAE, R2 and ``rows`` of a window's predictions with no targets, from an error profile."""
    pred = _check_predictions(y_pred, "y_pred")
    if profile.get("method") != PROFILE_METHOD:
        raise ValueError(f"unknown error profile method {profile.get('method')!r}, expected {PROFILE_METHOD!r}")
    edges = np.asarray(profile["edges"], dtype=float)
    curves = {name: np.asarray(profile[name], dtype=float) for name in ("bias", "mse", "mae")}
    if any(len(c) != len(edges) + 1 for c in curves.values()):
        raise ValueError(f"error profile with {len(edges)} edges needs {len(edges) + 1} values per curve")
    idx = np.searchsorted(edges, pred, side="right")
    bias, sq, ab = curves["bias"][idx], curves["mse"][idx], curves["mae"][idx]
    mse = float(sq.mean())
    # Var(y) = Var(E[y | pred]) + E[Var(y | pred)], with E[y | pred] = pred + bias and Var(y | pred) = mse - bias**2
    var_y = float((pred + bias).var()) + float((sq - bias**2).mean())
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(ab.mean()),
        "r2": 1.0 - mse / var_y if var_y > 0 else math.nan,
        "rows": float(len(pred)),
    }


def estimated_drop(estimate: dict[str, float], reference_estimate: dict[str, float], metric: str) -> float:
    """How much worse ``metric`` is estimated to be than on the reference; positive is worse.

    As for measured metrics: reference minus current where higher is better, the relative increase
    ``(current - reference) / |reference|`` for the errors (RMSE, MAE), where lower is better.
    """
    known = ESTIMATED_METRICS + REGRESSION_ESTIMATED_METRICS
    if metric not in known:
        raise ValueError(f"unknown metric {metric!r}: estimated metrics are {', '.join(known)}")
    for name, values in (("estimate", estimate), ("reference_estimate", reference_estimate)):
        if metric not in values:
            raise ValueError(f"{name} has no {metric!r}: it has {sorted(values)}")
    current, reference = float(estimate[metric]), float(reference_estimate[metric])
    if metric in LOWER_IS_BETTER:
        return (current - reference) / abs(reference or 1.0)
    return reference - current


def regression_excess_error(y_true: np.ndarray, y_pred: np.ndarray, baseline_rmse: float, baseline_rmse_se: float | None,
                            profile: dict[str, Any] | None = None,
                            expected_baseline_rmse: float | None = None) -> dict[str, Any]:
    """How much larger a regressor's RMSE is on a labelled window than at deployment, beyond what its
    error profile expects for the window's predictions, with a one-sided significance test.

    On the log scale, ``excess = log(rmse / expected) - log(baseline_rmse / expected_baseline)``: the
    window's RMSE over the profile's expectation for these rows, against the same ratio on the holdout at
    deployment (without a profile, or without ``expected_baseline_rmse``: ``log(rmse / baseline_rmse)``,
    the raw change). Inputs that move toward predictions where the model always erred more raise the
    expectation with the error and cancel; the target's relation to the inputs changing does not.
    ``error_increase = exp(excess) - 1`` is the relative RMSE increase beyond the expected one.

    Standard errors (delta method on the mean squared residual, the expectation held fixed given the
    predictions): ``se = sd(r**2 - expected r**2) / (2 sqrt(n) mse)`` for the window and
    ``baseline_rmse_se / baseline_rmse`` (the holdout's bootstrap) for the baseline; ``p_value`` is
    ``P(Z >= excess / sqrt(se**2 + se0**2))``, None when a standard error is unknown.
    """
    pred = _check_predictions(y_pred, "y_pred")
    y = _check_predictions(y_true, "y_true")
    if len(y) != len(pred):
        raise ValueError(f"y_true has {len(y)} rows but y_pred has {len(pred)}: need one target per prediction")
    if not baseline_rmse > 0:
        raise ValueError(f"baseline_rmse must be positive, got {baseline_rmse}")
    n = len(y)
    squared = (y - pred) ** 2
    mse = float(squared.mean())
    rmse = math.sqrt(mse)
    expected_rmse = expected_mse = None
    centred = squared
    if profile is not None and expected_baseline_rmse is not None and expected_baseline_rmse > 0:
        edges = np.asarray(profile["edges"], dtype=float)
        curve = np.asarray(profile["mse"], dtype=float)[np.searchsorted(edges, pred, side="right")]
        expected_mse = float(curve.mean())
        if expected_mse > 0:
            expected_rmse = math.sqrt(expected_mse)
            centred = squared - curve
    if expected_rmse is not None and expected_baseline_rmse is not None:
        excess = math.log(rmse / expected_rmse) - math.log(baseline_rmse / expected_baseline_rmse) if rmse > 0 \
            else -math.inf
    else:
        excess = math.log(rmse / baseline_rmse) if rmse > 0 else -math.inf
    se = float(np.std(centred, ddof=1)) / (2.0 * math.sqrt(n) * mse) if n > 1 and mse > 0 else None
    se0 = baseline_rmse_se / baseline_rmse if baseline_rmse_se is not None and baseline_rmse_se >= 0 else None
    p_value = None
    if se is not None and se0 is not None and math.isfinite(excess):
        total = math.hypot(se, se0)
        p_value = 0.5 * math.erfc(excess / total / math.sqrt(2.0)) if total > 0 else (0.0 if excess > 0 else 1.0)
    return {
        "rows": n,
        "rmse": rmse,
        "expected_rmse": expected_rmse,
        "baseline_rmse": float(baseline_rmse),
        "expected_baseline_rmse": None if expected_rmse is None else float(expected_baseline_rmse),
        "excess": excess if math.isfinite(excess) else None,
        "error_increase": math.exp(excess) - 1.0 if math.isfinite(excess) else -1.0,
        "se": se,
        "se0": se0,
        "p_value": p_value,
    }
