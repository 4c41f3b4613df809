"""The plugin's run-note listener inside the scheduler's loop, with the events connection made in the UI (stored in
Airflow's metadata DB): the lookup must not close the scheduler's session (it did, and stopped the scheduler)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from include.retraining.record import events
from include.retraining.ui import run_note

pytestmark = pytest.mark.integration
RUN = "scheduled__2026-03-08T18:00:00+00:00"


def test_the_listener_looks_the_connection_up_without_closing_the_schedulers_session(
        airflow_db: None, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow import settings
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    events.upsert_event(pg_dsn, events.RunKey("credit_risk", "model_retraining", RUN),
                        {"decision": "retrain", "status": "deployed", "trigger_type": "data_drift",
                         "trigger_reason": "data drift in 6/11 features", "champion_version_before": 1,
                         "champion_version_after": 2})
    # retraining_db as a connection made in the UI: in the metadata DB, not in the environment
    env = json.loads(os.environ["AIRFLOW_CONN_RETRAINING_DB"])
    monkeypatch.delenv("AIRFLOW_CONN_RETRAINING_DB")
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")  # as in the scheduler: connections from the metadata DB
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "retraining_db").delete()
        session.add(Connection(conn_id="retraining_db", conn_type="postgres", host=env["host"], port=env["port"],
                               login=env["login"], schema=env["schema"], extra=json.dumps(env["extra"])))
    try:
        def held_by_the_scheduler():
            """The scheduler's thread-scoped session, holding one of its objects (as it holds its DAG runs)."""
            scheduler_session = settings.Session()
            held = scheduler_session.scalar(select(Connection).where(Connection.conn_id == "retraining_db"))
            assert object_session(held) is scheduler_session
            return scheduler_session, held

        # the control: looking the connection up on the scheduler's own thread closes its session
        scheduler_session, held = held_by_the_scheduler()
        in_own_thread = run_note.in_own_thread
        monkeypatch.setattr(run_note, "in_own_thread", lambda fn, timeout=15.0: fn())
        assert run_note.annotate(SimpleNamespace(dag_id="model_retraining", run_id=RUN, note=None)) is not None
        assert object_session(held) is None, "the control should show the trap"
        monkeypatch.setattr(run_note, "in_own_thread", in_own_thread)

        # the listener as shipped: the lookup runs on a thread (and a session) of its own
        scheduler_session, held = held_by_the_scheduler()
        dag_run = SimpleNamespace(dag_id="model_retraining", run_id=RUN, note=None)
        note = run_note.annotate(dag_run)
        assert note is not None and note.startswith("**retrain** (data_drift)") and dag_run.note == note
        assert object_session(held) is scheduler_session  # the scheduler's objects are still attached
        scheduler_session.close()
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == "retraining_db").delete()
