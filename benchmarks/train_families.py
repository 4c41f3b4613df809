"""Time a full retraining of each model family on the demo data, as the `train` task runs it.

For each of xgboost, lightgbm, random_forest and logistic_regression: the Optuna search
(the bundled config's trials and folds: 5 x 5 by default), the final fit with early
stopping, scoring, and logging the model, its trial runs and artifacts to a throw-away
MLflow store. The data is the demo stream up to 2026-03-08 00:00 UTC (the first
retraining of ``make demo``), snapshotted and split exactly as the DAG does.

Usage: ``.venv/bin/python benchmarks/train_families.py [--trials N] [--folds K]``

``--threads [--families F]``: the thread budget (include/retraining/threads.py) against the old fixed
``n_jobs=2``, for one family (the first given): the training alone, then two identical trainings side
by side (as two tasks on one worker: ``AIRFLOW__CORE__PARALLELISM=2`` for the budget; alone also under
Airflow's default parallelism of 32, which leaves one thread on a small machine), each in a
process of its own; prints each training's CPU-seconds (user + system, ``getrusage``), wall time and
threads, with ``uptime`` before and after.
Prints one line per family: seconds for the search, the final fit and the whole task, and
the test ROC AUC; then each family's total time relative to logistic regression (the
cheapest), measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CUTOFF = datetime(2026, 3, 8, tzinfo=timezone.utc)
FAMILIES = ("xgboost", "lightgbm", "random_forest", "logistic_regression")


def base_config(work: Path, trials: int | None, folds: int | None) -> Any:
    from include.retraining.config import load_config

    base = load_config(REPO / "include" / "config" / "credit_risk.yaml")
    overrides: dict[str, Any] = {"storage.uri": str(work / "storage"),
                                 "mlflow.tracking_uri": os.environ["MLFLOW_TRACKING_URI"]}
    if trials is not None:
        overrides["training.search.trials"] = trials
    if folds is not None:
        overrides["training.search.folds"] = folds
    return base.with_overrides(overrides)


def prepare_data(work: Path, base: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo stream up to CUTOFF, snapshotted and prepared as the DAG does: (prepared, snapshot)."""
    from include.retraining import demo_data, storage
    from include.retraining.training.prepare import prepare
    from include.retraining.training.snapshots import assign_splits, content_hash

    stream = demo_data.generate()
    history = stream[(stream[demo_data.TIMESTAMP] < CUTOFF) & stream[demo_data.LABEL].notna()]
    snapshot_frame = assign_splits(base, history.reset_index(drop=True))
    snapshot_uri = str(work / "snapshot.parquet")
    storage.write_parquet(snapshot_frame, snapshot_uri)
    snapshot = {"uri": snapshot_uri, "hash": content_hash(snapshot_frame), "rows": len(snapshot_frame)}
    prepared = prepare(base, snapshot_uri, CUTOFF, str(work / "prepared"))
    return prepared, snapshot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=None, help="Optuna trials (default: the config's)")
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default: the config's)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES, help="which families")
    parser.add_argument("--threads", action="store_true",
                        help="compare the old fixed 2 threads with the thread budget for the first family, "
                             "alone and with a second training beside it: CPU-seconds and wall time")
    parser.add_argument("--child", nargs=3, metavar=("WORK", "FAMILY", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(Path(args.child[0]), args.child[1], args.child[2], args.trials, args.folds)
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    base = base_config(work, args.trials, args.folds)
    if args.threads:
        return compare_threads(work, base, args)

    from include.retraining.training.models import train_candidate

    prepared, snapshot = prepare_data(work, base)
    rows = prepared["rows"]
    rows = ", ".join(f"{k} {v:,}" for k, v in rows.items()) if isinstance(rows, dict) else f"{rows:,}"
    print(f"demo data up to {CUTOFF:%Y-%m-%d %H:%M} UTC: rows {rows}; "
          f"search {base.training.search.trials} trials x {base.training.search.folds} folds\n")
    print(f"{'family':<20} {'search s':>9} {'fit s':>7} {'task s':>7} {'test AUC':>9}")
    totals = {}
    for family in args.families:
        cfg = base.with_overrides({"model.type": family})
        started = time.monotonic()
        result = train_candidate(cfg, prepared, {"airflow_run_id": "benchmark"}, snapshot)
        totals[family] = time.monotonic() - started
        print(f"{family:<20} {result['search_seconds']:>9.1f} {result['fit_seconds']:>7.1f} "
              f"{totals[family]:>7.1f} {result['metrics']['roc_auc']:>9.4f}", flush=True)
    reference = totals.get("logistic_regression")
    if reference:
        print("\ntotal time relative to logistic_regression (same run):")
        for family, seconds in totals.items():
            print(f"  {family:<20} {seconds / reference:>6.1f}x")
    return 0


# ------------------------------------------------------------------------------- thread budget


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child(work: Path, family: str, mode: str, trials: int | None, folds: int | None) -> int:
    """One training in a process of its own; prints its CPU-seconds, wall time and threads as JSON.

    ``old``: the code before the thread budget (n_jobs=2, no thread-pool limits, OpenMP's default waiting);
    ``budget``: as the task runs it now, with the executor settings in the environment."""
    logging.basicConfig(level=logging.WARNING)
    runs = work / f"child-{os.getpid()}"
    runs.mkdir()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{runs / 'mlflow.db'}"
    from include.retraining import threads

    if mode == "old":
        os.environ[threads.ENV_VAR] = "2"
        threads.quiet_waiting = lambda: None  # type: ignore[assignment]
        threads.limited = lambda n: contextlib.nullcontext()  # type: ignore[assignment]
    from include.retraining.training.models import train_candidate

    cfg = base_config(runs, trials, folds).with_overrides({"model.type": family})
    prepared = json.loads((work / "prepared.json").read_text())
    snapshot = json.loads((work / "snapshot.json").read_text())
    budget = threads.for_config(cfg)
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    result = train_candidate(cfg, prepared, {"airflow_run_id": "benchmark"}, snapshot)
    print(json.dumps({"cpu": cpu_seconds() - cpu0, "wall": time.monotonic() - wall0, "threads": budget.threads,
                      "reason": budget.reason, "auc": result["metrics"].get("roc_auc")}))
    return 0


def run_children(work: Path, family: str, mode: str, count: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``count`` trainings side by side, each in a process of its own; their measurements."""
    env = dict(os.environ)
    if mode == "budget":  # a LocalExecutor worker that runs `count` tasks at once
        env.update({"AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": str(count)})
    elif mode == "default":  # Airflow's default LocalExecutor parallelism (32): one thread on a small machine
        env.update({"AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": "32"})
        mode = "budget"
    extra = [a for flag, value in (("--trials", args.trials), ("--folds", args.folds)) if value is not None
             for a in (flag, str(value))]
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(work), family, mode, *extra], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"the {mode} training failed ({proc.returncode}):\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def compare_threads(work: Path, base: Any, args: argparse.Namespace) -> int:
    from include.retraining import threads

    family = args.families[0]
    prepared, snapshot = prepare_data(work, base)
    (work / "prepared.json").write_text(json.dumps(prepared, default=str))
    (work / "snapshot.json").write_text(json.dumps(snapshot, default=str))
    cores, how = threads.available_cores()
    rows = prepared["rows"]
    rows = ", ".join(f"{k} {v:,}" for k, v in rows.items()) if isinstance(rows, dict) else f"{rows:,}"
    print(f"{family} on rows: {rows}; search {base.training.search.trials} trials x "
          f"{base.training.search.folds} folds; {how}")
    print(f"uptime before: {uptime()}\n")
    print(f"{'case':<44} {'threads':>7} {'CPU s':>8} {'wall s':>8} {'CPU/wall':>8}  test AUC")
    for label, mode, count in (("alone, old fixed 2 threads", "old", 1), ("alone, thread budget", "budget", 1),
                               ("alone, budget under parallelism 32", "default", 1),
                               ("two side by side, old fixed 2 threads", "old", 2),
                               ("two side by side, thread budget", "budget", 2)):
        results = run_children(work, family, mode, count, args)
        for i, r in enumerate(results):
            name = label if count == 1 else f"{label} (#{i + 1})"
            print(f"{name:<44} {r['threads']:>7} {r['cpu']:>8.1f} {r['wall']:>8.1f} {r['cpu'] / r['wall']:>8.2f}"
                  f"  {r['auc']:.4f}", flush=True)
        if count > 1:
            print(f"{'  both: CPU s total, wall of the slower':<44} {'':>7} {sum(r['cpu'] for r in results):>8.1f} "
                  f"{max(r['wall'] for r in results):>8.1f}", flush=True)
    print(f"\nuptime after: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
