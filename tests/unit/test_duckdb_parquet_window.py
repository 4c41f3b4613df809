"""The newest rows of a large Parquet window, read by DuckDB (top N, memory of N rows): the same frame as the pandas
path (every file read, filtered, stably sorted, tail), ties in time across files and rows included."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining import sources
from include.retraining.errors import DataValidationError

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
COLUMNS = {"timestamp": "ts", "label": "y", "numeric": ["x"], "categorical": ["c"], "id": "id"}


def write_files(directory: Path) -> None:
    """Three files whose timestamps overlap and repeat (many ties), with NULL labels and a row without a time."""
    rng = np.random.default_rng(5)
    for i in range(3):
        n = 200
        minutes = rng.integers(0, 60, n)  # ties within and across files
        frame = pd.DataFrame({
            "id": np.arange(n) + 1000 * i,
            "ts": [T0 + timedelta(minutes=int(m)) for m in minutes],
            "x": rng.normal(size=n),
            "c": rng.choice(["a", "b", None], n),
            "y": rng.choice([0.0, 1.0, np.nan], n),
            "unused": "z",
        })
        frame.loc[3, "ts"] = pd.NaT
        frame.to_parquet(directory / f"part-{i}.parquet", index=False, row_group_size=64)


@pytest.mark.parametrize("labelled_only", [False, True])
@pytest.mark.parametrize("newest", [1, 57, 300, 10_000])
def test_newest_rows_match_the_pandas_path(tmp_path: Path, newest: int, labelled_only: bool) -> None:
    write_files(tmp_path)
    cfg = build_config(source={"kind": "parquet", "path": str(tmp_path)}, columns=COLUMNS)
    start, end = T0 + timedelta(minutes=5), T0 + timedelta(minutes=50)
    got = sources.load_window(cfg, start, end, labelled_only=labelled_only, newest=newest)
    want = _pandas_path(cfg, start, end, labelled_only, newest)
    pd.testing.assert_frame_equal(got, want)
    assert len(got) == min(newest, len(_pandas_path(cfg, start, end, labelled_only, None)))


def _pandas_path(cfg, start, end, labelled_only, newest):  # type: ignore[no-untyped-def]
    """load_window's pandas branch for files, as it reads them."""
    frame = sources._read_files(cfg, sources.required_columns(cfg))
    frame = frame[sources._in_window(frame, cfg.columns.timestamp, start, end)]
    if labelled_only:
        frame = frame[frame[cfg.columns.label].notna()]
    frame = frame.sort_values(cfg.columns.timestamp, kind="stable").reset_index(drop=True)
    if newest:
        frame = frame.tail(newest).reset_index(drop=True)
    return sources.coerce_types(cfg, frame)


def test_missing_file_and_column_are_named(tmp_path: Path) -> None:
    cfg = build_config(source={"kind": "parquet", "path": str(tmp_path / "nope.parquet")}, columns=COLUMNS)
    with pytest.raises(DataValidationError, match="data file not found"):
        sources.load_window(cfg, None, None, newest=10)
    pd.DataFrame({"ts": [T0], "x": [1.0], "y": [1]}).to_parquet(tmp_path / "thin.parquet")
    cfg = build_config(source={"kind": "parquet", "path": str(tmp_path / "thin.parquet")}, columns=COLUMNS)
    with pytest.raises(DataValidationError, match=r"no column\(s\) \['c', 'id'\]"):
        sources.load_window(cfg, None, None, newest=10)
