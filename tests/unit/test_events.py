"""The model_retraining_events table on a real PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import psycopg2
import pytest

from include.retraining.connections import connect
from include.retraining.record import events
from include.retraining.record.events import (
    COLUMNS,
    INDEXES,
    TABLE,
    RunKey,
    begin_attempt,
    ensure_schema,
    get_attempts,
    get_event,
    improvement_percent,
    metric_columns,
    upsert_event,
)


def key(run: str, dag: str = "dag", model: str = "m") -> RunKey:
    return RunKey(model, dag, run)


@pytest.fixture(autouse=True)
def fresh_schema_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """ensure_schema remembers the DSNs it has prepared; start each test with none."""
    monkeypatch.setattr(events, "_ready", set())


def table_columns(dsn: str) -> dict[str, str]:
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (TABLE,),
        )
        return dict(cur.fetchall())


def index_names(dsn: str) -> set[str]:
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s", (TABLE,))
        return {r[0] for r in cur.fetchall()}


def row_count(dsn: str) -> int:
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {TABLE}")
        return cur.fetchone()[0]


# --- the schema ----------------------------------------------------------------------------------


def test_ensure_schema_creates_the_table_indexes_and_constraints(pg_dsn: str) -> None:
    ensure_schema(pg_dsn)
    cols = table_columns(pg_dsn)
    assert set(cols) == {"id", *COLUMNS}
    assert cols["trigger_metrics"] == "jsonb" and cols["gate_details"] == "jsonb"
    assert cols["confidence"] == "double precision" and cols["triggered_at"] == "timestamp with time zone"
    assert {"retraining_auc", "comparison_previous_rmse", "improvement_f1_percent"} <= set(cols)
    assert set(INDEXES[TABLE]) <= index_names(pg_dsn)
    assert f"{TABLE}_model_run_key" in index_names(pg_dsn)  # the unique (model_name, dag_id, run_id)


def test_ensure_schema_is_idempotent(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_schema(pg_dsn)
    upsert_event(pg_dsn, key("run", "dag"), {"decision": "skip"})
    monkeypatch.setattr(events, "_ready", set())  # really run the DDL again
    ensure_schema(pg_dsn)
    ensure_schema(pg_dsn)
    assert set(table_columns(pg_dsn)) == {"id", *COLUMNS}
    assert get_event(pg_dsn, key("run", "dag"))["decision"] == "skip"
    assert row_count(pg_dsn) == 1


def test_ensure_schema_adds_missing_columns_to_an_older_table(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {TABLE} (id BIGSERIAL PRIMARY KEY, dag_id TEXT NOT NULL, run_id TEXT NOT NULL, "
            f"decision TEXT, CONSTRAINT {TABLE}_run_key UNIQUE (dag_id, run_id))"
        )
        cur.execute(f"INSERT INTO {TABLE} (dag_id, run_id, decision) VALUES ('dag', 'old', 'retrain')")
    assert set(table_columns(pg_dsn)) == {"id", "dag_id", "run_id", "decision"}
    ensure_schema(pg_dsn)
    assert set(table_columns(pg_dsn)) == {"id", *COLUMNS}
    assert set(INDEXES[TABLE]) <= index_names(pg_dsn)
    assert f"{TABLE}_run_key" not in index_names(pg_dsn)  # the old key without the model is gone
    old = get_event(pg_dsn, key("old", "dag", model=""))  # rows of before 0.3 have no model in their key
    assert old["decision"] == "retrain"
    # NOT NULL columns added with their defaults filled in for the existing row
    assert (old["status"], old["deployed"], old["execution_attempted"]) == ("running", False, False)
    assert old["created_at"] is not None
    # the row is also the first attempt of its run in the attempts table
    assert [a["decision"] for a in get_attempts(pg_dsn, key("old", "dag", model=""))] == ["retrain"]
    upsert_event(pg_dsn, key("old", "dag", model=""), {"gate_passed": True, "retraining_f1": 0.8})
    assert get_event(pg_dsn, key("old", "dag", model=""))["gate_passed"] is True


# --- upserts ---------------------------------------------------------------------------------------


def test_upsert_twice_leaves_one_row_and_keeps_untouched_columns(pg_dsn: str) -> None:
    when = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)
    upsert_event(pg_dsn, key("run-1", "dag"), {"model_type": "xgboost", "triggered_at": when, "decision": "retrain",
                                          "severity": "high"})
    first = get_event(pg_dsn, key("run-1", "dag"))
    upsert_event(pg_dsn, key("run-1", "dag"), {"decision": "skip", "status": "success"})
    assert row_count(pg_dsn) == 1
    row = get_event(pg_dsn, key("run-1", "dag"))
    assert row["decision"] == "skip" and row["status"] == "success"
    assert row["model_type"] == "xgboost" and row["severity"] == "high"  # untouched
    assert row["triggered_at"] == when
    assert row["id"] == first["id"] and row["created_at"] == first["created_at"]
    assert row["updated_at"] >= first["updated_at"]
    upsert_event(pg_dsn, key("run-2", "dag"), {"decision": "skip"})
    upsert_event(pg_dsn, key("run-1", "other_dag"), {"decision": "skip"})
    assert row_count(pg_dsn) == 3


def test_defaults_of_a_new_row(pg_dsn: str) -> None:
    upsert_event(pg_dsn, key("run", "dag"), {})
    row = get_event(pg_dsn, key("run", "dag"))
    assert (row["status"], row["deployed"], row["execution_attempted"]) == ("running", False, False)
    assert row["decision"] is None and row["gate_details"] is None


def test_jsonb_round_trip(pg_dsn: str) -> None:
    details = {
        "passed": False,
        "criteria": [{"metric": "f1", "candidate": 0.81, "champion": None, "passed": True}],
        "reasons": ["f1 0.8100 ..."],
        "nested": {"list": [1, 2.5, "three", None]},
        "when": datetime(2026, 3, 1, tzinfo=timezone.utc),  # not JSON: stored as its string
    }
    upsert_event(pg_dsn, key("run", "dag"), {"gate_details": details, "trigger_metrics": [1, {"a": True}]})
    row = get_event(pg_dsn, key("run", "dag"))
    assert row["gate_details"] == {**details, "when": "2026-03-01 00:00:00+00:00"}
    assert row["trigger_metrics"] == [1, {"a": True}]


def test_nan_in_a_plain_column_is_stored_as_null(pg_dsn: str) -> None:
    upsert_event(pg_dsn, key("run", "dag"), {"confidence": math.nan, "retraining_f1": 0.5})
    row = get_event(pg_dsn, key("run", "dag"))
    assert row["confidence"] is None and row["retraining_f1"] == 0.5


def test_nan_inside_jsonb_is_stored(pg_dsn: str) -> None:
    upsert_event(pg_dsn, key("run", "dag"), {"trigger_metrics": {"drift": {"max_psi": math.nan}}})
    assert get_event(pg_dsn, key("run", "dag"))["trigger_metrics"] == {"drift": {"max_psi": None}}


def test_unknown_or_key_columns_are_rejected_before_touching_the_database(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match=r"unknown event column\(s\) \['colour'\]"):
        upsert_event(pg_dsn, key("run", "dag"), {"colour": "red", "decision": "skip"})
    for column in ("dag_id", "run_id", "model_name", "attempt", "created_at", "updated_at"):
        with pytest.raises(ValueError, match=column):
            upsert_event(pg_dsn, key("run", "dag"), {column: "x"})
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (TABLE,))
        assert cur.fetchone()[0] is None  # nothing was created


def test_trigger_type_and_severity_are_checked_by_the_table(pg_dsn: str) -> None:
    for ok in events.TRIGGER_TYPES:
        upsert_event(pg_dsn, key(f"run-{ok}"), {"trigger_type": ok})
    with pytest.raises(psycopg2.errors.CheckViolation):
        upsert_event(pg_dsn, key("bad", "dag"), {"trigger_type": "cosmic_rays"})
    with pytest.raises(psycopg2.errors.CheckViolation):
        upsert_event(pg_dsn, key("bad", "dag"), {"severity": "apocalyptic"})
    assert get_event(pg_dsn, key("bad", "dag")) is None


def test_a_table_made_before_a_trigger_type_existed_learns_it(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_schema(pg_dsn)
    with connect(pg_dsn) as conn, conn.cursor() as cur:  # as the package before the post-deploy watch made it
        for table in (TABLE, events.ATTEMPTS):
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_trigger_type_check")
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_trigger_type_check "
                        "CHECK (trigger_type IS NULL OR trigger_type IN ('manual', 'none'))")
    monkeypatch.setattr(events, "_ready", set())
    upsert_event(pg_dsn, key("watched"), {"trigger_type": "post_deploy_watch"})
    assert get_event(pg_dsn, key("watched"))["trigger_type"] == "post_deploy_watch"
    with pytest.raises(psycopg2.errors.CheckViolation):
        upsert_event(pg_dsn, key("bad", "dag"), {"trigger_type": "cosmic_rays"})


def test_get_event_of_an_unknown_run(pg_dsn: str) -> None:
    assert get_event(pg_dsn, key("never", "dag")) is None


# --- metric columns and improvement --------------------------------------------------------------


def test_metric_columns() -> None:
    metrics = {"f1": 0.8, "roc_auc": 0.9, "precision": 0.7, "accuracy": None}
    assert metric_columns("retraining", metrics) == {"retraining_accuracy": None, "retraining_f1": 0.8,
                                                     "retraining_auc": 0.9}
    assert metric_columns("comparison_previous", {"rmse": 2.0, "r2": 0.5, "mae": 1.0}) == {
        "comparison_previous_rmse": 2.0, "comparison_previous_r2": 0.5,
    }
    assert metric_columns("retraining", {}) == {}


def test_improvement_percent_is_positive_when_the_candidate_is_better() -> None:
    out = improvement_percent({"rmse": 0.8, "f1": 0.9, "roc_auc": 0.7, "r2": 0.5},
                              {"rmse": 1.0, "f1": 0.75, "roc_auc": 0.8, "r2": -1.0})
    assert out["improvement_rmse_percent"] == pytest.approx(20.0)  # lower RMSE is better: the sign flips
    assert out["improvement_f1_percent"] == pytest.approx(20.0)
    assert out["improvement_auc_percent"] == pytest.approx(-12.5)
    assert out["improvement_r2_percent"] == pytest.approx(150.0)  # relative to |old|
    worse_rmse = improvement_percent({"rmse": 1.25}, {"rmse": 1.0})
    assert worse_rmse == {"improvement_rmse_percent": pytest.approx(-25.0)}


def test_improvement_percent_skips_what_it_cannot_compute() -> None:
    assert improvement_percent({"f1": 0.5, "accuracy": None, "r2": 0.3}, {"f1": 0.0, "accuracy": 0.5, "r2": 0.1,
                                                                          "rmse": 1.0}) == {
        "improvement_r2_percent": pytest.approx(200.0)
    }
    assert improvement_percent({"f1": 0.123456789}, {"f1": 0.1}) == {"improvement_f1_percent": 23.4568}


def test_metric_and_improvement_columns_are_writable(pg_dsn: str) -> None:
    cand, prev = {"f1": 0.9, "roc_auc": 0.95}, {"f1": 0.75, "roc_auc": 0.9}
    upsert_event(pg_dsn, key("run", "dag"), {**metric_columns("retraining", cand),
                                        **metric_columns("comparison_previous", prev),
                                        **improvement_percent(cand, prev)})
    row = get_event(pg_dsn, key("run", "dag"))
    assert (row["retraining_f1"], row["retraining_auc"]) == (0.9, 0.95)
    assert (row["comparison_previous_f1"], row["comparison_previous_auc"]) == (0.75, 0.9)
    assert row["improvement_f1_percent"] == pytest.approx(20.0)
    assert row["improvement_auc_percent"] == pytest.approx(5.5556)


# --- attempts: history that is never rewritten ------------------------------------------------------


def test_two_models_sharing_the_database_keep_their_own_rows(pg_dsn: str) -> None:
    upsert_event(pg_dsn, key("scheduled__1", model="credit"), {"decision": "retrain", "deployed": True})
    upsert_event(pg_dsn, key("scheduled__1", model="churn"), {"decision": "skip"})
    assert get_event(pg_dsn, key("scheduled__1", model="credit"))["decision"] == "retrain"
    assert get_event(pg_dsn, key("scheduled__1", model="churn"))["decision"] == "skip"
    assert row_count(pg_dsn) == 2


def test_begin_attempt_is_idempotent_per_attempt_key_and_counts_new_ones(pg_dsn: str) -> None:
    run = key("scheduled__2026-03-08T06:00:00+00:00")
    assert begin_attempt(pg_dsn, run, "clear 0, first task a") == 1
    assert begin_attempt(pg_dsn, run, "clear 0, first task a") == 1  # the sensor poking again
    assert begin_attempt(pg_dsn, run, "clear 1, first task b") == 2  # the run cleared and re-run
    assert [a["attempt"] for a in get_attempts(pg_dsn, run)] == [1, 2]
    assert get_event(pg_dsn, run)["attempt"] == 2


def test_a_replay_of_a_run_that_did_nothing_becomes_its_current_row_and_keeps_the_first(pg_dsn: str) -> None:
    run = key("scheduled__a")
    upsert_event(pg_dsn, run, {"decision": "skip", "status": "skipped", "trigger_reason": "first verdict"}, attempt=1)
    upsert_event(pg_dsn, run, {"decision": "check_only", "status": "check_only", "trigger_reason": "replayed"},
                 attempt=2)
    current = get_event(pg_dsn, run)
    assert (current["attempt"], current["decision"], current["trigger_reason"]) == (2, "check_only", "replayed")
    first, second = get_attempts(pg_dsn, run)
    assert (first["decision"], first["trigger_reason"]) == ("skip", "first verdict")  # untouched
    assert second["decision"] == "check_only"
    assert row_count(pg_dsn) == 1


def test_a_deployment_stays_the_current_row_whatever_runs_later(pg_dsn: str) -> None:
    run = key("scheduled__b")
    upsert_event(pg_dsn, run, {"decision": "retrain", "status": "deployed", "deployed": True,
                               "champion_version_before": 1, "champion_version_after": 2, "candidate_version": 2},
                 attempt=1)
    first_id = get_event(pg_dsn, run)["id"]
    # a reprocessing backfill re-runs it: its verdict goes to the attempts table only
    upsert_event(pg_dsn, run, {"decision": "check_only", "status": "check_only", "run_type": "backfill"}, attempt=2)
    current = get_event(pg_dsn, run)
    assert (current["id"], current["attempt"], current["deployed"], current["status"]) == (first_id, 1, True,
                                                                                          "deployed")
    assert current["champion_version_after"] == 2
    assert [a["status"] for a in get_attempts(pg_dsn, run)] == ["deployed", "check_only"]
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {TABLE} WHERE deployed")
        assert cur.fetchone()[0] == 1


def test_an_older_attempt_never_overwrites_a_newer_current_row(pg_dsn: str) -> None:
    run = key("scheduled__c")
    upsert_event(pg_dsn, run, {"decision": "skip"}, attempt=1)
    upsert_event(pg_dsn, run, {"decision": "retrain"}, attempt=2)
    upsert_event(pg_dsn, run, {"status": "failed", "error": "a zombie of attempt 1"}, attempt=1)
    assert get_event(pg_dsn, run)["decision"] == "retrain" and get_event(pg_dsn, run)["error"] is None
    assert get_attempts(pg_dsn, run)[0]["error"] == "a zombie of attempt 1"


def test_nul_characters_are_dropped_from_text(pg_dsn: str) -> None:
    upsert_event(pg_dsn, key("run"), {"trigger_reason": "bad\x00input"})
    assert get_event(pg_dsn, key("run"))["trigger_reason"] == "badinput"


def test_storm_history_counts_retrainings_of_every_attempt(pg_dsn: str) -> None:
    base = datetime(2026, 3, 8, tzinfo=timezone.utc)
    from datetime import timedelta

    upsert_event(pg_dsn, key("r1"), {"decision": "retrain", "window_end": base, "trigger_type": "data_drift"},
                 attempt=1)
    upsert_event(pg_dsn, key("r1"), {"decision": "check_only", "window_end": base, "trigger_type": "data_drift"},
                 attempt=2)  # a replay: the retraining still happened
    history = events.storm_history(pg_dsn, key("r2"), base + timedelta(hours=6), lookback=1)
    assert history == {"hours_since_last_retrain": 6.0, "retrains_last_week": 1, "retrains_hours_ago": [6.0],
                       "previous_signal_windows": 1}
    other_model = events.storm_history(pg_dsn, key("r2", model="other"), base + timedelta(hours=6), lookback=1)
    assert other_model["retrains_last_week"] == 0 and other_model["hours_since_last_retrain"] is None


def _write_from_a_fresh_process(dsn: str, n: int) -> int:
    """What a task process does first: ensure the schema (nothing cached), begin an attempt, write its row."""
    run = key(f"backfill__{n}")
    attempt = begin_attempt(dsn, run, f"clear 0, first task {n}")
    for step in range(3):
        upsert_event(dsn, run, {"decision": "check_only", "labelled_rows": step}, attempt=attempt)
    return attempt


def test_task_processes_starting_at_once_do_not_deadlock(pg_dsn: str) -> None:
    """Eight backfill runs' tasks start together while others write: no DDL (and so no table lock) once the
    schema is up to date, or PostgreSQL would detect deadlocks between writers and ALTER TABLE."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ensure_schema(pg_dsn)
    with ProcessPoolExecutor(8, mp_context=multiprocessing.get_context("spawn")) as pool:
        attempts = list(pool.map(_write_from_a_fresh_process, [pg_dsn] * 40, range(40)))
    assert attempts == [1] * 40
    assert row_count(pg_dsn) == 40


