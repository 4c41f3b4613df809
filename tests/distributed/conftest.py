"""A distributed deployment for tests: CeleryExecutor, two workers that share no local files, S3 storage.

What runs (all started by the fixtures, all stopped and dropped afterwards):

- an S3-compatible object store: moto's ``ThreadedMotoServer`` on a free port of 127.0.0.1, with one
  bucket; the only place where snapshots, prepared splits, reference profiles and MLflow artifacts live;
- an MLflow tracking server (``mlflow server``): its backend store a fresh PostgreSQL database, its
  artifacts proxied to ``s3://<bucket>/mlflow`` (``--artifacts-destination``), so the workers reach
  MLflow's artifacts through the tracking URL alone (no ``MLFLOW_S3_ENDPOINT_URL`` on the workers), as in
  a production deployment where the tracking server holds the store's credentials;
- the scheduler harness of tests/scheduler (:class:`tests.scheduler.conftest.AirflowStack`: api-server
  with the REST API, dag-processor, scheduler, on a fresh PostgreSQL metadata database) switched to
  the ``CeleryExecutor``: broker this machine's Redis (a database number of its own, flushed before
  and after), result backend the metadata database;
- two ``airflow celery worker`` processes (``worker-a``, ``worker-b``, concurrency 1, queues
  ``default`` and their own name), each started in a fresh temporary folder: its own working directory,
  its own ``RETRAINING_HOME``, ``TMPDIR`` and task-log folder. Different folders alone would not stop a
  task from reading the other worker's file by its absolute path (an XCom carrying a local path), since
  both run on this machine: each worker also runs in a mount namespace of its own (``unshare``) in which
  the other worker's folder is an empty, unreadable tmpfs, so neither can read a file the other wrote.
  Where mount namespaces are not allowed (no root, no user namespaces) the workers run without that
  wall, the test says so, and under ``CI`` it fails. Each reports its name as the task instances'
  ``hostname`` (see ``worker_identity.py``); a cluster policy (``cluster_policy.py``) sends the tasks
  that hand files to each other to alternate workers.

The project's side (events and source tables) is an isolated PostgreSQL schema as in the other tiers,
the model configuration a YAML file written by :class:`tests.integration.conftest.Harness` with
``storage.uri: s3://<bucket>/storage`` and the tracking server's URL.

Set ``RETRAINING_SKIP_DISTRIBUTED=1`` (or deselect with ``-m "not distributed"``) to skip this tier.
Redis: ``RETRAINING_TEST_REDIS`` (default ``redis://127.0.0.1:6379/13``).
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.integration.conftest import Harness
from tests.scheduler.conftest import (
    AIRFLOW,
    BIN,
    TIMINGS,
    AirflowStack,
    ExtraProcess,
    free_port,
    timing,
)
from tests.scheduler.conftest import pytest_runtest_makereport as _stack_report
from tests.support import isolated_schema

from .worker_identity import WORKER_ENV_VAR

HERE = Path(__file__).resolve().parent

SKIP_ENV_VAR = "RETRAINING_SKIP_DISTRIBUTED"
REDIS_ENV_VAR = "RETRAINING_TEST_REDIS"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"  # a database number nothing else here uses
WORKERS = ("worker-a", "worker-b")  # also the names of their own queues (cluster_policy.PINNED)
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1"}
# Small enough for a test: one fit with the configured values (no search), a few trees.
TRAINING_OVERRIDES: dict[str, Any] = {
    "training.search": {"trials": 0, "folds": 2},
    "model.hyperparameters.xgboost": {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.1},
}

pytest_runtest_makereport = _stack_report  # a failing test's report shows the stack's logs


def skip_requested() -> bool:
    return os.environ.get(SKIP_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


# Run as `sh -c HIDE sh <folder>... -- <command>...` inside a private mount namespace: each folder becomes an
# empty tmpfs no one may enter (mode 000 is no bar to root, but the tmpfs is empty), then the command runs.
HIDE = ('while [ "$1" != -- ]; do mount -t tmpfs -o size=64k,mode=000 retraining-hidden "$1" || exit 97; shift; done; '
        'shift; exec "$@"')


@functools.cache
def mount_namespace() -> tuple[str, ...] | None:
    """The ``unshare`` prefix that gives a process a mount table of its own, if this machine allows one."""
    for prefix in (("unshare", "--mount", "--propagation", "private"),
                   ("unshare", "--user", "--map-root-user", "--mount", "--propagation", "private")):
        folder = tempfile.mkdtemp(prefix="retraining-ns-probe-")
        try:
            probe = subprocess.run([*prefix, "sh", "-c", HIDE, "sh", folder, "--", "true"], capture_output=True,
                                   timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        finally:
            os.rmdir(folder)
        if probe.returncode == 0:
            return prefix
    return None


def _log_says(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except OSError:
        return False


# --- the object store -------------------------------------------------------------------------------------


@dataclass
class ObjectStore:
    """moto's S3 on 127.0.0.1:<port> and the test's bucket."""

    endpoint: str
    bucket: str
    client: Any

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach the store: botocore/s3fs/pyarrow read ``AWS_ENDPOINT_URL``."""
        return {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(obj["Key"] for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                      for obj in page.get("Contents", []))


@pytest.fixture(scope="module")
def object_store() -> Iterator[ObjectStore]:
    import boto3
    from moto.server import ThreadedMotoServer

    started = time.monotonic()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        store = ObjectStore(endpoint=endpoint, bucket=f"retraining-{secrets.token_hex(4)}", client=client)
        client.create_bucket(Bucket=store.bucket)
        timing("moto S3 server + bucket", time.monotonic() - started)
        yield store
    finally:
        server.stop()


# --- the broker -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """This machine's Redis, one database number, empty before and after the test."""
    import redis

    url = os.environ.get(REDIS_ENV_VAR, DEFAULT_REDIS)
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"no Redis at {url} for the Celery broker ({exc}): start one, set {REDIS_ENV_VAR} to "
                    f"another, or skip this tier with {SKIP_ENV_VAR}=1")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- databases --------------------------------------------------------------------------------------------


