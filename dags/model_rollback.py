"""
### model_rollback

Puts a registered version of the model back in service, by hand, from the trigger form:

- **rollback** (default): the `champion` alias moves to `target_version`, or to the version
  under `previous_champion` when the field is empty;
- **promote**: the same for a candidate that passed the gate while automatic promotion was off
  (`deploy.auto_promote: false`); by default the version under `challenger`.

The former champion keeps `previous_champion`, so a rollback can itself be undone. When
`deploy.serving_dir` / `deploy.reload_conn_id` are configured the model is re-exported and the
serving app's reload endpoint is called; if that fails, the aliases are restored. Promotions of
this DAG and of `model_retraining` never run at the same time (a PostgreSQL advisory lock per
model). Every run writes a row to `model_retraining_events` (trigger_type `manual`, decision
`rollback` or `promote`).

One DAG per model, like `model_retraining`: the default model's is `model_rollback`, every other model
configuration in `$RETRAINING_CONFIG_DIR` gets `model_rollback__<model.name>` (include/retraining/fleet.py).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from include.retraining import fleet
from include.retraining import runtime as rt
from include.retraining.record.notify import RetrainingNotifier
from include.retraining.release import assets


def build(model: fleet.ModelEntry):
    """The rollback DAG of one model of the fleet (``model_rollback`` for the default model)."""

    @dag(
        dag_id=model.rollback_dag_id,
        schedule=None,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "ml-platform", "retries": 0, "retry_delay": timedelta(minutes=1)},
        params={
            "action": Param(
                "rollback",
                type="string",
                enum=["rollback", "promote"],
                values_display={"rollback": "Roll back to an earlier version",
                                "promote": "Promote a waiting challenger"},
                title="Action",
            ),
            "target_version": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                title="Target version",
                description="Registry version to make champion. Empty: previous_champion (rollback) or challenger "
                "(promote).",
            ),
            "reason": Param(None, type=["null", "string"], maxLength=500, title="Reason",
                            description="Recorded in the events table (optional)."),
        },
        tags={"mlops", "retraining", "rollback", model.tag},
        doc_md=__doc__.replace("### model_rollback", f"### {model.rollback_dag_id}\n\n{model.describe()}", 1),
    )
    def model_rollback():
        # the champion asset: a DAG scheduled on it (batch scoring, serving) learns of every change of champion
        @task(task_id=rt.SWITCH, outlets=[assets.champion(model.name)], on_success_callback=RetrainingNotifier(),
              on_failure_callback=RetrainingNotifier(failed=True))
        def switch_champion():
            return rt.switch()

        switch_champion()

    return model_rollback()


# One DAG per model configuration, beside its model_retraining DAG (see include/retraining/fleet.py).
for _model in fleet.discover():
    globals()[_model.rollback_dag_id] = build(_model)
