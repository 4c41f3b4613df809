"""Data-quality checks against the reference profile: each issue named, with its value and threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
from unit_helpers import build_config

from include.retraining.monitoring import quality
from include.retraining.monitoring.assessment import decide
from include.retraining.monitoring.drift import build_profile, summarize

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
