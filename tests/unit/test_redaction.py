"""Credentials are masked in text, config dumps and log records; storage paths cannot climb out."""

from __future__ import annotations

import logging

import pytest

from include.retraining import redaction, storage
from include.retraining.redaction import MASK, RedactingFilter, redact, redact_config, split_userinfo

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"http://user:{SECRET}@mlflow:5000/api", "http://***@mlflow:5000/api"),
        (f"postgresql+psycopg2://etl:{SECRET}@db.internal:5432/prod", "postgresql+psycopg2://***@db.internal:5432/prod"),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("https://ghp_tokenonly1234@github.com/org/repo", "https://***@github.com/org/repo"),
        # an unencoded '@' and '/' in the password (AWS secret keys hold '/')
        ("postgresql://u:p@ss@host/db", "postgresql://***@host/db"),
        ("s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG@bucket/key", "s3://***@bucket/key"),
        (f"host=db port=5432 user=etl password={SECRET} dbname=prod", "host=db port=5432 user=etl password=*** dbname=prod"),
        ("host=db password='a b\\'c' dbname=x", "host=db password='***' dbname=x"),
        ("GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc123&x=1",
         "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1"),
        ("https://api/x?token=abc&page=2", "https://api/x?token=***&page=2"),
        (f'{{"password": "{SECRET}", "user": "etl"}}', '{"password": "***", "user": "etl"}'),
        (f"{{'aws_secret_access_key': '{SECRET}'}}", "{'aws_secret_access_key': '***'}"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: ***"),
        ("key id AKIAIOSFODNN7EXAMPLE in use", "key id *** in use"),
    ],
)
def test_credentials_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "http://mlflow:5000/#/experiments/1/runs/abc",
        "sqlite:////tmp/mlflow.db",
        "s3://bucket/retraining/credit_risk/snapshots",
        "max_tokens=5 token_count=3 password_policy=strict",
        "code_version 0123456789abcdef0123456789abcdef01234567",
        "mail ops@example.com about it",
        "",
    ],
)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_non_text_passes_through() -> None:
    assert redact(None) is None
    assert redact(3.5) == 3.5


def test_registered_secrets_are_masked_anywhere() -> None:
    redaction.register_secret("Zq9-registered-pw")
    redaction.register_secret("ab")  # too short to mask safely: ignored
    assert redact("login failed for Zq9-registered-pw (ab)") == "login failed for *** (ab)"


def test_config_dump_masks_secret_keys_and_uris() -> None:
    dump = {
        "mlflow": {"tracking_uri": f"https://u:{SECRET}@mlflow", "conn_id": None},
        "storage": {"uri": f"s3://AKIAIOSFODNN7EXAMPLE:{SECRET}@bucket/x"},
        "extra": {"password": SECRET, "api_key": "k-123456", "token": "", "name": "credit"},
        "list": [f"http://a:{SECRET}@h"],
    }
    out = redact_config(dump)
    assert SECRET not in repr(out)
    assert out["mlflow"] == {"tracking_uri": "https://***@mlflow", "conn_id": None}
    assert out["extra"] == {"password": MASK, "api_key": MASK, "token": "", "name": "credit"}
    assert dump["extra"]["password"] == SECRET  # the input is left as it was


def test_split_userinfo_decodes_and_removes_credentials() -> None:
    assert split_userinfo("https://us%40er:p%2Fw%3A@host:5000/x?y=1") == ("https://host:5000/x?y=1", "us@er", "p/w:")
    assert split_userinfo("https://token@host") == ("https://host", "token", None)
    assert split_userinfo("http://host:5000") == ("http://host:5000", None, None)
    assert split_userinfo("sqlite:////tmp/x.db") == ("sqlite:////tmp/x.db", None, None)


def test_the_filter_masks_message_arguments_and_exception() -> None:
    logger = logging.getLogger("test_redaction.filter")
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "connecting to %s failed: %s",
                               (f"http://u:{SECRET}@h", ValueError(f"password={SECRET}")), None)
    try:
        raise RuntimeError(f"postgresql://u:{SECRET}@db/x")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record) is True
    text = logging.Formatter().format(record)
    assert SECRET not in text
    assert "http://***@h" in text and "password=***" in text and "postgresql://***@db/x" in text


