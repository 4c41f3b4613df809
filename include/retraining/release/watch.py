"""The watch after a promotion: does the new champion hold up in production against the one it replaced?

The gate judged the new champion on an out-of-time holdout; production then shows whether that held.
For the next ``watch.windows`` windows after a promotion (a deploy by ``model_retraining`` or a manual
``promote``), every live run scores **both** the new champion and the champion it replaced on the same
labelled rows that arrived after the promotion took effect (rows neither model learned from), and
compares them by the gate's own evidence rules, turned around:

- the primary metric of the previous champion beats the new one's by more than ``watch.max_drop``
  (absolute for bounded metrics, relative for RMSE and MAE, as the gate's ``min_improvement``), and
- the gate's significance test (``gate.significance``: paired bootstrap or McNemar on the same rows)
  says so. Each watched window looks again at a growing set of rows, so the test's error rate is
  split over the ``watch.windows`` looks (Bonferroni): the chance of a false rollback over the whole
  watch stays at most ``1 - gate.significance.confidence``. With ``method: none`` the margin alone decides.

When both hold, the run decides ``rollback`` (trigger ``post_deploy_watch``) and the ``rollback_champion``
task restores the previous champion through the same recoverable promotion path as a deploy
(:func:`.promotion.switch_champion`: intent row, aliases, export, reload, champion history). With fewer
than ``watch.min_rows`` labelled rows since the promotion the watch waits for the next window. Backfills
and replays of past windows never watch: they never change the registry.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ..config import RetrainingConfig
from ..metrics import HIGHER_IS_BETTER, clean, metrics_of, outputs
from ..record import promotions
from .gate import RELATIVE_METRICS

log = logging.getLogger(__name__)

WATCHED_ACTIONS = ("deploy", "promote")  # a rollback restores a known champion: not watched again
TRIGGER = "post_deploy_watch"


@dataclass(frozen=True)
class Watched:
    """The promotion under watch and which of its watched windows this run is (1 .. ``watch.windows``)."""

    promotion: promotions.Promotion
    look: int

    @property
    def new_version(self) -> int:
        return self.promotion.target_version

    @property
    def previous_version(self) -> int:
        assert self.promotion.champion_before is not None
        return self.promotion.champion_before


def watched_promotion(cfg: RetrainingConfig, dsn: str, champion_version: int | None, window_end: datetime,
                      grid: timedelta) -> Watched | None:
    """The promotion this window watches: the model's newest completed promotion, if it made ``champion_version``
    the champion (a deploy or a manual promote that replaced another champion), took effect before
    ``window_end`` and no more than ``watch.windows`` windows of ``grid`` before it."""
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
    look = math.ceil(elapsed / grid.total_seconds())
    return Watched(newest, look) if look <= cfg.watch.windows else None


def margin(metric: str, previous: float, new: float) -> float:
    """How much better the previous champion is than the new one, in the gate's units (positive: better)."""
    if metric in RELATIVE_METRICS:
        return (new - previous) / abs(previous) if previous else 0.0
    return previous - new if HIGHER_IS_BETTER[metric] else new - previous


def compare(cfg: RetrainingConfig, y: np.ndarray, previous: np.ndarray, new: np.ndarray, looks: int) -> dict[str, Any]:
    """The evidence that the previous champion is better than the new one on the same rows. Pure.

    Returns both models' metrics, the margin of the primary metric, the significance test (at the gate's
    confidence, its error rate split over ``looks``) and ``worse``: whether the new champion is significantly
    worse."""
    from . import significance

    task = cfg.model.task
    metric = cfg.primary_metric
    prev_metrics, new_metrics = clean(metrics_of(y, previous, task)), clean(metrics_of(y, new, task))
    p, n = prev_metrics.get(metric), new_metrics.get(metric)
    diff = None if p is None or n is None else margin(metric, p, n)
    conf = cfg.gate.significance
    alpha = (1 - conf.confidence) / max(looks, 1)
    test: dict[str, Any] | None = None
    significant = True
    if conf.method == "mcnemar" and task != "regression":
        test = {**significance.mcnemar(y, previous.argmax(axis=1), new.argmax(axis=1)), "method": "mcnemar",
                "alpha": round(alpha, 6)}
        significant = bool(test.get("candidate_better")) and test["p_value"] < alpha
    elif conf.method != "none":
        test = {**significance.paired_bootstrap(y, previous, new, metric, n_resamples=conf.resamples,
                                                confidence=1 - alpha, seed=cfg.training.seed),
                "method": "paired_bootstrap"}
        low, high = test.get("ci_low"), test.get("ci_high")
        if low is None or high is None or math.isnan(low) or math.isnan(high):
            significant = False
        else:
            significant = low > 0 if HIGHER_IS_BETTER[metric] else high < 0
    worse = diff is not None and diff > cfg.watch.max_drop and significant
    return {"metric": metric, "previous_metrics": prev_metrics, "new_metrics": new_metrics,
            "margin": None if diff is None else round(diff, 6), "max_drop": cfg.watch.max_drop,
            "significance": test, "significant": significant, "confidence": round(1 - alpha, 6), "worse": worse}


