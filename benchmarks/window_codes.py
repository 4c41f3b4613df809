"""Time a small window's in-memory drift read with its categorical features as strings (today) and as codes.

The window: N rows (default 1,000,000) x 20 numeric + 5 categorical features (5 to 17 text categories,
one with 1 % NULL), a timestamp and a label, from fixed seeds,

- **Parquet**: four files, read by :func:`sources.load_window` (every file read, the window kept,
  sorted); ``categorical_codes=True`` reads the categorical columns as Parquet dictionaries
  (``Categorical``), which :func:`drift.summarize` counts on their codes;
- **PostgreSQL** (``--postgres``; a table generated in PostgreSQL in schema ``bench_codes_<pid>``, dropped
  afterwards): ``load_window`` (psycopg2 fetches every cell as a Python object) against a prototype that
  fetches integer codes instead of the text (``SELECT DISTINCT`` per categorical column, then the rows with
  each categorical joined to its numbered categories, both in one REPEATABLE READ snapshot).

Timed per path, in one run: the read, ``summarize`` on the profile's bins, and for the codes paths
:func:`sources.decode_categoricals` (what scoring needs) on the whole window and on the newest
``performance.max_rows`` (200,000) rows, the rows the check scores. Ratios are strings / codes in the same run.
Each path is checked to give today's summary exactly. ``uptime`` is printed before and after.

Usage (from the repository root)::

    .venv/bin/python benchmarks/window_codes.py [--rows 1000000] [--repeat 3] [--postgres] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from include.retraining import sources  # noqa: E402
from include.retraining.config import RetrainingConfig  # noqa: E402
from include.retraining.monitoring import drift  # noqa: E402

NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SIZES = [5, 8, 11, 14, 17]
SCORED_ROWS = 200_000


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def config(source: dict[str, Any]) -> RetrainingConfig:
    return RetrainingConfig.model_validate({
        "model": {"name": "bench", "task": "binary", "type": "logistic_regression"},
        "source": source,
        "columns": {"timestamp": "ts", "label": "y", "numeric": NUMERIC, "categorical": CATEGORICAL},
        "storage": {"uri": "/nonexistent/storage"},
    })


def write_parquet(directory: Path, rows: int, files: int = 4) -> None:
    rng = np.random.default_rng(0)
    per = rows // files
    for f in range(files):
        n = per if f < files - 1 else rows - per * (files - 1)
        data: dict[str, Any] = {"ts": pd.date_range("2026-03-01", periods=n, freq="s", tz="UTC")
                                + pd.Timedelta(seconds=f * per)}
        for i, col in enumerate(NUMERIC):
            values = rng.normal(size=n) if i % 2 else rng.lognormal(size=n)
            if i % 5 == 0:
                values[rng.random(n) < 0.01] = np.nan
            data[col] = values
        for i, col in enumerate(CATEGORICAL):
            labels = np.array([f"{col}_v{k}" for k in range(SIZES[i])], dtype=object)
            p = np.arange(SIZES[i], 0, -1, dtype=float)
            cells = labels.take(rng.choice(SIZES[i], n, p=p / p.sum()))
            if i == 0:
                cells[rng.random(n) < 0.01] = None
            data[col] = cells
        data["y"] = rng.integers(0, 2, n)
        pq.write_table(pa.table(data), directory / f"part-{f}.parquet", row_group_size=128 * 1024)


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def compare(label: str, cfg: RetrainingConfig, read_codes: Callable[[], pd.DataFrame], repeat: int) -> None:
    profile = drift.build_profile(sources.load_window(cfg, None, None).tail(200_000), NUMERIC, CATEGORICAL)
    frame: dict[str, pd.DataFrame] = {}

    def strings() -> dict[str, Any]:
        frame["strings"] = sources.load_window(cfg, None, None)
        return drift.summarize(frame["strings"], profile)

    def codes() -> dict[str, Any]:
        frame["codes"] = read_codes()
        return drift.summarize(frame["codes"], profile)

    def read_only(which: str) -> Callable[[], pd.DataFrame]:
        return (lambda: sources.load_window(cfg, None, None)) if which == "strings" else read_codes

    t_read_s, _ = timed(read_only("strings"), repeat)
    t_read_c, _ = timed(read_only("codes"), repeat)
    t_s, want = timed(strings, repeat)
    t_c, got = timed(codes, repeat)
    assert got == want, f"{label}: the codes' summary differs from the strings'"
    t_dec, decoded = timed(lambda: sources.decode_categoricals(cfg, frame["codes"]), repeat)
    pd.testing.assert_frame_equal(decoded, frame["strings"])
    t_tail, _ = timed(lambda: sources.decode_categoricals(cfg, frame["codes"].tail(SCORED_ROWS)), repeat)
    mem_s = frame["strings"][CATEGORICAL].memory_usage(deep=True).sum() / 2**20
    mem_c = frame["codes"][CATEGORICAL].memory_usage(deep=True).sum() / 2**20
    print(f"{label}, {len(frame['strings']):,} rows (median of {repeat}):")
    print(f"  read only:             strings {t_read_s:6.2f} s   codes {t_read_c:6.2f} s   ratio {t_read_s / t_read_c:5.2f}x")
    print(f"  read + summarize:      strings {t_s:6.2f} s   codes {t_c:6.2f} s   ratio {t_s / t_c:5.2f}x")
    print(f"  + decode for scoring:  all rows {t_dec:5.2f} s (ratio {t_s / (t_c + t_dec):5.2f}x); "
          f"newest {SCORED_ROWS:,} {t_tail:5.3f} s (ratio {t_s / (t_c + t_tail):5.2f}x)")
    print(f"  categorical columns in memory: strings {mem_s:6.1f} MB   codes {mem_c:6.1f} MB", flush=True)


# --- PostgreSQL: the prototype of a codes read (not shipped: see the figures in sources' docstring) --------------


def sql_codes_window(cfg: RetrainingConfig) -> pd.DataFrame:
    """The whole table's window with each categorical as codes: the categories by ``SELECT DISTINCT``, the rows
    with each categorical joined to its numbered categories, in one snapshot; labelled as coerce_types."""
    from psycopg2 import sql

    from include.retraining.connections import connect

    dsn = sources.source_dsn(cfg)
    rel = sources.source_relation(cfg)
    cats = cfg.columns.categorical
    plain = [c for c in sources.required_columns(cfg) if c not in cats]
    ident = sql.Identifier
    with connect(dsn) as conn:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            categories = {}
            for c in cats:
                cur.execute(sql.SQL("SELECT DISTINCT {c} FROM {rel} WHERE {c} IS NOT NULL ORDER BY 1").format(
                    c=ident(c), rel=rel))
                categories[c] = [r[0] for r in cur.fetchall()]
            numbered = [sql.SQL("{d} AS (SELECT v, row_number() OVER (ORDER BY v) - 1 AS k FROM "
                                "(SELECT DISTINCT {c} AS v FROM w WHERE {c} IS NOT NULL) s)").format(
                d=ident(f"d_{c}"), c=ident(c)) for c in cats]
            query = sql.SQL("WITH w AS MATERIALIZED (SELECT {cols} FROM {rel}), {numbered} SELECT {plain}, {codes} "
                            "FROM w {joins} ORDER BY w.{ts}").format(
                cols=sql.SQL(", ").join(ident(c) for c in [*plain, *cats]), rel=rel,
                numbered=sql.SQL(", ").join(numbered),
                plain=sql.SQL(", ").join(sql.SQL("w.{}").format(ident(c)) for c in plain),
                codes=sql.SQL(", ").join(sql.SQL("coalesce({}.k, -1)").format(ident(f"d_{c}")) for c in cats),
                joins=sql.SQL(" ").join(sql.SQL("LEFT JOIN {d} ON w.{c} = {d}.v").format(d=ident(f"d_{c}"), c=ident(c))
                                        for c in cats),
                ts=ident(cfg.columns.timestamp))
            cur.execute(query)
            rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=[*plain, *cats])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for c in cats:
        raw = pd.Categorical.from_codes(frame[c].to_numpy(dtype=np.int32), pd.Index(categories[c], dtype=object))
        frame[c] = raw
    frame = frame[sources.required_columns(cfg)]
    return sources.coerce_types(cfg, frame, cats)


def make_table(dsn: str, schema: str, rows: int) -> None:
    import psycopg2

    numeric = ", ".join(
        f"CASE WHEN random() < 0.01 AND {i % 5} = 0 THEN NULL ELSE "
        f"{'exp(random() * 2)' if i % 2 == 0 else '(random() - 0.5) * 4'} END AS n{i}" for i in range(20))
    categorical = ", ".join(
        f"CASE WHEN {i} = 0 AND random() < 0.01 THEN NULL ELSE 'c{i}_v' || floor(power(random(), 2) * {SIZES[i]})::int "
        f"END AS c{i}" for i in range(5))
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
        cur.execute(f"CREATE TABLE {schema}.window_rows AS SELECT timestamptz '2026-03-01' + g * interval '1 second' AS ts, "
                    f"(random() < 0.5)::int AS y, {numeric}, {categorical} FROM generate_series(1, {rows}) g")
        cur.execute(f"ANALYZE {schema}.window_rows")
    conn.close()


def run_postgres(args: argparse.Namespace) -> None:
    import psycopg2
    from psycopg2.extensions import parse_dsn

    schema = f"bench_codes_{os.getpid()}"
    params = parse_dsn(args.dsn)
    make_table(args.dsn, schema, args.rows)
    os.environ["AIRFLOW_CONN_BENCH_CODES"] = json.dumps({
        "conn_type": "postgres", "host": params.get("host", "127.0.0.1"), "port": int(params.get("port", 5432)),
        "login": params.get("user", "postgres"), "schema": params.get("dbname", "postgres"),
        "extra": {"options": f"-csearch_path={schema}"}})
    try:
        cfg = config({"kind": "sql", "conn_id": "bench_codes", "table": "window_rows"})
        compare("PostgreSQL (prototype)", cfg, lambda: sql_codes_window(cfg), args.repeat)
    finally:
        with psycopg2.connect(args.dsn) as conn, conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="also time a PostgreSQL table")
    parser.add_argument("--skip-parquet", action="store_true")
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    args = parser.parse_args()
    print(f"load before: {uptime()}", flush=True)
    if not args.skip_parquet:
        with tempfile.TemporaryDirectory() as directory:
            write_parquet(Path(directory), args.rows)
            cfg = config({"kind": "parquet", "path": directory})
            compare("Parquet, 4 files", cfg, lambda: sources.load_window(cfg, None, None, categorical_codes=True),
                    args.repeat)
    if args.postgres:
        run_postgres(args)
    print(f"load after: {uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
