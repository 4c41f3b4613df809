"""The real Airflow scheduler for tests: LocalExecutor, a PostgreSQL metadata database, real processes.

``airflow_stack`` (module scope) creates a fresh database ``airflow_sched_<random>`` on the test
PostgreSQL server, a temporary ``AIRFLOW_HOME``, runs ``airflow db migrate`` and starts the three
processes a backfill needs in Airflow 3: ``api-server`` (tasks talk to its execution API, so every
process shares ``AIRFLOW__API_AUTH__JWT_SECRET``), ``dag-processor`` and ``scheduler``. Each one runs
in a process group of its own with its output in ``<tmp>/logs/<name>.log``; teardown kills the
groups (and any descendant that left them), checks with ``ps`` that nothing is left, and drops the
database. The in-process ``dag.test()`` tests keep their own SQLite Airflow home: the processes here
get their own ``AIRFLOW_HOME`` and ``SQL_ALCHEMY_CONN`` and ``os.environ`` is never changed.

The project side (events schema, MLflow store, model config) is the same as the integration
harness's: ``project`` is a :class:`tests.integration.conftest.Harness` and the processes receive
its ``AIRFLOW_CONN_RETRAINING_DB``, ``RETRAINING_CONFIG`` and ``RETRAINING_HOME``.

Scheduled runs are switched off (``[scheduler] use_job_schedule = False``): with it on, unpausing
``model_retraining`` (``catchup=False``) would create the latest scheduled run at once, a run whose
sensor waits hours for data of "now". Backfill runs are not affected by that option.

Other executors and processes: ``AirflowStack(..., executor="CeleryExecutor", extra_env={...})`` and
:meth:`AirflowStack.add_process` (for example ``airflow celery worker`` in a working directory of its own,
or a tracking server) start more processes with the three, in process groups the same teardown kills;
``api_apps="all"`` serves the REST API too (:meth:`AirflowStack.api`, with a token of the simple auth
manager's ``admin``). tests/distributed uses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2.extras import RealDictCursor

from tests.integration.conftest import Harness
from tests.support import REPO, isolated_schema

DAG_ID = "model_retraining"
BIN = Path(sys.executable).parent
AIRFLOW = BIN / "airflow"
PARALLELISM = 4
TERMINAL_RUN_STATES = {"success", "failed"}
PROJECT_ENV = ("AIRFLOW_CONN_RETRAINING_DB", "RETRAINING_CONFIG", "RETRAINING_HOME")

TIMINGS: list[tuple[str, float]] = []  # (what, seconds), printed in the terminal summary
_RUNNING: list[AirflowStack] = []  # stacks whose logs a failing test's report shows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def timing(what: str, seconds: float) -> None:
    TIMINGS.append((what, seconds))
    print(f"[scheduler harness] {what}: {seconds:.1f} s")


class StackError(RuntimeError):
    pass


@dataclass
class ExtraProcess:
    """A process started with the stack (after ``airflow db migrate``) and stopped with it.

    ``args`` is the whole command line; ``env`` is laid over the stack's environment; ``ready`` tells when
    it is ready (None: at once); ``task_logs`` is where task logs land when tasks run in it (diagnostics)."""

    name: str
    args: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    task_logs: Path | None = None


class AirflowStack:
    """Scheduler + dag-processor + api-server on a metadata database of their own."""

    PROCESSES = ("api-server", "dag-processor", "scheduler")

    def __init__(self, root: Path, pg_server: dict[str, str], project_env: dict[str, str],
                 executor: str = "LocalExecutor", extra_env: dict[str, str] | None = None,
                 api_apps: str = "execution") -> None:
        self.root = root
        self.home = root / "airflow"
        self.log_dir = root / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pg_server = pg_server
        self.db = f"airflow_sched_{secrets.token_hex(5)}"
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.started_at: float | None = None
        self.ready: dict[str, float] = {}  # what -> monotonic time it became ready
        self.ready_at: float | None = None
        self.watch_error: str | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.backfills: list[dict[str, Any]] = []
        self.executor = executor
        self.api_apps = api_apps
        self.extra: dict[str, ExtraProcess] = {}
        self._token: str | None = None
        self.env = self._environment(project_env)
        self.env.update(extra_env or {})

    # --- set-up -------------------------------------------------------------------------------

    def _admin_dsn(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.pg_server.items())

    @property
    def dsn(self) -> str:
        """libpq DSN of the metadata database (read by the test process with psycopg2)."""
        params = {**self.pg_server, "dbname": self.db}
        return " ".join(f"{k}={v}" for k, v in params.items())

    @property
    def sql_alchemy_conn(self) -> str:
        host, port, user = self.pg_server["host"], self.pg_server["port"], self.pg_server["user"]
        if str(host).startswith("/"):  # the embedded server listens on a Unix socket
            return f"postgresql+psycopg2://{user}@/{self.db}?host={host}&port={port}"
        return f"postgresql+psycopg2://{user}@{host}:{port}/{self.db}"

    def _environment(self, project_env: dict[str, str]) -> dict[str, str]:
        # Nothing of the in-process tests' Airflow set-up (AIRFLOW_HOME, AIRFLOW__*, connections) leaks in.
        # Nor pytest's variables: Airflow changes behaviour when it sees PYTEST_CURRENT_TEST / PYTEST_VERSION.
        env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME"
               and not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "PYTEST_"))}
        env.update(project_env)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                # this repo's plugins, as a deployment has them (the retraining page, the run-note listener)
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                # a paused DAG does not run its backfill: new DAGs start unpaused (checked in wait_ready)
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                # the LocalExecutor's log server: never the default 8793 another Airflow may hold
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
                "PATH": os.pathsep.join((str(BIN), os.environ.get("PATH", ""))),
                "RETRAINING_TASK_RETRIES": "0",
                "GIT_PYTHON_REFRESH": "quiet",
            }
        )
        return env

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command against this stack; its output goes to logs/cli.log too."""
        started = time.monotonic()
        result = subprocess.run([str(AIRFLOW), *args], env=self.env, cwd=self.root, capture_output=True,
                                text=True, timeout=timeout)
        with (self.log_dir / "cli.log").open("a") as log:
            log.write(f"$ airflow {' '.join(args)}  (exit {result.returncode}, "
                      f"{time.monotonic() - started:.1f} s)\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} failed (exit {result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{self.diagnostics()}")
        return result

    def _admin_sql(self, statement: str) -> None:
        """One statement outside a transaction (CREATE/DROP DATABASE) on the server's admin database."""
        conn = psycopg2.connect(self._admin_dsn())
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def add_process(self, process: ExtraProcess) -> None:
        """One more process to start with the stack (call before ``start``), e.g. a Celery worker."""
        if self.started_at is not None:
            raise StackError(f"add_process({process.name!r}) after start(): add every process before starting")
        if process.name in (*self.PROCESSES, *self.extra):
            raise StackError(f"a process named {process.name!r} is already part of the stack")
        self.extra[process.name] = process

    @property
    def expected_ready(self) -> int:
        return 3 + len(self.extra)

    def start(self) -> None:
        _RUNNING.append(self)
        self._admin_sql(f'CREATE DATABASE "{self.db}"')

        started = time.monotonic()
        self.airflow("db", "migrate")
        timing("airflow db migrate (fresh PostgreSQL database)", time.monotonic() - started)

        if self.api_apps == "all" or "core" in self.api_apps.split(","):
            self._write_admin_password()  # before the api-server starts: it keeps a password it finds
        self.started_at = time.monotonic()
        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                           "--apps", self.api_apps],
            "dag-processor": ["dag-processor"],
            "scheduler": ["scheduler"],
        }
        for name in self.PROCESSES:
            with (self.log_dir / f"{name}.log").open("ab") as log:
                # a session (and process group) of its own, so teardown can kill the whole tree
                self.procs[name] = subprocess.Popen(
                    [str(AIRFLOW), *commands[name]], env=self.env, cwd=self.root, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for name, extra in self.extra.items():
            with (self.log_dir / f"{name}.log").open("ab") as log:
                self.procs[name] = subprocess.Popen(
                    extra.args, env={**self.env, **extra.env}, cwd=extra.cwd, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # readiness is watched from now on, so the cold start is measured even while the test does other work
        self._watcher = threading.Thread(target=self._watch_readiness, name="airflow-readiness", daemon=True)
        self._watcher.start()

    def _check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise StackError(f"Airflow process(es) exited: {dead}\n{self.diagnostics()}")

    def _api_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/execution/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _watch_readiness(self, timeout: float = 240) -> None:
        """Note when the api-server answers, the scheduler heartbeats and the DAG is serialized (unpaused)."""
        assert self.started_at is not None
        try:
            while len(self.ready) < self.expected_ready and not self._stopping.is_set():
                now = time.monotonic()
                if now - self.started_at > timeout or any(p.poll() is not None for p in self.procs.values()):
                    return
                if "api-server" not in self.ready and self._api_healthy():
                    self.ready["api-server"] = now
                if "scheduler" not in self.ready and self.query(
                        "SELECT 1 FROM job WHERE job_type = 'SchedulerJob' AND state = 'running' "
                        "AND latest_heartbeat > now() - interval '30 seconds'"):
                    self.ready["scheduler"] = now
                if "dag serialized" not in self.ready:
                    rows = self.query("SELECT d.is_paused FROM dag d JOIN serialized_dag s ON s.dag_id = d.dag_id "
                                      "WHERE d.dag_id = %s", (DAG_ID,))
                    if rows:
                        if rows[0]["is_paused"]:  # a paused DAG does not run its backfill
                            self.airflow("dags", "unpause", DAG_ID)
                        self.ready["dag serialized"] = now
                    elif errors := self.query("SELECT filename, stacktrace FROM import_error"):
                        self.watch_error = f"DAG import errors: {errors}"
                        return
                for name, extra in self.extra.items():
                    if name not in self.ready and (extra.ready is None or extra.ready()):
                        self.ready[name] = time.monotonic()
                time.sleep(0.25)
        except Exception as exc:  # reported by wait_ready
            self.watch_error = f"{type(exc).__name__}: {exc}"

    def wait_ready(self, timeout: float = 240) -> None:
        """Until the api-server answers, the scheduler heartbeats and the DAG is serialized and unpaused."""
        if self.ready_at is not None:
            return
        assert self.started_at is not None, "start() first"
        self._watcher.join(timeout=max(0.0, self.started_at + timeout - time.monotonic()))
        self._check_alive()
        if self.watch_error or len(self.ready) < self.expected_ready:
            raise StackError(f"Airflow not ready after {time.monotonic() - self.started_at:.0f} s "
                             f"(ready: {sorted(self.ready)}; {self.watch_error or 'timed out'})\n{self.diagnostics()}")
        self.ready_at = max(self.ready.values())
        for what, at in sorted(self.ready.items(), key=lambda kv: kv[1]):
            timing(f"cold start: {what} ready", at - self.started_at)

    def log_of(self, name: str) -> Path:
        """The output (stdout and stderr) of one of the stack's processes."""
        return self.log_dir / f"{name}.log"

    # --- the REST API (api_apps "all" or "core") --------------------------------------------------

    def _write_admin_password(self) -> str:
        """The simple auth manager reads passwords from this file and keeps the ones it finds."""
        path = self.home / "simple_auth_manager_passwords.json.generated"
        if not path.exists():
            path.write_text(json.dumps({"admin": secrets.token_urlsafe(16)}) + "\n")
        return json.loads(path.read_text())["admin"]

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """One REST API call as ``admin`` (``path`` below ``/api/v2``); the decoded JSON answer."""
        if self.api_apps != "all" and "core" not in self.api_apps.split(","):
            raise StackError(f"the api-server serves only {self.api_apps!r}: create the stack with api_apps='all'")
        if self._token is None:
            self._token = self._request("POST", "/auth/token", {"username": "admin",
                                                                "password": self._write_admin_password()},
                                        timeout=timeout)["access_token"]
        return self._request(method, f"/api/v2{path}", body, timeout=timeout,
                             headers={"Authorization": f"Bearer {self._token}"})

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 30,
                 headers: dict[str, str] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise StackError(f"{method} {path} answered {exc.code}: {exc.read().decode(errors='replace')[:2000]}") from exc

    # --- the metadata database ------------------------------------------------------------------

    def query(self, statement: str, params: tuple = ()) -> list[dict[str, Any]]:
        try:
            conn = psycopg2.connect(self.dsn)
        except psycopg2.OperationalError as exc:
            raise StackError(f"cannot reach the metadata database {self.db}: {exc}") from exc
        try:
            with conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
                cur.execute(statement, params)
                return [dict(r) for r in cur.fetchall()]
        except psycopg2.errors.UndefinedTable:
            return []  # not migrated yet
        finally:
            conn.close()

    def backfill_runs(self, backfill_id: int) -> list[dict[str, Any]]:
        return self.query(
            "SELECT dr.run_id, dr.logical_date, dr.data_interval_start, dr.data_interval_end, dr.run_after, "
            "dr.state, dr.run_type, dr.clear_number, dr.start_date, dr.end_date, bdr.exception_reason "
            "FROM backfill_dag_run bdr LEFT JOIN dag_run dr ON dr.id = bdr.dag_run_id "
            "WHERE bdr.backfill_id = %s ORDER BY bdr.sort_ordinal", (backfill_id,))

    # --- backfills ------------------------------------------------------------------------------

    def wait_backfills_complete(self, timeout: float = 120) -> None:
        """Until the scheduler has marked every backfill complete (it looks every 30 s, and a DAG cannot
        have a second backfill before its first one is marked complete)."""
        deadline = time.monotonic() + timeout
        while pending := self.query("SELECT id FROM backfill WHERE completed_at IS NULL"):
            if time.monotonic() > deadline:
                raise StackError(f"backfill(s) {pending} not marked complete after {timeout:.0f} s\n{self.diagnostics()}")
            self._check_alive()
            time.sleep(1)
        for record in self.backfills:
            if record.get("completed_seconds") is None:
                record["completed_seconds"] = time.monotonic() - record["started"]
                timing(f"{record['label']}: create -> marked complete by the scheduler", record["completed_seconds"])

    def backfill(self, from_date: datetime, to_date: datetime, reprocess: str | None = None,
                 max_active_runs: int | None = None, timeout: float = 900) -> list[dict[str, Any]]:
        """``airflow backfill create`` over ``model_retraining``, then wait until the scheduler has run it.

        Returns one dict per date of the backfill, in its order (``run_id, logical_date,
        data_interval_start, data_interval_end, run_after, state, run_type, clear_number, start_date,
        end_date, exception_reason``; a date the backfill declined has no run: ``run_id`` None and
        ``exception_reason`` set), once every run is success or failed. The wall time is printed
        and kept in ``self.backfills``."""
        self.wait_ready()
        self.wait_backfills_complete()
        args = ["backfill", "create", "--dag-id", DAG_ID, "--from-date", from_date.isoformat(),
                "--to-date", to_date.isoformat()]
        if reprocess:
            args += ["--reprocess-behavior", reprocess]
        if max_active_runs:
            args += ["--max-active-runs", str(max_active_runs)]
        latest = self.query("SELECT coalesce(max(id), 0) AS id FROM backfill")[0]["id"]
        started = time.monotonic()
        self.airflow(*args)
        cli_seconds = time.monotonic() - started
        created = self.query("SELECT id FROM backfill WHERE dag_id = %s AND id > %s ORDER BY id", (DAG_ID, latest))
        if len(created) != 1:
            raise StackError(f"expected one new backfill, found {created}")
        backfill_id = created[0]["id"]

        while True:
            runs = self.backfill_runs(backfill_id)
            if runs and all(r["run_id"] is None or r["state"] in TERMINAL_RUN_STATES for r in runs):
                break
            if time.monotonic() > started + timeout:
                print(self.diagnostics())
                raise StackError(f"backfill {backfill_id} not finished after {timeout:.0f} s: "
                                 f"{[(r['run_id'], r['state']) for r in runs]}")
            self._check_alive()
            time.sleep(1)
        seconds = time.monotonic() - started
        label = (f"backfill {backfill_id} ({len(runs)} runs, max_active_runs {max_active_runs or 'default'}"
                 f"{', reprocess ' + reprocess if reprocess else ''})")
        self.backfills.append({"backfill_id": backfill_id, "label": label, "started": started, "runs": len(runs),
                               "cli_seconds": cli_seconds, "seconds": seconds, "completed_seconds": None})
        timing(f"{label}: create (CLI)", cli_seconds)
        timing(f"{label}: create -> all runs finished", seconds)
        for row in self.query(
                "SELECT ti.task_id, count(*) AS n, avg(extract(epoch FROM ti.end_date - ti.start_date)) AS run, "
                "avg(extract(epoch FROM ti.start_date - ti.queued_dttm)) AS wait FROM task_instance ti "
                "JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id "
                "JOIN backfill_dag_run b ON b.dag_run_id = dr.id "
                "WHERE b.backfill_id = %s AND ti.start_date IS NOT NULL AND ti.state <> 'skipped' "
                "GROUP BY ti.task_id ORDER BY min(ti.start_date)", (backfill_id,)):
            print(f"[scheduler harness]   {row['task_id']}: {row['n']} x {float(row['run'] or 0):.1f} s "
                  f"(queued -> started {float(row['wait'] or 0):.1f} s)")
        if any(r["state"] != "success" for r in runs):
            print(self.diagnostics())
        return runs

    # --- diagnostics and teardown -----------------------------------------------------------------

    def task_log_tails(self, states: tuple[str, ...] = ("failed", "upstream_failed")) -> str:
        parts = []
        for ti in self.query("SELECT dag_id, run_id, task_id, state, try_number FROM task_instance "
                             "WHERE state = ANY(%s) ORDER BY run_id, task_id", (list(states),)):
            roots = [self.home / "logs", *(e.task_logs for e in self.extra.values() if e.task_logs)]
            logs = sorted(log for root in roots for log in (
                root / f"dag_id={ti['dag_id']}" / f"run_id={ti['run_id']}" / f"task_id={ti['task_id']}").glob("**/*.log"))
            parts.append(f"--- task {ti['run_id']} / {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
            parts.extend(tail(log, 40) for log in logs[-1:])
        return "\n".join(parts)

    def diagnostics(self, lines: int = 60) -> str:
        parts = [f"=== Airflow stack: db {self.db}, home {self.home}, api port {self.port}"]
        for name in (*self.PROCESSES, *self.extra, "cli"):
            path = self.log_dir / f"{name}.log"
            if path.exists():
                parts.append(f"--- {path} (last {lines} lines)\n{tail(path, lines)}")
        try:
            parts.append(self.task_log_tails())
        except StackError as exc:
            parts.append(str(exc))
        return "\n".join(parts)

    def _descendants(self) -> dict[int, str]:
        """Every live process this stack started: its process groups and their descendants (pid -> start time,
        so a pid the kernel has reused for another process is never signalled)."""
        groups = {p.pid for p in self.procs.values()}
        table: dict[int, tuple[int, int, str]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()  # state ppid pgrp session ... (starttime is the 20th)
            if fields[0] != "Z":
                table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[19])
        found = {pid for pid, (_, pgrp, _) in table.items() if pgrp in groups}
        while children := {pid for pid, (ppid, _, _) in table.items() if ppid in found and pid not in found}:
            found |= children
        return {pid: table[pid][2] for pid in found}

    def _kill(self, processes: dict[int, str]) -> set[int]:
        alive = self._descendants()
        killed = set()
        for pid, started in processes.items():
            if alive.get(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
        return killed

    def stop(self) -> None:
        started = time.monotonic()
        try:
            self._stop()
        finally:
            timing("teardown: processes stopped, database dropped", time.monotonic() - started)

    def _stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        problem = None
        try:
            if self.procs:
                problem = self._terminate()
        finally:
            if self in _RUNNING:
                _RUNNING.remove(self)
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        if problem:
            raise StackError(problem)

    def _terminate(self) -> str | None:
        """SIGTERM to the process groups, SIGKILL to what outlives 30 s; a message if anything is left."""
        before = self._descendants()
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        signalled = time.monotonic()
        exited: dict[str, float] = {}  # name -> seconds from SIGTERM to exit
        while len(exited) < len(self.procs) and time.monotonic() < signalled + 30:
            for name, proc in self.procs.items():
                if name not in exited and proc.poll() is not None:
                    exited[name] = time.monotonic() - signalled
            time.sleep(0.1)
        if slow := {name: exited.get(name) for name in self.procs if exited.get(name, 30) > 5}:
            print("[scheduler harness] slow to stop on SIGTERM: " + ", ".join(
                f"{name} {'still running' if t is None else f'{t:.1f} s'}" for name, t in slow.items()))
        time.sleep(0.5)
        # what outlived SIGTERM, also a descendant that left the process groups (still known from `before`)
        killed = self._kill({**before, **self._descendants()})
        if killed:
            print(f"[scheduler harness] SIGKILLed processes that outlived SIGTERM: {sorted(killed)}")
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        time.sleep(0.2)
        remaining = self._descendants()
        # and as ps sees it: the sessions (= process groups) of the three processes, zombies aside
        sessions = ",".join(str(p.pid) for p in self.procs.values())
        ps = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", sessions], capture_output=True, text=True).stdout
        listed = [line for line in ps.splitlines() if line.split() and not line.split()[1].startswith("Z")]
        if remaining or listed:
            return f"processes left behind: {sorted(remaining)}\n" + "\n".join(listed)
        return None


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def inprocess_dag() -> Any:
    """``model_retraining`` for ``dag.test()`` runs in this process (the tests' own SQLite Airflow home)."""
    subprocess.run([str(AIRFLOW), "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    return bag.dags[DAG_ID]


@pytest.fixture(scope="module")
def project(inprocess_dag: Any, pg_server: dict[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The project's side, as the integration tests have it: events schema, MLflow store, model config."""
    with pytest.MonkeyPatch.context() as mp, isolated_schema(pg_server, mp) as dsn:
        h = Harness(dag=inprocess_dag, dsn=dsn, folder=tmp_path_factory.mktemp("project"))
        mp.setenv("RETRAINING_CONFIG", str(h.configure()))
        yield h


@pytest.fixture(scope="module")
def airflow_stack(project: Harness, pg_server: dict[str, str],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """A running scheduler, dag-processor and api-server whose tasks see ``project``'s schema and config.

    The processes are started here and not waited for: ``backfill()`` (or ``wait_ready()``) waits,
    so a test can do its in-process set-up while Airflow starts."""
    stack = AirflowStack(tmp_path_factory.mktemp("airflow-scheduler"), pg_server,
                         {name: os.environ[name] for name in PROJECT_ENV})
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


# --- reporting -------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.failed:
        for stack in _RUNNING:
            report.sections.append((f"Airflow stack {stack.db}", stack.diagnostics()))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS and not getattr(terminalreporter, "_retraining_timings_shown", False):
        terminalreporter._retraining_timings_shown = True  # once, however often this conftest is registered
        terminalreporter.section("scheduler harness timings")
        for what, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:8.1f} s  {what}")


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=str, indent=1)
