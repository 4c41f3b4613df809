"""
### model_retraining

Keeps a production model fresh. Every six hours (00, 06, 12, 18 UTC) the run looks at the
data of its interval (plus the configured lookback):

1. **check_drift_and_performance** (sensor, reschedule mode) waits until the window holds
   enough labelled rows, then measures data drift per feature against the reference profile
   of the champion in service at the window's time, and that champion's performance on the
   labelled rows.
2. **decide** (branch) retrains on drift, degraded performance, a forced trigger or when
   there is no champion yet; otherwise skips. Check-only and backfill runs only record.
   When the gate cannot tell (not significantly better, not significantly worse), **register_for_shadow**
   registers the candidate as `challenger` without deploying it; later live runs score it beside the champion
   on the new labelled rows (a sequential test with overall error control) and **promote_challenger**
   promotes it when the evidence suffices (decision `promote_challenger`); it is dropped when clearly worse,
   out of time or rows, or replaced by a newer candidate.
   In the windows after a promotion the **post-deploy watch** scores the new champion and the one it
   replaced on the same new labelled rows; if the new one is significantly worse, **rollback_champion**
   restores the previous one (trigger `post_deploy_watch`, decision `rollback`).
3. **collect → prepare → train → evaluate_gate → register → deploy**: a content-hashed
   training snapshot, an out-of-time holdout (the newest labelled rows, which the candidate
   never sees), a candidate tracked in MLflow, a gate against the champion on that holdout,
   registration and promotion by the `champion` alias
   (the former champion keeps `previous_champion` for rollback).
4. **record_outcome** completes the run's row in `model_retraining_events`, whatever happened.

Every change of champion (deploy, watch rollback, shadow promotion, `model_rollback`) is an event of the asset
`retraining_champion__<model>` with the new version in its extra: schedule scoring DAGs on it.

Backfills and replays of past windows are judged by the champion of their time and never train
or deploy. One DAG per model: every model configuration in `$RETRAINING_CONFIG_DIR` (default
`include/config/`) gets `model_retraining__<model.name>`; the default model (`$RETRAINING_CONFIG`,
default `include/config/credit_risk.yaml`) keeps the id `model_retraining` (see
include/retraining/fleet.py). Trigger form: leave a field empty to use the configured value;
without a logical date a manual run checks the latest window that holds labelled data.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, TriggerRule, dag, task

from include.retraining import fleet
from include.retraining import runtime as rt
from include.retraining.config import MODEL_TYPES
from include.retraining.point_in_time import start_date
from include.retraining.record.notify import RetrainingNotifier
from include.retraining.release import assets

# Retries of failing tasks; the demo and the tests set RETRAINING_TASK_RETRIES=0 so failures show at once.
RETRIES = int(os.environ.get("RETRAINING_TASK_RETRIES", "2"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("RETRAINING_RETRY_DELAY_SECONDS", "300")))
SCHEDULE = CronTriggerTimetable("0 */6 * * *", timezone="UTC", interval=timedelta(hours=rt.SCHEDULE_HOURS))


def params(model: fleet.ModelEntry) -> dict[str, Param]:
    """The trigger form, built afresh for each model's DAG (``dag.test()`` writes a run's conf into it)."""
    linear = "Ridge regression" if model.task == "regression" else "Logistic regression"
    return {
        "model_type": Param(
            None,
            type=["null", "string"],
            enum=[None, *MODEL_TYPES],
            values_display={
                None: f"as configured ({model.type})",
                "xgboost": "XGBoost",
                "lightgbm": "LightGBM",
                "random_forest": "Random forest",
                "logistic_regression": linear,
            },
            title="Model type",
            description="Model family of the candidate. Empty: the config's model.type.",
            section="Training",
        ),
        "force_retrain": Param(
            False,
            type="boolean",
            title="Force retraining",
            description="Retrain even when no drift or degradation is found (the gate still decides promotion).",
            section="Decision",
        ),
        "check_only": Param(
            False,
            type="boolean",
            title="Check only",
            description="Measure, decide and record, but never train or deploy.",
            section="Decision",
        ),
        "lookback_hours": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=2160,
            title="Lookback (hours)",
            description="Length of the evaluation window ending at the run's data interval end (a manual run "
            "without a logical date: at the end of the latest window holding labelled data). Empty: the config's "
            "window.lookback_hours.",
            section="Data",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            description="Why you trigger this run (optional); recorded in the events table's trigger_reason.",
            section="Decision",
        ),
    }


# No start_date by default, so that no window is out of reach of a backfill or a replay (Airflow would
# silently create no task for a date before it). RETRAINING_START_DATE sets one (ISO 8601, UTC).
START_DATE = start_date()


def schedule(model: fleet.ModelEntry) -> CronTriggerTimetable | AssetOrTimeSchedule:
    """Every six hours; also when the model's labelled-data asset is updated, if its file asks (window.labels_asset)."""
    if model.labels_asset:
        return AssetOrTimeSchedule(timetable=SCHEDULE, assets=[assets.labelled_data(model.name)])
    return SCHEDULE


