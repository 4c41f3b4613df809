"""Window histograms in PostgreSQL and over Parquet batches: the same numbers as drift.py computes in pandas."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg2 import sql
from psycopg2.extras import execute_values

from include.retraining.connections import connect
from include.retraining.errors import DataValidationError
from include.retraining.monitoring import window_histograms
from include.retraining.monitoring.drift import (
    bounds,
    build_profile,
    numeric_histogram,
    quantile_edges,
    summarize,
    tail_means,
    window_edges,
)
from include.retraining.monitoring.window_histograms import parquet_histograms, sql_histograms

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
TABLE = sql.Identifier("events_window")
EDGES = [1.0, 2.0, 3.0]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- expected values: what drift.py computes on the rows in pandas ------------------------------


def expected(frame: pd.DataFrame, numeric: Mapping[str, Sequence[float]], categorical: Sequence[str]) -> dict[str, Any]:
    """The reference answer: numeric_histogram and the statistics of build_profile, value_counts for categories."""
    out: dict[str, Any] = {"rows": len(frame), "numeric": {}, "categorical": {}}
    for col, edges in numeric.items():
        values = frame[col].to_numpy(dtype=float)
        counts, missing = numeric_histogram(values, edges)
        finite = values[np.isfinite(values)]
        out["numeric"][col] = {
            "edges": list(edges),
            "counts": counts,
            "missing": missing,
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "tail_means": tail_means(finite, edges),
            "out_of_range": None,
            "infinite": int(np.isinf(values).sum()),
        }
    for col in categorical:
        values = frame[col]
        counts = values.dropna().astype(str).value_counts()
        out["categorical"][col] = {
            "counts": {str(k): int(v) for k, v in counts.items()},
            "missing": int(values.isna().sum()),
        }
    return out


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Counts exactly equal; floating statistics equal up to summation order."""
    assert got["rows"] == want["rows"]
    assert set(got["numeric"]) == set(want["numeric"])
    for col, w in want["numeric"].items():
        g = got["numeric"][col]
        assert g["edges"] == w["edges"], col
        assert g["counts"] == w["counts"], col
        assert g["missing"] == w["missing"], col
        assert g["infinite"] == w["infinite"], col
        for side in (0, 1):
            if w["tail_means"][side] is None:
                assert g["tail_means"][side] is None, (col, side)
            else:
                assert g["tail_means"][side] == pytest.approx(w["tail_means"][side], rel=1e-12, abs=1e-12), (col, side)
        for stat in ("mean", "std", "min", "max"):
            if w[stat] is None:
                assert g[stat] is None, (col, stat)
            else:
                assert g[stat] == pytest.approx(w[stat], rel=1e-9, abs=1e-12), (col, stat)
    assert got["categorical"] == want["categorical"]


# --- data -----------------------------------------------------------------------------------------


def random_frame(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Minute-spaced rows: floats with NULLs and values exactly on edges, integers, text categories with NULLs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 1.0, n).round(1)  # rounding puts many values exactly on the edges 1.0, 2.0, 3.0
    x[rng.random(n) < 0.05] = np.nan
    counts = rng.integers(0, 6, n).astype(float)
    counts[rng.random(n) < 0.05] = np.nan
    colour = rng.choice(np.array(["red", "green", "blue", "teal"], dtype=object), n)
    colour[rng.random(n) < 0.05] = None
    return pd.DataFrame({"ts": [at(i) for i in range(n)], "x": x, "n": counts, "colour": colour})


def to_sql_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def load_table(dsn: str, frame: pd.DataFrame, types: Mapping[str, str], nan_is_null: bool = True) -> None:
    columns = list(types)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE TABLE {} ({})").format(
                TABLE,
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns),
            )
        )
        convert = to_sql_value if nan_is_null else (lambda v: v)
        records = [tuple(convert(v) for v in row) for row in frame[columns].itertuples(index=False, name=None)]
        execute_values(
            cur,
            sql.SQL("INSERT INTO {} ({}) VALUES %s")
            .format(TABLE, sql.SQL(", ").join(sql.Identifier(c) for c in columns))
            .as_string(conn),
            records,
        )


def write_parquet(frame: pd.DataFrame, directory: Path, files: int, schema: pa.Schema | None = None) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        table = pa.Table.from_pandas(frame.iloc[part], schema=schema, preserve_index=False)
        path = directory / f"part-{i:03d}.parquet"
        pq.write_table(table, path, row_group_size=50)
        paths.append(str(path))
    return paths


