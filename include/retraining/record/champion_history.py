"""Which champion was in service when: the record that lets a past window be judged as it was.

MLflow keeps only the current aliases, so every change of champion (a deployment, a rollback, a
manual promotion) is appended to ``model_champion_history`` under the deploy lock, with
``effective_at``: the time from which the new champion served. For a ``model_retraining`` run that
is the end of the window it was trained for (data time, so that a replay of history sees the same
champions as the original runs did, whenever it is replayed); for ``model_rollback`` the time the
person triggered it.

The champion *in service for a window* ``[start, end)`` is the last one whose ``effective_at`` is
before ``end``: the run that checks the window ending at ``end`` is judged by the champion that the
runs of earlier windows left behind, not by one its own window later produced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import RealDictCursor

from ..connections import connect
from . import events

log = logging.getLogger(__name__)

TABLE = "model_champion_history"
ACTIONS = ("deploy", "rollback", "promote", "recorded")
_ready: set[str] = set()


@dataclass(frozen=True)
class ChampionChange:
    version: int | None
    previous_version: int | None
    effective_at: datetime
    recorded_at: datetime
    action: str
    dag_id: str | None
    run_id: str | None
    reason: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ChampionChange:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


def ensure_schema(dsn: str) -> None:
    """Create the table; on first creation, seed it from the deployments already in the events table."""
    if dsn in _ready:
        return
    events.ensure_schema(dsn)
    ready = f"SELECT to_regclass('{TABLE}_lookup_idx') IS NOT NULL"
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(ready)  # no DDL (and no table lock) once it exists: see events._up_to_date
        if cur.fetchone()[0]:
            _ready.add(dsn)
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (0x6D63686973,))  # "mchis"
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
        existed = cur.fetchone()[0]
        cur.execute(
            f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                id BIGSERIAL PRIMARY KEY,
                model_name TEXT NOT NULL,
                registered_name TEXT NOT NULL,
                version INTEGER,
                previous_version INTEGER,
                effective_at TIMESTAMPTZ NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                action TEXT NOT NULL CHECK (action IN ({", ".join(f"'{a}'" for a in ACTIONS)})),
                dag_id TEXT,
                run_id TEXT,
                attempt INTEGER,
                reason TEXT)"""
        )
        cur.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_lookup_idx ON {TABLE} (registered_name, effective_at DESC, id DESC)")
        if not existed:
            # Upgrading from a version without this table: the deployments on record are its history.
            cur.execute(
                f"""INSERT INTO {TABLE} (model_name, registered_name, version, previous_version, effective_at,
                                         recorded_at, action, dag_id, run_id, attempt, reason)
                    SELECT model_name, model_name, champion_version_after, champion_version_before,
                           coalesce(data_interval_end, window_end, triggered_at, created_at),
                           coalesce(execution_completed_at, updated_at), 'recorded', dag_id, run_id, attempt,
                           'recorded from model_retraining_events when the history table was created'
                    FROM {events.TABLE} WHERE deployed AND champion_version_after IS NOT NULL
                    ORDER BY 5"""
            )
            if cur.rowcount:
                log.info("seeded %s with %d deployments from %s", TABLE, cur.rowcount, events.TABLE)
    _ready.add(dsn)


def insert(cur: Any, *, model_name: str, registered_name: str, version: int | None, previous_version: int | None,
           effective_at: datetime, action: str, dag_id: str | None, run_id: str | None, attempt: int | None,
           reason: str | None) -> None:
    """Append one change of champion with the caller's cursor (inside the caller's transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown champion change {action!r}; valid: {ACTIONS}")
    cur.execute(
        f"""INSERT INTO {TABLE} (model_name, registered_name, version, previous_version, effective_at, action,
                                 dag_id, run_id, attempt, reason)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (model_name, registered_name, version, previous_version, effective_at, action, dag_id, run_id, attempt,
         (reason or "").replace("\x00", "")[:1000]),
    )
    log.info("champion history of %s: v%s from %s (%s)", registered_name, version, effective_at.isoformat(), action)


def record(dsn: str, **change: Any) -> None:
    """Append one change of champion in a transaction of its own (see :func:`insert` for the fields)."""
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        insert(cur, **change)


def _changes(dsn: str, registered_name: str, where: str, params: tuple, order: str, limit: int | None = None
             ) -> list[ChampionChange]:
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            f"SELECT * FROM {TABLE} WHERE registered_name = %s {where} ORDER BY {order}"
            + (f" LIMIT {int(limit)}" if limit else ""),
            (registered_name, *params),
        )
        return [ChampionChange.of(dict(r)) for r in cur.fetchall()]


def in_service(dsn: str, registered_name: str, window_end: datetime) -> ChampionChange | None:
    """The last change of champion before ``window_end`` (None: no champion had been recorded by then)."""
    found = _changes(dsn, registered_name, "AND effective_at < %s", (window_end,), "effective_at DESC, id DESC", 1)
    return found[0] if found else None


def changes_from(dsn: str, registered_name: str, since: datetime) -> list[ChampionChange]:
    """Changes of champion that took effect at or after ``since`` (oldest first)."""
    return _changes(dsn, registered_name, "AND effective_at >= %s", (since,), "effective_at, id")

