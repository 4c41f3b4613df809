"""Thresholds calibrated on the training history: how much a window moves when nothing changed.

:func:`calibrate` estimates, per feature and statistic, the natural variation of the statistic a check
computes at the check's window size, from whatever history the first retraining has. A window's
statistic against the reference = a sampling part (n rows drawn from the reference itself) + a
between-window part (the distribution moves from window to window). (a) Sampling: reference rows
resampled at a row count give the statistic's mean and sd when nothing changed, at any size.
(b) Between: the history is cut into windows of the check's size and, while fewer than eight lie
outside the reference, into halves, quarters, eighths. With six or more full windows outside the
reference those are used (``calibrated``); else the size with the most (sub-)windows, those in the
reference period too (``weak``: there their spread is what counts). Their mean and variance, less the
sampling part at their row count, is the between part: it does not shrink with n as sampling does, so
a distance's carries over to the full window (conservative: longer windows average more out) and a
p-value score's, which grows like n, is scaled by n / n_sub. (c) Thin data: the limit
``sampling + between mean + k' sd`` corrects the sd for persistence (:func:`.stats.autocorrelation_inflation`)
and widens ``k`` to a prediction interval over the effective number of points (:func:`effective_points`,
:func:`.stats.widened_k`). No between part at all: ``uncalibrated`` (sampling noise alone). Every
verdict carries the status (:func:`.drift.calibration_note`).

Natural variation is variation within a regime. A drift-triggered retraining trains on a history that
holds the change; its older windows, compared with the new reference, are far and would raise the limit
14-23x. So each feature's finest series (Wasserstein or Jensen-Shannon against the reference, windows
outside the reference) is searched for a step down (:func:`newest_regime`), and only the newest regime
is calibrated on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from . import drift, drift_methods
from .stats import MIN_CALIBRATION_WINDOWS as MIN_WINDOWS
from .stats import autocorrelation_inflation, component_limit, natural_limit, p_value_limit  # noqa: F401

if TYPE_CHECKING:
    import pandas as pd

    from ..config import RetrainingConfig

log = logging.getLogger(__name__)

VERSION = 2  # 2: log-scale p-value scores uncapped, limit components per statistic, newest regime
MAX_WINDOWS = 60  # the newest windows of a long history (enough for a mean and sd; keeps the profile small)
MIN_ROWS = 30  # a window with fewer present values of a feature tells nothing about it
MAX_LEVEL = 3  # sub-windows down to an eighth of the check's window
SUB_MIN_ROWS = 100  # sub-windows with fewer rows (median) are too noisy to be worth cutting
ENOUGH_WINDOWS = MIN_WINDOWS + 2  # with this many (sub-)windows outside the reference no finer ones are cut
RESAMPLES = 24  # reference resamples per row count (the sampling part)
MIN_EFFECTIVE = 4  # the fewest effective points a widening assumes (k widened 1.8x there, see stats.widened_k)
CHANGE_EFFECT = 4.0  # a regime change: a step of this many robust sds (of the segments and of sampling noise)
P_SCORES = ("ks", "chisquare")  # stored as -log10 of the adjusted p-value: the between part grows like n
PRIMARY = {"numeric": "wasserstein", "categorical": "jensenshannon"}  # the series searched for regime changes
STATUS_ORDER = ("calibrated", "weak", "uncalibrated")


def _score(log10_p_adjusted: float) -> float | None:
    """A p-value as a distance-like score, ``-log10(p)``, uncapped (0 for p = 1); None when not finite."""
    return -float(log10_p_adjusted) if math.isfinite(log10_p_adjusted) else None


def calibrate(frame: pd.DataFrame, profile: Mapping[str, Any], timestamp: str, cutoff: datetime,
              window_hours: float, reference_hours: float, *, max_windows: int = MAX_WINDOWS,
              resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The natural variation of every statistic a check may use, for ``profile["calibration"]``.

    Returns ``{"version": 2, "window_hours", "rows" (a check window's typical row count), "windows":
    [{"start", "end", "rows"}] (full windows, oldest first), "excluded_reference", "features": {name:
    {statistic: [value per window]}}, "limits": {name: {statistic: components}}, "regimes": {name:
    {"start", "dropped"}}, "regime_start_window": {name: index}, "levels": [...], "summary": {"status",
    "windows", "sub_windows", "method", "note"}, "seconds"}``. Statistics: ``ks``/``chisquare`` as
    ``-log10`` of the adjusted p-value (uncapped), ``wasserstein``, ``psi``, ``jensenshannon``, ``linf``
    as a check computes them, ``missing_rate`` and (numeric) ``out_of_range`` share.
    """
    import pandas as pd

    started = time.perf_counter()
    ts = pd.to_datetime(frame[timestamp], utc=True)
    end = pd.Timestamp(cutoff)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    nanos = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    order = np.argsort(nanos, kind="stable")
    sorted_ns = nanos[order]
    first_ns = int(sorted_ns[0]) if sorted_ns.size else end.value
    reference_start = end - pd.Timedelta(hours=reference_hours)

    def cut(hours: float, limit: int) -> list[dict[str, Any]]:
        step = pd.Timedelta(hours=hours)
        chunks, hi = [], end
        while hi.value > first_ns and len(chunks) < 4 * limit:
            a, b = np.searchsorted(sorted_ns, [(hi - step).value, hi.value], "left")
            chunks.append({"lo": hi - step, "hi": hi, "idx": order[a:b]})
            hi -= step
        sizes = [len(c["idx"]) for c in chunks if len(c["idx"])]
        median = float(np.median(sizes)) if sizes else 0.0
        usable = [c for c in chunks if len(c["idx"]) >= max(MIN_ROWS, median / 2)][:limit]
        for c in usable:
            c["outside"] = c["hi"] <= reference_start
        usable.reverse()  # oldest first
        return usable

    def measure(chunks: list[dict[str, Any]]) -> None:
        for c in chunks:
            c["values"] = window_values(profile, drift.summarize(frame.iloc[c["idx"]], profile))

    full = cut(window_hours, max_windows)
    measure(full)
    levels: list[dict[str, Any]] = [{"level": 0, "hours": window_hours, "chunks": full}]
    outside_full = sum(c["outside"] for c in full)
    span_hours = max((end.value - first_ns) / 3.6e12, 1e-9)
    n_check = int(np.median([len(c["idx"]) for c in full])) if full else int(round(len(frame) / span_hours * window_hours))
    if outside_full < ENOUGH_WINDOWS:
        for level in range(1, MAX_LEVEL + 1):
            hours = window_hours / 2**level
            if len(frame) / span_hours * hours < SUB_MIN_ROWS:
                break
            chunks = cut(hours, 4 * max_windows)
            measure(chunks)
            levels.append({"level": level, "hours": hours, "chunks": chunks})
            if sum(c["outside"] for c in chunks) >= ENOUGH_WINDOWS:
                break
    for lv in levels:
        lv["rows"] = int(np.median([len(c["idx"]) for c in lv["chunks"]])) if lv["chunks"] else 0

    reference_rows = _reference_rows(sorted_ns, order, reference_start.value, end.value)
    sampling = _Sampling(frame, profile, reference_rows, resamples, seed)
    names = {name: section for section in ("numeric", "categorical") for name in profile[section]}
    regimes: dict[str, dict[str, Any]] = {}
    starts: dict[str, Any] = {}
    for name, section in names.items():
        start, dropped = _regime_start(levels, name, PRIMARY[section], sampling)
        starts[name] = start
        if start is not None:
            regimes[name] = {"start": start.isoformat(), "dropped": dropped}
    limits: dict[str, dict[str, Any]] = {}
    for name in names:
        keys = sorted({k for lv in levels for c in lv["chunks"] for k in c["values"].get(name, {})}
                      | set((sampling.get(n_check) or {}).get(name, {})))
        limits[name] = {key: _components(levels, name, key, starts[name], sampling, n_check) for key in keys}

    excluded = outside_full >= MIN_WINDOWS
    chosen = [c for c in full if c["outside"]] if excluded else full
    features: dict[str, dict[str, list[float | None]]] = {}
    for name in names:
        keys = sorted({key for c in chosen for key in c["values"].get(name, {})})
        features[name] = {key: [c["values"].get(name, {}).get(key) for c in chosen] for key in keys}
    regime_start_window = {name: sum(1 for c in chosen if c["lo"] < start) for name, start in starts.items()
                           if start is not None and any(c["lo"] < start for c in chosen)}
    summary = _summary(limits, names, levels, window_hours, len(chosen))
    result = {
        "version": VERSION,
        "window_hours": window_hours,
        "rows": n_check,
        "windows": [{"start": c["lo"].isoformat(), "end": c["hi"].isoformat(), "rows": int(len(c["idx"]))}
                    for c in chosen],
        "excluded_reference": excluded,
        "features": features,
        "limits": limits,
        "regimes": regimes,
        "regime_start_window": regime_start_window,
        "levels": [{"level": lv["level"], "hours": lv["hours"], "windows": len(lv["chunks"]), "rows": lv["rows"],
                    "outside_reference": sum(c["outside"] for c in lv["chunks"])} for lv in levels],
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("calibrated drift thresholds (%s): %d windows of %g h, sub-window levels %s, %d regime change(s), "
             "in %.1f s: %s", summary["status"], len(chosen), window_hours,
             [lv["level"] for lv in levels[1:]] or "none", len(regimes), result["seconds"], summary["note"])
    return result


def _reference_rows(sorted_ns: np.ndarray, order: np.ndarray, start_ns: int, end_ns: int) -> np.ndarray:
    """Row positions of the reference period (the newest 100 rows when it holds fewer)."""
    a, b = np.searchsorted(sorted_ns, [start_ns, end_ns], "left")
    if b - a >= 100:
        return order[a:b]
    return order[max(0, b - 100):b]


class _Sampling:
    """Per row count, each statistic's mean and sd over windows resampled from the reference rows (nothing
    changed), computed when first asked for: ``get(n) -> {feature: {statistic: (mean, sd)}}``."""

    def __init__(self, frame: pd.DataFrame, profile: Mapping[str, Any], reference_rows: np.ndarray,
                 resamples: int, seed: int) -> None:
        self.frame, self.profile, self.rows, self.resamples = frame, profile, reference_rows, resamples
        self.rng = np.random.default_rng(seed)
        self.cache: dict[int, dict[str, dict[str, tuple[float, float]]]] = {}

    def get(self, n: int) -> dict[str, dict[str, tuple[float, float]]]:
        if n not in self.cache:
            self.cache[n] = self._measure(n) if n >= MIN_ROWS and self.rows.size else {}
        return self.cache[n]

    def _measure(self, n: int) -> dict[str, dict[str, tuple[float, float]]]:
        draws: dict[str, dict[str, list[float]]] = {}
        for _ in range(self.resamples):
            idx = self.rng.choice(self.rows, size=n, replace=True)
            for name, entry in window_values(self.profile, drift.summarize(self.frame.iloc[idx], self.profile)).items():
                for key, value in entry.items():
                    if value is not None:
                        draws.setdefault(name, {}).setdefault(key, []).append(value)
        return {name: {key: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                       for key, v in entry.items()} for name, entry in draws.items()}


def _series(chunks: Sequence[Mapping[str, Any]], name: str, key: str, start: Any,
            outside_only: bool) -> list[float]:
    return [float(c["values"][name][key]) for c in chunks
            if (not outside_only or c["outside"]) and (start is None or c["lo"] >= start)
            and c["values"].get(name, {}).get(key) is not None]


def _regime_start(levels: Sequence[Mapping[str, Any]], name: str, key: str,
                  sampling: _Sampling) -> tuple[Any, int]:
    """When the feature's newest regime began (None: no change found) and how many (sub-)windows it left out,
    from the finest level's windows outside the reference."""
    for lv in reversed(levels):
        chunks = [c for c in lv["chunks"] if c["outside"] and c["values"].get(name, {}).get(key) is not None]
        if len(chunks) < 4:
            continue
        noise = (sampling.get(lv["rows"]) or {}).get(name, {}).get(key, (0.0, 0.0))[1]
        at = newest_regime([c["values"][name][key] for c in chunks], noise)
        return (chunks[at]["lo"], at) if at else (None, 0)
    return None, 0


def newest_regime(values: Sequence[float], noise_sd: float = 0.0, min_effect: float = CHANGE_EFFECT) -> int:
    """The index where the newest regime of a series (oldest first) of a statistic against the reference begins.

    A regime change is a step down (the older windows farther from the reference, which is newest) between
    the medians of two segments of at least two values each, of at least ``min_effect`` times the larger of
    the segments' robust sd (1.4826 x median absolute deviation from their own medians) and ``noise_sd``
    (the statistic's sampling sd); the newest segment is searched again. 0: one regime."""
    x = np.asarray([float(v) for v in values], dtype=float)
    start = 0
    while x.size - start >= 4:
        seg = x[start:]
        best, at = 0.0, 0
        for t in range(2, seg.size - 1):
            a, b = seg[:t], seg[t:]
            ma, mb = float(np.median(a)), float(np.median(b))
            if ma <= mb:
                continue
            resid = np.concatenate([a - ma, b - mb])
            spread = max(1.4826 * float(np.median(np.abs(resid))), noise_sd, 1e-9 + 1e-3 * abs(mb))
            if (ma - mb) / spread > best:
                best, at = (ma - mb) / spread, t
        if at == 0 or best < min_effect:
            break
        start += at
    while start > 0:  # a boundary placed one late (a segment's spread is pooled): take back what fits the newest
        newest = x[start:]
        mid = float(np.median(newest))
        spread = max(1.4826 * float(np.median(np.abs(newest - mid))), noise_sd, 1e-9 + 1e-3 * abs(mid))
        if abs(x[start - 1] - mid) > min_effect / 2 * spread:
            break
        start -= 1
    return start


def _components(levels: Sequence[Mapping[str, Any]], name: str, key: str, start: Any,
                sampling: _Sampling, n_check: int) -> dict[str, Any]:
    """The limit components of one statistic (:func:`.stats.component_limit`), from the coarsest level with
    enough windows of the newest regime (outside the reference if possible)."""
    s_mean, s_sd = (sampling.get(n_check) or {}).get(name, {}).get(key, (0.0, 0.0))
    candidates = []
    for lv in levels:
        for outside_only in (True, False):
            series = _series(lv["chunks"], name, key, start, outside_only)
            candidates.append((lv, outside_only, series))
    # the windows of the check's size when six or more lie outside the reference, else the level with the most
    # (sub-)windows, those inside the reference period too: at that size it is their spread that counts
    pick = next((c for c in candidates if len(c[2]) >= MIN_WINDOWS and c[1] and c[0]["level"] == 0), None) \
        or max((c for c in candidates if not c[1]), key=lambda c: (len(c[2]), -c[0]["level"]), default=None)
    entry: dict[str, Any] = {"sampling": [round(s_mean, 8), round(s_sd, 8)], "between": [0.0, 0.0], "points": 0,
                             "level": None, "rows": n_check, "status": "uncalibrated",
                             "method": "sampling noise of resampled reference rows only"}
    if pick is None or len(pick[2]) < 2:
        return entry
    lv, outside_only, series = pick
    x = np.asarray(series, dtype=float)
    lv_mean, lv_sd = (sampling.get(lv["rows"]) or {}).get(name, {}).get(key, (0.0, 0.0))
    b_mean = max(float(x.mean()) - lv_mean, 0.0)
    spread = float(x.std(ddof=1)) * autocorrelation_inflation(x)
    effective = effective_points(x)
    b_sd = math.sqrt(max(spread * spread - lv_sd * lv_sd, 0.0))
    scale = n_check / lv["rows"] if key in P_SCORES and lv["rows"] else 1.0
    entry.update(between=[round(b_mean * scale, 8), round(b_sd * scale, 8)], points=effective,
                 windows=int(x.size), level=lv["level"],
                 window_hours=lv["hours"], outside_reference=outside_only,
                 status="calibrated" if lv["level"] == 0 and x.size >= MIN_WINDOWS else "weak",
                 method=("windows of the check's size" if lv["level"] == 0 else
                         f"sub-windows of 1/{2 ** lv['level']} of the check's window")
                 + " in the newest regime, less the sampling noise of resampled reference rows")
    return entry


def effective_points(series: np.ndarray) -> int:
    """How many independent values a persistent series is worth: ``n (1 - rho) / (1 + rho)`` for its lag-1
    autocorrelation ``rho`` (clipped to [0, 0.95]), at least ``MIN_EFFECTIVE`` (the sd is already corrected for
    persistence: fewer would count it twice). Widens the limit where weather persists."""
    n = int(series.size)
    centred = series - series.mean()
    denominator = float(centred @ centred)
    if n < 3 or denominator <= 0:
        return n
    rho = min(max(float(centred[1:] @ centred[:-1]) / denominator, 0.0), 0.95)
    return min(n, max(MIN_EFFECTIVE, int(round(n * (1 - rho) / (1 + rho)))))


def _summary(limits: Mapping[str, Mapping[str, Any]], names: Mapping[str, str], levels: Sequence[Mapping[str, Any]],
             window_hours: float, windows: int) -> dict[str, Any]:
    """The calibration as a whole: the worst status of the features' primary statistics, in one sentence."""
    primary = [limits[n].get(PRIMARY[s]) for n, s in names.items() if limits[n].get(PRIMARY[s])]
    statuses = [e["status"] for e in primary] or ["uncalibrated"]
    status = max(statuses, key=STATUS_ORDER.index)
    full = levels[0]["chunks"]
    outside = sum(c["outside"] for c in full)
    sub = max((e.get("windows", e["points"]) for e in primary if (e.get("level") or 0) > 0), default=0)
    finest = max((e.get("level") or 0 for e in primary), default=0)
    if status == "calibrated":
        note = f"thresholds calibrated on {windows} windows of {window_hours:g} h"
        method = "windows of the check's size, newest regime, less sampling noise"
    elif status == "weak":
        note = (f"the training history holds {len(full)} window(s) of {window_hours:g} h ({outside} outside the "
                f"reference), fewer than {MIN_WINDOWS}: natural variation estimated from "
                + (f"{sub} sub-windows of {window_hours / 2 ** finest:g} h" if sub else "the few windows there are")
                + " and resampled reference rows, with widened limits")
        method = "sub-windows and resampled reference rows, widened for few points"
    else:
        note = (f"the training history holds no window of {window_hours:g} h or sub-window to measure natural "
                "variation on: fixed thresholds (raised to the sampling noise of resampled reference rows)")
        method = "sampling noise of resampled reference rows only"
    return {"status": status, "windows": windows, "sub_windows": sub, "method": method, "note": note}


def window_values(profile: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Every calibrated statistic of one window summary against the profile, per feature (p-values as the
    ``-log10`` of their Benjamini-Hochberg adjusted value, uncapped). A statistic that cannot be computed
    (an error, NaN or inf) is left out."""
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
                try:
                    values, log10_p = drift.feature_statistics(section, ref, cur)
                except Exception as exc:  # noqa: BLE001 (one feature never fails a calibration)
                    log.warning("calibration: statistics of %s failed: %s", name, exc)
                    values, log10_p = {}, {}
                for key, value in values.items():
                    if key in log10_p:
                        if not math.isnan(log10_p[key]):
                            p_values.append((name, key, log10_p[key]))
                    elif math.isfinite(value):
                        entry[key] = float(value)
            out[name] = entry
    adjusted = drift_methods.adjusted_log10_p_values([p for *_, p in p_values])
    for (name, key, _), log_adj in zip(p_values, adjusted, strict=True):
        score = _score(log_adj)
        if score is not None:
            out[name][key] = score
    return out


def calibration_outlook(cfg: RetrainingConfig) -> dict[str, Any]:
    """Whether the configured history can calibrate the drift check, from the configuration alone.

    ``{"level": "full" | "weak" | "none" | "unknown", "windows": full windows of the check's size in
    ``training.history_days`` (None when unset), "sub_windows": the most sub-windows (down to an eighth of
    the window) it holds, "sentence"}``: ``full`` with at least six windows, ``weak`` with fewer but at
    least two sub-windows, ``none`` without, ``unknown`` when ``training.history_days`` is unset (all
    stored history is used: it depends on how much there is)."""
    window = float(cfg.window.lookback_hours)
    if cfg.drift.threshold_mode == "fixed":
        return {"level": "none", "windows": None, "sub_windows": 0,
                "sentence": "drift.threshold_mode is fixed: drift thresholds are not calibrated"}
    days = cfg.training.history_days
    if days is None:
        return {"level": "unknown", "windows": None, "sub_windows": None,
                "sentence": ("training.history_days is unset, so every stored row is history: thresholds are "
                             f"calibrated once it spans {MIN_WINDOWS} windows of {window:g} h "
                             f"({MIN_WINDOWS * window / 24:g} days), weakly before")}
    hours = days * 24.0
    windows = int(hours // window)
    windows = min(windows, cfg.drift.calibration_windows)
    sub = int(hours // (window / 2**MAX_LEVEL))
    if windows >= MIN_WINDOWS:
        return {"level": "full", "windows": windows, "sub_windows": 0,
                "sentence": f"{days} days of history hold {windows} windows of {window:g} h: thresholds are "
                            "calibrated"}
    if sub >= 2:
        need = math.ceil(MIN_WINDOWS * window / 24)
        return {"level": "weak", "windows": windows, "sub_windows": sub,
                "sentence": f"{days} days of history hold {windows} window(s) of {window:g} h, fewer than "
                            f"{MIN_WINDOWS}: thresholds are estimated from sub-windows (weakly calibrated); "
                            f"set training.history_days to at least {need} for a full calibration"}
    return {"level": "none", "windows": windows, "sub_windows": sub,
            "sentence": f"{days} days of history are shorter than a quarter of the {window:g} h window: drift "
                        "thresholds cannot be calibrated and stay fixed; raise training.history_days"}
