"""The loop as a team lives it: a first model, quiet windows that skip, drift that retrains and deploys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from include.retraining import runtime as rt

from .conftest import TABLE, Harness, at

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scenario(module_harness: Harness, stream) -> dict[str, tuple[Any, dict[str, Any]]]:
    h = module_harness
    h.load(stream)
    return {
        "bootstrap": h.run(at(8, 0)),
        "quiet": h.run(at(8, 6)),
        "drift": h.run(at(8, 18)),
    }


def test_first_run_trains_gates_and_deploys_a_first_model(scenario, module_harness: Harness):
    dagrun, row = scenario["bootstrap"]
    assert dagrun.state == "success"
    assert row["decision"] == "retrain"
    assert row["trigger_type"] == "manual"  # dag.test() runs are manual runs
    assert "no champion" in row["trigger_reason"]
    assert row["status"] == "deployed" and row["deployed"] is True
    assert row["execution_attempted"] is True and row["execution_successful"] is True
    assert row["champion_version_before"] is None and row["champion_version_after"] == 1
    assert row["candidate_version"] == 1
    assert row["gate_passed"] is True
    # no champion: only the absolute criteria and the smoke test of the artifact apply
    assert {c["criterion"] for c in row["gate_details"]["criteria"]} == {"absolute", "smoke"}
    smoke = row["gate_details"]["smoke"]
    assert smoke["rows"] == 100 and smoke["valid"] is True and 0 < smoke["p99_latency_ms"] < 1000
    assert 0.5 < row["retraining_auc"] <= 1.0 and row["comparison_previous_auc"] is None
    assert row["training_snapshot_hash"] and len(row["training_snapshot_hash"]) == 64
    assert row["execution_completed_at"] is not None
    assert row["model_name"] == module_harness.model_name
    assert row["window_start"] == at(7, 18) and row["window_end"] == at(8, 0)
    # reproducible and auditable: provenance on the run and on the registered version
    client = module_harness.mlflow()
    run = client.get_run(row["candidate_run_id"])
    assert run.data.tags["snapshot_hash"] == row["training_snapshot_hash"]
    assert run.data.tags["code_version"] and len(run.data.tags["config_sha256"]) == 64
    assert run.data.tags["lib_scikit-learn"] and run.data.tags["lib_xgboost"]
    assert float(run.data.params["search_trials"]) == 2 and "cv_best_roc_auc" in run.data.metrics
    trials = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert len(trials) == 2 and all("cv_roc_auc" in t.data.metrics for t in trials)
    version = client.get_model_version(module_harness.model_name, "1")
    assert version.tags["snapshot_hash"] == row["training_snapshot_hash"]
    assert version.tags["event_row_id"] == str(row["id"]) and version.tags["gate_passed"] == "true"
    assert version.run_id == row["candidate_run_id"]
    states = module_harness.task_states(dagrun.run_id)
    assert states[rt.SKIP] == "skipped"
    assert all(states[t] == "success" for t in (rt.COLLECT, rt.PREPARE, rt.TRAIN, rt.GATE, rt.REGISTER, rt.DEPLOY))


def test_window_without_drift_skips_and_records_why(scenario, module_harness: Harness):
    dagrun, row = scenario["quiet"]
    assert dagrun.state == "success"
    assert row["decision"] == "skip" and row["status"] == "skipped"
    assert row["trigger_type"] == "none" and row["severity"] == "low"
    assert row["execution_attempted"] is False and row["execution_successful"] is None
    assert row["champion_version_before"] == 1 == row["champion_version_after"]
    drift = row["trigger_metrics"]["drift"]
    assert len(drift["features"]) == 11 and drift["detected"] is False
    # default methods on a 3000-row window: Wasserstein (numeric) and Jensen-Shannon (categorical), all quiet
    assert {f["method"] for f in drift["features"]} == {"wasserstein", "jensenshannon"}
    assert all(f["statistic"] < f["threshold"] and not f["drifted"] for f in drift["features"])
    assert abs(sum(f["importance"] for f in drift["features"]) - 1) < 1e-3 and drift["importance_weighted"] is True
    estimated = row["trigger_metrics"]["estimated"]  # the label-free estimate is on record too
    assert estimated["metric"] == "f1" and abs(estimated["drop"]) < 0.05
    assert row["drift_report_uri"] is None  # reports only for checks that found drift
    assert row["trigger_metrics"]["performance"]["current"]["roc_auc"] > 0.6
    assert row["labelled_rows"] >= 500
    states = module_harness.task_states(dagrun.run_id)
    assert states[rt.SKIP] == "success"
    assert all(states[t] == "skipped" for t in (rt.COLLECT, rt.TRAIN, rt.DEPLOY))
    assert states[rt.FINALIZE] == "success"


def test_drifted_window_retrains_registers_and_deploys(scenario, module_harness: Harness):
    dagrun, row = scenario["drift"]
    assert dagrun.state == "success"
    assert row["decision"] == "retrain" and row["trigger_type"] == "data_drift"
    assert row["severity"] in ("medium", "high", "critical")
    drift = row["trigger_metrics"]["drift"]
    assert "loan_purpose" in drift["drifted_features"] and drift["drifted_share"] >= 0.25
    assert drift["drifted_features"][0] in row["trigger_reason"]  # the reason names the features and numbers
    assert "sd (>= 0.1, importance" in row["trigger_reason"]
    # the HTML report is on its own MLflow run, linked from the row
    assert row["drift_report_uri"].endswith("/drift_report.html")
    report_files = {f.path for f in module_harness.mlflow().list_artifacts(row["drift_report_run_id"])}
    assert {"drift_report.html", "drift_verdict.json"} <= report_files
    assert row["status"] == "deployed" and row["deployed"] is True and row["execution_successful"] is True, row["gate_details"]["reasons"]
    assert row["champion_version_before"] == 1 and row["champion_version_after"] == 2
    assert row["gate_passed"] is True
    improvement = next(c for c in row["gate_details"]["criteria"] if c["criterion"] == "improvement")
    assert improvement["slice"] == "out_of_time" and improvement["candidate"] > improvement["champion"] + 0.01
    significance = row["gate_details"]["significance"]
    assert significance["method"] == "paired_bootstrap" and significance["ci_low"] > 0
    # judged out of time: on the newest labelled rows, after everything either model learned from
    gate = row["gate_details"]
    assert significance["rows"] == gate["test_rows"] >= 200
    assert gate["evaluation"] == "out_of_time" and gate["holdout_start"] >= at(8, 12).isoformat()
    assert gate["champion_trained_until"] < gate["holdout_start"]
    candidate_meta = module_harness.mlflow().download_artifacts(row["candidate_run_id"], "model_meta.json")
    meta = json.loads(Path(candidate_meta).read_text())
    assert meta["trained_until"] < gate["holdout_start"]  # the candidate never saw the rows it was judged on
    assert gate["in_time"]["rows"] > 0 and gate["in_time"]["candidate"]["roc_auc"] is not None
    # the reviewer's plots are on the candidate's MLflow run
    artifacts = {f.path for f in module_harness.mlflow().list_artifacts(row["candidate_run_id"], "gate")}
    assert {"gate/confusion_matrices.png", "gate/roc_curves.png", "gate/precision_recall_curves.png",
            "gate/verdict.json"} <= artifacts
    assert row["gate_details"]["plots"][0].startswith(f"runs:/{row['candidate_run_id']}/gate/")
    assert row["comparison_previous_auc"] is not None and row["improvement_auc_percent"] is not None
    # promotion by alias; the former champion stays ready for rollback
    assert module_harness.alias_version("champion") == 2
    assert module_harness.alias_version("previous_champion") == 1
    version = module_harness.mlflow().get_model_version(module_harness.model_name, "2")
    assert version.tags["gate_passed"] == "true" and version.tags["airflow_run_id"] == dagrun.run_id


def test_the_teams_queries_run_verbatim(scenario, module_harness: Harness):
    latest = module_harness.query("SELECT * FROM model_retraining_events ORDER BY triggered_at DESC LIMIT 10;")
    assert [r["data_interval_end"] for r in latest] == [at(8, 18), at(8, 6), at(8, 0)]
    by_type = module_harness.query(
        "SELECT trigger_type, COUNT(*) FROM model_retraining_events GROUP BY trigger_type;"
    )
    assert {r["trigger_type"]: r["count"] for r in by_type} == {"manual": 1, "none": 1, "data_drift": 1}
    successful = module_harness.query(
        "SELECT * FROM model_retraining_events WHERE execution_successful = TRUE ORDER BY triggered_at DESC;"
    )
    assert [r["champion_version_after"] for r in successful] == [2, 1]
    improvements = module_harness.query(
        "SELECT triggered_at, trigger_type, improvement_r2_percent, improvement_rmse_percent "
        "FROM model_retraining_events WHERE execution_successful = TRUE;"
    )
    assert len(improvements) == 2
    assert all(r["improvement_r2_percent"] is None for r in improvements)  # a classifier has no R2


def test_snapshots_are_versioned_and_the_source_untouched(scenario, module_harness: Harness):
    rows = module_harness.query(
        "SELECT training_snapshot_uri, training_snapshot_hash FROM model_retraining_events "
        "WHERE training_snapshot_hash IS NOT NULL ORDER BY data_interval_end"
    )
    assert len(rows) == 2 and rows[0]["training_snapshot_hash"] != rows[1]["training_snapshot_hash"]
    assert str(module_harness.folder) in rows[0]["training_snapshot_uri"]
    count = module_harness.query(f"SELECT count(*) AS n FROM {TABLE}")[0]["n"]
    assert count > 20_000


# --- point in time: after the scenario, v1 served from 03-08 00:00 and v2 from 03-08 18:00 ---------------------


def backfill_info(end):
    from include.retraining.pipeline import RunInfo

    start = end.replace(hour=(end.hour - 6) % 24) if end.hour else at(end.day - 1, 18)
    return RunInfo(dag_id="model_retraining", run_id=f"backfill__{start.isoformat()}", run_type="backfill",
                   logical_date=start, data_interval_start=start, data_interval_end=end, ti_id=f"ti-{end.isoformat()}")


def test_past_windows_are_judged_by_the_champion_of_their_time(scenario, module_harness: Harness):
    from dataclasses import replace

    from include.retraining import pipeline

    verdicts = {}
    for end in (at(8, 6), at(8, 12), at(8, 18), at(9, 0)):
        info = backfill_info(end)
        assessment = pipeline.check(info, rt.CHECK)
        decision = pipeline.decide(replace(info, attempt=assessment["attempt"]), rt.DECIDE, assessment)
        row = module_harness.event(info.run_id)
        verdicts[end.strftime("%d %H")] = (row["judged_by_version"], row["champion_source"], decision["would_retrain"])
        assert row["decision"] == "check_only" and row["deployed"] is False
        assert f"judged by v{row['judged_by_version']}, the champion in service" in row["trigger_reason"]
    # before the drift v1 is quiet; the drifted window (judged by v1, not by today's v2) would retrain;
    # the window after it is judged by v2, which learned the new population
    assert verdicts == {"08 06": (1, "history", False), "08 12": (1, "history", False),
                        "08 18": (1, "history", True), "09 00": (2, "history", False)}
    assert module_harness.alias_version("champion") == 2


def test_a_manual_run_without_a_date_checks_the_latest_window_with_data(scenario, module_harness: Harness):
    from datetime import timedelta

    from include.retraining.local_runs import run_manual

    dagrun = run_manual(module_harness.dag, at(9, 6) + timedelta(minutes=30),
                        module_harness.conf(check_only=True, reason="the risk team asked"))
    assert dagrun.state == "success"
    row = module_harness.event(dagrun.run_id)
    # the stream ends at 03-09 06:00 with labels three hours behind: the latest window with data is [00:00, 06:00)
    assert (row["window_start"], row["window_end"]) == (at(9, 0), at(9, 6))
    assert row["trigger_metrics"]["window"]["rule"] == "latest_with_data"
    assert "reason given by the trigger: the risk team asked" in row["trigger_reason"]
    assert row["decision"] == "check_only" and row["judged_by_version"] == 2 and row["champion_source"] == "registry"
    assert row["requested_by"] == "dag_test" and row["run_type"] == "manual"


def test_a_promotion_judged_against_a_champion_that_has_changed_is_refused(scenario, module_harness: Harness):
    from include.retraining.config import load_config
    from include.retraining.release import registry
    from include.retraining.release.promotion import PromotionError, switch_champion

    cfg = load_config()
    with pytest.raises(PromotionError, match="was judged against champion v1, but the champion is v2 now"):
        switch_champion(cfg, registry.setup(cfg), module_harness.dsn, 1, "stale", effective_at=at(9, 6),
                        expected_champion=1)
    assert module_harness.alias_version("champion") == 2
    history = module_harness.query("SELECT version, effective_at FROM model_champion_history ORDER BY effective_at")
    assert [(r["version"], r["effective_at"]) for r in history] == [(1, at(8, 0)), (2, at(8, 18))]
