"""Storage: locations, round trips, and atomic local writes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.retraining import storage
from include.retraining.connections import REPO_ROOT


def test_resolve_local_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert storage.resolve(str(tmp_path)) == str(tmp_path)
    assert storage.resolve(".local/storage") == str((REPO_ROOT / ".local" / "storage").resolve())
    assert storage.resolve(f"file://{tmp_path}") == str(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert storage.resolve("~/data") == str(tmp_path / "data")


def test_resolve_urls_are_kept_without_a_trailing_slash() -> None:
    assert storage.resolve("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert storage.resolve("gs://bucket") == "gs://bucket"


def test_join() -> None:
    assert storage.join("s3://bucket/", "/model/", "snapshots") == "s3://bucket/model/snapshots"
    assert storage.join("/data", "a", "b.parquet") == "/data/a/b.parquet"
    assert storage.join("/data/") == "/data"


def test_parquet_round_trip_creates_folders(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-03-01 10:00", "2026-03-01 11:30"], utc=True),
            "x": [1.5, np.nan],
            "c": ["a", None],
            "y": [0, 1],
        }
    )
    uri = str(tmp_path / "deep" / "er" / "frame.parquet")
    assert not storage.exists(uri)
    storage.write_parquet(frame, uri)
    assert storage.exists(uri)
    back = storage.read_parquet(uri)
    pd.testing.assert_frame_equal(back, frame)
    assert str(back["ts"].dt.tz) == "UTC"


def test_json_round_trip_is_sorted_and_stringifies_unknown_types(tmp_path: Path) -> None:
    uri = str(tmp_path / "x.json")
    storage.write_json({"b": 1, "a": [1, 2], "when": datetime(2026, 3, 1, tzinfo=timezone.utc)}, uri)
    text = Path(uri).read_text()
    assert text.index('"a"') < text.index('"b"') < text.index('"when"')
    assert storage.read_json(uri) == {"a": [1, 2], "b": 1, "when": "2026-03-01 00:00:00+00:00"}


def test_local_writes_replace_the_file_and_leave_no_temporary_files(tmp_path: Path) -> None:
    uri = str(tmp_path / "state.json")
    storage.write_json({"v": 1}, uri)
    storage.write_json({"v": 2}, uri)
    assert storage.read_json(uri) == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    uri = str(tmp_path / "frame.parquet")
    old = pd.DataFrame({"x": [1, 2, 3]})
    storage.write_parquet(old, uri)
    with pytest.raises(ValueError):  # pyarrow.ArrowInvalid
        storage.write_parquet(pd.DataFrame({"x": [object(), object()]}), uri)  # cannot be serialised
    pd.testing.assert_frame_equal(storage.read_parquet(uri), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.parquet"]


def test_fsspec_urls(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    base = f"memory://unit-{tmp_path.name}"
    uri = storage.join(base, "a", "b.json")
    assert not storage.exists(uri)
    storage.write_json({"k": [1, 2]}, uri)
    assert storage.exists(uri)
    assert storage.read_json(uri) == {"k": [1, 2]}
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    storage.write_parquet(frame, storage.join(base, "f.parquet"))
    pd.testing.assert_frame_equal(storage.read_parquet(storage.join(base, "f.parquet")), frame)
    assert json.loads(storage._read_bytes(uri)) == {"k": [1, 2]}


def test_file_urls_are_local_paths(tmp_path) -> None:
    from include.retraining import storage

    uri = f"file://{tmp_path}/a/b.json"
    storage.write_json({"x": 1}, uri)
    assert storage.exists(uri) and storage.read_json(uri) == {"x": 1}
    assert (tmp_path / "a" / "b.json").exists()
