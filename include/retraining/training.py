"""Training a candidate: one scikit-learn pipeline per model family, tracked in MLflow.

The pipeline is ``ColumnTransformer`` (numeric: median imputation, scaled for logistic
regression; categorical: a constant for missing values, then one-hot encoding that
ignores unseen categories) followed by the estimator. Classes are balanced with class
weights (``scale_pos_weight`` for binary XGBoost). XGBoost and LightGBM stop early on
the validation split. The whole pipeline is logged as one MLflow model, with the
reference profile and the model's metadata beside it.
"""

from __future__ import annotations

import logging
import platform
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__, storage
from .config import RetrainingConfig
from .metrics import clean, encode_labels, score
from .registry import META_ARTIFACT, PROFILE_ARTIFACT, setup

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 600, "max_depth": 4, "learning_rate": 0.05, "min_child_weight": 5,
                "subsample": 0.9, "colsample_bytree": 0.8},
    "lightgbm": {"n_estimators": 300, "num_leaves": 31, "learning_rate": 0.08, "verbose": -1},
    "random_forest": {"n_estimators": 200, "min_samples_leaf": 5},
    "logistic_regression": {"C": 1.0, "max_iter": 1000},
}
EARLY_STOPPING_ROUNDS = 30


def build_preprocessor(cfg: RetrainingConfig, scale: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps: list[Any] = [SimpleImputer(strategy="median")]
    if scale:
        numeric_steps.append(StandardScaler())
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
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=5),
                ),
                list(cfg.columns.categorical),
            )
        )
    return ColumnTransformer(transformers, verbose_feature_names_out=False)


def build_estimator(cfg: RetrainingConfig, model_type: str, y_train: np.ndarray) -> Any:
    if model_type not in DEFAULT_HYPERPARAMETERS:
        raise ValueError(f"unknown model type {model_type!r}; valid: {sorted(DEFAULT_HYPERPARAMETERS)}")
    task = cfg.model.task
    seed = cfg.training.seed
    params = {**DEFAULT_HYPERPARAMETERS[model_type], **cfg.model.hyperparameters.get(model_type, {})}
    classifier = task != "regression"
    if model_type == "xgboost":
        import xgboost as xgb

        params.setdefault("early_stopping_rounds", EARLY_STOPPING_ROUNDS)
        if not classifier:
            return xgb.XGBRegressor(random_state=seed, n_jobs=2, **params)
        if task == "binary":
            pos = max(int((y_train == 1).sum()), 1)
            params.setdefault("scale_pos_weight", (len(y_train) - pos) / pos)
            params.setdefault("eval_metric", "auc")  # early stopping on ranking quality
        else:
            params.setdefault("eval_metric", "mlogloss")
        return xgb.XGBClassifier(random_state=seed, n_jobs=2, **params)
    if model_type == "lightgbm":
        import lightgbm as lgb

        if not classifier:
            return lgb.LGBMRegressor(random_state=seed, n_jobs=2, **params)
        return lgb.LGBMClassifier(random_state=seed, n_jobs=2, class_weight="balanced", **params)
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        if not classifier:
            return RandomForestRegressor(random_state=seed, n_jobs=2, **params)
        return RandomForestClassifier(random_state=seed, n_jobs=2, class_weight="balanced", **params)
    if model_type == "logistic_regression":
        from sklearn.linear_model import LogisticRegression, Ridge

        if not classifier:
            return Ridge(alpha=1.0 / params.get("C", 1.0), random_state=seed)
        return LogisticRegression(random_state=seed, class_weight="balanced", **params)
    raise ValueError(f"unknown model type {model_type!r}")


def targets(cfg: RetrainingConfig, frame: pd.DataFrame, classes: list[Any]) -> np.ndarray:
    labels = frame[cfg.columns.label]
    if cfg.model.task == "regression":
        return labels.to_numpy(dtype=float)
    return encode_labels(labels.tolist(), classes)


