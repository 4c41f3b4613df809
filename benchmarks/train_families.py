"""Time a full retraining of each model family on the demo data, as the `train` task runs it.

For each of xgboost, lightgbm, random_forest and logistic_regression: the Optuna search
(the bundled config's trials and folds: 5 x 5 by default), the final fit with early
stopping, scoring, and logging the model, its trial runs and artifacts to a throw-away
MLflow store. The data is the demo stream up to 2026-03-08 00:00 UTC (the first
retraining of ``make demo``), snapshotted and split exactly as the DAG does.

Usage: ``.venv/bin/python benchmarks/train_families.py [--trials N] [--folds K]``
Prints one line per family: seconds for the search, the final fit and the whole task, and
the test ROC AUC; then each family's total time relative to logistic regression (the
cheapest), measured in the same run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CUTOFF = datetime(2026, 3, 8, tzinfo=timezone.utc)
FAMILIES = ("xgboost", "lightgbm", "random_forest", "logistic_regression")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=None, help="Optuna trials (default: the config's)")
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default: the config's)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES, help="which families")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"

    import pandas as pd

    from include.retraining import demo_data, storage
    from include.retraining.config import load_config
    from include.retraining.training.models import train_candidate
    from include.retraining.training.prepare import prepare
    from include.retraining.training.snapshots import assign_splits, content_hash

    base = load_config(REPO / "include" / "config" / "credit_risk.yaml")
    overrides = {"storage.uri": str(work / "storage"), "mlflow.tracking_uri": os.environ["MLFLOW_TRACKING_URI"]}
    if args.trials is not None:
        overrides["training.search.trials"] = args.trials
    if args.folds is not None:
        overrides["training.search.folds"] = args.folds
    base = base.with_overrides(overrides)

    stream = demo_data.generate()
    history = stream[(stream[demo_data.TIMESTAMP] < CUTOFF) & stream[demo_data.LABEL].notna()]
    snapshot_frame = assign_splits(base, history.reset_index(drop=True))
    snapshot_uri = str(work / "snapshot.parquet")
    storage.write_parquet(snapshot_frame, snapshot_uri)
    snapshot = {"uri": snapshot_uri, "hash": content_hash(snapshot_frame), "rows": len(snapshot_frame)}
    prepared = prepare(base, snapshot_uri, CUTOFF, CUTOFF - pd.Timedelta(hours=6), str(work / "prepared"))
    print(f"demo data up to {CUTOFF:%Y-%m-%d %H:%M} UTC: {prepared['rows']} rows, "
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


if __name__ == "__main__":
    sys.exit(main())
