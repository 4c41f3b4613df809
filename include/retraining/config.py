"""The model configuration: one YAML file per model, validated once.

Everything a run needs to know about a model lives here: where its production data
comes from, which columns are features, label and timestamp, the drift and
performance thresholds, the training and gate settings, and where models and
datasets are stored. Values of the form ``${NAME}`` or ``${NAME:-default}`` are
taken from the environment, so one file serves a laptop and a cluster.

An invalid file raises :class:`ConfigError`, whose message names the field, e.g.
``gate.min_improvement: Input should be greater than or equal to 0``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .monitoring.method_kinds import CATEGORICAL, NUMERIC, kinds_of

TaskKind = Literal["binary", "multiclass", "regression"]
ModelType = Literal["xgboost", "lightgbm", "random_forest", "logistic_regression"]
MODEL_TYPES: tuple[str, ...] = ("xgboost", "lightgbm", "random_forest", "logistic_regression")
REGRESSION_GATE_DEFAULTS: dict[str, dict[str, float]] = {"max_regression": {"r2": 0.01}, "min_absolute": {"r2": 0.0}}
METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier", "r2", "rmse",
                            "mae")
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "credit_risk.yaml"
CONFIG_ENV_VAR = "RETRAINING_CONFIG"

_ENV_PATTERN = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class ConfigError(ValueError):
    """The model configuration is invalid; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MAX_MODEL_NAME = 64  # the name becomes folder names, an experiment name, events keys and DAG ids
MAX_REGISTERED_NAME = 128
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_REGISTRY_FORBIDDEN = ("/", ":", "%", "?", "#", "\\")  # MLflow refuses / and :; the rest break models:/ URIs


class ModelSection(_Strict):
    """The model's identity. ``name`` is used as a path segment under ``storage.uri`` and in the events
    rows, so it is a plain file name: letters, digits, ``_ . -``, starting with a letter or digit (no
    ``..``, no hidden or option-like names). ``registered_name`` (default: ``name``) is the MLflow
    registered model's name."""

    name: str
    task: TaskKind = "binary"
    type: ModelType = "xgboost"
    registered_name: str | None = None
    hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not _MODEL_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a usable model name: use letters, digits, '_', '.' and '-', starting with a "
                "letter or digit (it names folders under storage.uri, so '..', '.hidden' and '-x' are refused)")
        if len(name) > MAX_MODEL_NAME:
            raise ValueError(f"{name[:20]!r}... has {len(name)} characters; at most {MAX_MODEL_NAME} are allowed")
        return name

    @field_validator("registered_name")
    @classmethod
    def _registry_name(cls, name: str | None) -> str | None:
        if name is None:
            return None
        problem = None
        if not name.strip() or name != name.strip():
            problem = "is empty or starts or ends with a space"
        elif set(name) <= {"."}:
            problem = "is only dots"
        elif any(not ch.isprintable() for ch in name):
            problem = "contains a control character"
        elif any(c in name for c in _REGISTRY_FORBIDDEN):
            problem = f"contains one of {' '.join(_REGISTRY_FORBIDDEN)} (MLflow registered model names cannot)"
        elif len(name) > MAX_REGISTERED_NAME:
            problem = f"has {len(name)} characters; at most {MAX_REGISTERED_NAME} are allowed"
        if problem:
            raise ValueError(f"{name!r} {problem}; choose another MLflow registered model name")
        return name

    @property
    def registry_name(self) -> str:
        return self.registered_name or self.name


class SourceSection(_Strict):
    """Where production data is read from: a SQL table/query or Parquet/CSV files."""

    kind: Literal["sql", "parquet", "csv"]
    conn_id: str | None = None
    table: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    query: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> SourceSection:
        if self.kind == "sql":
            if not self.conn_id:
                raise ValueError("conn_id is required when kind is 'sql'")
            if bool(self.table) == bool(self.query):
                raise ValueError("give exactly one of table or query when kind is 'sql'")
        elif not self.path:
            raise ValueError(f"path is required when kind is '{self.kind}'")
        return self


