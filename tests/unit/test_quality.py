"""Data-quality checks against the reference profile: each issue named, with its value and threshold."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining.monitoring import quality
from include.retraining.monitoring.assessment import decide
from include.retraining.monitoring.calibration import calibrate
from include.retraining.monitoring.drift import build_profile, summarize
from include.retraining.monitoring.stats import natural_limit

CFG = build_config()
rng = np.random.default_rng(0)
REFERENCE = pd.DataFrame({"x1": rng.uniform(0, 1, 1000), "x2": rng.uniform(0, 1, 1000),
                          "c": rng.choice(["a", "b"], 1000)})
PROFILE = build_profile(REFERENCE, ["x1", "x2"], ["c"], bins=10)


def window(**changes) -> dict:
    """The summary of a 500-row window (what the check reads), with some columns replaced."""
    frame = pd.DataFrame({"x1": rng.uniform(0, 1, 500), "x2": rng.uniform(0, 1, 500), "c": rng.choice(["a", "b"], 500)})
    for col, values in changes.items():
        frame[col] = values
    return summarize(frame, PROFILE)


def test_a_clean_window_has_no_issues():
    out = quality.check(CFG, PROFILE, window())
    assert out == {"issues": [], "kinds": [], "blocking": False}


def test_a_feature_gone_missing_blocks():
    x1 = np.where(np.arange(500) < 300, np.nan, 0.5)  # 60% missing, the reference had none
    out = quality.check(CFG, PROFILE, window(x1=x1))
    assert out["kinds"] == ["missing_values"] and out["blocking"] is True
    issue = out["issues"][0]
    assert issue["feature"] == "x1" and issue["value"] == 0.6 and issue["threshold"] == 0.2
    assert "60% missing" in issue["text"]


def test_unseen_categories_and_out_of_range_values_are_recorded_but_do_not_block():
    c = np.where(np.arange(500) < 50, "z", "a")  # 10% a category the reference never had
    x2 = np.where(np.arange(500) < 40, 5.0, 0.5)  # 8% above the reference maximum
    out = quality.check(CFG, PROFILE, window(c=c, x2=x2))
    assert out["kinds"] == ["out_of_range", "unseen_categories"] and out["blocking"] is False
    by_kind = {i["kind"]: i for i in out["issues"]}
    assert by_kind["unseen_categories"]["value"] == 0.1 and by_kind["out_of_range"]["value"] == 0.08


def test_schema_change_is_recorded():
    out = quality.check(CFG, PROFILE, window(), {"added": ["x3"], "removed": []})
    assert out["kinds"] == ["schema_change"] and not out["blocking"]


def test_a_blocking_issue_is_its_own_decision():
    assessment = {"status": "ok", "champion": {"version": 1, "run_id": "r"},
                  "quality": quality.check(CFG, PROFILE, window(x1=np.full(500, np.nan))),
                  "drift": {"detected": True, "features": [], "drifted_features": [], "drifted_share": 1.0,
                            "share_threshold": 0.25, "max_psi": 3.0}}
    out = decide(CFG, assessment)
    assert out["decision"] == "data_quality" and out["retrain"] is False
    assert "x1 is 100% missing" in out["reason"]


# --- calibrated limits: the reference's own window-to-window variation ------------------------------

CUTOFF = datetime(2026, 3, 1, tzinfo=timezone.utc)
WINDOWS = 41  # six-hour windows of the training period


def swinging_history(seed: int = 3) -> pd.DataFrame:
    """41 six-hour windows of 400 rows; x1's missing rate swings between 1 % and 29 % from window to window
    (a feature the model imputes), x2 and c are complete."""
    rng = np.random.default_rng(seed)
    rates = np.clip(rng.uniform(0.01, 0.29, WINDOWS), 0.01, 0.29)
    rates[:2] = 0.01, 0.29  # both ends of the swing occur
    rates[-1] = 0.01  # the reference window (the last) had few missing
    parts = []
    for i, rate in enumerate(rates):
        start = pd.Timestamp(CUTOFF) - pd.Timedelta(hours=6 * (WINDOWS - i))
        x1 = rng.uniform(0, 1, 400)
        x1[rng.permutation(400)[: round(rate * 400)]] = np.nan
        parts.append(pd.DataFrame({"ts": start + pd.to_timedelta(np.sort(rng.uniform(0, 6, 400)), unit="h"),
                                   "x1": x1, "x2": rng.uniform(0, 1, 400), "c": rng.choice(["a", "b"], 400)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def calibrated_profile() -> dict:
    """A profile as prepare() writes it: the last window as the reference, calibrated on the whole period."""
    history = swinging_history()
    reference = history[history["ts"] >= pd.Timestamp(CUTOFF) - pd.Timedelta(hours=6)]
    profile = build_profile(reference, ["x1", "x2"], ["c"], bins=10)
    profile["calibration"] = calibrate(history, profile, "ts", CUTOFF, 6, 6)
    return profile


def missing_window(profile: dict, share: float, seed: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.uniform(0, 1, 500), "x2": rng.uniform(0, 1, 500), "c": rng.choice(["a", "b"], 500)})
    frame.loc[: round(share * 500) - 1, "x1"] = np.nan
    return summarize(frame, profile)


def test_a_missing_rate_within_its_natural_swing_does_not_block_when_calibrated(calibrated_profile):
    rates = calibrated_profile["calibration"]["features"]["x1"]["missing_rate"]
    assert len(rates) >= 30 and min(rates) < 0.03 and max(rates) > 0.27  # the swing is in the calibration
    ref_missing = calibrated_profile["numeric"]["x1"]["missing"] / calibrated_profile["rows"]
    window_29 = missing_window(calibrated_profile, 0.29)
    assert 0.29 - ref_missing > CFG.quality.max_missing_increase  # the increase condition alone would not save it

    calibrated = quality.check(CFG, calibrated_profile, window_29)
    assert calibrated["blocking"] is False and "missing_values" not in calibrated["kinds"]

    fixed = quality.check(build_config(quality={"threshold_mode": "fixed"}), calibrated_profile, window_29)
    assert fixed["kinds"] == ["missing_values"] and fixed["blocking"] is True
    issue = fixed["issues"][0]
    assert issue["feature"] == "x1" and issue["value"] == 0.29
    assert issue["threshold"] == 0.2 and issue["threshold_source"] == "fixed"
    assert issue["calibrated_threshold"] is None  # fixed mode does not read the calibration


def test_a_jump_far_beyond_the_natural_range_still_blocks_with_the_calibrated_limit(calibrated_profile):
    out = quality.check(CFG, calibrated_profile, missing_window(calibrated_profile, 0.8))
    assert out["kinds"] == ["missing_values"] and out["blocking"] is True
    issue = out["issues"][0]
    rates = calibrated_profile["calibration"]["features"]["x1"]["missing_rate"]
    limit = natural_limit(rates, CFG.quality.calibration_sd)
    assert 0.29 < limit < 0.8
    assert issue["threshold_source"] == "calibrated" and issue["threshold"] == pytest.approx(limit, abs=1e-6)
    assert issue["calibrated_threshold"] == issue["threshold"] and issue["fixed_threshold"] == 0.2
    assert "x1 is 80% missing" in issue["text"] and "calibrated limit" in issue["text"]
    # the k of the limit is quality.calibration_sd: at one sd the 29% window blocks again
    narrow = build_config(quality={"calibration_sd": 1.0})
    assert quality.check(narrow, calibrated_profile, missing_window(calibrated_profile, 0.29))["blocking"] is True


def test_a_profile_without_calibration_keeps_the_fixed_limits():
    out = quality.check(CFG, PROFILE, window(x1=np.where(np.arange(500) < 145, np.nan, 0.5)))  # 29% missing
    assert out["blocking"] is True
    assert out["issues"][0]["threshold"] == 0.2 and out["issues"][0]["threshold_source"] == "fixed"


def test_the_out_of_range_limit_is_calibrated_too():
    # x2 of the training period's windows: 2 to 10 % of its values beyond the reference's range
    shares = [0.02, 0.10, 0.04, 0.08, 0.06, 0.03, 0.09, 0.05]
    profile = {**PROFILE, "calibration": {"features": {"x2": {"out_of_range": shares}}}}
    x2 = np.where(np.arange(500) < 40, 5.0, 0.5)  # 8 % above the reference maximum
    assert quality.check(CFG, profile, window(x2=x2))["kinds"] == []
    fixed = quality.check(build_config(quality={"threshold_mode": "fixed"}), profile, window(x2=x2))
    assert fixed["kinds"] == ["out_of_range"] and fixed["issues"][0]["threshold"] == 0.05
    far = quality.check(CFG, profile, window(x2=np.where(np.arange(500) < 150, 5.0, 0.5)))  # 30 %
    issue = far["issues"][0]
    assert far["kinds"] == ["out_of_range"] and far["blocking"] is False
    assert issue["threshold_source"] == "calibrated"
    assert issue["threshold"] == pytest.approx(natural_limit(shares, 3.0), abs=1e-6)


# --- values no model can use ------------------------------------------------------------------------


def test_infinities_are_a_blocking_issue_naming_the_column_and_count():
    x2 = np.where(np.arange(500) < 3, np.inf, 0.5)
    x2[3] = -np.inf
    out = quality.check(CFG, PROFILE, window(x2=x2))
    assert out["kinds"] == ["non_finite_values"] and out["blocking"] is True  # 4 of 500: within the range limit
    issue = out["issues"][0]
    assert issue["feature"] == "x2" and issue["count"] == 4 and issue["value"] == 0.008 and issue["blocking"]
    assert issue["text"].startswith("x2 holds 4 infinite value(s)")
    decision = decide(CFG, {"status": "ok", "champion": {"version": 1, "run_id": "r"}, "quality": out,
                            "drift": {"detected": False, "features": []}})
    assert decision["decision"] == "data_quality" and "x2 holds 4 infinite value(s)" in decision["reason"]


def test_an_all_missing_feature_is_a_blocking_issue_of_its_own():
    out = quality.check(CFG, PROFILE, window(c=[None] * 500))
    assert out["kinds"] == ["all_missing"] and out["blocking"] is True  # not also missing_values
    issue = out["issues"][0]
    assert issue["feature"] == "c" and issue["value"] == 1.0 and issue["count"] == 500
    assert "c is 100% missing" in issue["text"] and "500 rows" in issue["text"]
    # in fixed mode as well, and for a numeric feature
    fixed = quality.check(build_config(quality={"threshold_mode": "fixed"}), PROFILE, window(x2=np.full(500, np.nan)))
    assert fixed["kinds"] == ["all_missing"] and fixed["issues"][0]["feature"] == "x2"


def test_an_empty_window_has_no_issues():
    empty = summarize(pd.DataFrame({"x1": [], "x2": [], "c": []}), PROFILE)
    assert quality.check(CFG, PROFILE, empty)["issues"] == []
