"""Answers to the questions people ask of the events record, from the command line.

``python -m include.retraining.record.history <question> [options]`` reads (never writes)
``model_retraining_events`` (the current row per run) and ``model_champion_history``:

- ``retrains``: when and why each model was retrained, newest first;
- ``triggers``: how often each trigger fires, per model, trigger type and decision;
- ``durations``: how long retrainings take (trigger to completion) per model: count, median, p90, max;
- ``gate-failures``: which gate criteria fail most (from ``gate_details.criteria``);
- ``champion --at TIME``: which version was champion at a given time, per registered model;
- ``drift --feature NAME``: one feature's drift statistic against its threshold, window by window.

Output is a plain table, or JSON with ``--json`` (for scripts). The database is the one the DAG
writes to: ``--dsn``, else the Airflow connection ``retraining_db`` (``AIRFLOW_CONN_RETRAINING_DB``),
else the embedded PostgreSQL. Only light imports, so the command starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from typing import Any

import psycopg2
from psycopg2.extras import RealDictCursor

from ..connections import EVENTS_CONN_ID, resolve_dsn
from . import champion_history, events

Row = dict[str, Any]
REASON_WIDTH = 70
NO_RUNS = "no runs recorded yet: run the DAG or make demo first"


class NoRunsRecorded(LookupError):
    """The events tables do not exist in this database yet."""


def _query(dsn: str, query: str, params: Sequence[Any] = ()) -> list[Row]:
    """Run one read-only, parameterised query; a missing table becomes :class:`NoRunsRecorded`."""
    conn = psycopg2.connect(dsn)
    try:
        conn.set_session(readonly=True)
        with conn.cursor(cursor_factory=RealDictCursor) as cur:
            try:
                cur.execute(query, tuple(params))
            except psycopg2.errors.UndefinedTable as exc:
                raise NoRunsRecorded(NO_RUNS) from exc
            return [dict(r) for r in cur.fetchall()]
    finally:
        conn.close()


def _filters(model: str | None, since: datetime | None = None, until: datetime | None = None,
             time_column: str = "window_end") -> tuple[str, list[Any]]:
    """``AND ...`` clauses for the common filters (column names are constants, values parameters)."""
    clauses, params = [], []
    if model:
        clauses.append("model_name = %s")
        params.append(model)
    if since is not None:
        clauses.append(f"{time_column} >= %s")
        params.append(since)
    if until is not None:
        clauses.append(f"{time_column} < %s")
        params.append(until)
    return "".join(f" AND {c}" for c in clauses), params


def _shorten(text: str | None, width: int = REASON_WIDTH) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 1].rstrip() + "…"


def retrains(dsn: str, model: str | None = None, since: datetime | None = None, until: datetime | None = None,
             limit: int = 50) -> list[Row]:
    """Runs that decided to retrain (window end in ``[since, until)``), newest first."""
    where, params = _filters(model, since, until)
    rows = _query(
        dsn,
        f"SELECT model_name, window_end, trigger_type, severity, decision, status, champion_version_before, "
        f"champion_version_after, trigger_reason FROM {events.TABLE} WHERE decision = 'retrain'{where} "
        f"ORDER BY window_end DESC NULLS LAST, model_name, id DESC LIMIT %s",
        [*params, limit],
    )
    for r in rows:
        r["champion"] = f"{_v(r.pop('champion_version_before'))} -> {_v(r.pop('champion_version_after'))}"
        r["trigger_reason"] = _shorten(r.pop("trigger_reason"))
    return rows


def _v(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def triggers(dsn: str, model: str | None = None, since: datetime | None = None,
             until: datetime | None = None) -> list[Row]:
    """How many runs each trigger type led to, and to which decision, per model (most frequent first)."""
    where, params = _filters(model, since, until)
    return _query(
        dsn,
        f"SELECT model_name, coalesce(trigger_type, 'none') AS trigger_type, coalesce(decision, '-') AS decision, "
        f"count(*) AS runs FROM {events.TABLE} WHERE TRUE{where} GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC, 2, 3",
        params,
    )


def durations(dsn: str, model: str | None = None, since: datetime | None = None,
              until: datetime | None = None) -> list[Row]:
    """Wall-clock seconds from the run's first task (its row's creation) to its completion, for runs that
    executed a retraining: count, median, p90 and max per model. (Not from ``triggered_at``: for a backfill, a
    replay or a run dated in the past that is the window's time, not when the run started.)"""
    where, params = _filters(model, since, until)
    seconds = "extract(epoch FROM execution_completed_at - created_at)"
    rows = _query(
        dsn,
        f"SELECT model_name, count(*) AS runs, "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}) AS median_s, "
        f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {seconds}) AS p90_s, max({seconds}) AS max_s "
        f"FROM {events.TABLE} WHERE execution_attempted AND execution_completed_at IS NOT NULL{where} "
        f"GROUP BY 1 ORDER BY 1",
        params,
    )
    for r in rows:
        for k in ("median_s", "p90_s", "max_s"):
            r[k] = None if r[k] is None else round(float(r[k]), 1)
    return rows


