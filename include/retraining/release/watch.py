"""The watch after a promotion: does the new champion hold up in production against the one it replaced?

The gate judged the new champion on an out-of-time holdout; production then shows whether that held. For
``watch.hours`` after a promotion (a deploy by ``model_retraining`` or a manual ``promote``), live runs score
**both** the new champion and the champion it replaced on the same labelled rows that arrived since the
promotion took effect (rows neither model learned from), and compare them by the gate's evidence rules,
turned around: the previous champion's primary metric beats the new one's by more than ``watch.max_drop``
(absolute, or relative for RMSE, MAE and log loss), and the gate's paired test says so.

**Any cadence.** The span is time since the promotion, not a count of schedule steps, so a weekly check
watches as a 6-hourly one does. It is cut into ``watch.looks`` equal checkpoints; a run judges when its
window end reaches a checkpoint its predecessor on the schedule (``window_end - grid``) had not reached,
on all labelled rows from the promotion to ``min(window_end, promotion + hours)`` (at most
``watch.max_rows``, the newest). Runs between checkpoints record ``watching``.

**Error rate over the looks.** Each judgement gets ``alpha = (1 - gate.significance.confidence) * r / looks``,
``r`` the checkpoints it reaches (a weekly run that reaches all four at once gets the whole alpha): alpha
spending with a linear spending function in the time fraction, made valid by Bonferroni over the
increments whatever the correlation between looks, so the chance of a false rollback over the whole watch
is at most ``1 - confidence``. A checkpoint that cannot be judged (too few rows or days) spends its share.

**Time-respecting evidence.** Rows of one day share its weather and its incidents: the paired test
resamples whole days (``watch.block``) and needs ``watch.min_blocks`` days with labelled rows; with few
days the interval is widened by Student's t (see :mod:`.significance`), so one bad day never rolls a model
back on its own. With ``gate.significance.method: none`` the margin alone decides.

When the new champion is significantly worse the run decides ``rollback`` (trigger ``post_deploy_watch``)
and ``rollback_champion`` restores the previous champion through the recoverable promotion path
(:func:`.promotion.switch_champion`). Backfills and replays never watch: they never change the registry.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ..config import RetrainingConfig
from ..metrics import HIGHER_IS_BETTER, clean, metrics_of
from ..record import promotions
from .gate import RELATIVE_METRICS

log = logging.getLogger(__name__)

WATCHED_ACTIONS = ("deploy", "promote")  # a rollback restores a known champion: not watched again
TRIGGER = "post_deploy_watch"


@dataclass(frozen=True)
class Watched:
    """The promotion under watch; ``look``: the checkpoints (1 .. ``watch.looks``) the run's window end has reached,
    ``new_checkpoints``: how many of them its predecessor on the schedule had not (0: between checkpoints)."""

    promotion: promotions.Promotion
    look: int
    new_checkpoints: int
    looks: int
    span_end: datetime

    @property
    def new_version(self) -> int:
        return self.promotion.target_version

    @property
    def previous_version(self) -> int:
        assert self.promotion.champion_before is not None
        return self.promotion.champion_before

    def alpha(self, cfg: RetrainingConfig) -> float:
        """This look's share of the watch's error rate: its new checkpoints' share of ``1 - confidence``."""
        return (1 - cfg.gate.significance.confidence) * self.new_checkpoints / self.looks

    def next_checkpoint(self) -> datetime:
        step = (self.span_end - self.promotion.effective_at) / self.looks
        return self.promotion.effective_at + step * (self.look + 1)


def watched_promotion(cfg: RetrainingConfig, dsn: str, champion_version: int | None, window_end: datetime,
                      grid: timedelta) -> Watched | None:
    """The promotion this window watches: the model's newest completed promotion, if it made ``champion_version``
    the champion (a deploy or a manual promote that replaced another champion), took effect before
    ``window_end``, and its watch had not ended by the previous scheduled window (``window_end - grid``)."""
    if not cfg.watch.enabled or champion_version is None:
        return None
    newest = next((p for p in promotions.history(dsn, cfg.model.registry_name, limit=50) if p.state == "completed"),
                  None)
    if newest is None or newest.action not in WATCHED_ACTIONS or newest.champion_before is None:
        return None
    if newest.target_version != champion_version or newest.champion_before == champion_version:
        return None
    elapsed = (window_end - newest.effective_at).total_seconds()  # (pendulum's Duration does not divide)
    if elapsed <= 0:
        return None
    looks = cfg.watch.looks
    step = cfg.watch.hours * 3600.0 / looks

    def reached(seconds: float) -> int:
        return 0 if seconds <= 0 else min(looks, int(math.floor(seconds / step + 1e-9)))

    now, before = reached(elapsed), reached(elapsed - grid.total_seconds())
    if before >= looks:
        return None
    return Watched(newest, now, now - before, looks, newest.effective_at + timedelta(hours=cfg.watch.hours))


