"""Shadow evaluation: a challenger the gate could not judge is scored beside the champion until the evidence decides.

When the gate's verdict is ``inconclusive`` (not significantly better, not significantly worse) the candidate is
registered as ``challenger`` and not deployed. Every later live run scores challenger and champion on the labelled
rows that arrived since the challenger was registered (rows neither model trained on) and looks at the running
evidence of the primary metric's gain (challenger minus champion, in the gate's units). Each look estimates the
gain on all rows so far and its standard error by the leave-one-block-out jackknife over blocks of
``shadow.block_hours`` (a day by default): rows that share a day share its weather and delays, so a day is one
cluster, and the reference distribution is Student's t with ``blocks - 1`` degrees of freedom.

Why alpha spending over a fixed horizon, not an always-valid confidence sequence: confidence sequences need a
running mean of independent, bounded increments, but the primary metric (ROC AUC, F1, R2) is a statistic of the
pooled rows and the increments (days) are few and dependent within. An error-spending function alpha(t) over the
information fraction ``t = rows / shadow.max_rows`` (O'Brien-Fleming-like by default, Pocock optional) works
with any statistic that is asymptotically normal at each look. Look ``k`` tests at the level
``alpha(t_k) - alpha(t_{k-1})``; by the union bound the chance of ever promoting a challenger that is not better
is at most ``sum_k (alpha(t_k) - alpha(t_{k-1})) = alpha(t_K) <= alpha``, whatever the correlation between looks,
so looks at irregular times (a skipped run, a re-run window) stay valid: the price is some conservatism, small
with O'Brien-Fleming, which spends almost nothing early and most of alpha near the horizon. Dropping a challenger
that is not worse has the same bound. Futility (the upper bound below ``shadow.min_improvement``) only stops
early, so it never adds a false promotion.

Outcomes of a look: ``promote`` (lower bound above 0 and gain at least ``shadow.min_improvement``; the run decides
``promote_challenger`` and promotes through :func:`.promotion.switch_champion`), ``dropped`` (significantly worse,
futile, ``max_rows`` or ``max_hours`` reached, the champion changed, or a newer candidate replaced it: the alias is
removed and the reason kept), ``continue`` or ``waiting`` (too few rows or blocks). State: ``model_shadow_challengers``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from psycopg2.extras import Json, RealDictCursor

from ..config import RetrainingConfig
from ..connections import connect
from ..metrics import HIGHER_IS_BETTER, clean, metrics_of
from ..record import events

log = logging.getLogger(__name__)

TABLE = "model_shadow_challengers"
STATES = ("shadow", "promoted", "dropped")
ACTIVE = "shadow"
RELATIVE_METRICS = {"rmse", "mae"}  # as the gate: a relative margin (0.01 = 1 % lower)
_ready: set[str] = set()


# --- the sequential test (pure) ----------------------------------------------------------------------

def spent(t: float, alpha: float, spending: str = "obrien_fleming") -> float:
    """The error rate spent by information fraction ``t`` (0..1), one-sided: alpha(0) = 0, alpha(1) = alpha."""
    from scipy.stats import norm

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    t = min(max(float(t), 0.0), 1.0)
    if t == 0:
        return 0.0
    if spending == "obrien_fleming":  # Lan-DeMets: 2 (1 - Phi(z_{1-alpha/2} / sqrt(t)))
        return float(2 * norm.sf(norm.isf(alpha / 2) / math.sqrt(t)))
    if spending == "pocock":
        return float(alpha * math.log(1 + (math.e - 1) * t))
    raise ValueError(f"unknown spending function {spending!r}; use 'obrien_fleming' or 'pocock'")


def gain(metric: str, champion: float, challenger: float) -> float:
    """How much better the challenger is than the champion in the gate's units (positive: better)."""
    if metric in RELATIVE_METRICS:
        return (champion - challenger) / abs(champion) if champion else 0.0
    return challenger - champion if HIGHER_IS_BETTER[metric] else champion - challenger


