"""The post-deploy watch: which promotion a window watches (real PostgreSQL), the evidence that the new champion
is worse (the gate's rules turned around), and the decision it leads to."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from test_decide import assessment
from unit_helpers import build_config

from include.retraining.monitoring.assessment import decide
from include.retraining.pipeline import summarize
from include.retraining.record import champion_history, events, promotions
from include.retraining.release import significance, watch

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


def test_the_watch_spans_hours_after_a_deploy_in_checkpoints(pg_dsn: str) -> None:
    cfg = build_config(watch={"hours": 24, "looks": 4})  # checkpoints every 6 hours, on the 6-hour grid
    promote(pg_dsn, cfg, 1, None, at=T0 - 4 * GRID)  # the first champion: nothing to compare it with
    assert watch.watched_promotion(cfg, pg_dsn, 1, T0, GRID) is None
    p = promote(pg_dsn, cfg, 2, 1)
    assert watch.watched_promotion(cfg, pg_dsn, 2, T0, GRID) is None  # the promotion's own window
    first = watch.watched_promotion(cfg, pg_dsn, 2, T0 + GRID, GRID)
    assert first is not None and first.promotion.id == p.id and (first.look, first.new_checkpoints) == (1, 1)
    assert (first.new_version, first.previous_version) == (2, 1)
    assert first.alpha(cfg) == pytest.approx(0.05 / 4)
    assert watch.watched_promotion(cfg, pg_dsn, 2, T0 + 4 * GRID, GRID).look == 4
    assert watch.watched_promotion(cfg, pg_dsn, 2, T0 + 5 * GRID, GRID) is None  # the watch's span is over
    assert watch.watched_promotion(cfg, pg_dsn, 1, T0 + GRID, GRID) is None  # the champion is another one now
    off = build_config(watch={"enabled": False})
    assert watch.watched_promotion(off, pg_dsn, 2, T0 + GRID, GRID) is None
    # checkpoints every 12 hours: a 6-hourly run between two of them judges nothing
    sparse = build_config(watch={"hours": 48, "looks": 4})
    between = watch.watched_promotion(sparse, pg_dsn, 2, T0 + GRID, GRID)
    assert (between.look, between.new_checkpoints) == (0, 0) and between.next_checkpoint() == T0 + 2 * GRID
    assert watch.watched_promotion(sparse, pg_dsn, 2, T0 + 2 * GRID, GRID).new_checkpoints == 1


def test_a_weekly_check_is_watched(pg_dsn: str) -> None:
    week = timedelta(days=7)
    cfg = build_config()  # two weeks, four checkpoints of 3.5 days
    promote(pg_dsn, cfg, 2, 1)
    first = watch.watched_promotion(cfg, pg_dsn, 2, T0 + week, week)
    assert (first.look, first.new_checkpoints) == (2, 2) and first.alpha(cfg) == pytest.approx(0.05 / 2)
    second = watch.watched_promotion(cfg, pg_dsn, 2, T0 + 2 * week, week)
    assert (second.look, second.new_checkpoints) == (4, 2)
    assert watch.watched_promotion(cfg, pg_dsn, 2, T0 + 3 * week, week) is None
    # the first release's one day of 6-hour windows: a weekly check now judges it once, with the whole error rate
    legacy = build_config(watch={"windows": 4})
    assert legacy.watch.hours == 24
    once = watch.watched_promotion(legacy, pg_dsn, 2, T0 + week, week)
    assert (once.look, once.new_checkpoints) == (4, 4) and once.alpha(legacy) == pytest.approx(0.05)


def test_watch_windows_is_read_as_six_hours_each_and_not_beside_hours() -> None:
    assert build_config(watch={"windows": 2}).watch.hours == 12
    with pytest.raises(ValueError, match="give watch.hours .* or the older watch.windows, not both"):
        build_config(watch={"windows": 2, "hours": 12})
    with pytest.raises(ValueError, match="watch.windows must be a whole number"):
        build_config(watch={"windows": 0})


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
    worse = watch.compare(cfg, y, previous=good, new=bad, alpha=0.05 / 4)
    assert worse["worse"] and worse["significant"] and worse["margin"] > 0.1
    assert worse["confidence"] == pytest.approx(1 - 0.05 / 4)
    assert not watch.compare(cfg, y, previous=good, new=same, alpha=0.0125)["worse"]
    assert not watch.compare(cfg, y, previous=bad, new=good, alpha=0.0125)["worse"]  # the new one is better
    lenient = build_config(watch={"max_drop": 0.5}, gate={"significance": {"resamples": 300}})
    assert not watch.compare(lenient, y, previous=good, new=bad, alpha=0.0125)["worse"]  # within the allowed drop


def _days(days: int, per_day: int, seed: int, daily_edge: np.ndarray | float, noise: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Series]:
    """Rows over ``days`` days: the previous champion's and the new one's probabilities; the previous one is
    better by ``daily_edge`` (per day, shared by the day's rows) in the separation of the classes."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), per_day)
    y = rng.integers(0, 2, day.size)
    edge = np.broadcast_to(np.asarray(daily_edge, dtype=float), (days,))[day]
    base = rng.normal(0, 1, day.size)
    new = 1 / (1 + np.exp(-(base + 1.0 * (2 * y - 1) + rng.normal(0, noise, day.size))))
    previous = 1 / (1 + np.exp(-(base + (1.0 + edge) * (2 * y - 1))))
    ts = pd.Series(pd.Timestamp("2026-03-09", tz="UTC") + pd.to_timedelta(day * 24 + rng.random(day.size) * 23,
                                                                           unit="h"))
    return y, np.column_stack([1 - previous, previous]), np.column_stack([1 - new, new]), ts


def test_rows_of_one_day_sharing_a_shock_do_not_roll_back() -> None:
    """The issue's case: 939 rows of one day on which the new champion happened to do worse. Rows resampled as if
    independent say "significantly worse"; resampled by day, one day is one block and claims nothing."""
    y, previous, new, ts = _days(1, 939, seed=1, daily_edge=0.5)
    cfg = build_config(gate={"significance": {"resamples": 500}})
    by_row = watch.compare(cfg, y, previous, new, alpha=0.0125)
    assert by_row["worse"]  # the old watch would have rolled back
    blocks = significance.choose_blocks(ts, cfg.watch.min_blocks, cfg.watch.block)
    assert (blocks.unit, blocks.count, blocks.enough) == ("day", 1, False)
    by_day = watch.compare(cfg, y, previous, new, alpha=0.0125, blocks=blocks)
    assert not by_day["worse"] and math.isnan(by_day["significance"]["ci_low"])
    # a fortnight of days whose shocks go both ways (as many good days as bad for the new champion): no rollback
    edges = np.resize([0.5, -0.5], 14)
    y, previous, new, ts = _days(14, 300, seed=2, daily_edge=edges)
    blocks = significance.choose_blocks(ts, cfg.watch.min_blocks, cfg.watch.block)
    assert not watch.compare(cfg, y, previous, new, alpha=0.0125, blocks=blocks)["worse"]


def test_a_model_truly_worse_over_many_days_is_rolled_back() -> None:
    y, previous, new, ts = _days(14, 300, seed=3, daily_edge=0.5)
    cfg = build_config(gate={"significance": {"resamples": 500}})
    blocks = significance.choose_blocks(ts, cfg.watch.min_blocks, cfg.watch.block)
    assert (blocks.unit, blocks.count) == ("day", 14)
    result = watch.compare(cfg, y, previous, new, alpha=0.0125, blocks=blocks)
    assert result["worse"] and result["significance"]["blocks"] == 14 and result["significance"]["ci_low"] > 0
    # three days of the same drop are enough, though the few-blocks correction widens the interval 3.6-fold
    y3, p3, n3, ts3 = _days(3, 300, seed=3, daily_edge=0.5)
    few = watch.compare(cfg, y3, p3, n3, alpha=0.0125, blocks=significance.choose_blocks(ts3, 3, "day"))
    assert few["significance"]["few_blocks_factor"] > 3 and few["worse"]


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


def test_observe_between_checkpoints_and_on_too_few_days(pg_dsn: str, tmp_path) -> None:
    """Through real storage: between checkpoints nothing is read or judged; at a checkpoint with one day of labelled
    rows since the promotion the watch waits for more days instead of judging (and never loads a model)."""
    rng = np.random.default_rng(0)
    rows = 939
    frame = pd.DataFrame({"ts": T0 + pd.to_timedelta(np.sort(rng.random(rows)) * 20, unit="h"),
                          "y": rng.integers(0, 2, rows), "x1": rng.normal(size=rows), "x2": rng.normal(size=rows),
                          "c": rng.choice(["a", "b"], rows)})
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path)
    cfg = build_config(source={"kind": "parquet", "path": str(path)}, watch={"hours": 48, "looks": 2})
    promote(pg_dsn, cfg, 2, 1)
    between = watch.observe(cfg, None, pg_dsn, 2, T0 + GRID, GRID)
    assert between["status"] == "watching" and between["look"] == 0 and "the next at" in between["reason"]
    at_checkpoint = watch.observe(cfg, None, pg_dsn, 2, T0 + 4 * GRID, GRID)  # 24 hours: the first checkpoint
    assert at_checkpoint["status"] == "waiting" and at_checkpoint["rows"] == rows
    assert (at_checkpoint["block"], at_checkpoint["blocks"], at_checkpoint["enough_blocks"]) == ("day", 2, False)
    assert "watch.min_blocks is 3" in at_checkpoint["reason"]
    assert at_checkpoint["alpha"] == pytest.approx(0.025)
