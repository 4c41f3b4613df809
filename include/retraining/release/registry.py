"""The MLflow side: tracking store, the model registry, and promotion by alias.

Aliases, not stages (stages are deprecated in MLflow): ``champion`` is the version in
production, ``previous_champion`` the one it replaced (ready for rollback), and
``challenger`` the latest registered candidate. Each registered version carries the
reference profile and metadata (classes, features, baseline metrics) of its training
run as artifacts, so a drift check needs nothing but the alias.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import storage
from ..config import RetrainingConfig
from ..connections import local_home

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous_champion"
CHALLENGER = "challenger"
PROFILE_ARTIFACT = "reference_profile.json"
META_ARTIFACT = "model_meta.json"


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: int
    run_id: str
    source: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def tracking_uri(cfg: RetrainingConfig) -> str:
    """The tracking URI without credentials: ``mlflow.tracking_uri``, else the server of the Airflow
    connection ``mlflow.conn_id``, else $MLFLOW_TRACKING_URI, else a local SQLite store.

    Safe to log and to show: credentials (``http://user:pass@host``, the connection's login and password)
    are taken out here and given to MLflow by :func:`setup` through its environment variables, so MLflow's
    own "View run at" lines and error messages never carry them."""
    return _tracking_server(cfg)[0]


def _tracking_server(cfg: RetrainingConfig) -> tuple[str, dict[str, str]]:
    """``(URI without credentials, MLFLOW_TRACKING_* variables carrying them)``; every secret found is
    registered for redaction."""
    from ..connections import _airflow_connection
    from ..redaction import register_secret, split_userinfo

    credentials: dict[str, str] = {}
    if cfg.mlflow.conn_id:
        conn = _airflow_connection(cfg.mlflow.conn_id)
        if conn is None:
            raise LookupError(
                f"Airflow connection {cfg.mlflow.conn_id!r} (mlflow.conn_id) is not configured: add it in the UI "
                f"(Admin > Connections) or as AIRFLOW_CONN_{cfg.mlflow.conn_id.upper()}, with the MLflow server's "
                "host, port and schema (http or https) and its login/password or the extra 'token'")
        host = str(conn.host or "").rstrip("/")
        if not host:
            raise LookupError(f"Airflow connection {cfg.mlflow.conn_id!r} (mlflow.conn_id) has no host")
        if "://" not in host:
            scheme = conn.schema if conn.schema in ("http", "https") else "http"
            host = f"{scheme}://{host}"
        configured = f"{host}:{conn.port}" if conn.port else host
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
        if conn.login:
            credentials["MLFLOW_TRACKING_USERNAME"] = str(conn.login)
        if conn.password:
            credentials["MLFLOW_TRACKING_PASSWORD"] = str(conn.password)
        if extra.get("token"):
            credentials["MLFLOW_TRACKING_TOKEN"] = str(extra["token"])
    else:
        configured = cfg.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if configured:
        uri, user, password = split_userinfo(configured)
        if uri.startswith(("http://", "https://")):
            if user:
                credentials["MLFLOW_TRACKING_USERNAME"] = user
            if password:
                credentials["MLFLOW_TRACKING_PASSWORD"] = password
        else:  # a database store (postgresql://user:pass@host/db) needs its credentials in the URI
            uri = configured
        for name in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            register_secret(credentials.get(name) or os.environ.get(name))
        register_secret(password)
        return uri, credentials
    folder = local_home() / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", credentials


def setup(cfg: RetrainingConfig) -> Any:
    """Point MLflow at the store, make sure the experiment exists, return an ``MlflowClient``.

    Credentials (from ``mlflow.tracking_uri``'s userinfo or the ``mlflow.conn_id`` connection) go into
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN`` of this process, where MLflow's REST client reads
    them; without any, those variables are left as the environment set them."""
    import mlflow
    from mlflow import MlflowClient

    from ..redaction import install

    install()  # before MLflow or a driver logs anything that may hold a URI
    uri, credentials = _tracking_server(cfg)
    os.environ.update(credentials)  # how MLflow's REST client takes credentials (read per request)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(cfg.experiment_name) is None:
        artifacts = None
        if uri.startswith("sqlite:///"):  # local store: keep artifacts beside the database
            artifacts = storage.join(os.path.dirname(uri.removeprefix("sqlite:///")), "artifacts")
        try:
            mlflow.create_experiment(cfg.experiment_name, artifact_location=artifacts)
        except Exception:  # created meanwhile by another worker
            if mlflow.get_experiment_by_name(cfg.experiment_name) is None:
                raise
    mlflow.set_experiment(cfg.experiment_name)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def version_by_alias(client: Any, name: str, alias: str) -> ModelVersionInfo | None:
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return ModelVersionInfo(name=name, version=int(mv.version), run_id=mv.run_id, source=mv.source)


def version_info(client: Any, name: str, version: int) -> ModelVersionInfo:
    """A registered version by number (an error naming the model and version if there is none)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(name, str(int(version)))
    except MlflowException as exc:
        raise LookupError(f"{name} has no version {version} in the registry") from exc
    return ModelVersionInfo(name=name, version=int(mv.version), run_id=mv.run_id, source=mv.source)


def champion(cfg: RetrainingConfig, client: Any | None = None) -> ModelVersionInfo | None:
    client = client or setup(cfg)
    return version_by_alias(client, cfg.model.registry_name, CHAMPION)


def load_model(uri: str, threads: int | None = None) -> Any:
    """Load a model fully into memory; the downloaded files are removed (a long-lived worker's disk stays clean).

    ``threads``: score with this many threads (the task's budget, :mod:`..threads`), not the ``n_jobs`` the
    model was trained with on another machine or under another budget."""
    import tempfile

    import mlflow.sklearn

    from ..threads import set_model_threads

    with tempfile.TemporaryDirectory(prefix="retraining-model-") as folder:
        model = mlflow.sklearn.load_model(uri, dst_path=folder)
    return set_model_threads(model, threads) if threads else model


def load_run_json(run_id: str, artifact: str) -> dict[str, Any]:
    import mlflow.artifacts

    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact}")


def register(cfg: RetrainingConfig, client: Any, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersionInfo:
    """Register the candidate as a new version and give it the ``challenger`` alias."""
    import mlflow

    name = cfg.model.registry_name
    existing = registered_from_run(client, name, run_id)
    if existing is not None:  # a retry after the version was created (a killed or failed task): no second version
        log.info("%s version %s was registered from run %s already: reusing it", name, existing.version, run_id)
        client.set_registered_model_alias(name, CHALLENGER, str(existing.version))
        return existing
    mv = mlflow.register_model(model_uri, name, tags=tags)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    log.info("registered %s version %s (alias %s)", name, mv.version, CHALLENGER)
    return ModelVersionInfo(name=name, version=int(mv.version), run_id=run_id, source=mv.source)


DRIFT_REPORT_ARTIFACT = "drift_report.html"


def log_drift_report(cfg: RetrainingConfig, html: str, verdict: dict[str, Any], tags: dict[str, str],
                     run_name: str) -> dict[str, str]:
    """Log a drift report as its own MLflow run (kind ``drift_check``) in the model's experiment.

    The run holds the HTML report, the verdict as JSON and the headline numbers as metrics, so
    reports can be compared across checks in the MLflow UI. Returns the run id and the report's URI.
    """
    import mlflow

    setup(cfg)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags({**tags, "retraining.kind": "drift_check"})
        mlflow.log_metrics({
            "drifted_share": float(verdict["drifted_share"]),
            **({"drift_score": float(verdict["drift_score"])} if "drift_score" in verdict else {}),
            "unweighted_drifted_share": float(verdict["unweighted_share"]),
            "drifted_features": float(len(verdict["drifted_features"])),
            "max_psi": float(verdict["max_psi"]),
            "current_rows": float(verdict["current_rows"]),
        })
        mlflow.log_text(html, DRIFT_REPORT_ARTIFACT)
        mlflow.log_dict(verdict, "drift_verdict.json")
        uri = f"{run.info.artifact_uri.rstrip('/')}/{DRIFT_REPORT_ARTIFACT}"
    log.info("drift report logged to MLflow run %s: %s", run.info.run_id, uri)
    return {"run_id": run.info.run_id, "uri": uri}


def registered_from_run(client: Any, name: str, run_id: str) -> ModelVersionInfo | None:
    """The version of ``name`` registered from the MLflow run ``run_id`` (the oldest, if several), or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if not found:
        return None
    mv = min(found, key=lambda v: int(v.version))
    return ModelVersionInfo(name=name, version=int(mv.version), run_id=mv.run_id, source=mv.source)


def fail_orphan_runs(cfg: RetrainingConfig, *, dag_id: str, older_than_hours: float, who: str,
                     kinds: tuple[str, ...] = ("training", "drift_check")) -> list[str]:
    """Mark FAILED the MLflow runs of ``dag_id`` left RUNNING by a task that was killed, and say so in a tag.

    A run counts when it started more than ``older_than_hours`` ago and is of one of ``kinds`` (``training``:
    candidate runs and their trials, which carry no ``retraining.kind`` tag; ``drift_check``: drift reports).
    Returns the run ids marked."""
    import time

    import mlflow
    from mlflow import MlflowClient

    setup(cfg)
    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name(cfg.experiment_name)
    if experiment is None:
        return []
    cutoff_ms = int((time.time() - older_than_hours * 3600) * 1000)
    running = client.search_runs([experiment.experiment_id],
                                 filter_string=f"attributes.status = 'RUNNING' and tags.airflow_dag_id = '{dag_id}'",
                                 max_results=1000)
    marked = []
    for run in running:
        kind = run.data.tags.get("retraining.kind", "training")
        if kind not in kinds or run.info.start_time > cutoff_ms:
            continue
        client.set_tag(run.info.run_id, "retraining.orphaned",
                       f"marked FAILED by {who}: the task that ran it was killed (still RUNNING, no process)")
        client.set_terminated(run.info.run_id, status="FAILED")
        marked.append(run.info.run_id)
    if marked:
        log.warning("marked %d orphaned MLflow run(s) of %s FAILED: %s", len(marked), dag_id, ", ".join(marked))
    return marked


def score_versions(cfg: RetrainingConfig, client: Any, versions: Sequence[int], rows: Any) -> dict[int, tuple[dict[str, Any], Any]]:
    """Each registered version's metadata and its outputs on the same ``rows`` (float array), scored with the task's
    thread budget: what the post-deploy watch and the shadow evaluation compare. Errors (a deleted version, a
    missing artifact) propagate to the caller, which records them."""
    from .. import threads
    from ..metrics import outputs

    budget = threads.for_config(cfg).threads
    scored: dict[int, tuple[dict[str, Any], Any]] = {}
    for version in versions:
        info = version_info(client, cfg.model.registry_name, int(version))
        meta = load_run_json(info.run_id, META_ARTIFACT)
        model = load_model(info.uri, budget)
        scored[version] = (meta, outputs(model, rows[meta["features"]], cfg.model.task).astype(float))
    return scored
