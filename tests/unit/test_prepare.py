"""Preparing a snapshot for training: label checks, cleaning, the splits and the reference slice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining import storage
from include.retraining.errors import DataValidationError, InsufficientDataError
from include.retraining.training.prepare import check_label, out_of_time_holdout, prepare, reference_slice
from include.retraining.training.snapshots import SPLIT_COLUMN, assign_splits

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)


# --- check_label -----------------------------------------------------------------------------------


def test_single_class_label_names_the_label_column() -> None:
    cfg = build_config(columns={"label": "defaulted", "numeric": ["x1"]})
    with pytest.raises(DataValidationError) as info:
        check_label(cfg, pd.Series([1, 1, 1], name="defaulted"))
    message = str(info.value)
    assert "label column 'defaulted' has a single class" in message
    assert "binary classifier needs at least two" in message
    with pytest.raises(DataValidationError, match=r"'defaulted' has a single class \('none'\)"):
        check_label(cfg, pd.Series([], dtype="int64"))


def test_single_class_message_shows_the_plain_value() -> None:
    with pytest.raises(DataValidationError, match=r"has a single class \(1\) in the training data"):
        check_label(build_config(), pd.Series([1, 1, 1]))


def test_binary_label_with_three_classes() -> None:
    with pytest.raises(DataValidationError, match=r"label column 'y' has 3 classes \[0, 1, 2\] but model.task is 'binary'"):
        check_label(build_config(), pd.Series([0, 1, 2, 0, 1, 2]))


def test_a_class_needs_two_rows() -> None:
    cfg = build_config(model={"task": "multiclass"})
    with pytest.raises(DataValidationError, match=r"classes with fewer than 2 rows: \{'c': 1\}"):
        check_label(cfg, pd.Series(["a", "a", "b", "b", "c"]))


def test_classes_are_sorted_plain_python_values() -> None:
    classes = check_label(build_config(), pd.Series(np.array([1, 0, 1, 0, 0])))
    assert classes == [0, 1] and all(type(c) is int for c in classes)
    assert check_label(build_config(model={"task": "multiclass"}), pd.Series(["b", "c", "a", "c", "b", "a"])) == [
        "a", "b", "c",
    ]


def test_regression_label_must_be_numeric() -> None:
    cfg = build_config(model={"task": "regression"})
    assert check_label(cfg, pd.Series([1.5, 2.0, "3"])) == []
    with pytest.raises(DataValidationError, match=r"regression label 'y' has non-numeric values"):
        check_label(cfg, pd.Series([1.5, "lots"]))


# --- reference_slice -------------------------------------------------------------------------------


def timeline(n: int) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.to_datetime([minute(i) for i in range(n)], utc=True), "v": range(n)})


def test_reference_slice_takes_the_last_hours_before_the_cutoff() -> None:
    cfg = build_config(drift={"reference_hours": 2})
    frame = timeline(600)  # 10 hours, one row a minute
    ref = reference_slice(cfg, frame, minute(600))
    assert ref["v"].tolist() == list(range(480, 600))  # ts >= cutoff - 2h
    assert reference_slice(build_config(window={"lookback_hours": 3}), frame, minute(600))["v"].min() == 420


def test_reference_slice_falls_back_to_the_newest_rows_and_is_capped() -> None:
    cfg = build_config(drift={"reference_hours": 1, "reference_max_rows": 150})
    frame = timeline(600)
    # a cutoff far after the data: fewer than 100 recent rows, so the newest rows are used
    assert reference_slice(cfg, frame, minute(600) + timedelta(days=2))["v"].tolist() == list(range(450, 600))
    long = build_config(drift={"reference_hours": 8, "reference_max_rows": 150})
    assert len(reference_slice(long, frame, minute(600))) == 150  # capped at reference_max_rows


# --- prepare ---------------------------------------------------------------------------------------


def snapshot_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "ts": pd.to_datetime([minute(i) for i in range(n)], utc=True),
            "x1": rng.normal(size=n),
            "x2": rng.integers(0, 10, n).astype(float),
            "c": rng.choice(["a", "b"], n),
            "y": (rng.random(n) < 0.3).astype(float),
        }
    )
    frame.loc[frame.index % 40 == 0, "x1"] = np.nan  # 10 of 400 missing
    return frame


def prepare_config(min_rows: int = 50, **extra: object):
    return build_config(columns={"id": "id"}, training={"min_rows": min_rows}, **extra)


def test_prepare_writes_splits_and_profile(tmp_path: Path) -> None:
    cfg = prepare_config(gate={"holdout_hours": 1, "min_holdout_rows": 50})
    frame = snapshot_frame()
    frame.loc[[5, 6, 7], "y"] = np.nan  # not labelled yet
    frame = pd.concat([frame, frame.iloc[[10, 11]]], ignore_index=True)  # two repeated rows
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    out_dir = str(tmp_path / "prepared")
    summary = prepare(cfg, uri, cutoff=minute(400), out_dir=out_dir)

    assert summary["duplicates_removed"] == 2
    assert summary["unlabelled_dropped"] == 3
    assert summary["classes"] == [0, 1]
    assert sum(summary["rows"].values()) == 397
    # the out-of-time holdout: the last hour before the newest row (minutes 340..399)
    assert summary["rows"]["test"] == 60
    assert summary["holdout"] == {"start": minute(340).isoformat(), "end": minute(399).isoformat(), "rows": 60,
                                  "hours": 1}
    # the earlier rows keep their random split: 70/15/15
    assert summary["rows"]["train"] == pytest.approx(0.70 * 337, abs=3)
    assert summary["rows"]["test_in_time"] == pytest.approx(0.15 * 337, abs=3)
    assert summary["missing_rates"] == {"x1": round(10 / 397, 6)}  # only features with missing values

    parts = {name: storage.read_parquet(u) for name, u in summary["splits"].items()}
    assert set(parts) == {"train", "validation", "test", "test_in_time"}
    ids = pd.concat([p["id"] for p in parts.values()])
    assert ids.is_unique and len(ids) == 397
    for name in ("train", "validation"):
        assert (parts[name][SPLIT_COLUMN] == name).all()
    assert (parts["test_in_time"][SPLIT_COLUMN] == "test").all()
    # nothing learned from is as new as the holdout
    learned = pd.concat([parts["train"]["ts"], parts["validation"]["ts"]])
    assert learned.max() < parts["test"]["ts"].min()
    assert summary["trained_until"] == learned.max().isoformat()
    assert parts["train"]["y"].dtype == np.int64  # a float 0/1 label becomes int classes

    profile = storage.read_json(summary["profile_uri"])
    assert summary["profile_uri"] == f"{out_dir}/reference_profile.json"
    # the reference is the last window.lookback_hours (6 h) before the cutoff: minutes 40..399, labelled
    assert profile["rows"] == 360
    assert set(profile["numeric"]) == {"x1", "x2"} and set(profile["categorical"]) == {"c"}


def test_the_holdout_reaches_back_to_min_holdout_rows() -> None:
    cfg = prepare_config(gate={"holdout_hours": 1, "min_holdout_rows": 100})
    ts = snapshot_frame()["ts"]
    mask = out_of_time_holdout(cfg, ts, minute(400))
    assert mask.sum() == 100 and ts[mask].min() == pd.Timestamp(minute(300))
    # rows at or after the cutoff are never in it
    assert out_of_time_holdout(cfg, ts, minute(200)).sum() == 100
    assert ts[out_of_time_holdout(cfg, ts, minute(200))].max() == pd.Timestamp(minute(199))


def test_prepare_keeps_the_snapshot_splits(tmp_path: Path) -> None:
    cfg = prepare_config(gate={"holdout_hours": 1, "min_holdout_rows": 50})
    frame = assign_splits(cfg, snapshot_frame())
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    summary = prepare(cfg, uri, minute(400), str(tmp_path / "out"))
    in_time_ids = storage.read_parquet(summary["splits"]["test_in_time"])["id"]
    earlier = frame[frame["ts"] < pd.Timestamp(minute(340))]
    assert sorted(in_time_ids) == sorted(earlier.loc[earlier[SPLIT_COLUMN] == "test", "id"])


def test_prepare_with_a_single_class_names_the_label(tmp_path: Path) -> None:
    cfg = prepare_config()
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(snapshot_frame().assign(y=0.0), uri)
    with pytest.raises(DataValidationError, match=r"label column 'y' has a single class .*binary classifier"):
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))


def test_prepare_with_too_few_rows(tmp_path: Path) -> None:
    cfg = prepare_config(min_rows=500)
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(snapshot_frame(), uri)
    with pytest.raises(InsufficientDataError, match="only 400 labelled rows to train on, training.min_rows is 500"):
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))


def test_prepare_names_a_missing_column(tmp_path: Path) -> None:
    cfg = prepare_config()
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(snapshot_frame().drop(columns=["x2"]), uri)
    with pytest.raises(DataValidationError, match=r"lacks column\(s\) \['x2'\]"):
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))


def test_prepare_names_a_non_numeric_feature(tmp_path: Path) -> None:
    cfg = prepare_config()
    frame = snapshot_frame().astype({"x2": str})  # text in the file, as from a loose CSV export
    frame.loc[3, "x2"] = "seven"
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    with pytest.raises(DataValidationError, match=r"numeric feature 'x2' .*\['seven'\]"):
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))


def test_prepare_refuses_infinities_naming_the_column_and_count(tmp_path: Path) -> None:
    cfg = prepare_config()
    frame = snapshot_frame()
    frame.loc[[3, 90], "x2"] = np.inf
    frame.loc[[120], "x2"] = -np.inf
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    with pytest.raises(DataValidationError) as info:
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))
    message = str(info.value)
    assert "numeric feature(s) holding +/-inf: 'x2' (3 of 400 rows)" in message
    assert "fix the feed, or drop the column(s) from columns.numeric / columns.categorical" in message
    assert "x1" not in message


def test_prepare_refuses_infinities_from_a_text_export(tmp_path: Path) -> None:
    cfg = prepare_config()
    frame = snapshot_frame().astype({"x2": str})  # "-inf" in a loose CSV export parses as an infinity
    frame.loc[7, "x2"] = "-inf"
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    with pytest.raises(DataValidationError, match=r"holding \+/-inf: 'x2' \(1 of 400 rows\)"):
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))


def test_prepare_refuses_a_feature_missing_in_every_labelled_row(tmp_path: Path) -> None:
    cfg = prepare_config()
    frame = snapshot_frame()
    frame["c"] = None  # the categorical feed lost the column
    frame["x2"] = np.nan
    frame.loc[frame.index % 2 == 0, "y"] = np.nan
    frame.loc[2, "x2"] = 1.0  # a value in an unlabelled row only: still nothing to learn from
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    with pytest.raises(DataValidationError) as info:
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))
    message = str(info.value)
    assert "feature(s) missing in all 200 labelled rows: 'x2', 'c'" in message
    assert "drop the column(s) from columns.numeric / columns.categorical" in message


def test_prepare_refuses_a_feature_the_train_split_never_saw(tmp_path: Path) -> None:
    cfg = prepare_config(gate={"holdout_hours": 1, "min_holdout_rows": 50})
    frame = snapshot_frame()
    frame.loc[frame.index < 340, "x2"] = np.nan  # a new column: only the holdout's rows have it
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    with pytest.raises(DataValidationError, match=r"feature\(s\) missing in all \d+ rows of the train split: 'x2'"):
        prepare(cfg, uri, minute(400), str(tmp_path / "out"))


def test_prepare_takes_a_snapshot_with_arrival_times_as_of_the_time_in_force(tmp_path: Path) -> None:
    """A snapshot made elsewhere that carries columns.label_time: under labels_as_of, a label that arrived later is
    unlabelled (dropped); the arrival time never reaches the splits."""
    from include.retraining.sources import labels_as_of

    cfg = build_config(columns={"id": "id", "label_time": "lt"}, training={"min_rows": 50},
                       gate={"holdout_hours": 1, "min_holdout_rows": 50})
    frame = snapshot_frame().assign(lt=lambda f: f["ts"] + pd.Timedelta(minutes=30))
    uri = str(tmp_path / "snap.parquet")
    storage.write_parquet(frame, uri)
    with labels_as_of(minute(400)):  # the labels of minutes 371-399 had not arrived (370: at 400, just in)
        summary = prepare(cfg, uri, cutoff=minute(400), out_dir=str(tmp_path / "as_of"))
    assert summary["unlabelled_dropped"] == 29 and sum(summary["rows"].values()) == 371
    assert summary["holdout"]["end"] == minute(370).isoformat()
    assert all("lt" not in storage.read_parquet(u).columns for u in summary["splits"].values())
    everything = prepare(cfg, uri, cutoff=minute(400), out_dir=str(tmp_path / "now"))  # no time in force
    assert everything["unlabelled_dropped"] == 0 and sum(everything["rows"].values()) == 400
