"""The fleet: which model configurations become DAGs, under which ids, and which file a run reads."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from include.retraining import fleet
from include.retraining.config import ConfigError
from include.retraining.pipeline import RunInfo

REPO = Path(__file__).resolve().parents[2]
BUNDLED = yaml.safe_load((REPO / "include" / "config" / "credit_risk.yaml").read_text())


def model_file(path: Path, name: str, task: str = "binary", type_: str = "xgboost") -> Path:
    """A complete model configuration (the bundled one, renamed), so that it also loads through config.py."""
    data = {**BUNDLED, "model": {**BUNDLED["model"], "name": name, "task": task, "type": type_}}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config folder as $RETRAINING_CONFIG_DIR, and a default model file outside it."""
    configs = tmp_path / "configs"
    configs.mkdir()
    monkeypatch.setenv(fleet.CONFIG_DIR_ENV_VAR, str(configs))
    monkeypatch.setenv(fleet.CONFIG_ENV_VAR, str(model_file(tmp_path / "default.yaml", "credit_risk")))
    return configs


def test_the_bundled_folder_holds_the_classifier_and_the_regressor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fleet.CONFIG_ENV_VAR, raising=False)
    monkeypatch.delenv(fleet.CONFIG_DIR_ENV_VAR, raising=False)
    models = fleet.discover()
    assert [(m.name, m.task, m.is_default) for m in models] == [("credit_risk", "binary", True),
                                                                 ("loan_loss", "regression", False)]
    assert [m.retraining_dag_id for m in models] == ["model_retraining", "model_retraining__loan_loss"]
    assert [m.rollback_dag_id for m in models] == ["model_rollback", "model_rollback__loan_loss"]
    assert models[1].tag == "model:loan_loss" and "loan_loss.yaml" in models[1].describe()


def test_every_yaml_file_is_a_model_the_default_first_then_by_name(folder: Path) -> None:
    model_file(folder / "b.yml", "zebra", task="regression", type_="lightgbm")
    model_file(folder / "a.yaml", "churn", task="multiclass")
    (folder / "notes.txt").write_text("model: {name: not_yaml_suffix}\n")
    (folder / ".hidden.yaml").write_text("model: {name: hidden}\n")
    (folder / "sub").mkdir()
    model_file(folder / "sub" / "nested.yaml", "nested")
    models = fleet.discover()
    assert [m.name for m in models] == ["credit_risk", "churn", "zebra"]
    assert models[0].is_default and models[0].retraining_dag_id == "model_retraining"
    assert models[2] == fleet.ModelEntry("zebra", "regression", "lightgbm", folder / "b.yml")
    assert models[2].retraining_dag_id == "model_retraining__zebra"


def test_a_yaml_file_that_is_no_model_config_is_skipped_with_a_warning(folder: Path, caplog) -> None:
    (folder / "airflow_settings.yaml").write_text("airflow:\n  connections: []\n")
    (folder / "empty.yaml").write_text("")
    (folder / "list.yaml").write_text("- model\n")
    (folder / "model_is_text.yaml").write_text("model: credit_risk\n")
    with caplog.at_level(logging.WARNING, logger=fleet.__name__):
        assert [m.name for m in fleet.discover()] == ["credit_risk"]
    warned = caplog.text
    for name in ("airflow_settings.yaml", "empty.yaml", "list.yaml", "model_is_text.yaml"):
        assert name in warned


def test_two_files_with_one_model_name_are_an_error_naming_both(folder: Path) -> None:
    model_file(folder / "first.yaml", "fraud")
    model_file(folder / "second.yaml", "fraud")
    with pytest.raises(fleet.FleetError, match="configured twice") as err:
        fleet.discover()
    assert str(folder / "first.yaml") in str(err.value) and str(folder / "second.yaml") in str(err.value)


def test_the_default_file_replaces_a_folder_file_of_the_same_model(folder: Path, tmp_path: Path) -> None:
    """A deployment (or a test) pointing $RETRAINING_CONFIG at its own copy of a bundled model overrides it."""
    model_file(folder / "credit_risk.yaml", "credit_risk")
    models = fleet.discover()
    assert [(m.name, m.path) for m in models] == [("credit_risk", tmp_path / "default.yaml")]


def test_the_default_file_inside_the_folder_is_listed_once(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fleet.CONFIG_ENV_VAR, str(model_file(folder / "main.yaml", "main")))
    model_file(folder / "other.yaml", "other")
    assert [(m.name, m.is_default) for m in fleet.discover()] == [("main", True), ("other", False)]


