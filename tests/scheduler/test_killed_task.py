"""A task process SIGKILLed by the real scheduler's worker, and Airflow's own retry finishing the promotion.

The fault tests (tests/faults) drive the tasks' functions in processes of their own; this one lets Airflow
do it: LocalExecutor, the task supervisor, ``retries=1``. Champion v1 is trained in-process; then the
drifted window is triggered through the REST API with ``RETRAINING_FAULTS=deploy.before_reload=kill-once``
in the stack's environment, so the first ``deploy`` process dies with SIGKILL after the aliases moved and
before the serving app was told. Airflow marks that try failed and retries it in a new process, which
resumes the promotion from its intent: the run succeeds and its row says deployed 1 -> 2.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from include.retraining import demo_data
from tests.integration.conftest import Harness, at

from .conftest import DAG_ID, PROJECT_ENV, TERMINAL_RUN_STATES, AirflowStack, as_json, timing

pytestmark = [pytest.mark.scheduler, pytest.mark.integration, pytest.mark.faults]

STREAM = demo_data.StreamSpec(start=at(6, 0), end=at(8, 18), drift_at=at(8, 12), rows_per_hour=500,
                              as_of=at(8, 21))
W2_START, W2_END = at(8, 12), at(8, 18)


@pytest.fixture(scope="module")
def killing_stack(project: Harness, pg_server: dict[str, str],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("airflow-killed-task")
    stack = AirflowStack(root, pg_server, {name: os.environ[name] for name in PROJECT_ENV}, api_apps="all", extra_env={
        "RETRAINING_TASK_RETRIES": "1",
        "RETRAINING_RETRY_DELAY_SECONDS": "1",
        "RETRAINING_FAULTS": f"deploy.before_reload=kill-once:{root / 'killed-once'}",
    })
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def test_deploy_killed_by_sigkill_is_finished_by_airflows_retry(project: Harness, killing_stack: AirflowStack):
    project.load(demo_data.generate(STREAM))
    dagrun, row = project.run(at(8, 0))  # v1, in-process, while Airflow starts
    assert row["deployed"] and project.alias_version("champion") == 1, row
    killing_stack.wait_ready()
    started = time.monotonic()
    run = killing_stack.api("POST", f"/dags/{DAG_ID}/dagRuns", {
        "logical_date": W2_START.isoformat(), "data_interval_start": W2_START.isoformat(),
        "data_interval_end": W2_END.isoformat(), "run_after": W2_END.isoformat(), "conf": Harness.conf()})
    run_id = run["dag_run_id"]
    deadline = time.monotonic() + 600
    while run["state"] not in TERMINAL_RUN_STATES:
        assert time.monotonic() < deadline, killing_stack.diagnostics()
        time.sleep(2)
        run = killing_stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
    timing("drifted window with a killed deploy, through the scheduler", time.monotonic() - started)
    tis: list[dict[str, Any]] = killing_stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")[
        "task_instances"]
    deploy = next(ti for ti in tis if ti["task_id"] == "deploy")
    assert run["state"] == "success", as_json(tis) + killing_stack.task_log_tails()
    assert (killing_stack.root / "killed-once").exists(), "the fault point was never reached"
    assert deploy["state"] == "success" and deploy["try_number"] == 2, as_json([deploy])
    row = project.event(run_id)
    assert (row["status"], row["deployed"], row["champion_version_before"], row["champion_version_after"]) == \
        ("deployed", True, 1, 2), row
    assert row["promotion_resolution"] == "completed by a retry of deploy"
    assert [a["attempt"] for a in project.attempts(run_id)] == [1]
    assert project.alias_version("champion") == 2 and project.alias_version("previous_champion") == 1
    promotions = project.query("SELECT target_version, state FROM model_promotions ORDER BY id")
    assert [(p["target_version"], p["state"]) for p in promotions] == [(1, "completed"), (2, "completed")]
    history = project.query("SELECT version FROM model_champion_history ORDER BY id")
    assert [h["version"] for h in history] == [1, 2]
