"""Running ``model_retraining`` in-process, with the scheduler's conventions (demo, tests, benchmarks).

``dag.test(logical_date=X)`` treats ``X`` as a manual run's date, i.e. the *end* of its data interval,
while the scheduler (and ``airflow backfill create``) gives a run of the interval ``[start, end)`` the
logical date ``start``. Driving the DAG with window ends as logical dates therefore creates runs that a
later backfill of the same days mistakes for other windows (and skips as "already run").
:func:`run_window` runs the window ``[start, end)`` exactly as the scheduler would date it: logical
date ``start``, data interval ``[start, end)``, run after ``end``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any


@contextmanager
def scheduler_dated_intervals(interval: timedelta) -> Iterator[None]:
    """While active, ``dag.test(logical_date=start)`` gets the interval ``[start, start + interval)``."""
    import airflow.serialization.encoders as encoders
    from airflow.timetables.base import DataInterval

    original = encoders.coerce_to_core_timetable

    class _StartDated:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def infer_manual_data_interval(self, *, run_after: Any) -> Any:
            return DataInterval(run_after, run_after + interval)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    encoders.coerce_to_core_timetable = lambda timetable: _StartDated(original(timetable))  # type: ignore[assignment]
    try:
        yield
    finally:
        encoders.coerce_to_core_timetable = original  # type: ignore[assignment]


def run_window(dag: Any, start: datetime, end: datetime, conf: Mapping[str, Any] | None = None) -> Any:
    """One in-process run of ``dag`` for the window ``[start, end)``, dated as the scheduler dates it."""
    with scheduler_dated_intervals(end - start):
        return dag.test(logical_date=start, run_after=end, run_conf=dict(conf or {}))


def run_manual(dag: Any, run_after: datetime, conf: Mapping[str, Any] | None = None) -> Any:
    """A manual run without a logical date, as from the trigger form with the date left empty.

    ``dag.test(logical_date=None)`` would first clear the task instances of *every* run of the DAG (its
    clear step takes no date as no bound); that step is skipped here, as the scheduler would never do it.
    """
    from unittest.mock import patch

    from airflow.serialization.definitions.dag import SerializedDAG

    with patch.object(SerializedDAG, "clear_dags", lambda *args, **kwargs: 0):
        return dag.test(logical_date=None, run_after=run_after, run_conf=dict(conf or {}))
