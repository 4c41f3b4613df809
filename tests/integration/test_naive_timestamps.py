"""A ``timestamp without time zone`` source column is read as UTC, whatever the session's time zone.

The source connection here forces its sessions to America/New_York (``-c timezone=...`` in the
connection's options, as a role or database default would). PostgreSQL compares a naive column with a
``timestamptz`` bound in the session's zone, so without the fix the window [18:00, 00:00) UTC read the
rows stamped 13:00-19:00. Every SQL path of the package (counts, the newest labelled row, the window's
rows, the drift summary computed inside PostgreSQL) must read exactly the rows stamped in the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import psycopg2
import pytest
from psycopg2 import sql

from include.retraining import sources
from include.retraining.config import RetrainingConfig

pytestmark = pytest.mark.integration

CONN_ID = "naive_source"
TABLE = "naive_events"
DAY = datetime(2026, 3, 6, tzinfo=timezone.utc)
START, END = DAY + timedelta(hours=18), DAY + timedelta(hours=24)  # [18:00, 00:00) UTC
NEW_YORK = "America/New_York"


@pytest.fixture
def naive_source(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RetrainingConfig]:
    """One row per minute of 2026-03-06 in a naive column (values are UTC wall-clock times), label = hour,
    and the connection ``naive_source`` whose sessions run in New York time."""
    stamps = pd.date_range(DAY.replace(tzinfo=None), periods=24 * 60, freq="min")
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE TABLE {} (ts timestamp without time zone, y int, x1 float8, c text)").format(
            sql.Identifier(TABLE)))
        cur.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(sql.Identifier(TABLE)),
                        [(ts.to_pydatetime(), ts.hour % 2, float(ts.hour), "c" + str(ts.hour % 3)) for ts in stamps])
        cur.execute("SELECT current_setting('search_path')")
        schema = cur.fetchone()[0]
    conn.close()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({
        "conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test",
        "extra": {"options": f"-csearch_path={schema} -c timezone={NEW_YORK}"},
    }))
    yield RetrainingConfig.model_validate({
        "model": {"name": "naive_tz", "type": "logistic_regression"},
        "source": {"kind": "sql", "conn_id": CONN_ID, "table": TABLE},
        "columns": {"timestamp": "ts", "label": "y", "numeric": ["x1"], "categorical": ["c"]},
        "storage": {"uri": "/nonexistent"},
        "drift": {"pushdown_min_rows": 0},
    })


def test_the_connection_really_runs_in_new_york_time_and_that_alone_misreads_the_window(
        naive_source: RetrainingConfig) -> None:
    from include.retraining.connections import resolve_dsn

    raw = resolve_dsn(CONN_ID)
    with psycopg2.connect(raw) as conn, conn.cursor() as cur:
        cur.execute("SHOW timezone")
        assert cur.fetchone()[0] == NEW_YORK
        cur.execute(sql.SQL("SELECT min(ts), max(ts) FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(TABLE)),
                    (START, END))
        first, last = cur.fetchone()
    conn.close()
    assert (first.hour, last.hour) == (13, 18)  # the hazard: 13:00-19:00 read for [18:00, 00:00) UTC
    with psycopg2.connect(sources.source_dsn(naive_source)) as conn, conn.cursor() as cur:
        cur.execute("SHOW timezone")
        assert cur.fetchone()[0] == "UTC"
        cur.execute("SHOW search_path")  # the connection's own options are kept
        assert cur.fetchone()[0].startswith("rt_test_")
    conn.close()


def test_every_sql_path_reads_exactly_the_utc_rows(naive_source: RetrainingConfig) -> None:
    counts = sources.count_window(naive_source, START, END)
    assert counts.rows == counts.labelled == 6 * 60

    frame = sources.load_window(naive_source, START, END)
    assert len(frame) == 6 * 60
    assert frame["ts"].min() == pd.Timestamp(START) and frame["ts"].max() == pd.Timestamp(END - timedelta(minutes=1))
    assert sorted(frame["x1"].unique()) == [18.0, 19.0, 20.0, 21.0, 22.0, 23.0]

    newest = sources.load_window(naive_source, START, END, newest=30)
    assert newest["ts"].min() == pd.Timestamp(END - timedelta(minutes=30))

    latest = sources.latest_labelled_time(naive_source, START)
    assert latest == START - timedelta(minutes=1)


def test_the_drift_summary_pushed_down_to_postgresql_reads_the_utc_rows(naive_source: RetrainingConfig) -> None:
    from include.retraining.monitoring import assessment
    from include.retraining.monitoring.drift import build_profile, summarize

    reference = sources.load_window(naive_source, None, None)
    profile = build_profile(reference, ["x1"], ["c"])
    summary, frame = assessment._read_window(naive_source, profile, START, END, rows=6 * 60)  # pushdown_min_rows=0
    assert summary["rows"] == 6 * 60
    assert len(frame) == 6 * 60
    expected = summarize(sources.load_window(naive_source, START, END), profile)
    assert summary["numeric"]["x1"]["counts"] == expected["numeric"]["x1"]["counts"]
    assert summary["categorical"]["c"]["counts"] == expected["categorical"]["c"]["counts"]
    assert np.isclose(summary["numeric"]["x1"]["mean"], 20.5)
