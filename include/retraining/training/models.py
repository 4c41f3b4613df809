"""Training a candidate: one scikit-learn pipeline per model family, tracked in MLflow.

The pipeline is ``ColumnTransformer`` (numeric: median imputation, scaled for logistic
regression; categorical: one value for missing, then integer codes that XGBoost and
LightGBM treat as categories natively, or one-hot encoding for the other families; unseen
categories are ignored) followed by the estimator. Classes are balanced with class weights
(``scale_pos_weight`` for binary XGBoost). An Optuna search (``training.search``: 5 trials
and 5 time-ordered folds by default, or stratified shuffled folds) picks the hyperparameters; each
trial is a nested MLflow run. The final model is fitted on the training split with early
stopping on the validation split and logged as one MLflow model, with the reference
profile, the metadata and the provenance (snapshot hash, code version, config hash,
library versions) beside it.
"""

from __future__ import annotations

import logging
import platform
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__, storage
from .. import threads as thread_budget
from ..config import RetrainingConfig
from ..metrics import (
    HIGHER_IS_BETTER,
    bootstrap_se,
    clean,
    encode_labels,
    metric_names,
    metrics_of,
    operating_threshold,
    outputs,
    score,
)
from ..release.registry import META_ARTIFACT, PROFILE_ARTIFACT, setup

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 600, "max_depth": 4, "learning_rate": 0.05, "min_child_weight": 5,
                "subsample": 0.9, "colsample_bytree": 0.8},
    "lightgbm": {"n_estimators": 600, "num_leaves": 31, "learning_rate": 0.05, "min_child_samples": 20,
                 "subsample": 0.9, "subsample_freq": 1, "colsample_bytree": 0.8, "min_data_per_group": 20,
                 "verbose": -1},
    # bootstrap samples of half the rows: as accurate here, and twice as fast as full samples
    "random_forest": {"n_estimators": 150, "min_samples_leaf": 5, "max_samples": 0.5, "max_features": "sqrt"},
    "logistic_regression": {"C": 1.0, "max_iter": 1000},
}
NATIVE_CATEGORICAL = ("xgboost", "lightgbm")


def search_space(trial: Any, model_type: str) -> dict[str, Any]:
    """Hyperparameters Optuna tries for each family (the rest come from the defaults and the config)."""
    if model_type == "xgboost":
        return {
            "max_depth": trial.suggest_int("max_depth", 3, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        }
    if model_type == "lightgbm":
        return {
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        }
    if model_type == "random_forest":
        return {
            "max_depth": trial.suggest_categorical("max_depth", [8, 12, 16, 24]),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 40, log=True),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", 0.5]),
        }
    return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}


def build_preprocessor(cfg: RetrainingConfig, model_type: str) -> Any:
    """Numeric: median imputation (scaled for linear models). Categorical: one value for missing,
    then integer codes the tree libraries treat as categories natively, or one-hot for the others."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric_steps: list[Any] = [SimpleImputer(strategy="median")]
    if model_type == "logistic_regression":
        numeric_steps.append(StandardScaler())
    if model_type in NATIVE_CATEGORICAL:
        encoder: Any = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, min_frequency=5)
    else:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=5)
    transformers = []
    if cfg.columns.numeric:
        transformers.append(("numeric", make_pipeline(*numeric_steps), list(cfg.columns.numeric)))
    if cfg.columns.categorical:
        transformers.append(
            (
                "categorical",
                make_pipeline(
                    # missing categories arrive as None (SQL, Parquet) or NaN (pandas): both become one value
                    SimpleImputer(strategy="constant", fill_value="__missing__"),
                    SimpleImputer(strategy="constant", fill_value="__missing__", missing_values=None),
                    encoder,
                ),
                list(cfg.columns.categorical),
            )
        )
    return ColumnTransformer(transformers, verbose_feature_names_out=False)


def hyperparameters(cfg: RetrainingConfig, model_type: str, tuned: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the config's values for the family, then the search's best values."""
    if model_type not in DEFAULT_HYPERPARAMETERS:
        raise ValueError(f"unknown model type {model_type!r}; valid: {sorted(DEFAULT_HYPERPARAMETERS)}")
    return {**DEFAULT_HYPERPARAMETERS[model_type], **cfg.model.hyperparameters.get(model_type, {}), **(tuned or {})}


