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
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from include.retraining import runtime as rt


@dag(
    dag_id="model_rollback",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "ml-platform", "retries": 0, "retry_delay": timedelta(minutes=1)},
    params={
        "action": Param(
            "rollback",
            type="string",
            enum=["rollback", "promote"],
            values_display={"rollback": "Roll back to an earlier version", "promote": "Promote a waiting challenger"},
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
    tags={"mlops", "retraining", "rollback"},
    doc_md=__doc__,
)
def model_rollback():
    @task(task_id=rt.SWITCH)
    def switch_champion():
        return rt.switch()

    switch_champion()


model_rollback()
