"""The window summary where the data lives (PostgreSQL; DuckDB over Parquet and CSV files) equals drift.summarize
of the same window as sources.load_window reads it: edge-equal values, NULL and NaN, +/-inf, booleans, whole floats."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg2 import sql
from psycopg2.extras import execute_values
from unit_helpers import build_config

from include.retraining.connections import connect
from include.retraining.errors import DataValidationError
from include.retraining.monitoring import drift, quality
from include.retraining.monitoring.drift import bounds, build_profile, summarize, window_edges
from include.retraining.monitoring.sql_dialects import (
    POSTGRES,
    NumericPlan,
    dialect_for,
    split_counts,
)
from include.retraining.monitoring.window_histograms import file_histograms, sql_histograms
from include.retraining.sources import load_window, source_engine, window_summary

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
NUMERIC = ["x", "n", "b"]
CATEGORICAL = ["colour", "flag", "whole", "code"]
COLUMNS = {"timestamp": "ts", "label": "y", "numeric": NUMERIC, "categorical": CATEGORICAL}


def frame(n: int, seed: int, special: bool) -> pd.DataFrame:
    """Minute-spaced rows; x rounded to one decimal (many values on the profile's edges); with ``special``,
    NaN, NULL and +/-inf in x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 1.0, n).round(1).astype(object)
    if special:
        x[5], x[6], x[7], x[8], x[9] = math.nan, None, math.inf, -math.inf, math.inf
    counts = pd.array(rng.integers(0, 6, n), dtype="Int64")
    counts[rng.random(n) < 0.05] = pd.NA
    colour = rng.choice(np.array(["red", "green", "blue", "teal"], dtype=object), n)
    colour[rng.random(n) < 0.05] = None
    flag = rng.random(n) < 0.3
    flag_obj = flag.astype(object)
    flag_obj[rng.random(n) < 0.05] = None
    whole = rng.integers(1, 4, n).astype(float)
    whole[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "ts": [T0 + timedelta(minutes=i) for i in range(n)],
        "x": x, "n": counts, "b": flag, "colour": colour, "flag": flag_obj, "whole": whole,
        "code": rng.integers(10, 13, n), "y": rng.integers(0, 2, n),
    })


def write_parquet(data: pd.DataFrame, path: Path) -> None:
    x = pa.array([v for v in data["x"]], pa.float64(), from_pandas=False)  # NaN stays NaN, None is null
    table = pa.table({
        "ts": pa.array(data["ts"], pa.timestamp("us", tz="UTC")), "x": x,
        "n": pa.array(data["n"].astype(object).where(data["n"].notna(), None), pa.int64()),
        "b": pa.array(data["b"]), "colour": pa.array(data["colour"]), "flag": pa.array(data["flag"], pa.bool_()),
        "whole": pa.array(data["whole"], pa.float64()), "code": pa.array(data["code"]), "y": pa.array(data["y"]),
    })
    pq.write_table(table, path, row_group_size=100)


def write_csv(data: pd.DataFrame, path: Path) -> None:
    data.assign(ts=[t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in data["ts"]]).to_csv(path, index=False)


