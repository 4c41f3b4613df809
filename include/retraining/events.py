"""The ``model_retraining_events`` table: one row per DAG run, whatever the run decided.

The row is keyed by ``(dag_id, run_id)`` and upserted as the run progresses, so a
retried task or a re-run never duplicates it. The table and its indexes are created,
and missing columns added, automatically and under an advisory lock, so two workers
starting at once cannot race. Improvement columns are percentages where positive
always means "the candidate is better" (for RMSE: lower is better, so the sign flips).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json, RealDictCursor

from .connections import connect

log = logging.getLogger(__name__)

TABLE = "model_retraining_events"
TRIGGER_TYPES = ("data_drift", "concept_drift", "performance_degradation", "scheduled", "manual", "none")
SEVERITIES = ("low", "medium", "high", "critical")
METRIC_COLUMNS = {"r2": "r2", "rmse": "rmse", "accuracy": "accuracy", "f1": "f1", "roc_auc": "auc"}

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
    "model_name": "TEXT",
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
}
JSON_COLUMNS = {name for name, kind in COLUMNS.items() if kind.startswith("JSONB")}
WRITABLE = set(COLUMNS) - {"dag_id", "run_id", "created_at", "updated_at"}
# Columns a run's first task resets, so that re-running a run does not keep a stale outcome.
OUTCOME_COLUMNS = sorted(WRITABLE - {"run_type", "logical_date", "data_interval_start", "data_interval_end",
                                     "model_name", "triggered_at", "execution_attempted", "deployed", "status"})

INDEXES = {
    f"{TABLE}_triggered_at_idx": "(triggered_at DESC)",
    f"{TABLE}_model_triggered_idx": "(model_name, triggered_at DESC)",
    f"{TABLE}_trigger_type_idx": "(trigger_type)",
    f"{TABLE}_decision_idx": "(decision)",
    f"{TABLE}_successful_idx": "(triggered_at DESC) WHERE execution_successful",
}
_LOCK_KEY = 0x6D72657476  # "mretv": serialises schema changes across workers
_ready: set[str] = set()


def ensure_schema(dsn: str) -> None:
    """Create the table, its constraints and indexes, or add columns a newer version needs."""
    if dsn in _ready:
        return
    columns_sql = sql.SQL(",\n  ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in COLUMNS.items()
    )
    trigger_values = sql.SQL(", ").join(sql.Literal(v) for v in TRIGGER_TYPES)
    severity_values = sql.SQL(", ").join(sql.Literal(v) for v in SEVERITIES)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {t} (\n  id BIGSERIAL PRIMARY KEY,\n  {cols},\n"
                "  CONSTRAINT {uq} UNIQUE (dag_id, run_id),\n"
                "  CONSTRAINT {ck_trigger} CHECK (trigger_type IS NULL OR trigger_type IN ({tv})),\n"
                "  CONSTRAINT {ck_sev} CHECK (severity IS NULL OR severity IN ({sv}))\n)"
            ).format(
                t=sql.Identifier(TABLE),
                cols=columns_sql,
                uq=sql.Identifier(f"{TABLE}_run_key"),
                ck_trigger=sql.Identifier(f"{TABLE}_trigger_type_check"),
                tv=trigger_values,
                ck_sev=sql.Identifier(f"{TABLE}_severity_check"),
                sv=severity_values,
            )
        )
        for name, kind in COLUMNS.items():
            if "NOT NULL" in kind and "DEFAULT" not in kind:
                continue  # key columns exist since the first version
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    sql.Identifier(TABLE), sql.Identifier(name), sql.SQL(kind)
                )
            )
        for name, definition in INDEXES.items():
            cur.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} " + definition).format(
                    sql.Identifier(name), sql.Identifier(TABLE)
                )
            )
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
    if name in JSON_COLUMNS and value is not None:
        return Json(finite(value), dumps=lambda v: json.dumps(v, default=str, allow_nan=False))
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def upsert_event(dsn: str, dag_id: str, run_id: str, fields: Mapping[str, Any]) -> None:
    """Insert the run's row or update the given columns of it; other columns are left as they are."""
    unknown = sorted(set(fields) - WRITABLE)
    if unknown:
        raise ValueError(f"unknown event column(s) {unknown}; known: {sorted(WRITABLE)}")
    ensure_schema(dsn)
    names = list(fields)
    insert_cols = sql.SQL(", ").join(sql.Identifier(n) for n in ["dag_id", "run_id", *names])
    placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in range(len(names) + 2))
    updates = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in names]
    updates.append(sql.SQL("updated_at = now()"))
    query = sql.SQL(
        "INSERT INTO {t} ({cols}) VALUES ({vals}) ON CONFLICT (dag_id, run_id) DO UPDATE SET {updates}"
    ).format(t=sql.Identifier(TABLE), cols=insert_cols, vals=placeholders, updates=sql.SQL(", ").join(updates))
    params = [dag_id, run_id, *(_adapt(n, fields[n]) for n in names)]
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query, params)
    log.debug("event %s/%s updated: %s", dag_id, run_id, ", ".join(names))


def get_event(dsn: str, dag_id: str, run_id: str) -> dict[str, Any] | None:
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            sql.SQL("SELECT * FROM {} WHERE dag_id = %s AND run_id = %s").format(sql.Identifier(TABLE)),
            (dag_id, run_id),
        )
        row = cur.fetchone()
    return dict(row) if row else None


def metric_columns(prefix: str, metrics: Mapping[str, float | None]) -> dict[str, float | None]:
    """``{"f1": 0.8}`` -> ``{"retraining_f1": 0.8}`` for the metrics the table has columns for."""
    return {f"{prefix}_{col}": metrics.get(name) for name, col in METRIC_COLUMNS.items() if name in metrics}


def improvement_percent(candidate: Mapping[str, float | None], previous: Mapping[str, float | None]) -> dict[str, float | None]:
    """Relative improvement in percent per metric; positive means the candidate is better."""
    from .metrics import HIGHER_IS_BETTER

    out: dict[str, float | None] = {}
    for name, col in METRIC_COLUMNS.items():
        new, old = candidate.get(name), previous.get(name)
        if new is None or old is None or name not in candidate or old == 0:
            continue
        change = (new - old) / abs(old) * 100.0
        out[f"improvement_{col}_percent"] = round(change if HIGHER_IS_BETTER[name] else -change, 4)
    return out


SIGNAL_TRIGGERS = ("data_drift", "concept_drift", "performance_degradation")


def storm_history(dsn: str, dag_id: str, model_name: str, run_id: str, window_end: Any, lookback: int) -> dict[str, Any]:
    """What retrain-storm control needs, from the rows of earlier windows of the same model:
    hours since the last retraining, retrainings in the 7 days before, and how many of the
    ``lookback`` windows right before this one had a drift or performance signal."""
    ensure_schema(dsn)
    earlier = sql.SQL("dag_id = %s AND model_name = %s AND run_id <> %s AND window_end < %s")
    params = (dag_id, model_name, run_id, window_end)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT max(window_end), count(*) FILTER (WHERE window_end >= %s - interval '7 days') "
                "FROM {} WHERE " + earlier.as_string(conn) + " AND decision = 'retrain'"
            ).format(sql.Identifier(TABLE)),
            (window_end, *params),
        )
        last, week = cur.fetchone()
        previous: list[str | None] = []
        if lookback > 0:
            cur.execute(
                sql.SQL("SELECT trigger_type FROM {} WHERE " + earlier.as_string(conn)
                        + " ORDER BY window_end DESC LIMIT %s").format(sql.Identifier(TABLE)),
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
        "previous_signal_windows": streak,
    }
