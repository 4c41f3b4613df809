"""Time the current window's drift histograms on a large window: in PostgreSQL, or over Parquet in batches.

SQL mode (default): builds a table of N rows x 20 numeric + 5 categorical columns inside
PostgreSQL with ``generate_series`` (in a schema of its own, dropped afterwards; no row
passes through Python), takes reference edges at the deciles of a 1% sample, then times
:func:`include.retraining.monitoring.window_histograms.sql_histograms` over the whole table.

Parquet mode (``--parquet``): a child process writes N rows to Parquet files in chunks
(so the writing does not count towards this process's memory), then this process times
:func:`include.retraining.monitoring.window_histograms.parquet_histograms` over them.

Each run prints the wall time, rows per second and the Python process's peak resident
memory (``ru_maxrss``: the high-water mark, imports included), and the peak before the
call (with pandas, pyarrow and psycopg2 already imported) for comparison.

Usage (from the repository root)::

    .venv/bin/python benchmarks/sql_histograms.py [--rows 10000000] [--repeat 2] [--dsn DSN]
    .venv/bin/python benchmarks/sql_histograms.py --parquet [--rows 1000000] [--batch-rows 1000000]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DSN = os.environ.get("RETRAINING_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
NUMERIC = [f"x{i:02d}" for i in range(1, 21)]
# (name, number of categories, share of NULLs)
CATEGORICAL = [
    ("country", 30, 0.01),
    ("channel", 5, 0.0),
    ("plan", 12, 0.02),
    ("device", 200, 0.0),
    ("region", 1000, 0.05),
]
BINS = 10


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def numeric_sql(i: int) -> str:
    """Four shapes in turn: uniform, normal (Box-Muller), whole numbers (ties on the edges), exponential; some NULLs."""
    shape = [
        "random() * 100",
        "50 + 10 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())",
        "floor(random() * 20)",
        "-ln(1 - random())",
    ][i % 4]
    return f"CASE WHEN random() < 0.01 THEN NULL ELSE {shape} END" if i % 3 == 0 else shape


def build_table(dsn: str, schema: str, rows: int) -> None:
    import psycopg2
    from psycopg2 import sql

    columns = [sql.SQL("{} + g * interval '1 second' AS ts").format(sql.Literal(T0))]
    columns += [sql.SQL(numeric_sql(i) + "::float8 AS {}").format(sql.Identifier(c)) for i, c in enumerate(NUMERIC)]
    for name, k, nulls in CATEGORICAL:
        value = f"'{name}_' || floor(random() * {k})::int"
        expr = f"CASE WHEN random() < {nulls} THEN NULL ELSE {value} END" if nulls else value
        columns.append(sql.SQL(expr + " AS {}").format(sql.Identifier(name)))
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        cur.execute("SELECT setseed(0.42)")
        cur.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {} FROM generate_series(0, %s) AS g").format(
                sql.Identifier(schema, "events"), sql.SQL(", ").join(columns)
            ),
            [rows - 1],
        )
        cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, "events")))
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [f"{schema}.events"])
        print(f"table {schema}.events: {rows:,} rows, {cur.fetchone()[0]}", flush=True)
    conn.close()


def reference_edges(dsn: str, schema: str) -> dict[str, list[float]]:
    """Decile edges of each numeric column in a 1% sample, computed by PostgreSQL (only the edges come back)."""
    import psycopg2
    from psycopg2 import sql

    fractions = [i / BINS for i in range(1, BINS)]
    select = sql.SQL(", ").join(
        sql.SQL("percentile_cont(%s::float8[]) WITHIN GROUP (ORDER BY {})").format(sql.Identifier(c)) for c in NUMERIC
    )
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM (1) REPEATABLE (7)").format(
                select, sql.Identifier(schema, "events")
            ),
            [fractions] * len(NUMERIC),
        )
        row = cur.fetchone()
    conn.close()
    return {c: sorted(set(edges)) for c, edges in zip(NUMERIC, row, strict=True)}


def run_sql(args: argparse.Namespace) -> None:
    from psycopg2 import sql

    from include.retraining.monitoring.window_histograms import sql_histograms

    schema = f"bench_histograms_{os.getpid()}"
    started = time.perf_counter()
    try:
        build_table(args.dsn, schema, args.rows)
        print(f"built in {time.perf_counter() - started:.1f}s", flush=True)
        edges = reference_edges(args.dsn, schema)
        end = T0 + timedelta(seconds=args.rows)
        categorical = [name for name, _, _ in CATEGORICAL]
        for run in range(1, args.repeat + 1):
            report(
                f"sql run {run}",
                args.rows,
                lambda: sql_histograms(args.dsn, sql.Identifier(schema, "events"), "ts", T0, end, edges, categorical),
            )
    finally:
        import psycopg2

        conn = psycopg2.connect(args.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.close()
        print(f"dropped schema {schema}")


def write_parquet(directory: str, rows: int, chunk_rows: int) -> None:
    """N rows in files of ``chunk_rows``, generated chunk by chunk (run in a child process)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(42)
    for index, first in enumerate(range(0, rows, chunk_rows)):
        n = min(chunk_rows, rows - first)
        data: dict[str, pa.Array] = {
            "ts": pa.array(
                np.datetime64(T0.replace(tzinfo=None), "s") + np.arange(first, first + n), pa.timestamp("s", "UTC")
            )
        }
        for i, col in enumerate(NUMERIC):
            values = [
                rng.random(n) * 100,
                rng.normal(50, 10, n),
                np.floor(rng.random(n) * 20),
                rng.exponential(1.0, n),
            ][i % 4]
            mask = rng.random(n) < 0.01 if i % 3 == 0 else None
            data[col] = pa.array(values, mask=mask)
        for name, k, nulls in CATEGORICAL:
            labels = np.array([f"{name}_{j}" for j in range(k)], dtype=object)[rng.integers(0, k, n)]
            data[name] = pa.array(labels, mask=rng.random(n) < nulls if nulls else None)
        pq.write_table(pa.table(data), Path(directory) / f"part-{index:05d}.parquet", row_group_size=256 * 1024)


