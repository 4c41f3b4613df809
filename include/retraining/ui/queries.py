"""Read-only queries behind the retraining page: the events record as the page and its JSON endpoints show it.

Every function takes the events database's DSN and ``dags``: the DAG ids the caller may read (from
Airflow's auth manager), so a person sees only the rows of DAGs they can see; ``None`` means no
restriction (scripts, tests). Filters are checked by :func:`parse_filters` and a bad one raises
:class:`FilterError` whose message says what is accepted (the app turns it into a 400).

List endpoints never carry the large JSON columns (``trigger_metrics``, ``gate_details``): they pick
the few small values they need inside PostgreSQL; :func:`event_detail` returns one run's reasons,
gate criteria, drift per feature and links. The SQL of the history command
(:mod:`..record.history`) is reused where it answers the same question (gate failures, one
feature's drift).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from ..record import champion_history, events, history

Row = dict[str, Any]

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
TIMELINE_LIMIT = 2000
DRIFT_LIMIT = 500
REASON_CHARS = 300  # a list row's reason is cut here; the detail has the whole text
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")  # model names and DAG ids, as fleet.py accepts them
_WORD = re.compile(r"^[a-z][a-z_ ]{0,39}$")  # decisions and statuses: open sets of short words
# Primary metric -> the events column suffix, in the order used when a model's gate never named one.
METRIC_COLUMN = dict(events.METRIC_COLUMNS)
FALLBACK_METRICS = ("roc_auc", "r2", "f1", "accuracy", "rmse")
LIST_COLUMNS = (
    "id", "model_name", "dag_id", "run_id", "run_type", "attempt", "window_start", "window_end", "triggered_at",
    "trigger_type", "severity", "decision", "status", "champion_version_before", "champion_version_after",
    "candidate_version", "judged_by_version", "gate_passed", "deployed", "execution_attempted", "requested_by",
    "failed_task", "execution_completed_at", "created_at",
    *(f"{p}_{c}" for p in ("retraining", "comparison_previous") for c in METRIC_COLUMN.values()),
    *(f"improvement_{c}_percent" for c in METRIC_COLUMN.values()),
)


class FilterError(ValueError):
    """A filter the page or an API client sent cannot be used; the message says what is accepted."""


@dataclass(frozen=True)
class Filters:
    """What a list is narrowed to. Times apply to the window's end (as in the history command)."""

    model: str | None = None
    dag_id: str | None = None
    decision: str | None = None
    trigger: str | None = None
    status: str | None = None
    severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT


