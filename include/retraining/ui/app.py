"""The retraining page's web app: JSON endpoints over :mod:`.queries` and the page itself.

``plugins/retraining_ui.py`` mounts :func:`create_app` on Airflow's api-server under ``/retraining``.
Every route depends on Airflow's own authentication: an anonymous request gets 401, and the rows a
person sees are those of the DAGs Airflow lets them read (the auth manager's readable DAG ids). The
page is one HTML file with inline JavaScript and SVG charts (no build step, nothing from a CDN).

Endpoints (all GET, under the mount prefix):

- ``/`` the page (``?model=``, ``?dag_id=`` for the DAG tab, ``?event=`` opens one row);
- ``/api/models`` models on record, their DAGs, counts and the values each filter can take;
- ``/api/events?model=&dag_id=&decision=&trigger=&status=&severity=&since=&until=&limit=`` current rows,
  newest first, without the large JSON columns (limit 1..500, default 100);
- ``/api/events/{id}`` one row: reasons, gate criteria, drift per feature, attempts, links;
- ``/api/runs?dag_id=&run_id=`` the row of one Airflow run (what the task extra link opens);
- ``/api/timeline`` decisions, severity and drift score per window; ``/api/drift?feature=`` one feature's
  statistic and threshold per window (without ``feature``: the features on record, most drifted first);
  ``/api/champions?model=`` champion changes and the champion's measured primary metric per window;
  ``/api/gate-failures`` failing criteria counts;
- ``/report/{id}`` the drift report HTML of one row (from its MLflow run).

A bad filter is a 400 whose ``detail`` says what is accepted; a database without the events tables
answers with empty lists (and ``/api/models`` says so in ``note``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ..connections import EVENTS_CONN_ID, resolve_dsn
from ..record import history
from . import queries

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("page.html")
MLFLOW_UI_ENV = "RETRAINING_MLFLOW_UI_URL"  # base URL of the MLflow UI for links (else MLFLOW_TRACKING_URI if http)
DSN_TTL_SECONDS = 60.0

# A dependency returning the DAG ids the caller may read (None: no restriction); raises 401/403 itself.
ReadableDags = Callable[..., Sequence[str] | None]


class _DsnCache:
    """The events database's DSN, resolved as the tasks resolve it (connection ``retraining_db``), kept a minute."""

    def __init__(self, resolve: Callable[[], str]) -> None:
        self._resolve = resolve
        self._lock = threading.Lock()
        self._value: tuple[float, str] | None = None

    def __call__(self) -> str:
        with self._lock:
            if self._value is None or time.monotonic() - self._value[0] > DSN_TTL_SECONDS:
                self._value = (time.monotonic(), self._resolve())
            return self._value[1]


