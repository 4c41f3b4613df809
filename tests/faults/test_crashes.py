"""Crashes and outages where a promotion is most fragile, each ending in the same consistent state.

Every scenario starts from champion v1 and a window (W2) whose retrained candidate passes the gate, and
breaks the run somewhere: a SIGKILL of the task process in train, register or deploy; the events
PostgreSQL crashed during train or during deploy's reload call and restarted; the MLflow store
unreachable at register or deploy; two promotions racing. Then it lets what would happen next happen
(Airflow's retry of the task, the next run of the DAG, ``model_rollback``) and checks the end state with
:meth:`Scenario.assert_consistent`: exactly one current row per run, the attempt history, no unfinished
promotion, registry aliases = events = champion history = serving link, no MLflow run left RUNNING.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.faults.conftest import W2, W3, Scenario, wait_for, with_retry

UP_TO_DEPLOY = ("check", "decide", "collect", "prepare", "train", "evaluate_gate", "register", "deploy")
KILLED = -9


def _done(scenario: Scenario, state: Path, *tasks: str, faults: str = "") -> None:
    rc = scenario.tasks(state, *tasks, faults=faults)
    assert rc == 0, (scenario.folder / "driver.log").read_text()[-5000:]


def test_sigkill_in_deploy_during_the_reload_call_is_finished_by_the_retry(before_deploy: tuple[Scenario, Path]):
    scenario, state = before_deploy
    assert scenario.tasks(state, "deploy", faults="deploy.before_reload=kill") == KILLED
    # killed with the aliases moved and the serving link repointed, before the reload call: nothing recorded it
    assert scenario.alias("champion") == 2
    assert scenario.query("SELECT state FROM model_promotions ORDER BY id DESC LIMIT 1")[0]["state"] == "aliases_moved"
    assert scenario.event(state)["status"] == "running"
    _done(scenario, state, "deploy", "record_outcome")  # Airflow's retry of deploy, then the final task
    row = scenario.event(state)
    assert (row["status"], row["deployed"], row["champion_version_before"], row["champion_version_after"]) == \
        ("deployed", True, 1, 2)
    assert row["promotion_resolution"] == "completed by a retry of deploy"
    assert [a["attempt"] for a in scenario.attempts(state)] == [1]
    assert [c["body"]["version"] for c in scenario.serving.calls] == [2]  # reloaded once the retry reached it
    assert scenario.assert_consistent()["champion"] == 2


def test_sigkill_in_deploy_is_finished_by_the_next_run_and_recorded_on_the_killed_run(
        before_deploy: tuple[Scenario, Path]):
    scenario, state = before_deploy
    assert scenario.tasks(state, "deploy", faults="deploy.before_reload=kill") == KILLED
    scenario.tasks(state, "record_outcome")  # Airflow fails the killed task; the final task records the failure
    assert scenario.event(state)["status"] == "failed"
    nxt = scenario.state_file(W3)
    _done(scenario, nxt, "check", "decide", "record_outcome")
    row = scenario.event(state)
    assert (row["status"], row["deployed"], row["champion_version_before"], row["champion_version_after"]) == \
        ("deployed", True, 1, 2)
    assert row["promotion_resolution"].startswith(f"completed by model_retraining {scenario.run_id(nxt)}")
    following = scenario.event(nxt)
    assert following["judged_by_version"] == 2  # the next window is judged by the champion it completed
    assert (following["trigger_metrics"]["recovered"]["promotions"][0]["outcome"]) == "completed"
    assert scenario.assert_consistent()["champion"] == 2


def test_sigkill_before_the_aliases_moved_is_reverted_by_the_next_run(before_deploy: tuple[Scenario, Path]):
    scenario, state = before_deploy
    assert scenario.tasks(state, "deploy", faults="deploy.after_intent=kill") == KILLED
    scenario.tasks(state, "record_outcome")
    _done(scenario, scenario.state_file(W3), "check", "decide", "record_outcome")
    row = scenario.event(state)
    assert (row["deployed"], row["champion_version_after"], row["candidate_version"]) == (False, 1, 2)
    assert row["promotion_resolution"].startswith("reverted by ")
    assert scenario.alias("champion") == 1 and scenario.alias("challenger") == 2
    assert scenario.serving.calls == []
    assert scenario.assert_consistent()["champion"] == 1


def test_model_rollback_first_finishes_an_interrupted_promotion_then_rolls_it_back(
        before_deploy: tuple[Scenario, Path]):
    from include.retraining import pipeline

    scenario, state = before_deploy
    assert scenario.tasks(state, "deploy", faults="deploy.before_reload=kill") == KILLED
    env = scenario.env()
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        moved = pipeline.switch(pipeline.RunInfo(dag_id="model_rollback", run_id="manual__rollback",
                                                 params={"action": "rollback", "reason": "fault test"}),
                                "switch_champion")
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert (moved["champion_before"], moved["champion_after"]) == (2, 1)
    killed = scenario.event(state)
    assert (killed["deployed"], killed["champion_version_before"], killed["champion_version_after"]) == (True, 1, 2)
    assert "model_rollback manual__rollback" in killed["promotion_resolution"]
    history = scenario.query("SELECT version, action FROM model_champion_history ORDER BY id")
    assert [(h["version"], h["action"]) for h in history][-2:] == [(2, "deploy"), (1, "rollback")]
    assert scenario.assert_consistent()["champion"] == 1


def test_sigkill_in_train_leaves_no_mlflow_run_running_and_the_retry_deploys(scenario: Scenario):
    state = scenario.state_file(W2)
    assert scenario.tasks(state, *UP_TO_DEPLOY, faults="train.fit=kill") == KILLED
    _done(scenario, state, "train", "evaluate_gate", "register", "deploy", "record_outcome")
    row = scenario.event(state)
    assert (row["status"], row["champion_version_before"], row["champion_version_after"]) == ("deployed", 1, 2)
    assert scenario.versions() == [1, 2]
    assert scenario.assert_consistent()["champion"] == 2


def test_sigkill_in_register_after_the_version_was_created_registers_no_second_version(scenario: Scenario):
    state = scenario.state_file(W2)
    assert scenario.tasks(state, *UP_TO_DEPLOY, faults="register.after_create=kill") == KILLED
    assert scenario.versions() == [1, 2] and scenario.event(state)["candidate_version"] is None
    _done(scenario, state, "register", "deploy", "record_outcome")
    assert scenario.versions() == [1, 2]
    row = scenario.event(state)
    assert (row["status"], row["candidate_version"], row["champion_version_after"]) == ("deployed", 2, 2)
    assert scenario.assert_consistent()["champion"] == 2


def test_events_database_crashed_during_deploy_reload_never_records_a_wrong_failure(
        before_deploy: tuple[Scenario, Path]):
    scenario, state = before_deploy
    gate = scenario.folder / "go"
    proc = scenario.tasks(state, "deploy", faults=f"deploy.before_reload=wait:{gate}", wait=False)
    wait_for(gate, proc)
    scenario.pg.stop()  # the events database dies while deploy holds the lock and calls the serving app
    gate.touch()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-3000:]  # the task failed (it could not record), it did not lie
    assert "could not release the lock" in out or "session is gone" in out
    assert scenario.alias("champion") == 2  # the registry moved and the serving app reloaded v2
    scenario.pg.start()
    with_retry(lambda: scenario.query("SELECT 1"))
    _done(scenario, state, "deploy", "record_outcome")  # the retry, once the database is back
    row = scenario.event(state)
    assert (row["status"], row["champion_version_before"], row["champion_version_after"]) == ("deployed", 1, 2)
    assert [a["attempt"] for a in scenario.attempts(state)] == [1]
    assert scenario.assert_consistent()["champion"] == 2


def test_events_database_crashed_during_train_then_restarted_the_retry_deploys(scenario: Scenario):
    gate = scenario.folder / "go"
    state = scenario.state_file(W2)
    proc = scenario.tasks(state, *UP_TO_DEPLOY, faults=f"train.fit=wait:{gate}", wait=False)
    wait_for(gate, proc)
    scenario.pg.stop()
    gate.touch()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-3000:]
    assert scenario.states(state)["train"] == "failed"
    scenario.pg.start()
    with_retry(lambda: scenario.query("SELECT 1"))
    _done(scenario, state, "train", "evaluate_gate", "register", "deploy", "record_outcome")
    row = scenario.event(state)
    assert (row["status"], row["champion_version_after"]) == ("deployed", 2)
    assert scenario.versions() == [1, 2]
    assert scenario.assert_consistent()["champion"] == 2


def test_mlflow_unreachable_at_register_and_at_deploy_fails_cleanly_and_the_retries_finish(scenario: Scenario):
    store = scenario.folder / "mlflow.db"
    away = scenario.folder / "mlflow.db.away"
    state = scenario.state_file(W2)

    def unreachable() -> None:
        store.rename(away)
        store.mkdir()  # sqlite cannot open a folder: "unable to open database file"

    def reachable() -> None:
        store.rmdir()
        away.rename(store)

    _done(scenario, state, *UP_TO_DEPLOY[:-2])  # up to the gate, with MLflow up
    unreachable()
    assert scenario.tasks(state, "register") == 1
    reachable()
    assert scenario.versions() == [1]
    _done(scenario, state, "register")  # the retry
    unreachable()  # down when deploy starts: nothing may move
    assert scenario.tasks(state, "deploy") == 1
    reachable()
    assert scenario.alias("champion") == 1 and scenario.query("SELECT count(*) AS n FROM model_promotions")[0]["n"] == 1
    gate = scenario.folder / "go-deploy"
    proc = scenario.tasks(state, "deploy", faults=f"deploy.before_reload=wait:{gate}", wait=False)
    wait_for(gate, proc)
    unreachable()  # after the aliases moved: the tags cannot be written, nor the aliases restored
    gate.touch()
    out, _ = proc.communicate(timeout=300)
    reachable()
    assert proc.returncode == 1, out[-3000:]
    _done(scenario, state, "deploy", "record_outcome")
    row = scenario.event(state)
    assert (row["status"], row["champion_version_before"], row["champion_version_after"]) == ("deployed", 1, 2)
    assert scenario.versions() == [1, 2]
    assert scenario.assert_consistent()["champion"] == 2


def test_two_promotions_racing_one_wins_the_other_is_refused(before_deploy: tuple[Scenario, Path]):
    scenario, first = before_deploy
    second = scenario.state_file(W2, run_type="manual", force_retrain=True)
    _done(scenario, second, *UP_TO_DEPLOY[:-1])
    gate = scenario.folder / "go"
    proc = scenario.tasks(first, "deploy", faults=f"deploy.after_aliases=wait:{gate}", wait=False)
    wait_for(gate, proc)
    racer = scenario.tasks(second, "deploy", wait=False)  # blocks on the deploy lock
    gate.touch()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    out, _ = racer.communicate(timeout=300)
    assert racer.returncode == 1 and "was judged against champion v1, but the champion is v2 now" in out, out[-3000:]
    for state in (first, second):
        scenario.tasks(state, "record_outcome")
    assert scenario.event(first)["status"] == "deployed"
    assert scenario.event(second)["status"] == "failed" and not scenario.event(second)["deployed"]
    assert scenario.query("SELECT count(*) AS n FROM model_promotions WHERE state = 'completed'")[0]["n"] == 2
    assert scenario.assert_consistent()["champion"] == 2
