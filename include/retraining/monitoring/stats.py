"""Small statistics shared by the drift engine (:mod:`.drift`) and the method registry (:mod:`.drift_methods`).

Kept below both, so neither imports the other for them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

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


def outer_edges(values: np.ndarray) -> list[float]:
    """The two edges that isolate values outside the reference's range: ``[nextafter(min, -inf), max]``.

    With bins ``(e_i, e_i+1]`` the lowest bin ``(-inf, nextafter(min, -inf)]`` holds exactly the
    values below ``min`` and the highest ``(max, inf)`` exactly those above ``max``; empty for the
    reference itself. No finite value: no edges.
    """
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return []
    lo, hi = float(finite.min()), float(finite.max())
    return [float(np.nextafter(lo, -np.inf)), hi]


MIN_CALIBRATION_WINDOWS = 6  # fewer calibration windows than this: no calibrated limit


def natural_limit(values: Sequence[float | None] | None, k: float,
                  min_windows: int = MIN_CALIBRATION_WINDOWS) -> float | None:
    """``mean + k * sd`` of the known values (the edge of their natural variation), or None when fewer
    than ``min_windows`` are known. The values are in time order; the sd is corrected for their
    autocorrelation (:func:`autocorrelation_inflation`)."""
    known = np.array([float(v) for v in values or () if v is not None and math.isfinite(v)])
    if known.size < min_windows:
        return None
    return float(known.mean() + k * known.std(ddof=1) * autocorrelation_inflation(known))


def autocorrelation_inflation(series: np.ndarray) -> float:
    """How much the spread of consecutive windows understates the spread over a longer time.

    Windows of a training period are not independent draws: weather, seasons and slow trends persist
    from one window to the next, so ``n`` consecutive windows show less of the variation than ``n``
    independent ones would. For a series with lag-``h`` autocorrelations ``rho_h`` the sample variance
    is short of the variance by the factor ``1 - 2/(n-1) * sum_h (1 - h/n) rho_h``; with an AR(1)
    ``rho_h = rho^h`` from the lag-1 autocorrelation (clipped to [0, 0.95]). Returns the sd's correction,
    ``1 / sqrt(factor)`` (1 for independent windows; the factor is floored at 0.25, a correction of 2).
    """
    n = series.size
    centred = series - series.mean()
    denominator = float(centred @ centred)
    if n < 3 or denominator <= 0:
        return 1.0
    rho = min(max(float(centred[1:] @ centred[:-1]) / denominator, 0.0), 0.95)
    lags = np.arange(1, n)
    factor = 1.0 - 2.0 / (n - 1) * float(np.sum((1 - lags / n) * rho ** lags))
    return 1.0 / math.sqrt(max(factor, 0.25))


def p_value_limit(scores: Sequence[float | None] | None, k: float,
                  min_windows: int = MIN_CALIBRATION_WINDOWS) -> float | None:
    """The natural limit of ``-log10`` p-value scores, back on the p-value scale (None without enough)."""
    score = natural_limit(scores, k, min_windows)
    return None if score is None else 10.0 ** (-score)


def widened_k(k: float, points: int) -> float:
    """``k`` widened for a spread estimated from ``points`` values: the prediction interval of a new value
    when mean and sd are both estimated, ``k * sqrt(1 + 1/m) * t_{m-1}(0.975) / z(0.975)`` (1.8 k at four
    values, 1.3 k at eight, 1.1 k at sixteen; ``k`` itself in the limit)."""
    if points < 2:
        return k
    from scipy.stats import norm, t

    return float(k * math.sqrt(1.0 + 1.0 / points) * t.ppf(0.975, points - 1) / norm.ppf(0.975))


def component_limit(entry: Mapping[str, Any], k: float) -> float:
    """The limit of natural variation of one statistic from its calibrated components (see :mod:`.calibration`):
    ``sampling_mean + between_mean + widened_k(k, points) * sqrt(sampling_sd^2 + between_sd^2)``.

    ``sampling``: the statistic's mean and sd when nothing changed (resampled reference rows at the check's
    row count); ``between``: how much more the windows of the newest regime vary, at the check's size
    (both ``[mean, sd]``); ``points``: how many (sub-)windows the between part was measured on (0: none,
    the sampling part alone)."""
    s_mean, s_sd = (float(v) for v in entry["sampling"])
    b_mean, b_sd = (float(v) for v in (entry.get("between") or (0.0, 0.0)))
    points = int(entry.get("points") or 0)
    return s_mean + b_mean + widened_k(k, points) * math.sqrt(s_sd * s_sd + b_sd * b_sd)