def margin(metric: str, previous: float, new: float) -> float:
    """How much better the previous champion is than the new one, in the gate's units (positive: better)."""
    if metric in RELATIVE_METRICS:
        return (new - previous) / abs(previous) if previous else 0.0
    return previous - new if HIGHER_IS_BETTER[metric] else new - previous


def compare(cfg: RetrainingConfig, y: np.ndarray, previous: np.ndarray, new: np.ndarray, *, alpha: float,
            blocks: Any | None = None, thresholds: tuple[float | None, float | None] = (None, None)
            ) -> dict[str, Any]:
    """The evidence that the previous champion is better than the new one on the same rows. Pure.

    Returns both models' metrics (threshold metrics at each model's own operating threshold, ``thresholds`` =
    (previous, new)), the margin of the primary metric, the gate's paired test at confidence ``1 - alpha`` on
    ``blocks`` (:class:`.significance.Blocks`; None: rows as independent) and ``worse``: whether the new
    champion is significantly worse."""
    from .gate import significance_test

    task = cfg.model.task
    metric = cfg.primary_metric
    t_prev, t_new = thresholds
    prev_metrics = clean(metrics_of(y, previous, task, t_prev))
    new_metrics = clean(metrics_of(y, new, task, t_new))
    p, n = prev_metrics.get(metric), new_metrics.get(metric)
    diff = None if p is None or n is None else margin(metric, p, n)
    # "candidate" = the previous champion: a significant "improvement" of it is the new one being worse
    test = significance_test(cfg, y, previous, new, blocks, (t_prev, t_new), confidence=1 - alpha)
    if test is None:
        significant = True
    elif test.get("method") == "mcnemar":
        significant = bool(test.get("candidate_better")) and test["p_value"] < alpha
    else:
        low, high = test.get("ci_low"), test.get("ci_high")
        if low is None or high is None or math.isnan(low) or math.isnan(high):
            significant = False
        else:
            significant = low > 0 if HIGHER_IS_BETTER[metric] else high < 0
    worse = diff is not None and diff > cfg.watch.max_drop and significant
    return {"metric": metric, "previous_metrics": prev_metrics, "new_metrics": new_metrics,
            "margin": None if diff is None else round(diff, 6), "max_drop": cfg.watch.max_drop,
            "significance": test, "significant": significant, "alpha": round(alpha, 8),
            "confidence": round(1 - alpha, 8), "worse": worse}


