"""Model metrics per task kind, computed the same way for the champion and the candidate.

Classification labels are class indices ``0..k-1`` (see :func:`encode_labels`); the
model's ``predict_proba`` gives the scores. Binary accuracy/precision/recall/F1 are for class 1
at a threshold: ``p1 > threshold``, 0.5 unless the caller passes the model's own operating
threshold (chosen on its validation rows at training, :func:`operating_threshold`); multiclass
ones are macro averages of the argmax. ROC AUC, log loss and the Brier score need no threshold
(``THRESHOLD_FREE``). Brier: the mean squared error of P(class 1) for a binary model (as
``sklearn.metrics.brier_score_loss``), the mean over rows of the squared distance between the
probability vector and the one-hot truth for a multiclass one. Log loss and Brier are lower-is-better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .config import TaskKind
from .errors import DataValidationError

HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "r2": True,
    "rmse": False,
    "mae": False,
    "log_loss": False,
    "brier": False,
}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier")
THRESHOLD_METRICS = ("accuracy", "precision", "recall", "f1")  # depend on where a binary model cuts
THRESHOLD_FREE = ("roc_auc", "log_loss", "brier")
OPERATING_POINTS = ("max_f1", "max_balanced_accuracy", "fixed")
DEFAULT_THRESHOLD = 0.5
PROBA_EPS = 1e-15  # log loss clips probabilities to [eps, 1 - eps], as scikit-learn did
REGRESSION_METRICS = ("r2", "rmse", "mae")


def metric_names(task: TaskKind) -> tuple[str, ...]:
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


def encode_labels(values: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Map labels to indices of ``classes``; an unknown label is an error naming it."""
    lookup = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if v not in lookup:
            raise DataValidationError(f"label value {v!r} is not one of the model's classes {list(classes)}")
        out[i] = lookup[v]
    return out


