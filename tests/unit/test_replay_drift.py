"""Smoke run of benchmarks/replay_drift.py: a short replay (no Evidently, small champions) of every stream has
the documented structure, hands ``decide`` the earlier windows' evidence, our drift check flags no window
without drift, and a sudden shift and a large concentrated shift at once."""

from __future__ import annotations

from types import ModuleType
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from unit_helpers import load_benchmark

SCENARIOS = ("no_drift", "sudden_shift", "label_only", "concentrated", "weather")
DRIFTING = {"sudden_shift", "label_only", "concentrated"}
WINDOWS, DRIFT_AT = 6, 3


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("replay_drift")


@pytest.fixture(scope="module")
def traced(bench: ModuleType) -> tuple[dict, list[list[Any]]]:
    """The replay, and the ``history["sequential"]`` every ``decide`` call received."""
    from include.retraining.monitoring import assessment

    original, seen = assessment.decide, []

    def decide(cfg: Any, result: dict, **kwargs: Any) -> dict:
        seen.append(list((kwargs.get("history") or {}).get("sequential") or []))
        return original(cfg, result, **kwargs)

    with patch.object(assessment, "decide", decide):
        run = bench.replay(windows=WINDOWS, rows=1500, seed=0, drift_at=DRIFT_AT, scenarios=SCENARIOS,
                           evidently=False, lightgbm_params={"n_estimators": 60, "learning_rate": 0.1},
                           concentrated_shift=3.0, weather_history_days=3)
    return run, seen


@pytest.fixture(scope="module")
def run(traced: tuple[dict, list]) -> dict:
    return traced[0]


def test_structure(bench: ModuleType, run: dict) -> None:
    assert set(run["scenarios"]) == set(SCENARIOS)
    assert set(run["champions"]) == {"credit", "concentrated", "weather"}
    for scenario, result in run["scenarios"].items():
        assert [w["window"] for w in result["windows"]] == list(range(WINDOWS))
        for window in result["windows"]:
            assert {"ours", "any_ks"} <= set(window) and "evidently" not in window
            assert window["drifted"] == (scenario in DRIFTING and window["window"] >= DRIFT_AT)
            ours = window["ours"]
            assert isinstance(ours["alarm"], bool) and isinstance(window["any_ks"]["alarm"], bool)
            assert ours["drift_score"] >= 0 and ours["score_threshold"] > 0
            assert set(ours["features"]) == set(bench.STREAMS[bench.STREAM_OF[scenario]].features)
            assert ours["evidence"] and ours["accumulated"] and isinstance(ours["accumulated"]["alarm"], bool)
            assert ours["seconds"] > 0 and ours["drift_seconds"] > 0 and window["any_ks"]["seconds"] > 0
        summary = result["summary"]
        assert set(summary["rules"]) == {"ours", "any_ks"}
        assert summary["pre_windows"] == (DRIFT_AT if scenario in DRIFTING else WINDOWS)
        for rule in summary["rules"].values():
            assert ("within_2" in rule) == (scenario in DRIFTING)
    shift = run["scenarios"]["sudden_shift"]["summary"]["rules"]["ours"]
    assert {"false_alarm_rate", "delay", "within_2", "post_alarm_share"} <= set(shift)
    rules = ["ours", "any_ks"]
    summary = bench.aggregate([run], rules)
    text = bench.table(summary, rules, 1, DRIFT_AT)
    assert all(s in text for s in SCENARIOS) and "within 2" in text
    goals = bench.targets(summary, rules)
    assert [g["target"].split()[0] for g in goals] == ["false", "false", "false", "concentrated", "label_only"]
    assert "MISSED" in bench.targets_table(goals, rules) or "met" in bench.targets_table(goals, rules)
    times = bench.timing([run], rules)
    assert times["checks"] == WINDOWS * len(SCENARIOS) and set(times["mean_seconds"]) == {*rules, "ours_drift_check"}
    assert "load" in bench.timing_text(times, rules)
    assert bench.reading(summary, rules, 1, WINDOWS, DRIFT_AT).startswith("Claim")


def test_calibrated_profiles(run: dict) -> None:
    """Every champion's profile was calibrated as prepare does: windows of its history outside the reference."""
    for stream, champion in run["champions"].items():
        assert champion["calibration_windows"] >= 6, stream
        assert champion["calibration_excluded_reference"] is True, stream
    assert run["champions"]["weather"]["history_rows"] == 3 * 4 * 1500


