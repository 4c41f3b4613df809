"""Helpers shared by the test tiers (imported by conftest files as ``tests.support``)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def isolated_schema(pg_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Create a fresh schema, point ``retraining_db`` at it, yield its DSN, drop it afterwards."""
    schema = f"rt_test_{uuid.uuid4().hex[:10]}"
    base = " ".join(f"{k}={v}" for k, v in pg_server.items())
    with psycopg2.connect(base) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    conn.close()
    options = f"-csearch_path={schema}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_RETRAINING_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": pg_server["host"],
                "port": int(pg_server["port"]),
                "login": pg_server["user"],
                "schema": pg_server["dbname"],
                "extra": {"options": options},
            }
        ),
    )
    try:
        yield f"{base} options='{options}'"
    finally:
        with psycopg2.connect(base) as conn, conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()


