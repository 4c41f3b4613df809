"""Model metrics per task kind, computed the same way for the champion and the candidate.

Classification labels are class indices ``0..k-1`` (see :func:`encode_labels`); the
model's ``predict_proba`` gives the scores. Binary precision/recall/F1 are for class 1
at a 0.5 threshold; multiclass ones are macro averages.
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
}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
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


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    proba = np.asarray(proba, dtype=float)
    n_classes = proba.shape[1]
    y_pred = proba.argmax(axis=1)
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


def score(model: Any, features: Any, y: np.ndarray, task: TaskKind) -> dict[str, float]:
    """All metrics of ``model`` on ``features`` with true labels/targets ``y``."""
    if task == "regression":
        return regression_metrics(y, model.predict(features))
    return classification_metrics(y, model.predict_proba(features))


def error_rate(metrics: dict[str, float], task: TaskKind) -> float:
    """A loss where larger is worse: 1 - accuracy for classifiers, RMSE for regression."""
    return metrics["rmse"] if task == "regression" else 1.0 - metrics["accuracy"]


def clean(metrics: dict[str, float]) -> dict[str, float | None]:
    """Metrics ready for JSON: NaN becomes None, values rounded to 6 places."""
    return {k: (None if v is None or math.isnan(v) else round(float(v), 6)) for k, v in metrics.items()}


def outputs(model: Any, features: Any, task: TaskKind) -> np.ndarray:
    """What the metrics are computed from: probabilities for classifiers, predictions for regression."""
    return np.asarray(model.predict(features) if task == "regression" else model.predict_proba(features))


def metrics_of(y: np.ndarray, out: np.ndarray, task: TaskKind) -> dict[str, float]:
    """All metrics from :func:`outputs` (``score`` without calling the model again)."""
    return regression_metrics(y, out) if task == "regression" else classification_metrics(y, out)


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