def _time(name: str, text: str | None) -> datetime | None:
    if text in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError as exc:
        raise FilterError(f"{name}={text!r} is not an ISO 8601 time (e.g. 2026-03-08 or 2026-03-08T12:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse_filters(params: Mapping[str, str | None], max_limit: int = MAX_LIMIT) -> Filters:
    """Check the query parameters of a list request; empty values mean "any"."""
    def get(name: str) -> str | None:
        value = params.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    model, dag_id = get("model"), get("dag_id")
    for name, value in (("model", model), ("dag_id", dag_id)):
        if value is not None and not _NAME.match(value):
            raise FilterError(f"{name}={value!r}: letters, digits, '_', '.', '-' only (at most 200)")
    trigger, severity = get("trigger"), get("severity")
    if trigger is not None and trigger not in events.TRIGGER_TYPES:
        raise FilterError(f"trigger={trigger!r} is not a trigger type; valid: {', '.join(events.TRIGGER_TYPES)}")
    if severity is not None and severity not in events.SEVERITIES:
        raise FilterError(f"severity={severity!r} is not a severity; valid: {', '.join(events.SEVERITIES)}")
    decision, status = get("decision"), get("status")
    for name, value in (("decision", decision), ("status", status)):
        if value is not None and not _WORD.match(value):
            raise FilterError(f"{name}={value!r}: a lower-case word such as 'retrain', 'skip', 'deployed' "
                              f"(see /api/models for the values on record)")
    since, until = _time("since", get("since")), _time("until", get("until"))
    if since and until and since >= until:
        raise FilterError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    raw_limit = get("limit")
    limit = DEFAULT_LIMIT if raw_limit is None else _int("limit", raw_limit)
    if not 1 <= limit <= max_limit:
        raise FilterError(f"limit={limit} is out of range: 1 to {max_limit}")
    return Filters(model=model, dag_id=dag_id, decision=decision, trigger=trigger, status=status, severity=severity,
                   since=since, until=until, limit=limit)


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise FilterError(f"{name}={text!r} is not a whole number") from exc


def _where(f: Filters, dags: Sequence[str] | None, table: str = "") -> tuple[str, list[Any]]:
    """``WHERE`` clauses for the filters and the caller's readable DAGs (columns are constants)."""
    p = f"{table}." if table else ""
    clauses, params = ["TRUE"], []
    if dags is not None:
        clauses.append(f"{p}dag_id = ANY(%s)")
        params.append(list(dags))
    for column, value in (("model_name", f.model), ("dag_id", f.dag_id), ("decision", f.decision),
                          ("trigger_type", f.trigger), ("status", f.status), ("severity", f.severity)):
        if value is not None:
            clauses.append(f"{p}{column} = %s")
            params.append(value)
    if f.since is not None:
        clauses.append(f"{p}window_end >= %s")
        params.append(f.since)
    if f.until is not None:
        clauses.append(f"{p}window_end < %s")
        params.append(f.until)
    return " AND ".join(clauses), params


def models(dsn: str, dags: Sequence[str] | None = None) -> list[Row]:
    """One row per model on record: its DAGs, run counts by decision, the newest window, the champion, and
    the values each filter can take (for the page's drop-downs)."""
    where, params = _where(Filters(), dags)
    rows = history._query(
        dsn,
        f"SELECT model_name, array_agg(DISTINCT dag_id) AS dag_ids, count(*) AS runs, "
        f"count(*) FILTER (WHERE decision = 'retrain') AS retrains, count(*) FILTER (WHERE deployed) AS deployments, "
        f"count(*) FILTER (WHERE gate_passed = FALSE) AS gate_rejections, max(window_end) AS last_window_end, "
        f"array_agg(DISTINCT decision) FILTER (WHERE decision IS NOT NULL) AS decisions, "
        f"array_agg(DISTINCT status) AS statuses, "
        f"array_agg(DISTINCT trigger_type) FILTER (WHERE trigger_type IS NOT NULL) AS triggers, "
        f"(array_agg(champion_version_after ORDER BY window_end DESC NULLS LAST, id DESC) "
        f"FILTER (WHERE champion_version_after IS NOT NULL))[1] AS champion_version, "
        f"count(*) FILTER (WHERE status = 'rejected' AND position(%s in coalesce(trigger_reason, '')) > 0) "
        f"AS first_model_rejections "
        f"FROM {events.TABLE} WHERE {where} GROUP BY model_name ORDER BY model_name",
        [FIRST_MODEL_REJECTED, *params],
    )
    for r in rows:
        for key in ("dag_ids", "decisions", "statuses", "triggers"):
            r[key] = sorted(r[key] or [])
        r["primary_metric"] = primary_metric(dsn, r["model_name"], dags)
        # no champion has ever served and the gate turned the first model down (pipeline.FIRST_MODEL_REJECTED)
        rejected_first = r.pop("first_model_rejections")
        r["no_champion"] = FIRST_MODEL_REJECTED if r["champion_version"] is None and rejected_first else None
    return rows


FIRST_MODEL_REJECTED = "no champion: first model rejected"  # as pipeline.FIRST_MODEL_REJECTED writes it
SHADOW_LOOKS = 200  # the newest looks of a challenger shown


def shadows(dsn: str, model: str, dags: Sequence[str] | None = None, limit: int = 20) -> list[Row]:
    """The model's challengers in shadow evaluation (``model_shadow_challengers``, see release/shadow.py), newest
    first: version, the champion it is scored against, state and why, and each look's running evidence (gain of
    the primary metric, its bounds at the look's level, rows, blocks, information fraction, outcome)."""
    from ..connections import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('model_shadow_challengers') IS NOT NULL")
        if not cur.fetchone()[0]:  # the table appears with the first challenger in shadow
            return []
    allowed = "TRUE" if dags is None else "dag_id = ANY(%s)"
    rows = history._query(
        dsn,
        f"SELECT id, version, champion_version, state, started_at, dag_id, run_id, reason, resolution, last, looks, "
        f"created_at, updated_at FROM model_shadow_challengers WHERE (model_name = %s OR registered_name = %s) "
        f"AND ({allowed}) ORDER BY id DESC LIMIT %s",
        [model, model, *([list(dags)] if dags is not None else []), min(int(limit), MAX_LIMIT)],
    )
    keep = ("window_end", "run_id", "champion", "challenger", "estimate", "se", "lower", "upper", "rows", "blocks",
            "t", "level", "alpha_spent", "outcome", "status")
    for r in rows:
        r["looks"] = [{k: x.get(k) for k in keep} for x in (r["looks"] or [])[-SHADOW_LOOKS:] if isinstance(x, dict)]
        r["last"] = {k: (r["last"] or {}).get(k) for k in keep} if r["last"] else None
    return rows


def primary_metric(dsn: str, model: str, dags: Sequence[str] | None = None) -> str | None:
    """The metric the model's gate judged improvement on (newest first); else the first metric column on record."""
    where, params = _where(Filters(model=model), dags)
    found = history._query(
        dsn,
        f"SELECT c->>'metric' AS metric FROM {events.TABLE} CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN "
        f"jsonb_typeof(gate_details->'criteria') = 'array' THEN gate_details->'criteria' ELSE '[]'::jsonb END) c "
        f"WHERE {where} AND c->>'criterion' = 'improvement' ORDER BY window_end DESC NULLS LAST LIMIT 1",
        params,
    ) or history._query(
        dsn,
        f"SELECT trigger_metrics->'performance'->>'metric' AS metric FROM {events.TABLE} WHERE {where} "
        f"AND trigger_metrics->'performance'->>'metric' IS NOT NULL ORDER BY window_end DESC NULLS LAST LIMIT 1",
        params,
    )
    if found and found[0]["metric"] in METRIC_COLUMN:
        return str(found[0]["metric"])
    counts = history._query(
        dsn,
        "SELECT " + ", ".join(f"count(retraining_{METRIC_COLUMN[m]}) AS {m}" for m in FALLBACK_METRICS)
        + f" FROM {events.TABLE} WHERE {where}",
        params,
    )
    return next((m for m in FALLBACK_METRICS if counts and counts[0][m]), None)


def list_events(dsn: str, f: Filters, dags: Sequence[str] | None = None) -> list[Row]:
    """The current row of each run, newest window first, without the large JSON columns: a short reason,
    the drift score and drifted features' count, and whether a drift report and an MLflow run exist."""
    where, params = _where(f, dags)
    columns = ", ".join(LIST_COLUMNS)
    rows = history._query(
        dsn,
        f"SELECT {columns}, left(trigger_reason, {REASON_CHARS + 1}) AS trigger_reason, left(error, 301) AS error, "
        f"(trigger_metrics->'drift'->>'drift_score')::float AS drift_score, "
        f"(trigger_metrics->'drift'->>'detected')::boolean AS drift_detected, "
        f"CASE WHEN jsonb_typeof(trigger_metrics->'drift'->'drifted_features') = 'array' "
        f"THEN jsonb_array_length(trigger_metrics->'drift'->'drifted_features') END AS drifted_features, "
        f"CASE WHEN jsonb_typeof(trigger_metrics->'drift'->'features') = 'array' "
        f"THEN jsonb_array_length(trigger_metrics->'drift'->'features') END AS checked_features, "
        f"drift_report_uri IS NOT NULL AS has_drift_report, candidate_run_id IS NOT NULL AS has_candidate_run "
        f"FROM {events.TABLE} WHERE {where} ORDER BY window_end DESC NULLS LAST, id DESC LIMIT %s",
        [*params, f.limit],
    )
    for r in rows:
        r["trigger_reason"] = _cut(r["trigger_reason"], REASON_CHARS)
        r["error"] = _cut(r["error"], 300)
    return rows


def _cut(text: str | None, width: int) -> str | None:
    return text if text is None or len(text) <= width else text[: width - 1].rstrip() + "…"


@dataclass(frozen=True)
class Links:
    """Where a run's artifacts are: the MLflow UI (``mlflow_ui``: its base URL, None when unknown) and
    the plugin's own pages."""

    mlflow_ui: str | None = None
    prefix: str = "/retraining"

    def mlflow_run(self, run_id: str | None) -> str | None:
        if not (self.mlflow_ui and run_id):
            return None
        return f"{self.mlflow_ui.rstrip('/')}/#/runs/{quote(run_id)}"


def event_detail(dsn: str, event_id: int, dags: Sequence[str] | None = None, links: Links | None = None) -> Row | None:
    """One run's current row with what its list row leaves out: the whole reason, the gate's reasons and
    criteria, the drift of each feature, the champion's measured performance, the run's attempts and the
    links to the MLflow runs and the drift report. None if there is no such row (or the caller may not read it)."""
    links = links or Links()
    where, params = _where(Filters(), dags)
    columns = ", ".join(LIST_COLUMNS)
    found = history._query(
        dsn,
        f"SELECT {columns}, trigger_reason, error, confidence, data_quality, rows_in_window, labelled_rows, "
        f"training_rows, training_snapshot_uri, training_snapshot_hash, candidate_run_id, drift_report_uri, "
        f"drift_report_run_id, champion_source, promotion_id, promotion_resolution, model_type, "
        f"trigger_metrics->'drift' AS drift, trigger_metrics->'performance' AS performance, "
        f"trigger_metrics->'estimated' AS estimated, trigger_metrics->'window' AS window_rule, "
        f"trigger_metrics->'watch' AS watch, trigger_metrics->'shadow' AS shadow, "
        f"gate_details - 'plots' - 'candidate_metrics_in_time' AS gate "
        f"FROM {events.TABLE} WHERE id = %s AND {where}",
        [event_id, *params],
    )
    if not found:
        return None
    row = found[0]
    drift = row.pop("drift") or {}
    row["drift"] = {k: drift.get(k) for k in ("detected", "drift_score", "score_threshold", "drifted_share",
                                               "share_threshold", "drifted_features")} if drift else None
    row["drift_features"] = [
        {k: f.get(k) for k in ("feature", "method", "statistic", "threshold", "drifted", "importance", "psi")}
        for f in (drift.get("features") or []) if isinstance(f, dict)
    ]
    gate = row.pop("gate") or {}
    row["gate"] = None if not gate else {
        "passed": gate.get("passed"),
        "reasons": gate.get("reasons") or [],
        "failed": gate.get("failed") or [],
        "criteria": [{k: c.get(k) for k in ("criterion", "metric", "slice", "candidate", "champion", "threshold",
                                            "passed")} for c in (gate.get("criteria") or []) if isinstance(c, dict)],
        "candidate_metrics": gate.get("candidate_metrics"),
        "champion_metrics": gate.get("champion_metrics"),
        "champion_version": gate.get("champion_version"),
        "outcome": gate.get("outcome") or ("promote" if gate.get("passed") else "reject"),
    }
    perf = row.pop("performance") or {}
    row["performance"] = {k: perf.get(k) for k in ("metric", "drop", "max_drop", "rows", "error_increase")} | {
        "current": (perf.get("current") or {}).get(perf.get("metric")),
        "baseline": (perf.get("baseline") or {}).get(perf.get("metric")),
    } if perf else None
    watch = row.pop("watch") or {}
    # the post-deploy watch's evidence (release/watch.py): both champions on the rows since the promotion
    row["watch"] = None if not watch else {
        **{k: watch.get(k) for k in ("status", "new_version", "previous_version", "promoted_at", "look", "windows",
                                      "rows", "metric", "margin", "confidence", "reason")},
        "new": (watch.get("new_metrics") or {}).get(watch.get("metric")),
        "previous": (watch.get("previous_metrics") or {}).get(watch.get("metric")),
        "ci_low": (watch.get("significance") or {}).get("ci_low"),
        "ci_high": (watch.get("significance") or {}).get("ci_high"),
    }
    shadow = row.pop("shadow") or {}
    # this run's look at the challenger in shadow evaluation (release/shadow.py)
    row["shadow"] = None if not shadow else {
        **{k: shadow.get(k) for k in ("status", "version", "champion_version", "started_at", "rows", "blocks", "t",
                                      "bound", "upper", "metric", "alpha", "spending", "reason")},
        "estimate": (shadow.get("evidence") or {}).get("estimate"),
    }
    row["attempts"] = history._query(
        dsn,
        f"SELECT attempt, decision, status, trigger_type, left(trigger_reason, {REASON_CHARS}) AS trigger_reason, "
        f"deployed, created_at, updated_at FROM {events.ATTEMPTS} "
        f"WHERE model_name = %s AND dag_id = %s AND run_id = %s ORDER BY attempt",
        [row["model_name"], row["dag_id"], row["run_id"]],
    )
    row["links"] = {
        "mlflow_candidate_run": links.mlflow_run(row["candidate_run_id"]),
        "mlflow_drift_run": links.mlflow_run(row["drift_report_run_id"]),
        "drift_report": f"{links.prefix}/report/{row['id']}" if row["drift_report_uri"] else None,
        "airflow_run": f"/dags/{quote(row['dag_id'])}/runs/{quote(row['run_id'], safe='')}",
        "page": f"{links.prefix}/?model={quote(row['model_name'])}&event={row['id']}",
    }
    return row


def find_run(dsn: str, dag_id: str, run_id: str, dags: Sequence[str] | None = None) -> Row | None:
    """The current row of one Airflow run (id, model, decision, status, a short reason), or None."""
    where, params = _where(Filters(dag_id=dag_id), dags)
    found = history._query(
        dsn,
        f"SELECT id, model_name, decision, status, trigger_type, severity, champion_version_before, "
        f"champion_version_after, candidate_version, gate_passed, deployed, failed_task, "
        f"left(trigger_reason, {REASON_CHARS}) AS trigger_reason, left(error, {REASON_CHARS}) AS error, "
        f"gate_details->'reasons' AS gate_reasons, drift_report_uri, drift_report_run_id "
        f"FROM {events.TABLE} WHERE run_id = %s AND {where} "
        f"ORDER BY updated_at DESC LIMIT 1",
        [run_id, *params],
    )
    return found[0] if found else None


def timeline(dsn: str, f: Filters, dags: Sequence[str] | None = None) -> list[Row]:
    """Decisions and severity window by window, oldest first (the newest ``TIMELINE_LIMIT`` windows)."""
    where, params = _where(f, dags)
    return history._query(
        dsn,
        f"SELECT * FROM (SELECT id, model_name, window_end, decision, severity, trigger_type, status, deployed, "
        f"gate_passed, (trigger_metrics->'drift'->>'drift_score')::float AS drift_score FROM {events.TABLE} "
        f"WHERE {where} AND window_end IS NOT NULL ORDER BY window_end DESC, id DESC LIMIT %s) newest "
        f"ORDER BY window_end, id",
        [*params, min(f.limit, TIMELINE_LIMIT)],
    )


def drift_features(dsn: str, f: Filters, dags: Sequence[str] | None = None) -> list[Row]:
    """The features on record with how often each drifted and its largest statistic/threshold ratio (most
    drifted first): what the page's feature picker offers."""
    where, params = _where(f, dags)
    return history._query(
        dsn,
        f"SELECT x->>'feature' AS feature, min(x->>'method') AS method, count(*) AS windows, "
        f"count(*) FILTER (WHERE (x->>'drifted')::boolean) AS drifted_windows, "
        f"max((x->>'statistic')::float / nullif((x->>'threshold')::float, 0)) AS max_ratio "
        f"FROM {events.TABLE} CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN "
        f"jsonb_typeof(trigger_metrics->'drift'->'features') = 'array' THEN trigger_metrics->'drift'->'features' "
        f"ELSE '[]'::jsonb END) x WHERE {where} GROUP BY 1 ORDER BY 4 DESC, 5 DESC NULLS LAST, 1 LIMIT 200",
        params,
    )


def drift_over_time(dsn: str, feature: str, f: Filters, dags: Sequence[str] | None = None) -> list[Row]:
    """One feature's statistic against its threshold, window by window, oldest first (the history command's
    query, restricted to the caller's DAGs)."""
    if not _NAME.match(feature):
        raise FilterError(f"feature={feature!r}: letters, digits, '_', '.', '-' only")
    where, params = _where(f, dags)
    # history.drift's query, with the caller's DAGs in the WHERE clause and oldest first for a chart
    return history._query(
        dsn,
        f"SELECT * FROM (SELECT model_name, window_end, x->>'method' AS method, (x->>'statistic')::float AS statistic, "
        f"(x->>'threshold')::float AS threshold, (x->>'drifted')::boolean AS drifted FROM {events.TABLE} "
        f"CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(trigger_metrics->'drift'->'features') "
        f"= 'array' THEN trigger_metrics->'drift'->'features' ELSE '[]'::jsonb END) x "
        f"WHERE x->>'feature' = %s AND {where} ORDER BY window_end DESC NULLS LAST, id DESC LIMIT %s) newest "
        f"ORDER BY window_end",
        [feature, *params, min(f.limit, DRIFT_LIMIT)],
    )


def champions(dsn: str, model: str, f: Filters, dags: Sequence[str] | None = None) -> Row:
    """The champion over time: every change of champion (``model_champion_history``: version, from when,
    how), and window by window the version that judged it with its measured primary metric on the window's
    labelled rows (``trigger_metrics.performance``), oldest first."""
    metric = primary_metric(dsn, model, dags)
    where, params = _where(Filters(model=model, since=f.since, until=f.until), dags)
    measured = history._query(
        dsn,
        f"SELECT * FROM (SELECT window_end, judged_by_version AS version, "
        f"(trigger_metrics->'performance'->'current'->>(trigger_metrics->'performance'->>'metric'))::float AS value, "
        f"(trigger_metrics->'performance'->'baseline'->>(trigger_metrics->'performance'->>'metric'))::float "
        f"AS baseline FROM {events.TABLE} WHERE {where} AND window_end IS NOT NULL "
        f"AND (judged_by_version IS NOT NULL OR trigger_metrics->'performance' IS NOT NULL) "
        f"ORDER BY window_end DESC, id DESC LIMIT %s) newest ORDER BY window_end",
        [*params, min(f.limit, TIMELINE_LIMIT)],
    )
    column = f"e.retraining_{METRIC_COLUMN[metric]}" if metric else "NULL::float"
    allowed = "TRUE" if dags is None else "h.dag_id IS NULL OR h.dag_id = ANY(%s)"
    try:
        changes = history._query(
            dsn,
            f"SELECT h.version, h.previous_version, h.effective_at, h.action, h.dag_id, h.run_id, h.reason, "
            f"e.id AS event_id, {column} AS gate_value FROM {champion_history.TABLE} h "
            f"LEFT JOIN {events.TABLE} e ON e.model_name = h.model_name AND e.dag_id = h.dag_id AND e.run_id = h.run_id "
            f"WHERE (h.model_name = %s OR h.registered_name = %s) AND ({allowed}) "
            f"ORDER BY h.effective_at, h.id LIMIT {TIMELINE_LIMIT}",
            [model, model, *([list(dags)] if dags is not None else [])],
        )
    except history.NoRunsRecorded:  # the champion history table appears with the first deployment
        changes = []
    return {"model_name": model, "metric": metric, "changes": changes, "measured": measured}


def gate_failures(dsn: str, f: Filters, dags: Sequence[str] | None = None) -> list[Row]:
    """Per gate criterion and metric: how often it failed and was evaluated (the history command's question,
    restricted to the caller's DAGs when ``dags`` is given)."""
    if dags is None and not any((f.dag_id, f.decision, f.trigger, f.status, f.severity)):
        return history.gate_failures(dsn, f.model, f.since, f.until)
    where, params = _where(f, dags)
    return history._query(
        dsn,
        f"SELECT c->>'criterion' AS criterion, c->>'metric' AS metric, "
        f"count(*) FILTER (WHERE NOT (c->>'passed')::boolean) AS failed, count(*) AS evaluated "
        f"FROM {events.TABLE} CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN "
        f"jsonb_typeof(gate_details->'criteria') = 'array' THEN gate_details->'criteria' ELSE '[]'::jsonb END) c "
        f"WHERE {where} GROUP BY 1, 2 ORDER BY 3 DESC, 4 DESC, 1, 2",
        params,
    )


def drift_report_location(dsn: str, event_id: int, dags: Sequence[str] | None = None) -> Row | None:
    """The drift report's artifact URI and MLflow run of one row (None: no such row or no report)."""
    where, params = _where(Filters(), dags)
    found = history._query(
        dsn,
        f"SELECT id, model_name, dag_id, run_id, drift_report_uri, drift_report_run_id FROM {events.TABLE} "
        f"WHERE id = %s AND {where} AND drift_report_uri IS NOT NULL",
        [event_id, *params],
    )
    return found[0] if found else None