def predicted_labels(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class indices: ``p1 > threshold`` for a binary model given a threshold, else the argmax
    (for a binary model the same as ``p1 > 0.5``)."""
    proba = np.asarray(proba, dtype=float)
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] > threshold).astype(np.int64)
    return proba.argmax(axis=1)


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log probability of the true class (probabilities clipped to [1e-15, 1 - 1e-15])."""
    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return math.nan
    p = np.clip(proba[np.arange(len(y)), y], PROBA_EPS, 1 - PROBA_EPS)
    return float(-np.mean(np.log(p)))


def brier(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Brier score: binary, mean (p1 - y)^2; multiclass, mean over rows of sum over classes (p_k - [y = k])^2."""
    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return math.nan
    if proba.shape[1] == 2:
        return float(np.mean((proba[:, 1] - (y == 1)) ** 2))
    return float(np.mean(((proba - np.eye(proba.shape[1])[y]) ** 2).sum(axis=1)))


def operating_threshold(y_true: np.ndarray, p1: np.ndarray, rule: str = "max_f1") -> float:
    """The cut ``p1 > t`` a binary model uses, chosen on its validation rows by ``rule``: ``max_f1`` (the F1 of
    class 1), ``max_balanced_accuracy`` (Youden's J), or ``fixed`` (0.5). Ties between cuts go to the one
    nearest 0.5; with one class only, 0.5. The cut lies halfway between two neighbouring distinct scores."""
    if rule not in OPERATING_POINTS:
        raise ValueError(f"unknown operating point {rule!r}; valid: {list(OPERATING_POINTS)}")
    y = np.asarray(y_true).astype(np.int64) == 1
    p = np.asarray(p1, dtype=float)
    pos = int(y.sum())
    if rule == "fixed" or pos == 0 or pos == len(y):
        return DEFAULT_THRESHOLD
    order = np.argsort(-p, kind="stable")
    sp, sy = p[order], y[order]
    last = np.r_[sp[1:] != sp[:-1], True]  # predicting the first k rows positive: k at the end of a tie group
    tp = np.cumsum(sy)[last].astype(float)
    fp = np.cumsum(~sy)[last].astype(float)
    scores = sp[last]
    value = 2 * tp / (tp + pos + fp) if rule == "max_f1" else tp / pos - fp / (len(y) - pos)
    lower = np.r_[scores[1:], scores[-1] - 1.0]  # the next lower distinct score (below the lowest: all positive)
    cuts = np.clip((scores + lower) / 2, 0.0, 1.0)
    best = np.flatnonzero(value >= value.max() - 1e-12)
    return float(cuts[best[np.argmin(np.abs(cuts[best] - DEFAULT_THRESHOLD))]])


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float | None = None
                           ) -> dict[str, float]:
    """All classification metrics; the threshold ones at ``threshold`` (binary; None: 0.5)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    proba = np.asarray(proba, dtype=float)
    n_classes = proba.shape[1]
    y_pred = predicted_labels(proba, threshold)
    binary = n_classes == 2
    average = "binary" if binary else "macro"
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, average=average, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, average=average, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, average=average, zero_division=0)),
    }
    present = np.unique(y_true)
    if len(present) < 2:
        out["roc_auc"] = math.nan
    elif binary:
        out["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1]))
    elif len(present) == n_classes:
        out["roc_auc"] = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro"))
    else:
        out["roc_auc"] = math.nan
    out["log_loss"] = log_loss(y_true, proba)
    out["brier"] = brier(y_true, proba)
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return {
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else math.nan,
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }


def score(model: Any, features: Any, y: np.ndarray, task: TaskKind, threshold: float | None = None
          ) -> dict[str, float]:
    """All metrics of ``model`` on ``features`` with true labels/targets ``y``."""
    if task == "regression":
        return regression_metrics(y, model.predict(features))
    return classification_metrics(y, model.predict_proba(features), threshold)


def error_rate(metrics: dict[str, float], task: TaskKind) -> float:
    """A loss where larger is worse: 1 - accuracy for classifiers, RMSE for regression."""
    return metrics["rmse"] if task == "regression" else 1.0 - metrics["accuracy"]


def clean(metrics: dict[str, float]) -> dict[str, float | None]:
    """Metrics ready for JSON: NaN becomes None, values rounded to 6 places."""
    return {k: (None if v is None or math.isnan(v) else round(float(v), 6)) for k, v in metrics.items()}


def outputs(model: Any, features: Any, task: TaskKind) -> np.ndarray:
    """What the metrics are computed from: probabilities for classifiers, predictions for regression."""
    return np.asarray(model.predict(features) if task == "regression" else model.predict_proba(features))


def metrics_of(y: np.ndarray, out: np.ndarray, task: TaskKind, threshold: float | None = None) -> dict[str, float]:
    """All metrics from :func:`outputs` (``score`` without calling the model again)."""
    return regression_metrics(y, out) if task == "regression" else classification_metrics(y, out, threshold)


def bootstrap_se(y: np.ndarray, out: np.ndarray, task: TaskKind, metric: str, resamples: int = 100,
                 seed: int = 0, max_rows: int = 20_000) -> float | None:
    """Bootstrap standard error of ``metric`` over the rows (None with fewer than 30 rows).

    Above ``max_rows`` rows the error is measured on a random subset and scaled by
    ``sqrt(subset / rows)``, as the standard error of a mean shrinks.
    """
    y = np.asarray(y)
    n = len(y)
    if n < 30:
        return None
    rng = np.random.default_rng(seed)
    scale = 1.0
    if n > max_rows:
        keep = rng.choice(n, size=max_rows, replace=False)
        y, out, scale = y[keep], out[keep], math.sqrt(max_rows / n)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        value = metrics_of(y[idx], out[idx], task).get(metric)
        if value is not None and not math.isnan(value):
            values.append(value)
    if len(values) < resamples // 2:
        return None
    return float(np.std(values, ddof=1) * scale)