class ColumnsSection(_Strict):
    timestamp: str
    label: str
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    id: str | None = None
    # When each row's label arrived (a timestamp; NULL while it has not). Optional: with it, a run, replay or
    # backfill uses only the labels that had arrived by the run's time (see sources.labels_as_of); never a feature.
    label_time: str | None = None

    @model_validator(mode="after")
    def _check_columns(self) -> ColumnsSection:
        features = self.numeric + self.categorical
        if not features:
            raise ValueError("at least one numeric or categorical feature is required")
        duplicated = sorted({c for c in features if features.count(c) > 1})
        if duplicated:
            raise ValueError(f"columns listed twice: {duplicated}")
        for special in (self.timestamp, self.label):
            if special in features:
                raise ValueError(f"'{special}' cannot be both a feature and the timestamp/label")
        if self.label_time is not None:
            taken = {self.timestamp: "columns.timestamp", self.label: "columns.label",
                     **({self.id: "columns.id"} if self.id else {}),
                     **dict.fromkeys(self.numeric, "columns.numeric"),
                     **dict.fromkeys(self.categorical, "columns.categorical")}
            if self.label_time in taken:
                raise ValueError(f"columns.label_time '{self.label_time}' is also {taken[self.label_time]}: the "
                                 "label-arrival time must be a column of its own (and is never a feature)")
        return self

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class WindowSection(_Strict):
    lookback_hours: int = Field(default=6, ge=1, le=24 * 90)
    min_labelled_rows: int = Field(default=500, ge=1)
    label_wait_hours: float = Field(default=5.0, ge=0)
    # Also check when the asset retraining_labelled_data__<model.name> is updated (new labelled rows arrived; see
    # include/retraining/release/assets.py); such a run checks the latest window holding enough labelled rows.
    labels_asset: bool = False


class DriftColumnRule(_Strict):
    """One column's own drift method and/or threshold (see ``drift.columns``)."""

    method: str | None = None
    threshold: float | None = Field(default=None, gt=0)


