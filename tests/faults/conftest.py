"""Fault tests: real processes killed with SIGKILL, a real PostgreSQL server stopped and restarted.

- :class:`PgInstance`: a PostgreSQL server the tests start themselves (``initdb`` + ``pg_ctl`` from the
  machine's PostgreSQL binaries, as the ``postgres`` user when run as root) on a free port, so it can be
  stopped (``-m immediate``: a crash) and restarted without touching the machine's server.
- The base state, built once per module: a source table with the test stream, champion v1 trained and
  deployed (exported to a serving folder) for the window ending 03-08 00:00. Each scenario starts from a
  copy of it: ``CREATE DATABASE ... TEMPLATE`` for the events and source tables, a copy of the SQLite
  MLflow store (artifacts are shared: new runs write new folders) and of the serving folder.
- Tasks run through ``tests.faults.driver`` in a subprocess, with ``RETRAINING_FAULTS`` naming where to
  kill it or where to hold it while a test stops a service.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml
from psycopg2.extras import RealDictCursor

from tests.integration.conftest import TEST_STREAM, ServingApp, at, write_table
from tests.support import REPO

pytestmark = pytest.mark.faults

TABLE = "applications"
W1 = at(8, 0)   # first model: v1
W2 = at(8, 18)  # the window after the drift at 03-08 12:00: retrain, v2
W3 = at(9, 0)   # the next window


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    which = shutil.which("pg_ctl")
    if which:
        return Path(which).parent
    pytest.skip("no PostgreSQL server binaries (pg_ctl) on this machine")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgInstance:
    """A PostgreSQL server of our own: start, crash (``stop``), restart."""

    def __init__(self, root: Path) -> None:
        self.bin = _pg_bin()
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(root, "postgres")
            os.chmod(root, 0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        """Crash the server (immediate shutdown: every session is cut, as when a database host dies)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} connect_timeout=3"

    def execute(self, statement: str, dbname: str = "postgres") -> None:
        conn = psycopg2.connect(self.dsn(dbname))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.close()

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Scenario:
    """One copy of the base state, and the means to run tasks of a run against it."""

    pg: PgInstance
    dbname: str
    folder: Path
    model_name: str
    serving: ServingApp
    runs: dict[str, Path] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return self.pg.dsn(self.dbname)

    def env(self, faults: str = "") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "RETRAINING_FAULTS"}
        env.update({
            "RETRAINING_CONFIG": str(self.folder / "model.yaml"),
            "AIRFLOW_CONN_RETRAINING_DB": json.dumps({"conn_type": "postgres", "host": "127.0.0.1",
                                                      "port": self.pg.port, "login": "postgres",
                                                      "schema": self.dbname}),
            "AIRFLOW_CONN_SERVING_API": json.dumps({"conn_type": "http", "host": "127.0.0.1",
                                                    "port": self.serving.port, "schema": "http"}),
            "PYTHONPATH": str(REPO),
            "FAULTS_MLFLOW_DB_RETRIES": "2",
        })
        if faults:
            env["RETRAINING_FAULTS"] = faults
        return env

    def state_file(self, end: datetime, run_type: str = "scheduled", **params: Any) -> Path:
        run_id = f"{run_type}__{(end - timedelta(hours=6)).isoformat()}"
        path = self.folder / f"run-{len(self.runs)}.json"
        path.write_text(json.dumps({
            "run": {"dag_id": "model_retraining", "run_id": run_id, "run_type": run_type,
                    "data_interval_start": (end - timedelta(hours=6)).isoformat(), "data_interval_end": end.isoformat(),
                    "params": params, "ti_id": uuid.uuid4().hex},
            "outputs": {}, "states": {}}))
        self.runs[run_id] = path
        return path

    def tasks(self, state: Path, *tasks: str, faults: str = "", wait: bool = True) -> subprocess.Popen | int:
        """Run ``tasks`` of the run in a new process (a killed one returns -9)."""
        proc = subprocess.Popen([sys.executable, "-m", "tests.faults.driver", str(state), *tasks], cwd=REPO,
                                env=self.env(faults), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not wait:
            return proc
        out, _ = proc.communicate(timeout=900)
        (self.folder / "driver.log").open("a").write(f"--- {tasks} faults={faults!r} rc={proc.returncode}\n{out}\n")
        return proc.returncode

    def run_id(self, state: Path) -> str:
        return json.loads(state.read_text())["run"]["run_id"]

    def states(self, state: Path) -> dict[str, str]:
        return json.loads(state.read_text())["states"]

    def query(self, statement: str, params: tuple = ()) -> list[dict[str, Any]]:
        conn = psycopg2.connect(self.dsn)
        with conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(statement, params)
            rows = [dict(r) for r in cur.fetchall()]
        conn.close()
        return rows

    def event(self, state: Path) -> dict[str, Any]:
        rows = self.query("SELECT * FROM model_retraining_events WHERE run_id = %s", (self.run_id(state),))
        assert len(rows) == 1, f"expected exactly one current row for {self.run_id(state)}, found {len(rows)}"
        return rows[0]

    def attempts(self, state: Path) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM model_retraining_event_attempts WHERE run_id = %s ORDER BY attempt",
                          (self.run_id(state),))

    def mlflow(self) -> Any:
        from mlflow import MlflowClient

        uri = f"sqlite:///{self.folder / 'mlflow.db'}"
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def alias(self, alias: str) -> int | None:
        try:
            return int(self.mlflow().get_model_version_by_alias(self.model_name, alias).version)
        except Exception:
            return None

    def versions(self) -> list[int]:
        return sorted(int(v.version) for v in self.mlflow().search_model_versions(f"name = '{self.model_name}'"))

    def serving_link(self) -> int | None:
        from include.retraining.release import serving

        return serving.current_version(self.folder / "serving", self.model_name)

    def assert_consistent(self) -> dict[str, Any]:
        """The end state every scenario must reach: one row per run, no open promotion, registry = events =
        champion history = serving link, no MLflow run of the DAG left RUNNING."""
        duplicates = self.query("SELECT run_id, count(*) AS n FROM model_retraining_events GROUP BY run_id "
                                "HAVING count(*) > 1")
        assert not duplicates, f"duplicate current rows: {duplicates}"
        open_promotions = self.query("SELECT * FROM model_promotions WHERE state NOT IN ('completed', 'reverted')")
        assert not open_promotions, f"unfinished promotions left: {open_promotions}"
        champion = self.alias("champion")
        history = self.query("SELECT version FROM model_champion_history WHERE registered_name = %s "
                             "ORDER BY effective_at DESC, id DESC LIMIT 1", (self.model_name,))
        assert history and history[0]["version"] == champion, f"champion history {history} vs registry v{champion}"
        deployed = self.query("SELECT run_id, champion_version_before, champion_version_after FROM "
                              "model_retraining_events WHERE deployed ORDER BY window_end DESC, id DESC LIMIT 1")
        assert deployed and deployed[0]["champion_version_after"] == champion, \
            f"newest deployed row {deployed} vs registry champion v{champion}"
        completed = self.query("SELECT target_version FROM model_promotions WHERE state = 'completed' "
                               "ORDER BY updated_at DESC, id DESC LIMIT 1")
        assert completed[0]["target_version"] == champion, f"last completed promotion {completed} vs v{champion}"
        assert self.serving_link() == champion, f"serving link v{self.serving_link()} vs champion v{champion}"
        experiment = self.mlflow().get_experiment_by_name(self.model_name)
        running = self.mlflow().search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
        assert not running, f"MLflow runs left RUNNING: {[r.info.run_id for r in running]}"
        return {"champion": champion, "rows": self.query("SELECT count(*) AS n FROM model_retraining_events")[0]["n"]}


