"""Retrain-storm control: drift alone may not retrain too often; forced runs and first models are not held."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from unit_helpers import build_config

from include.retraining.monitoring.assessment import decide
from include.retraining.record import events

END = datetime(2026, 3, 8, 18, tzinfo=timezone.utc)
DRIFT = {
    "status": "ok",
    "champion": {"version": 1, "run_id": "r"},
    "drift": {"detected": True, "features": [{"feature": "x1", "method": "psi", "kind_of_statistic": "distance",
                                              "statistic": 0.5, "threshold": 0.2, "p_adjusted": None,
                                              "drifted": True, "strength": 2.5, "importance": 1.0}],
              "drifted_features": ["x1"], "drifted_share": 1.0, "share_threshold": 0.25, "max_psi": 0.5,
              "importance_weighted": True},
    "performance": None,
}


def cfg(**storm):
    return build_config(storm=storm)


def test_no_history_retrains():
    out = decide(cfg(), DRIFT, history={"hours_since_last_retrain": None, "retrains_last_week": 0,
                                        "previous_signal_windows": 0})
    assert out["decision"] == "retrain"


def test_too_soon_after_the_last_retraining_is_suppressed_with_its_reason():
    out = decide(cfg(min_hours_between_retrains=12), DRIFT,
                 history={"hours_since_last_retrain": 6.0, "retrains_last_week": 1, "previous_signal_windows": 1})
    assert out["decision"] == "suppressed" and out["retrain"] is False
    assert out["trigger_type"] == "data_drift"  # what was detected stays on record
    assert "6.0 h" in out["reason"] and "min_hours_between_retrains is 12" in out["reason"]


def test_weekly_budget():
    out = decide(cfg(min_hours_between_retrains=0, max_retrains_per_week=3), DRIFT,
                 history={"hours_since_last_retrain": 30.0, "retrains_last_week": 3, "previous_signal_windows": 0})
    assert out["decision"] == "suppressed" and "max_retrains_per_week is 3" in out["reason"]


def test_consecutive_windows():
    storm = cfg(consecutive_windows=2, min_hours_between_retrains=0)
    first = decide(storm, DRIFT, history={"hours_since_last_retrain": None, "retrains_last_week": 0,
                                          "previous_signal_windows": 0})
    assert first["decision"] == "suppressed" and "1 consecutive window" in first["reason"]
    second = decide(storm, DRIFT, history={"hours_since_last_retrain": None, "retrains_last_week": 0,
                                           "previous_signal_windows": 1})
    assert second["decision"] == "retrain"


def test_forced_runs_and_first_models_are_not_limited():
    busy = {"hours_since_last_retrain": 1.0, "retrains_last_week": 99, "previous_signal_windows": 0}
    assert decide(cfg(), DRIFT, force=True, history=busy)["decision"] == "retrain"
    assert decide(cfg(), {**DRIFT, "champion": None}, history=busy)["decision"] == "retrain"


def test_storm_history_reads_earlier_windows_of_the_same_model(pg_dsn):
    def row(run_id, hours_before, decision, trigger, model="m"):
        events.upsert_event(pg_dsn, events.RunKey(model, "model_retraining", run_id), {
            "window_end": END - timedelta(hours=hours_before), "decision": decision, "trigger_type": trigger})

    row("r1", 30, "retrain", "data_drift")
    row("r2", 24, "skip", "none")
    row("r3", 12, "retrain", "concept_drift")
    row("r4", 6, "suppressed", "data_drift")
    row("r5", 200, "retrain", "data_drift")  # more than a week before
    row("other", 3, "retrain", "data_drift", model="another_model")
    row("later", -6, "retrain", "data_drift")  # after this window: a replay must not see the future
    history = events.storm_history(pg_dsn, events.RunKey("m", "model_retraining", "current"), END, lookback=3)
    assert history["hours_since_last_retrain"] == 12.0
    assert history["retrains_last_week"] == 2
    assert history["previous_signal_windows"] == 2  # r4 and r3; r2 (a skip) ends the streak


def test_sequential_history_is_the_evidence_of_earlier_windows_judged_by_the_same_champion(pg_dsn):
    """What the accumulated concept-drift test pools: earlier windows' evidence, oldest first, same model
    and same judging champion only, never a window after this one."""
    def row(run_id, hours_before, version, d, model="m", status="succeeded"):
        evidence = None if d is None else {"error": {"d": d, "se": 0.01, "se0": 0.01, "min_effect": 0.0}}
        events.upsert_event(pg_dsn, events.RunKey(model, "model_retraining", run_id), {
            "window_start": END - timedelta(hours=hours_before + 6), "window_end": END - timedelta(hours=hours_before),
            "status": status, "judged_by_version": version,
            "trigger_metrics": {"performance": {"evidence": evidence}}})

    row("s1", 24, 2, 0.01)
    row("s2", 12, 2, 0.03)
    row("s3", 18, 2, None)  # judged, no labelled evidence
    row("s0", 30, 1, 0.2)  # judged by the previous champion
    row("w", 6, 2, 0.5, status="waiting_for_data")
    row("o", 12, 2, 0.4, model="another_model")
    row("later", -6, 2, 0.9)  # after this window
    run = events.RunKey("m", "model_retraining", "current")
    history = events.sequential_history(pg_dsn, run, END, 2)
    assert [h and h["error"]["d"] for h in history] == [0.01, None, 0.03]
    assert events.sequential_history(pg_dsn, run, END, None) == []
    # decide pools them: three windows 1.7 standard errors worse each alarm together where one would not
    strong = {"error": {"d": 0.017, "se": 0.01, "se0": 0.001, "min_effect": 0.0}}
    quiet_perf = {"metric": "f1", "current": {"f1": 0.8}, "baseline": {"f1": 0.8}, "drop": 0.0, "max_drop": 0.05,
                  "error_increase": 0.0, "max_error_increase": 0.15, "evidence": strong}
    window = {**DRIFT, "drift": {**DRIFT["drift"], "detected": False, "drifted_features": []},
              "performance": quiet_perf}
    no_burn_in = build_config(performance={"sequential_burn_in": 0})
    alone = decide(no_burn_in, window, history={"sequential": []})
    pooled = decide(no_burn_in, window, history={"sequential": [strong, strong]})
    # with the default burn-in the first windows join the level instead: no alarm from them
    assert decide(cfg(), window, history={"sequential": [strong, strong]})["accumulated"]["burn_in_windows"] == 2
    assert alone["accumulated"]["alarm"] is False and alone["decision"] == "skip"
    assert pooled["accumulated"]["error"]["pooled_windows"] == 3 and pooled["decision"] == "retrain"
    assert pooled["trigger_type"] == "concept_drift" and "over the last 3 windows" in pooled["reason"]


# --- storm control at any check cadence ------------------------------------------------------------------


def two_weekly(**storm):
    return build_config(storm=storm, window={"lookback_hours": 336, "min_labelled_rows": 100})


def test_at_the_default_six_hour_cadence_the_window_limits_are_the_hour_limits():
    """2 windows of 6 h are the 12 hours, 28 windows the week: the same decisions and reasons as before."""
    history = {"retrains_last_week": 1, "previous_signal_windows": 0}
    assert decide(cfg(), DRIFT, history={**history, "hours_since_last_retrain": 12.0})["decision"] == "retrain"
    held = decide(cfg(), DRIFT, history={**history, "hours_since_last_retrain": 11.9})
    assert held["decision"] == "suppressed" and "min_hours_between_retrains is 12" in held["reason"]
    seven = [6.0 * k for k in range(3, 10)]  # 7 retrainings within the week (the last 18 h ago)
    week = decide(cfg(), DRIFT, history={"hours_since_last_retrain": 18.0, "retrains_last_week": 7,
                                         "retrains_hours_ago": seven})
    assert week["decision"] == "suppressed" and "max_retrains_per_week is 7" in week["reason"]
    six = decide(cfg(), DRIFT, history={"hours_since_last_retrain": 18.0, "retrains_last_week": 6,
                                        "retrains_hours_ago": seven[:6] + [169.0]})
    assert six["decision"] == "retrain"


def test_at_a_two_week_cadence_consecutive_windows_do_not_both_retrain():
    held = decide(two_weekly(), DRIFT, history={"hours_since_last_retrain": 336.0, "retrains_last_week": 0,
                                                "retrains_hours_ago": [336.0]})
    assert held["decision"] == "suppressed"
    assert held["reason"].endswith("(retraining suppressed: the last retraining was 1 window(s) (336.0 h) before "
                                   "this one, storm.min_windows_between_retrains is 2 (windows of 336 h))")
    assert decide(two_weekly(), DRIFT, history={"hours_since_last_retrain": 672.0, "retrains_last_week": 0,
                                                "retrains_hours_ago": [672.0]})["decision"] == "retrain"
    # hours only, as before: never engages at this cadence
    hours_only = two_weekly(min_windows_between_retrains=None, max_retrains_per_windows=None)
    assert decide(hours_only, DRIFT, history={"hours_since_last_retrain": 336.0, "retrains_last_week": 0,
                                              "retrains_hours_ago": [336.0]})["decision"] == "retrain"


def test_the_cap_per_windows_counts_retrainings_in_windows_of_the_checks_size():
    busy = [336.0 * k for k in (2, 4, 6, 8, 10, 12, 14)]  # 7 retrainings in the last 14 windows
    capped = decide(two_weekly(), DRIFT, history={"hours_since_last_retrain": 672.0, "retrains_last_week": 0,
                                                  "retrains_hours_ago": busy})
    assert capped["decision"] == "suppressed"
    assert "7 retrainings in the 28 windows (9408 h) before this one, storm.max_retrains_per_windows is 7" \
        in capped["reason"]
    spread = [336.0 * k for k in (2, 6, 10, 14, 18, 22, 29)]  # the seventh is older than 28 windows
    assert decide(two_weekly(), DRIFT, history={"hours_since_last_retrain": 672.0, "retrains_last_week": 0,
                                                "retrains_hours_ago": spread})["decision"] == "retrain"
    assert decide(two_weekly(cap_windows=30), DRIFT, history={
        "hours_since_last_retrain": 672.0, "retrains_last_week": 0, "retrains_hours_ago": spread})["decision"] == "suppressed"


def test_storm_history_lists_the_newest_retrainings_once_per_run(pg_dsn):
    def row(run_id, hours_before, decision, attempt=1):
        events.upsert_event(pg_dsn, events.RunKey("m", "model_retraining", run_id), {
            "window_end": END - timedelta(hours=hours_before), "decision": decision, "trigger_type": "data_drift"},
            attempt=attempt)

    row("a", 336, "retrain")
    row("a", 336, "check_only", attempt=2)  # a replay of the same run: still one retraining
    row("b", 672, "skip")
    row("c", 1008, "retrain")
    row("later", -336, "retrain")
    history = events.storm_history(pg_dsn, events.RunKey("m", "model_retraining", "current"), END, lookback=0)
    assert history["retrains_hours_ago"] == [336.0, 1008.0]
    assert history["hours_since_last_retrain"] == 336.0
    held = decide(two_weekly(), DRIFT, history=history)
    assert held["decision"] == "suppressed" and "min_windows_between_retrains" in held["reason"]