class DriftSection(_Strict):
    """Data drift (see include/retraining/monitoring/drift.py).

    Each feature gets a method: ``auto`` picks Kolmogorov-Smirnov / chi-square p-values while either
    side has at most 1000 rows and Wasserstein / Jensen-Shannon distances above; ``drift.columns``
    overrides it per column. P-values are adjusted with Benjamini-Hochberg at ``fdr_q``; a feature
    drifts when its adjusted p-value is below its threshold (default ``fdr_q``) or its distance at
    or above its threshold (p-values compared on the log10 scale); with ``threshold_mode: calibrated`` (the
    default) the threshold is raised to the statistic's natural variation within the newest regime of the
    training period, from windows of the check's size or, with a short history, sub-windows and resampled
    reference rows (weakly calibrated; see monitoring/calibration.py). The window drifts when
    its drift score, the drifted features' importance shares each times its strength (statistic over
    threshold, at most ``max_strength``), reaches ``drifted_share`` (or the score's own natural
    variation, if higher): many features just past their thresholds, or a few far past, both count.
    """

    numeric_method: str = "auto"
    categorical_method: str = "auto"
    thresholds: dict[str, float] = Field(default_factory=dict)
    columns: dict[str, DriftColumnRule] = Field(default_factory=dict)
    fdr_q: float = Field(default=0.05, gt=0, le=1)
    drifted_share: float = Field(default=0.25, gt=0, le=1)
    importance_weighted: bool = True
    # calibrated: thresholds raised to each statistic's natural variation in the training period (sampling
    # noise + between-window variation, k = calibration_sd; see monitoring/calibration.py); fixed: as given
    threshold_mode: Literal["calibrated", "fixed"] = "calibrated"
    calibration_sd: float = Field(default=3.0, gt=0, le=10)
    calibration_windows: int = Field(default=60, ge=6, le=1000)  # the newest windows of the training period
    max_strength: float = Field(default=4.0, ge=1, le=100)  # a drifted feature counts at most this many times its importance
    bins: int = Field(default=10, ge=2, le=100)
    fine_bins: int = Field(default=100, ge=10, le=1000)
    sample_rows: int = Field(default=5000, ge=0, le=100_000)
    reference_hours: int | None = Field(default=None, ge=1)
    reference_max_rows: int = Field(default=50_000, ge=100)
    pushdown_min_rows: int = Field(default=250_000, ge=0)
    # Above this many rows the pushed-down summary reads a block sample of about pushdown_sample_rows rows
    # (TABLESAMPLE SYSTEM / DuckDB's system sample; the row's trigger_metrics.sample says so); None: always exact.
    pushdown_sample_above_rows: int | None = Field(default=2_000_000, ge=0)
    pushdown_sample_rows: int = Field(default=200_000, ge=1000)
    report: bool = True
    # What data drift does when labels show the champion's performance within bounds (drift without measurable
    # harm; see monitoring/assessment.py): retrain; retrain only when the label-free estimate predicts a drop
    # beyond performance.max_estimated_drop; or record it and wait
    action: Literal["retrain", "retrain_if_estimated_drop", "record"] = "retrain_if_estimated_drop"

    @model_validator(mode="before")
    @classmethod
    def _legacy_psi_fields(cls, data: Any) -> Any:
        """``method: psi`` and ``psi_threshold`` (the first release's fields) still work."""
        if not isinstance(data, dict) or not ({"method", "psi_threshold"} & set(data)):
            return data
        data = dict(data)
        method = data.pop("method", None)
        if method:
            data.setdefault("numeric_method", method)
            data.setdefault("categorical_method", method)
        if "psi_threshold" in data:
            data["thresholds"] = {"psi": data.pop("psi_threshold"), **(data.get("thresholds") or {})}
        return data

    @model_validator(mode="after")
    def _known_methods(self) -> DriftSection:
        for field, kind in (("numeric_method", NUMERIC), ("categorical_method", CATEGORICAL)):
            name = getattr(self, field)
            if name != "auto" and kind not in kinds_of(name):
                raise ValueError(f"{field}: {name!r} does not accept {kind} columns")
        for name, value in self.thresholds.items():
            kinds_of(name)
            if not value > 0:
                raise ValueError(f"thresholds.{name} must be positive, got {value}")
        for rule in self.columns.values():
            if rule.method is not None and rule.method != "auto":
                kinds_of(rule.method)
        return self


class PerformanceSection(_Strict):
    metric: Literal["accuracy", "precision", "recall", "f1", "roc_auc", "r2", "rmse", "mae"] | None = None
    max_drop: float = Field(default=0.05, ge=0)
    max_relative_error_increase: float = Field(default=0.15, ge=0)
    # label-free estimate (classifiers): expected metric from the champion's calibrated probabilities;
    # regression estimates `metric` (r2, rmse or mae; else rmse) from its error profile instead
    estimated_metric: Literal["accuracy", "precision", "recall", "f1", "roc_auc"] = "f1"
    max_estimated_drop: float = Field(default=0.05, ge=0)
    act_before_labels: bool = True  # retrain before labels arrive when data drift and the estimate agree
    max_rows: int = Field(default=200_000, ge=1000)  # rows scored per check (the newest), however large the window
    # concept drift over several windows (monitoring/sequential.py): the newest 1..sequential_windows windows
    # judged by the champion pooled; 0 turns it off
    sequential_windows: int = Field(default=3, ge=0, le=50)
    sequential_alpha: float = Field(default=0.01, gt=0, lt=0.5)
    sequential_burn_in: int = Field(default=4, ge=0, le=100)  # the champion's first windows join its baseline
    sequential_min_effect: float = Field(default=0.25, ge=0, le=1)  # share of max_drop / max_relative_error_increase
    # Accepted for configurations written for 0.2, and ignored: the baseline at deployment is now always
    # the model's metrics on its out-of-time holdout (rows after its training data; see gate.holdout_hours).
    min_baseline_rows: int | None = Field(default=None, ge=1)


