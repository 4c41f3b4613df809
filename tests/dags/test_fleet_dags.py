"""One DAG pair per model configuration: adding a YAML file to $RETRAINING_CONFIG_DIR adds a model's DAGs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.retraining import runtime as rt

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
BUNDLED = yaml.safe_load((REPO / "include" / "config" / "credit_risk.yaml").read_text())


def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def write_model(path: Path, name: str, task: str = "binary") -> Path:
    path.write_text(yaml.safe_dump({**BUNDLED, "model": {**BUNDLED["model"], "name": name, "task": task}}))
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RETRAINING_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("RETRAINING_CONFIG", raising=False)  # the default model: the bundled credit_risk.yaml
    return tmp_path


def test_adding_a_yaml_file_adds_a_model_with_its_own_dags(folder: Path) -> None:
    assert sorted(bag().dag_ids) == ["model_retraining", "model_rollback"]  # the default model alone
    write_model(folder / "fraud.yaml", "fraud")
    write_model(folder / "demand.yml", "demand", task="regression")
    dags = bag()
    assert dags.import_errors == {}
    assert sorted(dags.dag_ids) == ["model_retraining", "model_retraining__demand", "model_retraining__fraud",
                                    "model_rollback", "model_rollback__demand", "model_rollback__fraud"]
    fraud = dags.dags["model_retraining__fraud"]
    assert "model:fraud" in fraud.tags and "model:credit_risk" in dags.dags["model_retraining"].tags
    assert str(folder / "fraud.yaml") in fraud.doc_md
    assert set(fraud.task_ids) == set(rt.ALL_TASKS)
    assert "model:demand" in dags.dags["model_rollback__demand"].tags
    # the form says which family "as configured" means, and what the linear family is for a regressor
    display = dags.dags["model_retraining__demand"].params.get_param("model_type").schema["values_display"]
    assert display["logistic_regression"] == "Ridge regression"
    # removing the file removes the model's DAGs
    (folder / "fraud.yaml").unlink()
    assert "model_retraining__fraud" not in bag().dag_ids


def test_a_duplicated_model_name_is_an_import_error_naming_both_files(folder: Path) -> None:
    write_model(folder / "one.yaml", "twin")
    write_model(folder / "two.yaml", "twin")
    errors = bag().import_errors
    assert {Path(f).name for f in errors} == {"model_retraining.py", "model_rollback.py"}
    for message in errors.values():
        assert "configured twice" in message and str(folder / "one.yaml") in message and str(folder / "two.yaml") in message


def test_a_file_that_is_no_model_config_adds_no_dag(folder: Path) -> None:
    (folder / "settings.yaml").write_text("airflow:\n  variables: []\n")
    dags = bag()
    assert dags.import_errors == {} and sorted(dags.dag_ids) == ["model_retraining", "model_rollback"]


def test_each_model_has_a_champion_asset_and_may_be_scheduled_on_new_labels(folder: Path) -> None:
    from airflow.sdk import AssetOrTimeSchedule

    labelled = {**BUNDLED, "model": {**BUNDLED["model"], "name": "fraud"},
                "window": {**(BUNDLED.get("window") or {}), "labels_asset": True}}
    (folder / "fraud.yaml").write_text(yaml.safe_dump(labelled))
    dags = bag()
    assert dags.import_errors == {}
    fraud, default = dags.dags["model_retraining__fraud"], dags.dags["model_retraining"]
    outlets = {t.task_id: [o.name for o in t.outlets] for t in fraud.tasks if t.outlets}
    assert outlets == {t: ["retraining_champion__fraud"] for t in (rt.DEPLOY, rt.ROLLBACK, rt.PROMOTE)}
    assert [o.uri for o in dags.dags["model_rollback__fraud"].get_task(rt.SWITCH).outlets] == [
        "x-retraining://fraud/champion"]
    assert isinstance(fraud.timetable, AssetOrTimeSchedule)  # every six hours and when new labels arrive
    assert "retraining_labelled_data__fraud" in repr(fraud.timetable.asset_condition)
    assert not isinstance(default.timetable, AssetOrTimeSchedule)  # opt-in (window.labels_asset)