def _metric(metric: str, task: str, y: np.ndarray, out: np.ndarray) -> float:
    if metric == "roc_auc" and task != "regression" and out.ndim == 2 and out.shape[1] == 2:
        from .significance import auc_fast

        return auc_fast(y, out[:, 1])
    value = metrics_of(y, out, task).get(metric)  # type: ignore[arg-type]
    return math.nan if value is None else float(value)


def block_evidence(y: Any, champion: Any, challenger: Any, blocks: Any, metric: str, task: str) -> dict[str, Any]:
    """The gain of the challenger on all rows and its leave-one-block-out jackknife standard error. Pure.

    ``blocks`` labels each row's cluster (e.g. its day). Blocks whose removal leaves the metric undefined are
    left out of the jackknife (and counted)."""
    y, champ, chall, blocks = (np.asarray(a) for a in (y, champion, challenger, blocks))
    if not len(y) == len(champ) == len(chall) == len(blocks):
        raise ValueError(f"y, the two models' outputs and the blocks differ in length: {len(y)}, {len(champ)}, "
                         f"{len(chall)}, {len(blocks)}")
    m_champ, m_chall = _metric(metric, task, y, champ), _metric(metric, task, y, chall)
    estimate = gain(metric, m_champ, m_chall)
    labels = np.unique(blocks)
    replicates = []
    for label in labels:
        keep = blocks != label
        if not keep.any():
            continue
        value = gain(metric, _metric(metric, task, y[keep], champ[keep]), _metric(metric, task, y[keep], chall[keep]))
        if math.isfinite(value):
            replicates.append(value)
    g = len(replicates)
    se = math.nan
    if g >= 2 and math.isfinite(estimate):
        r = np.asarray(replicates)
        se = float(math.sqrt((g - 1) / g * float(np.sum((r - r.mean()) ** 2))))
    return {"metric": metric, "champion": m_champ, "challenger": m_chall, "estimate": estimate, "se": se,
            "rows": int(len(y)), "blocks": int(len(labels)), "jackknife_blocks": g}


def look(estimate: float, se: float, blocks: int, t: float, t_previous: float, *, alpha: float,
         spending: str = "obrien_fleming", min_improvement: float = 0.0) -> dict[str, Any]:
    """One look of the group-sequential test at information fraction ``t`` after a look at ``t_previous``. Pure.

    Returns the level spent at this look, the critical value (Student's t, ``blocks - 1`` df), the two-sided
    bounds of the gain at that level and the outcome: ``promote``, ``worse``, ``futile`` or ``continue``."""
    from scipy.stats import t as student

    total, before = spent(t, alpha, spending), spent(t_previous, alpha, spending)
    level = total - before
    result: dict[str, Any] = {"t": round(min(t, 1.0), 6), "t_previous": round(min(t_previous, 1.0), 6),
                              "alpha_spent": total, "level": level, "critical": None, "lower": None, "upper": None}
    if level <= 0 or blocks < 2 or not (math.isfinite(estimate) and math.isfinite(se)):
        return {**result, "outcome": "continue"}
    critical = float(student.isf(level, blocks - 1))
    half = critical * max(se, 1e-12)
    lower, upper = estimate - half, estimate + half
    if lower > 0 and estimate >= min_improvement:
        outcome = "promote"
    elif upper < 0:
        outcome = "worse"
    elif upper < min_improvement:
        outcome = "futile"
    else:
        outcome = "continue"
    return {**result, "critical": critical, "lower": lower, "upper": upper, "outcome": outcome}