class SearchSection(_Strict):
    """Hyperparameter search with Optuna; ``trials: 0`` trains once with the configured values."""

    trials: int = Field(default=5, ge=0, le=1000)
    timeout_seconds: float | None = Field(default=1800, gt=0)
    folds: int = Field(default=5, ge=2, le=20)
    validation: Literal["stratified_kfold", "time_series"] = "time_series"  # time-ordered folds: no peeking ahead


class QualitySection(_Strict):
    """Data-quality limits checked before any decision (see include/retraining/monitoring/quality.py).

    With ``threshold_mode: calibrated`` (the default) a feature's missing-rate and out-of-range limits
    are raised to the edge of their natural variation between windows of the champion's training
    period (mean + ``calibration_sd`` * sd), when its profile holds that calibration; the limits below
    stay the floor. ``fixed``: the limits as given."""

    max_missing_rate: float = Field(default=0.2, ge=0, le=1)
    max_missing_increase: float = Field(default=0.1, ge=0, le=1)
    max_unseen_share: float = Field(default=0.05, ge=0, le=1)
    max_out_of_range_share: float = Field(default=0.05, ge=0, le=1)
    threshold_mode: Literal["calibrated", "fixed"] = "calibrated"
    calibration_sd: float = Field(default=3.0, gt=0, le=10)


STORM_RETRAINS_READ = 100  # the newest retrainings events.storm_history reads (the cap per windows is at most this)


class StormSection(_Strict):
    """Retrain-storm control: how often drift alone may cause a retraining. Forced runs and the
    first model are not limited. Time is measured between windows, never by the clock.

    Each limit holds in hours and in windows of the check's size (``window.lookback_hours``), whichever is
    longer, so that it engages at any check cadence: with the default 6-hour window, 2 windows are 12 hours
    and 28 windows a week; with two-week windows, two consecutive windows may not both retrain."""

    min_hours_between_retrains: float = Field(default=12.0, ge=0)
    max_retrains_per_week: int | None = Field(default=7, ge=1)
    consecutive_windows: int = Field(default=1, ge=1, le=20)
    # the last retraining at least this many windows before this one (None: hours only)
    min_windows_between_retrains: float | None = Field(default=2.0, ge=0)
    # at most max_retrains_per_windows retrainings in the cap_windows windows before this one (None: per week only)
    max_retrains_per_windows: int | None = Field(default=7, ge=1, le=STORM_RETRAINS_READ)
    cap_windows: int = Field(default=28, ge=1, le=10_000)


class TrainingSection(_Strict):
    min_rows: int = Field(default=1000, ge=10)
    search: SearchSection = SearchSection()
    early_stopping_rounds: int = Field(default=30, ge=1)
    history_days: int | None = Field(default=None, ge=1)
    train_fraction: float = Field(default=0.70, gt=0, lt=1)
    validation_fraction: float = Field(default=0.15, gt=0, lt=1)
    test_fraction: float = Field(default=0.15, gt=0, lt=1)
    seed: int = 42
    # Threads for training and scoring; None: derived from the cores this task may use (include/retraining/threads.py).
    threads: int | None = Field(default=None, ge=1, le=256)

    @model_validator(mode="after")
    def _fractions(self) -> TrainingSection:
        total = self.train_fraction + self.validation_fraction + self.test_fraction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train/validation/test fractions must add up to 1, got {total:.3f}")
        return self