def build_estimator(cfg: RetrainingConfig, model_type: str, y_train: np.ndarray,
                    tuned: dict[str, Any] | None = None, threads: int | None = None) -> Any:
    """The family's estimator; ``threads``: its ``n_jobs`` (default: the task's budget, :mod:`..threads`)."""
    params = hyperparameters(cfg, model_type, tuned)
    n_jobs = threads if threads is not None else thread_budget.for_config(cfg).threads
    task = cfg.model.task
    seed = cfg.training.seed
    classifier = task != "regression"
    n_cat = len(cfg.columns.categorical)
    if model_type == "xgboost":
        import xgboost as xgb

        params.setdefault("early_stopping_rounds", cfg.training.early_stopping_rounds)
        if n_cat:
            params.setdefault("enable_categorical", True)
            params.setdefault("feature_types", ["q"] * len(cfg.columns.numeric) + ["c"] * n_cat)
        if not classifier:
            return xgb.XGBRegressor(random_state=seed, n_jobs=n_jobs, tree_method="hist", **params)
        if task == "binary":
            pos = max(int((y_train == 1).sum()), 1)
            params.setdefault("scale_pos_weight", (len(y_train) - pos) / pos)
            params.setdefault("eval_metric", "auc")  # early stopping on ranking quality
        else:
            params.setdefault("eval_metric", "mlogloss")
        return xgb.XGBClassifier(random_state=seed, n_jobs=n_jobs, tree_method="hist", **params)
    if model_type == "lightgbm":
        import lightgbm as lgb

        if not classifier:
            return lgb.LGBMRegressor(random_state=seed, n_jobs=n_jobs, **params)
        return lgb.LGBMClassifier(random_state=seed, n_jobs=n_jobs, class_weight="balanced", **params)
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        if not classifier:
            return RandomForestRegressor(random_state=seed, n_jobs=n_jobs, **params)
        return RandomForestClassifier(random_state=seed, n_jobs=n_jobs, class_weight="balanced", **params)
    from sklearn.linear_model import LogisticRegression, Ridge

    if not classifier:
        return Ridge(alpha=1.0 / params.get("C", 1.0), random_state=seed)
    return LogisticRegression(random_state=seed, class_weight="balanced", **params)


def targets(cfg: RetrainingConfig, frame: pd.DataFrame, classes: list[Any]) -> np.ndarray:
    labels = frame[cfg.columns.label]
    if cfg.model.task == "regression":
        return labels.to_numpy(dtype=float)
    return encode_labels(labels.tolist(), classes)


def fit(cfg: RetrainingConfig, model_type: str, train: pd.DataFrame, validation: pd.DataFrame, classes: list[Any],
        tuned: dict[str, Any] | None = None, threads: int | None = None) -> Any:
    """Fit preprocessor and estimator (early stopping on ``validation`` where supported), with ``threads``
    threads (default: the task's budget)."""
    from sklearn.pipeline import Pipeline

    features = cfg.columns.features
    y_train = targets(cfg, train, classes)
    y_val = targets(cfg, validation, classes)
    preprocessor = build_preprocessor(cfg, model_type)
    x_train = preprocessor.fit_transform(train[features])
    x_val = preprocessor.transform(validation[features])
    n_jobs = threads if threads is not None else thread_budget.for_config(cfg).threads
    estimator = build_estimator(cfg, model_type, y_train, tuned, n_jobs)
    if model_type == "xgboost":
        estimator.fit(x_train, y_train, eval_set=[(x_val, y_val)], verbose=False)
    elif model_type == "lightgbm":
        import lightgbm as lgb

        n_num, n_cat = len(cfg.columns.numeric), len(cfg.columns.categorical)
        estimator.fit(
            x_train,
            y_train,
            eval_set=[(x_val, y_val)],
            categorical_feature=list(range(n_num, n_num + n_cat)) or "auto",
            callbacks=[lgb.early_stopping(cfg.training.early_stopping_rounds, verbose=False)],
        )
    else:
        estimator.fit(x_train, y_train)
    return Pipeline([("preprocess", preprocessor), ("model", estimator)])


def cv_folds(cfg: RetrainingConfig, train: pd.DataFrame, classes: list[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds of the training split: stratified for classifiers, or ordered by time when configured."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    k = cfg.training.search.folds
    if cfg.training.search.validation == "time_series":
        order = np.argsort(train[cfg.columns.timestamp].to_numpy(), kind="stable")
        return [(order[a], order[b]) for a, b in TimeSeriesSplit(n_splits=k).split(order)]
    if cfg.model.task != "regression":
        y = targets(cfg, train, classes)
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=cfg.training.seed).split(train, y))
    return list(KFold(n_splits=k, shuffle=True, random_state=cfg.training.seed).split(train))


