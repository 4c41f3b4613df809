"""Backfills of `model_retraining` run by the real Airflow scheduler (LocalExecutor, PostgreSQL metadata DB).

Two champions are trained in-process with ``dag.test()``: v1 before the drift (serving from 03-08 00:00)
and v2 on the drifted data two days later (serving from 03-10 00:00), so today's champion is v2. Then
``airflow backfill create`` replays the two days in between (8 six-hour windows) through the scheduler,
twice (the second time reprocessing the completed runs). Each window must be judged by the champion of its
time, v1: quiet before the drift, "would retrain" after it (judged by today's v2 it would be the other way
round). Backfill runs only measure and record: one current ``check_only`` row per run, nothing deployed,
the champions untouched, and the first backfill's verdicts and both deployments still on record after the
reprocessing.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from include.retraining import demo_data
from tests.integration.conftest import Harness, at

from .conftest import AirflowStack, as_json, timing

pytestmark = [pytest.mark.scheduler, pytest.mark.integration]

# The stream covers every backfilled window with its labels known (as_of = last window end + label delay).
STREAM = demo_data.StreamSpec(
    start=at(6, 0),
    end=at(10, 0),
    drift_at=at(8, 12),
    rows_per_hour=500,
    as_of=at(10, 3),
)
# For CronTriggerTimetable("0 */6 * * *", interval=6h) `--from-date/--to-date` bound the *trigger time*
# (run_after = data interval end), not the logical date (= data interval start): 08T06 .. 10T00 gives
# the eight runs with logical dates 08T00, 08T06, ..., 09T18.
FROM_DATE = at(8, 6)
TO_DATE = at(10, 0)
LOGICAL_DATES = [at(8, 0) + timedelta(hours=6 * i) for i in range(8)]
SIX_HOURS = timedelta(hours=6)
# A backfill has its own limit of active runs (10 unless --max-active-runs; the DAG's max_active_runs does
# not apply to it). Four at a time, as the DAG allows: overlapping runs writing the events tables at once
# (this once deadlocked in PostgreSQL, see events._up_to_date).
MAX_ACTIVE_RUNS = int(os.environ.get("RETRAINING_BACKFILL_MAX_ACTIVE_RUNS", "4"))
DRIFTED = [d + SIX_HOURS > STREAM.drift_at for d in LOGICAL_DATES]  # windows ending after the drift began


def events_for(project: Harness, run_ids: list[str]) -> list[dict[str, Any]]:
    return project.query("SELECT * FROM model_retraining_events WHERE run_id = ANY(%s) ORDER BY logical_date",
                         (run_ids,))


def model_versions(project: Harness) -> list[int]:
    return sorted(int(v.version) for v in project.mlflow().search_model_versions(f"name = '{project.model_name}'"))


@pytest.fixture(scope="module")
def champion(project: Harness, airflow_stack: AirflowStack) -> int:
    """The stream in the events schema and two champions, trained in-process while Airflow starts: v1 for the
    window ending 03-08 00:00, v2 for the drifted window ending 03-10 00:00 (after the backfilled days)."""
    project.load(demo_data.generate(STREAM))
    started = time.monotonic()
    dagrun, row = project.run(at(8, 0))
    assert dagrun.state == "success", row
    assert row["decision"] == "retrain" and row["deployed"] is True, row
    dagrun, row = project.run(at(10, 0))
    timing("two champions: in-process dag.test()", time.monotonic() - started)
    assert dagrun.state == "success", row
    assert row["decision"] == "retrain" and row["deployed"] is True, (row["trigger_reason"], row["gate_details"])
    assert project.alias_version("champion") == 2
    return 2


@pytest.fixture(scope="module")
def first_backfill(airflow_stack: AirflowStack, champion: int) -> dict[str, Any]:
    runs = airflow_stack.backfill(FROM_DATE, TO_DATE, max_active_runs=MAX_ACTIVE_RUNS)
    return {"runs": runs, "finished_at": datetime.now(timezone.utc)}


def test_backfill_replays_eight_windows_and_only_records(first_backfill, airflow_stack: AirflowStack,
                                                        project: Harness, champion: int):
    runs = first_backfill["runs"]
    print(as_json(runs))
    assert [r["logical_date"] for r in runs] == LOGICAL_DATES, as_json(runs)
    assert all(r["exception_reason"] is None for r in runs), as_json(runs)
    assert [r["state"] for r in runs] == ["success"] * 8, as_json(runs)
    assert {r["run_type"] for r in runs} == {"backfill"}
    # logical date = data interval start; the run is due at the interval's end, and named after it
    assert [r["run_id"] for r in runs] == [f"backfill__{(d + SIX_HOURS).isoformat()}" for d in LOGICAL_DATES]
    assert all(r["data_interval_start"] == r["logical_date"] for r in runs)
    assert all(r["data_interval_end"] == r["logical_date"] + SIX_HOURS == r["run_after"] for r in runs)

    # the scheduler made no run of its own (scheduled runs are off in the harness)
    assert airflow_stack.query("SELECT run_id FROM dag_run WHERE run_type <> 'backfill'") == []

    rows = events_for(project, [r["run_id"] for r in runs])
    assert len(rows) == 8, as_json(rows)
    assert {row["run_id"] for row in rows} == {r["run_id"] for r in runs}
    assert all(row["decision"] == "check_only" for row in rows), [(r["run_id"], r["decision"]) for r in rows]
    assert not any(row["deployed"] for row in rows)
    assert all(row["run_type"] == "backfill" for row in rows)
    # each run judged its own data interval (the window ends at the interval's end)
    assert [row["window_end"] for row in rows] == [d + SIX_HOURS for d in LOGICAL_DATES]
    assert_judged_by_the_champion_of_their_time(rows)

    assert project.alias_version("champion") == champion
    assert model_versions(project) == [1, 2]  # a backfill never registers a model

    # the plugin's listener, in the scheduler, made each run's decision and reason its note
    notes = {r["run_id"]: r["content"] for r in airflow_stack.query(
        "SELECT dr.run_id, n.content FROM dag_run dr JOIN dag_run_note n ON n.dag_run_id = dr.id "
        "WHERE dr.run_type = 'backfill'")}
    assert set(notes) == {r["run_id"] for r in runs}, notes
    by_run = {row["run_id"]: row for row in rows}
    for run_id, note in notes.items():
        assert note.startswith("**check_only**") and "/retraining/run?" in note, note
        assert by_run[run_id]["trigger_reason"][:60] in note, note


def assert_judged_by_the_champion_of_their_time(rows: list[dict[str, Any]]) -> None:
    """Quiet before the drift, "would retrain" after it: every window judged by v1, not by today's v2."""
    verdicts = [(row["window_end"].strftime("%d %H"), row["judged_by_version"], row["champion_source"],
                 row["trigger_reason"].endswith("would retrain)")) for row in rows]
    expected = [((d + SIX_HOURS).strftime("%d %H"), 1, "history", drifted)
                for d, drifted in zip(LOGICAL_DATES, DRIFTED, strict=True)]
    assert verdicts == expected, [row["trigger_reason"][-300:] for row in rows]
    assert all("judged by v1, the champion in service" in row["trigger_reason"] for row in rows)
    assert [row["trigger_type"] != "none" for row in rows] == DRIFTED