def airflow_readable_dags() -> ReadableDags:
    """Airflow's authentication for the app's routes: the user from the request's token (bearer header or
    the UI's cookie; none: 401), and the DAG ids the auth manager lets them read."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user

    # Depends() in the default, not GetUserDep in the annotation: annotations are strings here (PEP 563)
    # and FastAPI resolves them in this module's globals, where a local import is not.
    def readable(user: Any = Depends(get_user)) -> Sequence[str] | None:  # noqa: B008
        return sorted(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))

    return readable


def mlflow_ui_url() -> str | None:
    configured = os.environ.get(MLFLOW_UI_ENV)
    if configured:
        return configured
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    return tracking if tracking.startswith(("http://", "https://")) and "@" not in tracking else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _json(data: Any) -> JSONResponse:
    return JSONResponse(_jsonable(data), headers={"Cache-Control": "no-store"})


def create_app(dsn: Callable[[], str] | None = None, readable_dags: ReadableDags | None = None,
               prefix: str = "/retraining") -> FastAPI:
    """The app. ``dsn`` gives the events database (default: connection ``retraining_db``); ``readable_dags`` is
    the authentication dependency (default: Airflow's, see :func:`airflow_readable_dags`)."""
    get_dsn = dsn or _DsnCache(lambda: resolve_dsn(EVENTS_CONN_ID))
    readable = readable_dags or airflow_readable_dags()
    app = FastAPI(title="Model retraining history", docs_url=None, redoc_url=None, openapi_url=None)
    Dags = Depends(readable)  # noqa: N806

    def run(query: Callable[[str], Any], empty: Any) -> Any:
        try:
            return query(get_dsn())
        except queries.FilterError as exc:
            raise HTTPException(400, str(exc)) from exc
        except history.NoRunsRecorded:
            return empty
        except psycopg2.OperationalError as exc:
            log.warning("retraining UI: events database unreachable: %s", str(exc).strip())
            raise HTTPException(503, f"cannot reach the events database (Airflow connection {EVENTS_CONN_ID!r}): "
                                     f"check that it is configured and the server is up") from exc

    def filters(request: Request, max_limit: int = queries.MAX_LIMIT) -> queries.Filters:
        try:
            return queries.parse_filters(dict(request.query_params), max_limit)
        except queries.FilterError as exc:
            raise HTTPException(400, str(exc)) from exc

    links = queries.Links(mlflow_ui=mlflow_ui_url(), prefix=prefix)

    @app.get("/", response_class=HTMLResponse)
    def page(dags: Sequence[str] | None = Dags) -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @app.get("/api/models")
    def models(dags: Sequence[str] | None = Dags) -> JSONResponse:
        rows = run(lambda d: queries.models(d, dags), None)
        note = "no runs recorded yet: run the DAG (or make demo) first" if rows is None else None
        return _json({"models": rows or [], "note": note, "mlflow_ui": links.mlflow_ui})

    @app.get("/api/events")
    def list_events(request: Request, dags: Sequence[str] | None = Dags) -> JSONResponse:
        f = filters(request)
        return _json({"events": run(lambda d: queries.list_events(d, f, dags), []), "limit": f.limit})

    @app.get("/api/events/{event_id}")
    def event(event_id: int, dags: Sequence[str] | None = Dags) -> JSONResponse:
        row = run(lambda d: queries.event_detail(d, event_id, dags, links), None)
        if row is None:
            raise HTTPException(404, f"no event {event_id} (or not one of the DAGs you can read)")
        return _json(row)

    @app.get("/api/runs")
    def airflow_run(dag_id: str = Query(..., max_length=250), run_id: str = Query(..., max_length=250),
                    dags: Sequence[str] | None = Dags) -> JSONResponse:
        row = run(lambda d: queries.find_run(d, dag_id, run_id, dags), None)
        if row is None:
            raise HTTPException(404, f"no events row for run {run_id!r} of {dag_id!r} (yet)")
        return _json(row)

    @app.get("/run")
    def open_run(dag_id: str = Query(..., max_length=250), run_id: str = Query(..., max_length=250),
                 to: str | None = Query(None, pattern="^(page|report)$"),
                 dags: Sequence[str] | None = Dags) -> RedirectResponse:
        """Where the task extra links point: the page opened on that run's row, or (``to=report``) the run's
        drift report when it has one."""
        row = run(lambda d: queries.find_run(d, dag_id, run_id, dags), None)
        if row is None:
            raise HTTPException(404, f"no events row for run {run_id!r} of {dag_id!r} (yet): the run records its "
                                     f"row when its first task starts")
        if to == "report" and row["drift_report_uri"]:
            return RedirectResponse(f"{prefix}/report/{row['id']}", status_code=307)
        return RedirectResponse(f"{prefix}/?model={quote(row['model_name'])}&event={row['id']}", status_code=307)

    @app.get("/api/timeline")
    def timeline(request: Request, dags: Sequence[str] | None = Dags) -> JSONResponse:
        f = filters(request, queries.TIMELINE_LIMIT)
        return _json({"windows": run(lambda d: queries.timeline(d, f, dags), [])})

    @app.get("/api/drift")
    def drift(request: Request, feature: str | None = Query(None, max_length=200),
              dags: Sequence[str] | None = Dags) -> JSONResponse:
        f = filters(request, queries.DRIFT_LIMIT)
        if not feature:
            return _json({"features": run(lambda d: queries.drift_features(d, f, dags), [])})
        return _json({"feature": feature, "windows": run(lambda d: queries.drift_over_time(d, feature, f, dags), [])})

    @app.get("/api/champions")
    def champions(request: Request, dags: Sequence[str] | None = Dags) -> JSONResponse:
        f = filters(request, queries.TIMELINE_LIMIT)
        if not f.model:
            raise HTTPException(400, "model is required (see /api/models for the models on record)")
        empty = {"model_name": f.model, "metric": None, "changes": [], "measured": []}
        return _json(run(lambda d: queries.champions(d, f.model, f, dags), empty))

    @app.get("/api/shadow")
    def shadow(request: Request, dags: Sequence[str] | None = Dags) -> JSONResponse:
        """Challengers in shadow evaluation and their running evidence (newest first)."""
        f = filters(request)
        if not f.model:
            raise HTTPException(400, "model is required (see /api/models for the models on record)")
        rows = run(lambda d: queries.shadows(d, f.model, dags, f.limit), [])
        return _json({"model_name": f.model, "challengers": rows,
                      "active": next((r for r in rows if r["state"] == "shadow"), None)})

    @app.get("/api/gate-failures")
    def gate_failures(request: Request, dags: Sequence[str] | None = Dags) -> JSONResponse:
        f = filters(request)
        return _json({"criteria": run(lambda d: queries.gate_failures(d, f, dags), [])})

    @app.get("/report/{event_id}", response_class=HTMLResponse)
    def drift_report(event_id: int, dags: Sequence[str] | None = Dags) -> HTMLResponse:
        row = run(lambda d: queries.drift_report_location(d, event_id, dags), None)
        if row is None:
            raise HTTPException(404, f"event {event_id} has no drift report (only a check that found drift logs one)")
        try:
            html = read_report(row)
        except Exception as exc:  # MLflow unreachable, artifact deleted, ...
            log.warning("retraining UI: drift report of event %s unreadable: %s", event_id, exc)
            raise HTTPException(502, f"the drift report {row['drift_report_uri']} could not be read from MLflow "
                                     f"({type(exc).__name__}); open the MLflow run {row['drift_report_run_id']} "
                                     f"instead") from exc
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return app


def read_report(row: dict[str, Any]) -> str:
    """The drift report's HTML: a local file directly, anything else through MLflow, set up as the model's
    tasks set it up (its configuration, found from the row's DAG id)."""
    uri: str = row["drift_report_uri"]
    local = uri.removeprefix("file://") if uri.startswith("file://") else uri if uri.startswith("/") else None
    if local is not None:
        return Path(local).read_text(encoding="utf-8")
    import mlflow.artifacts

    from .. import fleet
    from ..config import load_config
    from ..release import registry

    registry.setup(load_config(fleet.config_path_for(row["dag_id"])))
    path = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    try:
        return Path(path).read_text(encoding="utf-8")
    finally:
        Path(path).unlink(missing_ok=True)