def search(cfg: RetrainingConfig, model_type: str, train: pd.DataFrame, classes: list[Any],
           threads: int | None = None) -> dict[str, Any]:
    """Optuna search of the family's hyperparameters by k-fold cross-validation of the primary metric.

    Each trial is a nested MLflow run under the active (candidate) run. Seeded: the same data and
    config give the same trials. Returns the best parameters, the best score and the trial history.
    """
    import mlflow
    import optuna

    conf = cfg.training.search
    metric = cfg.primary_metric
    direction = "maximize" if HIGHER_IS_BETTER[metric] else "minimize"
    folds = cv_folds(cfg, train, classes)
    features = cfg.columns.features
    history: list[dict[str, Any]] = []
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        started = time.monotonic()
        params = search_space(trial, model_type)
        scores = []
        for fold_train, fold_val in folds:
            part_train, part_val = train.iloc[fold_train], train.iloc[fold_val]
            model = fit(cfg, model_type, part_train, part_val, classes, params, threads)
            value = score(model, part_val[features], targets(cfg, part_val, classes), cfg.model.task)[metric]
            scores.append(value)
        value = float(np.nanmean(scores))
        seconds = time.monotonic() - started
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(params)
            mlflow.log_metrics({f"cv_{metric}": value, f"cv_{metric}_std": float(np.nanstd(scores)),
                                "trial_seconds": seconds})
        history.append({"trial": trial.number, "params": params, "score": value, "seconds": round(seconds, 3)})
        best = max(h["score"] for h in history) if direction == "maximize" else min(h["score"] for h in history)
        log.info("trial %d/%d: cv %s %.4f (best %.4f) in %.1f s", trial.number + 1, conf.trials, metric, value,
                 best, seconds)
        return value

    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=cfg.training.seed))
    study.optimize(objective, n_trials=conf.trials, timeout=conf.timeout_seconds)
    return {"best_params": study.best_params, "best_score": float(study.best_value), "metric": metric,
            "trials": history, "folds": len(folds)}


def code_version() -> str:
    """The git commit of the deployed code when there is one, else the package version."""
    import subprocess

    from ..connections import REPO_ROOT

    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"model-retraining {__version__}"


def library_versions(model_type: str) -> dict[str, str]:
    import importlib.metadata

    names = ["scikit-learn", "numpy", "pandas", "mlflow", "optuna"]
    if model_type in NATIVE_CATEGORICAL:
        names.append(model_type)
    return {name: importlib.metadata.version(name) for name in names}


def train_candidate(
    cfg: RetrainingConfig,
    prepared: dict[str, Any],
    run_tags: dict[str, str],
    snapshot: dict[str, Any],
) -> dict[str, Any]:
    """Search, train, score on validation and test, and log everything to one MLflow run, with the task's
    thread budget (:mod:`..threads`) for the libraries' threads."""
    thread_budget.quiet_waiting()  # before the OpenMP runtimes load
    setup(cfg)
    budget = thread_budget.for_config(cfg)
    log.info("training and scoring with %d thread%s: %s", budget.threads, "" if budget.threads == 1 else "s",
             budget.reason)
    with thread_budget.limited(budget.threads):
        return _train_candidate(cfg, prepared, run_tags, snapshot, budget.threads)


