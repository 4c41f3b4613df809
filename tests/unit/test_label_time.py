"""Labels as of a time (``columns.label_time``): PostgreSQL, Parquet and CSV sources, the training snapshot,
prepare, and a replay of an old window on the demo stream."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from unit_helpers import build_config

from include.retraining import demo_data
from include.retraining.connections import connect
from include.retraining.errors import DataValidationError
from include.retraining.sources import (
    WindowCounts,
    count_window,
    current_labels_as_of,
    decision_time,
    labels_as_of,
    latest_labelled_time,
    load_window,
    mask_labels,
)
from include.retraining.training.snapshots import collect, content_hash, read_manifest

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOURS = 12


def at(hour: float) -> datetime:
    return T0 + timedelta(hours=hour)


def rows() -> pd.DataFrame:
    """Twelve hourly rows. Row ``h``'s label arrives ``2 + (h % 4)`` hours after it; row 5 has no label,
    row 7 a label without an arrival time."""
    hours = list(range(HOURS))
    lt = [at(h + 2 + h % 4) for h in hours]
    frame = pd.DataFrame({
        "id": [h + 1 for h in hours],
        "ts": pd.to_datetime([at(h) for h in hours], utc=True),
        "x1": [0.5 + h for h in hours],
        "x2": [10.0 * h for h in hours],
        "c": ["a", "b", "c"] * 4,
        "y": [h % 2 for h in hours],
        "lt": pd.to_datetime(lt, utc=True),
    })
    frame["y"] = frame["y"].astype("Int64")
    frame.loc[5, ["y", "lt"]] = [pd.NA, pd.NaT]
    frame.loc[7, "lt"] = pd.NaT
    return frame


def arrived(frame: pd.DataFrame, when: datetime) -> pd.Series:
    return frame["y"].notna() & frame["lt"].notna() & (frame["lt"] <= pd.Timestamp(when))


@pytest.fixture(params=["sql", "parquet", "csv"])
def source(request: pytest.FixtureRequest, tmp_path: Path):
    """(kind, how to build a config for it) over the same rows."""
    kind = request.param
    frame = rows()
    if kind == "sql":
        dsn = request.getfixturevalue("pg_dsn")
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE labelled_src (id BIGINT, ts TIMESTAMPTZ, x1 DOUBLE PRECISION, "
                        "x2 DOUBLE PRECISION, c TEXT, y INTEGER, lt TIMESTAMP)")  # lt: naive, read as UTC
            for r in frame.itertuples():
                cur.execute("INSERT INTO labelled_src VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (r.id, r.ts.to_pydatetime(), r.x1, r.x2, r.c, None if pd.isna(r.y) else int(r.y),
                             None if pd.isna(r.lt) else r.lt.tz_convert(None).to_pydatetime()))
        src = {"kind": "sql", "conn_id": "retraining_db", "table": "labelled_src"}
    else:
        path = tmp_path / f"data.{kind}"
        if kind == "csv":
            text = frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                lt=frame["lt"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
            text.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        src = {"kind": kind, "path": str(path)}

    def config(label_time: str | None = "lt", **extra: object):
        columns = {"id": "id", **({"label_time": label_time} if label_time else {})}
        return build_config(source=src, columns=columns, storage={"uri": str(tmp_path / "storage")}, **extra)

    return kind, config


def test_counting_sees_only_the_labels_arrived_by_the_as_of_time(source) -> None:
    _, config = source
    cfg, frame = config(), rows()
    assert count_window(cfg, at(0), at(HOURS)) == WindowCounts(12, 11)  # no as-of: every label
    for when in (at(4), at(7.5), at(20)):
        with labels_as_of(when):
            expected = int(arrived(frame, when).sum())
            assert count_window(cfg, at(0), at(HOURS)) == WindowCounts(12, expected)
    with labels_as_of(at(20)):  # every arrival time passed; row 7's label has none: missing
        assert count_window(cfg, None, None).labelled == 10
    with labels_as_of(at(4)):  # rows 0 (arrived 2:00), 1 (4:00)
        assert count_window(cfg, at(0), at(HOURS)).labelled == 2
        assert count_window(cfg, at(1), at(2)).labelled == 1  # half-open window, as before


def test_without_label_time_or_without_an_as_of_time_nothing_changes(source) -> None:
    _, config = source
    plain, timed = config(label_time=None), config()
    everything = count_window(plain, at(0), at(HOURS))
    reference = load_window(plain, None, None)
    assert count_window(timed, at(0), at(HOURS)) == everything
    with labels_as_of(at(4)):
        assert count_window(plain, at(0), at(HOURS)) == everything  # not configured: as-of ignored
        pd.testing.assert_frame_equal(load_window(plain, None, None), reference)
        assert latest_labelled_time(plain, at(HOURS)) == at(11)
        with labels_as_of(None):  # lifted
            assert count_window(timed, at(0), at(HOURS)) == everything
    unfiltered = load_window(timed, None, None)
    pd.testing.assert_frame_equal(unfiltered, reference)
    assert "lt" not in unfiltered.columns  # the arrival time is never read as a column of the rows


def test_loads_take_the_labels_as_of_the_time(source) -> None:
    kind, config = source
    cfg, frame = config(), rows()
    when = at(7.5)
    known = arrived(frame, when)
    with labels_as_of(when):
        loaded = load_window(cfg, None, None)
        labelled = load_window(cfg, None, None, labelled_only=True)
        newest = load_window(cfg, at(0), at(HOURS), newest=5)  # the performance rows (DuckDB for Parquet)
        coded = load_window(cfg, at(0), at(HOURS), categorical_codes=True)
    assert "lt" not in loaded.columns and list(loaded.columns) == list(load_window(cfg, None, None).columns)
    assert loaded["id"].tolist() == frame["id"].tolist()  # every row, late labels missing
    assert loaded["y"].notna().tolist() == known.tolist()
    assert loaded.loc[known.to_numpy(), "y"].astype(int).tolist() == frame.loc[known, "y"].astype(int).tolist()
    assert labelled["id"].tolist() == frame.loc[known, "id"].tolist()
    assert newest["id"].tolist() == [8, 9, 10, 11, 12]
    assert newest["y"].notna().tolist() == known.iloc[7:].tolist()
    assert coded["y"].notna().tolist() == known.tolist()
    with labels_as_of(when):
        assert load_window(cfg, at(0), at(HOURS), labelled_only=True, newest=2)["id"].tolist() == \
            frame.loc[known, "id"].tolist()[-2:]
        assert latest_labelled_time(cfg, at(HOURS)) == at(int(frame.loc[known, "id"].max()) - 1)
    assert latest_labelled_time(cfg, at(HOURS)) == at(11)


def test_labels_after_keeps_the_late_labels_only(source) -> None:
    _, config = source
    cfg = config()
    with labels_as_of(at(9)):
        late = load_window(cfg, None, at(6), labelled_only=True, labels_after=at(5))
    # rows before 6:00 whose label arrived in (5:00, 9:00]: row 1 (arrived 4:00) no, row 2 (6:00), 3 (8:00), 4 (6:00)
    assert late["id"].tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match="label_time"):
        load_window(config(label_time=None), None, None, labels_after=at(5))


def test_a_missing_label_time_column_is_named(source, tmp_path: Path) -> None:
    _, config = source
    cfg = config(label_time="arrived")
    assert count_window(cfg, at(0), at(HOURS)).labelled == 11  # not needed without an as-of time
    with labels_as_of(at(5)), pytest.raises(DataValidationError, match="arrived.*columns.label_time"):
        count_window(cfg, at(0), at(HOURS))


def test_decision_time_is_when_enough_labels_had_arrived(source) -> None:
    _, config = source
    # window [0:00, 6:00): arrivals 2:00, 4:00, 6:00, 8:00, 6:00 (row 5 none) -> sorted 2, 4, 6, 6, 8
    cfg = config(window={"min_labelled_rows": 3, "label_wait_hours": 5})
    assert decision_time(cfg, at(0), at(6)) == at(6)  # the third arrived at 6:00, the window's end
    cfg = config(window={"min_labelled_rows": 5, "label_wait_hours": 5})
    assert decision_time(cfg, at(0), at(6)) == at(8)
    cfg = config(window={"min_labelled_rows": 1, "label_wait_hours": 5})
    assert decision_time(cfg, at(0), at(6)) == at(6)  # never before the window's end
    cfg = config(window={"min_labelled_rows": 5, "label_wait_hours": 1})
    assert decision_time(cfg, at(0), at(6)) == at(7)  # at most the sensor's wait
    cfg = config(window={"min_labelled_rows": 6, "label_wait_hours": 5})
    assert decision_time(cfg, at(0), at(6)) == at(11)  # too few ever: the deadline
    plain = config(label_time=None, window={"min_labelled_rows": 3, "label_wait_hours": 5})
    assert decision_time(plain, at(0), at(6)) == at(11)


def test_the_snapshot_holds_the_labels_as_of_its_time_and_says_so(source) -> None:
    _, config = source
    cfg, frame = config(), rows()
    replay = at(7.5)
    with labels_as_of(replay):
        old = collect(cfg, at(HOURS))
    snapshot = pd.read_parquet(old["uri"])
    assert snapshot["id"].tolist() == frame.loc[arrived(frame, replay), "id"].tolist()
    assert old["labels_as_of"] == replay.isoformat()
    assert read_manifest(cfg)[-1]["labels_as_of"] == replay.isoformat()
    assert old["hash"] != content_hash(snapshot)  # the as-of time is part of the hash
    with labels_as_of(replay):
        repeated = collect(cfg, at(HOURS))  # idempotent under the same time
    assert (repeated["hash"], repeated["uri"], repeated["rows"]) == (old["hash"], old["uri"], old["rows"])

    # a live run later: every arrived label, a new snapshot (built on the replay's, adding the late labels)
    live = at(30)
    with labels_as_of(live):
        later = collect(cfg, at(HOURS))
    assert pd.read_parquet(later["uri"])["id"].tolist() == frame.loc[arrived(frame, live), "id"].tolist()
    assert later["hash"] != old["hash"] and later["labels_as_of"] == live.isoformat()

    # a replay after it never builds on the live snapshot, which holds labels the replay could not have seen
    with labels_as_of(replay):
        again = collect(cfg, at(HOURS))
    assert pd.read_parquet(again["uri"])["id"].tolist() == frame.loc[arrived(frame, replay), "id"].tolist()
    assert again["hash"] == old["hash"]


def test_a_later_snapshot_adds_labels_that_arrived_after_the_margin(source) -> None:
    """The parent's rows before its cutoff minus the late-label margin are read again only for labels that
    arrived after the parent's as-of time."""
    _, config = source
    cfg = config(window={"lookback_hours": 1, "label_wait_hours": 0})
    frame = rows()
    with labels_as_of(at(7)):
        first = collect(cfg, at(8))  # rows 0-7, labels arrived by 7:00: rows 0, 1, 2, 4
    assert pd.read_parquet(first["uri"])["id"].tolist() == [1, 2, 3, 5]
    with labels_as_of(at(30)):
        second = collect(cfg, at(9))  # margin: from 7:00 only; rows 3 (arrived 8:00) and 6 (arrived 11:00) too
    assert second["parent"] == first["hash"]
    expected = frame.loc[arrived(frame, at(30)) & (frame["ts"] < pd.Timestamp(at(9))), "id"].tolist()
    assert sorted(pd.read_parquet(second["uri"])["id"].tolist()) == expected
    assert 4 in expected and 7 in expected


