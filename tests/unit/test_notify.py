"""Notifications: which runs notify, what the message says (reason, links, no credentials), and delivery
to real local servers (a webhook, Slack's incoming-webhook format, SMTP)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from airflow.sdk import Connection
from unit_helpers import build_config, raw_config

from include.retraining.config import NOTIFY_DEFAULT_EVENTS, ConfigError, _validate
from include.retraining.record import events
from include.retraining.record import notify as n
from tests.notify_servers import SmtpServer, WebhookServer

SECRET = "s3cr3t-Pa55"

DEPLOYED = {
    "id": 41, "attempt": 1, "status": "deployed", "decision": "retrain", "trigger_type": "data_drift",
    "severity": "high", "trigger_reason": "data drift: 4 of 11 features drifted (score 0.41 >= 0.25)",
    "champion_version_before": 1, "champion_version_after": 2, "candidate_version": 2,
    "candidate_run_id": "abc123", "model_type": "xgboost", "gate_passed": True,
    "gate_details": {"passed": True, "failed": [], "reasons": ["all criteria passed"]},
    "drift_report_uri": "mlflow-artifacts:/1/def456/artifacts/drift_report.html", "drift_report_run_id": "def456",
    "window_start": "2026-03-08 12:00:00+00:00", "window_end": "2026-03-08 18:00:00+00:00",
}
REJECTED = {
    **DEPLOYED, "status": "rejected", "trigger_type": "manual", "trigger_reason": "manual: try a simpler model",
    "champion_version_after": 1, "candidate_version": None, "gate_passed": False, "drift_report_uri": None,
    "gate_details": {"passed": False, "failed": ["no_regression:roc_auc", "improvement:f1"],
                     "reasons": ["roc_auc regresses by 0.041 (0.902 -> 0.861; at most 0.005 allowed)",
                                 "f1 improves by -0.06, less than the required 0.01"]},
}


# --- classification -------------------------------------------------------------------------------

@pytest.mark.parametrize(("row", "failed", "kind"), [
    ({"status": "deployed", "decision": "retrain"}, False, n.PROMOTION),
    ({"status": "rejected", "decision": "retrain"}, False, n.GATE_REJECTION),
    ({"status": "rejected", "decision": "retrain", "champion_version_before": None,
      "gate_details": {"champion_version": None, "champion_metrics": None}}, False, n.FIRST_MODEL_REJECTED),
    ({"status": "rejected", "decision": "retrain", "champion_version_before": 1,
      "gate_details": {"champion_version": 1}}, False, n.GATE_REJECTION),
    ({"status": "promoted", "decision": "promote_challenger"}, False, n.SHADOW_PROMOTION),
    ({"status": "shadow", "decision": "retrain"}, False, n.SHADOW),
    ({"status": "failed", "decision": "retrain"}, False, n.FAILURE),
    ({"status": "incomplete", "decision": "retrain"}, False, n.FAILURE),
    ({"status": "deployed", "decision": "retrain"}, True, n.FAILURE),  # the closing task failed: a failure
    (None, True, n.FAILURE),  # even when no row could be read
    ({"status": "suppressed", "decision": "suppressed"}, False, n.SUPPRESSED),
    ({"status": "rolled_back", "decision": "rollback"}, False, n.ROLLBACK),
    ({"status": "failed", "decision": "rollback"}, False, n.FAILURE),  # a rollback that failed is a failure
    ({"status": "deployed", "decision": "rollback", "trigger_type": "post_deploy_watch"}, False, n.ROLLBACK),
    ({"status": "promoted", "decision": "promote"}, False, n.MANUAL_PROMOTION),
    ({"status": "awaiting_approval", "decision": "retrain"}, False, n.AWAITING_APPROVAL),
    ({"status": "skipped", "decision": "skip"}, False, n.SKIPPED),
    ({"status": "check_only", "decision": "check_only"}, False, n.SKIPPED),
    ({"status": "insufficient_data", "decision": "insufficient_data"}, False, n.SKIPPED),
    ({"status": "data_quality", "decision": "data_quality"}, False, n.SKIPPED),
    ({"status": "running", "decision": None}, False, None),
    (None, False, None),
])
def test_classify(row: dict[str, Any] | None, failed: bool, kind: str | None) -> None:
    assert n.classify(row, failed=failed) == kind


def test_notify_section_defaults_and_validation() -> None:
    cfg = build_config()
    assert cfg.notify.conn_id is None
    assert cfg.notify.events == list(NOTIFY_DEFAULT_EVENTS)
    assert {"promotion", "gate_rejection", "failure", "suppressed", "rollback"} <= set(cfg.notify.events)
    assert "skipped" not in cfg.notify.events
    custom = build_config(notify={"conn_id": "team_hook", "events": ["failure", "skipped"]})
    assert custom.notify.conn_id == "team_hook" and custom.notify.events == ["failure", "skipped"]
    with pytest.raises(ConfigError, match=r"notify\.events\.0.*'promotion'"):
        _validate(raw_config(notify={"events": ["promotoin"]}), source="test")


def test_a_first_model_rejected_is_loud_and_on_by_default(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    assert n.FIRST_MODEL_REJECTED in build_config().notify.events
    assert n.SHADOW_PROMOTION in build_config().notify.events and n.SHADOW not in build_config().notify.events
    row = {**REJECTED, "champion_version_before": None, "champion_version_after": None,
           "gate_details": {**REJECTED["gate_details"], "champion_version": None, "champion_metrics": None},
           "trigger_reason": "no champion registered yet: train a first model; no champion: first model rejected: "
                             "recall 0.41 is below the required 0.50"}
    kind = n.classify(row)
    note = n.build(kind, row, model="credit_risk", dag_id="model_retraining", run_id="r1")
    assert kind == n.FIRST_MODEL_REJECTED and "NO CHAMPION" in note.title
    assert "no champion: first model rejected" in note.text
    with caplog.at_level(logging.INFO, logger=n.log.name):
        n.log_notification(note)
    assert [r.levelno for r in caplog.records] == [logging.ERROR]


def test_a_shadow_promotion_headline() -> None:
    row = {"status": "promoted", "decision": "promote_challenger", "champion_version_before": 1,
           "champion_version_after": 2, "trigger_type": "shadow_evaluation"}
    note = n.build(n.classify(row), row, model="credit_risk", dag_id="model_retraining", run_id="r1")
    assert note.title == "[retraining] credit_risk: v2 promoted to champion by its shadow evaluation (was v1)"


# --- the message ----------------------------------------------------------------------------------

def test_a_promotion_names_versions_reason_and_links() -> None:
    note = n.build(n.PROMOTION, DEPLOYED, model="credit_risk", dag_id="model_retraining",
                   run_id="scheduled__2026-03-08T12:00:00+00:00", current_row_id=41,
                   tracking_uri="http://mlflow.example:5000", airflow_base_url="https://airflow.example/")
    assert note.title == "[retraining] credit_risk: v2 promoted to champion (was v1)"
    text = note.text
    assert "run: model_retraining / scheduled__2026-03-08T12:00:00+00:00 (attempt 1)" in text
    assert "decision: retrain (trigger data_drift, severity high); status: deployed" in text
    assert "reason: data drift: 4 of 11 features drifted" in text
    assert "champion: v1 -> v2" in text and "gate: passed" in text
    assert note.links == {
        "events row": "SELECT * FROM model_retraining_events WHERE id = 41;",
        "Airflow run": "https://airflow.example/dags/model_retraining/runs/scheduled__2026-03-08T12%3A00%3A00%2B00%3A00",
        "MLflow run": "http://mlflow.example:5000/#/runs/abc123",
        "drift report": "mlflow-artifacts:/1/def456/artifacts/drift_report.html",
        "drift report run": "http://mlflow.example:5000/#/runs/def456",
    }
    payload = note.payload()
    assert payload["kind"] == "promotion" and payload["champion_after"] == 2 and payload["event_id"] == 41
    assert json.loads(json.dumps(payload)) == payload  # plain JSON


def test_a_local_tracking_store_links_the_run_by_its_uri_and_no_base_url_means_no_airflow_link() -> None:
    note = n.build(n.PROMOTION, DEPLOYED, model="m", dag_id="d", run_id="r", current_row_id=1,
                   tracking_uri="sqlite:////tmp/mlflow.db")
    assert note.links["MLflow run"] == "runs:/abc123"
    assert "Airflow run" not in note.links and "drift report run" not in note.links


def test_a_gate_rejection_lists_the_failing_criteria() -> None:
    note = n.build(n.GATE_REJECTION, REJECTED, model="credit_risk", dag_id="model_retraining", run_id="r1",
                   current_row_id=7)
    assert note.title == "[retraining] credit_risk: candidate rejected by the evaluation gate, champion stays v1"
    assert "gate: failed on no_regression:roc_auc, improvement:f1" in note.text
    assert "  - roc_auc regresses by 0.041" in note.text
    assert "reason: manual: try a simpler model" in note.text
    assert "candidate: not registered, model type xgboost, MLflow run abc123" in note.text
    assert note.payload()["gate_failed"] == ["no_regression:roc_auc", "improvement:f1"]


def test_a_failure_without_a_row_says_so_and_carries_the_exception() -> None:
    note = n.build(n.FAILURE, None, model="credit_risk", dag_id="model_retraining", run_id="r2",
                   error="OperationalError: connection refused",
                   problems=["the run's row in model_retraining_events could not be read: timeout"])
    assert note.title == "[retraining] credit_risk: run failed"
    assert "error: OperationalError: connection refused" in note.text
    assert "note: the run's row in model_retraining_events could not be read" in note.text
    assert note.links == {}


def test_a_recorded_error_names_its_task_and_wins_over_the_closing_exception() -> None:
    row = {"status": "failed", "decision": "retrain", "failed_task": "deploy", "error": "deploy: reload refused (HTTP 500)"}
    note = n.build(n.FAILURE, row, model="m", dag_id="d", run_id="r", error="AirflowFailException: task(s) failed")
    assert note.title == "[retraining] m: run failed in deploy"
    assert "error (task deploy): deploy: reload refused (HTTP 500)" in note.text
    assert "AirflowFailException" not in note.text


def test_suppressed_rollback_and_approval_headlines() -> None:
    suppressed = {"status": "suppressed", "decision": "suppressed", "champion_version_before": 3,
                  "champion_version_after": 3,
                  "trigger_reason": "data drift (retraining suppressed: 4.0 h since the last retraining, minimum 12.0 h)"}
    note = n.build(n.SUPPRESSED, suppressed, model="m", dag_id="d", run_id="r")
    assert note.title == "[retraining] m: retraining suppressed by storm control"
    assert "retraining suppressed: 4.0 h since the last retraining" in note.text
    rollback = {"status": "rolled_back", "decision": "rollback", "champion_version_before": 2,
                "champion_version_after": 1, "trigger_reason": "v2 misbehaves", "requested_by": "alice"}
    note = n.build(n.ROLLBACK, rollback, model="m", dag_id="model_rollback", run_id="manual__1")
    assert note.title == "[retraining] m: rolled back to v1 (was v2)"
    assert "reason: v2 misbehaves" in note.text and "requested by: alice" in note.text
    watched = {**rollback, "trigger_type": "post_deploy_watch", "requested_by": None,
               "trigger_reason": "post-deploy watch of v2: the new champion is significantly worse"}
    note = n.build(n.classify(watched), watched, model="m", dag_id="model_retraining", run_id="scheduled__1")
    assert note.title == "[retraining] m: rolled back to v1 by the post-deploy watch (was v2)"
    assert "significantly worse" in note.text
    waiting = {"status": "awaiting_approval", "decision": "retrain", "candidate_version": 4}
    assert "v4 passed the gate and awaits approval" in n.build(n.AWAITING_APPROVAL, waiting, model="m", dag_id="d",
                                                               run_id="r").title
    promoted = {"status": "promoted", "decision": "promote", "champion_version_before": None, "champion_version_after": 4}
    assert n.build(n.MANUAL_PROMOTION, promoted, model="m", dag_id="d", run_id="r").title == \
        "[retraining] m: v4 promoted to champion by hand (first champion)"


def test_no_credentials_in_any_form_of_the_message() -> None:
    row = {**REJECTED, "status": "failed", "failed_task": "train",
           "error": f"train: OperationalError: could not connect to postgresql://etl:{SECRET}@db.internal:5432/events",
           "trigger_reason": f"manual: retry with host=db.internal password={SECRET}"}
    note = n.build(n.FAILURE, row, model="m", dag_id="d", run_id="r", current_row_id=3,
                   tracking_uri=f"https://ml-user:{SECRET}@mlflow.example.com/",
                   error=f"ConnectionError: https://ml-user:{SECRET}@mlflow.example.com/api")
    forms = [note.title, note.text, json.dumps(note.payload()), json.dumps(note.slack_payload())]
    assert all(SECRET not in form for form in forms)
    assert note.links["MLflow run"] == "https://mlflow.example.com/#/runs/abc123"  # credentials dropped from links
    assert "postgresql://" in note.text and "@db.internal:5432/events" in note.text  # the rest stays readable
    assert "host=db.internal password=" in note.text


def test_redact_strips_passwords_from_uris_and_dsns() -> None:
    text = n.redact(f"mysql://u:{SECRET}@h/db and host=h password='{SECRET}' and token={SECRET}&x=1")
    assert SECRET not in text and "@h/db and host=h" in text


def test_slack_payload_has_text_and_blocks_with_links() -> None:
    note = n.build(n.PROMOTION, DEPLOYED, model="credit_risk", dag_id="d", run_id="r", current_row_id=41,
                   tracking_uri="http://mlflow:5000")
    body = note.slack_payload()
    assert body["text"].startswith("[retraining] credit_risk: v2 promoted to champion (was v1)")
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "context"]
    links = body["blocks"][2]["elements"][0]["text"]
    assert "<http://mlflow:5000/#/runs/abc123|MLflow run>" in links
    assert "events row: `SELECT * FROM model_retraining_events WHERE id = 41;`" in links


# --- connections and channels ---------------------------------------------------------------------

def conn(**fields: Any) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(conn_id=fields.pop("conn_id", "team_hook"), extra=json.dumps(extra) if extra else None,
                      **fields)


@pytest.mark.parametrize(("connection", "channel", "url"), [
    (conn(conn_type="http", host="hooks.example.com", schema="https", extra={"endpoint": "/retraining"}),
     "webhook", "https://hooks.example.com/retraining"),
    (conn(conn_type="http", host="127.0.0.1", port=8099), "webhook", "http://127.0.0.1:8099"),
    (conn(conn_type="http", host="https://hooks.example.com/x/y"), "webhook", "https://hooks.example.com/x/y"),
    # AIRFLOW_CONN_X='https://hooks.example.com/a/b' puts the path in schema
    (conn(conn_type="https", host="hooks.example.com", schema="a/b"), "webhook", "https://hooks.example.com/a/b"),
    (conn(conn_type="http", host="hooks.slack.com", schema="services/T0/B0/XYZ"), "slack",
     "https://hooks.slack.com/services/T0/B0/XYZ"),
    (conn(conn_type="http", host="chat.internal", extra={"format": "slack"}), "slack", "http://chat.internal"),
    (conn(conn_type="slackwebhook", password="T0/B0/XYZ"), "slack", "https://hooks.slack.com/services/T0/B0/XYZ"),
    (conn(conn_type="slackwebhook", host="https://hooks.slack.com/services", password="T0/B0/XYZ"), "slack",
     "https://hooks.slack.com/services/T0/B0/XYZ"),
    (conn(conn_type="slack", password="https://hooks.slack.com/services/T0/B0/XYZ"), "slack",
     "https://hooks.slack.com/services/T0/B0/XYZ"),
])
def test_channel_and_url_from_the_connection(connection: Connection, channel: str, url: str) -> None:
    assert n.channel_of(connection) == channel
    assert n.webhook_url(connection) == url


def test_mail_connections_and_an_unsupported_type() -> None:
    assert n.channel_of(conn(conn_type="smtp", host="mail")) == "smtp"
    assert n.channel_of(conn(conn_type="email", host="mail")) == "smtp"
    with pytest.raises(n.NotificationError, match=r"type 'postgres'.*\['http', 'https'\].*slackwebhook.*smtp"):
        n.channel_of(conn(conn_type="postgres", host="db"))


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.close()


def test_webhook_delivery_posts_the_json_to_a_real_server(webhook: WebhookServer) -> None:
    note = n.build(n.PROMOTION, DEPLOYED, model="credit_risk", dag_id="model_retraining", run_id="r1",
                   current_row_id=41)
    hook = conn(conn_type="http", host="127.0.0.1", port=webhook.port, password="tok-123",
                extra={"endpoint": "/hooks/retraining", "headers": {"X-Team": "ml"}})
    assert n.send(note, hook) == "webhook"
    [got] = webhook.received
    assert got["path"] == "/hooks/retraining"
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["Authorization"] == "Bearer tok-123" and got["headers"]["X-Team"] == "ml"
    body = got["body"]
    assert body["kind"] == "promotion" and body["model"] == "credit_risk" and body["run_id"] == "r1"
    assert body["champion_before"] == 1 and body["champion_after"] == 2
    assert body["reason"].startswith("data drift") and body["links"]["events row"].endswith("id = 41;")
    assert body["text"] == note.text


def test_slack_delivery_posts_blocks_to_a_real_server(webhook: WebhookServer) -> None:
    note = n.build(n.GATE_REJECTION, REJECTED, model="credit_risk", dag_id="d", run_id="r", current_row_id=7)
    hook = conn(conn_type="slackwebhook", host=webhook.url, password="T0/B0/XYZ")
    assert n.send(note, hook) == "slack"
    [got] = webhook.received
    assert got["path"] == "/T0/B0/XYZ" and "Authorization" not in got["headers"]
    assert set(got["body"]) == {"text", "blocks"}
    assert "no_regression:roc_auc" in got["body"]["blocks"][1]["text"]["text"]


def test_a_refusing_or_absent_webhook_is_a_notification_error() -> None:
    note = n.build(n.FAILURE, None, model="m", dag_id="d", run_id="r")
    server = WebhookServer(status=500)
    hook = conn(conn_type="http", host="127.0.0.1", port=server.port)
    try:
        with pytest.raises(n.NotificationError, match="HTTP 500: refused"):
            n.send(note, hook)
    finally:
        server.close()
    with pytest.raises(n.NotificationError, match="could not be reached"):
        n.send(note, hook, timeout=2)  # nothing listens there any more


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


def test_mail_delivery_to_a_real_smtp_server(smtp: SmtpServer) -> None:
    note = n.build(n.PROMOTION, DEPLOYED, model="credit_risk", dag_id="model_retraining", run_id="r1",
                   current_row_id=41, tracking_uri="http://mlflow:5000")
    mail_conn = conn(conn_type="smtp", host="127.0.0.1", port=smtp.port, login="notifier", password="pw",
                     extra={"from": "airflow@example.com", "to": "ml-team@example.com, oncall@example.com"})
    assert n.send(note, mail_conn) == "smtp"
    [mail] = smtp.mails
    assert mail["auth"] == ("notifier", "pw")
    assert mail["from"] == "airflow@example.com"
    assert mail["to"] == ["ml-team@example.com", "oncall@example.com"]
    message = mail["message"]
    assert message["Subject"] == "[retraining] credit_risk: v2 promoted to champion (was v1)"
    assert message["X-Retraining-Kind"] == "promotion"
    body = message.get_content()
    assert "champion: v1 -> v2" in body and "http://mlflow:5000/#/runs/abc123" in body


def test_mail_without_recipients_is_refused_with_what_to_set() -> None:
    note = n.build(n.FAILURE, None, model="m", dag_id="d", run_id="r")
    with pytest.raises(n.NotificationError, match=r'names no recipient.*"to"'):
        n.send(note, conn(conn_type="smtp", host="127.0.0.1", port=1))


# --- the notifier, on a real events table -----------------------------------------------------------

def context_for(dag_id: str, run_id: str) -> dict[str, Any]:
    """The parts of an Airflow task context the notifier reads (the integration tests use real ones)."""
    dag_run = SimpleNamespace(dag_id=dag_id, run_id=run_id, run_type="scheduled", clear_number=0,
                              run_after=datetime(2026, 3, 8, 18, tzinfo=timezone.utc), triggering_user_name=None)
    return {"dag_run": dag_run, "params": {}, "ti": SimpleNamespace(id="ti-1")}


@pytest.fixture
def configured(pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def write(**notify: Any) -> Path:
        path = tmp_path / "model.yaml"
        path.write_text(yaml.safe_dump(raw_config(notify=notify)))
        monkeypatch.setenv("RETRAINING_CONFIG", str(path))
        return path
    return write


def record_row(pg_dsn: str, run_id: str, fields: dict[str, Any]) -> None:
    key = events.RunKey("unit_model", "model_retraining", run_id)
    events.begin_attempt(pg_dsn, key, "clear 0, first task ti-1")
    events.upsert_event(pg_dsn, key, fields)


def test_the_notifier_reads_the_row_and_sends_through_the_connection(
        pg_dsn: str, configured: Any, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TEAM_HOOK", json.dumps({"conn_type": "http", "host": "127.0.0.1",
                                                             "port": webhook.port}))
    configured(conn_id="team_hook")
    fields = {k: v for k, v in REJECTED.items() if k in events.WRITABLE}
    record_row(pg_dsn, "scheduled__r1", fields)
    n.RetrainingNotifier()(context_for("model_retraining", "scheduled__r1"))
    [body] = webhook.bodies()
    assert body["kind"] == "gate_rejection" and body["model"] == "unit_model" and body["run_id"] == "scheduled__r1"
    assert body["gate_failed"] == ["no_regression:roc_auc", "improvement:f1"]
    row_id = events.get_event(pg_dsn, events.RunKey("unit_model", "model_retraining", "scheduled__r1"))["id"]
    assert body["links"]["events row"] == f"SELECT * FROM model_retraining_events WHERE id = {row_id};"


def test_kinds_not_listed_are_only_logged_and_a_broken_channel_never_raises(
        pg_dsn: str, configured: Any, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TEAM_HOOK", json.dumps({"conn_type": "http", "host": "127.0.0.1",
                                                             "port": webhook.port}))
    configured(conn_id="team_hook", events=["failure"])
    record_row(pg_dsn, "skip_run", {"status": "skipped", "decision": "skip", "trigger_reason": "no drift"})
    record_row(pg_dsn, "deploy_run", {k: v for k, v in DEPLOYED.items() if k in events.WRITABLE})
    with caplog.at_level(logging.INFO, logger=n.__name__):
        n.RetrainingNotifier()(context_for("model_retraining", "skip_run"))
        n.RetrainingNotifier()(context_for("model_retraining", "deploy_run"))
    assert webhook.received == []
    assert "notification (promotion) not sent: not in notify.events" in caplog.text

    webhook.status = 503
    record_row(pg_dsn, "failed_run", {"status": "failed", "failed_task": "train", "error": "train: out of memory"})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=n.__name__):
        n.RetrainingNotifier(failed=True)(context_for("model_retraining", "failed_run"))  # does not raise
    assert len(webhook.received) == 1  # it was tried
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("run failed in train" in r.getMessage() for r in warnings)  # the log notifier's line
    assert any("not delivered through 'team_hook'" in r.getMessage() and "HTTP 503" in r.getMessage()
               for r in warnings)


def test_without_a_connection_the_log_notifier_writes_one_clear_line(
        pg_dsn: str, configured: Any, caplog: pytest.LogCaptureFixture) -> None:
    configured()
    record_row(pg_dsn, "deploy_run", {k: v for k, v in DEPLOYED.items() if k in events.WRITABLE})
    with caplog.at_level(logging.INFO, logger=n.__name__):
        n.RetrainingNotifier()(context_for("model_retraining", "deploy_run"))
    [record] = [r for r in caplog.records if r.getMessage().startswith("notification (promotion)")]
    assert record.levelno == logging.INFO
    assert "unit_model: v2 promoted to champion (was v1)" in record.getMessage()


def test_an_unreadable_events_database_still_notifies_the_failure(
        configured: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    configured()
    monkeypatch.setenv("AIRFLOW_CONN_RETRAINING_DB", json.dumps({
        "conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "etl", "password": SECRET,
        "schema": "events"}))
    context = {**context_for("model_retraining", "r9"),
               "exception": RuntimeError(f"could not connect to postgresql://etl:{SECRET}@127.0.0.1:1/events")}
    with caplog.at_level(logging.INFO, logger=n.__name__):
        n.RetrainingNotifier(failed=True)(context)
    [record] = [r for r in caplog.records if r.getMessage().startswith("notification (failure)")]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "unit_model: run failed" in message and "could not be read" in message
    assert "@127.0.0.1:1/events" in message and SECRET not in caplog.text


def test_a_promotion_finished_by_a_later_run_is_announced_for_the_run_that_asked_for_it(
        pg_dsn: str, configured: Any, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TEAM_HOOK", json.dumps({"conn_type": "http", "host": "127.0.0.1",
                                                             "port": webhook.port}))
    configured(conn_id="team_hook")
    # the killed run's row, as recovery completed it; the next run skipped and says what it recovered
    record_row(pg_dsn, "scheduled__killed", {
        "status": "deployed", "deployed": True, "decision": "retrain", "trigger_type": "data_drift",
        "champion_version_before": 1, "champion_version_after": 2, "promotion_id": 7,
        "promotion_resolution": "completed by model_retraining scheduled__next attempt 1 (recovery of promotion #7)"})
    record_row(pg_dsn, "scheduled__next", {
        "status": "skipped", "decision": "skip", "trigger_reason": "no drift",
        "trigger_metrics": {"recovered": {"promotions": [{"promotion_id": 7, "target_version": 2,
                                                          "outcome": "completed"}]}}})
    n.RetrainingNotifier()(context_for("model_retraining", "scheduled__next"))
    [body] = webhook.bodies()  # the skip itself is not in notify.events; the recovered promotion is
    assert body["kind"] == "promotion" and body["run_id"] == "scheduled__killed"
    assert "v2 promoted to champion (was v1)" in body["title"]
    assert "interrupted promotion #7 completed by run scheduled__next" in body["title"]


def test_drift_judged_with_weak_thresholds_warns(caplog: pytest.LogCaptureFixture) -> None:
    """A retraining decided on data drift judged with weakly calibrated thresholds says so, at WARNING (issue 18)."""
    drift = {"detected": True, "calibration": {"status": "weak", "mode": "calibrated",
                                               "note": "2 windows of 168 h, 16 sub-windows of 21 h"}}
    row = {**DEPLOYED, "trigger_metrics": {"drift": drift}}
    note = n.build(n.classify(row), row, model="credit_risk", dag_id="model_retraining", run_id="r1")
    assert "warning: the data drift was judged with weakly calibrated thresholds (2 windows of 168 h" in note.text
    with caplog.at_level(logging.INFO, logger=n.log.name):
        n.log_notification(note)
    assert caplog.records[-1].levelno == logging.WARNING
    calibrated = {**DEPLOYED, "trigger_metrics": {"drift": {**drift, "calibration": {"status": "calibrated"}}}}
    assert n.weak_calibration(calibrated) is None
    quiet = {**DEPLOYED, "trigger_metrics": {"drift": {**drift, "detected": False}}}
    assert n.weak_calibration(quiet) is None
