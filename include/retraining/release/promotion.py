"""Promotion and rollback: moving the ``champion`` alias safely, serialised, reversibly, and crash-safe.

One function serves the ``deploy`` task, the rollback and the manual approval of a waiting
challenger: :func:`switch_champion`. Under a PostgreSQL advisory lock per model (so two promotions,
from any DAG, never interleave) it

0. finishes any promotion of the model that an earlier process began and never finished (see
   :func:`recover`): a retry of the same task completes its own; another run completes one whose
   aliases had moved and reverts one that had not;
1. records the *intent* in ``model_promotions`` (:mod:`..record.promotions`): target version, the
   champion and ``previous_champion`` before it, the run and attempt, the time it serves from;
2. moves ``champion`` to the target version and keeps the former champion under ``previous_champion``;
3. if ``deploy.serving_dir`` is set, exports the exact registered artifact there by atomic rename and
   repoints ``current``; if ``deploy.reload_conn_id`` is set, calls the serving app's reload endpoint;
4. completes the promotion and appends it to ``model_champion_history`` in one transaction.

Every step is idempotent, so finishing a promotion from its intent is always safe. If step 2 or 3
fails, the aliases and the ``current`` link are put back as they were, the promotion is marked
``reverted`` and :class:`PromotionError` says why: a model that the serving app did not accept is
never left as champion. A promotion judged against a champion which has changed since (another run
or a person promoted something else meanwhile) is refused.

Whatever finishes a promotion also writes its outcome on the events row of the run that asked for it
(columns ``deployed``, ``champion_version_before/after``, ``promotion_id``, ``promotion_resolution``),
so a promotion can never be recorded nowhere, and the versions on that row come from the intent,
not from the registry as a later process finds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from .. import faults
from ..config import RetrainingConfig
from ..record import events, promotions
from ..record.events import RunKey, model_lock
from ..record.promotions import Promotion
from .registry import CHAMPION, PREVIOUS, version_by_alias

log = logging.getLogger(__name__)

STATUS_AFTER = {"deploy": "deployed", "rollback": "rolled_back", "promote": "promoted"}


class PromotionError(RuntimeError):
    """The new champion could not be put in service; the previous state was restored."""


def deploy_lock(dsn: str, model_name: str) -> AbstractContextManager[None]:
    """A session-level advisory lock on ``model_name``: one promotion at a time, across all DAGs and workers."""
    return model_lock(dsn, model_name, "deploy")


UNCHECKED = object()


def _set_alias(client: Any, name: str, alias: str, version: int | None) -> None:
    if version is None:
        try:
            client.delete_registered_model_alias(name, alias)
        except Exception:  # not set: nothing to delete
            log.debug("alias %s of %s was not set", alias, name)
    else:
        client.set_registered_model_alias(name, alias, str(version))


def _who(run: RunKey | None, attempt: int | None, how: str = "") -> str:
    where = f"{run.dag_id} {run.run_id} attempt {attempt}" if run else "a direct call"
    return f"{where}{f' ({how})' if how else ''}"


def _version(client: Any, name: str, alias: str) -> int | None:
    found = version_by_alias(client, name, alias)
    return found.version if found else None


def _v(version: int | None) -> str:
    return f"v{version}" if version else "none"


def _result(p: Promotion, exported: dict[str, Any] | None = None, reload: dict[str, Any] | None = None,
            resumed: bool = False) -> dict[str, Any]:
    changed = p.champion_before != p.target_version
    return {
        "champion_before": p.champion_before,
        "champion_after": p.target_version,
        "previous_champion": p.champion_before if changed else p.previous_before,
        "promotion_id": p.id,
        "resumed": resumed,
        "export": exported,
        "reload": reload,
    }


def _serve(cfg: RetrainingConfig, p: Promotion) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Export (``deploy.serving_dir``) and reload (``deploy.reload_conn_id``) the target: idempotent."""
    from . import serving

    name, version = p.registered_name, p.target_version
    exported: dict[str, Any] | None = None
    reload: dict[str, Any] | None = None
    if cfg.deploy.serving_dir:
        exported = serving.export_model(f"models:/{name}/{version}", cfg.deploy.serving_dir, name, version)
        log.info("exported %s v%s to %s", name, version, exported["path"])
    faults.point("deploy.before_reload")
    if cfg.deploy.reload_conn_id:
        reload = serving.reload_endpoint(
            cfg.deploy.reload_conn_id,
            cfg.deploy.reload_endpoint,
            payload={"model": name, "version": version, "uri": f"models:/{name}@{CHAMPION}",
                     "path": exported["path"] if exported else None, "reason": p.reason or ""},
            timeout=cfg.deploy.reload_timeout_seconds,
        )
        log.info("reload endpoint answered %s in %s ms", reload["status_code"], reload["elapsed_ms"])
    return exported, reload


