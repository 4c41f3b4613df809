"""Time rules: the window a run checks, the start-date bound, and the champion history that judges past windows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining.errors import DataValidationError
from include.retraining.monitoring.assessment import decide
from include.retraining.point_in_time import (
    check_start_date,
    floor_to_grid,
    latest_window_with_data,
    start_date,
)
from include.retraining.record import champion_history

UTC = timezone.utc
SIX = timedelta(hours=6)


def test_floor_to_grid():
    assert floor_to_grid(datetime(2026, 3, 8, 13, 59, tzinfo=UTC), SIX) == datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert floor_to_grid(datetime(2026, 3, 8, 12, tzinfo=UTC), SIX) == datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert floor_to_grid(datetime(1999, 12, 31, 23, tzinfo=UTC), SIX) == datetime(1999, 12, 31, 18, tzinfo=UTC)
    assert floor_to_grid(datetime(1961, 7, 2, 5, 59, 59, 999999, tzinfo=UTC), SIX) == datetime(1961, 7, 2, tzinfo=UTC)


def test_floor_to_grid_takes_the_pendulum_datetimes_airflow_hands_to_tasks():
    import pendulum

    moment = pendulum.datetime(2026, 11, 30, 16, 43, 8, 568985, tz="UTC")  # the trigger form's default date
    assert floor_to_grid(moment, SIX) == datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert floor_to_grid(pendulum.datetime(2026, 3, 8, 18, tz="UTC"), SIX) == datetime(2026, 3, 8, 18, tzinfo=UTC)


def source(tmp_path: Path, ts: list[datetime], labelled: list[bool]):
    frame = pd.DataFrame({"ts": ts, "x1": 1.0, "x2": 2.0, "c": "a", "y": [1.0 if k else None for k in labelled]})
    frame.to_parquet(tmp_path / "data.parquet")
    return build_config(source={"kind": "parquet", "path": str(tmp_path / "data.parquet")},
                        window={"lookback_hours": 6, "min_labelled_rows": 10})


def every(minutes: int, start: datetime, end: datetime) -> list[datetime]:
    return list(pd.date_range(start, end, freq=f"{minutes}min", inclusive="left").to_pydatetime())


def test_a_manual_run_without_a_date_checks_the_latest_window_with_labelled_data(tmp_path: Path):
    # data until 06:00 on 03-09, labels three hours behind; the trigger comes months later
    ts = every(10, datetime(2026, 3, 8, 12, tzinfo=UTC), datetime(2026, 3, 9, 6, tzinfo=UTC))
    cfg = source(tmp_path, ts, [t < datetime(2026, 3, 9, 3, tzinfo=UTC) for t in ts])
    window = latest_window_with_data(cfg, datetime(2026, 11, 30, 15, 10, tzinfo=UTC), SIX)
    assert (window.start, window.end) == (datetime(2026, 3, 9, 0, tzinfo=UTC), datetime(2026, 3, 9, 6, tzinfo=UTC))
    assert window.rule == "latest_with_data" and "latest window with enough labelled data" in window.note


def test_the_open_window_is_never_chosen_and_thin_windows_are_stepped_over(tmp_path: Path):
    ts = every(10, datetime(2026, 3, 8, 0, tzinfo=UTC), datetime(2026, 3, 9, 9, tzinfo=UTC))
    # labels up to 08:00 on 03-09, but the window [03-09 00:00, 06:00) only has 5 labelled rows
    labelled = [t < datetime(2026, 3, 9, 8, tzinfo=UTC)
                and not (datetime(2026, 3, 9, 0, 50, tzinfo=UTC) <= t < datetime(2026, 3, 9, 6, tzinfo=UTC))
                for t in ts]
    cfg = source(tmp_path, ts, labelled)
    # at 03-09 09:30 the window [06:00, 12:00) is still open: the latest closed one ends at 06:00
    window = latest_window_with_data(cfg, datetime(2026, 3, 9, 9, 30, tzinfo=UTC), SIX)
    assert window.end == datetime(2026, 3, 9, 0, tzinfo=UTC)
    assert "1 newer window(s) had fewer than 10 labelled rows" in window.note


def test_no_labelled_data_at_all_checks_the_last_closed_window(tmp_path: Path):
    ts = every(10, datetime(2026, 3, 8, 0, tzinfo=UTC), datetime(2026, 3, 8, 6, tzinfo=UTC))
    cfg = source(tmp_path, ts, [False] * len(ts))
    window = latest_window_with_data(cfg, datetime(2026, 3, 8, 7, tzinfo=UTC), SIX)
    assert window.end == datetime(2026, 3, 8, 6, tzinfo=UTC) and "no labelled rows" in window.note


def test_start_date_is_unset_by_default_and_a_run_before_it_is_an_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RETRAINING_START_DATE", raising=False)
    assert start_date() is None
    check_start_date(datetime(2013, 5, 1, tzinfo=UTC))  # any window can be replayed
    monkeypatch.setenv("RETRAINING_START_DATE", "2024-01-01")
    assert start_date() == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(DataValidationError, match="RETRAINING_START_DATE=2024-01-01"):
        check_start_date(datetime(2013, 5, 1, tzinfo=UTC))
    monkeypatch.setenv("RETRAINING_START_DATE", "last tuesday")
    with pytest.raises(DataValidationError, match="not an ISO 8601 date"):
        start_date()


# --- the champion history ----------------------------------------------------------------------------------


def change(dsn: str, version: int | None, at: datetime, action: str = "deploy", previous: int | None = None) -> None:
    champion_history.record(dsn, model_name="m", registered_name="m", version=version, previous_version=previous,
                            effective_at=at, action=action, dag_id="model_retraining", run_id=f"r{version}",
                            attempt=1, reason="test")


def test_the_champion_in_service_is_the_last_change_before_the_window_end(pg_dsn: str):
    t = datetime(2026, 3, 8, tzinfo=UTC)
    change(pg_dsn, 1, t)
    change(pg_dsn, 2, t + 3 * SIX, previous=1)
    change(pg_dsn, 1, t + timedelta(days=200), action="rollback", previous=2)
    assert champion_history.in_service(pg_dsn, "m", t) is None  # v1's own run was judged by no champion
    assert champion_history.in_service(pg_dsn, "m", t + SIX).version == 1
    assert champion_history.in_service(pg_dsn, "m", t + 3 * SIX).version == 1  # v2 serves after this window
    assert champion_history.in_service(pg_dsn, "m", t + 4 * SIX).version == 2
    assert champion_history.in_service(pg_dsn, "m", t + timedelta(days=300)).action == "rollback"
    assert [c.version for c in champion_history.changes_from(pg_dsn, "m", t + 3 * SIX)] == [2, 1]
    assert champion_history.in_service(pg_dsn, "another_model", t + SIX) is None


def test_the_history_is_seeded_from_deployments_already_on_record(pg_dsn: str, monkeypatch: pytest.MonkeyPatch):
    from include.retraining.record import events

    end = datetime(2026, 3, 8, 18, tzinfo=UTC)
    events.upsert_event(pg_dsn, events.RunKey("m", "model_retraining", "old"), {
        "deployed": True, "champion_version_before": 1, "champion_version_after": 2, "data_interval_end": end})
    monkeypatch.setattr(champion_history, "_ready", set())
    found = champion_history.in_service(pg_dsn, "m", end + SIX)
    assert (found.version, found.previous_version, found.effective_at, found.action) == (2, 1, end, "recorded")


def test_unknown_change_kinds_are_refused(pg_dsn: str):
    with pytest.raises(ValueError, match="unknown champion change 'teleport'"):
        change(pg_dsn, 1, datetime(2026, 3, 8, tzinfo=UTC), action="teleport")


# --- what a replay decides ----------------------------------------------------------------------------------


NO_DRIFT = {"status": "ok", "champion": {"version": 1, "run_id": "r"},
            "drift": {"detected": False, "features": [], "drifted_features": [], "drifted_share": 0.0,
                      "share_threshold": 0.25}, "performance": None,
            "judge": {"version": 1, "source": "history", "replay": True,
                      "note": "judged by v1, the champion in service at the window's end"}}


def test_a_replay_records_what_it_would_decide_and_names_its_judge():
    out = decide(build_config(), NO_DRIFT, run_type="scheduled", replay="a later change of champion overtook it")
    assert out["decision"] == "check_only" and out["retrain"] is False
    assert "a later change of champion overtook it; judged by v1" in out["reason"]
    assert out["reason"].endswith("would skip)")
    forced = decide(build_config(), NO_DRIFT, force=True, replay="overtaken")
    assert forced["decision"] == "check_only" and forced["would_retrain"] is True


def test_the_reason_a_person_typed_is_always_recorded():
    out = decide(build_config(), {**NO_DRIFT, "judge": None}, run_type="manual", manual_reason="new feature shipped")
    assert out["decision"] == "skip" and out["reason"].endswith("reason given by the trigger: new feature shipped")


def test_a_run_triggered_by_new_labels_checks_the_latest_window_with_labelled_data(tmp_path: Path, pg_dsn: str):
    from include.retraining.pipeline import RunInfo, choose_window

    ts = every(10, datetime(2026, 3, 8, 12, tzinfo=UTC), datetime(2026, 3, 9, 6, tzinfo=UTC))
    cfg = source(tmp_path, ts, [t < datetime(2026, 3, 9, 3, tzinfo=UTC) for t in ts])
    # the asset event came at 14:37; the data interval Airflow gives such a run is not a window of ours
    info = RunInfo(dag_id="model_retraining", run_id="asset_triggered__1", run_type="asset_triggered",
                   data_interval_start=datetime(2026, 3, 9, 14, 37, tzinfo=UTC),
                   data_interval_end=datetime(2026, 3, 9, 14, 37, tzinfo=UTC),
                   run_after=datetime(2026, 3, 9, 14, 37, tzinfo=UTC))
    window = choose_window(info, cfg, pg_dsn)
    assert (window.start, window.end) == (datetime(2026, 3, 9, 0, tzinfo=UTC), datetime(2026, 3, 9, 6, tzinfo=UTC))
    assert window.note.startswith("triggered by new labelled data")
