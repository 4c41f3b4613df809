"""Concept drift caught by accumulating evidence across windows.

When the labels change and the features do not, only the champion's errors show it, and a drop too
small to stand out in one window of a few thousand rows is plain after two or three. Each labelled
window contributes its evidence (:func:`evidence`): per stream, how much worse the champion did than at
deployment on its out-of-time holdout, ``d``, with its standard error ``se``: the error rate (classifiers;
for regressors the log of the RMSE's ratio, see :func:`.performance_estimate.regression_excess_error`)
and the primary metric's drop (relative for lower-is-better metrics). When the champion has a label-free
estimate (:mod:`.performance_estimate`), ``d`` is net of what that estimate expects for the window's rows:
the error rate's excess over the errors its calibrated probabilities predict, compared with the same
excess on the holdout. The inputs moving the way they always have (weather, a different mix of easy
and hard cases) change the expected and the realized errors alike and cancel; labels that no longer
follow the features do not.

**The level to compare with.** The out-of-time holdout (``d = 0`` by definition) is small: with the
default six-hour window it holds about half a window's rows, and its own noise, not the window's, then
bounds what any test can see. So the champion's first ``burn_in`` labelled windows in service (a
day by default) join it, inverse-variance weighted, as the level later windows are compared with (as
NannyML's reference period may be the first period in production). A burn-in window is itself tested
against the level so far; one that alarms ends the burn-in and never joins the level.

**The test** (:func:`test`) pools the newest ``j = 1 .. J`` windows after the burn-in (and after the
last alarm) with the current one (inverse-variance weighted mean of ``d``) and asks whether the pooled
loss exceeds the level by more than the smallest change that matters (``min_effect``) and more than
sampling noise explains:

    z_j = (mean_j(d) - level - min_effect) / sqrt(se(mean_j)^2 + se(level)^2)

The level's standard error enters once per look, not once per window: every window is compared with
the same level, so its luck must not accumulate (a CUSUM on per-window z-scores does let it
accumulate, and fires on quiet streams whose baseline happened to be good). The window alarms when
``max_j z_j >= z*``, with ``z*`` the one-sided normal quantile of ``alpha / J`` (Bonferroni over the
``J`` looks), so a quiet window alarms with probability at most ``alpha``. After an alarm the evidence
starts again: windows up to the alarming one are not pooled again. Only the evidence is recorded
(``trigger_metrics.performance.evidence``); burn-in and earlier alarms are found again by running the
test through the recorded windows in order.

Settings (``performance.``): ``sequential_windows`` (J, default 3; 0 turns the test off),
``sequential_alpha`` (0.01), ``sequential_burn_in`` (4 windows) and ``sequential_min_effect`` (0.25:
the share of the change one window must show, ``max_relative_error_increase`` and ``max_drop``, that
the accumulated test looks for).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

STREAMS = ("error", "metric")


def evidence(difference: float | None, se: float | None, baseline_se: float | None,
             min_effect: float) -> dict[str, float] | None:
    """One window's evidence on one stream, or None when a part is unknown."""
    if difference is None or se is None or baseline_se is None or not se > 0:
        return None
    if not all(math.isfinite(v) for v in (difference, se, baseline_se)):
        return None
    return {"d": round(float(difference), 8), "se": round(float(se), 8), "se0": round(float(baseline_se), 8),
            "min_effect": round(float(min_effect), 8)}


def _level(reference: Sequence[Mapping[str, float]], baseline_se: float) -> tuple[float, float]:
    """The champion's loss level to compare with, and its standard error: the holdout (``d = 0`` by
    definition, standard error ``se0``) pooled with the burn-in windows, inverse-variance weighted."""
    weight = 1.0 / baseline_se ** 2 if baseline_se > 0 else 1e12
    total = weight + sum(1.0 / e["se"] ** 2 for e in reference)
    level = sum(e["d"] / e["se"] ** 2 for e in reference) / total
    return level, math.sqrt(1.0 / total)


def _z(pooled: Sequence[Mapping[str, float]], reference: Sequence[Mapping[str, float]]) -> float:
    weights = [1.0 / (e["se"] ** 2) for e in pooled]
    total = sum(weights)
    mean = sum(w * e["d"] for w, e in zip(weights, pooled, strict=True)) / total
    current = pooled[-1]
    level, level_se = _level(reference, current["se0"])
    return (mean - level - current["min_effect"]) / math.sqrt(1.0 / total + level_se ** 2)


@functools.lru_cache(maxsize=64)
def critical_z(alpha: float, looks: int) -> float:
    from scipy.stats import norm

    return float(norm.isf(alpha / max(looks, 1)))


def test(previous: Sequence[Mapping[str, Any] | None], current: Mapping[str, Any], windows: int,
         alpha: float, burn_in: int = 0) -> dict[str, Any]:
    """The accumulated test of ``current`` (a window's ``{stream: evidence}``) with the windows before it.

    ``previous``: the evidence of the earlier windows judged by the same champion, oldest first (None
    for a window without any). The first ``burn_in`` of them join the holdout as the level to compare
    with; the later ones (after the last alarm) are pooled with ``current``. Earlier alarms are found by
    running the test through the windows in order, so the result depends on the recorded evidence only.
    Returns per stream the looks' z-values, the largest, how many windows were pooled at the largest,
    and whether it alarms."""
    z_star = critical_z(alpha, windows)
    reference: list[Mapping[str, Any]] = []
    since_alarm: list[Mapping[str, Any]] = []
    building = burn_in > 0
    for record in (r for r in previous if r):
        if _looks(reference, since_alarm, record, windows, z_star)["alarm"]:
            since_alarm, building = [], False  # a window that alarms never joins the level
        elif building and len(reference) < burn_in:
            reference.append(record)
        else:
            building = False
            since_alarm.append(record)
    return {"critical_z": round(z_star, 4), "windows": windows, "alpha": alpha,
            "burn_in_windows": len(reference), "pooled_since": len(since_alarm),
            **_looks(reference, since_alarm, current, windows, z_star)}


def _looks(reference: Sequence[Mapping[str, Any]], before: Sequence[Mapping[str, Any]], now: Mapping[str, Any],
           windows: int, z_star: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stream in STREAMS:
        if not now.get(stream):
            continue
        chain = [now[stream]]
        for record in reversed(before):
            if len(chain) >= windows or not record.get(stream):
                break
            chain.insert(0, record[stream])
        level = [r[stream] for r in reference if r.get(stream)]
        looks = [_z(chain[-j:], level) for j in range(1, len(chain) + 1)]
        best = max(range(len(looks)), key=lambda i: looks[i])
        out[stream] = {"z": [round(z, 4) for z in looks], "max_z": round(looks[best], 4),
                       "pooled_windows": best + 1, "alarm": bool(looks[best] >= z_star)}
    out["alarm"] = any(out.get(s, {}).get("alarm") for s in STREAMS)
    return out
