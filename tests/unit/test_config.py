"""The model configuration: validation messages name the field, ${ENV:-default} expansion, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from unit_helpers import build_config, raw_config

from include.retraining.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    RetrainingConfig,
    _expand_env,
    _validate,
    config_path,
    load_config,
)


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


# --- the bundled configuration -------------------------------------------------------------


def test_bundled_config_loads_with_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RETRAINING_SOURCE_CONN_ID", "RETRAINING_SOURCE_TABLE", "MLFLOW_TRACKING_URI", "RETRAINING_STORAGE_URI"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_config(DEFAULT_CONFIG_PATH)
    assert cfg.model.name == "credit_risk"
    assert cfg.source.kind == "sql"
    assert cfg.source.conn_id == "retraining_db"
    assert cfg.source.table == "credit_applications"
    assert cfg.mlflow.tracking_uri == ""
    assert cfg.storage.uri == ".local/storage"
    assert cfg.columns.features == [
        "age", "annual_income", "loan_amount", "credit_score", "debt_to_income",
        "employment_years", "open_accounts", "late_payments_12m", "home_ownership", "loan_purpose", "region",
    ]
    assert cfg.primary_metric == "roc_auc"
    assert cfg.performance_metric == "roc_auc"  # performance.metric unset: falls back to the primary metric
    assert cfg.gate.min_absolute == {"roc_auc": 0.70, "recall": 0.50}
    assert cfg.training.history_days == 14
    assert cfg.experiment_name == "model_retraining/credit_risk"


def test_bundled_config_takes_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINING_SOURCE_TABLE", "analytics.loans")
    monkeypatch.setenv("RETRAINING_STORAGE_URI", "s3://bucket/retraining")
    cfg = load_config(DEFAULT_CONFIG_PATH)
    assert cfg.source.table == "analytics.loans"
    assert cfg.storage.uri == "s3://bucket/retraining"


def test_config_path_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RETRAINING_CONFIG", raising=False)
    assert config_path() == DEFAULT_CONFIG_PATH
    monkeypatch.setenv("RETRAINING_CONFIG", str(tmp_path / "env.yaml"))
    assert config_path() == tmp_path / "env.yaml"
    assert config_path(tmp_path / "arg.yaml") == tmp_path / "arg.yaml"


# --- defaults and derived values --------------------------------------------------------------


def test_defaults_of_a_minimal_config() -> None:
    cfg = build_config()
    assert cfg.window.lookback_hours == 6
    assert cfg.drift.bins == 10 and cfg.drift.fine_bins == 100 and cfg.drift.drifted_share == 0.25
    assert (cfg.drift.numeric_method, cfg.drift.categorical_method, cfg.drift.fdr_q) == ("auto", "auto", 0.05)
    assert cfg.drift.importance_weighted is True and cfg.drift.thresholds == {} and cfg.drift.columns == {}
    assert (cfg.training.train_fraction, cfg.training.validation_fraction, cfg.training.test_fraction) == (0.7, 0.15, 0.15)
    assert cfg.gate.min_improvement == 0.01
    assert cfg.events.conn_id == "retraining_db"
    assert cfg.primary_metric == "roc_auc"  # threshold-free by default for classifiers (issue 18)
    assert cfg.experiment_name == "model_retraining/unit_model"
    assert cfg.model.registry_name == "unit_model"


def test_regression_defaults_to_r2_and_registered_name_wins() -> None:
    cfg = build_config(model={"task": "regression", "registered_name": "prod.model"})
    assert cfg.primary_metric == "r2"
    assert cfg.model.registry_name == "prod.model"
    cfg = build_config(performance={"metric": "mae"}, gate={"primary_metric": "accuracy"})
    assert cfg.performance_metric == "mae"
    assert cfg.primary_metric == "accuracy"


def test_config_is_frozen() -> None:
    cfg = build_config()
    with pytest.raises(Exception, match="frozen"):
        cfg.model.name = "other"  # type: ignore[misc]


# --- validation errors name the field ---------------------------------------------------------


def load_raw(tmp_path: Path, data: object) -> RetrainingConfig:
    return load_config(write_yaml(tmp_path / "model.yaml", data))


@pytest.mark.parametrize(
    ("sections", "field", "message"),
    [
        ({"gate": {"min_improvement": -0.1}}, "gate.min_improvement", "greater than or equal to 0"),
        ({"drift": {"bins": 1}}, "drift.bins", "greater than or equal to 2"),
        ({"drift": {"drifted_share": 1.5}}, "drift.drifted_share", "less than or equal to 1"),
        ({"window": {"lookback_hours": 0}}, "window.lookback_hours", "greater than or equal to 1"),
        ({"model": {"type": "catboost"}}, "model.type", "xgboost"),
        ({"model": {"task": "ranking"}}, "model.task", "binary"),
        ({"model": {"name": "has space"}}, "model.name", "not a usable model name"),
        ({"training": {"min_rows": 5}}, "training.min_rows", "greater than or equal to 10"),
        ({"source": {"kind": "sql", "path": None, "conn_id": "db", "table": "x; drop table y"}}, "source.table", "pattern"),
    ],
)
def test_invalid_value_names_the_field(tmp_path: Path, sections: dict, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_raw(tmp_path, raw_config(**sections))
    text = str(info.value)
    assert f"{field}: " in text
    assert message in text
    assert str(tmp_path / "model.yaml") in text  # and the file


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gate\.min_improvment: Extra inputs are not permitted"):
        load_raw(tmp_path, raw_config(gate={"min_improvment": 0.02}))
    with pytest.raises(ConfigError, match=r"(^|\W)colour: Extra inputs are not permitted"):
        load_raw(tmp_path, raw_config(colour="blue"))


def test_missing_required_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"storage: Field required"):
        load_raw(tmp_path, raw_config(storage=None))


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_raw(tmp_path, raw_config(gate={"min_improvement": -1}, drift={"bins": 0}))
    assert "gate.min_improvement" in str(info.value)
    assert "drift.bins" in str(info.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"kind": "sql", "path": None, "table": "t"}, "conn_id is required when kind is 'sql'"),
        ({"kind": "sql", "path": None, "conn_id": "db"}, "give exactly one of table or query"),
        ({"kind": "sql", "path": None, "conn_id": "db", "table": "t", "query": "select 1"}, "give exactly one of table or query"),
        ({"kind": "csv", "path": None}, "path is required when kind is 'csv'"),
    ],
)
def test_source_rules(source: dict, message: str) -> None:
    data = raw_config()
    data["source"] = {k: v for k, v in source.items() if v is not None}
    with pytest.raises(ConfigError, match=r"source: .*" + message):
        _validate(data, source="test")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"numeric": [], "categorical": []}, "at least one numeric or categorical feature"),
        ({"numeric": ["x1", "x1"]}, "columns listed twice: ['x1']"),
        ({"numeric": ["x1", "c"], "categorical": ["c"]}, "columns listed twice: ['c']"),
        ({"numeric": ["x1", "y"]}, "'y' cannot be both a feature and the timestamp/label"),
        ({"categorical": ["ts"]}, "'ts' cannot be both a feature and the timestamp/label"),
    ],
)
def test_column_rules(tmp_path: Path, columns: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_raw(tmp_path, raw_config(columns=columns))
    assert "columns: " in str(info.value)
    assert message in str(info.value)


def test_split_fractions_must_add_up_to_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training: .*must add up to 1, got 1\.050"):
        load_raw(tmp_path, raw_config(training={"train_fraction": 0.75}))
    cfg = load_raw(tmp_path, raw_config(training={"train_fraction": 0.8, "validation_fraction": 0.1, "test_fraction": 0.1}))
    assert cfg.training.train_fraction == 0.8


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model configuration file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write_yaml(tmp_path / "bad.yaml", "model: [unclosed\n"))
    with pytest.raises(ConfigError, match="must be a mapping at the top level"):
        load_config(write_yaml(tmp_path / "list.yaml", "- a\n- b\n"))


# --- ${NAME:-default} expansion ---------------------------------------------------------------


def test_env_expansion_uses_the_variable_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RT_UNIT_A", "from-env")
    monkeypatch.delenv("RT_UNIT_B", raising=False)
    assert _expand_env("${RT_UNIT_A}") == "from-env"
    assert _expand_env("${RT_UNIT_A:-ignored}") == "from-env"
    assert _expand_env("${RT_UNIT_B:-fallback}") == "fallback"
    assert _expand_env("${RT_UNIT_B:-}") == ""
    assert _expand_env("pre-${RT_UNIT_A}-${RT_UNIT_B:-x}-post") == "pre-from-env-x-post"
    # nested containers are walked, other scalars are left alone
    assert _expand_env({"a": ["${RT_UNIT_A}", 3, None], "b": {"c": "${RT_UNIT_B:-d}"}, "n": 1.5}) == {
        "a": ["from-env", 3, None], "b": {"c": "d"}, "n": 1.5,
    }


def test_missing_variable_without_default_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RT_UNIT_MISSING", raising=False)
    with pytest.raises(ConfigError, match="environment variable RT_UNIT_MISSING is not set and has no default"):
        load_raw(tmp_path, raw_config(storage={"uri": "${RT_UNIT_MISSING}"}))


def test_expanded_values_are_validated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RT_UNIT_BINS", "12")
    cfg = load_raw(tmp_path, raw_config(drift={"bins": "${RT_UNIT_BINS:-10}"}))
    assert cfg.drift.bins == 12  # a string from the environment becomes the field's type
    monkeypatch.setenv("RT_UNIT_BINS", "many")
    with pytest.raises(ConfigError, match=r"drift\.bins: "):
        load_raw(tmp_path, raw_config(drift={"bins": "${RT_UNIT_BINS:-10}"}))


def test_env_default_applies_when_the_variable_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RT_UNIT_EMPTY", "")
    assert _expand_env("${RT_UNIT_EMPTY:-fallback}") == "fallback"


# --- with_overrides ---------------------------------------------------------------------------


def test_with_overrides_applies_dotted_paths_and_keeps_the_original() -> None:
    cfg = build_config()
    new = cfg.with_overrides({"model.type": "lightgbm", "window.lookback_hours": 12, "gate.min_improvement": None})
    assert new.model.type == "lightgbm"
    assert new.window.lookback_hours == 12
    assert new.gate.min_improvement == cfg.gate.min_improvement  # None keeps the configured value
    assert cfg.model.type == "logistic_regression"  # the original is unchanged
    assert cfg.with_overrides({}) == cfg


def test_with_overrides_validates_again() -> None:
    cfg = build_config()
    with pytest.raises(ConfigError, match=r"invalid model configuration in overrides: model\.type: "):
        cfg.with_overrides({"model.type": "catboost"})
    with pytest.raises(ConfigError, match=r"window\.lookback_hours: "):
        cfg.with_overrides({"window.lookback_hours": 0})


def test_with_overrides_rejects_an_unknown_leaf() -> None:
    with pytest.raises(ConfigError, match=r"model\.kind: unknown configuration field"):
        build_config().with_overrides({"model.kind": "x"})


def test_with_overrides_rejects_an_unknown_section() -> None:
    with pytest.raises(ConfigError, match=r"modle\.type"):
        build_config().with_overrides({"modle.type": "lightgbm"})


def test_a_regression_model_gets_regression_gate_criteria_by_default() -> None:
    from unit_helpers import build_config

    cfg = build_config(model={"task": "regression"})
    assert cfg.gate.max_regression == {"r2": 0.01} and cfg.gate.min_absolute == {"r2": 0.0}
    assert cfg.primary_metric == "r2"
    explicit = build_config(model={"task": "regression"}, gate={"max_regression": {"rmse": 5.0}})
    assert explicit.gate.max_regression == {"rmse": 5.0}
    assert build_config().gate.min_absolute == {"precision": 0.85, "recall": 0.80}  # classifiers: the runbooks'


# --- names used as paths and registry names; MLflow credentials ------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "...", ".hidden", "-rf", "a/b", "a\\b", "x" * 65, "", "name\x00"])
def test_model_names_that_could_leave_the_storage_location_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"model\.name: ") as info:
        _validate(raw_config(model={"name": name}), source="test")
    assert "letter or digit" in str(info.value) or "at most 64" in str(info.value)


@pytest.mark.parametrize("name", ["credit_risk", "Credit-Risk.v2", "m1", "9lives", "x" * 64])
def test_plain_model_names_pass(name: str) -> None:
    assert _validate(raw_config(model={"name": name}), source="test").model.name == name


@pytest.mark.parametrize(
    ("registered", "problem"),
    [
        ("team/credit", "contains one of"),
        ("prod:credit", "contains one of"),
        ("credit%2Frisk", "contains one of"),
        ("credit\nrisk", "control character"),
        ("credit\x00", "control character"),
        ("..", "only dots"),
        ("   ", "empty"),
        (" credit", "space"),
        ("c" * 129, "at most 128"),
    ],
)
def test_registered_names_mlflow_cannot_hold_are_refused(registered: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"model\.registered_name: ") as info:
        _validate(raw_config(model={"registered_name": registered}), source="test")
    assert problem in str(info.value)


def test_a_registered_name_with_spaces_and_dots_passes() -> None:
    cfg = _validate(raw_config(model={"registered_name": "Credit risk v2.1"}), source="test")
    assert cfg.model.registry_name == "Credit risk v2.1"


def test_mlflow_takes_a_uri_or_a_connection_not_both() -> None:
    assert _validate(raw_config(mlflow={"conn_id": "mlflow_http", "tracking_uri": ""}), source="t").mlflow.conn_id
    with pytest.raises(ConfigError, match=r"mlflow: .*either tracking_uri or conn_id"):
        _validate(raw_config(mlflow={"conn_id": "mlflow_http", "tracking_uri": "http://h:5000"}), source="t")


def test_a_refused_value_does_not_echo_a_secret() -> None:
    with pytest.raises(ConfigError) as info:
        _validate(raw_config(mlflow={"conn_id": "c", "tracking_uri": "http://u:hunter2secret@h"}), source="t")
    assert "hunter2secret" not in str(info.value)
