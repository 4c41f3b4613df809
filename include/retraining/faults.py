"""Named fault points: where the fault tests kill a task process or hold it while a service dies.

Crash safety is only believable if the crash is real and lands exactly between two steps, so the
promotion path and the long stages call :func:`point` at the places that matter (e.g.
``deploy.after_aliases``, ``deploy.before_reload``, ``register.after_create``, ``train.fit``). In
production it is a dictionary lookup that does nothing. With ``RETRAINING_FAULTS`` set (only the
fault tests set it) a point can:

- ``kill``: ``SIGKILL`` the current process (no ``finally``, no ``atexit``: what an OOM killer or a
  lost node does);
- ``wait:<file>``: create ``<file>.reached``, then block until ``<file>`` exists (up to 10 minutes), so
  a test can stop a database or a server at that very moment and let the task continue after;
- ``raise``: raise :class:`InjectedFault` (a crash that Python still sees);
- ``kill-once:<file>``: ``kill`` unless ``<file>`` exists, creating it first: the first process that
  reaches the point dies, its retry (a new process) goes through.

``RETRAINING_FAULTS="deploy.before_reload=kill,train.fit=wait:/tmp/go"``; a point fires once per
process unless its action ends with ``!always``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

ENV_VAR = "RETRAINING_FAULTS"
_fired: set[str] = set()


class InjectedFault(RuntimeError):
    """Raised at a fault point configured with ``raise`` (tests only)."""


def _plan() -> dict[str, str]:
    spec = os.environ.get(ENV_VAR, "")
    plan: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = item.partition("=")
        plan[name.strip()] = action.strip() or "kill"
    return plan


def point(name: str) -> None:
    """A named place in the code where a test may inject a fault (a no-op unless ``RETRAINING_FAULTS`` names it)."""
    if ENV_VAR not in os.environ:
        return
    action = _plan().get(name)
    if action is None:
        return
    always = action.endswith("!always")
    action = action.removesuffix("!always")
    if name in _fired and not always:
        return
    _fired.add(name)
    log.warning("fault point %s: %s", name, action)
    if action.startswith("kill-once:"):
        marker = Path(action.removeprefix("kill-once:"))
        if marker.exists():
            return
        marker.write_text(str(os.getpid()))
        action = "kill"
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise InjectedFault(f"fault injected at {name}")
    elif action.startswith("wait:"):
        gate = Path(action.removeprefix("wait:"))
        Path(f"{gate}.reached").write_text(str(os.getpid()))
        deadline = time.monotonic() + 600
        while not gate.exists():
            if time.monotonic() > deadline:
                raise InjectedFault(f"fault point {name}: {gate} did not appear within 10 minutes")
            time.sleep(0.05)
    else:
        raise ValueError(f"{ENV_VAR}: unknown action {action!r} for {name} (kill, raise, wait:<file>)")