def run_parquet(args: argparse.Namespace) -> None:
    import numpy as np

    from include.retraining.monitoring.window_histograms import parquet_histograms

    directory = tempfile.mkdtemp(prefix="bench-histograms-")
    try:
        started = time.perf_counter()
        writer = multiprocessing.get_context("spawn").Process(
            target=write_parquet, args=(directory, args.rows, args.chunk_rows)
        )
        writer.start()
        writer.join()
        if writer.exitcode:
            raise SystemExit(f"writing the Parquet files failed (exit code {writer.exitcode})")
        paths = sorted(str(p) for p in Path(directory).glob("*.parquet"))
        size = sum(Path(p).stat().st_size for p in paths) / 2**20
        print(
            f"wrote {args.rows:,} rows to {len(paths)} file(s), {size:.0f} MB, in {time.perf_counter() - started:.1f}s"
        )
        # the reference edges of the generating distributions' deciles, as a profile would hold them
        deciles = np.linspace(0, 1, BINS + 1)[1:-1]
        shapes = [
            [float(q * 100) for q in deciles],
            [50.0 + 10.0 * float(z) for z in (-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816)],
            [float(v) for v in range(2, 20, 2)],
            [float(-np.log(1 - q)) for q in deciles],
        ]
        edges = {col: shapes[i % 4] for i, col in enumerate(NUMERIC)}
        end = T0 + timedelta(seconds=args.rows)
        categorical = [name for name, _, _ in CATEGORICAL]
        for run in range(1, args.repeat + 1):
            report(
                f"parquet run {run}",
                args.rows,
                lambda: parquet_histograms(paths, "ts", T0, end, edges, categorical, batch_rows=args.batch_rows),
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def report(label: str, rows: int, call: Callable[[], dict[str, Any]]) -> None:
    before = peak_rss_mb()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    assert result["rows"] == rows, (result["rows"], rows)
    counted = sum(result["numeric"]["x01"]["counts"]) + result["numeric"]["x01"]["missing"]
    assert counted == rows, (counted, rows)
    print(
        f"{label}: {rows:,} rows in {seconds:.2f}s = {rows / seconds:,.0f} rows/s; "
        f"peak RSS {peak_rss_mb():.0f} MB (before the call {before:.0f} MB)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None, help="rows (default 10,000,000; 1,000,000 with --parquet)")
    parser.add_argument("--parquet", action="store_true", help="time parquet_histograms instead of sql_histograms")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL to build the table in (SQL mode)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs (the first may read from a cold cache)")
    parser.add_argument("--batch-rows", type=int, default=1_000_000, help="parquet_histograms batch size")
    parser.add_argument("--chunk-rows", type=int, default=250_000, help="rows per Parquet file written")
    args = parser.parse_args()
    args.rows = args.rows or (1_000_000 if args.parquet else 10_000_000)
    logging.basicConfig(level=logging.INFO, format="  %(name)s: %(message)s")
    # The libraries first, so that "before the call" is the baseline the call's own memory adds to.
    import pandas  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import include.retraining.monitoring.window_histograms  # noqa: F401

    if args.parquet:
        run_parquet(args)
    else:
        run_sql(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
