"""The decision and its reason as the note of the Airflow run, set when the run ends.

``plugins/retraining_ui.py`` registers a listener that calls :func:`annotate`: Airflow calls it when a run of any DAG
succeeds or fails, in the process that decided the run's state (the scheduler, or the api-server
when a person marks a run), with the run's ORM object in that process's database session. For a
run of a retraining DAG that has no note yet (a person's note is never replaced), it reads the run's
events row and sets the note (Markdown, at most 1,000 characters, shown on the run's page) on that
object; the caller's transaction saves it. Any error is logged and swallowed: a note must never
hold up or fail the scheduler. The events database is reached with a short connect timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from ..connections import EVENTS_CONN_ID, resolve_dsn
from . import queries

log = logging.getLogger(__name__)
T = TypeVar("T")

NOTE_CHARS = 1000  # Airflow's dag_run_note.content
RETRAINING_DAG_PREFIX = "model_retraining"  # model_retraining and model_retraining__<model> (fleet.py)
CONNECT_TIMEOUT_SECONDS = 3


def _version(v: Any) -> str:
    return "none" if v is None else f"v{v}"


def note_for(row: dict[str, Any], dag_id: str, run_id: str, prefix: str = "/retraining") -> str:
    """The note: decision, trigger and severity, the outcome and champion change, the reason(s) and a link
    to the run's row on the retraining page."""
    decision = row.get("decision") or "no decision"
    trigger = ", ".join(x for x in (row.get("trigger_type"), row.get("severity")) if x)
    before, after = row.get("champion_version_before"), row.get("champion_version_after")
    champion = (f"champion {_version(before)} → {_version(after)}" if before != after
                else f"champion {_version(after)}")
    lines = [f"**{decision}**{f' ({trigger})' if trigger else ''} → **{row.get('status') or '?'}**, {champion}"]
    if row.get("trigger_reason"):
        lines.append(str(row["trigger_reason"]))
    if row.get("gate_passed") is False and row.get("gate_reasons"):
        lines.append("Gate: " + "; ".join(str(r) for r in row["gate_reasons"][:3]))
    if row.get("error"):
        lines.append(f"Error in {row.get('failed_task') or 'a task'}: {row['error']}")
    link = f"[Retraining page]({prefix}/run?{urlencode({'dag_id': dag_id, 'run_id': run_id})})"
    if row.get("drift_report_uri"):
        link += f" · [Drift report]({prefix}/report/{row['id']})"
    body = "\n\n".join(lines)
    room = NOTE_CHARS - len(link) - 2
    if len(body) > room:
        body = body[: room - 1].rstrip() + "…"
    return f"{body}\n\n{link}"


def in_own_thread(fn: Callable[[], T], timeout: float = 15.0) -> T:
    """``fn()`` in a thread of its own, waited for.

    The listener runs inside the scheduler's scheduling loop, on the thread whose scoped metadata-DB session
    holds the DAG runs being scheduled. Looking a connection up in Airflow's metadata DB (a connection made in
    the UI) opens and *closes* a session: on that thread it would be the scheduler's own, detaching its DAG
    runs and stopping the scheduler (seen with ``make airflow``). A new thread gets a session of its own."""
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller
            result["error"] = exc

    worker = threading.Thread(target=call, name="retraining-run-note", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout:.0f} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def _events_dsn() -> str:
    from psycopg2.extensions import make_dsn

    # make_dsn: the DSN may be a URI (the embedded server's), where " key=value" cannot be appended
    return make_dsn(in_own_thread(lambda: resolve_dsn(EVENTS_CONN_ID)), connect_timeout=CONNECT_TIMEOUT_SECONDS)


def annotate(dag_run: Any, dsn: Callable[[], str] = _events_dsn) -> str | None:
    """Set the note of a finished retraining run from its events row; the note set, or None (not a
    retraining DAG, a note already there, no row, or an error, which is logged)."""
    dag_id, run_id = str(dag_run.dag_id), str(dag_run.run_id)
    if not dag_id.startswith(RETRAINING_DAG_PREFIX):
        return None
    try:
        if getattr(dag_run, "note", None):
            return None
        row = queries.find_run(dsn(), dag_id, run_id)
        if row is None:
            log.info("no events row for %s %s: run note not set", dag_id, run_id)
            return None
        note = note_for(row, dag_id, run_id)
        dag_run.note = note
        return note
    except Exception:
        log.exception("could not set the retraining note of %s %s (the run is not affected)", dag_id, run_id)
        return None
