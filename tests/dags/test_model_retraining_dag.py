"""The dags folder imports cleanly and `model_retraining` has the shape the README describes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from include.retraining import runtime as rt

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["model_retraining"]


def test_dags_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    # one retraining and one rollback DAG per bundled model config: credit_risk (the default) and loan_loss
    assert sorted(dagbag.dag_ids) == ["model_retraining", "model_retraining__loan_loss", "model_rollback",
                                      "model_rollback__loan_loss"]


@pytest.mark.parametrize(("dag_id", "model"), [("model_retraining", "credit_risk"),
                                                ("model_retraining__loan_loss", "loan_loss")])
def test_every_model_gets_the_same_retraining_dag(dagbag, dag_id, model):
    """Generated from one factory: the same tasks, graph, schedule and form; the tags and docs name the model."""
    default, other = dagbag.dags["model_retraining"], dagbag.dags[dag_id]
    assert f"model:{model}" in other.tags and {"mlops", "retraining", "drift"} <= set(other.tags)
    assert f"Model `{model}`" in other.doc_md and f"{model}.yaml" in other.doc_md and f"### {dag_id}" in other.doc_md
    assert set(other.task_ids) == set(default.task_ids)
    assert {t.task_id: set(t.downstream_task_ids) for t in other.tasks} == {
        t.task_id: set(t.downstream_task_ids) for t in default.tasks}
    assert other.timetable.expression == default.timetable.expression and other.max_active_runs == default.max_active_runs
    assert set(other.params.keys()) == set(default.params.keys())
    rollback = dagbag.dags[dag_id.replace("model_retraining", "model_rollback")]
    assert f"model:{model}" in rollback.tags and rollback.task_ids == [rt.SWITCH]


def test_dag_files_have_no_heavy_imports_at_module_level():
    for file in DAGS.glob("*.py"):
        source = file.read_text()
        for heavy in ("pandas", "mlflow", "evidently", "sklearn", "xgboost", "lightgbm", "scipy", "optuna"):
            assert f"import {heavy}" not in source and f"from {heavy}" not in source, (file.name, heavy)


def test_schedule_is_every_six_hours_with_a_six_hour_interval(dag):
    from airflow.sdk import CronTriggerTimetable

    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.timetable.expression == "0 */6 * * *"
    assert dag.timetable.interval == timedelta(hours=6)
    assert str(dag.timetable.timezone) == "UTC"
    # a run at 12:00 UTC covers [06:00, 12:00): a real interval, not a zero-length one
    from airflow.serialization.encoders import coerce_to_core_timetable

    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(run_after=datetime(2026, 3, 8, 12, tzinfo=timezone.utc))
    assert interval.start == datetime(2026, 3, 8, 6, tzinfo=timezone.utc)
    assert interval.end == datetime(2026, 3, 8, 12, tzinfo=timezone.utc)


def test_dag_settings(dag):
    assert dag.catchup is False
    # runs may overlap: a scheduled run waiting for labels must not hold a person's run back for hours
    assert dag.max_active_runs > 1
    assert dag.task_dict[rt.TRAIN].max_active_tis_per_dag == 1 and dag.task_dict[rt.COLLECT].max_active_tis_per_dag == 1
    # no start date: no window is out of reach of a backfill (RETRAINING_START_DATE sets one)
    assert dag.start_date is None
    assert {"mlops", "retraining"} <= set(dag.tags)
    assert dag.doc_md and "model_retraining" in dag.doc_md
    assert dag.default_args["retry_delay"] == timedelta(minutes=5)
    assert dag.default_args["owner"] == "ml-platform"


def test_params_render_a_validated_form(dag):
    from airflow.sdk.exceptions import ParamValidationError

    params = dag.params
    assert set(params.keys()) >= {"model_type", "force_retrain", "check_only", "lookback_hours", "reason"}
    schema = params.get_param("model_type").schema
    assert set(schema["enum"]) == {None, "xgboost", "lightgbm", "random_forest", "logistic_regression"}
    assert params["model_type"] is None  # empty: the configured model type
    assert params["force_retrain"] is False and params["check_only"] is False
    lookback = params.get_param("lookback_hours")
    assert lookback.schema["minimum"] == 1
    with pytest.raises(ParamValidationError, match="minimum"):
        lookback.resolve(value=0)
    with pytest.raises(ParamValidationError):
        params.get_param("model_type").resolve(value="neural_net")
    assert params.get_param("model_type").resolve(value="lightgbm") == "lightgbm"


def test_task_ids_and_graph(dag):
    assert set(dag.task_ids) == set(rt.ALL_TASKS)
    down = {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}
    assert down[rt.CHECK] >= {rt.DECIDE}
    assert down[rt.DECIDE] == {rt.COLLECT, rt.SKIP, rt.ROLLBACK, rt.PROMOTE}
    assert rt.PREPARE in down[rt.COLLECT] and rt.TRAIN in down[rt.PREPARE]
    assert rt.GATE in down[rt.TRAIN]
    assert down[rt.GATE] == {rt.REGISTER, rt.SHADOW_REGISTER}
    assert rt.DEPLOY in down[rt.REGISTER]
    # a challenger in shadow is registered but never deployed; its promotion is a branch of decide of its own
    assert rt.DEPLOY not in down[rt.SHADOW_REGISTER] and down[rt.SHADOW_REGISTER] == {rt.FINALIZE}
    assert down[rt.PROMOTE] == {rt.FINALIZE}
    assert [o.name for o in dag.get_task(rt.PROMOTE).outlets] == [o.name for o in dag.get_task(rt.DEPLOY).outlets]
    assert down[rt.FINALIZE] == set()
    upstream_of_final = set(dag.get_task(rt.FINALIZE).upstream_task_ids)
    # every task but the branches (a branch skips its direct downstream tasks it does not follow)
    assert upstream_of_final == set(rt.ALL_TASKS) - {rt.DECIDE, rt.GATE, rt.FINALIZE}


def test_trigger_rules_and_task_settings(dag):
    from airflow.sdk import TriggerRule

    sensor = dag.get_task(rt.CHECK)
    assert sensor.mode == "reschedule"
    assert sensor.timeout == 6 * 3600
    assert dag.get_task(rt.FINALIZE).trigger_rule == TriggerRule.ALL_DONE
    for task_id in (rt.COLLECT, rt.PREPARE, rt.TRAIN, rt.REGISTER, rt.DEPLOY, rt.ROLLBACK, rt.SKIP,
                    rt.SHADOW_REGISTER, rt.PROMOTE):
        assert dag.get_task(task_id).trigger_rule == TriggerRule.ALL_SUCCESS
    assert dag.get_task(rt.TRAIN).execution_timeout == timedelta(hours=2)
    assert dag.get_task(rt.DECIDE).task_type.startswith("_Branch")
    assert dag.get_task(rt.GATE).task_type.startswith("_Branch")


def test_rollback_dag_is_manual_with_a_validated_form(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags["model_rollback"]
    assert dag.timetable.summary if hasattr(dag.timetable, "summary") else True
    assert dag.schedule is None or str(dag.timetable.__class__.__name__) == "NullTimetable"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.task_ids == [rt.SWITCH]
    assert dag.params["action"] == "rollback" and dag.params["target_version"] is None
    with pytest.raises(ParamValidationError):
        dag.params.get_param("action").resolve(value="delete")
    with pytest.raises(ParamValidationError):
        dag.params.get_param("target_version").resolve(value=0)


@pytest.mark.parametrize("dag_id", ["model_retraining", "model_rollback"])
def test_the_trigger_form_can_be_submitted_with_its_defaults(dag_id):
    """Airflow's form marks a plain string field with an empty default as required (the Trigger button stays
    disabled until it is filled): optional text fields must accept null and default to it."""
    from airflow.dag_processing.dagbag import DagBag

    params = DagBag(dag_folder=str(DAGS)).dags[dag_id].params  # fresh: other tests resolve values into them
    for name in params:
        param = params.get_param(name)
        param.resolve(value=param.value)  # every default passes its own schema
        types = param.schema.get("type")
        if types == "string":
            assert param.value not in ("", None), f"{dag_id}.{name}: a required text field"
        if isinstance(types, list) and "string" in types:
            assert "null" in types and param.value is None, f"{dag_id}.{name}"


def test_parsing_the_dags_folder_imports_nothing_heavy():
    """The DAG processor re-parses dags/ every ~30 s: pandas, SciPy, scikit-learn, MLflow and friends must only
    be imported inside tasks. Checked in a fresh interpreter, after Airflow itself (already loaded there)."""
    import json
    import subprocess
    import sys

    probe = (
        "import sys, json, logging; logging.disable(logging.CRITICAL)\n"
        "import airflow.sdk\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "before = set(sys.modules)\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "print(json.dumps({'errors': list(bag.import_errors), 'new': sorted(set(sys.modules) - before)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True,
                         cwd=DAGS.parent)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    heavy = ("pandas", "numpy", "scipy", "sklearn", "mlflow", "evidently", "xgboost", "lightgbm", "optuna",
             "matplotlib", "pyarrow", "psycopg2")
    loaded = sorted({m.split(".")[0] for m in result["new"]} & set(heavy))
    assert loaded == [], f"parsing dags/ imports {loaded}"
