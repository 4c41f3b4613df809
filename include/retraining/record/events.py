"""The events record: what every run of every model decided, kept as it happened.

Three tables, created (and upgraded from older versions) automatically under an advisory lock:

- ``model_retraining_event_attempts``: **append-only history**, one row per *attempt* of a run
  (a first execution, a cleared and re-run run, a backfill that reprocesses it). An attempt's row
  is written only by that attempt, as its tasks progress; a later attempt never touches it.
- ``model_retraining_events``: the **current row per run**, keyed by ``(model_name, dag_id,
  run_id)``, which the everyday queries read. It is a copy of one attempt's row (its ``attempt``
  column says which): the latest attempt, except that an attempt which *acted* (deployed or
  registered a model, rolled back, promoted) is never replaced by a later one that did not, and
  takes the place of one that did not when its action is recorded late (an interrupted promotion
  finished by recovery, see :mod:`..release.promotion`). So a
  deployment, once it happened, stays on record whatever runs later; a replay of a run that did
  nothing replaces the run's current row and keeps the earlier verdict in the attempts table.
- ``model_champion_history`` (see :mod:`.champion_history`): every change of champion, with the
  time from which it served, for judging past windows with the champion of their time.

Improvement columns are percentages where positive always means "the candidate is better"
(for RMSE: lower is better, so the sign flips).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json, RealDictCursor

from ..connections import advisory_lock, connect

log = logging.getLogger(__name__)

TABLE = "model_retraining_events"
ATTEMPTS = "model_retraining_event_attempts"
TRIGGER_TYPES = ("data_drift", "concept_drift", "performance_degradation", "scheduled", "manual", "post_deploy_watch",
                 "shadow_evaluation", "none")
SEVERITIES = ("low", "medium", "high", "critical")
METRIC_COLUMNS = {"r2": "r2", "rmse": "rmse", "accuracy": "accuracy", "f1": "f1", "roc_auc": "auc"}
KEY = ("model_name", "dag_id", "run_id")


@dataclass(frozen=True)
class RunKey:
    """Which run of which model a row belongs to: several models may share the events database."""

    model_name: str
    dag_id: str
    run_id: str

    def params(self) -> tuple[str, str, str]:
        return self.model_name, self.dag_id, self.run_id


# name -> SQL type. Order is the column order of a new table; new columns go at the end.
COLUMNS: dict[str, str] = {
    "dag_id": "TEXT NOT NULL",
    "run_id": "TEXT NOT NULL",
    "run_type": "TEXT",
    "logical_date": "TIMESTAMPTZ",
    "data_interval_start": "TIMESTAMPTZ",
    "data_interval_end": "TIMESTAMPTZ",
    "window_start": "TIMESTAMPTZ",
    "window_end": "TIMESTAMPTZ",
    "model_name": "TEXT NOT NULL DEFAULT ''",
    "model_type": "TEXT",
    "triggered_at": "TIMESTAMPTZ",
    "trigger_type": "TEXT",
    "severity": "TEXT",
    "confidence": "DOUBLE PRECISION",
    "trigger_reason": "TEXT",
    "decision": "TEXT",
    "data_quality": "TEXT",
    "trigger_metrics": "JSONB",
    "rows_in_window": "INTEGER",
    "labelled_rows": "INTEGER",
    "execution_attempted": "BOOLEAN NOT NULL DEFAULT FALSE",
    "execution_successful": "BOOLEAN",
    "status": "TEXT NOT NULL DEFAULT 'running'",
    "champion_version_before": "INTEGER",
    "champion_version_after": "INTEGER",
    "candidate_version": "INTEGER",
    "candidate_run_id": "TEXT",
    "training_snapshot_uri": "TEXT",
    "training_snapshot_hash": "TEXT",
    "training_rows": "INTEGER",
    "gate_passed": "BOOLEAN",
    "gate_details": "JSONB",
    "deployed": "BOOLEAN NOT NULL DEFAULT FALSE",
    **{f"retraining_{c}": "DOUBLE PRECISION" for c in METRIC_COLUMNS.values()},
    **{f"comparison_previous_{c}": "DOUBLE PRECISION" for c in METRIC_COLUMNS.values()},
    **{f"improvement_{c}_percent": "DOUBLE PRECISION" for c in METRIC_COLUMNS.values()},
    "error": "TEXT",
    "failed_task": "TEXT",
    "execution_completed_at": "TIMESTAMPTZ",
    "created_at": "TIMESTAMPTZ NOT NULL DEFAULT now()",
    "updated_at": "TIMESTAMPTZ NOT NULL DEFAULT now()",
    "drift_report_uri": "TEXT",  # the HTML report on MLflow, for a check that found drift
    "drift_report_run_id": "TEXT",
    "attempt": "INTEGER NOT NULL DEFAULT 1",  # which attempt of the run this row is (1, 2, ...)
    "attempt_key": "TEXT",  # what identifies the attempt in Airflow (clear number and first task instance)
    "judged_by_version": "INTEGER",  # the champion the window was judged with (the one in service then)
    "champion_source": "TEXT",  # registry (live run) | history (as of the window's time) | none
    "requested_by": "TEXT",  # who triggered a manual run
    "promotion_id": "BIGINT",  # the run's promotion in model_promotions (the intent written before any alias moved)
    "promotion_resolution": "TEXT",  # who finished an interrupted promotion, and how (completed / reverted)
}
JSON_COLUMNS = {name for name, kind in COLUMNS.items() if kind.startswith("JSONB")}
WRITABLE = set(COLUMNS) - {*KEY, "attempt", "created_at", "updated_at"}
# Copied from an attempt to the run's current row (everything but the current row's own id and creation time).
COPIED = [c for c in COLUMNS if c != "created_at"]
# An attempt that did one of these changed the world; its row stays the run's current row.
ACTED = sql.SQL("({t}.deployed OR {t}.candidate_version IS NOT NULL OR {t}.status IN ('rolled_back', 'promoted'))")

INDEXES = {
    TABLE: {
        f"{TABLE}_triggered_at_idx": "(triggered_at DESC)",
        f"{TABLE}_model_triggered_idx": "(model_name, triggered_at DESC)",
        f"{TABLE}_trigger_type_idx": "(trigger_type)",
        f"{TABLE}_decision_idx": "(decision)",
        f"{TABLE}_successful_idx": "(triggered_at DESC) WHERE execution_successful",
        f"{TABLE}_model_window_idx": "(model_name, dag_id, window_end)",
    },
    ATTEMPTS: {
        f"{ATTEMPTS}_model_window_idx": "(model_name, dag_id, window_end)",
        f"{ATTEMPTS}_triggered_at_idx": "(triggered_at DESC)",
    },
}
_LOCK_KEY = 0x6D72657476  # "mretv": serialises schema changes across workers
_ready: set[str] = set()


def _table_sql(table: str, unique: tuple[str, ...]) -> sql.Composable:
    columns_sql = sql.SQL(",\n  ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in COLUMNS.items()
    )
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} (\n  id BIGSERIAL PRIMARY KEY,\n  {cols},\n"
        "  CONSTRAINT {uq} UNIQUE ({unique}),\n"
        "  CONSTRAINT {ck_trigger} CHECK (trigger_type IS NULL OR trigger_type IN ({tv})),\n"
        "  CONSTRAINT {ck_sev} CHECK (severity IS NULL OR severity IN ({sv}))\n)"
    ).format(
        t=sql.Identifier(table),
        cols=columns_sql,
        uq=sql.Identifier(_unique_name(table)),
        unique=sql.SQL(", ").join(map(sql.Identifier, unique)),
        ck_trigger=sql.Identifier(f"{table}_trigger_type_check"),
        tv=sql.SQL(", ").join(sql.Literal(v) for v in TRIGGER_TYPES),
        ck_sev=sql.Identifier(f"{table}_severity_check"),
        sv=sql.SQL(", ").join(sql.Literal(v) for v in SEVERITIES),
    )


def _unique_name(table: str) -> str:
    return f"{table}_model_run_key" if table == TABLE else f"{table}_model_run_attempt_key"


def _constraints(cur: Any, table: str) -> set[str]:
    cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s)", (table,))
    return {r[0] for r in cur.fetchall()}


def _upgrade(cur: Any, table: str, unique: tuple[str, ...]) -> None:
    """Bring a table made by an older version up to date: columns, the model in the key."""
    t = sql.Identifier(table)
    for name, kind in COLUMNS.items():
        if "NOT NULL" in kind and "DEFAULT" not in kind:
            continue  # key columns exist since the first version
        cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(t, sql.Identifier(name),
                                                                                  sql.SQL(kind)))
    cur.execute(sql.SQL("SELECT is_nullable FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = %s AND column_name = 'model_name'"), (table,))
    if cur.fetchone()[0] == "YES":  # before 0.3 the model was not part of a run's identity
        cur.execute(sql.SQL("UPDATE {} SET model_name = '' WHERE model_name IS NULL").format(t))
        cur.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN model_name SET DEFAULT '', "
                            "ALTER COLUMN model_name SET NOT NULL").format(t))
    existing = _constraints(cur, table)
    if f"{table}_run_key" in existing:  # the old key (dag_id, run_id): two models overwrote each other
        cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(t, sql.Identifier(f"{table}_run_key")))
    if _unique_name(table) not in existing:
        cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})").format(
            t, sql.Identifier(_unique_name(table)), sql.SQL(", ").join(map(sql.Identifier, unique))))
    for name, definition in INDEXES[table].items():
        cur.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} " + definition).format(sql.Identifier(name), t))
    if not _trigger_types_current(cur, table):  # a trigger type added since the table was made
        check = sql.Identifier(f"{table}_trigger_type_check")
        cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(t, check))
        cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (trigger_type IS NULL OR trigger_type IN ({}))")
                    .format(t, check, sql.SQL(", ").join(sql.Literal(v) for v in TRIGGER_TYPES)))


def _trigger_types_current(cur: Any, table: str) -> bool:
    """Whether the table's trigger-type check admits every type of :data:`TRIGGER_TYPES`."""
    cur.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) AND conname = %s",
                (table, f"{table}_trigger_type_check"))
    found = cur.fetchone()
    return found is not None and all(f"'{v}'" in found[0] for v in TRIGGER_TYPES)