def _admin_sql(pg_server: dict[str, str], statement: str) -> None:
    conn = psycopg2.connect(" ".join(f"{k}={v}" for k, v in pg_server.items()))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def _sqlalchemy_url(pg_server: dict[str, str], db: str, driver: str = "postgresql") -> str:
    host, port, user = pg_server["host"], pg_server["port"], pg_server["user"]
    if str(host).startswith("/"):  # the embedded server listens on a Unix socket
        return f"{driver}://{user}@/{db}?host={host}&port={port}"
    return f"{driver}://{user}@{host}:{port}/{db}"


@pytest.fixture(scope="module")
def mlflow_database(pg_server: dict[str, str]) -> Iterator[str]:
    """A fresh PostgreSQL database for the tracking server's backend store; its SQLAlchemy URL."""
    db = f"mlflow_dist_{secrets.token_hex(5)}"
    _admin_sql(pg_server, f'CREATE DATABASE "{db}"')
    try:
        yield _sqlalchemy_url(pg_server, db)
    finally:
        _admin_sql(pg_server, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


# --- the deployment ---------------------------------------------------------------------------------------


@dataclass
class Worker:
    name: str
    root: Path  # everything of this worker: cwd/, home/, tmp/, logs/, worker.pid

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def hostname_prefix(self) -> str:
        return f"{self.name}."

    def files(self) -> list[Path]:
        """Every file in the worker's working directory, RETRAINING_HOME and TMPDIR (not its task logs)."""
        return sorted(p for folder in (self.cwd, self.home, self.tmp) for p in folder.rglob("*") if p.is_file())


@dataclass
class Deployment:
    stack: AirflowStack
    project: Harness
    store: ObjectStore
    workers: list[Worker]
    mlflow_url: str
    started: float  # monotonic time the fixture began (cold start)
    walled: bool  # each worker in a mount namespace where the other's folder is hidden

    def mlflow(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.mlflow_url, registry_uri=self.mlflow_url)


@pytest.fixture(scope="module")
def deployment(pg_server: dict[str, str], object_store: ObjectStore, broker_url: str, mlflow_database: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The whole distributed deployment, started (not yet waited for: ``stack.wait_ready()``)."""
    started = time.monotonic()
    root = tmp_path_factory.mktemp("distributed")
    mlflow_port = free_port()
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    with pytest.MonkeyPatch.context() as mp, isolated_schema(pg_server, mp) as dsn:
        project = Harness(dag=None, dsn=dsn, folder=root / "project")
        project.folder.mkdir()
        config = project.configure(**{
            "storage.uri": f"s3://{object_store.bucket}/storage",
            "mlflow.tracking_uri": mlflow_url,
            "mlflow.experiment": project.model_name,
            **TRAINING_OVERRIDES,
        })
        project_env = {
            "AIRFLOW_CONN_RETRAINING_DB": os.environ["AIRFLOW_CONN_RETRAINING_DB"],  # set by isolated_schema
            "RETRAINING_CONFIG": str(config),
            # the folder of model configs holds only this model: one retraining DAG, as before the fleet
            "RETRAINING_CONFIG_DIR": str(project.folder),
            "RETRAINING_HOME": str(root / "scheduler-home"),
        }
        stack = AirflowStack(root / "airflow", pg_server, project_env, executor="CeleryExecutor",
                             api_apps="all", extra_env={
                                 **object_store.env,
                                 "AIRFLOW__CELERY__BROKER_URL": broker_url,
                                 "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
                                 "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
                             })
        # the result backend: the metadata database, as in Airflow's docker-compose
        stack.env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + stack.sql_alchemy_conn
        # the cluster policy that alternates the file-handing tasks between the workers
        (stack.home / "config").mkdir()
        shutil.copy(HERE / "cluster_policy.py", stack.home / "config" / "airflow_local_settings.py")

        mlflow_dir = root / "mlflow-server"
        mlflow_dir.mkdir()
        stack.add_process(ExtraProcess(
            name="mlflow-server",
            args=[str(BIN / "mlflow"), "server", "--backend-store-uri", mlflow_database,
                  "--artifacts-destination", f"s3://{object_store.bucket}/mlflow",
                  "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
            cwd=mlflow_dir,
            # the server's background jobs (GenAI evaluation, periodic clean-ups: eight more processes) are not
            # used here and would double its start-up and shut-down time
            env={"MLFLOW_S3_ENDPOINT_URL": object_store.endpoint, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            ready=lambda: _http_ok(f"{mlflow_url}/health"),
        ))
        workers = [Worker(name=name, root=tmp_path_factory.mktemp(name)) for name in WORKERS]
        namespace = mount_namespace()
        if namespace is None:
            print("[distributed] WARNING: no mount namespaces here (unshare failed): the workers run in separate "
                  "folders but could read each other's files by absolute path")
        for worker in workers:
            name = worker.name
            for folder in (worker.cwd, worker.home, worker.tmp, worker.logs):
                folder.mkdir()
            command = [str(AIRFLOW), "celery", "worker", "-H", f"{name}@%h", "-q", f"default,{name}", "-c", "1",
                       "--pid", str(worker.root / "worker.pid")]
            if namespace:
                others = [str(w.root) for w in workers if w is not worker]
                command = [*namespace, "sh", "-c", HIDE, "sh", *others, "--", *command]
            log = stack.log_of(name)
            stack.add_process(ExtraProcess(
                name=name,
                args=command,
                cwd=worker.cwd,
                env={
                    "RETRAINING_HOME": str(worker.home),
                    "TMPDIR": str(worker.tmp),
                    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(worker.logs),
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.distributed.worker_identity.hostname",
                    WORKER_ENV_VAR: name,
                },
                ready=lambda log=log, name=name: _log_says(log, f"{name}@") and _log_says(log, " ready."),
                task_logs=worker.logs,
            ))
        try:
            stack.start()
            yield Deployment(stack=stack, project=project, store=object_store, workers=workers,
                             mlflow_url=mlflow_url, started=started, walled=namespace is not None)
        finally:
            stack.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS and not getattr(terminalreporter, "_retraining_distributed_timings_shown", False):
        terminalreporter._retraining_distributed_timings_shown = True
        terminalreporter.section("distributed harness timings")
        for what, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:8.1f} s  {what}")
