"""Time the window's drift histograms where the data lives, against one scan of the same rows.

PostgreSQL: builds (or reuses) a table of N rows x 20 numeric + 5 categorical columns with
``generate_series`` in the schema ``bench_histograms`` (no row passes through Python; about
245 bytes a row on disk: 2.4 GB for 10M rows), takes ~100 fine edges per numeric feature
(percentiles of a 1% sample, as a profile holds them) and reference bounds, then times in one run:

* ``SELECT count(*)`` of the window (the same ``WHERE``): the scan the push-down is measured against;
* the push-down as the drift check runs it (:func:`sql_histograms` with its defaults: exact up to
  ``SAMPLE_ABOVE_ROWS`` rows, a block sample of ``SAMPLE_ROWS`` rows above);
* with ``--exact``, the exact push-down on every row, and the error of the sample against it on
  every statistic of the summary.

DuckDB (unless ``--no-parquet``): a child process has DuckDB write the same kind of rows to
Parquet (~130 bytes a row); this process times one pass over every column of the window
(``count(*)`` alone reads only the files' metadata) and :func:`file_histograms` with its
defaults (sampled above the same threshold), with ``--exact`` exact too and the sample's error
(``--arrow`` also times the pyarrow batch path).

Each line prints seconds, the ratio to the count and this process's peak RSS (``ru_maxrss``, imports
included); the run ends with ``uptime``: the machine is shared, read the figures with its load.

Usage (from the repository root)::

    .venv/bin/python benchmarks/sql_histograms.py [--rows 10000000] [--exact] [--keep] [--no-parquet]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
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
SCHEMA = "bench_histograms"
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
PERCENTILES = 100  # fine bins per numeric feature, as a profile's fine_edges


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def numeric_sql(i: int, rand: str = "random()") -> str:
    """Four shapes in turn: uniform, normal (Box-Muller), whole numbers (ties on the edges), exponential; some NULLs."""
    shape = [
        f"{rand} * 100",
        f"50 + 10 * sqrt(-2 * ln(1 - {rand})) * cos(2 * pi() * {rand})",
        f"floor({rand} * 20)",
        f"-ln(1 - {rand})",
    ][i % 4]
    return f"CASE WHEN {rand} < 0.01 THEN NULL ELSE {shape} END" if i % 3 == 0 else shape


def select_list(rand: str, timestamp: str, to_double: str) -> str:
    columns = [f"{timestamp} AS ts"]
    columns += [f"CAST({numeric_sql(i, rand)} AS {to_double}) AS {c}" for i, c in enumerate(NUMERIC)]
    for name, k, nulls in CATEGORICAL:
        value = f"'{name}_' || CAST(floor({rand} * {k}) AS INTEGER)"
        columns.append(f"CASE WHEN {rand} < {nulls} THEN NULL ELSE {value} END AS {name}" if nulls else
                       f"{value} AS {name}")
    return ", ".join(columns)


# --------------------------------------------------------------------------- PostgreSQL


def ensure_table(dsn: str, rows: int) -> str:
    """``bench_histograms.events_<rows>``, built once with generate_series and reused while it exists."""
    import psycopg2

    table = f"{SCHEMA}.events_{rows}"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if cur.fetchone()[0]:
            print(f"reusing table {table}", flush=True)
        else:
            started = time.perf_counter()
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            cur.execute("SELECT setseed(0.42)")
            timestamp = f"timestamptz '{T0.isoformat()}' + g * interval '1 second'"
            cur.execute(f"CREATE UNLOGGED TABLE {table} AS SELECT {select_list('random()', timestamp, 'float8')} "
                        "FROM generate_series(0, %s) AS g", [rows - 1])
            cur.execute(f"VACUUM (ANALYZE) {table}")
            print(f"built {table} in {time.perf_counter() - started:.1f}s", flush=True)
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [table])
        print(f"table {table}: {rows:,} rows, {cur.fetchone()[0]} on disk", flush=True)
    conn.close()
    return table


def reference(dsn: str, table: str) -> tuple[dict[str, list[float]], dict[str, tuple[float, float]]]:
    """Percentile edges and [min, max] bounds of each numeric column in a 1% sample (only these come back)."""
    import psycopg2

    fractions = [i / PERCENTILES for i in range(1, PERCENTILES)]
    select = ", ".join(f"percentile_cont(%s::float8[]) WITHIN GROUP (ORDER BY {c}), min({c}), max({c})"
                       for c in NUMERIC)
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {select} FROM {table} TABLESAMPLE SYSTEM (1) REPEATABLE (7)", [fractions] * len(NUMERIC))
        row = cur.fetchone()
    conn.close()
    edges = {c: sorted(set(row[3 * i])) for i, c in enumerate(NUMERIC)}
    bounds = {c: (row[3 * i + 1], row[3 * i + 2]) for i, c in enumerate(NUMERIC)}
    return edges, bounds


def timed(label: str, call: Callable[[], Any], scan: float | None = None) -> tuple[float, Any]:
    before = peak_rss_mb()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    ratio = f" = {seconds / scan:.2f}x the count" if scan else ""
    print(f"  {label}: {seconds:.2f}s{ratio}; peak RSS {peak_rss_mb():.0f} MB (before {before:.0f} MB)", flush=True)
    return seconds, result


def run_sql(args: argparse.Namespace) -> None:
    import psycopg2
    from psycopg2 import sql

    from include.retraining.monitoring import window_histograms
    from include.retraining.monitoring.window_histograms import sql_histograms

    table = ensure_table(args.dsn, args.rows)
    edges, bounds = reference(args.dsn, table)
    end = T0 + timedelta(seconds=args.rows)
    categorical = [name for name, _, _ in CATEGORICAL]
    relation = sql.Identifier(*table.split("."))
    conn = psycopg2.connect(args.dsn)

    def count() -> int:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table} WHERE ts >= %s AND ts < %s", [T0, end])
            return int(cur.fetchone()[0])

    def pushdown(**kwargs: Any) -> Callable[[], dict[str, Any]]:
        return lambda: sql_histograms(args.dsn, relation, "ts", T0, end, edges, categorical, bounds, **kwargs)

    threshold, target = window_histograms.SAMPLE_ABOVE_ROWS, window_histograms.SAMPLE_ROWS
    print(f"PostgreSQL, {args.rows:,} rows x {len(NUMERIC)} numeric ({sum(len(e) + 1 for e in edges.values())} bins) "
          f"+ {len(categorical)} categorical; default: exact up to {threshold:,} rows, else ~{target:,} sampled rows")
    print(f"  load before: {uptime()}", flush=True)
    counts, runs = [], []
    for run in range(args.repeat):
        counts.append(timed(f"count(*) {run + 1}", count)[0])
        seconds, result = timed(f"push-down {run + 1} (default)", pushdown(), statistics.median(counts))
        runs.append(seconds)
    scan = statistics.median(counts)
    sampled = result
    print(f"  => count(*) median {scan:.2f}s, push-down median {statistics.median(runs):.2f}s: "
          f"{statistics.median(runs) / scan:.2f}x the scan; rows summarised {sampled['rows']:,}"
          f"{' (sample: ' + str(sampled['sample']) + ')' if sampled.get('sample') else ''}", flush=True)
    if args.exact:
        seconds, exact = timed("push-down exact (every row)", pushdown(sample_above_rows=None), scan)
        assert exact["rows"] == args.rows, (exact["rows"], args.rows)
        assert sum(exact["numeric"]["x01"]["counts"]) + exact["numeric"]["x01"]["missing"] == args.rows
        if sampled.get("sample"):
            print_sample_error(sampled, exact)
    conn.close()
    print(f"  load after: {uptime()}", flush=True)
    if not args.keep:
        drop(args.dsn, table)


def drop(dsn: str, table: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    conn.close()
    print(f"dropped {table} (--keep keeps it for the next run)")


def _share(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def print_sample_error(sampled: dict[str, Any], exact: dict[str, Any]) -> None:
    """The sample's error on every statistic of the summary, the worst feature of each."""
    worst: dict[str, float] = {}

    def note(key: str, value: float) -> None:
        worst[key] = max(worst.get(key, 0.0), value)

    for col, e in exact["numeric"].items():
        s = sampled["numeric"][col]
        p, q = _share(s["counts"]), _share(e["counts"])
        note("bin share, max abs error (points)", 100 * max(abs(a - b) for a, b in zip(p, q, strict=True)))
        note("PSI(sample, exact)", sum((a - b) * math.log((a + 1e-6) / (b + 1e-6)) for a, b in zip(p, q, strict=True)))
        note("missing rate, abs error (points)", 100 * abs(s["missing"] / sampled["rows"] - e["missing"] / exact["rows"]))
        note("mean, error in stds", abs(s["mean"] - e["mean"]) / e["std"])
        note("std, relative error (%)", 100 * abs(s["std"] / e["std"] - 1))
        span = e["max"] - e["min"]
        note("min, error in ranges (%)", 100 * abs(s["min"] - e["min"]) / span)
        note("max, error in ranges (%)", 100 * abs(s["max"] - e["max"]) / span)
        for side in (0, 1):
            if e["tail_means"][side] is not None and s["tail_means"][side] is not None:
                note("tail means, error in stds", abs(s["tail_means"][side] - e["tail_means"][side]) / e["std"])
        present_s, present_e = sampled["rows"] - s["missing"], exact["rows"] - e["missing"]
        note("out-of-range share, abs error (points)",
             100 * abs(s["out_of_range"] / present_s - e["out_of_range"] / present_e))
        note("infinite, count difference", abs(s["infinite"] - e["infinite"]))
    for col, e in exact["categorical"].items():
        s = sampled["categorical"][col]
        labels = set(e["counts"]) | set(s["counts"])
        ps, pe = sum(s["counts"].values()), sum(e["counts"].values())
        note("category share, max abs error (points)",
             100 * max(abs(s["counts"].get(k, 0) / ps - e["counts"].get(k, 0) / pe) for k in labels))
        note("categories missed by the sample", len(set(e["counts"]) - set(s["counts"])))
    print(f"  error of the {sampled['rows']:,}-row sample against the exact summary (worst feature):")
    for key, value in worst.items():
        print(f"    {key}: {value:.4g}")