def test_install_redacts_records_of_every_logger(caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    previous = logging.getLogRecordFactory()
    monkeypatch.setattr(redaction, "_installed", False)
    try:
        redaction.install()
        redaction.install()  # idempotent
        with caplog.at_level(logging.INFO):
            logging.getLogger("mlflow.tracking.fluent").info("View run at %s", f"http://u:{SECRET}@mlflow/#/runs/1")
            logging.getLogger("some.third.party").warning(f"dsn host=x password={SECRET}")
    finally:
        logging.setLogRecordFactory(previous)
    assert SECRET not in caplog.text
    assert "http://***@mlflow/#/runs/1" in caplog.text


@pytest.mark.parametrize("part", ["..", "../x", "a/../../b", "..\\up"])
def test_storage_join_refuses_parts_that_climb_out(part: str) -> None:
    with pytest.raises(ValueError, match="would leave the storage location"):
        storage.join("/data/storage", part, "snapshots")


def test_storage_join_keeps_ordinary_parts() -> None:
    assert storage.join("s3://b/root/", "credit..risk", "/runs/") == "s3://b/root/credit..risk/runs"


def test_events_adapt_masks_and_strips_nul_at_any_depth() -> None:
    from include.retraining.record.events import _adapt

    assert _adapt("error", f"train: OperationalError: http://u:{SECRET}@h\x00 down") == "train: OperationalError: http://***@h down"
    wrapped = _adapt("gate_details", {"reason": f"manual\x00 password={SECRET}", "k\x00": [f"redis://:{SECRET}@r"]})
    dumped = wrapped.dumps(wrapped.adapted)
    assert SECRET not in dumped and "\\u0000" not in dumped
    assert '"reason": "manual password=***"' in dumped


def test_drift_report_context_and_decision_are_masked() -> None:
    from include.retraining.monitoring.drift_report import render_html

    html = render_html({"features": []}, title="t", context={"store": f"http://u:{SECRET}@mlflow"},
                       decision={"reason": f"see postgresql://a:{SECRET}@db"})
    assert SECRET not in html
    assert "http://***@mlflow" in html


# --- MLflow credentials travel apart from the URI (release/registry.py) -------------------------------------


def _mlflow_config(**mlflow: object) -> object:
    from unit_helpers import build_config

    return build_config(mlflow=mlflow)


def test_tracking_uri_userinfo_becomes_mlflow_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.retraining.release import registry

    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    cfg = _mlflow_config(tracking_uri=f"https://ml%40user:{SECRET}@mlflow.example.com/prefix")
    uri, credentials = registry._tracking_server(cfg)
    assert uri == registry.tracking_uri(cfg) == "https://mlflow.example.com/prefix"
    assert credentials == {"MLFLOW_TRACKING_USERNAME": "ml@user", "MLFLOW_TRACKING_PASSWORD": SECRET}
    assert redact(f"failed: {SECRET}") == "failed: ***"  # registered for redaction


def test_a_database_store_keeps_its_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.retraining.release import registry

    cfg = _mlflow_config(tracking_uri="postgresql://ml:Db-pass-77@db/mlflow")
    assert registry._tracking_server(cfg) == ("postgresql://ml:Db-pass-77@db/mlflow", {})
    assert "Db-pass-77" not in redact("postgresql://ml:Db-pass-77@db/mlflow and Db-pass-77")


def test_mlflow_conn_id_gives_server_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from include.retraining.release import registry

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_HTTP", json.dumps({
        "conn_type": "http", "host": "mlflow.internal", "port": 8443, "schema": "https",
        "login": "svc", "password": "Conn-pw-9931", "extra": {"token": "Tok-en-55821"}}))
    uri, credentials = registry._tracking_server(_mlflow_config(conn_id="mlflow_http"))
    assert uri == "https://mlflow.internal:8443"
    assert credentials == {"MLFLOW_TRACKING_USERNAME": "svc", "MLFLOW_TRACKING_PASSWORD": "Conn-pw-9931",
                           "MLFLOW_TRACKING_TOKEN": "Tok-en-55821"}
    assert redact("Conn-pw-9931 Tok-en-55821") == "*** ***"


def test_an_unconfigured_mlflow_connection_says_what_to_add(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.retraining.release import registry

    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_MLFLOW", raising=False)
    with pytest.raises(LookupError, match=r"mlflow\.conn_id.*AIRFLOW_CONN_NO_SUCH_MLFLOW"):
        registry.tracking_uri(_mlflow_config(conn_id="no_such_mlflow"))