def _train_candidate(cfg: RetrainingConfig, prepared: dict[str, Any], run_tags: dict[str, str],
                     snapshot: dict[str, Any], threads: int) -> dict[str, Any]:
    import hashlib
    import json

    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from ..redaction import redact_config

    model_type = cfg.model.type
    splits = {name: storage.read_parquet(uri) for name, uri in prepared["splits"].items()}
    classes = prepared["classes"]
    features = cfg.columns.features
    # the run's record of its configuration, credentials masked (the hash too: it must not fingerprint a password)
    config_json = json.dumps(redact_config(cfg.model_dump(mode="json")), sort_keys=True)
    provenance = {
        "snapshot_hash": snapshot["hash"],
        "code_version": code_version(),
        "config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
        **{f"lib_{k}": v for k, v in library_versions(model_type).items()},
    }
    with mlflow.start_run(run_name=f"{model_type}-{run_tags.get('airflow_run_id', 'manual')}") as run:
        mlflow.set_tags({**run_tags, **provenance, "model_type": model_type, "task": cfg.model.task})
        mlflow.log_dict(json.loads(config_json), "config.json")
        started = time.monotonic()
        tuned: dict[str, Any] = {}
        searched = None
        if cfg.training.search.trials > 0:
            log.info("searching %s hyperparameters: %d trials, %d-fold %s validation of %s",
                     model_type, cfg.training.search.trials, cfg.training.search.folds,
                     cfg.training.search.validation, cfg.primary_metric)
            searched = search(cfg, model_type, splits["train"], classes, threads)
            tuned = searched["best_params"]
            mlflow.log_metric(f"cv_best_{searched['metric']}", searched["best_score"])
        search_seconds = time.monotonic() - started
        log.info("training %s on %d rows (%d features)", model_type, len(splits["train"]), len(features))
        model = fit(cfg, model_type, splits["train"], splits["validation"], classes, tuned, threads)
        fit_seconds = time.monotonic() - started - search_seconds
        # test: the out-of-time holdout (what the gate and the baseline use); test_in_time: random
        # held-out rows of the training period, reported for comparison (they flatter every model)
        metrics = {
            name: clean(score(model, splits[name][features], targets(cfg, splits[name], classes), cfg.model.task))
            for name in ("validation", "test", "test_in_time") if name in splits and len(splits[name])
        }
        test = splits["test"]
        log.info("trained in %.1f s (search %.1f s); out-of-time holdout metrics %s; in-time %s", fit_seconds,
                 search_seconds, metrics["test"], metrics.get("test_in_time"))
        monitoring = monitoring_meta(cfg, model, splits["validation"], test, classes)
        threshold = choose_threshold(cfg, model, splits["validation"], classes)
        params = hyperparameters(cfg, model_type, tuned)
        mlflow.log_params({f"hp_{k}": v for k, v in params.items()})
        mlflow.log_params(
            {
                "model_type": model_type,
                "train_rows": len(splits["train"]),
                "validation_rows": len(splits["validation"]),
                "test_rows": len(test),
                "holdout_start": (prepared.get("holdout") or {}).get("start"),
                "trained_until": prepared.get("trained_until"),
                "snapshot_uri": snapshot["uri"],
                "seed": cfg.training.seed,
                "operating_threshold": threshold,
                "search_trials": cfg.training.search.trials,
                "search_folds": cfg.training.search.folds,
                "python": platform.python_version(),
            }
        )
        for split_name, values in metrics.items():
            mlflow.log_metrics({f"{split_name}_{k}": v for k, v in values.items() if v is not None})
        mlflow.log_metrics({"fit_seconds": fit_seconds, "search_seconds": search_seconds})
        meta = {
            "task": cfg.model.task,
            "model_type": model_type,
            "features": features,
            "numeric": cfg.columns.numeric,
            "categorical": cfg.columns.categorical,
            "label": cfg.columns.label,
            "classes": classes,
            # binary: the cut p1 > operating_threshold the gate judges threshold metrics at (chosen on validation rows)
            "operating_threshold": threshold,
            "operating_point": cfg.gate.operating_point if threshold is not None else None,
            # what drift checks compare the model's live performance with: its score on the
            # out-of-time holdout, rows newer than everything it learned from
            **monitoring,
            "trained_until": prepared.get("trained_until"),
            "holdout": prepared.get("holdout"),
            "snapshot": snapshot,
            "hyperparameters": params,
            "search": searched,
            **provenance,
        }
        sample = splits["train"][features].head(50)
        example_output = model.predict(sample) if cfg.model.task == "regression" else model.predict_proba(sample)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            skops_trusted_types=trusted_types(model),
            signature=infer_signature(sample, example_output),
            pip_requirements=[f"{k}=={v}" for k, v in library_versions(model_type).items()
                              if k in ("scikit-learn", "xgboost", "lightgbm")],
        )
        mlflow.log_dict(storage.read_json(prepared["profile_uri"]), PROFILE_ARTIFACT)
        mlflow.log_dict(meta, META_ARTIFACT)
    return {
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "model_type": model_type,
        "metrics": metrics["test"],
        "validation_metrics": metrics["validation"],
        "operating_threshold": threshold,
        "fit_seconds": round(fit_seconds, 3),
        "search_seconds": round(search_seconds, 3),
        "best_params": tuned,
        "provenance": provenance,
    }


def choose_threshold(cfg: RetrainingConfig, model: Any, validation: pd.DataFrame, classes: list[Any]) -> float | None:
    """A binary model's operating threshold (``p1 > t``), chosen on its validation rows by ``gate.operating_point``;
    None for multiclass and regression models (they keep the argmax / the prediction)."""
    if cfg.model.task != "binary" or not len(validation):
        return None
    y = targets(cfg, validation, classes)
    p1 = model.predict_proba(validation[cfg.columns.features])[:, 1]
    threshold = round(operating_threshold(y, p1, cfg.gate.operating_point), 6)
    log.info("operating threshold %.4f (%s on %d validation rows)", threshold, cfg.gate.operating_point, len(y))
    return threshold