def _config(folder: Path, model_name: str, storage: Path) -> dict[str, Any]:
    cfg = yaml.safe_load((REPO / "include" / "config" / "credit_risk.yaml").read_text())
    cfg["model"].update({"name": model_name, "type": "logistic_regression"})
    cfg["source"] = {"kind": "sql", "conn_id": "retraining_db", "table": TABLE}
    cfg["storage"] = {"uri": str(storage)}
    cfg["mlflow"] = {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": model_name}
    cfg["training"]["search"] = {"trials": 0}
    cfg["deploy"] = {"serving_dir": str(folder / "serving"), "reload_conn_id": "serving_api"}
    cfg["drift"]["report"] = False
    return cfg


@pytest.fixture(scope="module")
def fault_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgInstance]:
    root = Path("/tmp") / f"rt-fault-pg-{uuid.uuid4().hex[:8]}"  # the postgres user must reach it
    pg = PgInstance(root)
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="module")
def base(fault_pg: PgInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Champion v1 deployed for W1, built once; scenarios copy it."""
    folder = tmp_path_factory.mktemp("fault-base")
    serving = ServingApp()
    fault_pg.execute("CREATE DATABASE fault_base")
    from include.retraining import demo_data

    write_table(fault_pg.dsn("fault_base"), TABLE, demo_data.generate(TEST_STREAM))
    model_name = f"fault_{uuid.uuid4().hex[:6]}"
    (folder / "model.yaml").write_text(yaml.safe_dump(_config(folder, model_name, folder / "storage")))
    scenario = Scenario(fault_pg, "fault_base", folder, model_name, serving)
    state = scenario.state_file(W1)
    started = time.monotonic()
    assert scenario.tasks(state, "check", "decide", "collect", "prepare", "train", "evaluate_gate", "register",
                          "deploy", "record_outcome") == 0, (folder / "driver.log").read_text()[-4000:]
    print(f"[faults] base state (v1 deployed) in {time.monotonic() - started:.1f} s")
    assert scenario.alias("champion") == 1
    try:
        yield scenario
    finally:
        serving.close()


def _clone(source: Scenario, folder: Path) -> Scenario:
    """A copy of ``source``'s state: its database (as a template), MLflow store, serving folder, storage and runs."""
    name = f"fault_{uuid.uuid4().hex[:8]}"
    source.pg.execute(f"CREATE DATABASE {name} TEMPLATE {source.dbname}")
    shutil.copy(source.folder / "mlflow.db", folder / "mlflow.db")
    shutil.copytree(source.folder / "serving", folder / "serving", symlinks=True)
    shutil.copytree(source.folder / "storage", folder / "storage")
    (folder / "model.yaml").write_text(yaml.safe_dump(_config(folder, source.model_name, folder / "storage")))
    clone = Scenario(source.pg, name, folder, source.model_name, ServingApp())
    for run_id, state in source.runs.items():
        clone.runs[run_id] = folder / state.name
        shutil.copy(state, clone.runs[run_id])
    return clone


@contextlib.contextmanager
def _cloned(source: Scenario, folder: Path) -> Iterator[Scenario]:
    clone = _clone(source, folder)
    try:
        yield clone
    finally:
        clone.serving.close()
        with_retry(lambda: clone.pg.execute(f"DROP DATABASE IF EXISTS {clone.dbname} WITH (FORCE)"))


@pytest.fixture
def scenario(base: Scenario, tmp_path: Path) -> Iterator[Scenario]:
    """Champion v1, nothing else: a scenario that runs the drifted window W2 from its start."""
    with _cloned(base, tmp_path) as clone:
        yield clone


@pytest.fixture(scope="module")
def registered(base: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Champion v1 and W2's candidate v2 registered (gate passed), its deploy not run yet: built once."""
    with _cloned(base, tmp_path_factory.mktemp("fault-registered")) as clone:
        state = clone.state_file(W2)
        assert clone.tasks(state, "check", "decide", "collect", "prepare", "train", "evaluate_gate",
                           "register") == 0, (clone.folder / "driver.log").read_text()[-4000:]
        assert clone.versions() == [1, 2] and clone.alias("champion") == 1
        yield clone


@pytest.fixture
def before_deploy(registered: Scenario, tmp_path: Path) -> Iterator[tuple[Scenario, Path]]:
    """A copy of ``registered`` and W2's run state: the next task to run is ``deploy``."""
    with _cloned(registered, tmp_path) as clone:
        yield clone, clone.runs[f"scheduled__{(W2 - timedelta(hours=6)).isoformat()}"]


def with_retry(fn: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 600) -> None:
    """Until the task process reaches its fault point (``<path>.reached``)."""
    deadline = time.monotonic() + seconds
    reached = Path(f"{path}.reached")
    while not reached.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the task process ended (rc {proc.returncode}) before the fault point: "
                                 f"{proc.stdout.read() if proc.stdout else ''}"[-4000:])
        if time.monotonic() > deadline:
            raise AssertionError(f"fault point not reached in {seconds} s")
        time.sleep(0.1)


UTC = timezone.utc