def _reason(w: Watched, rows: int, result: dict[str, Any]) -> str:
    metric, prev, new = result["metric"], result["previous_metrics"], result["new_metrics"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    head = (f"post-deploy watch of v{w.new_version} (promoted {w.promotion.effective_at:%Y-%m-%d %H:%M} UTC, "
            f"checkpoint {w.look} of {w.looks})")
    both = (f"on {rows} labelled rows since the promotion, {metric} v{w.new_version} {fmt(new.get(metric))} vs "
            f"v{w.previous_version} {fmt(prev.get(metric))}")
    test = result.get("significance") or {}
    blocks = f" over {test.get('blocks')} {test.get('block')} blocks" if test.get("block") not in (None, "row") else ""
    if test.get("method") == "paired_bootstrap":
        evidence = (f"{result['confidence']:.2%} block-bootstrap interval of v{w.previous_version} - "
                    f"v{w.new_version} [{fmt(test.get('ci_low'))}, {fmt(test.get('ci_high'))}]{blocks}")
    elif test.get("method") == "mcnemar":
        evidence = f"McNemar p = {test['p_value']:.4g} (needs < {test['alpha']:.4g}){blocks}"
    else:
        evidence = "no significance test (gate.significance.method none)"
    if result["worse"]:
        return (f"{head}: the new champion is significantly worse {both}; {evidence}: roll back to "
                f"v{w.previous_version}")
    return f"{head}: the new champion holds up {both}; {evidence}"


def observe(cfg: RetrainingConfig, client: Any, dsn: str, champion_version: int | None, window_end: datetime,
            grid: timedelta) -> dict[str, Any] | None:
    """The watch's verdict for a live run's window, or None when no promotion is under watch.

    ``status`` is ``worse`` (roll back), ``holds``, ``watching`` (between checkpoints: nothing judged),
    ``waiting`` (a checkpoint, but too few labelled rows or days since the promotion) or ``unavailable`` (a
    model cannot be loaded: the reason says which; the run goes on without the watch)."""
    from ..sources import load_window
    from ..training.models import targets
    from . import registry, significance

    watched = watched_promotion(cfg, dsn, champion_version, window_end, grid)
    if watched is None:
        return None
    p = watched.promotion
    base: dict[str, Any] = {"promotion_id": p.id, "new_version": watched.new_version,
                            "previous_version": watched.previous_version, "promoted_at": p.effective_at.isoformat(),
                            "look": watched.look, "windows": watched.looks, "looks": watched.looks,
                            "new_checkpoints": watched.new_checkpoints, "watch_hours": cfg.watch.hours,
                            "watch_ends": watched.span_end.isoformat()}
    if watched.new_checkpoints == 0:
        reason = (f"post-deploy watch of v{watched.new_version}: between checkpoints ({watched.look} of "
                  f"{watched.looks} judged); the next at {watched.next_checkpoint():%Y-%m-%d %H:%M} UTC")
        return {**base, "status": "watching", "reason": reason}
    alpha = watched.alpha(cfg)
    base["alpha"] = round(alpha, 8)
    end = min(window_end, watched.span_end)
    rows = load_window(cfg, p.effective_at, end, labelled_only=True,
                       newest=cfg.watch.max_rows or cfg.performance.max_rows)
    blocks = None
    if len(rows):
        blocks = significance.choose_blocks(rows[cfg.columns.timestamp], cfg.watch.min_blocks, cfg.watch.block)
        base.update(blocks.as_dict())
    if len(rows) < cfg.watch.min_rows or blocks is None or not blocks.enough:
        short = (f"watch.min_rows is {cfg.watch.min_rows}" if len(rows) < cfg.watch.min_rows else
                 f"{0 if blocks is None else blocks.count} {cfg.watch.block}s with labelled rows, watch.min_blocks "
                 f"is {cfg.watch.min_blocks} (rows of one {cfg.watch.block} share its conditions)")
        reason = (f"post-deploy watch of v{watched.new_version}: {len(rows)} labelled rows since the promotion "
                  f"({p.effective_at:%Y-%m-%d %H:%M} UTC), {short}: judged at a later checkpoint")
        log.info("%s", reason)
        return {**base, "status": "waiting", "rows": int(len(rows)), "reason": reason}
    try:
        scores = registry.score_versions(cfg, client, (watched.new_version, watched.previous_version), rows)
    except Exception as exc:  # a deleted version, a missing artifact: the run goes on, the row says why
        reason = f"post-deploy watch of v{watched.new_version} could not score both champions: {exc}"
        log.warning("%s", reason)
        return {**base, "status": "unavailable", "rows": int(len(rows)), "reason": reason[:2000]}
    meta_new, meta_prev = scores[watched.new_version][0], scores[watched.previous_version][0]
    if cfg.model.task != "regression" and list(meta_new["classes"]) != list(meta_prev["classes"]):
        reason = (f"post-deploy watch of v{watched.new_version}: its classes {meta_new['classes']} differ from "
                  f"v{watched.previous_version}'s {meta_prev['classes']}; the two cannot be compared row by row")
        log.warning("%s", reason)
        return {**base, "status": "unavailable", "rows": int(len(rows)), "reason": reason}
    y = targets(cfg, rows, meta_new["classes"])
    thresholds = (meta_prev.get("operating_threshold"), meta_new.get("operating_threshold"))
    result = compare(cfg, y, scores[watched.previous_version][1], scores[watched.new_version][1], alpha=alpha,
                     blocks=blocks, thresholds=thresholds)
    reason = _reason(watched, len(rows), result)
    (log.warning if result["worse"] else log.info)("%s", reason)
    return {**base, **result, "status": "worse" if result["worse"] else "holds", "rows": int(len(rows)),
            "thresholds": {"previous": thresholds[0], "new": thresholds[1]}, "reason": reason}
