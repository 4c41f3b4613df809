"""Serving: exporting registered models to a folder (blue-green via ``current``) and the reload call.

Real parts only: a SQLite MLflow store with a registered sklearn model (versions 1 and 2),
and an HTTP server on 127.0.0.1 reached through an Airflow connection in the environment.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from include.retraining.release import serving
from include.retraining.release.serving import (
    ReloadError,
    connection_url,
    current_version,
    export_model,
    point_current,
    reload_endpoint,
)

NAME = "credit_risk"
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
Y = np.array([0, 0, 0, 1, 1, 1])


# --- files -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite MLflow store holding ``credit_risk`` versions 1 and 2; the tracking URI is set meanwhile."""
    import mlflow
    import mlflow.sklearn
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        # restored afterwards, so other test modules do not inherit this store
        mp.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
        mp.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        mlflow.create_experiment("serving_tests", artifact_location=str(root / "artifacts"))
        mlflow.set_experiment("serving_tests")
        model = LogisticRegression().fit(X, Y)
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
        for expected in (1, 2):
            assert int(mlflow.register_model(info.model_uri, NAME).version) == expected
        yield root


def _leftovers(model_dir: Path) -> list[str]:
    """Hidden entries (temporary folders or links) in a model's serving folder."""
    return sorted(p.name for p in model_dir.iterdir() if p.name.startswith("."))


def test_export_layout_current_and_rollback(registered: Path, tmp_path: Path) -> None:
    import mlflow.sklearn

    serving_dir = tmp_path / "serving"
    model_dir = serving_dir / NAME

    first = export_model(f"models:/{NAME}/1", serving_dir, NAME, 1)
    assert first == {"path": str(model_dir / "v1"), "current": str(model_dir / "current"), "previous": None,
                     "version": 1, "exported": True}
    assert (model_dir / "current").resolve() == (model_dir / "v1").resolve()

    second = export_model(f"models:/{NAME}/2", str(serving_dir), NAME, 2)
    assert second["previous"] == 1 and second["exported"] is True
    assert sorted(p.name for p in model_dir.iterdir()) == ["current", "v1", "v2"]
    assert (model_dir / "current").is_symlink() and os.readlink(model_dir / "current") == "v2"
    assert (model_dir / "current").resolve() == (model_dir / "v2").resolve()
    assert {"MLmodel", "model.pkl"} <= {p.name for p in (model_dir / "v2").iterdir()}
    assert current_version(serving_dir, NAME) == 2

    model = mlflow.sklearn.load_model(str(model_dir / "current"))
    assert model.predict(X).tolist() == Y.tolist()
    assert mlflow.sklearn.load_model(second["path"]).predict(X[:2]).tolist() == [0, 0]

    point_current(serving_dir, NAME, 1)
    assert (model_dir / "current").resolve() == (model_dir / "v1").resolve()
    assert current_version(serving_dir, NAME) == 1
    assert _leftovers(model_dir) == []


def test_reexport_is_a_no_op_that_repoints_current(registered: Path, tmp_path: Path) -> None:
    export_model(f"models:/{NAME}/1", tmp_path, NAME, 1)
    export_model(f"models:/{NAME}/2", tmp_path, NAME, 2)
    before = (tmp_path / NAME / "v1" / "MLmodel").stat()

    again = export_model(f"models:/{NAME}/1", tmp_path, NAME, 1)
    assert again["previous"] == 2 and again["exported"] is False
    assert current_version(tmp_path, NAME) == 1
    after = (tmp_path / NAME / "v1" / "MLmodel").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _leftovers(tmp_path / NAME) == []


def test_an_export_of_a_missing_version_leaves_current_untouched(registered: Path, tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException

    export_model(f"models:/{NAME}/1", tmp_path, NAME, 1)
    with pytest.raises(MlflowException, match="not found"):
        export_model(f"models:/{NAME}/99", tmp_path, NAME, 99)
    model_dir = tmp_path / NAME
    assert sorted(p.name for p in model_dir.iterdir()) == ["current", "v1"]
    assert current_version(tmp_path, NAME) == 1


def test_an_export_that_fails_midway_leaves_no_half_written_folder(
    registered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.artifacts

    real_download = mlflow.artifacts.download_artifacts
    seen: list[Path] = []

    def download_then_fail(**kwargs: Any) -> str:
        path = Path(real_download(**kwargs))
        seen.append(path)
        assert (path / "MLmodel").is_file() and path.parent == tmp_path / NAME  # written beside its target
        raise OSError(28, "No space left on device")

    export_model(f"models:/{NAME}/1", tmp_path, NAME, 1)
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", download_then_fail)
    with pytest.raises(OSError, match="No space left"):
        export_model(f"models:/{NAME}/2", tmp_path, NAME, 2)
    assert seen and not seen[0].exists()
    assert sorted(p.name for p in (tmp_path / NAME).iterdir()) == ["current", "v1"]
    assert current_version(tmp_path, NAME) == 1


def test_point_current_needs_an_exported_version(registered: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="exported: none"):
        point_current(tmp_path, NAME, 1)
    export_model(f"models:/{NAME}/1", tmp_path, NAME, 1)
    with pytest.raises(FileNotFoundError, match=r"version 3: .*v3 is not an exported model \(exported: v1\)"):
        point_current(tmp_path, NAME, 3)
    assert current_version(tmp_path, NAME) == 1
    assert _leftovers(tmp_path / NAME) == []


def test_export_refuses_object_stores_and_odd_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="registry alias"):
        export_model(f"models:/{NAME}/1", "s3://bucket/serving", NAME, 1)
    with pytest.raises(ValueError, match="folder name"):
        export_model(f"models:/{NAME}/1", tmp_path, "../escape", 1)
    with pytest.raises(ValueError, match="positive integer"):
        point_current(tmp_path, NAME, 0)
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_version_folder_is_not_taken_for_an_export(tmp_path: Path) -> None:
    (tmp_path / NAME / "v1").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="remove it and deploy again"):
        export_model(f"models:/{NAME}/1", tmp_path, NAME, 1)
    assert not (tmp_path / NAME / "current").exists()


