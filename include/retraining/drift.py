"""Data drift: a compact reference profile stored with each model, and PSI per feature against it.

When a model is trained, :func:`build_profile` summarises the reference data (the
most recent slice of its training data): quantile bin edges and counts for numeric
features, category frequencies for categorical ones, missing counts and summary
statistics. Each check bins the current window against those edges and computes the
Population Stability Index per feature, so a check never re-reads the training data.

PSI = sum_i (c_i - r_i) * ln(c_i / r_i) over bins, with proportions floored at
``EPSILON`` so that an empty bin does not give an infinite value. Missing values get a
bin of their own, and categories not seen in the reference share one ``__unseen__``
bin, so a change in missing rate or a new category is drift too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

EPSILON = 1e-4
UNSEEN = "__unseen__"
PROFILE_VERSION = 1


def psi(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Population Stability Index of two histograms over the same bins."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape:
        raise ValueError(f"histograms differ in length: {ref.shape} vs {cur.shape}")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("PSI needs at least one value on each side")
    r = np.maximum(ref / ref.sum(), EPSILON)
    c = np.maximum(cur / cur.sum(), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner bin edges at the reference quantiles (duplicates removed, so ties give fewer bins)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(x) for x in np.unique(qs)]


def numeric_histogram(values: np.ndarray, edges: Sequence[float]) -> tuple[list[int], int]:
    """Counts per bin ``(-inf, e1], (e1, e2], ..., (ek, inf)`` and the number of missing values."""
    values = np.asarray(values, dtype=float)
    missing = int(np.isnan(values).sum())
    finite = values[~np.isnan(values)]
    idx = np.searchsorted(np.asarray(edges, dtype=float), finite, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return [int(c) for c in counts], missing


def _categorical_counts(values: pd.Series) -> tuple[dict[str, int], int]:
    missing = int(values.isna().sum())
    counts = values.dropna().astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}, missing


def build_profile(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], bins: int) -> dict[str, Any]:
    """A JSON-serialisable summary of the reference data: everything a drift check needs."""
    profile: dict[str, Any] = {"version": PROFILE_VERSION, "rows": int(len(frame)), "numeric": {}, "categorical": {}}
    for col in numeric:
        values = frame[col].to_numpy(dtype=float)
        edges = quantile_edges(values, bins)
        counts, missing = numeric_histogram(values, edges)
        finite = values[np.isfinite(values)]
        profile["numeric"][col] = {
            "edges": edges,
            "counts": counts,
            "missing": missing,
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
        }
    for col in categorical:
        counts, missing = _categorical_counts(frame[col])
        profile["categorical"][col] = {"counts": counts, "missing": missing}
    return profile


def _with_missing(ref: list[int], ref_missing: int, cur: list[int], cur_missing: int) -> tuple[list[int], list[int]]:
    if ref_missing or cur_missing:
        return [*ref, ref_missing], [*cur, cur_missing]
    return ref, cur


def feature_drift(profile: dict[str, Any], current: pd.DataFrame, threshold: float) -> list[dict[str, Any]]:
    """PSI of every profiled feature in ``current`` against the reference profile."""
    results: list[dict[str, Any]] = []
    for col, ref in profile["numeric"].items():
        if col not in current:
            continue  # a feature the configuration no longer has: reported as a schema change
        cur_counts, cur_missing = numeric_histogram(current[col].to_numpy(dtype=float), ref["edges"])
        r, c = _with_missing(ref["counts"], ref["missing"], cur_counts, cur_missing)
        values = current[col].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        results.append(
            _result(col, "numeric", r, c, threshold, current_mean=float(finite.mean()) if finite.size else None,
                    reference_mean=ref["mean"])
        )
    for col, ref in profile["categorical"].items():
        if col not in current:
            continue
        cur_counts, cur_missing = _categorical_counts(current[col])
        categories = list(ref["counts"])
        r = [ref["counts"][k] for k in categories] + [0]
        c = [cur_counts.get(k, 0) for k in categories] + [sum(v for k, v in cur_counts.items() if k not in ref["counts"])]
        r, c = _with_missing(r, ref["missing"], c, cur_missing)
        unseen = sorted(k for k in cur_counts if k not in ref["counts"])
        results.append(_result(col, "categorical", r, c, threshold, unseen_categories=unseen[:10]))
    return results


def _result(col: str, kind: str, ref: list[int], cur: list[int], threshold: float, **extra: Any) -> dict[str, Any]:
    value = psi(ref, cur) if sum(cur) else math.nan
    drifted = bool(value >= threshold) if not math.isnan(value) else False
    return {
        "feature": col,
        "kind": kind,
        "method": "psi",
        "statistic": round(value, 6) if not math.isnan(value) else None,
        "threshold": threshold,
        "drifted": drifted,
        **extra,
    }


def dataset_drift(results: list[dict[str, Any]], drifted_share: float) -> dict[str, Any]:
    """The dataset-level verdict: drift when at least ``drifted_share`` of the features drifted."""
    drifted = [r for r in results if r["drifted"]]
    share = len(drifted) / len(results) if results else 0.0
    worst = max((r["statistic"] or 0.0 for r in results), default=0.0)
    return {
        "detected": bool(results) and share >= drifted_share,
        "drifted_features": [r["feature"] for r in sorted(drifted, key=lambda r: -(r["statistic"] or 0))],
        "drifted_share": round(share, 4),
        "share_threshold": drifted_share,
        "max_psi": round(float(worst), 6),
    }
