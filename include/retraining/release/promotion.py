"""Promotion and rollback: moving the ``champion`` alias safely, serialised, and reversibly.

One function serves the ``deploy`` task, the rollback and the manual approval of a
waiting challenger: :func:`switch_champion`. Under a PostgreSQL advisory lock per model
(so two promotions, from any DAG, never interleave) it

1. moves ``champion`` to the target version and keeps the former champion under
   ``previous_champion``;
2. if ``deploy.serving_dir`` is set, exports the exact registered artifact there by atomic
   rename and repoints ``current``;
3. if ``deploy.reload_conn_id`` is set, calls the serving app's reload endpoint
   (``POST /model/reload`` by default) through that Airflow HTTP connection.

If step 2 or 3 fails, the aliases and the ``current`` link are put back as they were and
:class:`PromotionError` says why: a model that the serving app did not accept is never
left as champion. A promotion that was judged against a champion which has changed since
(another run or a person promoted something else meanwhile) is refused. Every change of
champion is appended to ``model_champion_history`` (see :mod:`..record.champion_history`) before
the lock is released.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from ..config import RetrainingConfig
from ..record.events import RunKey, model_lock
from .registry import CHAMPION, PREVIOUS, version_by_alias

log = logging.getLogger(__name__)


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


def switch_champion(cfg: RetrainingConfig, client: Any, dsn: str, version: int, reason: str, *,
                    effective_at: datetime, action: str = "deploy", run: RunKey | None = None,
                    attempt: int | None = None, expected_champion: Any = UNCHECKED) -> dict[str, Any]:
    """Make ``version`` the champion (export and reload as configured); restore everything on failure.

    ``effective_at`` is when the new champion starts to serve (recorded in the champion history);
    ``expected_champion`` (a version or None), when given, is the champion the candidate was judged
    against: if the champion is another one by now, nothing is changed and :class:`PromotionError` says so.
    """
    from ..record import champion_history
    from . import serving

    name = cfg.model.registry_name
    with deploy_lock(dsn, name):
        before = version_by_alias(client, name, CHAMPION)
        previous_before = version_by_alias(client, name, PREVIOUS)
        old_champion = before.version if before else None
        old_previous = previous_before.version if previous_before else None
        if expected_champion is not UNCHECKED and old_champion != expected_champion and old_champion != version:
            raise PromotionError(
                f"{name} v{version} was judged against champion "
                f"{'v' + str(expected_champion) if expected_champion else '(none)'}, but the champion is "
                f"{'v' + str(old_champion) if old_champion else '(none)'} now (changed meanwhile by another run or "
                "by hand); not promoted: re-run to judge it against the current champion"
            )
        if old_champion == version:
            log.info("%s version %s is already the champion", name, version)
        else:
            if old_champion is not None:
                _set_alias(client, name, PREVIOUS, old_champion)
            _set_alias(client, name, CHAMPION, version)
        exported: dict[str, Any] | None = None
        reload: dict[str, Any] | None = None
        try:
            if cfg.deploy.serving_dir:
                exported = serving.export_model(f"models:/{name}/{version}", cfg.deploy.serving_dir, name, version)
                log.info("exported %s v%s to %s", name, version, exported["path"])
            if cfg.deploy.reload_conn_id:
                reload = serving.reload_endpoint(
                    cfg.deploy.reload_conn_id,
                    cfg.deploy.reload_endpoint,
                    payload={"model": name, "version": version, "uri": f"models:/{name}@{CHAMPION}",
                             "path": exported["path"] if exported else None, "reason": reason},
                    timeout=cfg.deploy.reload_timeout_seconds,
                )
                log.info("reload endpoint answered %s in %s ms", reload["status_code"], reload["elapsed_ms"])
        except Exception as exc:
            _set_alias(client, name, CHAMPION, old_champion)
            _set_alias(client, name, PREVIOUS, old_previous)
            if exported and exported.get("previous") is not None:
                serving.point_current(cfg.deploy.serving_dir or "", name, exported["previous"])
            raise PromotionError(
                f"putting {name} v{version} in service failed ({exc}); the champion was rolled back to "
                f"{'v' + str(old_champion) if old_champion else 'none'}"
            ) from exc
        client.set_model_version_tag(name, str(version), "deployed", "true")
        client.set_model_version_tag(name, str(version), "promotion_reason", reason[:500])
        if old_champion != version:
            champion_history.record(
                dsn, model_name=cfg.model.name, registered_name=name, version=version, previous_version=old_champion,
                effective_at=effective_at, action=action, dag_id=run.dag_id if run else None,
                run_id=run.run_id if run else None, attempt=attempt, reason=reason)
    return {
        "champion_before": old_champion,
        "champion_after": version,
        "previous_champion": old_champion if old_champion != version else old_previous,
        "export": exported,
        "reload": reload,
    }
