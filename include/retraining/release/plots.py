"""Figures for a reviewer: the champion and the candidate side by side, on the same held-out rows.

Classification (:func:`classification_figures`): confusion matrices as two panels with
the counts written in the cells and one colour scale for both; ROC curves of both models
on one axes with the AUC in the legend; precision-recall curves with the average
precision in the legend. For more than two classes the ROC curve is the one-vs-rest
macro average (each class's true-positive rate interpolated on a common false-positive
grid and averaged; the legend gives the macro AUC, as :mod:`.metrics` computes it) and the
precision-recall curve is the micro average over the one-vs-rest problems.

Regression (:func:`regression_figures`): residuals (actual - predicted) against the
prediction, and predicted against actual with the identity line, one panel per model on
shared axes. Scatter plots show at most ``max_points`` rows, the same rows for both models.

Without a champion (the first model) only the candidate is drawn. Figures are built with
matplotlib's object API on an Agg canvas, not through pyplot: nothing is displayed, the
process's backend is left alone, and the figures live only as long as the caller holds
them. :func:`save_figures` writes them as PNG files and closes them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics import encode_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

DPI = 110
PANEL_SIZE = (5.2, 4.6)  # inches per panel
CANDIDATE_COLOR = "tab:blue"
CHAMPION_COLOR = "tab:orange"
MAX_POINTS = 5000


def classification_figures(
    y_true: Any,
    proba_candidate: Any,
    proba_champion: Any | None,
    classes: Sequence[Any],
    *,
    candidate_label: str = "candidate",
    champion_label: str = "champion",
) -> dict[str, Figure]:
    """Confusion matrices, ROC and precision-recall curves; ``y_true`` as class indices (or labels from ``classes``)."""
    k = len(classes)
    if k < 2:
        raise ValueError(f"a classifier needs at least two classes, got {list(classes)}")
    y = _class_indices(y_true, classes)
    models = [(candidate_label, _proba(proba_candidate, k, len(y)), CANDIDATE_COLOR)]
    if proba_champion is not None:
        models.append((champion_label, _proba(proba_champion, k, len(y)), CHAMPION_COLOR))
    names = [str(c) for c in classes]
    return {
        "confusion_matrices": _confusion_figure(y, models, names),
        "roc_curves": _roc_figure(y, models, k),
        "precision_recall_curves": _pr_figure(y, models, k),
    }


def regression_figures(
    y_true: Any,
    pred_candidate: Any,
    pred_champion: Any | None,
    *,
    candidate_label: str = "candidate",
    champion_label: str = "champion",
    max_points: int = MAX_POINTS,
) -> dict[str, Figure]:
    """Residuals against prediction and predicted against actual, one panel per model."""
    y = _vector(y_true, "y_true")
    if y.size == 0:
        raise ValueError("regression_figures needs at least one row")
    models = [(candidate_label, _vector(pred_candidate, "pred_candidate", len(y)), CANDIDATE_COLOR)]
    if pred_champion is not None:
        models.append((champion_label, _vector(pred_champion, "pred_champion", len(y)), CHAMPION_COLOR))
    shown = _sample(len(y), max_points)
    note = f" ({len(shown):,} of {len(y):,} rows shown)" if len(shown) < len(y) else ""

    residuals, axes = _figure(len(models), sharex=True, sharey=True)
    for ax, (label, pred, color) in zip(axes, models, strict=True):
        err = y - pred
        ax.scatter(pred[shown], err[shown], s=6, alpha=0.4, color=color, edgecolors="none")
        ax.axhline(0.0, color="black", linewidth=1)
        ax.set_title(f"{label}\nRMSE {np.sqrt(np.mean(err**2)):.4g}, MAE {np.mean(np.abs(err)):.4g}")
        ax.set_xlabel("predicted")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("residual (actual - predicted)")
    residuals.suptitle("Residuals" + note)

    versus, axes = _figure(len(models), sharex=True, sharey=True)
    everything = np.concatenate([y] + [pred for _, pred, _ in models])
    low, high = float(everything.min()), float(everything.max())
    for ax, (label, pred, color) in zip(axes, models, strict=True):
        ax.scatter(y[shown], pred[shown], s=6, alpha=0.4, color=color, edgecolors="none")
        ax.plot([low, high], [low, high], color="black", linewidth=1, linestyle="--", label="predicted = actual")
        ax.set_title(f"{label}\nR2 {_r2(y, pred):.4f}")
        ax.set_xlabel("actual")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("predicted")
    versus.suptitle("Predicted against actual" + note)
    return {"residuals": residuals, "predicted_vs_actual": versus}


def save_figures(figures: Mapping[str, Figure], folder: str | Path) -> list[Path]:
    """Write each figure to ``folder/<name>.png`` at 110 dpi and close it; the paths in the mapping's order."""
    import matplotlib.pyplot as plt

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    try:
        for name, fig in figures.items():
            path = out / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('._') or 'figure'}.png"
            fig.savefig(path, dpi=DPI, format="png")
            paths.append(path)
    finally:
        for fig in figures.values():
            plt.close(fig)  # releases a figure pyplot manages; harmless for one built here
    log.info("saved %d figure(s) to %s", len(paths), out)
    return paths