# --- state -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shadow:
    """One row of ``model_shadow_challengers``: a challenger in (or out of) shadow evaluation."""

    id: int
    model_name: str
    registered_name: str
    version: int
    champion_version: int | None
    started_at: datetime
    state: str
    dag_id: str | None
    run_id: str | None
    attempt: int | None
    reason: str | None
    resolution: str | None
    looks: list[dict[str, Any]]
    last: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> Shadow:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def ensure_schema(dsn: str) -> None:
    """Create ``model_shadow_challengers`` if missing."""
    if dsn in _ready:
        return
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{TABLE}_active_idx",))
        if cur.fetchone()[0]:
            _ready.add(dsn)
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (0x6D73686164,))  # "mshad"
        cur.execute(
            f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                id BIGSERIAL PRIMARY KEY,
                model_name TEXT NOT NULL,
                registered_name TEXT NOT NULL,
                version INTEGER NOT NULL,
                champion_version INTEGER,
                started_at TIMESTAMPTZ NOT NULL,
                state TEXT NOT NULL DEFAULT 'shadow' CHECK (state IN ({", ".join(f"'{s}'" for s in STATES)})),
                dag_id TEXT,
                run_id TEXT,
                attempt INTEGER,
                reason TEXT,
                resolution TEXT,
                looks JSONB NOT NULL DEFAULT '[]'::jsonb,
                last JSONB,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                UNIQUE (registered_name, version))"""
        )
        cur.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_active_idx ON {TABLE} (registered_name) WHERE state = 'shadow'")
    _ready.add(dsn)


def _select(dsn: str, where: str, params: tuple, order: str = "id DESC") -> list[Shadow]:
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(f"SELECT * FROM {TABLE} WHERE {where} ORDER BY {order}", params)
        return [Shadow.of(dict(r)) for r in cur.fetchall()]


def active(dsn: str, registered_name: str) -> Shadow | None:
    """The challenger of this registered model in shadow evaluation, if any (at most one: a newer one replaces it)."""
    found = _select(dsn, "registered_name = %s AND state = %s", (registered_name, ACTIVE))
    return found[0] if found else None


def history(dsn: str, registered_name: str, limit: int = 20) -> list[Shadow]:
    """The newest shadow evaluations of a registered model, newest first."""
    return _select(dsn, "registered_name = %s", (registered_name,), f"id DESC LIMIT {int(limit)}")


def of_version(dsn: str, registered_name: str, version: int) -> Shadow | None:
    found = _select(dsn, "registered_name = %s AND version = %s", (registered_name, int(version)))
    return found[0] if found else None


def _resolve(dsn: str, shadow_id: int, state: str, resolution: str, last: dict[str, Any] | None = None) -> bool:
    """Close a shadow evaluation (only an active one: a resolved one keeps its first resolution)."""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET state = %s, resolution = %s, last = coalesce(%s, last), updated_at = now() "
                    f"WHERE id = %s AND state = %s RETURNING id",
                    (state, resolution[:2000], None if last is None else Json(events.finite(last), dumps=_dumps),
                     shadow_id, ACTIVE))
        return cur.fetchone() is not None


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str, allow_nan=False)


def _remove_alias(client: Any, name: str, version: int) -> bool:
    """Remove the ``challenger`` alias if it still names ``version``; True when removed."""
    from .registry import CHALLENGER, version_by_alias

    if client is None:
        return False
    found = version_by_alias(client, name, CHALLENGER)
    if found is None or found.version != int(version):
        return False
    client.delete_registered_model_alias(name, CHALLENGER)
    return True


def lock(dsn: str, model_name: str) -> Any:
    return events.model_lock(dsn, model_name, "shadow")


def drop(dsn: str, client: Any, s: Shadow, reason: str, last: dict[str, Any] | None = None) -> bool:
    """End a shadow evaluation without promotion: the reason is kept and the alias removed (if it still names it)."""
    done = _resolve(dsn, s.id, "dropped", reason, last)
    try:
        _remove_alias(client, s.registered_name, s.version)
    except Exception as exc:  # the registry is down: the row says dropped; the alias goes with the next candidate
        log.warning("could not remove the challenger alias of %s v%s: %s", s.registered_name, s.version, exc)
    if done:
        log.warning("shadow evaluation of %s v%s dropped: %s", s.registered_name, s.version, reason)
    return done


def mark_promoted(dsn: str, s: Shadow, resolution: str) -> bool:
    return _resolve(dsn, s.id, "promoted", resolution)


def start(cfg: RetrainingConfig, client: Any, dsn: str, *, version: int, champion_version: int | None,
          started_at: datetime, run: events.RunKey | None, attempt: int | None, reason: str) -> Shadow:
    """Put ``version`` in shadow evaluation from ``started_at`` (data time); a challenger already in shadow is
    replaced (dropped, reason kept). Idempotent: a retry of the same registration returns the same row."""
    name = cfg.model.registry_name
    ensure_schema(dsn)
    with lock(dsn, cfg.model.name):
        for other in _select(dsn, "registered_name = %s AND state = %s AND version <> %s", (name, ACTIVE, int(version))):
            drop(dsn, client, other, f"replaced by a newer candidate, v{version}"
                                     + (f" ({run.dag_id} {run.run_id})" if run else ""))
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(
                f"""INSERT INTO {TABLE} (model_name, registered_name, version, champion_version, started_at,
                                         dag_id, run_id, attempt, reason)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (registered_name, version) DO NOTHING""",
                (cfg.model.name, name, int(version), champion_version, started_at, run.dag_id if run else None,
                 run.run_id if run else None, attempt, reason[:2000]))
    found = of_version(dsn, name, version)
    assert found is not None
    log.info("%s v%s in shadow evaluation from %s against champion v%s", name, version, started_at, champion_version)
    return found


def replaced(cfg: RetrainingConfig, client: Any, dsn: str, version: int, run: events.RunKey | None) -> list[int]:
    """A newer candidate ``version`` was registered (one that passed the gate): the challengers in shadow are
    dropped. Returns their versions."""
    name = cfg.model.registry_name
    dropped = []
    with lock(dsn, cfg.model.name):
        for other in _select(dsn, "registered_name = %s AND state = %s AND version <> %s", (name, ACTIVE, int(version))):
            if drop(dsn, client, other, f"replaced by a newer candidate, v{version}"
                                        + (f" ({run.dag_id} {run.run_id})" if run else "")):
                dropped.append(other.version)
    return dropped


def _record_look(dsn: str, s: Shadow, entry: dict[str, Any]) -> None:
    """Keep this run's look (a retry of the same run replaces its own entry) and the latest evidence."""
    looks = [x for x in s.looks if not (x.get("dag_id") == entry["dag_id"] and x.get("run_id") == entry["run_id"])]
    looks.append(entry)
    looks.sort(key=lambda x: x.get("window_end") or "")
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET looks = %s, last = %s, updated_at = now() WHERE id = %s",
                    (Json(events.finite(looks), dumps=_dumps), Json(events.finite(entry), dumps=_dumps), s.id))


