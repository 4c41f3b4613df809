"""Small statistics shared by the drift engine (:mod:`.drift`) and the method registry (:mod:`.drift_methods`).

Kept below both, so neither imports the other for them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPSILON = 1e-4  # share floor of an empty bin in PSI: a large but finite term


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