def _up_to_date(cur: Any) -> bool:
    """Both tables exist with every column, the current key and every index: no DDL needed.

    Checked from the catalogs without taking any table lock: DDL (even ``ADD COLUMN IF NOT EXISTS``)
    takes an exclusive lock, and task processes that start at once while others write would deadlock."""
    cur.execute("SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name IN (%s, %s)", (TABLE, ATTEMPTS))
    found: dict[str, set[str]] = {}
    for table, column in cur.fetchall():
        found.setdefault(table, set()).add(column)
    if any(not set(COLUMNS) <= found.get(table, set()) for table in (TABLE, ATTEMPTS)):
        return False
    if not all(_trigger_types_current(cur, table) for table in (TABLE, ATTEMPTS)):
        return False
    cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN (%s, %s)",
                (TABLE, ATTEMPTS))
    indexes = {r[0] for r in cur.fetchall()}
    wanted = {_unique_name(t) for t in (TABLE, ATTEMPTS)} | {n for t in INDEXES for n in INDEXES[t]}
    return wanted <= indexes and f"{TABLE}_run_key" not in indexes


def ensure_schema(dsn: str) -> None:
    """Create the events and attempts tables, or upgrade them from an older version of the package."""
    if dsn in _ready:
        return
    with connect(dsn) as conn, conn.cursor() as cur:
        if _up_to_date(cur):
            _ready.add(dsn)
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        if _up_to_date(cur):  # another worker upgraded it meanwhile
            _ready.add(dsn)
            return
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (ATTEMPTS,))
        had_attempts = cur.fetchone()[0]
        for table, unique in ((TABLE, KEY), (ATTEMPTS, (*KEY, "attempt"))):
            cur.execute(_table_sql(table, unique))
            _upgrade(cur, table, unique)
        if not had_attempts:  # upgrading: the rows written so far are the first attempts of their runs
            cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
            cur.execute(sql.SQL("INSERT INTO {a} ({c}) SELECT {c} FROM {t}").format(
                a=sql.Identifier(ATTEMPTS), t=sql.Identifier(TABLE), c=cols))
    _ready.add(dsn)


