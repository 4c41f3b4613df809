"""Whole `model_retraining` runs through ``dag.test()``: real Airflow, PostgreSQL and MLflow.

Each harness has its own PostgreSQL schema (events table and source table), its own
SQLite MLflow store, its own storage folder and a model configuration written from
the bundled one, so tests never see each other's champions or rows.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg2
import pytest
import yaml
from psycopg2 import sql
from psycopg2.extras import RealDictCursor

from include.retraining import demo_data
from tests.support import REPO, isolated_schema

TABLE = "applications"
TEST_STREAM = demo_data.StreamSpec(
    start=datetime(2026, 3, 6, tzinfo=timezone.utc),
    end=datetime(2026, 3, 9, 6, tzinfo=timezone.utc),
    drift_at=datetime(2026, 3, 8, 12, tzinfo=timezone.utc),
    rows_per_hour=500,
)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def dag(airflow_db: None) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    return bag.dags["model_retraining"]


@pytest.fixture(scope="session")
def stream() -> pd.DataFrame:
    return demo_data.generate(TEST_STREAM)


def write_table(dsn: str, table: str, frame: pd.DataFrame) -> None:
    """Create ``table`` from the frame's dtypes (text for objects) and COPY the rows in."""
    def sql_type(series: pd.Series) -> str:
        if pd.api.types.is_datetime64_any_dtype(series):
            return "TIMESTAMPTZ"
        if pd.api.types.is_integer_dtype(series):
            return "BIGINT"
        if pd.api.types.is_numeric_dtype(series):
            return "DOUBLE PRECISION"
        return "TEXT"

    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(sql_type(frame[c]))) for c in frame.columns
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f%z")
    buffer.seek(0)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), columns))
        cur.copy_expert(
            sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, NULL '\\N')").format(sql.Identifier(table)), buffer
        )
    conn.close()


@dataclass
class Harness:
    dag: Any
    dsn: str
    folder: Path
    model_name: str = field(default_factory=lambda: f"credit_risk_{uuid.uuid4().hex[:8]}")

    def configure(self, **overrides: Any) -> Path:
        """Write the model config (bundled one + test paths + ``overrides`` as 'section.key': value)."""
        cfg = yaml.safe_load((REPO / "include" / "config" / "credit_risk.yaml").read_text())
        cfg["model"]["name"] = self.model_name
        cfg["source"] = {"kind": "sql", "conn_id": "retraining_db", "table": TABLE}
        cfg["storage"] = {"uri": str(self.folder / "storage")}
        cfg["mlflow"] = {"tracking_uri": f"sqlite:///{self.folder / 'mlflow.db'}", "experiment": self.model_name}
        cfg["training"]["search"] = {"trials": 2, "folds": 3}  # a real search, kept small for test time
        for dotted, value in overrides.items():
            node = cfg
            *parents, key = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[key] = value
        path = self.folder / "model.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def load(self, frame: pd.DataFrame) -> None:
        write_table(self.dsn, TABLE, frame)

    def run(self, end: datetime, **params: Any) -> tuple[Any, dict[str, Any]]:
        """The run of the six-hour interval ending at ``end``, dated as the scheduler dates it (logical date =
        the interval's start); returns the run and its current events row."""
        from include.retraining.local_runs import run_window

        dagrun = run_window(self.dag, end - timedelta(hours=6), end, conf=self.conf(**params))
        return dagrun, self.event(dagrun.run_id)

    @staticmethod
    def conf(**params: Any) -> dict[str, Any]:
        # always the whole conf: dag.test() keeps a previous run's conf in the DAG's params
        return {"model_type": None, "force_retrain": False, "check_only": False, "lookback_hours": None,
                "reason": None, **params}

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM model_retraining_event_attempts WHERE run_id = %s ORDER BY attempt",
                          (run_id,))

    def event(self, run_id: str) -> dict[str, Any]:
        rows = self.query("SELECT * FROM model_retraining_events WHERE run_id = %s", (run_id,))
        assert len(rows) == 1, f"expected one events row for {run_id}, found {len(rows)}"
        return rows[0]

    def query(self, statement: str, params: tuple = ()) -> list[dict[str, Any]]:
        with psycopg2.connect(self.dsn) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(statement, params)
            rows = [dict(r) for r in cur.fetchall()]
        conn.close()
        return rows

    def task_states(self, run_id: str) -> dict[str, str | None]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            tis = session.query(TaskInstance).filter_by(dag_id=self.dag.dag_id, run_id=run_id).all()
            return {ti.task_id: getattr(ti.state, "value", ti.state) for ti in tis}

    def mlflow(self) -> Any:
        from mlflow import MlflowClient

        uri = f"sqlite:///{self.folder / 'mlflow.db'}"
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def alias_version(self, alias: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            return int(self.mlflow().get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None


class ServingApp:
    """A real HTTP server on 127.0.0.1 standing in for the model-serving app: records reload calls."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        app = self
        self.calls: list[dict[str, Any]] = []
        self.status = 200

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                app.calls.append({"path": self.path, "body": json.loads(body or b"{}")})
                self.send_response(app.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"reloaded": app.status == 200}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serving_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServingApp]:
    app = ServingApp()
    monkeypatch.setenv("AIRFLOW_CONN_SERVING_API", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": app.port, "schema": "http"}))
    yield app
    app.close()


@pytest.fixture
def harness(dag: Any, pg_server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with isolated_schema(pg_server, monkeypatch) as dsn:
        h = Harness(dag=dag, dsn=dsn, folder=tmp_path)
        monkeypatch.setenv("RETRAINING_CONFIG", str(h.configure()))
        yield h


@pytest.fixture(scope="module")
def module_harness(dag: Any, pg_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One harness shared by the tests of a module (for scenarios that build on each other)."""
    with pytest.MonkeyPatch.context() as mp, isolated_schema(pg_server, mp) as dsn:
        h = Harness(dag=dag, dsn=dsn, folder=tmp_path_factory.mktemp("scenario"))
        mp.setenv("RETRAINING_CONFIG", str(h.configure()))
        yield h