# --------------------------------------------------------------------------- DuckDB on Parquet


def write_parquet(directory: str, rows: int) -> None:
    """N rows of the same shapes written by DuckDB to Parquet, and the reference edges and bounds of a 1% sample
    to ``reference.json`` (run in a child process: neither counts towards this one's memory)."""
    import json

    import duckdb

    conn = duckdb.connect(config={"threads": 2, "memory_limit": "512MB"})
    conn.execute("SELECT setseed(0.42)")
    timestamp = f"TIMESTAMPTZ '{T0.isoformat()}' + to_seconds(range)"
    path = f"{directory}/part.parquet"
    conn.execute(f"COPY (SELECT {select_list('random()', timestamp, 'DOUBLE')} FROM range({rows})) "
                 f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 262144)")
    fractions = [i / PERCENTILES for i in range(1, PERCENTILES)]
    row = conn.execute("SELECT " + ", ".join(f"quantile_cont({c}, {fractions}), min({c}), max({c})" for c in NUMERIC)
                       + f" FROM read_parquet('{path}') USING SAMPLE 1%").fetchone()
    reference = {c: [sorted(set(row[3 * i])), [row[3 * i + 1], row[3 * i + 2]]] for i, c in enumerate(NUMERIC)}
    Path(directory, "reference.json").write_text(json.dumps(reference))