def finite(value: Any) -> Any:
    """NaN and infinities become None, at any depth: JSON (and so JSONB) has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _adapt(name: str, value: Any) -> Any:
    """A value as PostgreSQL stores it. The one place every text or JSON value passes on its way to the
    events tables, so credentials are masked here (an error message repeating a DSN or a tracking URI)
    and NUL, which neither text nor JSONB can hold, is dropped, at any depth of a JSON value."""
    from ..redaction import redact

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            return redact(v.replace("\x00", ""))
        if isinstance(v, dict):
            return {clean(str(k)): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    if name in JSON_COLUMNS and value is not None:
        return Json(clean(finite(value)),
                    dumps=lambda v: json.dumps(v, default=lambda o: clean(str(o)), allow_nan=False))
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        return clean(value)
    return value


_KEY_WHERE = sql.SQL("model_name = %s AND dag_id = %s AND run_id = %s")


def _sync_current(cur: Any, run: RunKey, attempt: int) -> None:
    """Copy the attempt's row to the run's current row, unless a newer attempt, or an earlier one that
    acted, holds it."""
    cols = sql.SQL(", ").join(map(sql.Identifier, COPIED))
    updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in COPIED)
    cur.execute(
        sql.SQL(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM {a} WHERE " + _KEY_WHERE.as_string(cur) + " AND attempt = %s "
            "ON CONFLICT (model_name, dag_id, run_id) DO UPDATE SET {updates} "
            "WHERE {t}.attempt = EXCLUDED.attempt OR ({t}.attempt < EXCLUDED.attempt AND NOT {acted}) "
            "OR ({excluded_acted} AND NOT {acted})"
        ).format(t=sql.Identifier(TABLE), a=sql.Identifier(ATTEMPTS), cols=cols, updates=updates,
                 acted=ACTED.format(t=sql.Identifier(TABLE)), excluded_acted=ACTED.format(t=sql.SQL("EXCLUDED"))),
        (*run.params(), attempt),
    )


def upsert_event(dsn: str, run: RunKey, fields: Mapping[str, Any], attempt: int = 1) -> None:
    """Write the given columns of one attempt's row (other columns are left as they are), then bring
    the run's current row up to date (see the module docstring for which attempt it shows)."""
    unknown = sorted(set(fields) - WRITABLE)
    if unknown:
        raise ValueError(f"unknown event column(s) {unknown}; known: {sorted(WRITABLE)}")
    ensure_schema(dsn)
    names = list(fields)
    insert_cols = sql.SQL(", ").join(sql.Identifier(n) for n in [*KEY, "attempt", *names])
    placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in range(len(names) + 4))
    updates = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in names]
    updates.append(sql.SQL("updated_at = now()"))
    query = sql.SQL(
        "INSERT INTO {t} ({cols}) VALUES ({vals}) ON CONFLICT (model_name, dag_id, run_id, attempt) "
        "DO UPDATE SET {updates}"
    ).format(t=sql.Identifier(ATTEMPTS), cols=insert_cols, vals=placeholders, updates=sql.SQL(", ").join(updates))
    params = [*run.params(), attempt, *(_adapt(n, fields[n]) for n in names)]
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        _sync_current(cur, run, attempt)
    log.debug("event %s attempt %d updated: %s", run, attempt, ", ".join(names))