# --- connection URL ----------------------------------------------------------------------------


def _conn(host: str | None, port: int | None = None, schema: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(conn_id="serving_api", host=host, port=port, schema=schema)


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        ("127.0.0.1", 8080, "http", "http://127.0.0.1:8080"),
        ("serving.internal", None, None, "http://serving.internal"),
        ("serving.internal", 8443, "https", "https://serving.internal:8443"),
        ("serving.internal", None, "HTTPS", "https://serving.internal"),
        ("https://serving.internal", None, "http", "https://serving.internal"),
        ("https://serving.internal/", 8443, None, "https://serving.internal:8443"),
        ("http://serving.internal:9000/api/", 1234, None, "http://serving.internal:9000/api"),
        ("serving.internal/api", 8080, "", "http://serving.internal:8080/api"),
        ("::1", 8080, "http", "http://[::1]:8080"),
        (" localhost ", 80, None, "http://localhost:80"),
    ],
)
def test_connection_url(host: str, port: int | None, schema: str | None, expected: str) -> None:
    assert connection_url(_conn(host, port, schema)) == expected


def test_connection_url_errors_say_what_to_set() -> None:
    with pytest.raises(ValueError, match="has no host"):
        connection_url(_conn(None))
    with pytest.raises(ValueError, match="not http or https"):
        connection_url(_conn("serving.internal", 8080, "postgres"))
    with pytest.raises(ValueError, match="not http or https"):
        connection_url(_conn("ftp://serving.internal"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("false", False), ("True", True), ("/etc/ssl/ca.pem", "/etc/ssl/ca.pem"), (None, True)],
)
def test_verify_option(value: Any, expected: bool | str) -> None:
    assert serving._verify_option(value) == expected


# --- reload call against a real server ---------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ServingApp:
    port: int
    mode: str = "ok"  # ok | fail | slow
    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def _handler(app: ServingApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            app.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
            if app.mode == "slow":
                app.release.wait(10)
                return
            status, answer = (200, {"reloaded": True, "model": "v2"}) if app.mode == "ok" else (500, None)
            data = json.dumps(answer).encode() if answer else ("Traceback: boom " + "x" * 1000).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if answer else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
            pass

    return Handler


@pytest.fixture
def serving_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServingApp]:
    """A serving app on 127.0.0.1 and the Airflow connection ``serving_api`` pointing at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    app = ServingApp(port=server.server_address[1])
    server.RequestHandlerClass = _handler(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVING_API",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": app.port, "schema": "http", "login": "u",
                    "password": "p", "extra": {"headers": {"X-Token": "t"}}}),
    )
    try:
        yield app
    finally:
        app.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_reload_posts_json_with_auth_and_headers(serving_app: ServingApp) -> None:
    answer = reload_endpoint("serving_api", payload={"model": NAME, "version": 2})
    url = f"http://127.0.0.1:{serving_app.port}/model/reload"
    assert answer["status_code"] == 200 and answer["url"] == url
    assert answer["body"] == {"reloaded": True, "model": "v2"}
    assert isinstance(answer["elapsed_ms"], float) and answer["elapsed_ms"] >= 0
    [request] = serving_app.requests
    assert (request.method, request.path) == ("POST", "/model/reload")
    assert json.loads(request.body) == {"model": NAME, "version": 2}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Token"] == "t"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_reload_with_another_endpoint_and_no_payload(serving_app: ServingApp) -> None:
    reload_endpoint("serving_api", endpoint="admin/swap")
    [request] = serving_app.requests
    assert request.path == "/admin/swap" and json.loads(request.body) == {}


def test_a_failing_reload_names_the_url_and_status(serving_app: ServingApp) -> None:
    serving_app.mode = "fail"
    with pytest.raises(ReloadError) as info:
        reload_endpoint("serving_api")
    url = f"http://127.0.0.1:{serving_app.port}/model/reload"
    assert f"POST {url} answered 500" in str(info.value) and "Traceback: boom" in str(info.value)
    assert info.value.status_code == 500 and info.value.url == url
    assert len(info.value.body) == 500 and info.value.body.startswith("Traceback: boom")
    assert isinstance(info.value, RuntimeError)


def test_a_reload_that_times_out(serving_app: ServingApp) -> None:
    serving_app.mode = "slow"
    with pytest.raises(ReloadError, match=r"timed out after 0.3s \(status: no answer\)") as info:
        reload_endpoint("serving_api", timeout=0.3)
    assert info.value.url == f"http://127.0.0.1:{serving_app.port}/model/reload"
    assert info.value.status_code is None
    assert len(serving_app.requests) == 1


def test_a_reload_with_nothing_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a loopback port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SERVING_DOWN", json.dumps({"conn_type": "http", "host": "http://127.0.0.1",
                                                                "port": port}))
    with pytest.raises(ReloadError, match=rf"POST http://127.0.0.1:{port}/model/reload failed \(status: no answer\)"):
        reload_endpoint("serving_down", timeout=5)


def test_an_unconfigured_connection_says_how_to_add_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SERVING_NOWHERE", raising=False)
    with pytest.raises(LookupError, match="AIRFLOW_CONN_SERVING_NOWHERE"):
        reload_endpoint("serving_nowhere")