def gate_failures(dsn: str, model: str | None = None, since: datetime | None = None,
                  until: datetime | None = None) -> list[Row]:
    """Per gate criterion and metric: how often it was evaluated and how often it failed (most failures first)."""
    where, params = _filters(model, since, until)
    return _query(
        dsn,
        f"SELECT c->>'criterion' AS criterion, c->>'metric' AS metric, "
        f"count(*) FILTER (WHERE NOT (c->>'passed')::boolean) AS failed, count(*) AS evaluated "
        f"FROM {events.TABLE} CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN "
        f"jsonb_typeof(gate_details->'criteria') = 'array' THEN gate_details->'criteria' ELSE '[]'::jsonb END) c "
        f"WHERE TRUE{where} GROUP BY 1, 2 ORDER BY 3 DESC, 4 DESC, 1, 2",
        params,
    )


def champion_at(dsn: str, at: datetime, model: str | None = None) -> list[Row]:
    """The champion of each registered model at ``at``: its last change effective at or before then."""
    clause, params = ("AND (registered_name = %s OR model_name = %s)", [model, model]) if model else ("", [])
    return _query(
        dsn,
        f"SELECT DISTINCT ON (registered_name) registered_name, version, previous_version, effective_at, action, "
        f"run_id FROM {champion_history.TABLE} WHERE effective_at <= %s {clause} "
        f"ORDER BY registered_name, effective_at DESC, id DESC",
        [at, *params],
    )


def drift(dsn: str, feature: str, model: str | None = None, since: datetime | None = None,
          until: datetime | None = None, limit: int = 50) -> list[Row]:
    """One feature's drift check, window by window (newest first): method, statistic, threshold, drifted."""
    where, params = _filters(model, since, until)
    return _query(
        dsn,
        f"SELECT model_name, window_end, f->>'method' AS method, (f->>'statistic')::float AS statistic, "
        f"(f->>'threshold')::float AS threshold, (f->>'drifted')::boolean AS drifted FROM {events.TABLE} "
        f"CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(trigger_metrics->'drift'->'features') "
        f"= 'array' THEN trigger_metrics->'drift'->'features' ELSE '[]'::jsonb END) f "
        f"WHERE f->>'feature' = %s{where} ORDER BY window_end DESC NULLS LAST, model_name, id DESC LIMIT %s",
        [feature, *params, limit],
    )


# --- output ------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[Row]) -> str:
    """Rows as aligned text columns (headers from the first row's keys)."""
    if not rows:
        return "(no matching rows)"
    headers = list(rows[0])
    cells = [[_cell(r.get(h)) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # Decimal and anything else PostgreSQL returns


def _time(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is taken as UTC (as the DAG's windows are)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-03-01T12:00+00:00)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", help=f"libpq DSN of the events database (default: connection {EVENTS_CONN_ID!r})")
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common.add_argument("--model", help="only this model (model_name; for champion also the registered name)")
    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--since", type=_time, help="window end at or after this ISO time")
    window.add_argument("--until", type=_time, help="window end before this ISO time")
    parser = argparse.ArgumentParser(prog="python -m include.retraining.record.history",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="question", required=True)
    p = sub.add_parser("retrains", parents=[common, window], help="when and why we retrained")
    p.add_argument("--limit", type=int, default=50)
    sub.add_parser("triggers", parents=[common, window], help="how often each trigger fires")
    sub.add_parser("durations", parents=[common, window], help="how long retrainings take (seconds)")
    sub.add_parser("gate-failures", parents=[common, window], help="which gate criteria fail most")
    p = sub.add_parser("champion", parents=[common], help="which version was champion at a time")
    p.add_argument("--at", type=_time, required=True, help="ISO time, e.g. 2026-03-01T12:00+00:00")
    p = sub.add_parser("drift", parents=[common, window], help="one feature's drift over time")
    p.add_argument("--feature", required=True)
    p.add_argument("--limit", type=int, default=50)
    return parser


def answer(args: argparse.Namespace, dsn: str) -> list[Row]:
    """The rows that answer the parsed question."""
    questions: dict[str, Callable[[], list[Row]]] = {
        "retrains": lambda: retrains(dsn, args.model, args.since, args.until, args.limit),
        "triggers": lambda: triggers(dsn, args.model, args.since, args.until),
        "durations": lambda: durations(dsn, args.model, args.since, args.until),
        "gate-failures": lambda: gate_failures(dsn, args.model, args.since, args.until),
        "champion": lambda: champion_at(dsn, args.at, args.model),
        "drift": lambda: drift(dsn, args.feature, args.model, args.since, args.until, args.limit),
    }
    return questions[args.question]()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, query, print; exit status 1 (with the reason on stderr) when there is nothing to read."""
    args = _parser().parse_args(argv)
    try:
        # Airflow's logging (reached through the connection lookup) writes to stdout: keep stdout for the answer
        with contextlib.redirect_stdout(sys.stderr):
            rows = answer(args, args.dsn or resolve_dsn(EVENTS_CONN_ID))
    except NoRunsRecorded as exc:
        print(exc, file=sys.stderr)
        return 1
    except psycopg2.OperationalError as exc:
        print(f"cannot reach the events database: {str(exc).strip()} (check --dsn or the connection "
              f"{EVENTS_CONN_ID!r})", file=sys.stderr)
        return 1
    print(json.dumps(rows, default=_json_default, indent=2) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
