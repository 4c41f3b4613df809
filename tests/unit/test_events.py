"""The model_retraining_events table on a real PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import psycopg2
import pytest

from include.retraining import events
from include.retraining.connections import connect
from include.retraining.events import (
    COLUMNS,
    INDEXES,
    TABLE,
    ensure_schema,
    get_event,
    improvement_percent,
    metric_columns,
    upsert_event,
)


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
    assert set(INDEXES) <= index_names(pg_dsn)
    assert f"{TABLE}_run_key" in index_names(pg_dsn)  # the unique (dag_id, run_id)


def test_ensure_schema_is_idempotent(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_schema(pg_dsn)
    upsert_event(pg_dsn, "dag", "run", {"decision": "skip"})
    monkeypatch.setattr(events, "_ready", set())  # really run the DDL again
    ensure_schema(pg_dsn)
    ensure_schema(pg_dsn)
    assert set(table_columns(pg_dsn)) == {"id", *COLUMNS}
    assert get_event(pg_dsn, "dag", "run")["decision"] == "skip"
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
    assert set(INDEXES) <= index_names(pg_dsn)
    old = get_event(pg_dsn, "dag", "old")
    assert old["decision"] == "retrain"
    # NOT NULL columns added with their defaults filled in for the existing row
    assert (old["status"], old["deployed"], old["execution_attempted"]) == ("running", False, False)
    assert old["created_at"] is not None
    upsert_event(pg_dsn, "dag", "old", {"gate_passed": True, "retraining_f1": 0.8})
    assert get_event(pg_dsn, "dag", "old")["gate_passed"] is True


# --- upserts ---------------------------------------------------------------------------------------


def test_upsert_twice_leaves_one_row_and_keeps_untouched_columns(pg_dsn: str) -> None:
    when = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)
    upsert_event(pg_dsn, "dag", "run-1", {"model_name": "m", "triggered_at": when, "decision": "retrain",
                                          "severity": "high"})
    first = get_event(pg_dsn, "dag", "run-1")
    upsert_event(pg_dsn, "dag", "run-1", {"decision": "skip", "status": "success"})
    assert row_count(pg_dsn) == 1
    row = get_event(pg_dsn, "dag", "run-1")
    assert row["decision"] == "skip" and row["status"] == "success"
    assert row["model_name"] == "m" and row["severity"] == "high"  # untouched
    assert row["triggered_at"] == when
    assert row["id"] == first["id"] and row["created_at"] == first["created_at"]
    assert row["updated_at"] >= first["updated_at"]
    upsert_event(pg_dsn, "dag", "run-2", {"decision": "skip"})
    upsert_event(pg_dsn, "other_dag", "run-1", {"decision": "skip"})
    assert row_count(pg_dsn) == 3


def test_defaults_of_a_new_row(pg_dsn: str) -> None:
    upsert_event(pg_dsn, "dag", "run", {})
    row = get_event(pg_dsn, "dag", "run")
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
    upsert_event(pg_dsn, "dag", "run", {"gate_details": details, "trigger_metrics": [1, {"a": True}]})
    row = get_event(pg_dsn, "dag", "run")
    assert row["gate_details"] == {**details, "when": "2026-03-01 00:00:00+00:00"}
    assert row["trigger_metrics"] == [1, {"a": True}]


def test_nan_in_a_plain_column_is_stored_as_null(pg_dsn: str) -> None:
    upsert_event(pg_dsn, "dag", "run", {"confidence": math.nan, "retraining_f1": 0.5})
    row = get_event(pg_dsn, "dag", "run")
    assert row["confidence"] is None and row["retraining_f1"] == 0.5


def test_nan_inside_jsonb_is_stored(pg_dsn: str) -> None:
    upsert_event(pg_dsn, "dag", "run", {"trigger_metrics": {"drift": {"max_psi": math.nan}}})
    assert get_event(pg_dsn, "dag", "run")["trigger_metrics"] == {"drift": {"max_psi": None}}


def test_unknown_or_key_columns_are_rejected_before_touching_the_database(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match=r"unknown event column\(s\) \['colour'\]"):
        upsert_event(pg_dsn, "dag", "run", {"colour": "red", "decision": "skip"})
    for key in ("dag_id", "run_id", "created_at", "updated_at"):
        with pytest.raises(ValueError, match=key):
            upsert_event(pg_dsn, "dag", "run", {key: "x"})
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (TABLE,))
        assert cur.fetchone()[0] is None  # nothing was created


def test_trigger_type_and_severity_are_checked_by_the_table(pg_dsn: str) -> None:
    for ok in events.TRIGGER_TYPES:
        upsert_event(pg_dsn, "dag", f"run-{ok}", {"trigger_type": ok})
    with pytest.raises(psycopg2.errors.CheckViolation):
        upsert_event(pg_dsn, "dag", "bad", {"trigger_type": "cosmic_rays"})
    with pytest.raises(psycopg2.errors.CheckViolation):
        upsert_event(pg_dsn, "dag", "bad", {"severity": "apocalyptic"})
    assert get_event(pg_dsn, "dag", "bad") is None


def test_get_event_of_an_unknown_run(pg_dsn: str) -> None:
    assert get_event(pg_dsn, "dag", "never") is None


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
    upsert_event(pg_dsn, "dag", "run", {**metric_columns("retraining", cand),
                                        **metric_columns("comparison_previous", prev),
                                        **improvement_percent(cand, prev)})
    row = get_event(pg_dsn, "dag", "run")
    assert (row["retraining_f1"], row["retraining_auc"]) == (0.9, 0.95)
    assert (row["comparison_previous_f1"], row["comparison_previous_auc"]) == (0.75, 0.9)
    assert row["improvement_f1_percent"] == pytest.approx(20.0)
    assert row["improvement_auc_percent"] == pytest.approx(5.5556)