def write_table(data: pd.DataFrame, dsn: str) -> None:
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE events_src (ts timestamptz, x double precision, n integer, b boolean, "
                    "colour text, flag boolean, whole double precision, code bigint, y integer)")
        records = [
            (r.ts, None if r.x is None else float(r.x), None if pd.isna(r.n) else int(r.n), bool(r.b), r.colour,
             r.flag, None if math.isnan(r.whole) else float(r.whole), int(r.code), int(r.y))
            for r in data.itertuples(index=False)
        ]
        execute_values(cur, "INSERT INTO events_src VALUES %s", records)


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Counts exactly equal; floating statistics equal up to summation order."""
    assert got["rows"] == want["rows"]
    assert set(got["numeric"]) == set(want["numeric"])
    for col, w in want["numeric"].items():
        g = got["numeric"][col]
        for key in ("counts", "missing", "infinite", "out_of_range"):
            assert g[key] == w[key], (col, key)
        for key in ("mean", "std", "min", "max"):
            assert (g[key] is None) == (w[key] is None), (col, key)
            if w[key] is not None:
                assert g[key] == pytest.approx(w[key], rel=1e-9, abs=1e-12), (col, key)
        for side in (0, 1):
            assert (g["tail_means"][side] is None) == (w["tail_means"][side] is None), (col, side)
            if w["tail_means"][side] is not None:
                assert g["tail_means"][side] == pytest.approx(w["tail_means"][side], rel=1e-12, abs=1e-12), (col, side)
    assert got["categorical"] == want["categorical"]


@pytest.fixture(scope="module")
def profile() -> dict[str, Any]:
    reference = frame(1500, seed=1, special=False)
    reference["x"] = reference["x"].astype(float)
    reference["b"] = reference["b"].astype(float)
    reference["n"] = reference["n"].astype(float)
    for col in CATEGORICAL:
        reference[col] = reference[col].map(lambda v: None if v is None or v != v else str(v))
    reference["whole"] = reference["whole"].map(lambda v: v if v is None else v[:-2])  # "2.0" -> "2", as read
    return build_profile(reference, NUMERIC, CATEGORICAL)


def summaries(cfg: Any, profile: dict[str, Any], start: datetime, end: datetime) -> tuple[dict, dict]:
    """(the push-down's summary, drift.summarize of the window as the pandas path reads it)."""
    got = window_summary(cfg, start, end, window_edges(profile), CATEGORICAL, bounds(profile))
    want = summarize(load_window(cfg, start, end), profile)
    return got, want


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_duckdb_over_files_equals_summarize(kind: str, tmp_path: Path, profile: dict[str, Any]) -> None:
    data = frame(600, seed=2, special=True)
    path = tmp_path / f"data.{kind}"
    (write_parquet if kind == "parquet" else write_csv)(data, path)
    cfg = build_config(source={"kind": kind, "path": str(path)}, columns=COLUMNS)
    assert source_engine(cfg) == "duckdb"
    got, want = summaries(cfg, profile, T0, T0 + timedelta(minutes=500))
    assert got["rows"] == 500
    x = got["numeric"]["x"]
    assert (x["missing"], x["infinite"]) == (2, 3)  # NaN and NULL missing; +inf twice, -inf once
    assert x["out_of_range"] >= 3
    assert got["categorical"]["flag"]["counts"].keys() == {"True", "False"}
    assert set(got["categorical"]["whole"]["counts"]) == {"1", "2", "3"}  # whole-number floats, as pandas labels
    on_edges = pd.Series(data["x"][:500]).isin(window_edges(profile)["x"]).sum()
    assert on_edges > 20  # the data exercises the edge convention
    assert_same(got, want)


def test_postgres_equals_summarize_and_duckdb(pg_dsn: str, tmp_path: Path, profile: dict[str, Any]) -> None:
    data = frame(600, seed=2, special=True)
    write_table(data, pg_dsn)
    cfg = build_config(source={"kind": "sql", "conn_id": "retraining_db", "table": "events_src", "path": None},
                       columns=COLUMNS)
    assert source_engine(cfg) == "postgresql"
    start, end = T0 + timedelta(minutes=3), T0 + timedelta(minutes=503)
    got, want = summaries(cfg, profile, start, end)
    assert got["rows"] == 500 and "sample" not in got
    assert got["numeric"]["x"]["infinite"] == 3
    assert_same(got, want)
    write_parquet(data, tmp_path / "data.parquet")
    parquet = build_config(source={"kind": "parquet", "path": str(tmp_path / "data.parquet")}, columns=COLUMNS)
    assert_same(window_summary(parquet, start, end, window_edges(profile), CATEGORICAL, bounds(profile)), got)


def test_postgres_block_sample_above_the_threshold(pg_dsn: str, profile: dict[str, Any]) -> None:
    data = frame(3000, seed=3, special=False)
    write_table(data, pg_dsn)
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("ANALYZE events_src")
    table = sql.Identifier("events_src")
    args = ("ts", None, None, window_edges(profile), CATEGORICAL, bounds(profile))
    exact = sql_histograms(pg_dsn, table, *args, sample_above_rows=None)
    whole = sql_histograms(pg_dsn, table, *args, sample_above_rows=100, sample_rows=10_000)
    assert whole["sample"]["percent"] == 100.0  # a sample of every block is the exact answer
    assert {k: v for k, v in whole.items() if k != "sample"} == exact
    part = sql_histograms(pg_dsn, table, *args, sample_above_rows=100, sample_rows=1000)
    again = sql_histograms(pg_dsn, table, *args, sample_above_rows=100, sample_rows=1000)
    assert part == again  # REPEATABLE: the same blocks every time
    assert (part["sample"]["window_rows"], part["sample"]["window_rows_from"]) == (3000, "planner estimate")
    counted = sql_histograms(pg_dsn, table, *args, sample_above_rows=100, sample_rows=1000, window_rows=3000)
    assert counted == {**part, "sample": {**part["sample"], "window_rows_from": "count"}}
    overestimated = sql_histograms(pg_dsn, table, *args, sample_above_rows=100, sample_rows=1000, window_rows=10**8)
    assert overestimated == exact  # a sample far below sample_rows: the window is read whole
    assert 0 < part["rows"] < 3000
    assert sum(part["numeric"]["x"]["counts"]) + part["numeric"]["x"]["missing"] == part["rows"]
    assert sum(part["categorical"]["colour"]["counts"].values()) + part["categorical"]["colour"]["missing"] \
        == part["rows"]  # both scans read the same sampled blocks
    cfg = build_config(columns=COLUMNS)  # the checks read a sampled summary as any other
    assert drift.check(profile, part, cfg.drift)["features"]
    assert quality.check(cfg, profile, part)["blocking"] is False
    query = sql.SQL("(SELECT * FROM events_src) AS src")
    assert "sample" not in sql_histograms(pg_dsn, query, *args, sample_above_rows=100, sample_rows=1000)
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE VIEW events_view AS SELECT * FROM events_src")
    view = sql.Identifier("events_view")  # TABLESAMPLE cannot read a view: exact
    assert sql_histograms(pg_dsn, view, *args, sample_above_rows=100, sample_rows=1000, window_rows=3000) == exact


def test_merged_edges_give_bins_infinities_and_out_of_range() -> None:
    plan = NumericPlan.of("x", [1.0, 2.0, 2.0, 3.0], (0.5, 2.5))
    assert plan.merged == [-math.inf, math.nextafter(0.5, -math.inf), 1.0, 2.0, 2.5, 3.0, 1.7976931348623157e308]
    # values: -inf | 0.2 | 0.5, 1.0 | 2.0 | 2.4, 2.5 | 2.9 | 7 | +inf, +inf
    merged = [1, 1, 2, 1, 2, 1, 1, 2]
    counts, infinite, outside, binned = split_counts(plan, merged)
    assert counts == [4, 1, 0, 3, 3]  # (-inf,1] | (1,2] | (2,2] | (2,3] | (3,inf)
    assert (infinite, outside, binned) == (3, 6, 11)  # outside [0.5, 2.5]: -inf, 0.2, 2.9, 7, +inf, +inf


def test_postgres_counters_decode_and_overflow_is_an_error() -> None:
    plan = NumericPlan.of("x", [1.0], None)  # merged: -inf, 1, largest: 4 bins
    assert POSTGRES.parse_histogram(None, plan) == [0, 0, 0, 0]
    assert POSTGRES.parse_histogram("7" + "000000000003" + "0" * 12 + "000000000005", plan) == [5, 0, 3, 7]
    with pytest.raises(ValueError, match="overflowed"):
        POSTGRES.parse_histogram("1" + "0" * 48, plan)


def test_unknown_engine_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dialect_for("sql", "postgres").name == "postgresql"
    with pytest.raises(ValueError, match="no SQL dialect for a 'sql' source through a 'mysql' connection"):
        dialect_for("sql", "mysql")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", '{"conn_type": "mysql", "host": "db"}')
    cfg = build_config(source={"kind": "sql", "conn_id": "warehouse", "table": "t", "path": None}, columns=COLUMNS)
    with pytest.raises(ValueError, match="'mysql' connection"):
        source_engine(cfg)


def test_duckdb_text_in_a_numeric_feature_is_named(tmp_path: Path) -> None:
    pd.DataFrame({"ts": ["2026-03-01T00:00:00Z"] * 2, "x": ["1.5", "lots"], "n": [1, 2], "b": [1, 0],
                  "colour": ["a", "b"], "flag": [True, False], "whole": [1.0, 2.0], "code": [1, 2],
                  "y": [0, 1]}).to_csv(tmp_path / "bad.csv", index=False)
    cfg = build_config(source={"kind": "csv", "path": str(tmp_path / "bad.csv")}, columns=COLUMNS)
    with pytest.raises(DataValidationError, match=r"numeric feature 'x' is not numbers in the csv files.*'lots'"):
        window_summary(cfg, None, None, {"x": [1.0]}, [], None)


def test_duckdb_sample_above_the_threshold(tmp_path: Path, profile: dict[str, Any]) -> None:
    data = frame(10_000, seed=4, special=False)
    write_parquet(data, tmp_path / "data.parquet")
    paths = [str(tmp_path / "data.parquet")]
    args = ("ts", None, None, window_edges(profile), CATEGORICAL, bounds(profile))
    exact = file_histograms("parquet", paths, *args, sample_above_rows=None)
    assert "sample" not in exact and exact["rows"] == 10_000
    whole = file_histograms("parquet", paths, *args, sample_above_rows=100, sample_rows=20_000)
    assert whole.pop("sample") == {"method": "DuckDB TABLESAMPLE (system)", "percent": 100.0, "window_rows": 10_000,
                                   "window_rows_from": "count"}
    assert_same(whole, exact)
    part = file_histograms("parquet", paths, *args, sample_above_rows=100, sample_rows=4000)
    assert part == file_histograms("parquet", paths, *args, sample_above_rows=100, sample_rows=4000)  # repeatable
    assert 0 < part["rows"] < 10_000 and part["sample"]["percent"] == 40.0
    assert sum(part["numeric"]["x"]["counts"]) + part["numeric"]["x"]["missing"] == part["rows"]
    assert sum(part["categorical"]["colour"]["counts"].values()) + part["categorical"]["colour"]["missing"] \
        == part["rows"]  # both queries read the same sample


@pytest.mark.parametrize("kind", ["parquet-tz", "parquet-naive", "parquet-date", "csv"])
def test_duckdb_label_as_of_over_each_time_type(kind: str, tmp_path: Path) -> None:
    """A label is known when its arrival time is known and at or before the as-of time, whatever the column's type:
    TIMESTAMPTZ, naive TIMESTAMP (UTC), DATE, or text with offsets (CSV)."""
    import duckdb

    from include.retraining.monitoring.sql_dialects import DUCKDB

    arrivals = pd.to_datetime(["2026-03-01 01:00", "2026-03-01 02:00", None, "2026-03-02 00:00"], utc=True)
    table = pd.DataFrame({"y": [1, 0, 1, 1], "lt": arrivals})
    if kind == "parquet-naive":
        table["lt"] = table["lt"].dt.tz_convert(None)
    elif kind == "parquet-date":
        table["lt"] = table["lt"].dt.date
    path = tmp_path / ("data.csv" if kind == "csv" else "data.parquet")
    if kind == "csv":  # offsets other than UTC: 02:00 UTC written as 04:00+02:00
        table.assign(lt=table["lt"].dt.tz_convert("Etc/GMT-2").dt.strftime("%Y-%m-%dT%H:%M:%S%z")).to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    relation = DUCKDB.relation("csv" if kind == "csv" else "parquet", [str(path)])
    conn = duckdb.connect(":memory:")
    conn.execute("SET TimeZone = 'UTC'")
    types = {name: str(t) for name, t, *_ in conn.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    as_of = datetime(2026, 3, 1, 2, tzinfo=timezone.utc)
    known = [r[0] for r in conn.execute(f"SELECT {DUCKDB.label_as_of('y', 'lt', types['lt'], as_of)} FROM {relation}")
             .fetchall()]
    later = conn.execute(f"SELECT count(*) FROM {relation} WHERE {DUCKDB.arrived_after('lt', types['lt'], as_of)}"
                         ).fetchone()[0]
    conn.close()
    assert known == [1, 0, None, None]  # a date is its midnight: 03-01 at or before 02:00, 03-02 after
    assert later == 1
