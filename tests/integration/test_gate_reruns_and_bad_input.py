"""Safety: worse candidates are rejected, re-runs do not duplicate, and bad input is named and recorded."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from include.retraining import demo_data
from include.retraining import runtime as rt

from .conftest import Harness, at

pytestmark = pytest.mark.integration


def test_forced_retraining_with_a_worse_candidate_is_rejected_and_the_champion_stays(harness: Harness, stream):
    harness.load(stream)
    harness.run(at(8, 0))
    assert harness.alias_version("champion") == 1
    # logistic regression cannot see the interaction in the data: a worse candidate than XGBoost
    dagrun, row = harness.run(at(8, 6), force_retrain=True, model_type="logistic_regression",
                              reason="try a simpler model")
    assert dagrun.state == "success"
    assert row["decision"] == "retrain" and row["trigger_type"] == "manual"
    assert "try a simpler model" in row["trigger_reason"]
    assert row["model_type"] == "logistic_regression"
    assert row["gate_passed"] is False and row["deployed"] is False
    assert row["status"] == "rejected" and row["execution_successful"] is False
    assert row["candidate_version"] is None  # a rejected candidate is not registered
    assert row["champion_version_after"] == 1
    failed = row["gate_details"]["failed"]
    assert "no_regression:roc_auc" in failed
    assert any("roc_auc" in reason and "regresses" in reason for reason in row["gate_details"]["reasons"])
    assert row["improvement_auc_percent"] < 0
    assert row["gate_details"]["outcome"] == "reject"
    assert harness.alias_version("champion") == 1
    states = harness.task_states(dagrun.run_id)
    assert states[rt.REGISTER] == "skipped" and states[rt.DEPLOY] == "skipped"
    assert states[rt.FINALIZE] == "success"


def test_rerunning_a_run_that_deployed_keeps_its_deployment_on_record(harness: Harness, stream):
    harness.load(stream)
    first, row1 = harness.run(at(8, 0))
    assert row1["deployed"] is True and row1["champion_version_after"] == 1
    again, row2 = harness.run(at(8, 0))  # dag.test() of the same date: the run is made and run again
    assert first.run_id == again.run_id
    rows = harness.query("SELECT * FROM model_retraining_events WHERE run_id = %s", (first.run_id,))
    assert len(rows) == 1
    # the current row is still the attempt that deployed
    assert (row2["id"], row2["attempt"], row2["status"], row2["deployed"]) == (row1["id"], 1, "deployed", True)
    assert row2["updated_at"] == row1["updated_at"]
    attempts = harness.attempts(first.run_id)
    assert [a["attempt"] for a in attempts] == [1, 2]
    replay = attempts[1]
    # v1 serves from this window's end on, so the second attempt replays the window: judged by the champion
    # in service before it (none), it says what it would have done and changes nothing
    assert replay["decision"] == "check_only" and replay["status"] == "check_only"
    assert replay["champion_source"] == "history" and replay["judged_by_version"] is None
    assert "replays it" in replay["trigger_reason"] and replay["trigger_reason"].endswith("would retrain)")
    assert replay["deployed"] is False and replay["candidate_version"] is None
    assert harness.alias_version("champion") == 1
    assert len(harness.mlflow().search_model_versions(f"name = '{harness.model_name}'")) == 1  # nothing trained


def test_window_with_too_little_labelled_data_records_insufficient_data(harness: Harness, stream):
    # the labels of the last hours before the window end have not arrived
    late = stream.copy()
    late.loc[late[demo_data.TIMESTAMP] >= at(8, 0) + timedelta(minutes=30), demo_data.LABEL] = pd.NA
    harness.load(late)
    dagrun, row = harness.run(at(8, 6))
    assert dagrun.state == "success"
    assert row["decision"] == "insufficient_data" and row["status"] == "insufficient_data"
    assert row["execution_attempted"] is False and row["deployed"] is False
    assert "labelled rows" in row["trigger_reason"] and "min_labelled_rows is 500" in row["trigger_reason"]
    assert row["rows_in_window"] > 1000 and row["labelled_rows"] < 500
    states = harness.task_states(dagrun.run_id)
    assert states[rt.COLLECT] == "skipped" and states[rt.SKIP] == "success"
    assert harness.alias_version("champion") is None


def test_check_only_run_records_the_decision_but_never_trains(harness: Harness, stream):
    harness.load(stream)
    dagrun, row = harness.run(at(8, 0), check_only=True)
    assert row["decision"] == "check_only" and row["status"] == "check_only"
    assert "would retrain" in row["trigger_reason"]
    assert harness.task_states(dagrun.run_id)[rt.TRAIN] == "skipped"
    assert harness.alias_version("champion") is None


# --- bad input: an error that names the problem, a row that says what happened, no deploy --------

def assert_failed_cleanly(harness: Harness, dagrun, row, task_id: str, *words: str) -> None:
    assert dagrun.state == "failed"  # the final task fails the run: no silent failure
    assert row["status"] == "failed"
    assert row["failed_task"] == task_id
    for word in words:
        assert word in row["error"], row["error"]
    assert row["deployed"] is False
    assert row["execution_completed_at"] is not None
    assert harness.alias_version("champion") is None
    assert harness.task_states(dagrun.run_id)[rt.FINALIZE] == "failed"


def test_missing_column(harness: Harness, stream):
    harness.load(stream.drop(columns=["credit_score"]))
    dagrun, row = harness.run(at(8, 0))
    assert_failed_cleanly(harness, dagrun, row, rt.CHECK, "credit_score", "table applications")


def test_empty_window(harness: Harness, stream):
    harness.load(stream[stream[demo_data.TIMESTAMP] < at(7, 0)])
    dagrun, row = harness.run(at(8, 0))
    assert dagrun.state == "success"
    assert row["decision"] == "insufficient_data"
    assert row["rows_in_window"] == 0 and "only 0 labelled rows (0 rows)" in row["trigger_reason"]
    assert row["deployed"] is False and harness.alias_version("champion") is None


def test_a_window_years_before_any_start_date_is_checked_not_skipped(harness: Harness, stream, monkeypatch):
    """Airflow creates no task at all for a date before the DAG's start_date: the DAG has none, so a 2013
    window runs and is recorded like any other (here: no data then)."""
    from datetime import datetime, timezone

    harness.load(stream)
    old = datetime(2013, 5, 1, 6, tzinfo=timezone.utc)
    dagrun, row = harness.run(old)
    assert dagrun.state == "success"
    assert row["window_end"] == old and row["decision"] == "insufficient_data"
    assert harness.task_states(dagrun.run_id)[rt.FINALIZE] == "success"
    # with a start date configured, such a run fails and says why (never a silent no-op)
    monkeypatch.setenv("RETRAINING_START_DATE", "2026-01-01")
    dagrun, row = harness.run(datetime(2013, 5, 2, 6, tzinfo=timezone.utc))
    assert dagrun.state == "failed" and "RETRAINING_START_DATE=2026-01-01" in row["error"]


def test_label_with_a_single_class(harness: Harness, stream):
    harness.load(stream.assign(**{demo_data.LABEL: stream[demo_data.LABEL].where(stream[demo_data.LABEL].isna(), 0)}))
    dagrun, row = harness.run(at(8, 0))
    assert_failed_cleanly(harness, dagrun, row, rt.PREPARE, "label column 'defaulted' has a single class")
    assert row["decision"] == "retrain" and row["execution_successful"] is False


def test_non_numeric_value_in_a_numeric_feature(harness: Harness, stream):
    bad = stream.astype({"annual_income": object})
    in_window = bad.index[(bad[demo_data.TIMESTAMP] >= at(7, 20)) & (bad[demo_data.TIMESTAMP] < at(8, 0))]
    bad.loc[in_window[:3], "annual_income"] = "n/a"
    harness.load(bad)
    dagrun, row = harness.run(at(8, 0))
    assert_failed_cleanly(harness, dagrun, row, rt.COLLECT, "numeric feature 'annual_income'", "'n/a'")


def test_invalid_config_fails_the_first_task_and_names_the_field(harness: Harness, stream, monkeypatch):
    harness.load(stream)
    monkeypatch.setenv("RETRAINING_CONFIG", str(harness.configure(**{"gate.min_improvement": -1})))
    dagrun, row = harness.run(at(8, 0))
    assert dagrun.state == "failed"
    assert row["failed_task"] == rt.CHECK and "gate.min_improvement" in row["error"]
    assert row["status"] == "failed"


def test_a_candidate_no_better_than_the_champion_is_stopped_by_the_significance_test(harness: Harness, stream,
                                                                                     monkeypatch):
    harness.load(stream)
    harness.run(at(8, 0))
    # no improvement margin at all: only the paired test stands between a lucky split and promotion
    monkeypatch.setenv("RETRAINING_CONFIG", str(harness.configure(**{"gate.min_improvement": 0.0})))
    _, row = harness.run(at(8, 6), force_retrain=True)  # same family, same population, a bit more data
    criteria = {f"{c['criterion']}:{c['metric']}": c for c in row["gate_details"]["criteria"]}
    significance = criteria["significance:roc_auc"]
    assert significance["passed"] is False
    detail = significance["detail"]
    assert detail["ci_low"] < 0 < detail["ci_high"]  # the difference is within the noise
    assert abs(detail["difference"]) < 0.02
    # neither shown better nor significantly worse: inconclusive, and the reasons say how large a gain the rows
    # could have shown (the minimum detectable effect, from the block bootstrap's standard error); the candidate
    # is registered as 'challenger' for shadow evaluation, never deployed
    assert row["gate_passed"] is False and row["status"] == "shadow" and row["deployed"] is False
    assert row["gate_details"]["outcome"] == "inconclusive"
    assert row["candidate_version"] == 2 and harness.alias_version("challenger") == 2
    assert 0 < detail["min_detectable_effect"] < 0.2 and detail["blocks"] >= 20
    assert any("not a significant improvement" in reason and "the smallest gain these rows could show" in reason
               for reason in row["gate_details"]["reasons"])
    assert harness.alias_version("champion") == 1


def test_a_feed_that_lost_a_feature_is_a_data_quality_outcome_not_a_retraining(harness: Harness, stream):
    broken = stream.copy()
    in_window = (broken[demo_data.TIMESTAMP] >= at(8, 0)) & (broken[demo_data.TIMESTAMP] < at(8, 6))
    broken.loc[in_window, "credit_score"] = float("nan")
    harness.load(broken)
    harness.run(at(8, 0))
    dagrun, row = harness.run(at(8, 6))
    assert dagrun.state == "success"
    assert row["decision"] == "data_quality" and row["status"] == "data_quality"
    assert row["data_quality"] == "all_missing"
    assert "credit_score is 100% missing" in row["trigger_reason"]
    assert row["execution_attempted"] is False and harness.alias_version("champion") == 1
    issue = row["trigger_metrics"]["quality"]["issues"][0]
    assert issue["feature"] == "credit_score" and issue["blocking"] is True


def test_infinities_in_a_feature_are_a_data_quality_outcome_naming_it_before_the_model_scores(harness: Harness,
                                                                                              stream):
    broken = stream.copy()
    in_window = (broken[demo_data.TIMESTAMP] >= at(8, 0)) & (broken[demo_data.TIMESTAMP] < at(8, 6))
    rows = broken.index[in_window]
    broken.loc[rows[[10, 500, 1500]], "annual_income"] = float("inf")
    broken.loc[rows[[20]], "annual_income"] = float("-inf")
    harness.load(broken)
    harness.run(at(8, 0))
    dagrun, row = harness.run(at(8, 6))
    assert dagrun.state == "success"  # the sensor did not crash in predict ("Input X contains infinity")
    assert row["decision"] == "data_quality" and row["status"] == "data_quality"
    assert "non_finite_values" in row["data_quality"].split(",")
    assert "annual_income holds 4 infinite value(s)" in row["trigger_reason"]
    assert row["execution_attempted"] is False and harness.alias_version("champion") == 1
    metrics = row["trigger_metrics"]
    issue = next(i for i in metrics["quality"]["issues"] if i["kind"] == "non_finite_values")
    assert issue["feature"] == "annual_income" and issue["count"] == 4 and issue["blocking"] is True
    assert metrics["drift"] is not None  # drift is still measured and recorded
    assert metrics["performance"] is None and metrics["estimated"] is None  # the champion never scored the window


def test_a_new_category_is_recorded_as_a_quality_issue_and_drives_drift(harness: Harness, stream):
    harness.load(stream)
    harness.run(at(8, 0))
    _, row = harness.run(at(8, 18))
    assert "unseen_categories" in row["data_quality"].split(",")
    issue = next(i for i in row["trigger_metrics"]["quality"]["issues"] if i["kind"] == "unseen_categories")
    assert issue["feature"] == "loan_purpose" and issue["blocking"] is False
    assert row["decision"] == "retrain"
