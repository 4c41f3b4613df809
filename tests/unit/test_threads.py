"""The thread budget of a task: override, config, cores shared by the executor's concurrent tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from unit_helpers import build_config

from include.retraining import threads
from include.retraining.training.models import build_estimator


def reader(values: dict[tuple[str, str], str]):
    return lambda section, key: values.get((section, key))


@pytest.fixture(autouse=True)
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(threads.ENV_VAR, raising=False)


EIGHT = (8, "8 cores in the CPU affinity")


@pytest.mark.parametrize(
    ("conf", "expected", "why"),
    [
        ({("core", "executor"): "CeleryExecutor", ("celery", "worker_concurrency"): "4"}, 2, "worker_concurrency 4"),
        # parallelism below the worker's concurrency bounds the tasks on it
        ({("core", "executor"): "CeleryExecutor", ("celery", "worker_concurrency"): "16",
          ("core", "parallelism"): "2"}, 4, "parallelism 2"),
        ({("core", "executor"): "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
          ("celery", "worker_autoscale"): "3,1"}, 2, "worker_concurrency 3"),
        ({("core", "executor"): "CeleryExecutor"}, 1, "worker_concurrency 16"),  # Airflow's default, never < 1
        ({("core", "executor"): "LocalExecutor", ("core", "parallelism"): "32"}, 1, "parallelism 32"),
        ({("core", "executor"): "LocalExecutor", ("core", "parallelism"): "4"}, 2, "parallelism 4"),
        ({("core", "executor"): "KubernetesExecutor", ("core", "parallelism"): "32"}, 8, "one task per container"),
        ({}, 8, "unknown: all of them"),
        ({("core", "executor"): "LocalExecutor", ("core", "parallelism"): "0"}, 8, "unknown"),  # unreadable: cores
        ({("core", "executor"): "LocalExecutor", ("core", "parallelism"): "many"}, 8, "unknown"),
    ],
)
def test_cores_are_shared_by_the_tasks_that_may_run_at_once(conf, expected: int, why: str) -> None:
    got = threads.budget(read=reader(conf), cores=EIGHT)
    assert got.threads == expected
    assert why in got.reason and "8 cores" in got.reason


def test_the_environment_overrides_the_config_and_the_config_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = reader({("core", "executor"): "LocalExecutor", ("core", "parallelism"): "32"})
    assert threads.budget(3, read=busy, cores=EIGHT) == threads.ThreadBudget(3, "training.threads=3")
    monkeypatch.setenv(threads.ENV_VAR, "5")
    assert threads.budget(3, read=busy, cores=EIGHT) == threads.ThreadBudget(5, "$RETRAINING_THREADS=5")
    for bad in ("0", "two"):
        monkeypatch.setenv(threads.ENV_VAR, bad)
        with pytest.raises(ValueError, match="RETRAINING_THREADS must be"):
            threads.budget(read=busy, cores=EIGHT)
    monkeypatch.setenv(threads.ENV_VAR, " ")  # empty: as if unset
    assert threads.budget(read=busy, cores=EIGHT).threads == 1


def test_a_cgroup_quota_caps_the_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_cgroup_v2_dirs", lambda root: [root])
    assert threads.cgroup_cpu_limit(tmp_path) is None  # no file: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == pytest.approx(1.5)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.available_cores(tmp_path) == (1, "4 cores in the CPU affinity, cgroup CPU quota 1.5")
    (tmp_path / "cpu.max").write_text("800000 100000\n")  # a quota above the affinity changes nothing
    assert threads.available_cores(tmp_path) == (4, "4 cores in the CPU affinity")
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.available_cores(tmp_path) == (2, "4 cores in the CPU affinity, cgroup CPU quota 2")
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None


def test_airflow_settings_are_read_without_importing_airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "airflow.configuration", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    monkeypatch.delenv("AIRFLOW__CORE__EXECUTOR", raising=False)
    assert threads._airflow_conf("core", "parallelism") is None  # no airflow.cfg
    (tmp_path / "airflow.cfg").write_text("[core]\nexecutor = LocalExecutor\nparallelism = 4\n")
    assert threads.concurrent_tasks() == (4, "[core] parallelism 4")
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "2")  # the environment wins, as in Airflow
    assert threads.concurrent_tasks() == (2, "[core] parallelism 2")
    assert "airflow.configuration" not in sys.modules


def test_the_estimators_get_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = build_config(model={"task": "binary", "type": "xgboost"})
    y = np.array([0, 1] * 10)
    for family in ("xgboost", "lightgbm", "random_forest"):
        assert build_estimator(cfg, family, y, threads=3).get_params()["n_jobs"] == 3
    monkeypatch.setenv(threads.ENV_VAR, "1")
    assert build_estimator(cfg, "lightgbm", y).get_params()["n_jobs"] == 1
    configured = build_config(model={"task": "binary", "type": "xgboost"}, training={"threads": 2})
    monkeypatch.delenv(threads.ENV_VAR)
    assert threads.for_config(configured).threads == 2


def test_preprocessing_never_forks_worker_processes() -> None:
    """A ColumnTransformer's n_jobs means loky processes, which outlived the check and gate tasks (issue 19):
    the thread budget goes to the model only, and a stored model's parallel preprocessing is turned off."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    y = np.array([0, 1] * 20)
    model = Pipeline([("preprocess", ColumnTransformer([("num", StandardScaler(), ["a", "b"])], n_jobs=2)),
                      ("model", LogisticRegression(n_jobs=2))]).fit(frame, y)
    threads.set_model_threads(model, 3)
    assert model.named_steps["preprocess"].n_jobs is None
    assert model.named_steps["model"].n_jobs == 3
    assert model.predict_proba(frame).shape == (40, 2)


def test_a_loaded_model_and_the_thread_pools_are_limited() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_info

    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_jobs=2))
    assert threads.set_model_threads(model, 1) is model
    assert model.steps[-1][1].n_jobs == 1
    with threads.limited(1):
        pools = threadpool_info()
        assert pools and all(pool["num_threads"] == 1 for pool in pools)
