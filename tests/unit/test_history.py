"""The history command's questions on a real PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from include.retraining.record import champion_history, events, history
from include.retraining.record.events import RunKey, upsert_event

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def fresh_schema_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """ensure_schema remembers the DSNs it has prepared; start each test with none."""
    monkeypatch.setattr(events, "_ready", set())
    monkeypatch.setattr(champion_history, "_ready", set())


def _gate(*failing: str) -> dict:
    criteria = [{"criterion": "absolute", "metric": "f1", "passed": "absolute" not in failing},
                {"criterion": "improvement", "metric": "f1", "passed": "improvement" not in failing},
                {"criterion": "significance", "metric": "f1", "passed": "significance" not in failing}]
    return {"passed": not failing, "criteria": criteria}


def _drift(statistic: float, drifted: bool) -> dict:
    return {"drift": {"detected": drifted, "features": [
        {"feature": "amount", "method": "psi", "statistic": statistic, "threshold": 0.2, "drifted": drifted},
        {"feature": "age", "method": "ks", "statistic": 0.5, "threshold": 0.05, "drifted": False},
    ]}}


def _run(dsn: str, model: str, run: str, hours: int, took: float | None = None, **fields: object) -> None:
    """One current row; ``took``: seconds from the row's creation (its first task) to the run's completion."""
    import psycopg2

    window_end = T0 + timedelta(hours=hours)
    upsert_event(dsn, RunKey(model, "model_retraining", run),
                 {"window_end": window_end, "triggered_at": window_end, **fields})
    if took is not None:
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("UPDATE model_retraining_events SET execution_completed_at = created_at + %s * interval "
                        "'1 second' WHERE model_name = %s AND run_id = %s", (took, model, run))
        conn.close()


@pytest.fixture
def recorded(pg_dsn: str) -> str:
    """Two models: ``fraud`` retrained twice (one rejected by the gate, one deployed), skipped once;
    ``churn`` retrained once on a schedule."""
    long_reason = "data drift: " + ", ".join(f"feature_{i}" for i in range(30))
    _run(pg_dsn, "fraud", "r1", 0, trigger_type="none", decision="skip", status="skipped",
         trigger_metrics=_drift(0.05, False))
    _run(pg_dsn, "fraud", "r2", 24, trigger_type="data_drift", severity="high", decision="retrain",
         status="rejected", trigger_reason=long_reason, execution_attempted=True, champion_version_before=1,
         champion_version_after=1, gate_passed=False, gate_details=_gate("improvement", "significance"),
         took=600, trigger_metrics=_drift(0.31, True))
    _run(pg_dsn, "fraud", "r3", 48, trigger_type="data_drift", severity="medium", decision="retrain",
         status="deployed", trigger_reason="drift", execution_attempted=True, champion_version_before=1,
         champion_version_after=2, gate_passed=True, gate_details=_gate("significance"),
         took=1200, trigger_metrics=_drift(0.25, True))
    _run(pg_dsn, "churn", "c1", 24, trigger_type="scheduled", severity="low", decision="retrain",
         status="deployed", trigger_reason="scheduled retraining", execution_attempted=True,
         champion_version_after=1, gate_passed=True, gate_details=_gate(),
         took=300)
    for version, previous, hours in ((1, None, 0), (2, 1, 48)):
        champion_history.record(pg_dsn, model_name="fraud", registered_name="fraud", version=version,
                                previous_version=previous, effective_at=T0 + timedelta(hours=hours), action="deploy",
                                dag_id="model_retraining", run_id=f"r{version}", attempt=1, reason=None)
    return pg_dsn


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = history.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_retrains_newest_first_with_filters_and_a_short_reason(recorded: str) -> None:
    rows = history.retrains(recorded)
    assert [(r["model_name"], r["status"]) for r in rows] == [("fraud", "deployed"), ("churn", "deployed"),
                                                              ("fraud", "rejected")]  # same window: by model
    assert rows[0]["champion"] == "v1 -> v2" and rows[1]["champion"] == "- -> v1"
    assert len(rows[2]["trigger_reason"]) == history.REASON_WIDTH and rows[2]["trigger_reason"].endswith("…")
    assert [r["status"] for r in history.retrains(recorded, model="fraud", limit=1)] == ["deployed"]
    assert [r["model_name"] for r in history.retrains(recorded, since=T0 + timedelta(hours=1),
                                                      until=T0 + timedelta(hours=25))] == ["churn", "fraud"]


def test_triggers_count_per_model_type_and_decision(recorded: str) -> None:
    rows = history.triggers(recorded)
    counts = {(r["model_name"], r["trigger_type"], r["decision"]): r["runs"] for r in rows}
    assert counts == {("fraud", "data_drift", "retrain"): 2, ("fraud", "none", "skip"): 1,
                      ("churn", "scheduled", "retrain"): 1}
    assert rows[0]["model_name"] == "churn"  # by model, then most frequent first
    assert rows[1] == {"model_name": "fraud", "trigger_type": "data_drift", "decision": "retrain", "runs": 2}


def test_durations_per_model(recorded: str) -> None:
    rows = {r["model_name"]: r for r in history.durations(recorded)}
    assert rows["fraud"]["runs"] == 2 and rows["fraud"]["median_s"] == pytest.approx(900.0)
    assert rows["fraud"]["p90_s"] == pytest.approx(1140.0) and rows["fraud"]["max_s"] == pytest.approx(1200.0)
    assert rows["churn"]["runs"] == 1 and rows["churn"]["max_s"] == pytest.approx(300.0)


def test_gate_failures_most_failed_first(recorded: str) -> None:
    rows = history.gate_failures(recorded)
    assert [(r["criterion"], r["failed"], r["evaluated"]) for r in rows] == [
        ("significance", 2, 3), ("improvement", 1, 3), ("absolute", 0, 3)]
    assert [r["failed"] for r in history.gate_failures(recorded, model="churn")] == [0, 0, 0]


def test_champion_at_a_time(recorded: str) -> None:
    assert history.champion_at(recorded, T0 + timedelta(hours=24))[0]["version"] == 1
    at_switch = history.champion_at(recorded, T0 + timedelta(hours=48), model="fraud")
    assert [(r["registered_name"], r["version"], r["previous_version"]) for r in at_switch] == [("fraud", 2, 1)]
    assert history.champion_at(recorded, T0 - timedelta(hours=1)) == []


def test_drift_of_one_feature_over_time(recorded: str) -> None:
    rows = history.drift(recorded, "amount")
    assert [(r["statistic"], r["drifted"]) for r in rows] == [(0.25, True), (0.31, True), (0.05, False)]
    assert rows[0]["threshold"] == 0.2 and rows[0]["method"] == "psi"
    assert history.drift(recorded, "missing_feature") == []


def test_cli_tables_and_json(recorded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "retrains", "--dsn", recorded, "--model", "fraud")
    assert code == 0
    header, _rule, *lines = out.strip().splitlines()
    assert header.split()[:3] == ["model_name", "window_end", "trigger_type"] and len(lines) == 2
    assert "v1 -> v2" in lines[0] and "2026-03-03T00:00:00+00:00" in lines[0]
    for question in (["triggers"], ["durations"], ["gate-failures"], ["champion", "--at", "2026-03-02T12:00"],
                     ["drift", "--feature", "amount", "--since", "2026-03-02"]):
        code, out, _ = cli(capsys, *question, "--dsn", recorded, "--json")
        assert code == 0 and isinstance(json.loads(out), list), question
    code, out, _ = cli(capsys, "champion", "--at", "2026-03-02T12:00", "--json")  # the retraining_db connection
    assert json.loads(out)[0]["version"] == 1 and json.loads(out)[0]["effective_at"] == "2026-03-01T00:00:00+00:00"
    code, out, _ = cli(capsys, "drift", "--feature", "amount", "--since", "2026-03-02", "--dsn", recorded, "--json")
    assert [r["statistic"] for r in json.loads(out)] == [0.25, 0.31]


def test_cli_says_when_nothing_was_recorded(pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "retrains", "--dsn", pg_dsn)
    assert code == 1 and out == "" and "no runs recorded yet" in err
    with pytest.raises(history.NoRunsRecorded):
        history.champion_at(pg_dsn, T0)


def test_cli_rejects_a_bad_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        history.main(["champion", "--at", "yesterday", "--dsn", "dbname=unused"])
    assert "not an ISO 8601 time" in capsys.readouterr().err