def begin_attempt(dsn: str, run: RunKey, attempt_key: str) -> int:
    """The attempt number for ``attempt_key``: the existing one when this attempt has begun already
    (a sensor poking again), else a new one after the run's last (a cleared run, a reprocessing backfill)."""
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("model_retraining.attempt:" + "/".join(run.params()),))
        cur.execute(sql.SQL("SELECT attempt FROM {} WHERE " + _KEY_WHERE.as_string(cur) + " AND attempt_key = %s")
                    .format(sql.Identifier(ATTEMPTS)), (*run.params(), attempt_key))
        found = cur.fetchone()
        if found:
            return int(found[0])
        cur.execute(sql.SQL("SELECT coalesce(max(attempt), 0) + 1 FROM {} WHERE " + _KEY_WHERE.as_string(cur))
                    .format(sql.Identifier(ATTEMPTS)), run.params())
        attempt = int(cur.fetchone()[0])
        cur.execute(sql.SQL("INSERT INTO {} (model_name, dag_id, run_id, attempt, attempt_key) VALUES (%s, %s, %s, %s, %s)")
                    .format(sql.Identifier(ATTEMPTS)), (*run.params(), attempt, attempt_key))
        _sync_current(cur, run, attempt)
    if attempt > 1:
        log.info("attempt %d of %s: earlier attempts stay in %s", attempt, run.run_id, ATTEMPTS)
    return attempt


