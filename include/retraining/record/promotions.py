"""The promotion ledger: every change of champion is an *intent* written before anything moves.

A promotion (a deploy, a rollback, a manual promotion) touches three systems that share no
transaction: the MLflow registry (aliases), the serving folder (``current`` link) and the serving
app (reload call). A process killed half-way, or an events database lost while the reload call is
in flight, must not leave a change of champion that nobody recorded. So ``model_promotions`` holds
one row per promotion, written *before* the first alias moves, and advanced after each step:

``intent`` -> ``aliases_moved`` -> ``served`` -> ``completed``, or ``reverted``.

Every step is idempotent (setting an alias to the value it has, re-exporting an exported
version, calling reload again), so an unfinished promotion can always be finished or undone from
what the row says: the target version, the champion and ``previous_champion`` before it, the run
and attempt that asked for it and the time from which the new champion serves. Who finished it is
recorded in ``resolved_by`` (the same task, its retry, the next run of the DAG, ``model_rollback``).

Completing a promotion and appending it to ``model_champion_history`` happen in one transaction,
so the champion history has each change exactly once, whichever process finishes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import RealDictCursor

from ..connections import connect
from . import champion_history, events

log = logging.getLogger(__name__)

TABLE = "model_promotions"
STATES = ("intent", "aliases_moved", "served", "completed", "reverted")
OPEN_STATES = ("intent", "aliases_moved", "served")
_ready: set[str] = set()


@dataclass(frozen=True)
class Promotion:
    """One row of ``model_promotions``."""

    id: int
    model_name: str
    registered_name: str
    target_version: int
    champion_before: int | None
    previous_before: int | None
    action: str
    state: str
    effective_at: datetime
    dag_id: str | None
    run_id: str | None
    attempt: int | None
    reason: str | None
    error: str | None
    resolved_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> Promotion:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    @property
    def run(self) -> events.RunKey | None:
        return events.RunKey(self.model_name, self.dag_id, self.run_id) if self.dag_id and self.run_id else None

    @property
    def finished(self) -> bool:
        return self.state not in OPEN_STATES

    def describe(self) -> str:
        before = f"v{self.champion_before}" if self.champion_before else "none"
        return (f"promotion #{self.id} of {self.registered_name} ({self.action} {before} -> v{self.target_version}, "
                f"{self.dag_id or '?'} {self.run_id or '?'} attempt {self.attempt}, state {self.state})")


def ensure_schema(dsn: str) -> None:
    """Create ``model_promotions`` (and the champion history it appends to) if missing."""
    if dsn in _ready:
        return
    champion_history.ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{TABLE}_open_idx",))
        if cur.fetchone()[0]:  # no DDL (and no table lock) once it exists: see events._up_to_date
            _ready.add(dsn)
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (0x6D70726F6D,))  # "mprom"
        cur.execute(
            f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                id BIGSERIAL PRIMARY KEY,
                model_name TEXT NOT NULL,
                registered_name TEXT NOT NULL,
                target_version INTEGER NOT NULL,
                champion_before INTEGER,
                previous_before INTEGER,
                action TEXT NOT NULL CHECK (action IN ({", ".join(f"'{a}'" for a in champion_history.ACTIONS)})),
                state TEXT NOT NULL DEFAULT 'intent' CHECK (state IN ({", ".join(f"'{s}'" for s in STATES)})),
                effective_at TIMESTAMPTZ NOT NULL,
                dag_id TEXT,
                run_id TEXT,
                attempt INTEGER,
                reason TEXT,
                error TEXT,
                resolved_by TEXT,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
        )
        cur.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_run_idx ON {TABLE} (dag_id, run_id, attempt)")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_open_idx ON {TABLE} (registered_name, id) "
                    f"WHERE state IN ({', '.join(repr(s) for s in OPEN_STATES)})")
    _ready.add(dsn)


def _clean(text: str | None, limit: int = 2000) -> str | None:
    return None if text is None else text.replace("\x00", "")[:limit]


def begin(dsn: str, *, model_name: str, registered_name: str, target_version: int, champion_before: int | None,
          previous_before: int | None, action: str, effective_at: datetime, run: events.RunKey | None,
          attempt: int | None, reason: str | None) -> Promotion:
    """Write the intent (committed before this returns: nothing has moved yet)."""
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            f"""INSERT INTO {TABLE} (model_name, registered_name, target_version, champion_before, previous_before,
                                     action, effective_at, dag_id, run_id, attempt, reason)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
            (model_name, registered_name, int(target_version), champion_before, previous_before, action,
             effective_at, run.dag_id if run else None, run.run_id if run else None, attempt, _clean(reason, 1000)),
        )
        found = Promotion.of(dict(cur.fetchone()))
    log.info("intent recorded: %s", found.describe())
    return found


