"""The run-level logic without Airflow: windows from the data interval, and how a run's row is completed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from include.retraining.config import load_config
from include.retraining.pipeline import RunInfo, summarize

CHECK = "check_drift_and_performance"
END = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)


def info(**kwargs) -> RunInfo:
    return RunInfo(dag_id="model_retraining", run_id="scheduled__2026-03-08T12:00:00+00:00", **kwargs)


def test_window_comes_from_the_data_interval_not_the_clock():
    cfg = load_config()
    run = info(data_interval_start=END - timedelta(hours=6), data_interval_end=END,
               run_after=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert run.window(cfg) == (END - timedelta(hours=cfg.window.lookback_hours), END)


def test_manual_run_without_logical_date_uses_run_after_and_the_lookback_param():
    run = info(run_after=END, params={"lookback_hours": 24})
    cfg = run.config()
    assert cfg.window.lookback_hours == 24
    assert run.window(cfg) == (END - timedelta(hours=24), END)


def test_params_override_the_config_and_empty_means_configured():
    assert info(params={"model_type": "lightgbm"}).config().model.type == "lightgbm"
    assert info(params={"model_type": None}).config().model.type == load_config().model.type


def test_safe_run_id_is_a_path_component():
    assert "/" not in info().safe_run_id and ":" not in info().safe_run_id


@pytest.mark.parametrize(
    ("decision", "verdict", "deployed", "states", "status", "successful"),
    [
        ({"decision": "skip"}, None, None, {}, "skipped", None),
        ({"decision": "check_only"}, None, None, {}, "check_only", None),
        ({"decision": "insufficient_data"}, None, None, {}, "insufficient_data", None),
        ({"decision": "retrain"}, {"passed": True}, {"champion_after": 2}, {}, "deployed", True),
        ({"decision": "retrain"}, {"passed": False}, None, {}, "rejected", False),
        ({"decision": "retrain"}, None, None, {"train": "failed"}, "failed", False),
        ({"decision": "retrain"}, None, None, {}, "incomplete", False),
    ],
)
def test_summarize_outcomes(decision, verdict, deployed, states, status, successful):
    out = summarize(decision, verdict, deployed, states, recorded_error=None, check_task_id=CHECK)
    assert out["fields"]["status"] == status
    assert out["fields"]["execution_successful"] is successful
    assert out["fields"]["execution_completed_at"] is not None
    assert out["failed"] == sorted(t for t, s in states.items() if s == "failed")


def test_a_failed_task_without_a_recorded_error_is_named():
    out = summarize({"decision": "retrain"}, None, None, {"train": "failed", "evaluate_gate": "upstream_failed"},
                    recorded_error=None, check_task_id=CHECK)
    assert out["fields"]["failed_task"] == "train" and "train" in out["fields"]["error"]


def test_a_recorded_error_is_not_overwritten():
    out = summarize({"decision": "retrain"}, None, None, {"prepare": "failed"}, recorded_error="prepare: boom",
                    check_task_id=CHECK)
    assert "error" not in out["fields"]


def test_sensor_timeout_is_recorded_as_insufficient_data_not_as_silence():
    out = summarize(None, None, None, {CHECK: "failed", "decide": "upstream_failed"}, recorded_error=None,
                    check_task_id=CHECK)
    assert out["fields"]["decision"] == "insufficient_data"
    assert out["fields"]["status"] == "insufficient_data"
    assert "timed out" in out["fields"]["error"]
    assert out["failed"] == [CHECK]  # and the run still fails, visibly


def test_sensor_error_before_a_decision_is_a_failed_run():
    out = summarize(None, None, None, {CHECK: "failed"}, recorded_error="check: bad config", check_task_id=CHECK)
    assert out["fields"]["status"] == "failed" and out["fields"]["decision"] == "error"