# --- a live run's look ---------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def observe(cfg: RetrainingConfig, client: Any, dsn: str, champion_version: int | None, window_end: datetime,
            run: events.RunKey) -> dict[str, Any] | None:
    """This live run's look at the challenger in shadow, or None when there is none.

    ``status``: ``promote`` (the run decides ``promote_challenger``), ``dropped``, ``continue``, ``waiting`` (too
    few labelled rows or blocks yet), ``promoted`` (it became the champion meanwhile) or ``unavailable`` (a model
    could not be scored: the reason says why; the shadow goes on)."""
    from .registry import CHALLENGER, version_by_alias

    if not cfg.shadow.enabled:
        return None
    name = cfg.model.registry_name
    if active(dsn, name) is None:  # the usual case: no lock needed
        return _ended_by(dsn, name, run)
    with lock(dsn, cfg.model.name):
        s = active(dsn, name)
        if s is None:
            return _ended_by(dsn, name, run)
        base: dict[str, Any] = {"shadow_id": s.id, "version": s.version, "champion_version": s.champion_version,
                                "started_at": s.started_at.isoformat(), "alpha": cfg.shadow.alpha,
                                "spending": cfg.shadow.spending, "max_rows": cfg.shadow.max_rows,
                                "looks": len(s.looks)}
        who = f"v{s.version}"
        if champion_version == s.version:
            mark_promoted(dsn, s, "the challenger is the champion (promoted by hand or by an earlier run)")
            return {**base, "status": "promoted", "reason": f"shadow evaluation of {who}: it is the champion now"}
        alias = version_by_alias(client, name, CHALLENGER)
        if alias is None or alias.version != s.version:
            why = (f"the 'challenger' alias {'was removed' if alias is None else f'names v{alias.version}'} "
                   "(changed by hand or by another run)")
            drop(dsn, client, s, why, {"dag_id": run.dag_id, "run_id": run.run_id, "status": "dropped"})
            return {**base, "status": "dropped", "reason": f"shadow evaluation of {who} dropped: {why}"}
        if champion_version != s.champion_version:
            why = (f"the champion changed from v{s.champion_version} to v{champion_version} since {who} was "
                   "registered: its evidence was against another model")
            drop(dsn, client, s, why, {"dag_id": run.dag_id, "run_id": run.run_id, "status": "dropped"})
            return {**base, "status": "dropped", "reason": f"shadow evaluation of {who} dropped: {why}"}
        if window_end <= s.started_at:
            return None  # a window before the challenger existed (a manual run of an older window)
        result = _look(cfg, client, dsn, s, window_end, run, base)
        return result