def advance(dsn: str, promotion_id: int, state: str) -> None:
    """Record that a step is done (only forwards: a finished promotion is never reopened)."""
    if state not in OPEN_STATES:
        raise ValueError(f"advance() moves between {OPEN_STATES}; finish with complete() or revert()")
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET state = %s, updated_at = now() WHERE id = %s AND state IN %s",
                    (state, promotion_id, OPEN_STATES))


def complete(dsn: str, promotion: Promotion, resolved_by: str) -> bool:
    """Mark the promotion completed and append it to the champion history, in one transaction.

    Returns False when it was already finished (by another process): then nothing is written."""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET state = 'completed', resolved_by = %s, updated_at = now() "
                    f"WHERE id = %s AND state IN %s RETURNING id", (_clean(resolved_by, 500), promotion.id, OPEN_STATES))
        if cur.fetchone() is None:
            return False
        if promotion.champion_before != promotion.target_version:
            champion_history.insert(cur, model_name=promotion.model_name, registered_name=promotion.registered_name,
                                    version=promotion.target_version, previous_version=promotion.champion_before,
                                    effective_at=promotion.effective_at, action=promotion.action,
                                    dag_id=promotion.dag_id, run_id=promotion.run_id, attempt=promotion.attempt,
                                    reason=promotion.reason)
    log.info("completed (%s): %s", resolved_by, promotion.describe())
    return True


def revert(dsn: str, promotion: Promotion, resolved_by: str, error: str | None) -> bool:
    """Mark the promotion reverted (the aliases and the serving link are back as they were)."""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET state = 'reverted', resolved_by = %s, error = %s, updated_at = now() "
                    f"WHERE id = %s AND state IN %s RETURNING id",
                    (_clean(resolved_by, 500), _clean(error), promotion.id, OPEN_STATES))
        done = cur.fetchone() is not None
    if done:
        log.warning("reverted (%s): %s: %s", resolved_by, promotion.describe(), error)
    return done


def _select(dsn: str, where: str, params: tuple, order: str = "id") -> list[Promotion]:
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(f"SELECT * FROM {TABLE} WHERE {where} ORDER BY {order}", params)
        return [Promotion.of(dict(r)) for r in cur.fetchall()]


def unfinished(dsn: str, registered_name: str) -> list[Promotion]:
    """Promotions of this registered model that were begun and never completed or reverted, oldest first."""
    return _select(dsn, "registered_name = %s AND state IN %s", (registered_name, OPEN_STATES))


def of_run(dsn: str, run: events.RunKey, attempt: int | None, target_version: int | None = None) -> Promotion | None:
    """The newest promotion this run's attempt began (for ``target_version``, if given), finished or not."""
    where = "model_name = %s AND dag_id = %s AND run_id = %s AND attempt IS NOT DISTINCT FROM %s"
    params: tuple = (*run.params(), attempt)
    if target_version is not None:
        where, params = where + " AND target_version = %s", (*params, int(target_version))
    found = _select(dsn, where, params, "id DESC")
    return found[0] if found else None


def get(dsn: str, promotion_id: int) -> Promotion:
    found = _select(dsn, "id = %s", (promotion_id,))
    if not found:
        raise LookupError(f"no promotion #{promotion_id} in {TABLE}")
    return found[0]


def history(dsn: str, registered_name: str, limit: int = 100) -> list[Promotion]:
    """The newest promotions of a registered model, newest first."""
    return _select(dsn, "registered_name = %s", (registered_name,), f"id DESC LIMIT {int(limit)}")