class SignificanceSection(_Strict):
    """How an improvement is shown not to be luck: a paired test on the same test rows.

    Rows are resampled in blocks of time (``block``; see :func:`..release.significance.choose_blocks`):
    ``auto`` takes the coarsest of day, hour, 15, 5 and 1 minutes that gives at least ``min_blocks``
    blocks; ``day``/``hour`` force one; ``row`` treats rows as independent. With fewer than
    ``min_blocks`` blocks the test claims nothing."""

    method: Literal["paired_bootstrap", "mcnemar", "none"] = "paired_bootstrap"
    resamples: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    block: Literal["auto", "day", "hour", "row"] = "auto"
    min_blocks: int = Field(default=20, ge=2, le=10_000)
    power: float = Field(default=0.8, gt=0.5, lt=1)  # of the recorded minimum detectable effect


class SmokeSection(_Strict):
    """The artifact that will be served scores recent rows before it is promoted."""

    rows: int = Field(default=100, ge=1)
    max_p99_latency_ms: float = Field(default=1000.0, gt=0)


class GateSection(_Strict):
    """The evaluation gate. Candidate and champion are compared on the out-of-time holdout: the labelled
    rows of the last ``holdout_hours`` before the run's cutoff (default: half of ``window.lookback_hours``),
    extended back to the newest ``min_holdout_rows`` rows when that period holds fewer. The candidate
    trains only on rows before the holdout.

    Classifiers are compared on threshold-free metrics by default (primary metric ``roc_auc``, no
    regression of ROC AUC). A threshold metric (accuracy, precision, recall, F1) named in ``max_regression``
    or ``min_absolute`` is judged for a binary model at each model's own operating threshold, chosen on its
    validation rows at training by ``operating_point`` (``max_f1``, ``max_balanced_accuracy`` or ``fixed``
    = 0.5) and stored in its metadata; a champion trained before thresholds were stored gets 0.5 (the
    verdict says so). ``min_improvement`` is absolute, except for RMSE, MAE and log loss, where it is relative
    (0.01 = 1 % lower); ``max_regression`` tolerances and ``min_absolute`` floors are in the metric's units (for
    lower-is-better metrics, such as log loss and Brier, a floor is a maximum). The verdict's ``outcome`` is
    ``promote``, ``reject`` or ``inconclusive`` (see include/retraining/release/gate.py)."""

    primary_metric: str | None = None
    min_improvement: float = Field(default=0.01, ge=0)
    max_regression: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.005})
    min_absolute: dict[str, float] = Field(default_factory=lambda: {"precision": 0.85, "recall": 0.80})
    operating_point: Literal["max_f1", "max_balanced_accuracy", "fixed"] = "max_f1"
    holdout_hours: float | None = Field(default=None, gt=0)
    min_holdout_rows: int = Field(default=200, ge=1)
    significance: SignificanceSection = SignificanceSection()
    smoke: SmokeSection = SmokeSection()

    @model_validator(mode="before")
    @classmethod
    def _legacy_recent_rows(cls, data: Any) -> Any:
        """``min_recent_rows`` (before out-of-time evaluation: the current window's test rows) still works."""
        if isinstance(data, dict) and "min_recent_rows" in data:
            data = dict(data)
            data.setdefault("min_holdout_rows", data.pop("min_recent_rows"))
        return data

    @model_validator(mode="after")
    def _known_metrics(self) -> GateSection:
        named = [*self.max_regression, *self.min_absolute, *([self.primary_metric] if self.primary_metric else [])]
        unknown = sorted({m for m in named if m not in METRICS})
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; valid: {list(METRICS)}")
        return self


class MlflowSection(_Strict):
    """Where MLflow is. ``tracking_uri`` (else ``conn_id``, else $MLFLOW_TRACKING_URI, else a local SQLite
    store). ``conn_id`` names an Airflow HTTP connection: host, port and schema (``http``/``https``) give
    the server, login/password (or the extra ``token``) the credentials, so no secret sits in this file.
    Credentials written into a URI (``http://user:pass@host``) also work: they are taken out of the URI and
    passed as ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, and masked in every row, log line
    and artifact."""

    tracking_uri: str | None = None
    conn_id: str | None = None
    experiment: str | None = None

    @model_validator(mode="after")
    def _one_server(self) -> MlflowSection:
        if self.tracking_uri and self.conn_id:
            raise ValueError("give either tracking_uri or conn_id, not both (conn_id: an Airflow connection "
                             "holding the server and its credentials)")
        return self


