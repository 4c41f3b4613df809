"""Smoke run of benchmarks/replay_drift.py: a short replay (no Evidently, a small champion) has the
documented structure, our drift check flags no window without drift, and a sudden shift at once."""

from __future__ import annotations

from types import ModuleType

import pytest
from unit_helpers import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("replay_drift")


@pytest.fixture(scope="module")
def run(bench: ModuleType) -> dict:
    return bench.replay(windows=6, rows=1500, seed=0, drift_at=3, scenarios=("no_drift", "sudden_shift"),
                        evidently=False, lightgbm_params={"n_estimators": 60, "learning_rate": 0.1})


def test_structure(bench: ModuleType, run: dict) -> None:
    assert set(run["scenarios"]) == {"no_drift", "sudden_shift"}
    for scenario, result in run["scenarios"].items():
        assert [w["window"] for w in result["windows"]] == list(range(6))
        for window in result["windows"]:
            assert {"ours", "any_ks"} <= set(window) and "evidently" not in window
            assert window["drifted"] == (scenario == "sudden_shift" and window["window"] >= 3)
            assert isinstance(window["ours"]["alarm"], bool) and isinstance(window["any_ks"]["alarm"], bool)
        summary = result["summary"]
        assert set(summary["rules"]) == {"ours", "any_ks"}
        assert summary["pre_windows"] == (6 if scenario == "no_drift" else 3)
    shift = run["scenarios"]["sudden_shift"]["summary"]["rules"]["ours"]
    assert {"false_alarm_rate", "delay", "post_alarm_share"} <= set(shift)
    summary = bench.aggregate([run], ["ours", "any_ks"])
    text = bench.table(summary, ["ours", "any_ks"], 1, 3)
    assert "no_drift" in text and "sudden_shift" in text
    assert bench.reading(summary, ["ours", "any_ks"], 1, 6, 3).startswith("Claim")


def test_no_drift_alarms_without_drift(run: dict) -> None:
    """No window without drift gets a data-drift signal from our rule.

    The full decision is not asserted alarm-free: its performance signal (F1 more than
    ``performance.max_drop`` below a baseline measured on the ~200-470 recent test rows, with no
    significance test) fires by chance on some no-drift windows; here on window 2 of
    sudden_shift. The benchmark reports those false alarms by signal; this test pins that
    they never come from the drift check."""
    windows = run["scenarios"]["no_drift"]["windows"] + [
        w for w in run["scenarios"]["sudden_shift"]["windows"] if not w["drifted"]]
    assert [w["window"] for w in windows if "data_drift" in w["ours"]["signals"]] == []
    assert max(w["ours"]["drifted_share"] for w in windows) < 0.1
    for w in windows:
        if w["ours"]["alarm"]:
            assert set(w["ours"]["signals"]) <= {"performance_degradation", "concept_drift"}


def test_sudden_shift_is_detected(run: dict) -> None:
    assert run["scenarios"]["sudden_shift"]["summary"]["rules"]["ours"]["delay"] == 0
