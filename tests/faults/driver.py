"""Run tasks of one ``model_retraining`` run in this process, as Airflow's task processes run them.

``python -m tests.faults.driver <state.json> <task> [<task> ...]``: each task calls the same
``include.retraining.pipeline`` function as the DAG's task (through the same inputs: what earlier tasks
returned, kept in ``state.json`` like XCom), and its outcome (success, failed, skipped) is written to the
state file when it ends. A task killed with SIGKILL (a fault point, ``RETRAINING_FAULTS``) leaves no
outcome, exactly as a killed task process leaves none; running the driver again with the same task is
Airflow's retry of it: the same run, the same attempt, a new process.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

TASKS = ("check", "decide", "collect", "prepare", "train", "evaluate_gate", "register", "deploy", "record_outcome")


def _info(state: dict[str, Any]) -> Any:
    from include.retraining.pipeline import RunInfo

    run = state["run"]
    assessment = state["outputs"].get("check") or {}
    bounds = None
    if assessment.get("window_start"):
        bounds = (datetime.fromisoformat(assessment["window_start"]), datetime.fromisoformat(assessment["window_end"]))
    return RunInfo(
        dag_id=run["dag_id"], run_id=run["run_id"], run_type=run.get("run_type", "scheduled"),
        logical_date=datetime.fromisoformat(run["data_interval_start"]),
        data_interval_start=datetime.fromisoformat(run["data_interval_start"]),
        data_interval_end=datetime.fromisoformat(run["data_interval_end"]),
        params=run.get("params") or {}, clear_number=int(run.get("clear_number", 0)), ti_id=run.get("ti_id", "ti-1"),
        attempt=assessment.get("attempt"), bounds=bounds)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_task(state: dict[str, Any], task: str) -> str:
    """Run one task; returns its state (success, skipped, failed) and stores its output."""
    from include.retraining import pipeline

    info = _info(state)
    out = state["outputs"]
    upstream = TASKS[:TASKS.index(task)]
    if task != "record_outcome" and any(state["states"].get(t) in ("failed", "upstream_failed") for t in upstream):
        return "upstream_failed"
    decision = out.get("decide") or {}
    if task not in ("check", "decide", "record_outcome") and not decision.get("retrain"):
        return "skipped"
    if task in ("register", "deploy") and not (out.get("evaluate_gate") or {}).get("passed"):
        return "skipped"
    if task == "check":
        result = pipeline.check(info, "check_drift_and_performance")
    elif task == "decide":
        result = pipeline.decide(info, "decide", out["check"])
    elif task == "collect":
        result = pipeline.collect(info, "collect")
    elif task == "prepare":
        result = pipeline.prepare(info, "prepare", out["collect"])
    elif task == "train":
        result = pipeline.train(info, "train", out["collect"], out["prepare"])
    elif task == "evaluate_gate":
        result = pipeline.evaluate_gate(info, "evaluate_gate", out["prepare"], out["train"],
                                        decision.get("champion_version"))
    elif task == "register":
        result = pipeline.register(info, "register", out["train"], out["evaluate_gate"])
    elif task == "deploy":
        result = pipeline.deploy(info, "deploy", out["register"], out["evaluate_gate"].get("champion_version"))
    elif task == "record_outcome":
        states = {t: s for t, s in state["states"].items() if t != "record_outcome"}
        states = {t: ("failed" if s == "running" else s) for t, s in states.items()}  # killed: Airflow fails it
        result = pipeline.finalize(info, out.get("decide"), out.get("evaluate_gate"), out.get("deploy"),
                                   {("check_drift_and_performance" if t == "check" else t): s for t, s in states.items()},
                                   check_task_id="check_drift_and_performance")
    else:
        raise SystemExit(f"unknown task {task!r}; tasks: {TASKS}")
    out[task] = _jsonable(result)
    return "success"


def main(argv: list[str]) -> int:
    import os

    if os.environ.get("FAULTS_MLFLOW_DB_RETRIES"):
        # MLflow retries opening an unreachable SQL store 10 times with exponential backoff (about 100 s) before
        # it gives up: right for a deployment, needless for a test that made the store unreachable on purpose
        import mlflow.store.db.utils

        mlflow.store.db.utils.MAX_RETRY_COUNT = int(os.environ["FAULTS_MLFLOW_DB_RETRIES"])
    path = Path(argv[0])
    code = 0
    for task in argv[1:]:
        state = json.loads(path.read_text())
        state["states"][task] = "running"
        path.write_text(json.dumps(state))
        try:
            outcome = run_task(state, task)
        except Exception as exc:  # a failed task: recorded, and the next ones still run (ALL_DONE for the last)
            print(f"{task} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            outcome, code = "failed", 1
        state["states"][task] = outcome
        path.write_text(json.dumps(state, default=str))
    return code


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main(sys.argv[1:]))