def latest_attempt(dsn: str, run: RunKey) -> int | None:
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT max(attempt) FROM {} WHERE " + _KEY_WHERE.as_string(cur))
                    .format(sql.Identifier(ATTEMPTS)), run.params())
        found = cur.fetchone()[0]
    return None if found is None else int(found)


def get_event(dsn: str, run: RunKey) -> dict[str, Any] | None:
    """The run's current row."""
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(sql.SQL("SELECT * FROM {} WHERE " + _KEY_WHERE.as_string(cur)).format(sql.Identifier(TABLE)),
                    run.params())
        row = cur.fetchone()
    return dict(row) if row else None


def get_attempts(dsn: str, run: RunKey, attempt: int | None = None) -> list[dict[str, Any]]:
    """Every attempt of the run, first to last (or only ``attempt``)."""
    ensure_schema(dsn)
    only = " AND attempt = %s" if attempt is not None else ""
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(sql.SQL("SELECT * FROM {} WHERE " + _KEY_WHERE.as_string(cur) + only + " ORDER BY attempt")
                    .format(sql.Identifier(ATTEMPTS)), (*run.params(), *([attempt] if attempt is not None else [])))
        return [dict(r) for r in cur.fetchall()]


def promotion_row(dsn: str, promotion_id: int) -> dict[str, Any] | None:
    """The attempt row of the run that asked for promotion ``promotion_id`` (see :mod:`.promotions`), if any."""
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(sql.SQL("SELECT * FROM {} WHERE promotion_id = %s ORDER BY attempt DESC LIMIT 1")
                    .format(sql.Identifier(ATTEMPTS)), (promotion_id,))
        row = cur.fetchone()
    return dict(row) if row else None


def get_attempt(dsn: str, run: RunKey, attempt: int) -> dict[str, Any] | None:
    found = get_attempts(dsn, run, attempt)
    return found[0] if found else None


def model_lock(dsn: str, model_name: str, purpose: str) -> AbstractContextManager[None]:
    """A session-level advisory lock on (purpose, model): e.g. ``decide``, so that two runs deciding at
    once both see each other's retraining when storm control counts them; ``deploy`` for promotions."""
    return advisory_lock(dsn, f"model_retraining.{purpose}:{model_name}")


def metric_columns(prefix: str, metrics: Mapping[str, float | None]) -> dict[str, float | None]:
    """``{"f1": 0.8}`` -> ``{"retraining_f1": 0.8}`` for the metrics the table has columns for."""
    return {f"{prefix}_{col}": metrics.get(name) for name, col in METRIC_COLUMNS.items() if name in metrics}