def run_parquet(args: argparse.Namespace) -> None:
    import duckdb

    from include.retraining.monitoring.window_histograms import file_histograms, parquet_histograms
    from include.retraining.threads import budget

    directory = tempfile.mkdtemp(prefix="bench-histograms-")
    try:
        started = time.perf_counter()
        writer = multiprocessing.get_context("spawn").Process(target=write_parquet, args=(directory, args.rows))
        writer.start()
        writer.join()
        if writer.exitcode:
            raise SystemExit(f"writing the Parquet files failed (exit code {writer.exitcode})")
        paths = sorted(str(p) for p in Path(directory).glob("*.parquet"))
        size = sum(Path(p).stat().st_size for p in paths) / 2**20
        print(f"DuckDB on Parquet: wrote {args.rows:,} rows, {size:.0f} MB, in {time.perf_counter() - started:.1f}s")
        reference = json.loads(Path(directory, "reference.json").read_text())
        edges = {c: e for c, (e, _) in reference.items()}
        bounds = {c: (b[0], b[1]) for c, (_, b) in reference.items()}
        end = T0 + timedelta(seconds=args.rows)
        categorical = [name for name, _, _ in CATEGORICAL]
        conn = duckdb.connect(config={"threads": budget().threads, "memory_limit": "256MB"})
        window = f"FROM read_parquet({paths}) WHERE ts >= ? AND ts < ?"

        def count() -> int:  # answered from the files' metadata: it reads no value
            return int(conn.execute(f"SELECT count(*) {window}", [T0, end]).fetchone()[0])

        every_column = ", ".join([f"sum({c})" for c in NUMERIC] + [f"min({c})" for c in categorical])

        def one_pass() -> Any:  # reads every column the push-down reads, once
            return conn.execute(f"SELECT count(*), {every_column} {window}", [T0, end]).fetchone()

        print(f"  load before: {uptime()}", flush=True)
        counts, runs = [], []

        def pushdown(**kwargs: Any) -> Callable[[], dict[str, Any]]:
            return lambda: file_histograms("parquet", paths, "ts", T0, end, edges, categorical, bounds, **kwargs)

        for run in range(args.repeat):
            timed(f"count(*) {run + 1} (from metadata)", count)
            counts.append(timed(f"one pass over every column {run + 1}", one_pass)[0])
            seconds, sampled = timed(f"file_histograms {run + 1} (default)", pushdown(), statistics.median(counts))
            runs.append(seconds)
        scan = statistics.median(counts)
        print(f"  => one pass median {scan:.2f}s, DuckDB push-down median {statistics.median(runs):.2f}s: "
              f"{statistics.median(runs) / scan:.2f}x the scan; rows summarised {sampled['rows']:,}"
              f"{' (sample: ' + str(sampled['sample']) + ')' if sampled.get('sample') else ''}", flush=True)
        if args.exact:
            seconds, exact = timed("file_histograms exact (every row)", pushdown(sample_above_rows=None), scan)
            assert exact["rows"] == args.rows, (exact["rows"], args.rows)
            if sampled.get("sample"):
                print_sample_error(sampled, exact)
        if args.arrow:
            timed("pyarrow batches (engine='arrow', 250,000-row batches)", lambda: parquet_histograms(
                paths, "ts", T0, end, edges, categorical, 250_000, bounds, engine="arrow"), scan)
        print(f"  load after: {uptime()}", flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in the window (default 10,000,000)")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL to build the table in")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (medians are compared)")
    parser.add_argument("--exact", action="store_true", help="also the exact push-down, and the sample's error")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL table for the next run")
    parser.add_argument("--no-sql", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-parquet", action="store_true", help="skip DuckDB on Parquet")
    parser.add_argument("--arrow", action="store_true", help="also time the pyarrow batch path on Parquet")
    parser.add_argument("--sample-above", type=int, help="SAMPLE_ABOVE_ROWS for this run (default: the module's)")
    parser.add_argument("--sample-rows", type=int, help="SAMPLE_ROWS for this run (default: the module's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # The libraries first, so that "before" is the baseline the calls' own memory adds to.
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import psycopg2  # noqa: F401

    from include.retraining.monitoring import window_histograms

    if args.sample_above is not None:
        window_histograms.SAMPLE_ABOVE_ROWS = args.sample_above
    if args.sample_rows is not None:
        window_histograms.SAMPLE_ROWS = args.sample_rows
    if not args.no_sql:
        run_sql(args)
    if not args.no_parquet:
        run_parquet(args)
    print(f"peak RSS of this process: {peak_rss_mb():.0f} MB; {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