def test_backfill_reprocessing_completed_runs_reruns_them(first_backfill, airflow_stack: AirflowStack,
                                                          project: Harness, champion: int):
    before = {r["run_id"]: r for r in first_backfill["runs"]}
    runs = airflow_stack.backfill(FROM_DATE, TO_DATE, reprocess="completed", max_active_runs=MAX_ACTIVE_RUNS)
    print(as_json(runs))
    # the same runs (same run ids), cleared and run again by the scheduler
    assert [r["run_id"] for r in runs] == list(before), as_json(runs)
    assert [r["state"] for r in runs] == ["success"] * 8, as_json(runs)
    assert {r["run_type"] for r in runs} == {"backfill"}
    for run in runs:
        first = before[run["run_id"]]
        assert run["clear_number"] == first["clear_number"] + 1, (first, run)
        assert run["end_date"] > first["end_date"], (first, run)

    rows = events_for(project, list(before))
    assert len(rows) == 8, as_json(rows)
    assert all(row["decision"] == "check_only" for row in rows)
    assert not any(row["deployed"] for row in rows)
    # the current row of each run is its second attempt, with the same verdicts (a replay does not depend on
    # when it runs) ...
    assert [row["attempt"] for row in rows] == [2] * 8
    assert all(row["updated_at"] > first_backfill["finished_at"] for row in rows)
    assert_judged_by_the_champion_of_their_time(rows)
    # ... and the first backfill's verdicts are still on record, untouched
    attempts = project.query("SELECT * FROM model_retraining_event_attempts WHERE run_id = ANY(%s) "
                             "ORDER BY logical_date, attempt", (list(before),))
    assert [(a["run_id"], a["attempt"]) for a in attempts] == [(r, n) for r in before for n in (1, 2)]
    firsts = [a for a in attempts if a["attempt"] == 1]
    assert all(a["updated_at"] < first_backfill["finished_at"] for a in firsts)
    assert_judged_by_the_champion_of_their_time(firsts)
    # both deployments are still on record, in the events and in the champion history
    deployed = project.query("SELECT champion_version_after, window_end FROM model_retraining_events WHERE deployed "
                             "ORDER BY window_end")
    assert [(r["champion_version_after"], r["window_end"]) for r in deployed] == [(1, at(8, 0)), (2, at(10, 0))]
    history = project.query("SELECT version, effective_at FROM model_champion_history ORDER BY effective_at")
    assert [(r["version"], r["effective_at"]) for r in history] == [(1, at(8, 0)), (2, at(10, 0))]

    assert project.alias_version("champion") == champion
    assert model_versions(project) == [1, 2]
