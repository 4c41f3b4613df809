"""The retraining history inside Airflow (an Airflow 3 UI plugin; the logic is in ``include/retraining/ui/``).

- ``/retraining/`` on the api-server: a page per model with the events history (filters, each row
  expandable to its reasons, gate criteria and links) and charts, and JSON endpoints for the same data
  (``/retraining/api/...``, see :mod:`include.retraining.ui.app`). Every route is behind Airflow's own
  authentication, and shows only the rows of DAGs the user may read.
- Browse > "Model retraining" in the navigation, and a "Retraining" tab on each DAG's page showing that
  DAG's model (both are the page in Airflow's iframe).
- Two buttons on the task instances of the retraining DAGs: "Retraining decision" (the page, opened on
  the run's row: decision, reason, gate, drift) and "Drift report" (the run's HTML drift report, when
  its check found drift).
- The run's note, set when a retraining run ends: the decision, its reason and a link to the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

from include.retraining.ui import run_note
from include.retraining.ui.app import create_app

PREFIX = "/retraining"
RETRAINING_DAG_PREFIX = "model_retraining"  # model_retraining and model_retraining__<model> (include/retraining/fleet.py)


def _run_url(ti_key: Any, to: str | None = None) -> str:
    """The plugin's page for the run of ``ti_key``; '' (no link) outside the retraining DAGs."""
    if not str(ti_key.dag_id).startswith(RETRAINING_DAG_PREFIX):
        return ""
    query = {"dag_id": ti_key.dag_id, "run_id": ti_key.run_id, **({"to": to} if to else {})}
    return f"{PREFIX}/run?{urlencode(query)}"


class RetrainingDecisionLink(BaseOperatorLink):
    """The run's decision and reason on the retraining page."""

    name = "Retraining decision"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _run_url(ti_key)


class DriftReportLink(BaseOperatorLink):
    """The run's drift report (the page says so when the run's check logged none)."""

    name = "Drift report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _run_url(ti_key, to="report")


class RunNoteListener:
    """When a retraining run ends (in the scheduler, or the api-server when a person marks it), its decision
    and reason become the run's note, unless it has one (see include/retraining/ui/run_note.py)."""

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        run_note.annotate(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        run_note.annotate(dag_run)


class RetrainingUIPlugin(AirflowPlugin):
    name = "retraining_ui"
    fastapi_apps = [{"app": create_app(prefix=PREFIX), "url_prefix": PREFIX, "name": "Model retraining history"}]
    external_views = [
        {"name": "Model retraining", "href": f"{PREFIX}/", "destination": "nav", "category": "browse",
         "url_route": "model-retraining"},
        {"name": "Retraining", "href": f"{PREFIX}/?dag_id={{DAG_ID}}", "destination": "dag",
         "url_route": "retraining"},
    ]
    global_operator_extra_links = [RetrainingDecisionLink(), DriftReportLink()]
    listeners = [RunNoteListener()]