def improvement_percent(candidate: Mapping[str, float | None], previous: Mapping[str, float | None]) -> dict[str, float | None]:
    """Relative improvement in percent per metric; positive means the candidate is better."""
    from ..metrics import HIGHER_IS_BETTER

    out: dict[str, float | None] = {}
    for name, col in METRIC_COLUMNS.items():
        new, old = candidate.get(name), previous.get(name)
        if new is None or old is None or name not in candidate or old == 0:
            continue
        change = (new - old) / abs(old) * 100.0
        out[f"improvement_{col}_percent"] = round(change if HIGHER_IS_BETTER[name] else -change, 4)
    return out


SIGNAL_TRIGGERS = ("data_drift", "concept_drift", "performance_degradation")


def storm_history(dsn: str, run: RunKey, window_end: Any, lookback: int) -> dict[str, Any]:
    """What retrain-storm control needs, from earlier windows of the same model: hours since the last
    retraining, retrainings in the 7 days before, the hours before this window of the newest
    ``STORM_RETRAINS_READ`` retrainings (one per run; for the cap per windows, which ``decide`` measures in
    windows of the check's size), and how many of the ``lookback`` windows right before this one had a
    drift or performance signal. Retrainings are counted from every attempt (a retraining happened even if
    a later replay of its run decided otherwise); signals from the current rows. Every query reads the
    (model, dag, window_end) index backwards from this window, with a limit."""
    from ..config import STORM_RETRAINS_READ

    ensure_schema(dsn)
    earlier = "model_name = %s AND dag_id = %s AND run_id <> %s AND window_end < %s"
    params = (*run.params(), window_end)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT max(window_end), count(DISTINCT run_id) FILTER (WHERE window_end >= %s - interval '7 days') "
                "FROM {} WHERE " + earlier + " AND decision = 'retrain'"
            ).format(sql.Identifier(ATTEMPTS)),
            (window_end, *params),
        )
        last, week = cur.fetchone()
        cur.execute(
            sql.SQL("SELECT run_id, window_end FROM {} WHERE " + earlier + " AND decision = 'retrain' "
                    "ORDER BY window_end DESC LIMIT %s").format(sql.Identifier(ATTEMPTS)),
            (*params, 3 * STORM_RETRAINS_READ),  # a run's attempts are few: enough rows for the newest runs
        )
        newest: dict[str, Any] = {}
        for run_id, end in cur.fetchall():
            newest.setdefault(run_id, end)  # rows come newest first: a run's newest attempt
        previous: list[str | None] = []
        if lookback > 0:
            cur.execute(
                sql.SQL("SELECT trigger_type FROM {} WHERE " + earlier + " ORDER BY window_end DESC LIMIT %s")
                .format(sql.Identifier(TABLE)),
                (*params, lookback),
            )
            previous = [r[0] for r in cur.fetchall()]
    streak = 0
    for trigger in previous:
        if trigger not in SIGNAL_TRIGGERS:
            break
        streak += 1
    return {
        "hours_since_last_retrain": None if last is None else (window_end - last).total_seconds() / 3600,
        "retrains_last_week": int(week or 0),
        "retrains_hours_ago": [round((window_end - end).total_seconds() / 3600, 4)
                               for end in list(newest.values())[:STORM_RETRAINS_READ]],
        "previous_signal_windows": streak,
    }


def sequential_history(dsn: str, run: RunKey, window_start: Any, champion_version: int | None,
                       limit: int = 1000) -> list[dict[str, Any] | None]:
    """The accumulated-evidence test's input: the recorded performance evidence of the windows before
    this one (ending at or before ``window_start``) judged by the same champion, oldest first (the newest
    ``limit``); None for a judged window without labelled evidence."""
    if champion_version is None:
        return []
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT evidence FROM (SELECT window_end, trigger_metrics->'performance'->'evidence' AS evidence "
                "FROM {} WHERE model_name = %s AND dag_id = %s AND run_id <> %s AND judged_by_version = %s "
                "AND window_end <= %s AND status <> 'waiting_for_data' "
                "ORDER BY window_end DESC LIMIT %s) newest ORDER BY window_end"
            ).format(sql.Identifier(TABLE)),
            (*run.params(), champion_version, window_start, limit),
        )
        return [row[0] for row in cur.fetchall()]

