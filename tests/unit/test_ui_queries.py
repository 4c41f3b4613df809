"""The retraining page's queries and JSON endpoints on a real PostgreSQL, over a seeded history
(tests/browser/seed.py, written through the events module as the DAG writes it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from include.retraining.record import champion_history, events
from include.retraining.ui import app as ui_app
from include.retraining.ui import queries
from tests.browser import seed

DRIFT_RUN = seed.drift_run_id()


@pytest.fixture(autouse=True)
def fresh_schema_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_ready", set())
    monkeypatch.setattr(champion_history, "_ready", set())


@pytest.fixture(scope="module")
def seeded(pg_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[seed.Seeded]:
    """One seeded schema for the module (the queries only read)."""
    from tests.support import isolated_schema

    with pytest.MonkeyPatch.context() as mp, isolated_schema(pg_server, mp) as dsn:
        mp.setattr(events, "_ready", set())
        mp.setattr(champion_history, "_ready", set())
        yield seed.seed(dsn, tmp_path_factory.mktemp("reports"))


def f(**params: str) -> queries.Filters:
    return queries.parse_filters(params)


def test_models_summarise_each_model_with_filter_values(seeded: seed.Seeded) -> None:
    rows = {r["model_name"]: r for r in queries.models(seeded.dsn)}
    credit = rows[seed.CREDIT]
    assert credit["dag_ids"] == [seed.CREDIT_DAG] and credit["runs"] == 9
    assert (credit["retrains"], credit["deployments"], credit["gate_rejections"]) == (3, 2, 1)
    assert credit["champion_version"] == 2 and credit["primary_metric"] == "roc_auc"
    assert credit["decisions"] == ["retrain", "skip", "suppressed"]
    assert "waiting_for_data" in credit["statuses"] and "data_drift" in credit["triggers"]
    assert rows[seed.LOAN]["primary_metric"] == "r2" and rows[seed.LOAN]["dag_ids"] == [seed.LOAN_DAG]
    # only the DAGs the caller may read
    assert [r["model_name"] for r in queries.models(seeded.dsn, [seed.LOAN_DAG])] == [seed.LOAN]
    assert queries.models(seeded.dsn, []) == []


def test_events_newest_first_filtered_and_without_the_json_columns(seeded: seed.Seeded) -> None:
    rows = queries.list_events(seeded.dsn, f(model=seed.CREDIT))
    assert len(rows) == 9 and rows[0]["status"] == "waiting_for_data"
    assert [r["window_end"] for r in rows] == sorted((r["window_end"] for r in rows), reverse=True)
    assert not {"trigger_metrics", "gate_details"} & set(rows[0])
    drift = next(r for r in rows if r["run_id"] == DRIFT_RUN)
    assert drift["drifted_features"] == 6 and drift["checked_features"] == 11 and drift["drift_score"] > 0.3
    assert drift["has_drift_report"] and drift["has_candidate_run"] and drift["deployed"]
    assert [r["run_id"] for r in queries.list_events(seeded.dsn, f(model=seed.CREDIT, decision="retrain",
                                                                   status="rejected"))] == ["manual__simpler"]
    assert {r["model_name"] for r in queries.list_events(seeded.dsn, f(trigger="data_drift"))} == {seed.CREDIT, seed.LOAN}
    window = queries.list_events(seeded.dsn, f(since="2026-03-09T00:00", until="2026-03-09T06:00:00Z"))
    assert {(r["model_name"], r["run_id"]) for r in window} == {(seed.CREDIT, DRIFT_RUN), (seed.LOAN, DRIFT_RUN)}
    assert len(queries.list_events(seeded.dsn, f(limit="2"))) == 2
    assert {r["model_name"] for r in queries.list_events(seeded.dsn, f(), [seed.LOAN_DAG])} == {seed.LOAN}


def test_a_long_reason_is_cut_in_the_list_and_whole_in_the_detail(seeded: seed.Seeded) -> None:
    run = events.RunKey(seed.CREDIT, seed.CREDIT_DAG, "manual__long")
    events.upsert_event(seeded.dsn, run, {"trigger_reason": "drift " * 2000, "window_end": seed.T0, "decision": "skip"})
    try:
        listed = next(r for r in queries.list_events(seeded.dsn, f(model=seed.CREDIT, limit="500"))
                      if r["run_id"] == "manual__long")
        assert len(listed["trigger_reason"]) == queries.REASON_CHARS and listed["trigger_reason"].endswith("…")
        assert len(queries.event_detail(seeded.dsn, listed["id"])["trigger_reason"]) == len("drift " * 2000)
    finally:
        import psycopg2

        with psycopg2.connect(seeded.dsn) as conn, conn.cursor() as cur:
            for table in (events.TABLE, events.ATTEMPTS):
                cur.execute(f"DELETE FROM {table} WHERE run_id = 'manual__long'")
        conn.close()


def test_event_detail_has_reasons_criteria_drift_attempts_and_links(seeded: seed.Seeded) -> None:
    links = queries.Links(mlflow_ui="http://mlflow.example:5000/")
    rejected = queries.event_detail(seeded.dsn, seeded.ids[f"{seed.CREDIT}/manual__simpler"], links=links)
    assert rejected["gate"]["passed"] is False
    assert rejected["gate"]["failed"] == ["improvement:roc_auc", "significance:roc_auc"]
    assert any("does not beat the champion" in r for r in rejected["gate"]["reasons"])
    assert {c["criterion"]: c["passed"] for c in rejected["gate"]["criteria"]} == {
        "smoke": True, "absolute": True, "no_regression": True, "improvement": False, "significance": False}
    assert "plots" not in rejected["gate"] and "detail" not in rejected["gate"]["criteria"][-1]
    assert rejected["links"]["mlflow_candidate_run"] == "http://mlflow.example:5000/#/runs/0badc0de77"
    assert rejected["links"]["drift_report"] is None
    assert rejected["performance"] == {"metric": "roc_auc", "drop": pytest.approx(-0.0079), "max_drop": 0.03,
                                       "rows": 420, "error_increase": None, "current": 0.8821, "baseline": 0.8742}

    drift = queries.event_detail(seeded.dsn, seeded.ids[f"{seed.CREDIT}/{DRIFT_RUN}"], links=links)
    assert drift["drift"]["detected"] and len(drift["drift"]["drifted_features"]) == 6
    assert {x["feature"] for x in drift["drift_features"] if x["drifted"]} == set(seed.DRIFTING)
    assert drift["links"]["drift_report"] == f"/retraining/report/{drift['id']}"
    assert drift["links"]["airflow_run"] == f"/dags/{seed.CREDIT_DAG}/runs/scheduled__2026-03-08T18%3A00%3A00%2B00%3A00"

    twice = queries.event_detail(seeded.dsn, next(v for k, v in seeded.ids.items() if k.endswith("2026-03-09T18:00:00+00:00")))
    assert [a["attempt"] for a in twice["attempts"]] == [1, 2] and twice["attempt"] == 2
    assert twice["trigger_reason"].endswith("(re-run)")
    # a row of a DAG the caller may not read does not exist for them
    assert queries.event_detail(seeded.dsn, drift["id"], [seed.LOAN_DAG]) is None
    assert queries.event_detail(seeded.dsn, 10**9) is None


def test_timeline_drift_champions_and_gate_failures(seeded: seed.Seeded) -> None:
    timeline = queries.timeline(seeded.dsn, f(model=seed.CREDIT))
    assert len(timeline) == 9 and timeline[0]["window_end"] < timeline[-1]["window_end"]
    assert [w["decision"] for w in timeline if w["deployed"]] == ["retrain", "retrain"]
    assert {w["severity"] for w in timeline} >= {"low", "critical", "high"}

    features = queries.drift_features(seeded.dsn, f(model=seed.CREDIT))
    assert len(features) == len(seed.FEATURES) and features[0]["drifted_windows"] == 2
    assert {x["feature"] for x in features[:4]} <= set(seed.DRIFTING)
    series = queries.drift_over_time(seeded.dsn, "credit_score", f(model=seed.CREDIT))
    assert [s["window_end"] for s in series] == sorted(s["window_end"] for s in series) and len(series) == 7
    assert [s["drifted"] for s in series].count(True) == 2 and series[0]["method"] == "psi"
    with pytest.raises(queries.FilterError, match="feature"):
        queries.drift_over_time(seeded.dsn, "x'; DROP TABLE y", f())

    champions = queries.champions(seeded.dsn, seed.CREDIT, f())
    assert champions["metric"] == "roc_auc"
    assert [(c["version"], c["previous_version"], c["gate_value"]) for c in champions["changes"]] == [
        (1, None, 0.8335), (2, 1, 0.8742)]
    measured = [(m["version"], m["value"]) for m in champions["measured"] if m["value"] is not None]
    assert measured[0] == (1, 0.829) and (1, 0.8081) in measured and measured[-1] == (2, 0.869)
    assert queries.champions(seeded.dsn, seed.CREDIT, f(), [seed.LOAN_DAG])["changes"] == []

    failures = {(r["criterion"], r["metric"]): (r["failed"], r["evaluated"]) for r in queries.gate_failures(seeded.dsn, f())}
    assert failures[("improvement", "roc_auc")] == (1, 2) and failures[("improvement", "r2")] == (1, 1)
    assert failures[("smoke", "p99_latency_ms")] == (0, 5)  # every gate of both models
    # the history command's answer where no DAG restriction applies, the same numbers with one
    restricted = queries.gate_failures(seeded.dsn, f(model=seed.CREDIT), [seed.CREDIT_DAG])
    assert restricted == queries.gate_failures(seeded.dsn, f(model=seed.CREDIT))


@pytest.mark.parametrize(("params", "message"), [
    ({"trigger": "sometimes"}, "not a trigger type; valid: data_drift"),
    ({"severity": "huge"}, "not a severity"),
    ({"decision": "DROP TABLE"}, "lower-case word"),
    ({"since": "yesterday"}, "not an ISO 8601 time"),
    ({"since": "2026-03-09", "until": "2026-03-08"}, "must be before until"),
    ({"limit": "0"}, "out of range: 1 to 500"),
    ({"limit": "many"}, "not a whole number"),
    ({"model": "a b"}, "letters, digits"),
])
def test_bad_filters_say_what_is_accepted(params: dict[str, str], message: str) -> None:
    with pytest.raises(queries.FilterError, match=message):
        queries.parse_filters(params)


def test_json_endpoints_answer_and_refuse_bad_filters_with_400(seeded: seed.Seeded) -> None:
    readable = {"dags": [seed.CREDIT_DAG]}
    client = TestClient(ui_app.create_app(dsn=lambda: seeded.dsn, readable_dags=lambda: readable["dags"]))
    models = client.get("/api/models").json()
    assert [m["model_name"] for m in models["models"]] == [seed.CREDIT]
    listed = client.get("/api/events", params={"decision": "retrain", "limit": 10}).json()
    assert len(listed["events"]) == 3 and listed["limit"] == 10
    assert len(json.dumps(listed)) < 20_000
    event_id = seeded.ids[f"{seed.CREDIT}/{DRIFT_RUN}"]
    detail = client.get(f"/api/events/{event_id}").json()
    assert detail["gate"]["passed"] and detail["window_end"] == "2026-03-09T00:00:00+00:00"
    assert client.get(f"/api/events/{seeded.ids[f'{seed.LOAN}/{DRIFT_RUN}']}").status_code == 404
    assert client.get("/api/timeline", params={"model": seed.CREDIT}).json()["windows"][0]["decision"] == "retrain"
    assert client.get("/api/drift").json()["features"][0]["drifted_windows"] == 2
    assert len(client.get("/api/drift", params={"feature": "income"}).json()["windows"]) == 7
    assert client.get("/api/champions", params={"model": seed.CREDIT}).json()["changes"][1]["version"] == 2
    assert client.get("/api/gate-failures").json()["criteria"][0]["failed"] == 1
    for path, params, text in (("/api/events", {"trigger": "x"}, "not a trigger type"),
                               ("/api/events", {"limit": "501"}, "out of range"),
                               ("/api/timeline", {"until": "soon"}, "ISO 8601"),
                               ("/api/champions", {}, "model is required"),
                               ("/api/drift", {"feature": "a b"}, "feature=")):
        resp = client.get(path, params=params)
        assert resp.status_code == 400 and text in resp.json()["detail"], (path, resp.text)
    # the task extra link's target: the page on the run's row, or its drift report
    resp = client.get("/run", params={"dag_id": seed.CREDIT_DAG, "run_id": DRIFT_RUN}, follow_redirects=False)
    assert resp.status_code == 307 and resp.headers["location"] == f"/retraining/?model={seed.CREDIT}&event={event_id}"
    resp = client.get("/run", params={"dag_id": seed.CREDIT_DAG, "run_id": DRIFT_RUN, "to": "report"},
                      follow_redirects=False)
    assert resp.headers["location"] == f"/retraining/report/{event_id}"
    report = client.get(f"/report/{event_id}")
    assert report.status_code == 200 and "Drift report: credit_risk" in report.text
    assert client.get("/run", params={"dag_id": seed.CREDIT_DAG, "run_id": "nope"}).status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="chart-timeline"' in page.text and "<script" in page.text
    assert "http" not in page.text.split("<script>")[1].replace("http://www.w3.org/2000/svg", "")  # nothing remote


def test_an_empty_database_answers_with_empty_lists(pg_dsn: str) -> None:
    client = TestClient(ui_app.create_app(dsn=lambda: pg_dsn, readable_dags=lambda: None))
    assert client.get("/api/models").json()["note"].startswith("no runs recorded yet")
    assert client.get("/api/events").json()["events"] == []
    assert client.get("/api/champions", params={"model": "m"}).json()["changes"] == []


def test_page_file_exists_beside_the_app() -> None:
    assert Path(ui_app.PAGE).is_file()


def test_a_watch_rollback_shows_its_evidence(pg_dsn: str) -> None:
    run = events.RunKey("credit_risk", "model_retraining", "scheduled__2026-03-09T00:00:00+00:00")
    watch = {"status": "worse", "new_version": 2, "previous_version": 1, "promoted_at": "2026-03-08T18:00:00+00:00",
             "look": 1, "windows": 4, "rows": 3076, "metric": "roc_auc", "margin": 0.0426, "confidence": 0.9875,
             "new_metrics": {"roc_auc": 0.8114, "f1": 0.5}, "previous_metrics": {"roc_auc": 0.854, "f1": 0.55},
             "significance": {"method": "paired_bootstrap", "ci_low": 0.0337, "ci_high": 0.0526, "p_value": 0.001},
             "reason": "post-deploy watch of v2: the new champion is significantly worse"}
    events.upsert_event(pg_dsn, run, {"decision": "rollback", "trigger_type": "post_deploy_watch", "status": "rolled_back",
                                      "trigger_reason": watch["reason"], "trigger_metrics": {"watch": watch},
                                      "champion_version_before": 2, "champion_version_after": 1, "deployed": True})
    (row,) = queries.list_events(pg_dsn, f(trigger="post_deploy_watch"))
    assert (row["decision"], row["status"]) == ("rollback", "rolled_back")
    detail = queries.event_detail(pg_dsn, row["id"])
    assert detail["watch"] == {"status": "worse", "new_version": 2, "previous_version": 1,
                               "promoted_at": "2026-03-08T18:00:00+00:00", "look": 1, "windows": 4, "rows": 3076,
                               "metric": "roc_auc", "margin": 0.0426, "confidence": 0.9875, "reason": watch["reason"],
                               "new": 0.8114, "previous": 0.854, "ci_low": 0.0337, "ci_high": 0.0526}


def test_a_challenger_in_shadow_shows_its_running_evidence(pg_dsn: str) -> None:
    from datetime import datetime, timezone

    from unit_helpers import build_config

    from include.retraining.release import shadow

    cfg = build_config(model={"name": "credit_risk"})
    run = events.RunKey("credit_risk", "model_retraining", "scheduled__2026-03-08T12:00:00+00:00")
    started = datetime(2026, 3, 8, 18, tzinfo=timezone.utc)
    s = shadow.start(cfg, None, pg_dsn, version=2, champion_version=1, started_at=started, run=run, attempt=1,
                     reason="the gate's evidence was inconclusive: the roc_auc difference is not significant")
    look = {"dag_id": "model_retraining", "run_id": "scheduled__2026-03-08T18:00:00+00:00",
            "window_end": "2026-03-09T00:00:00+00:00", "champion": 0.71, "challenger": 0.74, "estimate": 0.03,
            "se": 0.008, "rows": 3000, "blocks": 6, "t": 0.5, "level": 0.031, "alpha_spent": 0.031, "lower": 0.004,
            "upper": 0.056, "outcome": "promote", "status": "promote"}
    shadow._record_look(pg_dsn, s, look)
    looked = {"status": "promote", "version": 2, "champion_version": 1, "rows": 3000, "blocks": 6, "t": 0.5,
              "bound": 0.004, "upper": 0.056, "metric": "roc_auc", "evidence": look,
              "reason": "shadow evaluation of v2: significantly better"}
    later = events.RunKey("credit_risk", "model_retraining", "scheduled__2026-03-08T18:00:00+00:00")
    events.upsert_event(pg_dsn, later, {"decision": "promote_challenger", "trigger_type": "shadow_evaluation",
                                        "status": "promoted", "trigger_metrics": {"shadow": looked},
                                        "trigger_reason": looked["reason"]})
    (row,) = queries.shadows(pg_dsn, "credit_risk")
    assert (row["version"], row["champion_version"], row["state"]) == (2, 1, "shadow")
    assert row["reason"].startswith("the gate's evidence was inconclusive")
    assert row["looks"][0]["estimate"] == 0.03 and row["looks"][0]["lower"] == 0.004 and row["last"]["t"] == 0.5
    assert queries.shadows(pg_dsn, "credit_risk", dags=["other_dag"]) == []  # only readable DAGs
    (listed,) = queries.list_events(pg_dsn, f(trigger="shadow_evaluation"))
    assert queries.event_detail(pg_dsn, listed["id"])["shadow"]["estimate"] == 0.03

    client = TestClient(ui_app.create_app(dsn=lambda: pg_dsn, readable_dags=lambda: None))
    answer = client.get("/api/shadow", params={"model": "credit_risk"}).json()
    assert answer["active"]["version"] == 2 and answer["challengers"][0]["looks"][0]["outcome"] == "promote"
    assert client.get("/api/shadow").status_code == 400
    page = client.get("/").text
    assert 'data-testid="shadow"' in page and "drawShadow" in page


def test_no_shadow_table_yet_means_no_challengers(pg_dsn: str) -> None:
    client = TestClient(ui_app.create_app(dsn=lambda: pg_dsn, readable_dags=lambda: None))
    assert client.get("/api/shadow", params={"model": "m"}).json() == {"model_name": "m", "challengers": [],
                                                                      "active": None}


def test_a_model_whose_first_model_was_rejected_shows_no_champion(pg_dsn: str) -> None:
    run = events.RunKey("fraud", "model_retraining__fraud", "scheduled__2026-03-08T00:00:00+00:00")
    events.upsert_event(pg_dsn, run, {"decision": "retrain", "status": "rejected", "gate_passed": False,
                                      "trigger_reason": "no champion registered yet: train a first model; no champion: "
                                                        "first model rejected: recall 0.41 is below 0.50"})
    (model,) = queries.models(pg_dsn)
    assert model["champion_version"] is None and model["no_champion"] == "no champion: first model rejected"
    client = TestClient(ui_app.create_app(dsn=lambda: pg_dsn, readable_dags=lambda: None))
    assert client.get("/api/models").json()["models"][0]["no_champion"] == "no champion: first model rejected"
    assert 'data-testid="no-champion"' in client.get("/").text