def _ended_by(dsn: str, registered_name: str, run: events.RunKey) -> dict[str, Any] | None:
    """A retry of a check whose first try ended a shadow evaluation: that look again (None when there is none)."""
    found = _select(dsn, "registered_name = %s AND state = 'dropped' AND last->>'dag_id' = %s AND last->>'run_id' = %s",
                    (registered_name, run.dag_id, run.run_id))
    if not found:
        return None
    s = found[0]
    last = s.last or {}
    return {"shadow_id": s.id, "version": s.version, "champion_version": s.champion_version,
            "started_at": s.started_at.isoformat(), "status": "dropped", "rows": last.get("rows"),
            "blocks": last.get("blocks"), "t": last.get("t"), "bound": last.get("lower"), "upper": last.get("upper"),
            "evidence": last, "looks": len(s.looks), "reason": s.resolution}


def _look(cfg: RetrainingConfig, client: Any, dsn: str, s: Shadow, window_end: datetime, run: events.RunKey,
          base: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from ..sources import load_window
    from ..training.models import targets
    from . import registry

    conf = cfg.shadow
    who = f"v{s.version}"
    hours = (window_end - s.started_at).total_seconds() / 3600
    out_of_time = hours >= conf.max_hours
    rows = load_window(cfg, s.started_at, window_end, labelled_only=True, newest=conf.max_rows)
    ts = pd.to_datetime(rows[cfg.columns.timestamp], utc=True)
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    blocks = ((ts - epoch).dt.total_seconds() // (conf.block_hours * 3600)).astype("int64").to_numpy()
    n_blocks = int(len(np.unique(blocks)))
    base = {**base, "rows": int(len(rows)), "blocks": n_blocks, "hours": round(hours, 2)}
    if len(rows) < conf.min_rows or n_blocks < conf.min_blocks:
        need = (f"{len(rows)} labelled rows in {n_blocks} blocks of {conf.block_hours:g} h since "
                f"{s.started_at:%Y-%m-%d %H:%M} UTC (needs {conf.min_rows} rows in {conf.min_blocks} blocks)")
        if out_of_time:
            why = f"no verdict within shadow.max_hours ({conf.max_hours:g} h): {need}"
            drop(dsn, client, s, why, {**base, "status": "dropped"})
            return {**base, "status": "dropped", "reason": f"shadow evaluation of {who} dropped: {why}"}
        return {**base, "status": "waiting", "reason": f"shadow evaluation of {who}: {need}: judged in a later window"}
    try:
        scores = registry.score_versions(cfg, client, (s.version, s.champion_version), rows)  # type: ignore[arg-type]
    except Exception as exc:  # a deleted version, a missing artifact: the run goes on, the row says why
        reason = f"shadow evaluation of {who} could not score both models: {exc}"
        log.warning("%s", reason)
        return {**base, "status": "unavailable", "reason": reason[:2000]}
    meta_chall, meta_champ = scores[s.version][0], scores[s.champion_version][0]
    if cfg.model.task != "regression" and list(meta_chall["classes"]) != list(meta_champ["classes"]):
        why = f"its classes {meta_chall['classes']} differ from the champion's {meta_champ['classes']}"
        drop(dsn, client, s, why)
        return {**base, "status": "dropped", "reason": f"shadow evaluation of {who} dropped: {why}"}
    y = targets(cfg, rows, meta_chall["classes"])
    evidence = block_evidence(y, scores[s.champion_version][1], scores[s.version][1], blocks, cfg.primary_metric,
                              cfg.model.task)
    t = len(rows) / conf.max_rows
    # alpha already spent by every other run's look, whatever its window (a re-run of an older window spends
    # nothing new): the union bound holds however the looks are ordered
    others = [x for x in s.looks if not (x.get("dag_id") == run.dag_id and x.get("run_id") == run.run_id)]
    t_previous = max((float(x.get("t") or 0.0) for x in others if x.get("level")), default=0.0)
    test = look(evidence["estimate"], evidence["se"], evidence["jackknife_blocks"], t, t_previous,
                alpha=conf.alpha, spending=conf.spending, min_improvement=conf.min_improvement)
    metric = cfg.primary_metric
    both = (f"on {len(rows)} labelled rows in {n_blocks} blocks since {s.started_at:%Y-%m-%d %H:%M} UTC, {metric} "
            f"{who} {_fmt(evidence['challenger'])} vs champion v{s.champion_version} {_fmt(evidence['champion'])}, "
            f"gain {_fmt(evidence['estimate'])}")
    if test["critical"] is None:
        bound = "no new information since the last look" if test["level"] <= 0 else "no standard error"
    else:
        bound = (f"interval [{_fmt(test['lower'])}, {_fmt(test['upper'])}] at level {test['level']:.2g} of look "
                 f"t = {test['t']:.2f} (alpha {conf.alpha:g} spent {test['alpha_spent']:.3g}, {conf.spending})")
    entry = {"dag_id": run.dag_id, "run_id": run.run_id, "window_end": window_end.isoformat(),
             **clean({k: evidence[k] for k in ("champion", "challenger", "estimate", "se")}),
             "rows": len(rows), "blocks": n_blocks, "t": test["t"], "level": test["level"],
             "alpha_spent": test["alpha_spent"], "lower": test["lower"], "upper": test["upper"],
             "outcome": test["outcome"]}
    result = {**base, "metric": metric, "evidence": entry, "bound": test["lower"], "upper": test["upper"],
              "t": test["t"], "critical": test["critical"], "jackknife_blocks": evidence["jackknife_blocks"]}
    status, why = "continue", None
    if test["outcome"] == "promote":
        status = "promote"
        reason = f"shadow evaluation of {who}: significantly better {both}; {bound}: promote it"
    elif test["outcome"] in ("worse", "futile"):
        what = ("significantly worse" if test["outcome"] == "worse"
                else f"cannot beat the champion by shadow.min_improvement {conf.min_improvement:g}")
        why = f"{what} {both}; {bound}"
    elif t >= 1:
        why = f"no verdict within shadow.max_rows ({conf.max_rows}) {both}; {bound}"
    elif out_of_time:
        why = f"no verdict within shadow.max_hours ({conf.max_hours:g} h) {both}; {bound}"
    if why is not None:
        status = "dropped"
        reason = f"shadow evaluation of {who} dropped: {why}"
    elif status == "continue":
        reason = f"shadow evaluation of {who} continues: {both}; {bound}"
    entry["status"] = status
    _record_look(dsn, s, entry)
    if status == "dropped":
        drop(dsn, client, s, reason, entry)
    (log.warning if status != "continue" else log.info)("%s", reason)
    return {**result, "status": status, "reason": reason[:2000]}
