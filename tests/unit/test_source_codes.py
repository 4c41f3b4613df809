"""Categorical features read as codes (``load_window(..., categorical_codes=True)``): the same drift summary as
the object columns of strings, and :func:`decode_categoricals` gives back exactly ``load_window``'s usual frame."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining import sources
from include.retraining.monitoring import drift

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
CATEGORICAL = ["s", "i", "i_null", "b", "b_null", "f_whole", "f_mixed", "f_nan", "mixed_types"]
COLUMNS = {"timestamp": "ts", "label": "y", "numeric": ["x"], "categorical": CATEGORICAL, "id": "id"}


def write_files(directory: Path) -> None:
    """Three files with different dictionaries per column (and file 2 with categories the others lack); floats
    whole in files 0 and 1 but not in file 2 (a window without file 2 labels 3.0 as '3'); a column that is
    integer in one file and text in another (read the usual way)."""
    rng = np.random.default_rng(7)
    for i in range(3):
        n = 120
        frame = pd.DataFrame({
            "id": np.arange(n) + 1000 * i,
            "ts": [T0 + timedelta(hours=i, minutes=int(m)) for m in rng.integers(0, 60, n)],
            "x": rng.normal(size=n),
            "s": rng.choice(["a", "b", None, f"only-{i}"], n),
            "i": rng.integers(0, 4 + i, n),
            "i_null": pd.array(rng.choice([1, 2, 3 + i, None], n), dtype="Int64"),
            "b": rng.random(n) < 0.3,
            "b_null": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
            "f_whole": rng.choice([1.0, 2.0, 30.0 + i], n),
            "f_mixed": rng.choice([1.0, 2.0] if i < 2 else [1.0, 2.5], n),
            "f_nan": rng.choice([0.25, np.nan, 7.0, -1.5], n),
            "mixed_types": rng.choice([1, 2], n) if i == 0 else rng.choice(["1", "z"], n),
            "y": rng.choice([0.0, 1.0, np.nan], n),
        })
        frame.to_parquet(directory / f"part-{i}.parquet", index=False, row_group_size=50)


@pytest.fixture
def cfg(tmp_path: Path):  # type: ignore[no-untyped-def]
    write_files(tmp_path)
    return build_config(source={"kind": "parquet", "path": str(tmp_path)}, columns=COLUMNS)


WINDOWS = [(None, None), (T0, T0 + timedelta(hours=2)), (T0 + timedelta(minutes=90), T0 + timedelta(hours=2, minutes=30)),
           (T0 + timedelta(days=1), None)]


@pytest.mark.parametrize(("start", "end"), WINDOWS)
@pytest.mark.parametrize("newest", [None, 70])
def test_codes_summarise_and_decode_as_the_strings(cfg, start, end, newest) -> None:  # type: ignore[no-untyped-def]
    want = sources.load_window(cfg, start, end, newest=newest)
    got = sources.load_window(cfg, start, end, newest=newest, categorical_codes=True)
    coded = [c for c in CATEGORICAL if isinstance(got[c].dtype, pd.CategoricalDtype)]
    # integer in one file, text in another: read the usual way (DuckDB's newest rows read it as text: coded)
    assert coded == [c for c in CATEGORICAL if c != "mixed_types" or newest]
    profile = drift.build_profile(sources.load_window(cfg, None, None), ["x"], CATEGORICAL)
    assert drift.summarize(got, profile) == drift.summarize(want, profile)
    pd.testing.assert_frame_equal(sources.decode_categoricals(cfg, got), want)
    assert set(got["s"].cat.categories) <= {"a", "b", "only-0", "only-1", "only-2"}


def test_labels_are_coerce_types_labels(cfg) -> None:  # type: ignore[no-untyped-def]
    first_two = sources.load_window(cfg, T0, T0 + timedelta(hours=2), categorical_codes=True)
    every = sources.load_window(cfg, None, None, categorical_codes=True)
    assert sorted(first_two["f_mixed"].cat.categories) == ["1", "2"]  # whole numbers in this window
    assert sorted(every["f_mixed"].cat.categories) == ["1.0", "2.0", "2.5"]
    assert sorted(every["f_nan"].cat.categories) == ["-1.5", "0.25", "7.0"]  # NaN is missing
    assert every["f_nan"].isna().sum() == sources.load_window(cfg, None, None)["f_nan"].isna().sum() > 0
    assert sorted(every["b_null"].cat.categories) == ["False", "True"]
    assert sorted(every["i_null"].cat.categories) == ["1", "2", "3", "4", "5"]


def test_labelled_only_and_empty_window(cfg) -> None:  # type: ignore[no-untyped-def]
    got = sources.load_window(cfg, None, None, labelled_only=True, categorical_codes=True)
    pd.testing.assert_frame_equal(sources.decode_categoricals(cfg, got), sources.load_window(cfg, None, None,
                                                                                               labelled_only=True))
    empty = sources.load_window(cfg, T0 + timedelta(days=2), None, categorical_codes=True)
    assert len(empty) == 0 and drift.categorical_counts_from_codes(empty["s"].cat.codes, empty["s"].cat.categories) \
        == ({}, 0)


def test_other_sources_come_as_usual(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ts": [T0, T0 + timedelta(hours=1)], "x": [1.0, 2.0], "s": ["a", None], "y": [1, 0]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = build_config(source={"kind": "csv", "path": str(tmp_path / "d.csv")},
                       columns={"timestamp": "ts", "label": "y", "numeric": ["x"], "categorical": ["s"]})
    got = sources.load_window(cfg, None, None, categorical_codes=True)
    pd.testing.assert_frame_equal(got, sources.load_window(cfg, None, None))
    pd.testing.assert_frame_equal(sources.decode_categoricals(cfg, got), got)


def test_sql_comes_as_usual(pg_dsn: str) -> None:
    """A SQL source has no codes path (fetching codes measured slower than text, see sources' docstring)."""
    from include.retraining.connections import connect

    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE coded_src (ts TIMESTAMPTZ, x DOUBLE PRECISION, s TEXT, y INTEGER)")
        cur.executemany("INSERT INTO coded_src VALUES (%s, %s, %s, 1)",
                        [(T0 + timedelta(hours=h), float(h), s) for h, s in enumerate(["a", None, "b", "a"])])
    cfg = build_config(source={"kind": "sql", "conn_id": "retraining_db", "path": None, "table": "coded_src"},
                       columns={"timestamp": "ts", "label": "y", "numeric": ["x"], "categorical": ["s"]})
    got = sources.load_window(cfg, None, None, categorical_codes=True)
    pd.testing.assert_frame_equal(got, sources.load_window(cfg, None, None))
    assert got["s"].fillna("-").tolist() == ["a", "-", "b", "a"]
