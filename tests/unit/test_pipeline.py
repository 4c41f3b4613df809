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


# --- shadow evaluation and the first model ----------------------------------------------------------------

INCONCLUSIVE = {"passed": False, "outcome": "inconclusive", "champion_version": 1,
                "reasons": ["the roc_auc difference 0.0040 is not a significant improvement"]}


def test_an_inconclusive_gate_puts_the_registered_candidate_in_shadow_and_says_so():
    decision = {"decision": "retrain", "reason": "data drift: 4 of 11 features drifted"}
    out = summarize(decision, INCONCLUSIVE, None, {"deploy": "skipped", "register": "skipped"}, recorded_error=None,
                    check_task_id=CHECK, shadowed={"version": 2, "champion_version": 1})["fields"]
    assert (out["status"], out["deployed"], out["execution_successful"]) == ("shadow", False, None)
    assert out["trigger_reason"].startswith("data drift: 4 of 11 features drifted; the gate's evidence was "
                                            "inconclusive (the roc_auc difference")
    assert "v2 is in shadow evaluation as 'challenger' against champion v1" in out["trigger_reason"]
    # registered for shadow never happened: not a silent 'shadow'
    assert summarize(decision, INCONCLUSIVE, None, {}, recorded_error=None,
                     check_task_id=CHECK)["fields"]["status"] == "incomplete"


def test_until_the_gate_reports_an_outcome_passed_reads_as_promote_or_reject():
    from include.retraining.pipeline import gate_outcome

    assert gate_outcome({"passed": True}) == "promote" and gate_outcome({"passed": False}) == "reject"
    assert gate_outcome(INCONCLUSIVE) == "inconclusive" and gate_outcome(None) is None


def test_a_rejected_first_model_says_there_is_no_champion():
    verdict = {"passed": False, "champion_version": None, "champion_metrics": None,
               "reasons": ["recall 0.4100 is below the required 0.5000"]}
    out = summarize({"decision": "retrain", "reason": "no champion registered yet: train a first model"}, verdict,
                    None, {}, recorded_error=None, check_task_id=CHECK)["fields"]
    assert out["status"] == "rejected"
    assert out["trigger_reason"] == ("no champion registered yet: train a first model; no champion: first model "
                                     "rejected: recall 0.4100 is below the required 0.5000")
    beside_a_champion = summarize({"decision": "retrain", "reason": "drift"}, {**verdict, "champion_version": 1},
                                  None, {}, recorded_error=None, check_task_id=CHECK)["fields"]
    assert "trigger_reason" not in beside_a_champion


@pytest.mark.parametrize(("states", "promoted", "status", "successful"), [
    ({"promote_challenger": "success"}, {"champion_after": 2}, "promoted", True),
    ({"promote_challenger": "failed"}, None, "failed", False),
    ({}, None, "incomplete", False),
])
def test_a_shadow_promotion_is_a_decision_of_its_own(states, promoted, status, successful):
    out = summarize({"decision": "promote_challenger"}, None, None, states, recorded_error=None,
                    check_task_id=CHECK, promoted=promoted)["fields"]
    assert (out["status"], out["execution_successful"]) == (status, successful)


def test_a_shadow_look_that_promotes_takes_the_place_of_retraining_but_not_of_a_rollback_or_a_freeze():
    from unit_helpers import build_config

    from include.retraining.pipeline import shadow_decision

    cfg = build_config()
    looked = {"status": "promote", "version": 2, "shadow_id": 5, "reason": "shadow evaluation of v2: significantly "
              "better", "evidence": {"level": 0.01}}
    retrain = {"decision": "retrain", "retrain": True, "trigger_type": "data_drift", "reason": "data drift",
               "signals": ["data_drift"]}
    promoted = shadow_decision(cfg, {"shadow": looked}, retrain)
    assert (promoted["decision"], promoted["retrain"], promoted["promote_challenger"]) == ("promote_challenger",
                                                                                            False, True)
    assert promoted["trigger_type"] == "shadow_evaluation" and promoted["challenger_version"] == 2
    assert promoted["reason"] == "shadow evaluation of v2: significantly better (instead of retrain: data drift)"
    for kept in ("rollback", "frozen", "check_only"):
        decision = {**retrain, "decision": kept, "retrain": False}
        out = shadow_decision(cfg, {"shadow": looked}, decision)
        assert out["decision"] == kept and out["reason"].endswith("significantly better")
    forced = shadow_decision(cfg, {"shadow": looked}, {**retrain, "trigger_type": "manual"})
    assert forced["decision"] == "retrain"
    waiting = shadow_decision(build_config(deploy={"auto_promote": False}), {"shadow": looked}, retrain)
    assert waiting["decision"] == "retrain" and "auto_promote is off" in waiting["reason"]
    assert shadow_decision(cfg, {"shadow": {**looked, "status": "continue"}}, retrain) == retrain
