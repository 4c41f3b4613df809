"""Two models side by side: a classifier (``model_retraining``) and a regressor (``model_retraining__<name>``,
generated from a second YAML file in $RETRAINING_CONFIG_DIR), sharing one events database and one MLflow store.

Each keeps its own rows, champion, champion history and storm history, even for runs of the same window
(the same run id in two DAGs)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from include.retraining import demo_data

from .conftest import TEST_STREAM, Harness, at, write_table

pytestmark = pytest.mark.integration
SMALL = {"xgboost": {"n_estimators": 150, "max_depth": 4, "learning_rate": 0.1}}  # separation is the point, not skill


@pytest.fixture
def fleet(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream) -> dict[str, Any]:
    """The classifier is the default model (the harness's config in $RETRAINING_CONFIG); the regressor's file is
    the only one in $RETRAINING_CONFIG_DIR. Both use the harness's events schema and MLflow store."""
    folder = tmp_path / "models"
    folder.mkdir()
    regressor = Harness(dag=None, dsn=harness.dsn, folder=harness.folder, model_name=f"loan_loss_{uuid.uuid4().hex[:6]}")
    regressor.configure(**{
        "model.task": "regression",
        "model.hyperparameters": SMALL,
        "training.search.trials": 0,
        "source.table": "losses",
        "columns.label": demo_data.LOSS_LABEL,
        "window.min_labelled_rows": 300,
        "performance.metric": "r2",
        "gate.primary_metric": "r2",
        "gate.min_absolute": {"r2": 0.5},
        "gate.max_regression": {"r2": 0.01, "rmse": 25.0},
    }).rename(folder / "loan_loss.yaml")
    # the classifier: written after, keeps model.yaml
    monkeypatch.setenv("RETRAINING_CONFIG", str(harness.configure(**{"model.hyperparameters": SMALL,
                                                                      "training.search.trials": 0})))
    monkeypatch.setenv("RETRAINING_CONFIG_DIR", str(folder))
    harness.load(stream)
    write_table(harness.dsn, "losses", demo_data.generate_losses(TEST_STREAM))

    from airflow.dag_processing.dagbag import DagBag

    from tests.support import REPO

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    regressor.dag = bag.dags[f"model_retraining__{regressor.model_name}"]
    assert f"model:{regressor.model_name}" in regressor.dag.tags
    return {"classifier": harness, "regressor": regressor, "bag": bag}


def run(h: Harness, dag: Any, end: Any, **params: Any) -> tuple[Any, dict[str, Any]]:
    """One scheduled-style run of ``dag``; its row, found by model and DAG (both DAGs share the run id)."""
    from include.retraining.local_runs import run_window

    dagrun = run_window(dag, end - timedelta(hours=6), end, conf=Harness.conf(**params))
    rows = h.query("SELECT * FROM model_retraining_events WHERE model_name = %s AND dag_id = %s AND run_id = %s",
                   (h.model_name, dag.dag_id, dagrun.run_id))
    assert len(rows) == 1
    return dagrun, rows[0]


def test_a_classifier_and_a_regressor_keep_their_own_rows_champions_and_storm_history(fleet: dict[str, Any]) -> None:
    from include.retraining.record import champion_history, events

    cls, reg = fleet["classifier"], fleet["regressor"]
    cls_dag = fleet["bag"].dags["model_retraining"]

    # the same window for both: the same run id in two DAGs, two rows
    cls_run, cls_row = run(cls, cls_dag, at(8, 0))
    assert cls_run.state == "success", cls_row["error"]
    reg_run, reg_row = run(reg, reg.dag, at(8, 0))
    assert reg_run.state == "success", reg_row["error"]
    assert cls_run.run_id == reg_run.run_id
    assert (cls_row["status"], reg_row["status"]) == ("deployed", "deployed")
    assert cls_row["retraining_auc"] > 0.7 and cls_row["retraining_r2"] is None
    assert reg_row["retraining_r2"] > 0.5 and reg_row["retraining_rmse"] > 0 and reg_row["retraining_auc"] is None
    assert (cls_row["dag_id"], reg_row["dag_id"]) == ("model_retraining", reg.dag.dag_id)
    assert {r["model_name"] for r in cls.query("SELECT model_name FROM model_retraining_events")} == {
        cls.model_name, reg.model_name}

    # the regressor again, six hours later, forced: judged against its own champion (v1), not the classifier's
    forced, reg_row2 = run(reg, reg.dag, at(8, 6), force_retrain=True)
    assert forced.state == "success", reg_row2["error"]
    assert reg_row2["champion_version_before"] == 1 and reg_row2["comparison_previous_r2"] is not None
    assert reg_row2["improvement_r2_percent"] is not None and reg_row2["improvement_rmse_percent"] is not None

    # one MLflow store, two registered models, each with its own champion
    assert cls.alias_version("champion") == 1
    assert reg.alias_version("champion") in (1, 2)
    assert reg.alias_version("champion") == (reg_row2["champion_version_after"] or 1)
    assert {m.name for m in cls.mlflow().search_registered_models()} == {cls.model_name, reg.model_name}
    changes = cls.query("SELECT model_name, version FROM model_champion_history ORDER BY id")
    assert [c for c in changes if c["model_name"] == cls.model_name] == [{"model_name": cls.model_name, "version": 1}]
    assert champion_history.in_service(cls.dsn, cls.model_name, at(8, 12)).version == 1

    # storm control counts each model's own retrainings only: at 03-08 12:00 the classifier last retrained
    # 12 hours before (one retraining this week), the regressor 6 hours before (two)
    cls_storm = events.storm_history(cls.dsn, events.RunKey(cls.model_name, "model_retraining", "next"), at(8, 12), 2)
    reg_storm = events.storm_history(reg.dsn, events.RunKey(reg.model_name, reg.dag.dag_id, "next"), at(8, 12), 2)
    assert (cls_storm["hours_since_last_retrain"], cls_storm["retrains_last_week"]) == (12, 1)
    assert (reg_storm["hours_since_last_retrain"], reg_storm["retrains_last_week"]) == (6, 2)
