"""The time rules of a run: which window it checks, and which champion judges it.

**The window.** A scheduled or backfilled run checks ``[data_interval_end - lookback, data_interval_end)``
(Airflow's logical date is the start of the interval). A manual run dated at the end of one of the
schedule's windows checks that window (Airflow gives a manual run the interval that ends at its logical
date). A manual run *without* a logical date, or dated off the schedule's grid (the trigger form fills in
the moment it was opened), checks the latest closed window on the grid, at or before that moment, that
holds ``window.min_labelled_rows`` labelled rows; the row says which window and why.

**The judge.** A window is judged with the champion that was in service at its time, from
``model_champion_history`` (see :mod:`.record.champion_history`), so the verdict on a window does not depend
on when it is (re)played. A live run (no champion change at or after its window's end) is judged by the
registry's current champion, which is the same model. A run whose window a later champion change has
overtaken (a backfill, a cleared old run, a reprocessed run) is a *replay*: it measures and records
what would have been decided, and never trains or deploys.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .config import RetrainingConfig
from .errors import DataValidationError

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
START_DATE_ENV = "RETRAINING_START_DATE"


def floor_to_grid(ts: datetime, grid: timedelta) -> datetime:
    """The grid point at or before ``ts`` (grid points: multiples of ``grid`` since 1970-01-01 UTC), as a plain
    UTC ``datetime`` (Airflow hands tasks pendulum DateTimes, whose differences are not timedeltas)."""
    seconds = (ts.timestamp() - EPOCH.timestamp()) // grid.total_seconds() * grid.total_seconds()
    return EPOCH + timedelta(seconds=seconds)


def start_date() -> datetime | None:
    """``$RETRAINING_START_DATE`` (ISO 8601, UTC if no offset): the earliest window end a run may check."""
    raw = os.environ.get(START_DATE_ENV, "").strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise DataValidationError(f"{START_DATE_ENV}={raw!r} is not an ISO 8601 date (e.g. 2024-01-01)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def check_start_date(window_end: datetime) -> None:
    """A run before the configured start date fails with a message saying so (never a silent no-op)."""
    earliest = start_date()
    if earliest is not None and window_end <= earliest:
        raise DataValidationError(
            f"the window ending {window_end.isoformat()} is not after {START_DATE_ENV}={earliest.isoformat()}: "
            f"unset {START_DATE_ENV} (or move it back) to check windows that old"
        )


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    rule: str  # data_interval | latest_with_data
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "rule": self.rule, "note": self.note}


def latest_window_with_data(cfg: RetrainingConfig, before: datetime, grid: timedelta, searched: int = 8) -> Window:
    """The latest window on the grid, closed by ``before``, with ``window.min_labelled_rows`` labelled rows.

    Starts at the window holding the newest labelled row (or the last closed one, if that is still open)
    and steps back one grid interval at a time, ``searched`` times at most; if none has enough labelled
    rows, the first one is returned (the sensor then waits for labels or records insufficient data).
    """
    from .sources import count_window, latest_labelled_time

    lookback = timedelta(hours=cfg.window.lookback_hours)
    last_closed = floor_to_grid(before, grid)
    newest = latest_labelled_time(cfg, before)
    if newest is None:
        return Window(last_closed - lookback, last_closed, "latest_with_data",
                      f"no labelled rows before {before:%Y-%m-%d %H:%M} UTC: checking the last closed window")
    first = min(floor_to_grid(newest, grid) + grid, last_closed)
    for k in range(searched):
        end = first - k * grid
        counts = count_window(cfg, end - lookback, end)
        if counts.labelled >= cfg.window.min_labelled_rows:
            skipped = f", {k} newer window(s) had fewer than {cfg.window.min_labelled_rows} labelled rows" if k else ""
            return Window(end - lookback, end, "latest_with_data",
                          f"manual run without a logical date: the latest window with enough labelled data "
                          f"(newest labelled row {newest:%Y-%m-%d %H:%M} UTC{skipped})")
    return Window(first - lookback, first, "latest_with_data",
                  f"manual run without a logical date: no window among the {searched} before "
                  f"{first:%Y-%m-%d %H:%M} UTC has {cfg.window.min_labelled_rows} labelled rows yet; checking the newest")


@dataclass(frozen=True)
class Judge:
    """The champion that judges a window, and how it was found."""

    champion: Any | None  # registry.ModelVersionInfo
    source: str  # registry | history | none
    replay: bool = False  # a later change of champion overtook this window: never train or deploy
    note: str | None = None
    later_changes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"version": getattr(self.champion, "version", None), "source": self.source, "replay": self.replay,
                "note": self.note, "later_changes": self.later_changes}


def judging_champion(cfg: RetrainingConfig, client: Any, dsn: str, window_end: datetime, run_type: str) -> Judge:
    """The champion in service at ``window_end`` (see the module docstring)."""
    from .record import champion_history
    from .release import registry

    name = cfg.model.registry_name
    later = champion_history.changes_from(dsn, name, window_end)
    later_dicts = [{"version": c.version, "effective_at": c.effective_at.isoformat(), "action": c.action,
                    "run_id": c.run_id} for c in later]
    if run_type != "backfill" and not later:
        current = registry.champion(cfg, client)
        return Judge(current, "registry" if current else "none")
    change = champion_history.in_service(dsn, name, window_end)
    if change is not None:
        champ = None if change.version is None else registry.version_info(client, name, change.version)
        note = (f"judged by v{change.version}, the champion in service at the window's end "
                f"(since {change.effective_at:%Y-%m-%d %H:%M} UTC, {change.action})")
        return Judge(champ, "history", bool(later), note, later_dicts)
    current = None if later else registry.champion(cfg, client)
    if current is None:
        note = f"no champion of {name} was in service before {window_end:%Y-%m-%d %H:%M} UTC"
        return Judge(None, "history" if later else "none", bool(later), note, later_dicts)
    note = (f"no change of champion is recorded for {name}: judged by the registry's current champion "
            f"v{current.version}")
    return Judge(current, "registry", False, note, later_dicts)


def replay_reason(later_changes: list[dict[str, Any]]) -> str:
    """Why a run whose window a later change of champion overtook only replays it (``Judge.later_changes``)."""
    first = later_changes[0]
    return (f"a later change of champion (v{first['version']} from {first['effective_at'][:16].replace('T', ' ')} "
            f"UTC, {first['action']}) overtook this window, so this run replays it: it records what would have "
            "been decided and never trains or deploys")


JudgeLookup = Callable[[], Judge]