class StorageSection(_Strict):
    uri: str


class DeploySection(_Strict):
    """Promotion: the ``champion`` alias always; optionally an export and a reload call."""

    auto_promote: bool = True
    serving_dir: str | None = None
    reload_conn_id: str | None = None
    reload_endpoint: str = "/model/reload"
    reload_timeout_seconds: float = Field(default=30.0, gt=0)


class EventsSection(_Strict):
    conn_id: str = "retraining_db"


# What a notification can be about (include/retraining/record/notify.py classifies each finished run).
NotifyKind = Literal["promotion", "gate_rejection", "failure", "suppressed", "rollback", "manual_promotion",
                     "awaiting_approval", "skipped", "first_model_rejected", "shadow_promotion", "shadow"]
NOTIFY_DEFAULT_EVENTS: tuple[str, ...] = ("promotion", "gate_rejection", "failure", "suppressed", "rollback",
                                          "manual_promotion", "awaiting_approval", "first_model_rejected",
                                          "shadow_promotion")


class NotifySection(_Strict):
    """Notifications of what a run did, sent by ``record_outcome`` (``switch_champion`` in model_rollback).

    Every notification is a log line of that task; with ``conn_id`` it is also sent through the Airflow
    connection, whose type picks the channel: ``http`` (a JSON POST; Slack's format when the host is
    hooks.slack.com or the extra says ``"format": "slack"``), ``slackwebhook``/``slack`` (a Slack incoming
    webhook), ``smtp``/``email`` (a mail to the extra's ``to``). ``events`` says which kinds are sent;
    ``skipped`` (a window that needed no retraining) is off by default."""

    conn_id: str | None = None
    events: list[NotifyKind] = Field(default_factory=lambda: list(NOTIFY_DEFAULT_EVENTS))
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class FreezeSection(_Strict):
    """A change freeze: a frozen model is measured and recorded (decision ``frozen``) but never trained or promoted.

    Frozen when ``frozen`` is true here, when the Airflow Variable ``variable`` (all models) or
    ``<variable>__<model.name>`` (this model) holds a true value or a reason (anything but empty, 0, false, off,
    no), or when a prerequisite check says so: ``prerequisites`` are ``module:function`` names called with the
    config, returning None when retraining may go ahead or the reason it may not (for example
    ``include.retraining.release.freeze:no_open_incident``, which reads the Variable ``retraining_open_incident``).
    ``model_rollback`` may still roll back (the emergency lever) but not promote while frozen."""

    frozen: bool = False
    reason: str | None = None
    variable: str = Field(default="retraining_freeze", pattern=r"^[A-Za-z0-9_.\-]+$")
    prerequisites: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _callables(self) -> FreezeSection:
        for name in self.prerequisites:
            if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", name):
                raise ValueError(f"prerequisites: {name!r} is not 'module:function' (e.g. "
                                 "'include.retraining.release.freeze:no_open_incident')")
        return self