def build(model: fleet.ModelEntry):
    """The retraining DAG of one model of the fleet (``model_retraining`` for the default model)."""

    @dag(
        dag_id=model.retraining_dag_id,
        schedule=schedule(model),
        start_date=START_DATE,
        catchup=False,
        # Runs may overlap (a scheduled run waiting for labels never holds back a person's run): storm control
        # decides under a lock, one training at a time, and a promotion judged against a champion that has
        # changed meanwhile is refused.
        max_active_runs=4,
        default_args={"owner": "ml-platform", "retries": RETRIES, "retry_delay": RETRY_DELAY},
        params=params(model),
        tags={"mlops", "retraining", "drift", model.tag},
        doc_md=__doc__.replace("### model_retraining", f"### {model.retraining_dag_id}\n\n{model.describe()}", 1),
    )
    def model_retraining():
        champion = assets.champion(model.name)

        @task.sensor(task_id=rt.CHECK, mode="reschedule", poke_interval=600, timeout=6 * 3600)
        def check_drift_and_performance():
            return rt.check()

        @task.branch(task_id=rt.DECIDE)
        def decide(assessment):
            return rt.decide(assessment)

        @task(task_id=rt.SKIP)
        def skip_retraining():
            return rt.skip()

        @task(task_id=rt.COLLECT, max_active_tis_per_dag=1)
        def collect():
            return rt.collect()

        @task(task_id=rt.PREPARE)
        def prepare(snapshot):
            return rt.prepare(snapshot)

        @task(task_id=rt.TRAIN, execution_timeout=timedelta(hours=2), max_active_tis_per_dag=1)
        def train(snapshot, prepared):
            return rt.train(snapshot, prepared)

        @task.branch(task_id=rt.GATE)
        def evaluate_gate(prepared, trained):
            return rt.evaluate_gate(prepared, trained)

        @task(task_id=rt.REGISTER)
        def register(trained):
            return rt.register(trained)

        # each change of champion is an event of the model's champion asset (the new version in its extra)
        @task(task_id=rt.DEPLOY, outlets=[champion])
        def deploy(registered):
            return rt.deploy(registered)

        @task(task_id=rt.ROLLBACK, outlets=[champion])
        def rollback_champion():
            return rt.rollback()

        # the gate could not tell: registered as 'challenger' (never deployed) and scored beside the champion later
        @task(task_id=rt.SHADOW_REGISTER)
        def register_for_shadow(trained):
            return rt.register_for_shadow(trained)

        @task(task_id=rt.PROMOTE, outlets=[champion])
        def promote_challenger():
            return rt.promote()

        # the run is complete here: its row says what happened, and the notifier tells people
        @task(task_id=rt.FINALIZE, trigger_rule=TriggerRule.ALL_DONE,
              on_success_callback=RetrainingNotifier(), on_failure_callback=RetrainingNotifier(failed=True))
        def record_outcome():
            return rt.finalize()

        assessment = check_drift_and_performance()
        branch = decide(assessment)
        skipped = skip_retraining()
        snapshot = collect()
        prepared = prepare(snapshot)
        trained = train(snapshot, prepared)
        gate = evaluate_gate(prepared, trained)
        registered = register(trained)
        deployed = deploy(registered)
        rolled_back = rollback_champion()
        shadowed = register_for_shadow(trained)
        promoted = promote_challenger()
        branch >> [snapshot, skipped, rolled_back, promoted]
        gate >> [registered, shadowed]
        # Not downstream of the branches: a branch skips all its direct downstream tasks it does not follow.
        [assessment, skipped, snapshot, prepared, trained, registered, deployed, rolled_back, shadowed,
         promoted] >> record_outcome()

    return model_retraining()


# One DAG per model configuration; adding a YAML file to the folder adds a model (see include/retraining/fleet.py).
for _model in fleet.discover():
    globals()[_model.retraining_dag_id] = build(_model)
