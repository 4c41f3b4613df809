"""How many threads a training or scoring task may use: the cores it may run on, shared with the tasks beside it.

A task that starts more compute threads than it has cores does not finish sooner: its threads
(and those of the tasks beside it on the same worker) take turns, and OpenMP threads waiting for
their turn spin, burning CPU time no task gets anything for. The budget, in order:

1. ``$RETRAINING_THREADS`` (an operator's override for this machine);
2. ``training.threads`` in the model's config;
3. the cores this process may use (its CPU affinity, capped by a cgroup CPU quota: a container's
   ``--cpus``, a Kubernetes CPU limit) divided by how many tasks may run at once on this worker:
   a Celery worker's ``[celery] worker_concurrency`` (at most ``[core] parallelism``), the
   ``LocalExecutor``'s ``[core] parallelism``, one for the executors that give each task a
   container of its own (Kubernetes, ECS, Batch, Edge); when it cannot be read (outside
   Airflow), the cores.

Never fewer than 1. :func:`limited` applies the budget to the libraries' thread pools
(OpenMP, BLAS) in this process for a block, through ``threadpoolctl``.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import RetrainingConfig

log = logging.getLogger(__name__)

ENV_VAR = "RETRAINING_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# executors that run each task in a container (or on a machine) of its own: one task per cgroup
ONE_TASK_EXECUTORS = ("kubernetes", "ecs", "batch", "lambda", "edge", "sequential", "debug")

ConfigReader = Callable[[str, str], "str | None"]


@dataclass(frozen=True)
class ThreadBudget:
    """The threads a task may use and why (one line for the log)."""

    threads: int
    reason: str


def _cgroup_v2_dirs(root: Path) -> list[Path]:
    """This process's cgroup v2 directory and its ancestors up to the root (each may hold a cpu.max)."""
    dirs = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                relative = line[3:].strip().lstrip("/")
                here = root / relative if relative else root
                while True:
                    dirs.append(here)
                    if here == root or root not in here.parents:
                        break
                    here = here.parent
    except OSError:
        pass
    return dirs or [root]


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in cores (``quota / period``; the smallest along the
    hierarchy), or None when there is none (``max``) or it cannot be read. cgroup v2 ``cpu.max``,
    else cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``."""
    limits: list[float] = []
    for directory in _cgroup_v2_dirs(root):
        try:
            quota, period = (directory / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and float(period) > 0:
            limits.append(float(quota) / float(period))
    if not limits:
        try:
            quota_us = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
            period_us = float((root / "cpu" / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            quota_us = period_us = -1.0
        if quota_us > 0 and period_us > 0:
            limits.append(quota_us / period_us)
    return min(limits) if limits else None


def available_cores(root: Path = CGROUP_ROOT) -> tuple[int, str]:
    """The cores this process may use: its CPU affinity, capped by a cgroup quota (rounded down, at least 1)."""
    try:
        affinity = len(os.sched_getaffinity(0))
        how = f"{affinity} cores in the CPU affinity"
    except (AttributeError, OSError):  # not Linux
        affinity = os.cpu_count() or 1
        how = f"{affinity} cores"
    quota = cgroup_cpu_limit(root)
    if quota is not None and quota < affinity:
        cores = max(1, math.floor(quota))
        return cores, f"{how}, cgroup CPU quota {quota:g}"
    return max(1, affinity), how


def _airflow_conf(section: str, key: str) -> str | None:
    """A value of Airflow's configuration, read cheaply: its environment variable, else Airflow's parsed
    config if this process has loaded it (a task process has), else ``$AIRFLOW_HOME/airflow.cfg``, else None.
    Never imports Airflow (that would write a default airflow.cfg outside a deployment)."""
    env = os.environ.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
    if env is not None:
        return env
    loaded = sys.modules.get("airflow.configuration")
    if loaded is not None:
        try:
            value = loaded.conf.get(section, key, fallback=None)
        except Exception:  # noqa: BLE001 (a broken config: fall back to the file)
            value = None
        if value is not None:
            return str(value)
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(home / "airflow.cfg")
        return parser.get(section, key, fallback=None)
    except (OSError, configparser.Error):
        return None


def _positive_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(str(text).split(",")[0].strip())  # worker_autoscale is "max,min"
    except ValueError:
        return None
    return value if value > 0 else None


def concurrent_tasks(read: ConfigReader = _airflow_conf) -> tuple[int | None, str]:
    """How many tasks may run at once on this worker, from the executor's settings (None: unknown)."""
    executor = (read("core", "executor") or "").lower()
    parallelism = _positive_int(read("core", "parallelism"))
    if "celery" in executor:
        concurrency = _positive_int(read("celery", "worker_autoscale")) or _positive_int(
            read("celery", "worker_concurrency"))
        concurrency = concurrency or 16  # Airflow's default worker_concurrency
        if parallelism is not None and parallelism < concurrency:
            return parallelism, f"[core] parallelism {parallelism} (below the Celery worker's {concurrency})"
        return concurrency, f"Celery worker_concurrency {concurrency}"
    if executor and any(name in executor for name in ONE_TASK_EXECUTORS):
        return 1, f"one task per container ({executor.rsplit('.', 1)[-1]})"
    if parallelism is not None and (not executor or "local" in executor):
        return parallelism, f"[core] parallelism {parallelism}"
    return None, "executor parallelism unknown"