def test_a_table_made_before_shadow_evaluation_learns_its_trigger_type(pg_dsn: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_schema(pg_dsn)
    with connect(pg_dsn) as conn, conn.cursor() as cur:  # as the package before shadow evaluation made it
        for table in (TABLE, events.ATTEMPTS):
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_trigger_type_check")
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_trigger_type_check CHECK (trigger_type IS NULL "
                        "OR trigger_type IN ('manual', 'post_deploy_watch', 'none'))")
    monkeypatch.setattr(events, "_ready", set())
    upsert_event(pg_dsn, key("shadowed"), {"trigger_type": "shadow_evaluation", "decision": "promote_challenger"})
    assert get_event(pg_dsn, key("shadowed"))["trigger_type"] == "shadow_evaluation"


def test_a_shadow_registration_and_a_shadow_promotion_stay_the_current_row(pg_dsn: str) -> None:
    """Both acted (a version registered as challenger; a champion changed): a later attempt that did nothing
    keeps to the attempts table."""
    for run, fields in ((key("scheduled__shadow"), {"decision": "retrain", "status": "shadow", "candidate_version": 2}),
                        (key("scheduled__promote"), {"decision": "promote_challenger", "status": "promoted",
                                                     "deployed": True, "champion_version_after": 2})):
        upsert_event(pg_dsn, run, fields, attempt=1)
        upsert_event(pg_dsn, run, {"decision": "check_only", "status": "check_only"}, attempt=2)
        assert (get_event(pg_dsn, run)["attempt"], get_event(pg_dsn, run)["status"]) == (1, fields["status"])
