"""The fleet: one model per YAML file, one ``model_retraining`` / ``model_rollback`` DAG pair per model.

A deployment's models are the model configurations in a folder, ``$RETRAINING_CONFIG_DIR``
(default ``include/config/``), plus the **default model**'s file, ``$RETRAINING_CONFIG`` (default
``include/config/credit_risk.yaml``), wherever that file lives. The default model keeps the DAG ids
``model_retraining`` and ``model_rollback``; every other model gets ``model_retraining__<model.name>``
and ``model_rollback__<model.name>``. Adding a YAML file adds a model; removing it removes its DAGs
(their runs and rows stay in Airflow and in the events table).

This module runs at parse time, every time the DAG processor re-parses the DAG files, so it reads
only ``model.name``, ``model.task``, ``model.type`` and ``window.labels_asset`` of each file with PyYAML; the full, validated
configuration (pydantic, :mod:`.config`) is loaded by the tasks, from :func:`config_path_for`.

Rules, each chosen so that a mistake shows as a DAG import error in the UI rather than as a model
that silently disappears or two models writing under one name:

- two files with the same ``model.name`` are an error naming both files (their rows, snapshots,
  champions and locks are all keyed by that name);
- the default model's file may live outside the folder (the tests and some deployments point
  ``$RETRAINING_CONFIG`` at a file of their own); if a folder file has the same ``model.name``, the
  default file takes its place: it is the same model, configured for this deployment;
- a YAML file without a ``model:`` mapping is not a model configuration and is skipped with a
  warning; a file that is not valid YAML, or a model without a usable ``name``, is an error.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

CONFIG_ENV_VAR = "RETRAINING_CONFIG"  # the default model's file (same variable as config.CONFIG_ENV_VAR)
CONFIG_DIR_ENV_VAR = "RETRAINING_CONFIG_DIR"  # the folder of model configurations
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
DEFAULT_CONFIG_PATH = DEFAULT_CONFIG_DIR / "credit_risk.yaml"
RETRAINING_DAG_ID = "model_retraining"
ROLLBACK_DAG_ID = "model_rollback"
SEPARATOR = "__"  # model_retraining__<model.name>
SUFFIXES = (".yaml", ".yml")

# What Airflow accepts in a DAG id (and what config.py accepts as model.name).
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_ENV_PATTERN = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FleetError(ValueError):
    """The folder of model configurations cannot be turned into DAGs; the message names the file(s)."""


@dataclass(frozen=True)
class ModelEntry:
    """One model of the fleet: what its DAGs are called and which file configures it."""

    name: str
    task: str
    type: str
    path: Path
    is_default: bool = False
    labels_asset: bool = False  # window.labels_asset: also scheduled on the model's labelled-data asset

    @property
    def retraining_dag_id(self) -> str:
        return dag_id_for(RETRAINING_DAG_ID, self)

    @property
    def rollback_dag_id(self) -> str:
        return dag_id_for(ROLLBACK_DAG_ID, self)

    @property
    def tag(self) -> str:
        return f"model:{self.name}"

    def describe(self) -> str:
        """One Markdown line for the DAG's docs: which model and which file."""
        default = " (the deployment's default model)" if self.is_default else ""
        return f"**Model `{self.name}`**{default}: {self.task}, {self.type}; configured by `{self.path}`."


def dag_id_for(base: str, model: ModelEntry) -> str:
    """``model_retraining`` for the default model, ``model_retraining__<name>`` for the others."""
    return base if model.is_default else f"{base}{SEPARATOR}{model.name}"


def config_dir() -> Path:
    return Path(os.environ.get(CONFIG_DIR_ENV_VAR) or DEFAULT_CONFIG_DIR)


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def _expand(value: str, file: Path) -> str:
    """``${NAME}`` / ``${NAME:-default}`` as config.py expands them (the name may come from the environment)."""

    def repl(match: re.Match[str]) -> str:
        found = os.environ.get(match.group("name"))
        if found or (found is not None and match.group("default") is None):
            return found
        if match.group("default") is None:
            raise FleetError(f"{file}: model.name uses ${{{match.group('name')}}}, which is not set and has no default")
        return match.group("default")

    return _ENV_PATTERN.sub(repl, value)