def window(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    return frame[(frame["ts"] >= start) & (frame["ts"] < end)]


SQL_TYPES = {"ts": "timestamptz", "x": "double precision", "n": "integer", "colour": "text"}
NUMERIC = {"x": EDGES, "n": [0.0, 2.0, 2.5, 4.0]}
CATEGORICAL = ["colour"]


# --- PostgreSQL -----------------------------------------------------------------------------------


def test_sql_matches_numpy_and_pandas_on_the_same_rows(pg_dsn: str) -> None:
    frame = random_frame()
    load_table(pg_dsn, frame, SQL_TYPES)
    start, end = at(500), at(2500)
    got = sql_histograms(pg_dsn, TABLE, "ts", start, end, NUMERIC, CATEGORICAL)
    want = expected(window(frame, start, end), NUMERIC, CATEGORICAL)
    assert_same(got, want)
    assert got["rows"] == 2000  # half-open: minute 500 in, minute 2500 out
    assert sum(got["numeric"]["x"]["counts"]) + got["numeric"]["x"]["missing"] == 2000
    on_edges = window(frame, start, end)["x"].isin(EDGES).sum()
    assert on_edges > 100  # the data really exercises the edge convention


def test_sql_value_on_an_edge_goes_to_the_lower_bin(pg_dsn: str) -> None:
    values = [1.0, 2.0, 3.0, 0.5, 1.5, 3.5, np.nan, -5.0, 2.0000001]
    frame = pd.DataFrame({"ts": [at(i) for i in range(len(values))], "x": values})
    load_table(pg_dsn, frame, {"ts": "timestamptz", "x": "double precision"})
    got = sql_histograms(pg_dsn, TABLE, "ts", None, None, {"x": EDGES}, [])
    assert got["numeric"]["x"]["counts"] == [3, 2, 2, 1]  # (-inf,1]: -5, .5, 1; (1,2]: 1.5, 2; (2,3]: 2.0000001, 3
    assert got["numeric"]["x"]["missing"] == 1
    assert (got["numeric"]["x"]["counts"], 1) == numeric_histogram(np.array(values), EDGES)


def test_sql_half_open_window_and_naive_bounds_as_utc(pg_dsn: str) -> None:
    frame = pd.DataFrame({"ts": [at(0), at(1), at(2)], "x": [1.0, 2.0, 3.0], "colour": ["a", "b", "c"]})
    load_table(pg_dsn, frame, {"ts": "timestamptz", "x": "double precision", "colour": "text"})
    got = sql_histograms(pg_dsn, TABLE, "ts", at(1).replace(tzinfo=None), at(2), {"x": EDGES}, ["colour"])
    assert got["rows"] == 1
    assert got["numeric"]["x"]["counts"] == [0, 1, 0, 0]
    assert got["categorical"]["colour"] == {"counts": {"b": 1}, "missing": 0}
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO events_window VALUES (NULL, 1.0, 'no time')")
    everything = sql_histograms(pg_dsn, TABLE, "ts", None, None, {"x": EDGES}, ["colour"])
    assert everything["rows"] == 3  # a row without a timestamp is in no window
    assert "no time" not in everything["categorical"]["colour"]["counts"]


def test_sql_counts_a_category_unseen_in_the_reference(pg_dsn: str) -> None:
    reference = {"red", "green", "blue"}
    frame = random_frame(400)
    frame.loc[frame.index[::10], "colour"] = "ultraviolet"
    load_table(pg_dsn, frame, SQL_TYPES)
    got = sql_histograms(pg_dsn, TABLE, "ts", None, None, {}, ["colour"])
    counts = got["categorical"]["colour"]["counts"]
    assert counts["ultraviolet"] == 40
    assert set(counts) - reference == {"teal", "ultraviolet"}
    assert got == expected(frame, {}, ["colour"])
    assert got["rows"] == 400  # from the categorical query when there is no numeric feature


def test_sql_empty_window(pg_dsn: str) -> None:
    frame = random_frame(100)
    load_table(pg_dsn, frame, SQL_TYPES)
    got = sql_histograms(pg_dsn, TABLE, "ts", at(1000), at(2000), NUMERIC, CATEGORICAL)
    assert got == expected(frame.iloc[:0], NUMERIC, CATEGORICAL)
    assert got["numeric"]["x"] == {
        "edges": EDGES, "counts": [0, 0, 0, 0], "missing": 0, "mean": None, "std": None, "min": None, "max": None,
        "tail_means": [None, None], "out_of_range": None, "infinite": 0,
    }  # fmt: skip
    assert got["categorical"]["colour"] == {"counts": {}, "missing": 0}
    only_categorical = sql_histograms(pg_dsn, TABLE, "ts", at(1000), at(2000), {}, CATEGORICAL)
    assert only_categorical["rows"] == 0


def test_sql_nan_is_missing_and_infinities_are_binned_but_not_averaged(pg_dsn: str) -> None:
    values = [np.nan, np.inf, -np.inf, 1.0, 2.5, 4.0, np.nan]
    frame = pd.DataFrame({"ts": [at(i) for i in range(len(values))], "x": values, "y": [1.0] * len(values)})
    frame["x"] = frame["x"].astype(object)
    frame.loc[6, "x"] = None  # a real NULL as well as a NaN
    load_table(pg_dsn, frame, {"ts": "timestamptz", "x": "double precision", "y": "double precision"}, False)
    got = sql_histograms(pg_dsn, TABLE, "ts", None, None, {"x": EDGES, "y": EDGES}, [])
    assert got["numeric"]["x"]["counts"] == [2, 0, 1, 2]  # -inf and 1 | | 2.5 | 4 and inf
    assert got["numeric"]["x"]["missing"] == 2
    assert got["numeric"]["x"]["mean"] == pytest.approx(7.5 / 3)
    assert (got["numeric"]["x"]["min"], got["numeric"]["x"]["max"]) == (1.0, 4.0)
    assert_same(got, expected(frame, {"x": EDGES, "y": EDGES}, []))


def test_sql_column_types_match_what_sources_reads(pg_dsn: str) -> None:
    """Integers, reals, decimals and booleans as numbers; float, integer and boolean categories labelled as pandas."""
    frame = pd.DataFrame(
        {
            "ts": [at(i) for i in range(6)],
            "i": [1, 2, 2, None, 5, 3],
            "r": [0.1, 0.2, 0.1, 0.3, None, 0.7],  # real: 0.1 is the float 0.1, exactly on the edge
            "d": [Decimal("1.10"), Decimal("2.00"), None, Decimal("3.50"), Decimal("2.00"), Decimal("0.01")],
            "b": [True, False, True, None, True, True],
            "whole": [1.0, 2.0, 2.0, None, 1.0, 3.0],
            "frac": [1.0, 1.5, 1.5, 2.0, None, 1.0],
            "code": [10, 20, 10, 10, None, 30],
        }
    )
    load_table(
        pg_dsn,
        frame,
        {"ts": "timestamptz", "i": "integer", "r": "real", "d": "numeric(10,2)", "b": "boolean",
         "whole": "double precision", "frac": "double precision", "code": "bigint"},
    )  # fmt: skip
    numeric = {"i": [2.0, 3.0], "r": [0.1, 0.3], "d": [2.0], "b": [0.0]}
    got = sql_histograms(pg_dsn, TABLE, "ts", None, None, numeric, ["whole", "frac", "code", "b"])
    assert got["numeric"]["r"]["counts"] == [2, 2, 1]
    assert got["categorical"]["whole"]["counts"] == {"1": 2, "2": 2, "3": 1}
    assert got["categorical"]["frac"]["counts"] == {"1.0": 2, "1.5": 2, "2.0": 1}
    assert got["categorical"]["code"]["counts"] == {"10": 3, "20": 1, "30": 1}
    assert got["categorical"]["b"]["counts"] == {"True": 4, "False": 1}

    # the same rows as sources.load_window gives them: floats for numbers, labels from coerce_types
    as_read = frame.copy()
    for col in ("i", "r", "d", "b"):
        as_read[col] = pd.to_numeric(frame[col].astype(object), errors="raise").astype(float)
    as_read["whole"] = frame["whole"].astype("Int64")
    as_read["code"] = frame["code"].astype("Int64")
    want = expected(as_read, numeric, ["whole", "frac", "code"])
    want["categorical"]["b"] = {"counts": {"True": 4, "False": 1}, "missing": 1}
    assert_same(got, want)


def test_sql_query_source_and_several_scans_give_the_same_answer(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = random_frame(1000)
    load_table(pg_dsn, frame, SQL_TYPES)
    one_scan = sql_histograms(pg_dsn, TABLE, "ts", at(100), at(900), NUMERIC, CATEGORICAL)
    query = sql.SQL("({}) AS src").format(sql.SQL("SELECT * FROM events_window WHERE n IS DISTINCT FROM 99"))
    assert sql_histograms(pg_dsn, query, "ts", at(100), at(900), NUMERIC, CATEGORICAL) == one_scan
    monkeypatch.setattr(window_histograms, "MAX_AGGREGATES_PER_QUERY", 5)  # one numeric column per query
    assert sql_histograms(pg_dsn, TABLE, "ts", at(100), at(900), NUMERIC, CATEGORICAL) == one_scan


def test_sql_errors_name_the_problem(pg_dsn: str) -> None:
    frame = pd.DataFrame({"ts": [at(0), at(1)], "x": ["1.5", "lots"]})
    load_table(pg_dsn, frame, {"ts": "timestamptz", "x": "text"})
    with pytest.raises(DataValidationError, match=r"no column\(s\) \['missing'\]"):
        sql_histograms(pg_dsn, TABLE, "ts", None, None, {"missing": EDGES}, [])
    with pytest.raises(DataValidationError, match=r"\[.x.\] of the SQL source are not numbers.*lots"):
        sql_histograms(pg_dsn, TABLE, "ts", None, None, {"x": EDGES}, [])
    with pytest.raises(ValueError, match="ascending"):
        sql_histograms(pg_dsn, TABLE, "ts", None, None, {"x": [2.0, 1.0]}, [])


# --- Parquet --------------------------------------------------------------------------------------


@pytest.fixture(params=["duckdb", "arrow"])
def parquet_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each Parquet test through DuckDB (the default) and through the pyarrow batch path."""
    monkeypatch.setattr(window_histograms, "PARQUET_ENGINE", request.param)
    return request.param



@pytest.mark.usefixtures("parquet_engine")
def test_parquet_batches_and_files_give_the_one_pass_answer(tmp_path: Path, pg_dsn: str) -> None:
    frame = random_frame()
    many = write_parquet(frame, tmp_path / "many", files=4)
    one = write_parquet(frame, tmp_path / "one", files=1)
    start, end = at(500), at(2500)
    batched = parquet_histograms(many, "ts", start, end, NUMERIC, CATEGORICAL, batch_rows=37)
    one_pass = parquet_histograms(one, "ts", start, end, NUMERIC, CATEGORICAL, batch_rows=10_000_000)
    assert_same(batched, one_pass)
    assert batched["numeric"]["x"]["counts"] == one_pass["numeric"]["x"]["counts"]
    assert_same(batched, expected(window(frame, start, end), NUMERIC, CATEGORICAL))
    load_table(pg_dsn, frame, SQL_TYPES)  # and PostgreSQL agrees on the same data
    assert_same(batched, sql_histograms(pg_dsn, TABLE, "ts", start, end, NUMERIC, CATEGORICAL))


@pytest.mark.usefixtures("parquet_engine")
def test_parquet_edges_nan_infinities_and_unseen_category(tmp_path: Path) -> None:
    values = [1.0, 2.0, 3.0, 0.5, np.nan, None, np.inf, -np.inf, 2.0000001]
    table = pa.table(
        {
            "ts": pa.array([at(i) for i in range(len(values))], pa.timestamp("us", tz="UTC")),
            "x": pa.array(values, pa.float64(), from_pandas=False),  # NaN stays NaN, None is null
            "colour": pa.array(["a", "b", None, "a", "new", "a", "b", None, "a"]),
        }
    )
    pq.write_table(table, tmp_path / "data.parquet")
    got = parquet_histograms([str(tmp_path / "data.parquet")], "ts", None, None, {"x": EDGES}, ["colour"], 2)
    assert got["numeric"]["x"]["counts"] == [3, 1, 2, 1]
    assert got["numeric"]["x"]["missing"] == 2
    assert got["numeric"]["x"]["mean"] == pytest.approx((1 + 2 + 3 + 0.5 + 2.0000001) / 5)
    assert got["categorical"]["colour"] == {"counts": {"a": 4, "b": 2, "new": 1}, "missing": 2}
    assert_same(got, expected(table.to_pandas(), {"x": EDGES}, ["colour"]))


@pytest.mark.usefixtures("parquet_engine")
def test_parquet_half_open_window_naive_timestamps_and_empty_window(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": [*pd.to_datetime([at(i) for i in range(10)]).tz_localize(None), pd.NaT],
            "x": np.arange(11.0),
            "c": list("abcdeabcdez"),
        }
    )
    paths = write_parquet(frame, tmp_path, files=2)  # naive timestamps: read as UTC, like sources does
    got = parquet_histograms(paths, "ts", at(2), at(5), {"x": EDGES}, ["c"], batch_rows=1)
    assert got["rows"] == 3
    assert got["numeric"]["x"]["counts"] == [0, 1, 1, 1]
    assert got["categorical"]["c"] == {"counts": {"c": 1, "d": 1, "e": 1}, "missing": 0}
    everything = parquet_histograms(paths, "ts", None, None, {"x": EDGES}, ["c"], batch_rows=4)
    assert everything["rows"] == 10  # a row without a timestamp is in no window
    assert "z" not in everything["categorical"]["c"]["counts"]
    empty = parquet_histograms(paths, "ts", at(50), at(60), {"x": EDGES}, ["c"])
    assert empty == expected(frame.iloc[:0], {"x": EDGES}, ["c"])


@pytest.mark.usefixtures("parquet_engine")
def test_parquet_date_column_as_the_timestamp(tmp_path: Path) -> None:
    days = [T0.date() + timedelta(days=i) for i in range(4)]
    pq.write_table(pa.table({"day": pa.array(days, pa.date32()), "x": [0.5, 1.5, 2.5, 3.5]}), tmp_path / "d.parquet")
    got = parquet_histograms(
        [str(tmp_path / "d.parquet")], "day", T0 + timedelta(days=1), T0 + timedelta(days=3), {"x": EDGES}, []
    )
    assert got["rows"] == 2
    assert got["numeric"]["x"]["counts"] == [0, 1, 1, 0]


@pytest.mark.usefixtures("parquet_engine")
def test_parquet_errors_name_the_problem(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ts": [at(0), at(1)], "x": ["1.5", "lots"]})
    paths = write_parquet(frame, tmp_path, files=1)
    with pytest.raises(DataValidationError, match="not found"):
        parquet_histograms([str(tmp_path / "nope.parquet")], "ts", None, None, {"x": EDGES}, [])
    with pytest.raises(DataValidationError, match=r"no column\(s\) \['y'\]"):
        parquet_histograms(paths, "ts", None, None, {"y": EDGES}, [])
    with pytest.raises(DataValidationError, match="numeric feature 'x' is not numbers"):
        parquet_histograms(paths, "ts", None, None, {"x": EDGES}, [])
    with pytest.raises(ValueError, match="batch_rows"):
        parquet_histograms(paths, "ts", None, None, {}, ["x"], batch_rows=0)


@pytest.mark.usefixtures("parquet_engine")
def test_edges_from_a_reference_profile_round_trip(tmp_path: Path) -> None:
    """Edges as build_profile stores them (reference quantiles) bin the reference itself exactly as drift does."""
    frame = random_frame(2000, seed=11)
    edges = {"x": quantile_edges(frame["x"].to_numpy(float), 10), "n": quantile_edges(frame["n"].to_numpy(float), 10)}
    got = parquet_histograms(write_parquet(frame, tmp_path, files=3), "ts", None, None, edges, CATEGORICAL, 100)
    assert_same(got, expected(frame, edges, CATEGORICAL))


@pytest.mark.usefixtures("parquet_engine")
def test_sql_and_parquet_count_infinities_as_summarize_does(tmp_path: Path, pg_dsn: str) -> None:
    """+/-inf per numeric feature, in double precision, real and integer columns: the count the quality check
    blocks on is the same whichever path summarised the window."""
    def with_real(f: pd.DataFrame) -> pd.DataFrame:  # r: a copy of x (one decimal) kept in a PostgreSQL real
        return f.assign(r=f["x"])

    profile = build_profile(with_real(random_frame(2000, seed=3)), ["x", "r", "n"], CATEGORICAL)
    frame = with_real(random_frame(600, seed=4))
    frame.loc[[3, 50, 51], "x"] = np.inf
    frame.loc[[7, 400], "x"] = -np.inf
    frame.loc[[9], "r"] = -np.inf
    frame.loc[[10], "r"] = np.nan  # NaN next to an infinity: still missing, not infinite
    want = summarize(frame, profile)
    assert [want["numeric"][c]["infinite"] for c in ("x", "r", "n")] == [5, 1, 0]

    load_table(pg_dsn, frame, {**SQL_TYPES, "r": "real"})
    got_sql = sql_histograms(pg_dsn, TABLE, "ts", None, None, window_edges(profile), CATEGORICAL, bounds(profile))
    paths = write_parquet(frame, tmp_path, files=2)
    got_parquet = parquet_histograms(paths, "ts", None, None, window_edges(profile), CATEGORICAL, 128, bounds(profile))
    for got in (got_sql, got_parquet):
        assert got["rows"] == want["rows"] == 600
        for col, w in want["numeric"].items():
            g = got["numeric"][col]
            assert set(g) == {*w, "edges"}, col  # the same shape as summarize's
            for key in ("infinite", "missing", "counts", "out_of_range"):
                assert g[key] == w[key], (col, key)
