"""Credentials never leave in what the package writes: events rows, log lines, MLflow tags and artifacts.

Every place the configuration accepts a credential carries a distinct secret: ``mlflow.tracking_uri``
(``http://user:secret@host``), the ``mlflow.conn_id`` connection, the events and source connections'
passwords, ``storage.uri`` with userinfo, and the serving app's ``deploy.reload_conn_id`` connection.
MLflow is a real tracking server (in its own process, on the test's SQLite store) behind HTTP basic
authentication, so the trainings also prove the credentials still reach it. After real failing stages
and two real trainings, every events row, every captured log line (pytest's, the task logs on disk,
stdout with MLflow's "View run at" line), the MLflow database and every artifact file are searched for
each secret: none may be found.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.retraining import runtime as rt

from .conftest import Harness, at

pytestmark = pytest.mark.integration

USER = "mluser"
SECRETS = {
    "mlflow": "mlflow-pw-Q7x9v",
    "events": "events-pw-K2v8w",
    "source": "source-pw-M4n1x",
    "storage": "storage-pw-Z5c3y",
    "serving": "serving-pw-R8t6z",
}
MLFLOW_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")

# A real MLflow tracking server (MLflow's Flask app, artifacts served) that answers only requests carrying
# the basic-auth credentials; every request is counted in a file as "ok" or "401".
SERVER = r'''
import base64, os, sys
store, artifacts, port, expected, counts = sys.argv[1:6]
os.environ["_MLFLOW_SERVER_FILE_STORE"] = store
os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = store
os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "true"
os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = "mlflow-artifacts:/"
os.environ["_MLFLOW_SERVER_ARTIFACT_DESTINATION"] = artifacts
from mlflow.server import app
from werkzeug.serving import make_server

inner = app.wsgi_app


def guarded(environ, start_response):
    ok = environ.get("HTTP_AUTHORIZATION") == "Basic " + expected or environ.get("PATH_INFO") == "/health"
    with open(counts, "a") as fh:
        fh.write(("ok" if ok else "401") + " " + environ.get("PATH_INFO", "") + "\n")
    if not ok:
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Basic")])
        return [b"credentials required"]
    return inner(environ, start_response)


app.wsgi_app = guarded
make_server("127.0.0.1", int(port), app, threaded=True).serve_forever()
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.counts = folder / "mlflow_requests.txt"
        self.artifacts = folder / "mlartifacts"
        expected = base64.b64encode(f"{USER}:{SECRETS['mlflow']}".encode()).decode()
        script = folder / "mlflow_server.py"
        script.write_text(SERVER)
        self.log = open(folder / "mlflow_server.log", "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, str(script), f"sqlite:///{folder / 'mlflow.db'}", str(self.artifacts), str(self.port),
             expected, str(self.counts)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                assert self.process.poll() is None, (folder / "mlflow_server.log").read_text()
                time.sleep(0.3)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def requests(self) -> dict[str, int]:
        lines = self.counts.read_text().splitlines() if self.counts.exists() else []
        return {"ok": sum(x.startswith("ok") for x in lines), "401": sum(x.startswith("401") for x in lines)}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def secret_env(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Passwords on the events, source and serving connections; MLflow's variables restored afterwards."""
    for name in MLFLOW_ENV:  # set then delete: monkeypatch restores "unset" at the end
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    events = json.loads(os.environ["AIRFLOW_CONN_RETRAINING_DB"])
    monkeypatch.setenv("AIRFLOW_CONN_RETRAINING_DB", json.dumps({**events, "password": SECRETS["events"]}))
    monkeypatch.setenv("AIRFLOW_CONN_SOURCE_DB", json.dumps({**events, "password": SECRETS["source"]}))
    yield


def configure(harness: Harness, **overrides: Any) -> None:
    os.environ["RETRAINING_CONFIG"] = str(harness.configure(**{
        "source": {"kind": "sql", "conn_id": "source_db", "table": "applications"},
        "deploy.serving_dir": str(harness.folder / "serving"),
        "deploy.reload_conn_id": "serving_api",
        **overrides,
    }))


def secrets_found(texts: dict[str, str]) -> dict[str, list[str]]:
    """Which secret appears in which captured text (the report's 'secrets found')."""
    return {where: [name for name, secret in SECRETS.items() if secret in text]
            for where, text in texts.items() if any(secret in text for secret in SECRETS.values())}


def stored_texts(harness: Harness, since: float) -> dict[str, str]:
    """Everything the runs wrote: events rows, task log files, MLflow's database and artifact files."""
    texts = {
        "events": json.dumps(harness.query("SELECT * FROM model_retraining_events"), default=str),
        "event_attempts": json.dumps(harness.query("SELECT * FROM model_retraining_event_attempts"), default=str),
    }
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    for path in [*logs.rglob("*"), *harness.folder.rglob("*")]:
        if path.is_file() and path.stat().st_mtime >= since and path.suffix not in (".parquet", ".txt") \
                and path.name not in ("model.yaml", "mlflow_server.py", "mlflow_server.log"):
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return texts


