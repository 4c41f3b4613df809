"""The model's Airflow assets: other DAGs schedule on them (parse-time safe: only ``airflow.sdk``).

- ``retraining_champion__<model>`` (``x-retraining://<model>/champion``): an asset event each time the model's
  champion changes: a deploy that passed the gate, a post-deploy watch's rollback, a ``model_rollback`` run. The
  event's extra says ``model``, ``registered_name``, ``version`` (the new champion), ``previous_version``,
  ``action`` and ``promotion_id``, so a batch-scoring or serving DAG scheduled on the asset loads exactly that
  version (``models:/<registered_name>/<version>``) rather than whatever the alias says when it runs.
- ``retraining_labelled_data__<model>`` (``x-retraining://<model>/labelled-data``): the arrival of new labelled
  rows. A model whose file sets ``window.labels_asset: true`` is checked when it is updated (by the labelling
  pipeline's DAG, or ``POST /api/v2/assets/events``) as well as on its schedule; such a run checks the latest
  window that holds enough labelled rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset

SCHEME = "x-retraining"  # a custom scheme, as Airflow asks ("x-" prefix, no URI normalizer)
GROUP = "retraining"


def champion(model_name: str) -> Asset:
    return Asset(name=f"retraining_champion__{model_name}", uri=f"{SCHEME}://{model_name}/champion", group=GROUP)


def labelled_data(model_name: str) -> Asset:
    return Asset(name=f"retraining_labelled_data__{model_name}", uri=f"{SCHEME}://{model_name}/labelled-data",
                 group=GROUP)


def announce(context: Mapping[str, Any], extra: dict[str, Any]) -> None:
    """Put ``extra`` on the asset events the running task emits when it succeeds (all its outlets)."""
    task = context.get("task")
    events = context.get("outlet_events")
    if task is None or events is None:
        return
    for outlet in getattr(task, "outlets", None) or []:
        if isinstance(outlet, Asset):
            events[outlet].extra = dict(extra)
