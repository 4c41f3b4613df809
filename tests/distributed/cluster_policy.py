"""A cluster policy for the distributed test: every hand-over of files crosses from one worker to the other.

Copied into the test deployment's ``$AIRFLOW_HOME/config/airflow_local_settings.py`` (Airflow imports
it from there in every process that parses DAGs). The DAG itself is unchanged: tasks keep the queue
``default``, except the six that write or read the run's files, which alternate between the queues
that only ``worker-a`` or only ``worker-b`` consumes. So the snapshot (collect, on a) is read on b
(prepare), the splits and the reference profile (prepare, on b) on a (train), the model and the splits
on b (evaluate_gate), the registered version on a (register) and on b (deploy): a task that read
another task's local file instead of the object store or MLflow would fail, in every run, not only
when the queue happens to hand the next task to the other worker. The other tasks stay on
``default`` (either worker). Pinning tasks to queues with a policy is how a deployment routes work
(e.g. training to workers with more memory).
"""

from __future__ import annotations

from typing import Any

DAG_ID = "model_retraining"
PINNED = {
    "collect": "worker-a",
    "prepare": "worker-b",
    "train": "worker-a",
    "evaluate_gate": "worker-b",
    "register": "worker-a",
    "deploy": "worker-b",
}


def task_policy(task: Any) -> None:
    """Route the tasks of ``PINNED`` to the queue named after their worker."""
    if task.dag_id == DAG_ID and task.task_id in PINNED:
        task.queue = PINNED[task.task_id]
