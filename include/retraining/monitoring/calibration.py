"""Thresholds calibrated on the reference itself: how much a window moves when nothing changed.

A fixed threshold (Wasserstein 0.1 sd, Jensen-Shannon 0.1) cannot know that one feature's weekly
mean wanders by two standard deviations with the weather while another's never moves. So when a
model is trained, :func:`calibrate` cuts its labelled training period into windows of the check's
size (``window.lookback_hours``, aligned back from the cutoff, as NannyML cuts its reference into
chunks), reads each into the same summary a check reads (:func:`.drift.summarize`) and measures,
against the reference profile, every statistic a check may use: the distances as they are, the
p-values as ``-log10`` of their Benjamini-Hochberg adjusted values (large = far), plus each
feature's missing rate and out-of-range share. The values per window are kept in the profile
(``profile["calibration"]``), so a check can derive its limits with the settings in force then,
and weigh the windows' dataset scores with the champion's importance (known only after training).

Windows overlapping the reference period are left out while at least
``MIN_WINDOWS`` others remain: a window compared with a reference that contains it looks closer
than a new window will. Windows holding fewer than half the median window's rows are left out (a
quiet night is not a window of the check's size).

:func:`.stats.natural_limit` turns a list of values into the limit of natural variation, ``mean + k * sd``
(``drift.calibration_sd``, 3 by default: NannyML's default band); :mod:`.drift` uses it as a floor
under nothing and a ceiling over nothing: a feature drifts when its statistic is beyond both its
fixed threshold (the smallest change worth acting on) and its calibrated limit (the change that
history says is unusual).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from . import drift, drift_methods
from .stats import MIN_CALIBRATION_WINDOWS as MIN_WINDOWS
from .stats import natural_limit, p_value_limit  # noqa: F401 (part of this module's interface)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

MAX_WINDOWS = 60  # the newest windows of a long history (enough for a mean and sd; keeps the profile small)
MIN_ROWS = 30  # a window with fewer present values of a feature tells nothing about it


def _score(p_adjusted: float) -> float:
    """A p-value as a distance-like score: ``-log10(p)`` (0 for p = 1, larger is farther)."""
    return -math.log10(max(p_adjusted, 1e-300))


def calibrate(frame: pd.DataFrame, profile: Mapping[str, Any], timestamp: str, cutoff: datetime,
              window_hours: float, reference_hours: float, *, max_windows: int = MAX_WINDOWS) -> dict[str, Any]:
    """Per feature, each statistic measured between the reference profile and each window of the training period.

    Returns ``{"window_hours", "windows": [{"start", "end", "rows"}], "excluded_reference": bool,
    "seconds", "features": {name: {statistic: [value per window]}}}``. Statistics: ``ks``/``chisquare``
    as ``-log10`` of the adjusted p-value, ``wasserstein``, ``psi``, ``jensenshannon``, ``linf`` as
    computed by a check, ``missing_rate`` and (numeric) ``out_of_range`` share. A feature without values
    in a window gets ``None`` there.
    """
    import pandas as pd

    started = time.perf_counter()
    ts = pd.to_datetime(frame[timestamp], utc=True)
    end = pd.Timestamp(cutoff)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    step = pd.Timedelta(hours=window_hours)
    first = ts.min()
    bounds: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    while end > first and len(bounds) < 4 * max_windows:
        bounds.append((end - step, end))
        end -= step
    reference_start = bounds[0][1] - timedelta(hours=reference_hours) if bounds else end
    nanos = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)  # UTC
    order = np.argsort(nanos, kind="stable")
    sorted_ns = nanos[order]
    chunks = []
    for lo, hi in bounds:
        a, b = np.searchsorted(sorted_ns, [lo.value, hi.value], "left")
        chunks.append((lo, hi, order[a:b]))
    sizes = [len(idx) for *_, idx in chunks if len(idx)]
    median = float(np.median(sizes)) if sizes else 0.0
    usable = [c for c in chunks if len(c[2]) >= max(MIN_ROWS, median / 2)]
    outside = [c for c in usable if c[1] <= reference_start]
    excluded = len(outside) >= MIN_WINDOWS
    chosen = (outside if excluded else usable)[:max_windows]
    chosen.reverse()  # oldest first
    measured = [window_values(profile, drift.summarize(frame.iloc[idx], profile)) for *_, idx in chosen]
    features: dict[str, dict[str, list[float | None]]] = {}
    for name in [*profile["numeric"], *profile["categorical"]]:
        keys = sorted({key for window in measured for key in window.get(name, {})})
        features[name] = {key: [window.get(name, {}).get(key) for window in measured] for key in keys}
    result = {
        "window_hours": window_hours,
        "windows": [{"start": lo.isoformat(), "end": hi.isoformat(), "rows": int(len(idx))} for lo, hi, idx in chosen],
        "excluded_reference": excluded,
        "seconds": round(time.perf_counter() - started, 3),
        "features": features,
    }
    log.info("calibrated drift thresholds on %d windows of %g h (median %d rows%s) in %.1f s",
             len(chosen), window_hours, int(median), ", reference period left out" if excluded else "",
             result["seconds"])
    return result


def window_values(profile: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Every calibrated statistic of one window summary against the profile, per feature."""
    rows = int(summary.get("rows") or 0)
    out: dict[str, dict[str, float | None]] = {}
    p_values: list[tuple[str, str, float]] = []
    for section in ("numeric", "categorical"):
        for name, ref in profile[section].items():
            cur = summary[section].get(name)
            if cur is None or rows == 0:
                continue
            entry: dict[str, float | None] = {"missing_rate": cur["missing"] / rows}
            counts = cur["counts"].values() if section == "categorical" else cur["counts"]
            present = int(sum(counts))
            if section == "numeric" and cur.get("out_of_range") is not None:
                entry["out_of_range"] = cur["out_of_range"] / present if present else 0.0
            if present >= MIN_ROWS and int(profile.get("rows") or 0) - int(ref["missing"]) > 0:
                values = drift.feature_values(section, ref, cur)
                for key, value in values.items():
                    if key in ("ks", "chisquare"):
                        p_values.append((name, key, value))
                    else:
                        entry[key] = float(value)
            out[name] = entry
    adjusted = drift_methods.adjusted_p_values([p for *_, p in p_values])
    for (name, key, _), p_adj in zip(p_values, adjusted, strict=True):
        out[name][key] = _score(p_adj)
    return out
