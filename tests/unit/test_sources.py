"""Reading production data from CSV, Parquet and SQL sources: half-open windows, validation by name."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from psycopg2.extensions import parse_dsn
from unit_helpers import build_config

from include.retraining.connections import connect
from include.retraining.errors import DataValidationError
from include.retraining.sources import WindowCounts, coerce_types, count_window, load_window, required_columns

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def at(hour: int) -> datetime:
    return T0.replace(hour=hour)


def rows() -> pd.DataFrame:
    """Six hourly rows, shuffled; labels for hours 0, 1, 3, 5 only."""
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "ts": pd.to_datetime([at(h) for h in range(6)], utc=True),
            "x1": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
            "x2": [10, 20, 30, 40, 50, 60],
            "c": ["a", "b", None, "a", "c", "b"],
            "y": [0, 1, None, 1, None, 0],
        }
    )
    return frame.iloc[[3, 0, 5, 1, 4, 2]].reset_index(drop=True)


def file_config(kind: str, path: Path | str, **columns: object):
    return build_config(source={"kind": kind, "path": str(path)},
                        columns={"id": "id", **columns})


@pytest.fixture(params=["csv", "parquet"])
def file_source(request: pytest.FixtureRequest, tmp_path: Path):
    kind = request.param
    frame = rows()
    path = tmp_path / f"data.{kind}"
    if kind == "csv":
        frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return file_config(kind, path)


# --- files -----------------------------------------------------------------------------------------


def test_count_window_is_half_open(file_source) -> None:
    assert count_window(file_source, at(1), at(4)) == WindowCounts(rows=3, labelled=2)  # hours 1, 2, 3
    assert count_window(file_source, at(4), at(5)) == WindowCounts(rows=1, labelled=0)
    assert count_window(file_source, None, None) == WindowCounts(rows=6, labelled=4)
    assert count_window(file_source, at(6), None) == WindowCounts(rows=0, labelled=0)
    # naive bounds are UTC
    assert count_window(file_source, datetime(2026, 3, 1, 1), datetime(2026, 3, 1, 4)) == WindowCounts(3, 2)


def test_load_window_is_half_open_ordered_and_typed(file_source) -> None:
    frame = load_window(file_source, at(1), at(4))
    assert list(frame.columns) == ["ts", "y", "x1", "x2", "c", "id"] == required_columns(file_source)
    assert frame["ts"].tolist() == [pd.Timestamp(at(h)) for h in (1, 2, 3)]
    assert frame["x1"].tolist() == [1.5, 2.5, 3.5]
    assert frame["x2"].dtype == np.float64 and frame["x2"].tolist() == [20.0, 30.0, 40.0]
    assert frame["c"].fillna("<missing>").tolist() == ["b", "<missing>", "a"]
    assert frame["id"].tolist() == [2, 3, 4]
    assert str(frame["ts"].dt.tz) == "UTC"


def test_load_window_labelled_only(file_source) -> None:
    frame = load_window(file_source, None, at(5), labelled_only=True)
    assert frame["id"].tolist() == [1, 2, 4]
    assert frame["y"].tolist() == [0, 1, 1]


def test_missing_column_is_named(tmp_path: Path) -> None:
    rows().to_parquet(tmp_path / "d.parquet")
    cfg = file_config("parquet", tmp_path / "d.parquet", numeric=["x1", "x3"])
    with pytest.raises(DataValidationError, match=r"has no column\(s\) \['x3'\]") as info:
        count_window(cfg, None, None)
    assert "available: ['c', 'id', 'ts', 'x1', 'x2', 'y']" in str(info.value)
    with pytest.raises(DataValidationError, match=r"\['x3'\]"):
        load_window(cfg, None, None)


def test_non_numeric_value_in_a_numeric_feature_is_named(tmp_path: Path) -> None:
    frame = rows().astype({"x2": object})
    frame.loc[frame["id"] == 2, "x2"] = "twelve"
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = file_config("csv", tmp_path / "d.csv")
    with pytest.raises(DataValidationError, match=r"numeric feature 'x2' has 1 non-numeric value\(s\), e.g. \['twelve'\]"):
        load_window(cfg, None, None)
    # counting only reads the timestamp and the label: it does not fail
    assert count_window(cfg, None, None).rows == 6


def test_a_folder_of_files_and_a_glob(tmp_path: Path) -> None:
    frame = rows()
    (tmp_path / "part" / "nested").mkdir(parents=True)
    frame.iloc[:2].to_parquet(tmp_path / "part" / "a.parquet")
    frame.iloc[2:].to_parquet(tmp_path / "part" / "nested" / "b.parquet")
    (tmp_path / "part" / "notes.txt").write_text("ignored")
    folder = file_config("parquet", tmp_path / "part")
    assert count_window(folder, None, None) == WindowCounts(6, 4)
    assert load_window(folder, None, None)["id"].tolist() == [1, 2, 3, 4, 5, 6]
    frame.iloc[:4].to_csv(tmp_path / "day1.csv", index=False)
    frame.iloc[4:].to_csv(tmp_path / "day2.csv", index=False)
    pattern = file_config("csv", tmp_path / "day*.csv")
    assert count_window(pattern, None, None) == WindowCounts(6, 4)


def test_missing_file_is_named(tmp_path: Path) -> None:
    cfg = file_config("csv", tmp_path / "nope.csv")
    with pytest.raises(DataValidationError, match=r"data file not found: .*nope\.csv"):
        count_window(cfg, None, None)


# --- coerce_types --------------------------------------------------------------------------------


def test_coerce_types() -> None:
    cfg = build_config(columns={"numeric": ["n1", "n2", "n3"], "categorical": ["c1", "c2"]})
    frame = pd.DataFrame(
        {
            "n1": ["1.5", None, "3"],
            "n2": [True, False, True],
            "n3": [Decimal("2.25"), Decimal("1"), None],
            "c1": [1, 2, None],
            "c2": ["x", np.nan, "y"],
        }
    )
    out = coerce_types(cfg, frame)
    assert out["n1"].dtype == np.float64 and out["n1"].tolist()[0::2] == [1.5, 3.0] and np.isnan(out["n1"][1])
    assert out["n2"].tolist() == [1.0, 0.0, 1.0]
    assert out["n3"].tolist()[:2] == [2.25, 1.0]
    assert out["c1"].fillna("<missing>").tolist() == ["1", "2", "<missing>"]  # integer codes, not '1.0'
    assert out["c2"].fillna("<missing>").tolist() == ["x", "<missing>", "y"]
    assert frame["n1"].tolist() == ["1.5", None, "3"]  # the input is not changed


def test_coerce_types_rejects_non_numbers() -> None:
    cfg = build_config(columns={"numeric": ["n"], "categorical": ["c"]})
    with pytest.raises(DataValidationError, match=r"numeric feature 'n' has type datetime64"):
        coerce_types(cfg, pd.DataFrame({"n": pd.to_datetime(["2026-01-01"]), "c": ["a"]}))
    with pytest.raises(DataValidationError, match=r"'n' has 3 non-numeric value\(s\), e.g. \['a', 'b', 'c'\]"):
        coerce_types(cfg, pd.DataFrame({"n": ["a", "b", "c", "d", "1"], "c": "x"}).iloc[[0, 1, 2, 4]])


# --- SQL -------------------------------------------------------------------------------------------


@pytest.fixture
def sql_table(pg_dsn: str) -> str:
    """The same six rows in a PostgreSQL table ``events_src`` of the test schema."""
    frame = rows()
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE events_src (id BIGINT, ts TIMESTAMPTZ, x1 DOUBLE PRECISION, x2 NUMERIC, c TEXT, "
            "y INTEGER, extra TEXT)"
        )
        for r in frame.itertuples():
            cur.execute(
                "INSERT INTO events_src VALUES (%s, %s, %s, %s, %s, %s, 'e')",
                (int(r.id), r.ts.to_pydatetime(), float(r.x1), int(r.x2), r.c, None if pd.isna(r.y) else int(r.y)),
            )
    return pg_dsn


def sql_config(**source: object):
    return build_config(source={"kind": "sql", "conn_id": "retraining_db", "path": None, **source},
                        columns={"id": "id"})


def test_sql_count_window_is_half_open(sql_table: str) -> None:
    cfg = sql_config(table="events_src")
    assert count_window(cfg, at(1), at(4)) == WindowCounts(rows=3, labelled=2)
    assert count_window(cfg, None, None) == WindowCounts(rows=6, labelled=4)
    assert count_window(cfg, datetime(2026, 3, 1, 1), datetime(2026, 3, 1, 4)) == WindowCounts(3, 2)


def test_sql_load_window(sql_table: str) -> None:
    cfg = sql_config(table="events_src")
    frame = load_window(cfg, at(1), at(4))
    assert list(frame.columns) == ["ts", "y", "x1", "x2", "c", "id"]
    assert frame["id"].tolist() == [2, 3, 4]  # ordered by time
    assert frame["x2"].dtype == np.float64 and frame["x2"].tolist() == [20.0, 30.0, 40.0]  # NUMERIC -> float
    assert frame["c"].fillna("<missing>").tolist() == ["b", "<missing>", "a"]
    assert frame["ts"].tolist() == [pd.Timestamp(at(h)) for h in (1, 2, 3)]
    labelled = load_window(cfg, None, None, labelled_only=True)
    assert labelled["id"].tolist() == [1, 2, 4, 6]
    empty = load_window(cfg, at(10), at(11))
    assert len(empty) == 0 and list(empty.columns) == ["ts", "y", "x1", "x2", "c", "id"]


def test_sql_query_and_schema_qualified_table(sql_table: str) -> None:
    query = sql_config(query="SELECT * FROM events_src WHERE c IS DISTINCT FROM 'a'")
    assert count_window(query, None, None) == WindowCounts(rows=4, labelled=2)
    assert load_window(query, at(0), at(6))["id"].tolist() == [2, 3, 5, 6]
    schema = parse_dsn(sql_table)["options"].removeprefix("-csearch_path=")
    qualified = sql_config(table=f"{schema}.events_src")
    assert count_window(qualified, at(0), at(3)) == WindowCounts(3, 2)


def test_sql_missing_column_is_named(sql_table: str) -> None:
    cfg = build_config(source={"kind": "sql", "conn_id": "retraining_db", "path": None, "table": "events_src"},
                       columns={"numeric": ["x1", "income"]})
    with pytest.raises(DataValidationError, match=r"table events_src has no column\(s\) \['income'\]"):
        count_window(cfg, None, None)
    with pytest.raises(DataValidationError, match=r"\['income'\]"):
        load_window(cfg, None, None)


def test_sql_text_in_a_numeric_feature_is_named(sql_table: str) -> None:
    cfg = build_config(source={"kind": "sql", "conn_id": "retraining_db", "path": None, "table": "events_src"},
                       columns={"numeric": ["x1", "extra"]})
    with pytest.raises(DataValidationError, match=r"numeric feature 'extra' has 6 non-numeric value\(s\), e.g. \['e'\]"):
        load_window(cfg, None, None)


def test_sql_unknown_connection(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    cfg = build_config(source={"kind": "sql", "conn_id": "nowhere", "path": None, "table": "t"})
    with pytest.raises(LookupError, match="AIRFLOW_CONN_NOWHERE"):
        count_window(cfg, None, None)


def test_integer_category_reads_the_same_with_or_without_nulls_in_the_window(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE coded (ts TIMESTAMPTZ, x1 DOUBLE PRECISION, region INTEGER, y INTEGER)")
        cur.executemany("INSERT INTO coded VALUES (%s, 1.0, %s, 0)", [(at(0), 3), (at(1), None), (at(2), 3), (at(3), 4)])
    cfg = build_config(source={"kind": "sql", "conn_id": "retraining_db", "path": None, "table": "coded"},
                       columns={"numeric": ["x1"], "categorical": ["region"]})
    with_null = load_window(cfg, at(0), at(2))["region"].tolist()  # region 3 and NULL
    without = load_window(cfg, at(2), at(4))["region"].tolist()  # regions 3 and 4
    # the same category must be the same string, or drift checks and the one-hot encoder see a new category
    assert with_null[0] == without[0]