def test_a_failing_stage_records_and_logs_no_secret(harness: Harness, stream: Any, secret_env: None,
                                                    serving_app: Any, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    """A dead MLflow server named with credentials fails the check; a storage URI with credentials fails
    collect. Both errors name the URI: the row and the logs show it masked."""
    serving = json.loads(os.environ["AIRFLOW_CONN_SERVING_API"])
    monkeypatch.setenv("AIRFLOW_CONN_SERVING_API", json.dumps({**serving, "login": "svc",
                                                               "password": SECRETS["serving"]}))
    started = time.time() - 1
    harness.load(stream)
    dead = free_port()
    configure(harness, **{"mlflow.tracking_uri": f"http://{USER}:{SECRETS['mlflow']}@127.0.0.1:{dead}"})
    with caplog.at_level("INFO"):
        dagrun, row = harness.run(at(8, 0))
    assert dagrun.state == "failed" and row["failed_task"].startswith(rt.CHECK), row["failed_task"]
    errors = [row["error"]]
    assert str(dead) in row["error"], row["error"]

    server = MlflowServer(harness.folder)
    try:
        configure(harness, **{"mlflow.tracking_uri": f"http://{USER}:{SECRETS['mlflow']}@{server.host}",
                              "storage.uri": f"ftp://ftpuser:{SECRETS['storage']}@127.0.0.1:{free_port()}/storage"})
        with caplog.at_level("INFO"):
            dagrun, row = harness.run(at(8, 6))
        assert dagrun.state == "failed" and row["failed_task"].startswith(rt.COLLECT), row
        errors.append(row["error"])
        assert server.requests()["401"] == 0 and server.requests()["ok"] > 0
    finally:
        server.stop()
    out, err = capfd.readouterr()
    texts = {"caplog": caplog.text, "stdout": out, "stderr": err, **stored_texts(harness, started)}
    found = secrets_found(texts)
    print("errors recorded:", *errors, sep="\n  ")
    print(f"secrets found after two failing stages: {sum(len(v) for v in found.values())} "
          f"in {len(texts)} texts searched")
    assert found == {}


def test_real_trainings_keep_every_secret_out_of_rows_logs_and_mlflow(
        harness: Harness, stream: Any, secret_env: None, serving_app: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """Two trainings, promotions and a drift report: credentials first in the tracking URI, then in an
    Airflow connection (``mlflow.conn_id``). MLflow receives them (no request refused) and stores none;
    a trigger reason with NUL and control characters reaches the row clean."""
    serving = json.loads(os.environ["AIRFLOW_CONN_SERVING_API"])
    monkeypatch.setenv("AIRFLOW_CONN_SERVING_API", json.dumps({**serving, "login": "svc",
                                                               "password": SECRETS["serving"]}))
    started = time.time() - 1
    harness.load(stream)
    server = MlflowServer(harness.folder)
    try:
        configure(harness, **{"mlflow.tracking_uri": f"http://{USER}:{SECRETS['mlflow']}@{server.host}"})
        with caplog.at_level("INFO"):
            _, first = harness.run(at(8, 0))
        assert first["status"] == "deployed", first
        assert harness.alias_version("champion") == 1

        monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_HTTP", json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": server.port, "schema": "http",
            "login": USER, "password": SECRETS["mlflow"]}))
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(name, None)  # the connection alone must bring them
        configure(harness, **{"mlflow.tracking_uri": None, "mlflow.conn_id": "mlflow_http"})
        with caplog.at_level("INFO"):
            dagrun, second = harness.run(at(8, 18), reason="drift seen\x00 by ops\x07 team")
        assert second["status"] == "deployed" and second["candidate_version"] == 2, second
        assert second["drift_report_uri"], second  # the check found drift and logged its report
        assert "drift seen by ops team" in second["trigger_reason"], second["trigger_reason"]
        assert "\x00" not in second["trigger_reason"] and "\x07" not in second["trigger_reason"]
        assert harness.task_states(dagrun.run_id)[rt.DECIDE] == "success"
        requests = server.requests()
        assert requests["401"] == 0 and requests["ok"] > 50, requests
    finally:
        server.stop()
    out, err = capfd.readouterr()
    assert "View run" in out + err + caplog.text  # MLflow printed its links: they were searched too
    client = harness.mlflow()
    experiment = client.get_experiment_by_name(harness.model_name)
    runs = client.search_runs([experiment.experiment_id])
    kinds = {r.data.tags.get("retraining.kind", "training") for r in runs}
    assert "drift_check" in kinds and len(runs) >= 3
    artifacts = [p for p in (harness.folder / "mlartifacts").rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in artifacts) and any(p.name == "drift_report.html" for p in artifacts)
    texts = {
        "caplog": caplog.text, "stdout": out, "stderr": err,
        "mlflow_runs": json.dumps([{"tags": r.data.tags, "params": r.data.params} for r in runs]),
        "model_versions": json.dumps([{"tags": v.tags, "source": v.source}
                                      for v in client.search_model_versions(f"name='{harness.model_name}'")]),
        "serving_calls": json.dumps(serving_app.calls),
        **stored_texts(harness, started),
    }
    # one config.json per training, in no particular order: the first training's names the tracking URI (masked),
    # the second's the connection
    configs = [json.loads(p.read_text())["mlflow"] for p in artifacts if p.name == "config.json"]
    assert sorted((c["tracking_uri"] or "", c.get("conn_id") or "") for c in configs) == \
        [("", "mlflow_http"), (f"http://***@{server.host}", "")], configs
    found = secrets_found(texts)
    print(f"secrets found after two trainings: {sum(len(v) for v in found.values())} in {len(texts)} texts "
          f"({len(artifacts)} artifact files, {len(runs)} MLflow runs, {requests['ok']} authorised MLflow requests)")
    assert found == {}
