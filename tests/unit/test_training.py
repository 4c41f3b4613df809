"""Training pipelines on small data: every model family fits and gives sensible outputs (no MLflow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining.config import MODEL_TYPES
from include.retraining.errors import DataValidationError
from include.retraining.metrics import score
from include.retraining.training.models import (
    DEFAULT_HYPERPARAMETERS,
    build_estimator,
    build_preprocessor,
    fit,
    targets,
)

SMALL = {
    "xgboost": {"n_estimators": 30, "max_depth": 3},
    "lightgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5, "learning_rate": 0.2},
    "random_forest": {"n_estimators": 20},
}


def small_config(task: str = "binary", model_type: str = "logistic_regression"):
    return build_config(model={"task": task, "type": model_type, "hyperparameters": SMALL})


def frame(n: int, seed: int, task: str = "binary") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    c = rng.choice(["a", "b", "c"], n)
    signal = 2.0 * x1 - 1.0 * x2 + 1.5 * (c == "a")
    if task == "binary":
        y = (signal + rng.normal(scale=0.5, size=n) > 0.5).astype(int)
    elif task == "multiclass":
        y = np.digitize(signal, [-0.5, 1.0])  # 0, 1, 2
    else:
        y = signal + rng.normal(scale=0.1, size=n)
    out = pd.DataFrame({"x1": x1, "x2": x2, "c": c, "y": y})
    out.loc[out.index % 17 == 0, "x2"] = np.nan  # missing values go through the imputers
    out.loc[out.index % 23 == 0, "c"] = None
    return out


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_fit_binary_gives_probabilities(model_type: str) -> None:
    cfg = small_config("binary", model_type)
    train, validation, test = frame(300, 1), frame(80, 2), frame(100, 3)
    model = fit(cfg, model_type, train, validation, classes=[0, 1])
    proba = model.predict_proba(test[cfg.columns.features])
    assert proba.shape == (100, 2)
    assert np.all(proba >= 0) and np.all(proba <= 1)
    assert np.allclose(proba.sum(axis=1), 1.0)
    # a learnable signal: clearly better than chance on unseen rows
    metrics = score(model, test[cfg.columns.features], targets(cfg, test, [0, 1]), "binary")
    assert metrics["roc_auc"] > 0.85, metrics


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_fit_regression(model_type: str) -> None:
    cfg = small_config("regression", model_type)
    train, validation, test = frame(300, 1, "regression"), frame(80, 2, "regression"), frame(100, 3, "regression")
    model = fit(cfg, model_type, train, validation, classes=[])
    pred = model.predict(test[cfg.columns.features])
    assert pred.shape == (100,) and np.all(np.isfinite(pred))
    assert score(model, test[cfg.columns.features], test["y"].to_numpy(), "regression")["r2"] > 0.5


def test_fit_multiclass_with_string_labels() -> None:
    cfg = small_config("multiclass", "random_forest")
    names = np.array(["low", "mid", "high"])
    train, validation, test = (f.assign(y=names[f["y"]]) for f in (frame(300, 1, "multiclass"),
                                                                     frame(80, 2, "multiclass"),
                                                                     frame(100, 3, "multiclass")))
    classes = ["high", "low", "mid"]
    model = fit(cfg, "random_forest", train, validation, classes)
    proba = model.predict_proba(test[cfg.columns.features])
    assert proba.shape == (100, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert score(model, test[cfg.columns.features], targets(cfg, test, classes), "multiclass")["accuracy"] > 0.6


def test_unseen_category_at_prediction_time_is_ignored() -> None:
    cfg = small_config()
    model = fit(cfg, "logistic_regression", frame(200, 1), frame(50, 2), [0, 1])
    new = pd.DataFrame({"x1": [0.3, 0.3], "x2": [0.1, 0.1], "c": ["never_seen", None]})
    proba = model.predict_proba(new)
    assert np.all((proba >= 0) & (proba <= 1))
    pre = model.named_steps["preprocess"]
    names = list(pre.get_feature_names_out())
    assert names == ["x1", "x2", "c___missing__", "c_a", "c_b", "c_c"]
    encoded = pre.transform(new)
    assert encoded[0, 2:].tolist() == [0.0, 0.0, 0.0, 0.0]  # unseen: no category column set
    assert encoded[1, 2:].tolist() == [1.0, 0.0, 0.0, 0.0]  # missing: the '__missing__' column


def test_missing_categories_are_imputed_with_the_constant() -> None:
    cfg = small_config()
    train = pd.DataFrame({"x1": [1.0] * 12, "x2": [1.0] * 12, "c": ["a"] * 6 + [None] * 6})
    pre = build_preprocessor(cfg, "random_forest").fit(train)
    assert list(pre.get_feature_names_out()) == ["x1", "x2", "c___missing__", "c_a"]
    both = pd.DataFrame({"x1": [1.0, 1.0], "x2": [1.0, 1.0], "c": pd.Series([None, np.nan], dtype=object)})
    encoded = pre.transform(both)
    assert encoded[0].tolist() == encoded[1].tolist()


def test_preprocessor_imputes_and_encodes() -> None:
    cfg = small_config()
    train = pd.DataFrame({"x1": [1.0, 2.0, 3.0, np.nan, 10.0] * 2, "x2": [0.0] * 10,
                          "c": ["a"] * 5 + ["b"] * 4 + [None]})
    pre = build_preprocessor(cfg, "random_forest")
    out = pre.fit_transform(train)
    assert out[3, 0] == pytest.approx(2.5)  # the median of 1, 2, 3, 10 (each twice)
    names = list(pre.get_feature_names_out())
    assert names[:2] == ["x1", "x2"]
    assert "c_a" in names
    # categories seen fewer than 5 times go into one infrequent column
    assert "c_b" not in names and "c_infrequent_sklearn" in names
    scaled = build_preprocessor(cfg, "logistic_regression").fit_transform(train)
    assert scaled[:, 0].mean() == pytest.approx(0.0, abs=1e-12)


def test_build_estimator_settings() -> None:
    y = np.array([0] * 75 + [1] * 25)
    xgb = build_estimator(small_config(model_type="xgboost"), "xgboost", y)
    assert xgb.get_params()["scale_pos_weight"] == pytest.approx(75 / 25)
    assert xgb.get_params()["n_estimators"] == 30  # configured hyperparameters override the defaults
    assert xgb.get_params()["learning_rate"] == DEFAULT_HYPERPARAMETERS["xgboost"]["learning_rate"]
    assert build_estimator(small_config(), "lightgbm", y).get_params()["class_weight"] == "balanced"
    assert build_estimator(small_config(), "random_forest", y).get_params()["class_weight"] == "balanced"
    ridge = build_estimator(small_config("regression"), "logistic_regression", y)
    assert type(ridge).__name__ == "Ridge" and ridge.alpha == pytest.approx(1.0)


def test_build_estimator_rejects_an_unknown_type_by_name() -> None:
    with pytest.raises(ValueError, match="unknown model type 'catboost'"):
        build_estimator(small_config(), "catboost", np.array([0, 1]))


def test_targets() -> None:
    cfg = small_config()
    data = pd.DataFrame({"y": [1, 0, 1]})
    assert targets(cfg, data, [0, 1]).tolist() == [1, 0, 1]
    assert targets(small_config("regression"), pd.DataFrame({"y": [1, 2.5]}), []).tolist() == [1.0, 2.5]
    with pytest.raises(DataValidationError, match="label value 2"):
        targets(cfg, pd.DataFrame({"y": [2]}), [0, 1])


def test_a_binary_model_stores_its_own_operating_threshold_chosen_on_validation_rows() -> None:
    from include.retraining.metrics import classification_metrics
    from include.retraining.training.models import choose_threshold

    cfg = small_config("binary")
    train, validation = frame(400, 1), frame(300, 2)
    model = fit(cfg, "logistic_regression", train, validation, classes=[0, 1])
    t = choose_threshold(cfg, model, validation, [0, 1])
    assert t is not None and 0 < t < 1
    proba = model.predict_proba(validation[cfg.columns.features])
    y = targets(cfg, validation, [0, 1])
    best = classification_metrics(y, proba, t)["f1"]
    # no other cut gives a higher F1 on those rows
    assert all(classification_metrics(y, proba, c)["f1"] <= best + 1e-12 for c in np.linspace(0.01, 0.99, 99))
    fixed = build_config(model={"task": "binary", "type": "logistic_regression"}, gate={"operating_point": "fixed"})
    assert choose_threshold(fixed, model, validation, [0, 1]) == 0.5
    multi = small_config("multiclass")
    assert choose_threshold(multi, model, validation, [0, 1, 2]) is None  # multiclass keeps the argmax