def test_decide_gets_the_earlier_windows_evidence(traced: tuple[dict, list]) -> None:
    """Each window's decision sees the evidence of the scenario's earlier windows, oldest first."""
    run, seen = traced
    for scenario, result in run["scenarios"].items():
        evidence = [w["ours"]["evidence"] for w in result["windows"]]
        for w in range(WINDOWS):
            assert evidence[:w] in seen, (scenario, w)


def test_no_drift_alarms_without_drift(run: dict) -> None:
    """No window of the credit stream without drift gets a data-drift signal from our rule.

    The full decision is not asserted alarm-free: its performance and concept-drift signals (the
    champion's metric or error rate against its baseline, per window and accumulated over windows)
    can fire by chance on a no-drift window of a small champion. The benchmark reports those
    false alarms by signal; this test pins that they never come from the drift check."""
    windows = run["scenarios"]["no_drift"]["windows"] + [
        w for w in run["scenarios"]["sudden_shift"]["windows"] if not w["drifted"]]
    assert [w["window"] for w in windows if "data_drift" in w["ours"]["signals"]] == []
    assert max(w["ours"]["drifted_share"] for w in windows) < 0.1
    for w in windows:
        if w["ours"]["alarm"]:
            assert set(w["ours"]["signals"]) <= {"performance_degradation", "concept_drift"}


def test_sudden_shift_is_detected(run: dict) -> None:
    assert run["scenarios"]["sudden_shift"]["summary"]["rules"]["ours"]["delay"] == 0


def test_concentrated_shift_is_detected(bench: ModuleType, run: dict) -> None:
    """Three of 20 equally important features 3 sd off: the drift score crosses its threshold at once,
    driven by the shifted features; before the drift no feature's score does."""
    windows = run["scenarios"]["concentrated"]["windows"]
    assert run["scenarios"]["concentrated"]["summary"]["rules"]["ours"]["delay"] == 0
    for w in windows:
        ours = w["ours"]
        if w["drifted"]:
            assert ours["drift_detected"] and ours["drift_score"] >= ours["score_threshold"]
            assert set(bench.CONCENTRATED_SHIFTED) <= set(ours["drifted_features"])
        else:
            assert not ours["drift_detected"]


def test_weather_stream_wanders(bench: ModuleType) -> None:
    """The weather features' window means follow one AR(1) path through history and replay; the others stay."""
    options = bench.Options(weather_history_days=3)
    history = bench.history_frame(0, "weather", 400, options)
    windows = history.groupby(np.arange(len(history)) // 400)
    means = windows[bench.WEATHER_NUMERIC].mean()
    assert len(means) == 12
    assert means[bench.WEATHER].std().min() > 0.15
    assert means[bench.STEADY].std().max() < 0.1
    assert np.allclose(means[bench.WEATHER].iloc[-1], bench.weather_means(0, -1), atol=0.2)
    path = np.array([bench.weather_means(0, w) for w in range(-200, 200)])
    lag1 = np.mean([np.corrcoef(path[:-1, j], path[1:, j])[0, 1] for j in range(path.shape[1])])
    assert 0.8 < lag1 < 0.97
    assert abs(bench.window_frame(0, "weather", 0, 400, 3, options)["temperature"].mean()
               - bench.weather_means(0, 0)[0]) < 0.2


def test_saved_runs_are_pooled(bench: ModuleType, run: dict, tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    """``--from-json`` prints the tables of runs saved by separate processes (one seed each), pooled."""
    import copy
    import json

    args = {"windows": WINDOWS, "rows": 1500, "drift_at": DRIFT_AT, "reference_hours": 24,
            "concentrated_shift": 3.0, "weather_history_days": 3}
    files = []
    for seed in (0, 1):
        saved = copy.deepcopy(run)
        saved["seed"] = seed
        files.append(tmp_path / f"seed{seed}.json")
        files[-1].write_text(json.dumps({"args": args, "seconds": 1.0, "runs": [saved]}, default=float))
    pooled = tmp_path / "pooled.json"
    assert bench.main(["--from-json", *map(str, files), "--json", str(pooled)]) == 0
    out = capsys.readouterr().out
    assert "seeds 0, 1; 6 windows of 1500 rows" in out and "within 2" in out and "Mean wall time" in out
    payload = json.loads(pooled.read_text())
    assert payload["seeds"] == [0, 1] and len(payload["runs"]) == 2
    assert payload["summary"]["concentrated"]["rules"]["ours"]["delays"] == [0, 0]
    with pytest.raises(SystemExit):
        bench.main(["--from-json", str(files[0]), str(files[0])])  # the same seed twice