@pytest.mark.parametrize(("content", "problem"), [
    ("model: [unclosed\n", "not valid YAML"),
    ("model: {task: binary}\n", "model.name must be"),
    ("model: {name: 'a/b'}\n", "model.name must be"),
    ("model: {name: '..'}\n", "model.name must be"),
    ("model: {name: '${FLEET_TEST_UNSET}'}\n", "FLEET_TEST_UNSET"),
])
def test_a_broken_model_file_is_an_error_naming_it(folder: Path, content: str, problem: str) -> None:
    (folder / "broken.yaml").write_text(content)
    with pytest.raises(fleet.FleetError, match=problem) as err:
        fleet.discover()
    assert "broken.yaml" in str(err.value)


def test_a_missing_or_unusable_default_file_or_folder_is_an_error(folder: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fleet.CONFIG_ENV_VAR, str(tmp_path / "gone.yaml"))
    with pytest.raises(fleet.FleetError, match="gone.yaml.*does not exist"):
        fleet.discover()
    (tmp_path / "settings.yaml").write_text("airflow: {}\n")
    monkeypatch.setenv(fleet.CONFIG_ENV_VAR, str(tmp_path / "settings.yaml"))
    with pytest.raises(fleet.FleetError, match="no 'model:' section"):
        fleet.discover()
    monkeypatch.setenv(fleet.CONFIG_ENV_VAR, str(tmp_path / "default.yaml"))
    monkeypatch.setenv(fleet.CONFIG_DIR_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(fleet.FleetError, match="nowhere.*RETRAINING_CONFIG_DIR"):
        fleet.discover()


def test_a_model_name_may_come_from_the_environment(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "env.yaml").write_text("model: {name: '${FLEET_TEST_NAME:-fallback}'}\n")
    assert fleet.discover()[1].name == "fallback"
    monkeypatch.setenv("FLEET_TEST_NAME", "from_env")
    assert fleet.discover()[1].retraining_dag_id == "model_retraining__from_env"


def test_config_path_for_each_dag_id(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    regressor = model_file(folder / "loss.yaml", "loss", task="regression")
    assert fleet.config_path_for("model_retraining") == tmp_path / "default.yaml"
    assert fleet.config_path_for("model_rollback") == tmp_path / "default.yaml"
    assert fleet.config_path_for("model_retraining__loss") == regressor
    assert fleet.config_path_for("model_rollback__loss") == regressor
    assert fleet.config_path_for("some_test_dag") == tmp_path / "default.yaml"  # not the fleet's: the default
    with pytest.raises(fleet.FleetError, match="model_retraining__gone.*known: model_retraining, model_retraining__loss"):
        fleet.config_path_for("model_retraining__gone")
    # the default model's file is read from the environment when the task runs, as before the fleet
    monkeypatch.setenv(fleet.CONFIG_ENV_VAR, str(regressor))
    assert fleet.config_path_for("model_retraining") == regressor


def test_a_run_reads_the_config_of_its_dags_model(folder: Path) -> None:
    model_file(folder / "loss.yaml", "loss", task="regression")
    run = "manual__2026-03-08T12:00:00+00:00"
    assert RunInfo(dag_id="model_retraining", run_id=run).config().model.name == "credit_risk"
    cfg = RunInfo(dag_id="model_retraining__loss", run_id=run, params={"model_type": "lightgbm"}).config()
    assert (cfg.model.name, cfg.model.task, cfg.model.type) == ("loss", "regression", "lightgbm")
    assert RunInfo(dag_id="model_rollback__loss", run_id=run).key(cfg).model_name == "loss"
    explicit = RunInfo(dag_id="model_retraining__loss", run_id=run, config_path=str(folder / "loss.yaml"))
    assert explicit.config().model.name == "loss"
    # a run whose model file was removed since the DAG was parsed fails as a configuration error (no retries)
    with pytest.raises(ConfigError, match="model_retraining__gone"):
        RunInfo(dag_id="model_retraining__gone", run_id=run).config()


def _new_modules(code: str) -> dict:
    probe = (
        "import sys, json, logging; logging.disable(logging.CRITICAL)\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True,
                         cwd=REPO)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_discovery_is_cheap_at_parse_time() -> None:
    """The DAG processor runs discovery for both DAG files every ~30 s: PyYAML only, no validation (pydantic),
    no pandas, no MLflow, not even Airflow. (Parsing the DAG files themselves is checked in tests/dags/: there
    pydantic is already loaded by Airflow's SDK, so only the heavy libraries are checked.)"""
    loaded = _new_modules("from include.retraining import fleet\nfleet.discover()")
    heavy = {"pydantic", "pandas", "numpy", "mlflow", "airflow", "sklearn", "scipy", "psycopg2"}
    assert loaded & heavy == set(), f"fleet discovery imports {sorted(loaded & heavy)}"
    assert "yaml" in loaded


def test_the_c_loader_is_used_when_available() -> None:
    assert fleet._Loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