def monitoring_meta(cfg: RetrainingConfig, model: Any, validation: pd.DataFrame, baseline: pd.DataFrame,
                    classes: list[Any]) -> dict[str, Any]:
    """What the drift checks of a deployed model compare with, computed once when it is trained.

    - ``baseline_metrics`` / ``baseline_rows`` / ``baseline_se``: the model's metrics on held-out
      ``baseline`` rows (its out-of-time holdout: rows after its training data), and their bootstrap
      standard errors, so a later drop can be told from the noise of a few hundred rows;
    - ``feature_importance``: permutation importance shares, which weigh drifted features;
    - ``calibration`` / ``estimated_baseline`` (classifiers): isotonic calibration of the
      probabilities on the validation rows, and the label-free estimate on the baseline rows, which
      an estimate on an unlabelled window is compared with;
    - ``error_profile`` / ``estimated_baseline`` (regression): the residual's mean, squared and
      absolute mean by quantile bin of the prediction on the validation rows, and the label-free
      estimate (RMSE, MAE, R2) from it on the baseline rows.
    """
    from ..monitoring import performance_estimate

    features, task = cfg.columns.features, cfg.model.task
    out = outputs(model, baseline[features], task)
    y = targets(cfg, baseline, classes)
    importance = feature_importance(cfg, model, validation, classes)
    log.info("permutation importance on validation rows: %s",
             ", ".join(f"{k} {v:.2f}" for k, v in sorted(importance.items(), key=lambda kv: -kv[1])))
    meta: dict[str, Any] = {
        "baseline_metrics": clean(metrics_of(y, out, task)),
        "baseline_rows": int(len(baseline)),
        "baseline_se": {m: None if (se := bootstrap_se(y, out, task, m, seed=cfg.training.seed)) is None
                        else round(se, 6) for m in metric_names(task)},
        "feature_importance": importance,
        "calibration": None,
        "error_profile": None,
        "estimated_baseline": None,
    }
    if task == "regression":
        try:
            meta["error_profile"] = performance_estimate.fit_error_profile(
                targets(cfg, validation, classes), model.predict(validation[features]))
        except ValueError as exc:  # e.g. too few validation rows: no label-free estimates for this model
            log.warning("no error profile for label-free performance estimates: %s", exc)
        else:
            meta["estimated_baseline"] = performance_estimate.estimate_regression(meta["error_profile"], out)
    else:
        try:
            meta["calibration"] = performance_estimate.fit_calibration(
                targets(cfg, validation, classes), model.predict_proba(validation[features]))
        except ValueError as exc:  # e.g. too few validation rows: no label-free estimates for this model
            log.warning("no calibration for label-free performance estimates: %s", exc)
        else:
            meta["estimated_baseline"] = performance_estimate.estimate(meta["calibration"], out)
    return meta


def feature_importance(cfg: RetrainingConfig, model: Any, frame: pd.DataFrame, classes: list[Any],
                       max_rows: int = 5000, repeats: int = 3) -> dict[str, float]:
    """Permutation importance of each feature on held-out rows, as shares summing to 1.

    Model-agnostic (the same meaning for every family, unlike gain or coefficients): how much
    the log loss (R2 for regression) worsens when the feature's values are shuffled. Negative
    values (noise) count as 0; if every feature is 0, all get an equal share.
    """
    from sklearn.inspection import permutation_importance

    features = cfg.columns.features
    sample = frame.sample(min(len(frame), max_rows), random_state=cfg.training.seed) if len(frame) > max_rows else frame
    scoring = "r2" if cfg.model.task == "regression" else "neg_log_loss"
    y = targets(cfg, sample, classes)
    if scoring == "neg_log_loss" and len(np.unique(y)) < len(classes):
        scoring = "accuracy"  # log loss needs every class among the rows
    result = permutation_importance(model, sample[features], y, scoring=scoring, n_repeats=repeats,
                                    random_state=cfg.training.seed)
    raw = np.clip(result.importances_mean, 0.0, None)
    total = float(raw.sum())
    if total <= 0:
        return {f: round(1.0 / len(features), 6) for f in features}
    return {f: round(float(v) / total, 6) for f, v in zip(features, raw, strict=True)}


def trusted_types(model: Any) -> list[str]:
    """The types skops must trust to load this pipeline: exactly those it contains (we built it)."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