def _restore(cfg: RetrainingConfig, client: Any, p: Promotion, link_before: int | None) -> None:
    """Aliases and the serving link back to how they were before ``p`` (idempotent)."""
    from . import serving

    _set_alias(client, p.registered_name, CHAMPION, p.champion_before)
    _set_alias(client, p.registered_name, PREVIOUS, p.previous_before)
    if cfg.deploy.serving_dir:
        back = link_before if link_before is not None else p.champion_before
        if back is not None and serving.current_version(cfg.deploy.serving_dir, p.registered_name) != back:
            try:
                serving.point_current(cfg.deploy.serving_dir, p.registered_name, back)
            except FileNotFoundError as exc:
                log.warning("could not point the serving link back at v%s: %s", back, exc)


def _record_on_run(dsn: str, p: Promotion, fields: dict[str, Any]) -> None:
    """Write a promotion's outcome on the events row of the run (attempt) that asked for it."""
    if p.run is None or p.attempt is None:
        return
    events.upsert_event(dsn, p.run, {**fields, "promotion_id": p.id}, attempt=p.attempt)


def _carry_out(cfg: RetrainingConfig, client: Any, dsn: str, p: Promotion, who: str, resumed: bool = False,
               before_complete: Callable[[], None] | None = None) -> dict[str, Any]:
    """Do (or redo) every step of ``p``; on failure put everything back and mark it reverted.

    ``before_complete`` runs once the new champion serves and before the promotion is marked completed
    (if it fails, the promotion stays open and is finished again, idempotently, by the next attempt)."""
    name = p.registered_name
    link_before = None
    if cfg.deploy.serving_dir:
        from . import serving

        link_before = serving.current_version(cfg.deploy.serving_dir, name)
        if resumed and link_before == p.target_version:
            link_before = None  # moved by the interrupted attempt: the champion before is what to go back to
    try:
        faults.point("deploy.after_intent")
        if p.champion_before != p.target_version:
            if p.champion_before is not None:
                _set_alias(client, name, PREVIOUS, p.champion_before)
            _set_alias(client, name, CHAMPION, p.target_version)
        else:
            log.info("%s version %s is already the champion", name, p.target_version)
        faults.point("deploy.after_aliases")
        promotions.advance(dsn, p.id, "aliases_moved")
        exported, reload = _serve(cfg, p)
    except Exception as exc:
        try:
            _restore(cfg, client, p, link_before)
        except Exception as restore_exc:  # e.g. the registry is unreachable: recovery finishes it later
            raise PromotionError(
                f"putting {name} v{p.target_version} in service failed ({exc}) and restoring the previous state "
                f"failed too ({restore_exc}); {p.describe()} stays open and the next deploy, run of the DAG or "
                "model_rollback finishes or reverts it"
            ) from exc
        promotions.revert(dsn, p, who, f"{type(exc).__name__}: {exc}")
        raise PromotionError(
            f"putting {name} v{p.target_version} in service failed ({exc}); the champion was rolled back to "
            f"{_v(p.champion_before)}"
        ) from exc
    promotions.advance(dsn, p.id, "served")
    faults.point("deploy.after_serve")
    client.set_model_version_tag(name, str(p.target_version), "deployed", "true")
    client.set_model_version_tag(name, str(p.target_version), "promotion_reason", (p.reason or "")[:500])
    client.set_model_version_tag(name, str(p.target_version), "promotion_id", str(p.id))
    if before_complete is not None:
        before_complete()
    promotions.complete(dsn, p, who)
    return _result(p, exported, reload, resumed)


