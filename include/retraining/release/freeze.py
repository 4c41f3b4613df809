"""Change freezes and prerequisites: when a model may not be retrained or promoted, and why.

A frozen model is still measured every window, and the run records ``decision = 'frozen'`` with the
reason and what it would have done; it never trains or deploys. A freeze comes from (see
``FreezeSection`` in :mod:`..config`): the config (``freeze.frozen``), an Airflow Variable for all models
(``retraining_freeze``) or one model (``retraining_freeze__<model>``), or a prerequisite check that says
no (an open incident, a release window...). The Variable is the switch an on-call person flips in the UI
(Admin > Variables): its value, if it is not just "true", is recorded as the reason.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any

from ..config import RetrainingConfig

log = logging.getLogger(__name__)

FALSE_VALUES = {"", "0", "false", "off", "no", "none", "null"}
INCIDENT_VARIABLE = "retraining_open_incident"


def variable(key: str) -> str | None:
    """An Airflow Variable's value (the task SDK in a task, else ``AIRFLOW_VAR_<KEY>``), or None if unset."""
    try:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
    except Exception:  # outside a task (scripts, unit tests): the environment form of the Variable
        value = os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
    return None if value is None else str(value)


def _set(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in FALSE_VALUES


def _why(value: str, where: str) -> str:
    text = value.strip()
    return where if text.lower() in ("1", "true", "on", "yes") else f"{where}: {text[:300]}"


def no_open_incident(cfg: RetrainingConfig) -> str | None:
    """A prerequisite: no incident open (the Variable ``retraining_open_incident`` unset or false)."""
    value = variable(INCIDENT_VARIABLE)
    return _why(value, f"an incident is open (Variable {INCIDENT_VARIABLE})") if _set(value) else None


def _load(name: str) -> Callable[[RetrainingConfig], str | None]:
    module, _, function = name.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise LookupError(f"freeze.prerequisites: cannot import {name!r} ({exc}); give 'module:function' of a "
                          "function importable on the workers") from exc


def freeze_reason(cfg: RetrainingConfig) -> str | None:
    """Why the model is frozen now, or None when retraining and promotion may go ahead.

    A prerequisite that raises counts as a freeze (its error is the reason): when in doubt, do not deploy."""
    if cfg.freeze.frozen:
        return f"frozen by the model configuration (freeze.frozen){': ' + cfg.freeze.reason if cfg.freeze.reason else ''}"
    for key in (cfg.freeze.variable, f"{cfg.freeze.variable}__{cfg.model.name}"):
        value = variable(key)
        if _set(value):
            return _why(value or "", f"frozen by the Airflow Variable {key}")
    for name in cfg.freeze.prerequisites:
        try:
            reason = _load(name)(cfg)
        except Exception as exc:
            reason = f"prerequisite {name} could not be checked ({type(exc).__name__}: {exc})"
        if reason:
            return f"prerequisite {name} not met: {reason}"
    return None


def check(cfg: RetrainingConfig) -> dict[str, Any]:
    """The freeze state as recorded with a decision: ``{"frozen": bool, "reason": str | None}``."""
    reason = freeze_reason(cfg)
    if reason:
        log.warning("%s is frozen: %s", cfg.model.name, reason)
    return {"frozen": bool(reason), "reason": reason}