class WatchSection(_Strict):
    """The watch after a promotion (see include/retraining/release/watch.py): for ``hours`` after it, the new
    champion and the one it replaced are scored on the same labelled rows that arrived since; when the new
    champion is significantly worse (the primary metric below the previous champion's by more than ``max_drop``,
    with the gate's paired test), the previous champion is restored through the same recoverable promotion
    path, recorded as ``trigger_type = 'post_deploy_watch'``, ``decision = 'rollback'``, and announced. Live
    runs only: backfills and replays never roll back.

    The span is measured in time, so it works at any check cadence: the span is split into ``looks``
    checkpoints and a run judges when its window reaches a checkpoint not judged before (a weekly run may reach
    several at once), at ``1 - gate.significance.confidence`` times the share of checkpoints it reaches
    (Bonferroni over at most ``looks`` judgements). Rows are resampled in blocks of ``block`` (a day by default:
    rows of one day share its weather and its incidents) and at least ``min_blocks`` blocks with labelled rows
    are needed to judge. ``max_rows`` caps the rows scored (the newest). ``windows`` (the first release's
    field: windows of the 6-hour grid) is still accepted and read as ``hours = 6 * windows``."""

    enabled: bool = True
    hours: float = Field(default=14 * 24.0, gt=0, le=24 * 365)
    looks: int = Field(default=4, ge=1, le=100)
    block: Literal["day", "hour"] = "day"
    min_blocks: int = Field(default=3, ge=2, le=1000)
    min_rows: int = Field(default=200, ge=20)  # labelled rows after the promotion needed to judge
    max_rows: int | None = Field(default=None, ge=100)  # rows scored (the newest); None: performance.max_rows
    max_drop: float = Field(default=0.0, ge=0)  # primary metric margin, same units as gate.min_improvement

    @model_validator(mode="before")
    @classmethod
    def _legacy_windows(cls, data: Any) -> Any:
        """``windows: N`` (N windows of the 6-hour grid after the promotion) becomes ``hours: 6 N``."""
        if isinstance(data, dict) and "windows" in data:
            data = dict(data)
            windows = data.pop("windows")
            if "hours" in data:
                raise ValueError("give watch.hours (the watch's span since the promotion) or the older "
                                 "watch.windows, not both")
            if not isinstance(windows, int) or isinstance(windows, bool) or windows < 1:
                raise ValueError(f"watch.windows must be a whole number of 6-hour windows >= 1, got {windows!r}; "
                                 "better: give watch.hours")
            data["hours"] = 6.0 * windows
        return data


class ShadowSection(_Strict):
    """Shadow evaluation of a challenger the gate could not judge (not significantly better, not significantly
    worse): the candidate is registered as ``challenger`` but not deployed, and every later live run scores it
    beside the champion on the labelled rows that arrived since, with a group-sequential test whose overall error
    rate is at most ``alpha`` (see include/retraining/release/shadow.py). It is promoted when it is significantly
    better (and by at least ``min_improvement``, in the gate's units), dropped when it is significantly worse or
    cannot become better by ``min_improvement`` (futility), when ``max_rows`` labelled rows or ``max_hours`` hours
    since its registration gave no verdict, or when a newer candidate is registered. ``block_hours``: rows of one
    block (a day by default) count as one cluster."""

    enabled: bool = True
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    spending: Literal["obrien_fleming", "pocock"] = "obrien_fleming"
    max_rows: int = Field(default=20_000, ge=100)  # the test's horizon: information fraction = rows / max_rows
    max_hours: float = Field(default=28 * 24, gt=0)
    min_rows: int = Field(default=200, ge=20)  # labelled rows since registration before the first look
    min_blocks: int = Field(default=4, ge=3)  # blocks (days) before the first look
    block_hours: float = Field(default=24.0, gt=0, le=24 * 7)
    min_improvement: float = Field(default=0.0, ge=0)