def test_prepare_masks_a_snapshot_that_carries_arrival_times() -> None:
    cfg = build_config(columns={"id": "id", "label_time": "lt"})
    frame = rows()
    with labels_as_of(at(6)):
        masked = mask_labels(cfg, frame)
    assert masked["y"].notna().tolist() == arrived(frame, at(6)).tolist()
    assert mask_labels(cfg, frame) is frame  # no time in force
    assert mask_labels(build_config(columns={"id": "id"}), frame, at(6)) is frame  # not configured
    with pytest.raises(DataValidationError, match="label_time 'lt'"):
        mask_labels(cfg, frame.drop(columns=["lt"]), at(6))


def test_the_context_nests_and_restores() -> None:
    assert current_labels_as_of() is None
    with labels_as_of(datetime(2026, 3, 1, 5)) as outer:  # naive: UTC
        assert outer == at(5) and current_labels_as_of() == at(5)
        with labels_as_of(at(2)):
            assert current_labels_as_of() == at(2)
        with labels_as_of(None):
            assert current_labels_as_of() is None
        assert current_labels_as_of() == at(5)
    assert current_labels_as_of() is None


@pytest.mark.parametrize("column", ["ts", "y", "x1", "c", "id"])
def test_label_time_must_be_a_column_of_its_own(column: str) -> None:
    with pytest.raises(ValidationError, match=f"columns.label_time '{column}' is also columns"):
        build_config(columns={"id": "id", "label_time": column})
    assert build_config(columns={"id": "id", "label_time": "lt"}).columns.label_time == "lt"