def read_entry(file: Path, is_default: bool = False) -> ModelEntry | None:
    """The model a file configures (name, task, type), or None when the file is not a model configuration."""
    try:
        raw = yaml.load(file.read_text(), Loader=_Loader)  # noqa: S506 (a safe loader)
    except OSError as exc:
        raise FleetError(f"model configuration {file} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise FleetError(f"model configuration {file} is not valid YAML (fix or remove it): {exc}") from None
    model = raw.get("model") if isinstance(raw, dict) else None
    if not isinstance(model, dict):
        if is_default:
            raise FleetError(f"{file} (${CONFIG_ENV_VAR}, the default model) has no 'model:' section: "
                             "point it at a model configuration")
        log.warning("%s has no 'model:' section: not a model configuration, no DAG for it", file)
        return None
    name = model.get("name")
    name = _expand(name, file) if isinstance(name, str) else name
    if not isinstance(name, str) or not _NAME.match(name) or not name.strip("."):
        raise FleetError(f"{file}: model.name must be letters, digits, '_', '.' or '-' (it names the model's DAGs), "
                         f"got {name!r}")
    window = raw.get("window") if isinstance(raw.get("window"), dict) else {}
    return ModelEntry(name=name, task=str(model.get("task") or "binary"), type=str(model.get("type") or "xgboost"),
                      path=file, is_default=is_default, labels_asset=window.get("labels_asset") is True)


def folder_files(folder: Path) -> list[Path]:
    """The YAML files directly in ``folder`` (not in sub-folders, no hidden files), by name."""
    if not folder.is_dir():
        raise FleetError(f"the model configuration folder {folder} (${CONFIG_DIR_ENV_VAR}) does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file())


def discover(folder: Path | None = None, default: Path | None = None) -> list[ModelEntry]:
    """Every model of the deployment: the default model first, then the folder's models by name."""
    folder = folder or config_dir()
    default = default or default_config_path()
    if not default.is_file():
        raise FleetError(f"the default model's configuration {default} (${CONFIG_ENV_VAR}) does not exist")
    first = read_entry(default, is_default=True)
    assert first is not None  # read_entry raises for a default file that is not a model configuration
    by_name: dict[str, ModelEntry] = {first.name: first}
    default_real = default.resolve()
    for file in folder_files(folder):
        if file.resolve() == default_real:
            continue
        entry = read_entry(file)
        if entry is None:
            continue
        seen = by_name.get(entry.name)
        if seen is not None and seen.is_default:
            log.info("%s configures model %s, which the default model's file %s replaces", file, entry.name, seen.path)
            continue
        if seen is not None:
            raise FleetError(f"model name {entry.name!r} is configured twice, in {seen.path} and in {file}: "
                             "give each model.name once (events rows, champions and locks are keyed by it)")
        by_name[entry.name] = entry
    return [first, *sorted((e for e in by_name.values() if not e.is_default), key=lambda e: e.name)]


def model_for(dag_id: str) -> ModelEntry:
    """The fleet's model behind a DAG id; a FleetError naming the known ids when there is none."""
    models = discover()
    for entry in models:
        if dag_id in (entry.retraining_dag_id, entry.rollback_dag_id):
            return entry
    known = ", ".join(sorted(e.retraining_dag_id for e in models))
    raise FleetError(f"DAG {dag_id!r} belongs to no model configuration in {config_dir()} (${CONFIG_DIR_ENV_VAR}); "
                     f"known: {known}. Was the model's YAML file removed or its model.name changed?")


def config_path_for(dag_id: str) -> Path:
    """The configuration file of the model a DAG run belongs to (used by the tasks at run time).

    ``model_retraining`` and ``model_rollback`` (and any DAG id that is not one of the fleet's
    ``<base>__<model>`` ids, e.g. a test's) use the default model's file, read from the environment
    now, as before there was a fleet; ``<base>__<model>`` ids look the model up in the folder."""
    for base in (RETRAINING_DAG_ID, ROLLBACK_DAG_ID):
        if dag_id.startswith(base + SEPARATOR):
            return model_for(dag_id).path
    return default_config_path()
