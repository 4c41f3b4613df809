"""The thin layer between Airflow tasks and :mod:`include.retraining.pipeline`.

It reads the task's context into a :class:`~include.retraining.pipeline.RunInfo`,
pulls upstream results from XCom, pushes decisions explicitly (a branch's return value
is not stored as an XCom in Airflow 3), and turns errors that retrying cannot fix (bad
configuration, bad data) into ``AirflowFailException`` so they fail at once instead of
being retried. Imports are lazy: the DAG file imports this module at parse time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

# Task ids, used by the DAG, the branches and the final task. One place, no repeated strings.
CHECK = "check_drift_and_performance"
DECIDE = "decide"
SKIP = "skip_retraining"
COLLECT = "collect"
PREPARE = "prepare"
TRAIN = "train"
GATE = "evaluate_gate"
REGISTER = "register"
DEPLOY = "deploy"
ROLLBACK = "rollback_champion"  # the post-deploy watch's rollback
SHADOW_REGISTER = "register_for_shadow"  # an inconclusive gate: registered as challenger, in shadow evaluation
PROMOTE = "promote_challenger"  # the shadow evaluation's promotion
FINALIZE = "record_outcome"
ALL_TASKS = (CHECK, DECIDE, SKIP, COLLECT, PREPARE, TRAIN, GATE, REGISTER, DEPLOY, ROLLBACK, SHADOW_REGISTER, PROMOTE,
             FINALIZE)
SWITCH = "switch_champion"  # the only task of model_rollback

DECISION_KEY = "decision"
GATE_KEY = "gate"

T = TypeVar("T")


def _context() -> Mapping[str, Any]:
    from airflow.sdk import get_current_context

    from .redaction import install

    install()  # every task starts here: its log records are redacted from now on (idempotent)
    return get_current_context()


SCHEDULE_HOURS = 6  # the DAG runs every six hours; manual runs without a date align their window to this grid


def run_info(context: Mapping[str, Any], assessment: Mapping[str, Any] | None = None) -> Any:
    """A :class:`RunInfo` from an Airflow task context (manual runs may have no logical date).

    ``assessment`` (the first task's result) carries the attempt and the window it fixed, which every
    later task of the run uses as they are."""
    from datetime import timedelta

    from .pipeline import RunInfo

    dag_run = context["dag_run"]
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    run_after = getattr(dag_run, "run_after", None) or datetime.now(timezone.utc)
    ti = context.get("ti")
    bounds = None
    if assessment and assessment.get("window_start") and assessment.get("window_end"):
        bounds = (datetime.fromisoformat(assessment["window_start"]), datetime.fromisoformat(assessment["window_end"]))
    return RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        run_type=str(run_type),
        logical_date=context.get("logical_date"),
        data_interval_start=context.get("data_interval_start"),
        data_interval_end=context.get("data_interval_end"),
        run_after=run_after,
        params=dict(context.get("params") or {}),
        clear_number=int(getattr(dag_run, "clear_number", 0) or 0),
        ti_id=str(getattr(ti, "id", "") or "") or None,
        requested_by=getattr(dag_run, "triggering_user_name", None),
        attempt=(assessment or {}).get("attempt"),
        bounds=bounds,
        grid=timedelta(hours=SCHEDULE_HOURS),
    )


def _info(context: Mapping[str, Any]) -> Any:
    """The RunInfo of a task after the first: with the attempt and window the first task fixed."""
    # the decision carries the attempt and window too, and is far smaller than the assessment
    return run_info(context, _pull(context, DECIDE, DECISION_KEY) or _pull(context, CHECK))


def _fail_fast(fn: Callable[[], T]) -> T:
    """Run ``fn``; configuration and data errors become ``AirflowFailException`` (no retry)."""
    from airflow.sdk.exceptions import AirflowFailException

    from .config import ConfigError
    from .errors import RetrainingError

    try:
        return fn()
    except (ConfigError, RetrainingError) as exc:
        raise AirflowFailException(str(exc)) from exc


def _pull(context: Mapping[str, Any], task_id: str, key: str = "return_value") -> Any:
    return context["ti"].xcom_pull(task_ids=task_id, key=key)


def check() -> Any:
    """The sensor's poke: returns a ``PokeReturnValue`` carrying the assessment when done."""
    from airflow.sdk import PokeReturnValue

    from . import pipeline

    context = _context()
    result = _fail_fast(lambda: pipeline.check(run_info(context), CHECK))
    return PokeReturnValue(is_done=result is not None, xcom_value=result)


def decide(assessment: dict[str, Any]) -> str:
    """The branch: the decision goes to XCom explicitly, the next task id is returned."""
    from . import pipeline

    context = _context()
    decision = _fail_fast(lambda: pipeline.decide(run_info(context, assessment), DECIDE, assessment))
    context["ti"].xcom_push(key=DECISION_KEY, value=decision)
    if decision.get("rollback"):
        return ROLLBACK
    if decision.get("promote_challenger"):
        return PROMOTE
    return COLLECT if decision["retrain"] else SKIP


def skip() -> dict[str, Any]:
    context = _context()
    decision = _pull(context, DECIDE, DECISION_KEY) or {}
    return {"decision": decision.get("decision"), "reason": decision.get("reason")}


def collect() -> dict[str, Any]:
    from . import pipeline

    return _fail_fast(lambda: pipeline.collect(_info(_context()), COLLECT))


def prepare(snapshot: dict[str, Any]) -> dict[str, Any]:
    from . import pipeline

    return _fail_fast(lambda: pipeline.prepare(_info(_context()), PREPARE, snapshot))


def train(snapshot: dict[str, Any], prepared: dict[str, Any]) -> dict[str, Any]:
    from . import pipeline

    return _fail_fast(lambda: pipeline.train(_info(_context()), TRAIN, snapshot, prepared))


def evaluate_gate(prepared: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    """The gate is a branch too: register (then deploy) a candidate that passed; register one the gate could not
    judge (``inconclusive``) for shadow evaluation, never deployed; nothing for a rejected one."""
    from . import pipeline

    context = _context()
    judged = (_pull(context, DECIDE, DECISION_KEY) or {}).get("champion_version")
    verdict = _fail_fast(lambda: pipeline.evaluate_gate(_info(context), GATE, prepared, trained, judged))
    context["ti"].xcom_push(key=GATE_KEY, value=verdict)
    outcome = pipeline.gate_outcome(verdict)
    if outcome == "inconclusive" and _info(context).run_type != "backfill":
        return [SHADOW_REGISTER]
    return [REGISTER] if outcome == "promote" else []


def register(trained: dict[str, Any]) -> dict[str, Any]:
    from . import pipeline

    context = _context()
    verdict = _pull(context, GATE, GATE_KEY) or {}
    return _fail_fast(lambda: pipeline.register(_info(context), REGISTER, trained, verdict))


def register_for_shadow(trained: dict[str, Any]) -> dict[str, Any]:
    """Register an inconclusive candidate as challenger and start its shadow evaluation (never deployed)."""
    from . import pipeline

    context = _context()
    verdict = _pull(context, GATE, GATE_KEY) or {}
    return _fail_fast(lambda: pipeline.register_for_shadow(_info(context), SHADOW_REGISTER, trained, verdict))


def promote() -> dict[str, Any]:
    """The shadow evaluation found the challenger significantly better: promote it (an event of the champion asset)."""
    from . import pipeline

    context = _context()
    decision = _pull(context, DECIDE, DECISION_KEY) or {}
    moved = _fail_fast(lambda: pipeline.promote_challenger(_info(context), PROMOTE, decision))
    _announce(context, moved, "shadow_promote")
    return moved


def deploy(registered: dict[str, Any]) -> dict[str, Any]:
    """Promote; with automatic promotion off the task is skipped and the row says it awaits approval."""
    from airflow.sdk.exceptions import AirflowSkipException

    from . import pipeline

    context = _context()
    judged = (_pull(context, GATE, GATE_KEY) or {}).get("champion_version")
    try:
        moved = _fail_fast(lambda: pipeline.deploy(_info(context), DEPLOY, registered, judged))
    except pipeline.AwaitingApproval as exc:
        raise AirflowSkipException(str(exc)) from exc  # a skipped task emits no asset event
    _announce(context, moved, "deploy")
    return moved


def rollback() -> dict[str, Any]:
    """The post-deploy watch found the new champion worse: restore the one it replaced."""
    from . import pipeline

    context = _context()
    decision = _pull(context, DECIDE, DECISION_KEY) or {}
    moved = _fail_fast(lambda: pipeline.rollback_champion(_info(context), ROLLBACK, decision))
    _announce(context, moved, "rollback")
    return moved


def _announce(context: Mapping[str, Any], moved: Mapping[str, Any], action: str) -> None:
    """The champion asset's event extra: which version serves now (see :mod:`.release.assets`)."""
    from .release.assets import announce

    info = _info(context) if action != "switch" else run_info(context)
    try:
        cfg = info.config()
        names = {"model": cfg.model.name, "registered_name": cfg.model.registry_name}
    except Exception:  # the config was read by the task already; never fail a done promotion over the extra
        names = {}
    announce(context, {**names, "version": moved.get("champion_after"), "previous_version": moved.get("champion_before"),
                       "action": moved.get("action") or action, "promotion_id": moved.get("promotion_id"),
                       "dag_id": info.dag_id, "run_id": info.run_id})


def finalize() -> dict[str, Any]:
    """Complete the run's row; fail the run when any task failed, so no failure is silent."""
    from airflow.sdk.exceptions import AirflowFailException

    from . import pipeline

    context = _context()
    ti = context["ti"]
    info = _info(context)
    states = ti.get_task_states(dag_id=info.dag_id, run_ids=[info.run_id]).get(info.run_id, {})
    states = {k: v for k, v in states.items() if k != FINALIZE}
    result = pipeline.finalize(
        info,
        decision=_pull(context, DECIDE, DECISION_KEY),
        verdict=_pull(context, GATE, GATE_KEY),
        deployed=_pull(context, DEPLOY),
        states=states,
        check_task_id=CHECK,
        deploy_task_id=DEPLOY,
        rolled_back=_pull(context, ROLLBACK),
        shadowed=_pull(context, SHADOW_REGISTER),
        promoted=_pull(context, PROMOTE),
    )
    if result["failed"]:
        raise AirflowFailException(
            f"task(s) {result['failed']} failed; the outcome is recorded in model_retraining_events"
        )
    return {"status": result["fields"].get("status")}


def switch() -> dict[str, Any]:
    """``model_rollback``: move the champion alias back (or promote a waiting challenger)."""
    from . import pipeline

    context = _context()
    moved = _fail_fast(lambda: pipeline.switch(run_info(context), SWITCH))
    _announce(context, moved, "switch")
    return moved