def test_a_replay_of_an_old_window_sees_fewer_labels_than_without(pg_dsn: str, monkeypatch) -> None:
    """The demo stream with labels that take hours to days, in PostgreSQL with the bundled configuration: read
    now, an old window is fully labelled; replayed as of the moment its run would have decided, it is not."""
    from include.retraining.config import DEFAULT_CONFIG_PATH, load_config

    spec = demo_data.StreamSpec(start=at(0), end=at(96), drift_at=None, rows_per_hour=200, label_delay_hours=2,
                                label_delay_spread_hours=12.0, as_of=at(24 * 30))
    stream = demo_data.generate(spec)
    demo_data.load_into_postgres(pg_dsn, "credit_replay", stream)
    monkeypatch.setenv("RETRAINING_SOURCE_TABLE", "credit_replay")
    monkeypatch.setenv("RETRAINING_SOURCE_CONN_ID", "retraining_db")
    cfg = load_config(DEFAULT_CONFIG_PATH)
    start, end = at(24), at(30)
    now = count_window(cfg, start, end)
    assert now.labelled == now.rows  # read today every label has arrived
    when = decision_time(cfg, start, end)
    assert end <= when <= end + timedelta(hours=cfg.window.label_wait_hours)
    with labels_as_of(when):
        replayed = count_window(cfg, start, end)
        rows_ = load_window(cfg, start, end)
    window = stream[(stream["application_ts"] >= pd.Timestamp(start)) & (stream["application_ts"] < pd.Timestamp(end))]
    expected = int((window["label_arrived_at"].dt.floor("us") <= pd.Timestamp(when)).sum())  # PostgreSQL: us
    assert replayed == WindowCounts(now.rows, expected)
    assert cfg.window.min_labelled_rows <= replayed.labelled < 0.8 * now.labelled
    assert int(rows_["defaulted"].notna().sum()) == expected