class RetrainingConfig(_Strict):
    model: ModelSection
    source: SourceSection
    columns: ColumnsSection
    window: WindowSection = WindowSection()
    drift: DriftSection = DriftSection()
    performance: PerformanceSection = PerformanceSection()
    storm: StormSection = StormSection()
    quality: QualitySection = QualitySection()
    training: TrainingSection = TrainingSection()
    gate: GateSection = GateSection()
    mlflow: MlflowSection = MlflowSection()
    storage: StorageSection
    deploy: DeploySection = DeploySection()
    events: EventsSection = EventsSection()
    notify: NotifySection = NotifySection()
    freeze: FreezeSection = FreezeSection()
    watch: WatchSection = WatchSection()
    shadow: ShadowSection = ShadowSection()

    @model_validator(mode="before")
    @classmethod
    def _regression_gate_defaults(cls, data: Any) -> Any:
        """The seed runbooks' criteria are for classifiers; a regression model gets their equivalents
        (R2 no more than 0.01 below the champion's, R2 above 0) unless the file says otherwise."""
        if not isinstance(data, dict) or (data.get("model") or {}).get("task") != "regression":
            return data
        gate = dict(data.get("gate") or {})
        gate.setdefault("max_regression", REGRESSION_GATE_DEFAULTS["max_regression"])
        gate.setdefault("min_absolute", REGRESSION_GATE_DEFAULTS["min_absolute"])
        return {**data, "gate": gate}

    @model_validator(mode="after")
    def _drift_columns_are_features(self) -> RetrainingConfig:
        kinds = {**dict.fromkeys(self.columns.numeric, NUMERIC), **dict.fromkeys(self.columns.categorical, CATEGORICAL)}
        for col, rule in self.drift.columns.items():
            if col not in kinds:
                raise ValueError(f"drift.columns.{col}: not a feature (features: {', '.join(kinds)})")
            if rule.method not in (None, "auto") and kinds[col] not in kinds_of(rule.method):
                raise ValueError(f"drift.columns.{col}: method {rule.method!r} does not accept {kinds[col]} columns")
        return self

    @property
    def primary_metric(self) -> str:
        """The gate's primary metric: ``gate.primary_metric``, else R2 for regression and the threshold-free ROC AUC
        for classifiers (a fixed-threshold metric would judge two models at a cut neither was tuned to)."""
        default = "r2" if self.model.task == "regression" else "roc_auc"
        return self.gate.primary_metric or default

    @property
    def holdout_hours(self) -> float:
        """Length of the out-of-time holdout the gate judges on (default: half the check's window)."""
        return self.gate.holdout_hours or self.window.lookback_hours / 2

    @property
    def performance_metric(self) -> str:
        return self.performance.metric or self.primary_metric

    @property
    def experiment_name(self) -> str:
        return self.mlflow.experiment or f"model_retraining/{self.model.name}"

    def with_overrides(self, overrides: Mapping[str, Any]) -> RetrainingConfig:
        """Apply trigger-time overrides given as dotted paths, e.g. ``{"model.type": "lightgbm"}``.

        ``None`` values mean "keep the configured value". The result is validated again.
        """
        data = self.model_dump()
        for dotted, value in overrides.items():
            if value is None:
                continue
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                if not isinstance(node, dict) or part not in node:
                    raise ConfigError(f"{dotted}: unknown configuration section {part!r}")
                node = node[part]
            if not isinstance(node, dict) or leaf not in node:
                raise ConfigError(f"{dotted}: unknown configuration field")
            node[leaf] = value
        return _validate(data, source="overrides")


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            value = os.environ.get(name)
            if value or (value is not None and default is None):
                return value
            if default is None:
                raise ConfigError(f"environment variable {name} is not set and has no default (${{{name}:-...}})")
            return default

        return _ENV_PATTERN.sub(repl, value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _validate(data: Any, source: str) -> RetrainingConfig:
    try:
        return RetrainingConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            location = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{location}: {err['msg']}")
        raise ConfigError(f"invalid model configuration in {source}: " + "; ".join(problems)) from None


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the argument, else $RETRAINING_CONFIG, else the bundled example."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH
    return Path(chosen)


def load_config(path: str | os.PathLike[str] | None = None) -> RetrainingConfig:
    """Read, expand and validate a model configuration file."""
    file = config_path(path)
    if not file.is_file():
        raise ConfigError(f"model configuration file not found: {file} (set ${CONFIG_ENV_VAR} or pass a path)")
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"model configuration {file} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"model configuration {file} must be a mapping at the top level")
    return _validate(_expand_env(raw), source=str(file))
