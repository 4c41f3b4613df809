"""The run note the plugin's listener sets when a retraining run ends, from the run's events row."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg2
import pytest

from include.retraining.record import champion_history, events
from include.retraining.ui import run_note
from tests.browser import seed


@pytest.fixture
def seeded(pg_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> seed.Seeded:
    monkeypatch.setattr(events, "_ready", set())
    monkeypatch.setattr(champion_history, "_ready", set())
    return seed.seed(pg_dsn, tmp_path)


def run(dag_id: str, run_id: str, note: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(dag_id=dag_id, run_id=run_id, note=note)


def test_a_deployment_and_a_gate_rejection_become_notes(seeded: seed.Seeded) -> None:
    deployed = run(seed.CREDIT_DAG, seed.drift_run_id())
    note = run_note.annotate(deployed, lambda: seeded.dsn)
    assert note == deployed.note
    first, reason, links = note.split("\n\n")
    assert first == "**retrain** (data_drift, critical) → **deployed**, champion v1 → v2"
    assert reason.startswith("data drift in 6/11 features")
    assert links.startswith("[Retraining page](/retraining/run?dag_id=model_retraining&run_id=scheduled__2026-03-08T18")
    assert "[Drift report](/retraining/report/" in links

    rejected = run(seed.LOAN_DAG, seed.drift_run_id())
    note = run_note.annotate(rejected, lambda: seeded.dsn)
    assert note.startswith("**retrain** (data_drift, critical) → **rejected**, champion v1")
    assert "Gate: r2 0.6100 regresses against the champion's 0.6723" in note


def test_no_note_outside_retraining_dags_over_a_persons_note_or_without_a_row(seeded: seed.Seeded) -> None:
    assert run_note.annotate(run("other_dag", "r"), lambda: seeded.dsn) is None
    kept = run(seed.CREDIT_DAG, seed.drift_run_id(), note="investigating, do not promote")
    assert run_note.annotate(kept, lambda: seeded.dsn) is None and kept.note == "investigating, do not promote"
    assert run_note.annotate(run(seed.CREDIT_DAG, "manual__unknown"), lambda: seeded.dsn) is None


def test_an_unreachable_database_never_fails_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    dag_run = run(seed.CREDIT_DAG, "r")
    dsn = "host=127.0.0.1 port=1 dbname=x connect_timeout=1"
    assert run_note.annotate(dag_run, lambda: dsn) is None and dag_run.note is None
    assert "could not set the retraining note" in caplog.text
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(dsn)


def test_a_long_reason_is_cut_to_airflows_note_size() -> None:
    row = {"id": 7, "decision": "skip", "status": "skipped", "trigger_reason": "x" * 5000,
           "drift_report_uri": "file:///r.html"}
    note = run_note.note_for(row, seed.CREDIT_DAG, "r1")
    assert len(note) <= run_note.NOTE_CHARS and note.endswith("[Drift report](/retraining/report/7)")
    assert "…" in note
