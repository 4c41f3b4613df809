"""A full retraining on the CeleryExecutor, on two workers that share no local files, with S3 storage.

The window ending 03-08 00:00 has no champion yet, so the run goes all the way: check -> decide ->
collect -> prepare -> train -> evaluate_gate -> register -> deploy -> record_outcome. The six tasks that
hand files to each other alternate between the two workers (a cluster policy routes them to the
workers' own queues, see cluster_policy.py; the others take the shared ``default`` queue), so every
hand-over crosses workers: the snapshot, the prepared splits and the reference profile through the
object store, the model through MLflow, whose artifacts the tracking server keeps in the same store.
A task that read a file another task left on its own disk would fail here, in every run.
Set ``RETRAINING_SKIP_DISTRIBUTED=1`` to skip (see conftest.py).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from include.retraining import demo_data
from tests.integration.conftest import Harness, at
from tests.scheduler.conftest import DAG_ID, TERMINAL_RUN_STATES, StackError, as_json, timing

from .cluster_policy import PINNED
from .conftest import WORKERS, Deployment, skip_requested

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.scheduler,  # a real scheduler too: `-m "not scheduler"` leaves out every multi-process tier
    pytest.mark.integration,
    pytest.mark.skipif(skip_requested(), reason="RETRAINING_SKIP_DISTRIBUTED is set"),
]

# Two days of applications before the window (training history), labels known for the whole window.
STREAM = demo_data.StreamSpec(start=at(6, 0), end=at(8, 0), drift_at=None, rows_per_hour=400, as_of=at(8, 6))
WINDOW_START, WINDOW_END = at(7, 18), at(8, 0)
FULL_RETRAINING = ["check_drift_and_performance", "decide", "collect", "prepare", "train", "evaluate_gate",
                   "register", "deploy", "record_outcome"]
RUN_TIMEOUT = 600


def trigger_window(deployment: Deployment) -> str:
    """``POST /api/v2/dags/model_retraining/dagRuns`` for the window, dated as the scheduler dates it."""
    run = deployment.stack.api("POST", f"/dags/{DAG_ID}/dagRuns", {
        "logical_date": WINDOW_START.isoformat(),
        "data_interval_start": WINDOW_START.isoformat(),
        "data_interval_end": WINDOW_END.isoformat(),
        "run_after": WINDOW_END.isoformat(),
        "conf": Harness.conf(reason="distributed test: a full retraining on two Celery workers"),
    })
    return run["dag_run_id"]


def wait_for_run(deployment: Deployment, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        run = deployment.stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        if run["state"] in TERMINAL_RUN_STATES:
            return run
        if time.monotonic() > deadline:
            raise StackError(f"run {run_id} still {run['state']} after {RUN_TIMEOUT} s\n"
                             f"{deployment.stack.diagnostics()}")
        deployment.stack._check_alive()
        time.sleep(2)


@pytest.fixture(scope="module")
def finished_run(deployment: Deployment) -> dict[str, Any]:
    """The stream in the source table, one triggered run, waited for; timings from the cold start."""
    deployment.project.load(demo_data.generate(STREAM))  # while Airflow starts
    deployment.stack.wait_ready()
    timing("cold start: whole deployment ready (moto, MLflow server, Airflow, two workers)",
           time.monotonic() - deployment.started)
    triggered = time.monotonic()
    run_id = trigger_window(deployment)
    run = wait_for_run(deployment, run_id)
    finished = time.monotonic()
    timing("trigger -> run finished", finished - triggered)
    timing("cold start -> run finished", finished - deployment.started)
    tis = deployment.stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    for ti in sorted(tis, key=lambda t: t["start_date"] or ""):
        print(f"[distributed] {ti['task_id']:<28} {ti['state']:<10} {ti['hostname'] or '-':<40} "
              f"{ti['duration'] or 0:6.1f} s")
    if run["state"] != "success":
        print(deployment.stack.diagnostics())
    return {"run": run, "task_instances": tis}


def test_full_retraining_on_two_celery_workers_with_s3(finished_run: dict[str, Any], deployment: Deployment):
    if os.environ.get("CI"):
        assert deployment.walled, "CI must wall the workers off from each other's files: unshare --mount failed"
    run, tis = finished_run["run"], finished_run["task_instances"]
    run_id = run["dag_run_id"]
    assert run["state"] == "success", as_json(tis)
    assert run["data_interval_end"].startswith("2026-03-08T00:00:00"), run

    # every task of a full retraining succeeded, skip_retraining was skipped
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert {task: states.get(task) for task in FULL_RETRAINING} == dict.fromkeys(FULL_RETRAINING, "success"), states
    assert states.get("skip_retraining") == "skipped", states

    # the tasks ran on both workers, and only on them; each file-handing task on the worker its queue names
    ran = [ti for ti in tis if ti["state"] == "success"]
    worker_of = {ti["task_id"]: next((w.name for w in deployment.workers
                                      if (ti["hostname"] or "").startswith(w.hostname_prefix())), ti["hostname"])
                 for ti in ran}
    print(f"[distributed] worker of each task: {worker_of}")
    assert set(worker_of.values()) == set(WORKERS), worker_of
    assert {ti["task_id"]: ti["queue"] for ti in ran} == {t: PINNED.get(t, "default") for t in FULL_RETRAINING}
    assert {t: worker_of[t] for t in PINNED} == PINNED, worker_of
    hand_overs = [("collect", "prepare"), ("prepare", "train"), ("train", "evaluate_gate"), ("register", "deploy")]
    assert all(worker_of[a] != worker_of[b] for a, b in hand_overs), worker_of
    assert {ti["executor"] or "CeleryExecutor" for ti in ran} <= {"CeleryExecutor"}

    # the events row: a retraining that deployed the first champion
    row = deployment.project.event(run_id)
    assert row["decision"] == "retrain", row
    assert row["deployed"] is True, (row["status"], row.get("error"), row["gate_details"])
    assert row["champion_version_after"] == 1, row

    # the snapshot, the prepared splits and the reference profile are objects in the bucket
    model = deployment.project.model_name
    storage = deployment.store.keys(f"storage/{model}/")
    print("[distributed] storage objects:\n  " + "\n  ".join(storage))
    snapshots = [k for k in storage if k.startswith(f"storage/{model}/snapshots/") and k.endswith(".parquet")]
    assert snapshots, storage
    assert f"storage/{model}/snapshots/manifest.json" in storage
    prepared = [k for k in storage if k.startswith(f"storage/{model}/runs/")]
    assert any(k.endswith("/reference_profile.json") for k in prepared), storage
    assert {k.rsplit("/", 1)[1] for k in prepared if k.endswith(".parquet")} >= {"train.parquet", "test.parquet"}, \
        storage

    # the registered version and its artifacts live in S3, behind the tracking server
    client = deployment.mlflow()
    version = client.get_model_version_by_alias(model, "champion")
    assert int(version.version) == 1
    run_artifacts = client.get_run(version.run_id).info.artifact_uri
    assert run_artifacts.startswith("mlflow-artifacts:/"), run_artifacts  # proxied by the server ...
    mlflow_keys = deployment.store.keys("mlflow/")  # ... to the bucket
    print(f"[distributed] {len(mlflow_keys)} MLflow objects in the bucket, e.g.:\n  " + "\n  ".join(mlflow_keys[:12]))
    run_prefix = "mlflow/" + run_artifacts.removeprefix("mlflow-artifacts:/").strip("/") + "/"
    assert f"{run_prefix}reference_profile.json" in mlflow_keys, (run_prefix, mlflow_keys)
    model_files = client.get_model_version_download_uri(model, version.version)
    assert model_files.startswith("mlflow-artifacts:/"), (version.source, model_files)
    model_prefix = "mlflow/" + model_files.removeprefix("mlflow-artifacts:/").strip("/") + "/"
    assert f"{model_prefix}MLmodel" in mlflow_keys, (version.source, model_prefix, mlflow_keys)

    # and no worker kept a dataset or a profile on its own disk (working directory, RETRAINING_HOME, TMPDIR).
    # Other leftovers are listed, not failed: evaluate_gate's registry.load_model leaves MLflow's download of
    # the candidate (MLmodel, model.skops, ...) in TMPDIR, a copy no later task reads.
    for worker in deployment.workers:
        files = worker.files()
        print(f"[distributed] {worker.name}: {len(files)} file(s) left in its cwd, RETRAINING_HOME and TMPDIR: "
              f"{[str(p.relative_to(worker.root)) for p in files]}")
        data = [p for p in files if p.suffix == ".parquet" or p.name in ("reference_profile.json", "manifest.json")]
        assert data == [], f"{worker.name} holds datasets or profiles on its own disk: {data}"
