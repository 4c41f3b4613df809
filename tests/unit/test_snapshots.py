"""Training snapshots: content hashes, splits assigned once per row, idempotent collection."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining import storage
from include.retraining.training.snapshots import (
    SPLIT_COLUMN,
    assign_splits,
    collect,
    content_hash,
    dedupe,
    read_manifest,
    snapshot_root,
)

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def stream(n: int, seed: int = 0, positive_share: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "ts": pd.to_datetime([T0 + timedelta(minutes=i) for i in range(n)], utc=True),
            "x1": rng.normal(size=n).round(3),
            "x2": rng.integers(0, 100, n).astype(float),
            "c": rng.choice(["a", "b", "c"], n),
            "y": (rng.random(n) < positive_share).astype(int),
        }
    )


# --- content_hash and dedupe -----------------------------------------------------------------------


def test_content_hash_ignores_row_order_and_the_index() -> None:
    frame = stream(50)
    shuffled = frame.sample(frac=1.0, random_state=1)
    assert not shuffled.index.equals(frame.index)
    assert content_hash(shuffled) == content_hash(frame)
    assert content_hash(shuffled.reset_index(drop=True)) == content_hash(frame)
    assert len(content_hash(frame)) == 64


def test_content_hash_sees_values_and_column_names() -> None:
    frame = stream(50)
    changed = frame.copy()
    changed.loc[7, "x1"] += 0.001
    assert content_hash(changed) != content_hash(frame)
    assert content_hash(frame.rename(columns={"x1": "x9"})) != content_hash(frame)
    assert content_hash(frame.iloc[:-1]) != content_hash(frame)
    assert content_hash(frame.copy()) == content_hash(frame)


def test_dedupe_by_id_keeps_the_newest_row() -> None:
    cfg = build_config(columns={"id": "id"})
    frame = pd.DataFrame({"id": [1, 2, 1, 3], "y": [0, 1, 1, 0], "x1": [1.0, 2.0, 1.0, 3.0]})
    out = dedupe(cfg, frame)
    assert out["id"].tolist() == [2, 1, 3]
    assert out.loc[out["id"] == 1, "y"].item() == 1  # the later label wins


def test_dedupe_without_id_drops_identical_rows_only() -> None:
    cfg = build_config()
    frame = pd.DataFrame({"y": [0, 0, 1, 0], "x1": [1.0, 1.0, 1.0, 2.0]})
    assert dedupe(cfg, frame).index.tolist() == [1, 2, 3]


# --- assign_splits ---------------------------------------------------------------------------------


def test_assign_splits_is_about_70_15_15_and_stratified() -> None:
    cfg = build_config()
    frame = stream(2000, seed=3)
    out = assign_splits(cfg, frame)
    counts = out[SPLIT_COLUMN].value_counts()
    assert set(counts.index) == {"train", "validation", "test"}
    assert counts["train"] == pytest.approx(1400, abs=2)
    assert counts["validation"] == pytest.approx(300, abs=2)
    assert counts["test"] == pytest.approx(300, abs=2)
    overall = frame["y"].mean()
    for name, part in out.groupby(SPLIT_COLUMN):
        assert part["y"].mean() == pytest.approx(overall, abs=0.005), name  # stratified: same positive share
    pd.testing.assert_frame_equal(out.drop(columns=SPLIT_COLUMN), frame)  # rows untouched, in order


def test_assign_splits_is_seeded() -> None:
    cfg = build_config()
    frame = stream(300)
    assert assign_splits(cfg, frame)[SPLIT_COLUMN].tolist() == assign_splits(cfg, frame)[SPLIT_COLUMN].tolist()
    other = build_config(training={"seed": 7})
    assert assign_splits(other, frame)[SPLIT_COLUMN].tolist() != assign_splits(cfg, frame)[SPLIT_COLUMN].tolist()


def test_assign_splits_follows_the_configured_fractions() -> None:
    cfg = build_config(training={"train_fraction": 0.5, "validation_fraction": 0.25, "test_fraction": 0.25})
    counts = assign_splits(cfg, stream(400))[SPLIT_COLUMN].value_counts()
    assert (counts["train"], counts["validation"], counts["test"]) == (200, 100, 100)


def test_assign_splits_of_regression_and_rare_classes_and_tiny_frames() -> None:
    reg = build_config(model={"task": "regression"})
    frame = stream(100).assign(y=np.linspace(0, 1, 100))
    counts = assign_splits(reg, frame)[SPLIT_COLUMN].value_counts()
    assert counts.sum() == 100 and counts["test"] == 15
    rare = stream(100).assign(y=[1] * 3 + [0] * 97)  # too few positives to stratify: still split
    assert assign_splits(build_config(), rare)[SPLIT_COLUMN].notna().all()
    assert assign_splits(build_config(), stream(2))[SPLIT_COLUMN].tolist() == ["train", "train"]
    assert assign_splits(build_config(), stream(0))[SPLIT_COLUMN].tolist() == []


# --- collect ---------------------------------------------------------------------------------------


def collect_config(tmp_path: Path, with_id: bool = True, **training: object):
    return build_config(
        source={"kind": "parquet", "path": str(tmp_path / "source")},
        columns={"id": "id" if with_id else None},
        storage={"uri": str(tmp_path / "store")},
        training={"history_days": None, **training},
    )


def write_source(tmp_path: Path, name: str, frame: pd.DataFrame) -> None:
    (tmp_path / "source").mkdir(exist_ok=True)
    frame.to_parquet(tmp_path / "source" / f"{name}.parquet", index=False)


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)


@pytest.mark.parametrize("with_id", [True, False], ids=["by-id", "by-values"])
def test_collect_is_idempotent(tmp_path: Path, with_id: bool) -> None:
    cfg = collect_config(tmp_path, with_id)
    write_source(tmp_path, "a", stream(300))
    first = collect(cfg, minute(200))
    assert first["rows"] == 200 and first["new_rows"] == 200 and first["parent"] is None
    again = collect(cfg, minute(200))
    assert again["hash"] == first["hash"] and again["uri"] == first["uri"]
    assert again["new_rows"] == 0
    manifest = read_manifest(cfg)
    assert len(manifest) == 1
    assert {k: manifest[0][k] for k in ("uri", "hash", "cutoff", "rows")} == {
        "uri": first["uri"], "hash": first["hash"], "cutoff": minute(200).isoformat(), "rows": 200,
    }
    files = sorted(p.name for p in Path(snapshot_root(cfg)).iterdir())
    assert files == sorted(["manifest.json", Path(first["uri"]).name])
    assert Path(first["uri"]).name == f"20260301T032000Z_{first['hash'][:12]}.parquet"
    snap = storage.read_parquet(first["uri"])
    assert content_hash(snap) == first["hash"]
    assert snap["ts"].is_monotonic_increasing and snap["ts"].max() < pd.Timestamp(minute(200))


@pytest.mark.parametrize("with_id", [True, False], ids=["by-id", "by-values"])
def test_a_later_snapshot_keeps_the_earlier_rows_splits(tmp_path: Path, with_id: bool) -> None:
    cfg = collect_config(tmp_path, with_id)
    data = stream(500, seed=5)
    write_source(tmp_path, "a", data.iloc[:300])
    first = collect(cfg, minute(300))
    write_source(tmp_path, "b", data.iloc[300:])
    second = collect(cfg, minute(500))
    assert second["rows"] == 500 and second["new_rows"] == 200
    assert second["parent"] == first["hash"] and second["hash"] != first["hash"]
    key = "id" if with_id else "ts"  # without an id column the snapshot has no id; ts is unique here
    before = storage.read_parquet(first["uri"]).set_index(key)[SPLIT_COLUMN]
    after = storage.read_parquet(second["uri"]).set_index(key)[SPLIT_COLUMN]
    assert after.index.is_unique
    pd.testing.assert_series_equal(after.loc[before.index], before)  # the no-leak property
    assert set(after.drop(before.index)) == {"train", "validation", "test"}  # new rows split too
    assert [s["hash"] for s in read_manifest(cfg)] == [first["hash"], second["hash"]]
    # re-running the older window afterwards changes nothing
    assert collect(cfg, minute(300))["hash"] == first["hash"]
    assert len(read_manifest(cfg)) == 2


def test_a_label_that_arrives_late_is_picked_up_by_the_next_snapshot(tmp_path: Path) -> None:
    cfg = collect_config(tmp_path)
    data = stream(200)
    late = data.assign(y=data["y"].astype("Int64"))
    late.loc[late["id"] == 150, "y"] = pd.NA  # no label yet at the first cutoff
    write_source(tmp_path, "a", late)
    first = collect(cfg, minute(200))
    assert first["rows"] == 199
    write_source(tmp_path, "a", data)  # the label arrived
    second = collect(cfg, minute(200) + timedelta(hours=1))
    assert second["new_rows"] == 1 and second["rows"] == 200
    assert 150 in storage.read_parquet(second["uri"])["id"].tolist()


def test_history_days_drops_old_rows(tmp_path: Path) -> None:
    cfg = collect_config(tmp_path, history_days=1)
    old = stream(10).assign(ts=pd.to_datetime([T0 - timedelta(days=3)] * 10, utc=True), id=range(101, 111))
    write_source(tmp_path, "a", pd.concat([old, stream(100)], ignore_index=True))
    entry = collect(cfg, minute(100))
    assert entry["rows"] == 100
    assert storage.read_parquet(entry["uri"])["id"].min() == 1
