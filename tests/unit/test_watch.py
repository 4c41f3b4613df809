"""The post-deploy watch: which promotion a window watches (real PostgreSQL), the evidence that the new champion
is worse (the gate's rules turned around), and the decision it leads to."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from test_decide import assessment
from unit_helpers import build_config

from include.retraining.monitoring.assessment import decide
from include.retraining.pipeline import summarize
from include.retraining.record import champion_history, events, promotions
from include.retraining.release import watch

T0 = datetime(2026, 3, 8, 18, tzinfo=timezone.utc)
GRID = timedelta(hours=6)


@pytest.fixture(autouse=True)
def fresh_schema_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_ready", set())
    monkeypatch.setattr(champion_history, "_ready", set())
    monkeypatch.setattr(promotions, "_ready", set())


def promote(dsn: str, cfg, target: int, before: int | None, action: str = "deploy", at: datetime = T0,
            finish: bool = True) -> promotions.Promotion:
    p = promotions.begin(dsn, model_name=cfg.model.name, registered_name=cfg.model.registry_name,
                         target_version=target, champion_before=before, previous_before=None, action=action,
                         effective_at=at, run=None, attempt=None, reason="test")
    if finish:
        promotions.complete(dsn, p, "test")
    return p


def test_the_next_windows_after_a_deploy_are_watched(pg_dsn: str) -> None:
    cfg = build_config(watch={"windows": 2})
    promote(pg_dsn, cfg, 1, None, at=T0 - 4 * GRID)  # the first champion: nothing to compare it with
    assert watch.watched_promotion(cfg, pg_dsn, 1, T0, GRID) is None
    p = promote(pg_dsn, cfg, 2, 1)
    assert watch.watched_promotion(cfg, pg_dsn, 2, T0, GRID) is None  # the promotion's own window
    first = watch.watched_promotion(cfg, pg_dsn, 2, T0 + GRID, GRID)
    assert first is not None and first.promotion.id == p.id and first.look == 1
    assert (first.new_version, first.previous_version) == (2, 1)
    assert watch.watched_promotion(cfg, pg_dsn, 2, T0 + 2 * GRID, GRID).look == 2
    assert watch.watched_promotion(cfg, pg_dsn, 2, T0 + 3 * GRID, GRID) is None  # past watch.windows
    assert watch.watched_promotion(cfg, pg_dsn, 1, T0 + GRID, GRID) is None  # the champion is another one now
    off = build_config(watch={"enabled": False})
    assert watch.watched_promotion(off, pg_dsn, 2, T0 + GRID, GRID) is None


def test_a_rollback_or_an_unfinished_promotion_is_not_watched(pg_dsn: str) -> None:
    cfg = build_config()
    promote(pg_dsn, cfg, 2, 1)
    promote(pg_dsn, cfg, 1, 2, action="rollback", at=T0 + GRID)  # the watch (or a person) rolled back
    assert watch.watched_promotion(cfg, pg_dsn, 1, T0 + 2 * GRID, GRID) is None
    promote(pg_dsn, cfg, 3, 1, at=T0 + 2 * GRID, finish=False)  # intent only: the newest *completed* one counts
    assert watch.watched_promotion(cfg, pg_dsn, 1, T0 + 3 * GRID, GRID) is None
    promote(pg_dsn, cfg, 4, 1, action="promote", at=T0 + 3 * GRID)  # a person promoted a challenger: watched
    assert watch.watched_promotion(cfg, pg_dsn, 4, T0 + 4 * GRID, GRID).new_version == 4


def _scores(rng: np.random.Generator, y: np.ndarray, accuracy: float) -> np.ndarray:
    """Class probabilities right on about ``accuracy`` of the rows."""
    right = rng.random(len(y)) < accuracy
    p1 = np.where(right == (y == 1), 0.8, 0.2)
    return np.column_stack([1 - p1, p1])


def test_compare_needs_a_margin_and_significance() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    good, bad, same = _scores(rng, y, 0.9), _scores(rng, y, 0.75), _scores(rng, y, 0.9)
    cfg = build_config(gate={"significance": {"resamples": 300}})
    worse = watch.compare(cfg, y, previous=good, new=bad, looks=4)
    assert worse["worse"] and worse["significant"] and worse["margin"] > 0.1
    assert worse["confidence"] == pytest.approx(1 - 0.05 / 4)  # the error rate is split over the watched windows
    assert not watch.compare(cfg, y, previous=good, new=same, looks=4)["worse"]
    assert not watch.compare(cfg, y, previous=bad, new=good, looks=4)["worse"]  # the new one is better
    lenient = build_config(watch={"max_drop": 0.5}, gate={"significance": {"resamples": 300}})
    assert not watch.compare(lenient, y, previous=good, new=bad, looks=4)["worse"]  # within the allowed drop


def test_regression_margin_is_relative_like_the_gate() -> None:
    assert watch.margin("rmse", previous=100.0, new=110.0) == pytest.approx(0.10)
    assert watch.margin("r2", previous=0.8, new=0.7) == pytest.approx(0.10)
    assert watch.margin("mae", previous=10.0, new=9.0) == pytest.approx(-0.10)


def _worse_watch() -> dict:
    return {"status": "worse", "previous_version": 2, "new_version": 3, "reason": "post-deploy watch of v3: worse",
            "significance": {"method": "paired_bootstrap", "p_value": 0.001}}


def test_a_worse_champion_is_rolled_back_before_anything_else() -> None:
    cfg = build_config()
    a = {**assessment(drifted={"a": 0.5, "b": 0.6}), "watch": _worse_watch()}
    d = decide(cfg, a)
    assert d["decision"] == "rollback" and d["rollback"] and not d["retrain"]
    assert d["trigger_type"] == "post_deploy_watch" and d["rollback_to"] == 2 and d["severity"] == "high"
    assert d["reason"].startswith("post-deploy watch of v3")
    frozen = decide(cfg, a, frozen="change freeze")  # a rollback is the emergency lever: allowed in a freeze
    assert frozen["decision"] == "rollback"


@pytest.mark.parametrize("kw", [{"run_type": "backfill"}, {"check_only": True}, {"replay": "a later champion"}])
def test_backfills_checks_and_replays_never_roll_back(kw: dict) -> None:
    d = decide(build_config(), {**assessment(), "watch": _worse_watch()}, **kw)
    assert d["decision"] == "check_only" and not d.get("rollback")
    assert "would roll back: post-deploy watch of v3" in d["reason"]


def test_a_champion_that_holds_up_changes_nothing() -> None:
    d = decide(build_config(), {**assessment(), "watch": {**_worse_watch(), "status": "holds"}})
    assert d["decision"] == "skip" and "rollback" not in d


def test_summarize_a_rollback_run() -> None:
    decision = {"decision": "rollback"}
    done = summarize(decision, None, None, {"rollback_champion": "success"}, None, "check",
                     rolled_back={"champion_after": 2})
    assert done["fields"]["status"] == "rolled_back" and done["fields"]["deployed"] is True
    failed = summarize(decision, None, None, {"rollback_champion": "failed"}, None, "check")
    assert failed["fields"]["status"] == "failed" and failed["fields"]["failed_task"] == "rollback_champion"
