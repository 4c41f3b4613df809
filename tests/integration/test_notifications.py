"""Notifications from real runs: ``dag.test()`` runs of model_retraining and model_rollback whose closing task's
callbacks (the RetrainingNotifier) post to a real local webhook, one scenario building on the last."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from include.retraining import runtime as rt
from tests.notify_servers import WebhookServer

from .conftest import REPO, Harness, at

pytestmark = pytest.mark.integration

CONN_ID = "retraining_notify"


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "extra": {"endpoint": "/notify"}}))
        yield server
    server.close()


@pytest.fixture(scope="module")
def scenario(module_harness: Harness, stream: Any, hook: WebhookServer) -> Harness:
    configure(module_harness)
    module_harness.load(stream)
    return module_harness


@pytest.fixture(scope="module")
def rollback_dag(dag: Any) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).dags["model_rollback"]


def configure(harness: Harness, **extra: Any) -> None:
    os.environ["RETRAINING_CONFIG"] = str(harness.configure(**{"notify.conn_id": CONN_ID, **extra}))


def received(hook: WebhookServer, since: int) -> list[dict[str, Any]]:
    assert all(r["path"] == "/notify" for r in hook.received)
    return hook.bodies()[since:]


def test_a_first_deployment_notifies_a_promotion(scenario: Harness, hook: WebhookServer) -> None:
    dagrun, row = scenario.run(at(8, 0))
    assert row["status"] == "deployed"
    [note] = received(hook, 0)
    assert note["kind"] == "promotion" and note["run_id"] == dagrun.run_id and note["dag_id"] == "model_retraining"
    assert note["model"] == scenario.model_name and note["champion_after"] == 1
    assert note["title"] == f"[retraining] {scenario.model_name}: v1 promoted to champion (first champion)"
    assert note["links"]["events row"] == f"SELECT * FROM model_retraining_events WHERE id = {row['id']};"
    assert note["links"]["MLflow run"] == f"runs:/{row['candidate_run_id']}"  # a local (SQLite) tracking store
    assert note["reason"] == row["trigger_reason"] and "champion: none -> v1" in note["text"]


def test_a_rejected_candidate_notifies_the_failing_criteria(scenario: Harness, hook: WebhookServer) -> None:
    seen = len(hook.received)
    dagrun, row = scenario.run(at(8, 6), force_retrain=True, model_type="logistic_regression",
                               reason="try a simpler model")
    assert row["status"] == "rejected"
    [note] = received(hook, seen)
    assert note["kind"] == "gate_rejection" and note["run_id"] == dagrun.run_id
    assert "no_regression:roc_auc" in note["gate_failed"] and note["gate_failed"] == row["gate_details"]["failed"]
    assert "try a simpler model" in note["reason"]
    assert f"gate: failed on {', '.join(row['gate_details']['failed'])}" in note["text"]
    assert note["title"].endswith("candidate rejected by the evaluation gate, champion stays v1")


def test_a_suppressed_retraining_notifies_with_the_drift_report(scenario: Harness, hook: WebhookServer) -> None:
    configure(scenario, **{"storm.min_hours_between_retrains": 48})  # the forced run 12 hours ago counts
    seen = len(hook.received)
    dagrun, row = scenario.run(at(8, 18))
    assert row["decision"] == "suppressed"
    [note] = received(hook, seen)
    assert note["kind"] == "suppressed" and note["run_id"] == dagrun.run_id
    assert "retraining suppressed" in note["reason"]
    assert note["links"]["drift report"] == row["drift_report_uri"]
    assert scenario.task_states(dagrun.run_id)[rt.FINALIZE] == "success"


def test_a_failed_rollback_notifies_a_failure(scenario: Harness, hook: WebhookServer, rollback_dag: Any) -> None:
    seen = len(hook.received)
    run = rollback_dag.test(run_conf={"action": "rollback", "target_version": 7, "reason": "bad v1"})
    assert run.state == "failed"
    [note] = received(hook, seen)
    assert note["kind"] == "failure" and note["dag_id"] == "model_rollback" and note["run_id"] == run.run_id
    assert note["failed_task"] == rt.SWITCH and "no version 7" in note["error"]
    assert note["title"].endswith(f"run failed in {rt.SWITCH}")


def test_a_new_champion_and_its_rollback_notify(scenario: Harness, hook: WebhookServer, rollback_dag: Any) -> None:
    configure(scenario)  # storm control as configured by default again: the last retraining was 18 hours ago
    seen = len(hook.received)
    _, row = scenario.run(at(9, 0))
    assert row["status"] == "deployed" and row["champion_version_after"] == 2
    run = rollback_dag.test(run_conf={"action": "rollback", "target_version": None, "reason": "v2 misbehaves"})
    assert run.state == "success"
    promotion, rollback = received(hook, seen)
    assert promotion["kind"] == "promotion" and promotion["title"].endswith("v2 promoted to champion (was v1)")
    assert rollback["kind"] == "rollback" and rollback["run_id"] == run.run_id
    assert rollback["title"] == f"[retraining] {scenario.model_name}: rolled back to v1 (was v2)"
    assert rollback["reason"] == "v2 misbehaves"
    assert scenario.alias_version("champion") == 1