# --- classification panels -------------------------------------------------------------------


def _confusion_figure(y: np.ndarray, models: list[tuple[str, np.ndarray, str]], names: list[str]) -> Figure:
    k = len(names)
    matrices = [np.bincount(k * y + proba.argmax(axis=1), minlength=k * k).reshape(k, k) for _, proba, _ in models]
    top = max(1, max(int(m.max()) for m in matrices))
    fig, axes = _figure(len(models))
    size = max(6, 12 - k // 2)
    for ax, (label, _, _), matrix in zip(axes, models, matrices, strict=True):
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=top)
        for (row, col), count in np.ndenumerate(matrix):
            ax.text(col, row, f"{count:,}", ha="center", va="center", fontsize=size,
                    color="white" if count > top / 2 else "black")
        ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        accuracy = np.trace(matrix) / max(1, matrix.sum())
        ax.set_title(f"{label}\naccuracy {accuracy:.3f}")
    fig.suptitle("Confusion matrices")
    return fig


def _roc_figure(y: np.ndarray, models: list[tuple[str, np.ndarray, str]], k: int) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, (ax,) = _figure(1)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle=":", label="chance")
    drawn = False
    for label, proba, color in models:
        if k == 2:
            if len(np.unique(y)) < 2:
                continue
            fpr, tpr, _ = roc_curve(y == 1, proba[:, 1])
            auc = roc_auc_score(y == 1, proba[:, 1])
        else:
            present = [c for c in range(k) if 0 < np.count_nonzero(y == c) < len(y)]
            if not present:
                continue
            curves = [roc_curve(y == c, proba[:, c])[:2] for c in present]
            fpr = np.unique(np.concatenate([f for f, _ in curves]))
            tpr = np.mean([np.interp(fpr, f, t) for f, t in curves], axis=0)
            auc = float(np.mean([roc_auc_score(y == c, proba[:, c]) for c in present]))
        ax.plot(fpr, tpr, color=color, linewidth=2, label=f"{label} (AUC {auc:.3f})")
        drawn = True
    if not drawn:
        _undefined(ax, "ROC undefined: y_true holds one class only")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_title("ROC curves" if k == 2 else "ROC curves (one-vs-rest, macro average)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def _pr_figure(y: np.ndarray, models: list[tuple[str, np.ndarray, str]], k: int) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    truth = (y == 1) if k == 2 else np.eye(k, dtype=bool)[y]
    fig, (ax,) = _figure(1)
    if not truth.any():
        _undefined(ax, "precision-recall undefined: no positive rows")
    else:
        ax.axhline(truth.mean(), color="grey", linewidth=1, linestyle=":", label=f"chance ({truth.mean():.3f})")
        for label, proba, color in models:
            scores = proba[:, 1] if k == 2 else proba
            precision, recall, _ = precision_recall_curve(truth.ravel(), scores.ravel())
            ap = average_precision_score(truth, scores, average="micro")
            ax.plot(recall, precision, color=color, linewidth=2, drawstyle="steps-post",
                    label=f"{label} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_title("Precision-recall curves" if k == 2 else "Precision-recall curves (one-vs-rest, micro average)")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return fig


# --- helpers --------------------------------------------------------------------------------------


def _figure(panels: int, *, sharex: bool = False, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    """A figure with ``panels`` axes side by side, on an Agg canvas (no display, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(PANEL_SIZE[0] * panels, PANEL_SIZE[1]), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, sharex=sharex, sharey=sharey, squeeze=False)[0]
    return fig, list(axes)


def _undefined(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")


def _class_indices(y_true: Any, classes: Sequence[Any]) -> np.ndarray:
    """Class indices ``0..k-1``; values that are not numbers are looked up in ``classes``."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        return encode_labels(list(y), classes)
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or np.any(y != np.round(y))):
        raise ValueError("y_true must hold class indices 0..k-1 (see metrics.encode_labels)")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise ValueError(f"y_true must hold class indices 0..{len(classes) - 1} (see metrics.encode_labels)")
    return y


def _proba(values: Any, k: int, rows: int) -> np.ndarray:
    """A ``(rows, k)`` probability matrix; a 1-D vector is read as P(class 1) of a binary model."""
    p = np.asarray(values, dtype=float)
    if p.ndim == 1 and k == 2:
        p = np.column_stack([1 - p, p])
    if p.shape != (rows, k):
        raise ValueError(f"probabilities must have shape ({rows}, {k}), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinite values")
    return p


def _vector(values: Any, what: str, rows: int | None = None) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or (rows is not None and v.size != rows):
        raise ValueError(f"{what} must be 1-D with {rows if rows is not None else 'any number of'} rows, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return v


def _sample(rows: int, max_points: int) -> np.ndarray:
    """Row positions to draw: all of them, or ``max_points`` of them chosen reproducibly."""
    if rows <= max_points:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, size=max_points, replace=False))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return float("nan") if total == 0 else 1 - float(np.sum((y - pred) ** 2)) / total