def _reason(w: Watched, rows: int, result: dict[str, Any]) -> str:
    metric, prev, new = result["metric"], result["previous_metrics"], result["new_metrics"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    head = (f"post-deploy watch of v{w.new_version} (promoted {w.promotion.effective_at:%Y-%m-%d %H:%M} UTC, "
            f"window {w.look} of the watch)")
    both = (f"on {rows} labelled rows since the promotion, {metric} v{w.new_version} {fmt(new.get(metric))} vs "
            f"v{w.previous_version} {fmt(prev.get(metric))}")
    test = result.get("significance") or {}
    if test.get("method") == "paired_bootstrap":
        evidence = (f"{result['confidence']:.1%} paired-bootstrap interval of v{w.previous_version} - "
                    f"v{w.new_version} [{fmt(test.get('ci_low'))}, {fmt(test.get('ci_high'))}]")
    elif test.get("method") == "mcnemar":
        evidence = f"McNemar p = {test['p_value']:.4f} (needs < {test['alpha']})"
    else:
        evidence = "no significance test (gate.significance.method none)"
    if result["worse"]:
        return (f"{head}: the new champion is significantly worse {both}; {evidence}: roll back to "
                f"v{w.previous_version}")
    return f"{head}: the new champion holds up {both}; {evidence}"


def observe(cfg: RetrainingConfig, client: Any, dsn: str, champion_version: int | None, window_end: datetime,
            grid: timedelta) -> dict[str, Any] | None:
    """The watch's verdict for a live run's window, or None when no promotion is under watch.

    ``status`` is ``worse`` (roll back), ``holds``, ``waiting`` (too few labelled rows since the promotion) or
    ``unavailable`` (a model cannot be loaded: the reason says which; the run goes on without the watch)."""
    from .. import threads
    from ..sources import load_window
    from ..training.models import targets
    from . import registry

    watched = watched_promotion(cfg, dsn, champion_version, window_end, grid)
    if watched is None:
        return None
    p = watched.promotion
    base: dict[str, Any] = {"promotion_id": p.id, "new_version": watched.new_version,
                            "previous_version": watched.previous_version, "promoted_at": p.effective_at.isoformat(),
                            "look": watched.look, "windows": cfg.watch.windows}
    rows = load_window(cfg, p.effective_at, window_end, labelled_only=True, newest=cfg.performance.max_rows)
    if len(rows) < cfg.watch.min_rows:
        reason = (f"post-deploy watch of v{watched.new_version}: {len(rows)} labelled rows since the promotion "
                  f"({p.effective_at:%Y-%m-%d %H:%M} UTC), watch.min_rows is {cfg.watch.min_rows}: judged in a later "
                  "window")
        log.info("%s", reason)
        return {**base, "status": "waiting", "rows": int(len(rows)), "reason": reason}
    name = cfg.model.registry_name
    budget = threads.for_config(cfg).threads
    scores = {}
    try:
        for version in (watched.new_version, watched.previous_version):
            info = registry.version_info(client, name, version)
            meta = registry.load_run_json(info.run_id, registry.META_ARTIFACT)
            model = registry.load_model(info.uri, budget)
            scores[version] = (meta, outputs(model, rows[meta["features"]], cfg.model.task).astype(float))
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
    result = compare(cfg, y, scores[watched.previous_version][1], scores[watched.new_version][1], cfg.watch.windows)
    reason = _reason(watched, len(rows), result)
    (log.warning if result["worse"] else log.info)("%s", reason)
    return {**base, **result, "status": "worse" if result["worse"] else "holds", "rows": int(len(rows)),
            "reason": reason}