def _override(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"${ENV_VAR} must be a whole number of threads (>= 1), not {value!r}: set it to e.g. 2, "
                         "or unset it to derive the threads from the cores") from None
    if threads < 1:
        raise ValueError(f"${ENV_VAR} must be at least 1, not {threads}: unset it to derive the threads from "
                         "the cores")
    return threads


def budget(configured: int | None = None, *, read: ConfigReader = _airflow_conf,
           cores: tuple[int, str] | None = None) -> ThreadBudget:
    """The threads one task may use: ``$RETRAINING_THREADS``, else ``configured`` (``training.threads``),
    else the available cores divided by the tasks that may run beside it (at least 1)."""
    env = _override(os.environ.get(ENV_VAR))
    if env is not None:
        return ThreadBudget(env, f"${ENV_VAR}={env}")
    if configured is not None:
        return ThreadBudget(max(1, int(configured)), f"training.threads={configured}")
    n_cores, cores_how = cores or available_cores()
    tasks, tasks_how = concurrent_tasks(read)
    if tasks is None:
        return ThreadBudget(n_cores, f"{cores_how}; {tasks_how}: all of them")
    threads = max(1, n_cores // tasks)
    return ThreadBudget(threads, f"{cores_how} shared by up to {tasks} concurrent tasks ({tasks_how})")


def for_config(cfg: RetrainingConfig) -> ThreadBudget:
    """The budget of a task of this model (``training.threads``, the environment, the machine)."""
    return budget(cfg.training.threads)


def quiet_waiting() -> None:
    """OpenMP threads that sleep while they wait for work instead of spinning (``OMP_WAIT_POLICY=PASSIVE``,
    unless set): on a busy machine spinning threads burn the CPU time the other tasks need. Takes effect
    for the OpenMP runtimes loaded after it (call before importing XGBoost, LightGBM, scikit-learn)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def limited(threads: int) -> Iterator[None]:
    """Limit the OpenMP and BLAS thread pools of the libraries loaded in this process to ``threads``
    during the block (nothing when ``threadpoolctl`` is not installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=threads):
        yield


# Steps whose ``n_jobs`` means joblib *processes* (loky workers that outlive the task by minutes and a SIGKILLed
# task for good): never given the thread budget, and set back to one process when a stored model carries more.
PROCESS_PARALLEL_STEPS = ("ColumnTransformer", "FeatureUnion")


def set_model_threads(model: Any, threads: int) -> Any:
    """Set ``n_jobs`` of the estimators of a fitted scikit-learn pipeline (or an estimator) that use threads, for
    scoring a model trained with another budget (a champion loaded from MLflow). Preprocessing steps that would
    fork processes (``ColumnTransformer``, ``FeatureUnion``) run in the task's own process. Returns the model."""
    steps = getattr(model, "steps", None)
    estimators = [step for _, step in steps] if steps else [model]
    for estimator in estimators:
        get_params = getattr(estimator, "get_params", None)
        if get_params is None or "n_jobs" not in get_params(deep=False):
            continue
        process_parallel = type(estimator).__name__ in PROCESS_PARALLEL_STEPS
        with contextlib.suppress(Exception):  # a library that refuses: scoring still works
            estimator.set_params(n_jobs=None if process_parallel else threads)
    return model