def fit(cfg: RetrainingConfig, model_type: str, train: pd.DataFrame, validation: pd.DataFrame, classes: list[Any]) -> Any:
    """Fit preprocessor and estimator (early stopping on ``validation`` where supported)."""
    from sklearn.pipeline import Pipeline

    features = cfg.columns.features
    y_train = targets(cfg, train, classes)
    y_val = targets(cfg, validation, classes)
    preprocessor = build_preprocessor(cfg, scale=model_type == "logistic_regression")
    x_train = preprocessor.fit_transform(train[features])
    x_val = preprocessor.transform(validation[features])
    estimator = build_estimator(cfg, model_type, y_train)
    if model_type == "xgboost":
        estimator.fit(x_train, y_train, eval_set=[(x_val, y_val)], verbose=False)
    elif model_type == "lightgbm":
        import lightgbm as lgb

        estimator.fit(
            x_train, y_train, eval_set=[(x_val, y_val)], callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
        )
    else:
        estimator.fit(x_train, y_train)
    return Pipeline([("preprocess", preprocessor), ("model", estimator)])


def train_candidate(
    cfg: RetrainingConfig,
    prepared: dict[str, Any],
    run_tags: dict[str, str],
    snapshot: dict[str, Any],
) -> dict[str, Any]:
    """Train, score on validation and test, and log everything to one MLflow run."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    setup(cfg)
    model_type = cfg.model.type
    splits = {name: storage.read_parquet(uri) for name, uri in prepared["splits"].items()}
    classes = prepared["classes"]
    features = cfg.columns.features
    started = time.monotonic()
    log.info("training %s on %d rows (%d features)", model_type, len(splits["train"]), len(features))
    model = fit(cfg, model_type, splits["train"], splits["validation"], classes)
    fit_seconds = time.monotonic() - started
    metrics = {
        name: clean(score(model, splits[name][features], targets(cfg, splits[name], classes), cfg.model.task))
        for name in ("validation", "test")
    }
    recent = splits["test"][splits["test"]["_recent"]] if "_recent" in splits["test"] else splits["test"].iloc[:0]
    if len(recent) >= cfg.gate.min_recent_rows:
        metrics["test_recent"] = clean(score(model, recent[features], targets(cfg, recent, classes), cfg.model.task))
    log.info("trained in %.1f s; test metrics %s", fit_seconds, metrics["test"])
    profile = storage.read_json(prepared["profile_uri"])
    meta = {
        "task": cfg.model.task,
        "model_type": model_type,
        "features": features,
        "numeric": cfg.columns.numeric,
        "categorical": cfg.columns.categorical,
        "label": cfg.columns.label,
        "classes": classes,
        # what drift checks compare the model's live performance with: its score on the
        # held-out rows of the window it was trained for (the whole test split if too few)
        "baseline_metrics": metrics.get("test_recent", metrics["test"]),
        "snapshot": snapshot,
        "package_version": __version__,
    }
    sample = splits["train"][features].head(50)
    example_output = model.predict(sample) if cfg.model.task == "regression" else model.predict_proba(sample)
    import sklearn

    with mlflow.start_run(run_name=f"{model_type}-{run_tags.get('airflow_run_id', 'manual')}") as run:
        mlflow.set_tags({**run_tags, "model_type": model_type, "task": cfg.model.task})
        params = {**DEFAULT_HYPERPARAMETERS[model_type], **cfg.model.hyperparameters.get(model_type, {})}
        mlflow.log_params({f"hp_{k}": v for k, v in params.items()})
        mlflow.log_params(
            {
                "model_type": model_type,
                "train_rows": len(splits["train"]),
                "validation_rows": len(splits["validation"]),
                "test_rows": len(splits["test"]),
                "snapshot_hash": snapshot["hash"],
                "snapshot_uri": snapshot["uri"],
                "seed": cfg.training.seed,
                "package_version": __version__,
                "python": platform.python_version(),
                "sklearn": sklearn.__version__,
            }
        )
        for split_name, values in metrics.items():
            mlflow.log_metrics({f"{split_name}_{k}": v for k, v in values.items() if v is not None})
        mlflow.log_metric("fit_seconds", fit_seconds)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            skops_trusted_types=trusted_types(model),
            signature=infer_signature(sample, example_output),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", *_family_requirement(model_type)],
        )
        mlflow.log_dict(profile, PROFILE_ARTIFACT)
        mlflow.log_dict(meta, META_ARTIFACT)
    return {
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "model_type": model_type,
        "metrics": metrics["test"],
        "validation_metrics": metrics["validation"],
        "fit_seconds": round(fit_seconds, 3),
    }


def trusted_types(model: Any) -> list[str]:
    """The types skops must trust to load this pipeline: exactly those it contains (we built it)."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def _family_requirement(model_type: str) -> list[str]:
    if model_type in ("xgboost", "lightgbm"):
        import importlib.metadata

        return [f"{model_type}=={importlib.metadata.version(model_type)}"]
    return []
