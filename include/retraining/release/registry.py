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
    """The configured tracking URI, else $MLFLOW_TRACKING_URI, else a local SQLite store."""
    configured = cfg.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    folder = local_home() / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def setup(cfg: RetrainingConfig) -> Any:
    """Point MLflow at the store, make sure the experiment exists, return an ``MlflowClient``."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(cfg)
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


def load_model(uri: str) -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.load_model(uri)


def load_run_json(run_id: str, artifact: str) -> dict[str, Any]:
    import mlflow.artifacts

    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact}")


def register(cfg: RetrainingConfig, client: Any, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersionInfo:
    """Register the candidate as a new version and give it the ``challenger`` alias."""
    import mlflow

    name = cfg.model.registry_name
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
