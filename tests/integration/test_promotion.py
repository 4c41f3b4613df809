"""Promotion a team can trust: export and reload, rollback when the reload fails, the rollback DAG,
approval when automatic promotion is off, and no promotion from a backfill."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from include.retraining import pipeline
from include.retraining import runtime as rt
from include.retraining.pipeline import RunInfo

from .conftest import REPO, Harness, at

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rollback_dag(dag):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).dags["model_rollback"]


def serving_config(harness: Harness, **extra) -> None:
    os.environ["RETRAINING_CONFIG"] = str(harness.configure(**{
        "deploy.serving_dir": str(harness.folder / "serving"),
        "deploy.reload_conn_id": "serving_api",
        **extra,
    }))


def current_version(harness: Harness) -> str:
    return os.readlink(harness.folder / "serving" / harness.model_name / "current")


def test_deploy_exports_reloads_and_a_failed_reload_rolls_back(harness: Harness, stream, serving_app):
    serving_config(harness)
    harness.load(stream)
    _, first = harness.run(at(8, 0))
    assert first["status"] == "deployed" and harness.alias_version("champion") == 1
    assert current_version(harness) == "v1"
    assert serving_app.calls[-1]["path"] == "/model/reload"
    assert serving_app.calls[-1]["body"]["version"] == 1 and serving_app.calls[-1]["body"]["model"] == harness.model_name
    exported = Path(serving_app.calls[-1]["body"]["path"])
    assert (exported / "MLmodel").exists()

    serving_app.status = 500  # the serving app refuses the next model
    dagrun, row = harness.run(at(8, 18))  # drift: a better candidate passes the gate
    assert row["gate_passed"] is True and row["candidate_version"] == 2
    assert dagrun.state == "failed"
    assert row["status"] == "failed" and row["failed_task"] == rt.DEPLOY and row["deployed"] is False
    assert "500" in row["error"] and "rolled back to v1" in row["error"]
    assert harness.alias_version("champion") == 1  # the alias went back
    assert harness.alias_version("previous_champion") is None
    assert current_version(harness) == "v1"  # and so did the served files
    assert len(serving_app.calls) == 2


def test_rollback_dag_restores_the_previous_champion(harness: Harness, stream, serving_app, rollback_dag):
    serving_config(harness)
    harness.load(stream)
    harness.run(at(8, 0))
    harness.run(at(8, 18))
    assert harness.alias_version("champion") == 2 and current_version(harness) == "v2"

    run = rollback_dag.test(run_conf={"action": "rollback", "target_version": None, "reason": "v2 misbehaves"})
    assert run.state == "success"
    row = harness.event(run.run_id)
    assert row["decision"] == "rollback" and row["trigger_type"] == "manual" and row["status"] == "rolled_back"
    assert row["champion_version_before"] == 2 and row["champion_version_after"] == 1
    assert "v2 misbehaves" in row["trigger_reason"] and row["execution_successful"] is True
    assert harness.alias_version("champion") == 1 and harness.alias_version("previous_champion") == 2
    assert current_version(harness) == "v1"
    assert serving_app.calls[-1]["body"]["version"] == 1
    assert harness.mlflow().get_model_version(harness.model_name, "1").tags["promotion_reason"].startswith("rollback")


def test_rollback_to_a_version_that_does_not_exist_is_refused(harness: Harness, stream, rollback_dag):
    harness.load(stream)
    harness.run(at(8, 0))
    run = rollback_dag.test(run_conf={"action": "rollback", "target_version": 7, "reason": ""})
    assert run.state == "failed"
    row = harness.event(run.run_id)
    assert row["status"] == "failed" and "no version 7" in row["error"]
    assert harness.alias_version("champion") == 1


def test_with_auto_promotion_off_a_passing_candidate_waits_for_approval(harness: Harness, stream, rollback_dag):
    harness.load(stream)
    os.environ["RETRAINING_CONFIG"] = str(harness.configure(**{"deploy.auto_promote": False}))
    dagrun, row = harness.run(at(8, 0))
    assert dagrun.state == "success"
    assert row["gate_passed"] is True and row["candidate_version"] == 1
    assert row["status"] == "awaiting_approval" and row["deployed"] is False
    assert harness.task_states(dagrun.run_id)[rt.DEPLOY] == "skipped"
    assert harness.alias_version("challenger") == 1 and harness.alias_version("champion") is None

    run = rollback_dag.test(run_conf={"action": "promote", "target_version": None, "reason": "approved by risk team"})
    assert run.state == "success"
    approval = harness.event(run.run_id)
    assert approval["decision"] == "promote" and approval["status"] == "promoted"
    assert harness.alias_version("champion") == 1


def test_a_backfill_run_never_promotes(harness: Harness, stream):
    """dag.test() only makes manual runs, so the backfill run is given to the stage functions directly,
    against the same PostgreSQL and MLflow store."""
    harness.load(stream)
    harness.run(at(8, 0))
    info = RunInfo(dag_id="model_retraining", run_id="backfill__2026-03-08T18:00:00+00:00", run_type="backfill",
                   logical_date=at(8, 18), data_interval_start=at(8, 12), data_interval_end=at(8, 18))
    assessment = pipeline.check(info, rt.CHECK)
    decision = pipeline.decide(info, rt.DECIDE, assessment)
    assert decision["decision"] == "check_only" and decision["would_retrain"] is True
    assert "backfill" in decision["reason"]
    with pytest.raises(RuntimeError, match="backfill runs never deploy"):
        pipeline.deploy(info, rt.DEPLOY, {"version": 1})
    row = harness.event(info.run_id)
    assert row["decision"] == "check_only" and row["failed_task"] == rt.DEPLOY and row["deployed"] is False
    assert harness.alias_version("champion") == 1