def _finish(cfg: RetrainingConfig, client: Any, dsn: str, p: Promotion, who: str) -> str:
    """Finish another process's unfinished promotion: complete it when its aliases had moved, else revert.

    Returns ``completed`` or ``reverted``; the outcome is written on the run's row that asked for it."""
    name = p.registered_name
    champion_now = _version(client, name, CHAMPION)
    if champion_now not in (p.champion_before, p.target_version):
        message = (f"the champion is {_v(champion_now)} now (changed by hand meanwhile), neither "
                   f"{_v(p.champion_before)} nor {_v(p.target_version)}: left as it is")
        promotions.revert(dsn, p, who, message)
        _record_on_run(dsn, p, {"promotion_resolution": f"abandoned by {who}: {message}"})
        return "reverted"
    if p.state == "intent":
        _restore(cfg, client, p, None)
        promotions.revert(dsn, p, who, "interrupted before the aliases moved")
        _record_on_run(dsn, p, {"deployed": False, "status": "failed", "execution_successful": False,
                                     "champion_version_before": p.champion_before,
                                     "champion_version_after": p.champion_before,
                                     "promotion_resolution": f"reverted by {who}: interrupted before the aliases "
                                                             "moved"})
        return "reverted"
    completed = {
        "deployed": True, "status": STATUS_AFTER.get(p.action, "deployed"), "execution_successful": True,
        "champion_version_before": p.champion_before, "champion_version_after": p.target_version,
        "promotion_resolution": f"completed by {who} after the promoting task was interrupted",
        "execution_completed_at": datetime.now(timezone.utc)}
    try:
        _carry_out(cfg, client, dsn, p, who, resumed=True,
                   before_complete=lambda: _record_on_run(dsn, p, completed))
    except PromotionError as exc:
        _record_on_run(dsn, p, {"deployed": False, "status": "failed", "execution_successful": False,
                                     "champion_version_before": p.champion_before,
                                     "champion_version_after": p.champion_before,
                                     "promotion_resolution": f"reverted by {who}: {exc}"[:2000]})
        return "reverted"
    return "completed"


def recover(cfg: RetrainingConfig, client: Any, dsn: str, *, run: RunKey | None = None, attempt: int | None = None,
            locked: bool = False) -> list[dict[str, Any]]:
    """Finish every promotion of the model that was begun and never finished (a killed task, a lost database).

    Called by every promotion (under the deploy lock) and by the first poke of every run. Returns what
    was done: ``[{"promotion_id", "target_version", "outcome"}]``."""
    name = cfg.model.registry_name
    if not locked:
        if not promotions.unfinished(dsn, name):  # the usual case: no lock needed to know there is nothing
            return []
        with deploy_lock(dsn, name):
            return recover(cfg, client, dsn, run=run, attempt=attempt, locked=True)
    done = []
    for p in promotions.unfinished(dsn, name):
        outcome = _finish(cfg, client, dsn, p, _who(run, attempt, f"recovery of promotion #{p.id}"))
        log.warning("%s: %s", p.describe(), outcome)
        done.append({"promotion_id": p.id, "target_version": p.target_version, "outcome": outcome})
    return done


def switch_champion(cfg: RetrainingConfig, client: Any, dsn: str, version: int, reason: str, *,
                    effective_at: datetime, action: str = "deploy", run: RunKey | None = None,
                    attempt: int | None = None, expected_champion: Any = UNCHECKED) -> dict[str, Any]:
    """Make ``version`` the champion (export and reload as configured); restore everything on failure.

    ``effective_at`` is when the new champion starts to serve (recorded in the champion history);
    ``expected_champion`` (a version or None), when given, is the champion the candidate was judged
    against: if the champion is another one by now, nothing is changed and :class:`PromotionError` says so.
    A retry of the same run's attempt resumes its own promotion (or reports it, if it completed), with the
    versions its intent recorded.
    """
    name = cfg.model.registry_name
    with deploy_lock(dsn, name):
        if run is not None:
            mine = promotions.of_run(dsn, run, attempt, version)
            if mine is not None and mine.state == "completed":
                log.info("%s: completed earlier by %s; nothing to do", mine.describe(), mine.resolved_by)
                return _result(mine, resumed=True)
            if mine is not None and not mine.finished:
                log.warning("resuming %s", mine.describe())
                return _carry_out(cfg, client, dsn, mine, _who(run, attempt, "retry"), resumed=True)
        recover(cfg, client, dsn, run=run, attempt=attempt, locked=True)
        old_champion = _version(client, name, CHAMPION)
        old_previous = _version(client, name, PREVIOUS)
        if expected_champion is not UNCHECKED and old_champion != expected_champion and old_champion != version:
            raise PromotionError(
                f"{name} v{version} was judged against champion {_v(expected_champion)}, but the champion is "
                f"{_v(old_champion)} now (changed meanwhile by another run or by hand); not promoted: re-run to "
                "judge it against the current champion"
            )
        p = promotions.begin(dsn, model_name=cfg.model.name, registered_name=name, target_version=version,
                             champion_before=old_champion, previous_before=old_previous, action=action,
                             effective_at=effective_at, run=run, attempt=attempt, reason=reason)
        return _carry_out(cfg, client, dsn, p, _who(run, attempt))
