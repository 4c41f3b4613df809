"""The skip-or-retrain decision (pure) from hand-built assessments."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from unit_helpers import build_config

from include.retraining.monitoring.assessment import SIGNAL_ORDER, _confidence, _severity, _signals, decide
from include.retraining.monitoring.drift import drift_score

CFG = build_config(gate={"primary_metric": "roc_auc"})  # share 0.25, max_drop 0.05, error +15%


def feature(name: str, statistic: float, drifted: bool, importance: float = 0.25) -> dict[str, Any]:
    """A feature result as drift.check gives it: a PSI of ``statistic`` against a 0.2 threshold."""
    return {"feature": name, "kind": "numeric", "method": "psi", "kind_of_statistic": "distance",
            "statistic": statistic, "threshold": 0.2, "p_adjusted": None, "drifted": drifted,
            "strength": round(statistic / 0.2, 4), "importance": importance, "psi": statistic}


def assessment(
    *,
    drifted: dict[str, float] | None = None,
    quiet: dict[str, float] | None = None,
    drop: float | None = 0.0,
    error_increase: float | None = 0.0,
    champion: bool = True,
) -> dict[str, Any]:
    drifted = drifted or {}
    quiet = quiet if quiet is not None else {"q1": 0.01, "q2": 0.02, "q3": 0.03}
    features = [feature(n, s, True) for n, s in drifted.items()] + [feature(n, s, False) for n, s in quiet.items()]
    share = len(drifted) / len(features)
    score = drift_score(features, 4.0)
    return {
        "status": "ok",
        "rows": 1000,
        "labelled_rows": 800,
        "champion": {"version": 3, "run_id": "abc"} if champion else None,
        "drift": {
            "detected": score >= 0.25,
            "drift_score": round(score, 4),
            "score_threshold": 0.25,
            "drifted_features": sorted(drifted, key=lambda n: -drifted[n]),
            "drifted_share": round(share, 4),
            "share_threshold": 0.25,
            "unweighted_share": round(share, 4),
            "importance_weighted": True,
            "max_psi": max([f["statistic"] for f in features], default=0.0),
            "features": features,
        },
        "performance": {
            "metric": "roc_auc",
            "current": {"roc_auc": 0.8 - (drop or 0.0)},
            "baseline": {"roc_auc": 0.8},
            "drop": drop,
            "max_drop": 0.05,
            "error_increase": error_increase,
            "max_error_increase": 0.15,
        },
    }


# --- insufficient data and the first model -------------------------------------------------------


def test_insufficient_data() -> None:
    verdict = {"status": "insufficient_data", "reason": "only 12 labelled rows", "champion": None}
    for kwargs in ({}, {"force": True}, {"run_type": "manual"}, {"check_only": True}):
        assert decide(CFG, verdict, **kwargs) == {
            "decision": "insufficient_data",
            "retrain": False,
            "trigger_type": "none",
            "severity": "low",
            "confidence": 1.0,
            "reason": "only 12 labelled rows",
        }


@pytest.mark.parametrize(("run_type", "trigger"), [("scheduled", "scheduled"), ("manual", "manual"),
                                                    ("asset_triggered", "scheduled")])
def test_no_champion_retrains(run_type: str, trigger: str) -> None:
    result = decide(CFG, {"status": "ok", "champion": None, "rows": 900, "labelled_rows": 900}, run_type=run_type)
    assert result["decision"] == "retrain" and result["retrain"] is True and result["would_retrain"] is True
    assert result["trigger_type"] == trigger
    assert result["severity"] == "low"
    assert result["signals"] == []
    assert result["confidence"] == 1.0  # no drift measured: share 0
    assert result["reason"] == "no champion registered for 'unit_model' yet: train a first model"


def test_no_champion_on_a_check_only_or_backfill_run() -> None:
    base = {"status": "ok", "champion": None}
    check = decide(CFG, base, check_only=True)
    assert (check["decision"], check["retrain"], check["would_retrain"]) == ("check_only", False, True)
    assert check["reason"].endswith("(check-only run; would retrain)")
    backfill = decide(CFG, base, run_type="backfill")
    assert (backfill["decision"], backfill["retrain"], backfill["would_retrain"]) == ("check_only", False, True)
    assert backfill["trigger_type"] == "scheduled"
    assert backfill["reason"].endswith("(backfill runs replay the check and never retrain or deploy; would retrain)")


# --- champion present ----------------------------------------------------------------------------


def test_no_signal_skips() -> None:
    a = assessment(drifted={}, quiet={"a": 0.25, "b": 0.01, "c": 0.0, "d": 0.1})
    a["drift"]["drifted_share"] = a["drift"]["drift_score"] = 0.125  # 1/8 features over, below the 0.25 score
    a["drift"]["drifted_features"] = ["a"]
    a["drift"]["features"] += [feature(f"e{i}", 0.0, False) for i in range(4)]
    result = decide(CFG, a)
    assert result == {
        "trigger_type": "none",
        "severity": "low",
        "confidence": 0.75,  # 1 - (0.125 / 0.25) / 2
        "signals": [],
        "would_retrain": False,
        "accumulated": None,
        "harm": None,
        "drift_action": None,
        "calibration_status": None,
        "decision": "skip",
        "retrain": False,
        "reason": "no drift: 1/8 features drifted, carrying 12% of the importance, drift score 0.12 (< 0.25) "
                  "(a PSI 0.250 (>= 0.2, importance 25%)); performance within bounds",
    }


def test_data_drift_retrains() -> None:
    # 2 of 5 features at 1.25x and 1.5x the PSI threshold; the window's performance unmeasured: today's rule
    a = assessment(drifted={"a": 0.25, "b": 0.3}, drop=None, error_increase=None)
    result = decide(CFG, a)
    assert result["harm"] == "unmeasured"
    assert result["decision"] == "retrain" and result["retrain"] is True
    assert result["trigger_type"] == "data_drift"
    assert result["signals"] == ["data_drift"]
    assert result["severity"] == "medium"
    strength = ((0.25 * 1.25 + 0.25 * 1.5) / 0.25) ** 0.5  # sqrt of the drift score (importance x strength) over its threshold
    assert result["confidence"] == pytest.approx(0.45 + 0.15 + 0.1 * (strength - 1), abs=1e-3)
    assert result["reason"] == (
        "data drift in 2/5 features carrying 40% of the champion's feature importance, drift score 0.69 (>= 0.25): "
        "b PSI 0.300 (>= 0.2, importance 25%); a PSI 0.250 (>= 0.2, importance 25%)"
    )


def test_performance_degradation_and_concept_drift() -> None:
    perf = decide(CFG, assessment(drop=0.1))
    assert perf["trigger_type"] == "performance_degradation" and perf["retrain"] is True
    assert perf["severity"] == "high"  # 0.1 / 0.05 = 2x
    assert perf["reason"] == "roc_auc fell from 0.8000 at deployment to 0.7000 (drop 0.1000 > 0.05)"
    concept = decide(CFG, assessment(error_increase=0.3))
    assert concept["trigger_type"] == "concept_drift"
    assert concept["reason"] == "the champion's error rate rose 30% against deployment (threshold 15%)"


def test_thresholds_are_strict_for_performance_signals() -> None:
    at_limit = decide(CFG, assessment(drop=0.05, error_increase=0.15))
    assert at_limit["decision"] == "skip" and at_limit["signals"] == []
    unknown = decide(CFG, assessment(drop=None, error_increase=None))
    assert unknown["decision"] == "skip"


def test_signals_come_in_a_fixed_order_and_the_first_is_the_trigger() -> None:
    a = assessment(drifted={"a": 0.3}, drop=0.06, error_increase=0.2)
    result = decide(CFG, a)
    assert result["signals"] == ["data_drift", "performance_degradation", "concept_drift"] == list(SIGNAL_ORDER)
    assert result["trigger_type"] == "data_drift"
    assert result["severity"] == "critical"
    assert result["reason"] == (
        "data drift in 1/4 features carrying 25% of the champion's feature importance, drift score 0.38 (>= 0.25): "
        "a PSI 0.300 (>= 0.2, importance 25%); "
        "roc_auc fell from 0.8000 at deployment to 0.7400 (drop 0.0600 > 0.05); "
        "the champion's error rate rose 20% against deployment (threshold 15%)"
    )
    only_perf = decide(CFG, assessment(drop=0.06, error_increase=0.2))
    assert only_perf["trigger_type"] == "performance_degradation"
    assert only_perf["signals"] == ["performance_degradation", "concept_drift"]


def test_force_retrains_as_manual() -> None:
    quiet = assessment()
    forced = decide(CFG, quiet, force=True, run_type="manual", manual_reason="new features")
    assert forced["decision"] == "retrain" and forced["retrain"] is True
    assert forced["trigger_type"] == "manual"
    assert forced["reason"] == "retraining forced by the trigger: new features"
    assert decide(CFG, quiet, force=True)["reason"] == "retraining forced by the trigger"
    # a real signal stays the trigger type when forcing too
    assert decide(CFG, assessment(drifted={"a": 0.3}), force=True)["trigger_type"] == "data_drift"


def test_check_only_and_backfill_never_retrain() -> None:
    drifting = assessment(drifted={"a": 0.3}, drop=None, error_increase=None)
    check = decide(CFG, drifting, check_only=True)
    assert check["decision"] == "check_only" and check["retrain"] is False
    assert check["would_retrain"] is True and check["trigger_type"] == "data_drift"
    assert check["reason"].endswith("(check-only run; would retrain)")
    quiet = decide(CFG, assessment(), run_type="backfill")
    assert quiet["decision"] == "check_only" and quiet["would_retrain"] is False
    assert quiet["reason"].endswith("would skip)")
    forced = decide(CFG, assessment(), run_type="backfill", force=True)
    assert forced["decision"] == "check_only" and forced["retrain"] is False and forced["would_retrain"] is True


def test_decide_is_pure() -> None:
    a = assessment(drifted={"a": 0.3}, drop=0.06)
    before = copy.deepcopy(a)
    assert decide(CFG, a) == decide(CFG, a)
    assert a == before


# --- severity and confidence ---------------------------------------------------------------------


def sig(*strengths: float) -> list[tuple[str, float, str]]:
    return [(SIGNAL_ORDER[i], s, "") for i, s in enumerate(strengths)]


@pytest.mark.parametrize(
    ("strengths", "severity"),
    [
        ((), "low"),
        ((1.5,), "medium"),
        ((1.99,), "medium"),
        ((2.0,), "high"),
        ((1.1, 1.2), "high"),
        ((1.1, 2.99), "high"),
        ((1.1, 3.0), "critical"),
        ((1.01, 1.01, 1.01), "critical"),
    ],
)
def test_severity_levels(strengths: tuple[float, ...], severity: str) -> None:
    assert _severity(sig(*strengths)) == severity


def test_confidence_known_answers() -> None:
    assert _confidence(sig(1.5), {}) == pytest.approx(0.65)
    assert _confidence(sig(10.0), {}) == pytest.approx(0.8)  # strength counts up to 3x
    assert _confidence(sig(1.2, 1.4), {}) == pytest.approx(0.45 + 0.30 + 0.04)
    assert _confidence(sig(4.0, 4.0, 4.0), {}) == 0.99  # capped
    # without signals: the further below the share threshold, the surer the skip (at least 0.5)
    assert _confidence([], {"drift": {"drifted_share": 0.0, "share_threshold": 0.25}}) == 1.0
    assert _confidence([], {"drift": {"drifted_share": 0.2, "share_threshold": 0.25}}) == pytest.approx(0.6)
    assert _confidence([], {"drift": {"drifted_share": 0.25, "share_threshold": 0.25}}) == 0.5


def test_signal_strength_is_a_multiple_of_its_threshold() -> None:
    signals = _signals(CFG, assessment(drifted={"a": 0.5}, drop=0.1, error_increase=0.45))
    assert [(name, pytest.approx(strength)) for name, strength, _ in signals] == [
        # importance 0.25 x strength 2.5 = score 0.625, over its 0.25 threshold: sqrt(2.5)
        ("data_drift", pytest.approx(2.5 ** 0.5, abs=1e-4)),
        ("performance_degradation", pytest.approx(2.0)),
        ("concept_drift", pytest.approx(3.0)),
    ]
    assert _signals(CFG, {"status": "ok", "champion": None}) == []


def test_a_schema_change_since_the_champion_retrains_and_says_which_features() -> None:
    from include.retraining.config import load_config
    from include.retraining.monitoring.assessment import decide

    cfg = load_config()
    assessment = {
        "status": "ok",
        "champion": {"version": 3, "run_id": "r"},
        "schema_changes": {"added": ["new_feature"], "removed": ["region"]},
        "drift": {"detected": False, "features": [], "drifted_features": [], "drifted_share": 0.0,
                  "share_threshold": 0.25, "max_psi": 0.0},
        "performance": None,
    }
    out = decide(cfg, assessment)
    assert out["decision"] == "retrain" and out["trigger_type"] == "data_drift"
    assert "new_feature" in out["reason"] and "region" in out["reason"]


def test_error_rate_p_value_known_answers() -> None:
    from include.retraining.monitoring.assessment import error_rate_p_value

    # pooled p = 0.25, se = sqrt(.25*.75*(1/1000+1/1000)) = 0.019365; z = 0.1/0.019365 = 5.164
    assert error_rate_p_value(0.2, 1000, 0.3, 1000) == pytest.approx(1.2e-7, rel=0.05)
    assert error_rate_p_value(0.2, 1000, 0.2, 1000) == pytest.approx(0.5)
    assert error_rate_p_value(0.3, 1000, 0.2, 1000) > 0.99


def test_a_noisy_error_increase_is_not_concept_drift() -> None:
    from include.retraining.config import load_config
    from include.retraining.monitoring.assessment import decide

    cfg = load_config()
    perf = {"metric": "roc_auc", "current": {"roc_auc": 0.83, "accuracy": 0.77},
            "baseline": {"roc_auc": 0.83, "accuracy": 0.80}, "drop": 0.0, "error_increase": 0.16}
    quiet_drift = {"detected": False, "features": [], "drifted_features": [], "drifted_share": 0.0,
                   "share_threshold": 0.25, "max_psi": 0.01}
    base = {"status": "ok", "champion": {"version": 1, "run_id": "r"}, "drift": quiet_drift}
    noisy = decide(cfg, {**base, "performance": {**perf, "error_increase_p_value": 0.07}})
    assert noisy["decision"] == "skip"
    real = decide(cfg, {**base, "performance": {**perf, "error_increase_p_value": 0.001}})
    assert real["decision"] == "retrain" and real["trigger_type"] == "concept_drift"
    assert "p = 0.001" in real["reason"]


def test_a_performance_drop_within_the_noise_does_not_retrain() -> None:
    """The drop must exceed max_drop AND be unlikely under the baseline's and the window's noise."""
    noisy = assessment(drop=0.06)
    noisy["performance"]["drop_p_value"] = 0.08  # e.g. a baseline measured on a few hundred rows
    assert decide(CFG, noisy)["decision"] == "skip"
    clear = assessment(drop=0.06)
    clear["performance"]["drop_p_value"] = 0.001
    result = decide(CFG, clear)
    assert result["decision"] == "retrain" and result["trigger_type"] == "performance_degradation"
    assert "p = 0.001" in result["reason"]


# --- drift that matters: data drift judged on evidence of harm ----------------------------------------


def with_action(action: str) -> Any:
    return build_config(gate={"primary_metric": "roc_auc"}, drift={"action": action})


def estimate(drop: float, metric: str = "f1") -> dict[str, Any]:
    return {"metric": metric, "current": {metric: 0.7 - drop, "rows": 1000.0}, "baseline": {metric: 0.7},
            "drop": drop, "max_drop": 0.05}


def test_drift_without_measurable_harm_is_recorded_by_default() -> None:
    """Labels show the champion within bounds: the drift is recorded, no retraining, unless the label-free
    estimate predicts a drop (the default action), and it never meets storm control."""
    a = assessment(drifted={"a": 0.3, "b": 0.3})
    result = decide(CFG, a, history={"hours_since_last_retrain": 1.0, "retrains_last_week": 99})
    assert result["decision"] == "skip" and result["retrain"] is False and result["would_retrain"] is False
    assert result["harm"] == "none_measured" and result["drift_action"] == "retrain_if_estimated_drop"
    assert result["trigger_type"] == "data_drift" and result["signals"] == ["data_drift"]  # what was seen stays
    assert result["severity"] == "low"
    assert result["reason"].startswith("data drift without measurable harm: data drift in 2/5 features")
    assert "the champion's roc_auc stayed at 0.8000 (as at deployment) on" not in result["reason"]  # no rows given
    assert "roc_auc stayed at 0.8000 (as at deployment), within bounds (performance.max_drop 0.05)" in result["reason"]
    assert "no label-free estimate" in result["reason"] and "no retraining" in result["reason"]
    quiet_estimate = decide(CFG, {**a, "estimated": estimate(0.01)})
    assert quiet_estimate["decision"] == "skip"
    assert "the label-free estimate of f1 fell from 0.7000 at deployment to 0.6900, a predicted drop of 0.0100 " \
           "<= performance.max_estimated_drop 0.05" in quiet_estimate["reason"]
    predicted = decide(CFG, {**a, "estimated": estimate(0.08)})
    assert predicted["decision"] == "retrain" and predicted["harm"] == "none_measured"
    assert "a predicted drop of 0.0800 > performance.max_estimated_drop 0.05: retrain" in predicted["reason"]


def test_drift_action_retrain_and_record() -> None:
    a = {**assessment(drifted={"a": 0.3, "b": 0.3}), "estimated": estimate(0.08)}
    today = decide(with_action("retrain"), a)
    assert today["decision"] == "retrain" and today["harm"] == "none_measured"
    assert today["severity"] == "medium" and today["reason"].endswith("drift.action is retrain")
    recorded = decide(with_action("record"), a)
    assert recorded["decision"] == "skip" and recorded["reason"].endswith("recorded, no retraining (drift.action record)")
    # a check-only run says what it would do
    assert decide(with_action("record"), a, check_only=True)["reason"].endswith("would skip)")


def test_drift_with_harm_or_without_a_measurement_retrains_whatever_the_action() -> None:
    record = with_action("record")
    harmed = decide(record, assessment(drifted={"a": 0.3}, drop=0.1))
    assert harmed["decision"] == "retrain" and harmed["harm"] == "measured"
    assert harmed["signals"] == ["data_drift", "performance_degradation"]
    unmeasured = decide(record, assessment(drifted={"a": 0.3}, drop=None, error_increase=None))
    assert unmeasured["decision"] == "retrain" and unmeasured["harm"] == "unmeasured"
    # before the labels: data drift and a predicted drop act early, as before
    early = {**assessment(drifted={"a": 0.3}), "performance": None, "before_labels": True, "estimated": estimate(0.08)}
    acted = decide(record, early)
    assert acted["decision"] == "retrain" and acted["harm"] == "estimated"
    assert acted["signals"] == ["data_drift", "performance_degradation"]
    # a schema change is never harmless drift
    schema = {**assessment(drifted={"a": 0.3}), "schema_changes": {"added": ["z"], "removed": []}}
    assert decide(record, schema)["decision"] == "retrain"


def test_accumulated_evidence_of_harm_makes_drift_act() -> None:
    strong = {"error": {"d": 0.017, "se": 0.01, "se0": 0.001, "min_effect": 0.0}}
    a = assessment(drifted={"a": 0.3})
    a["performance"]["evidence"] = strong
    cfg = build_config(gate={"primary_metric": "roc_auc"}, performance={"sequential_burn_in": 0},
                       drift={"action": "record"})
    pooled = decide(cfg, a, history={"sequential": [strong, strong]})
    assert pooled["harm"] == "measured" and pooled["decision"] == "retrain"
    assert "net of" not in pooled["reason"]  # no label-free expectation on this window
    assert decide(cfg, a, history={"sequential": []})["decision"] == "skip"


# --- reasons that tell the truth -----------------------------------------------------------------------


def test_a_net_of_expected_degradation_says_the_metric_rose_and_what_the_inputs_predicted() -> None:
    a = assessment(drop=0.6349 - 0.7004)
    a["performance"].update({"baseline": {"roc_auc": 0.6349}, "current": {"roc_auc": 0.7004},
                             "expected_drop": 0.6349 - 0.76, "drop_p_value": 0.001})
    result = decide(CFG, a)
    assert result["trigger_type"] == "performance_degradation"
    assert result["reason"] == ("roc_auc rose from 0.6349 at deployment to 0.7004, but the inputs predicted 0.7600: "
                                "0.0596 short (net drop 0.0596 > 0.05, p = 0.001)")
    assert "fell" not in result["reason"]


def test_an_error_metric_that_fell_less_than_predicted_is_not_called_a_rise() -> None:
    cfg = build_config(gate={"primary_metric": "rmse"})
    a = assessment()
    # rmse 10 -> 9 (relative drop -0.1), the inputs predicted 7 (expected drop -0.3): 20% of 10 worse than predicted
    a["performance"] = {"metric": "rmse", "baseline": {"rmse": 10.0}, "current": {"rmse": 9.0}, "drop": -0.1,
                        "expected_drop": -0.3, "max_drop": 0.05}
    result = decide(cfg, a)
    assert result["reason"] == ("rmse fell from 10.0000 at deployment to 9.0000, but the inputs predicted 7.0000: "
                                "20.0% of its deployment value worse (net rise 20.0% > 5.0%)")
    plain = assessment()
    plain["performance"] = {"metric": "rmse", "baseline": {"rmse": 10.0}, "current": {"rmse": 12.0}, "drop": 0.2,
                            "max_drop": 0.05}
    assert decide(cfg, plain)["reason"] == "rmse rose from 10.0000 at deployment to 12.0000 (up 20.0% > 5.0%)"


def test_concept_drift_net_of_expected_states_the_raw_direction() -> None:
    a = assessment()
    a["performance"].update({"error_increase": 0.2667, "error_increase_p_value": 0.002, "error_rate": 0.28,
                             "baseline_error_rate": 0.30, "expected_error": 0.20, "expected_baseline_error": 0.30})
    result = decide(CFG, a)
    assert result["trigger_type"] == "concept_drift"
    assert result["reason"] == (
        "the champion's error rate fell from 0.3000 at deployment to 0.2800 while what its calibrated confidence "
        "expects for these rows went from 0.3000 (its holdout at deployment) to 0.2000: 27% of its deployment "
        "error rate beyond that expectation (threshold 15%, p = 0.002)")
    raw = assessment()
    raw["performance"].update({"error_increase": 0.3, "error_rate": 0.26, "baseline_error_rate": 0.2})
    assert decide(CFG, raw)["reason"] == ("the champion's error rate rose from 0.2000 at deployment to 0.2600 "
                                          "(+30%, threshold 15%)")


def test_an_estimated_drop_before_labels_states_its_direction() -> None:
    early = {**assessment(drifted={"a": 0.3}), "performance": None, "before_labels": True,
             "estimated": estimate(0.08)}
    reason = decide(CFG, early)["reason"]
    assert "estimated f1 (label-free, from the champion's calibrated probabilities on 1000 rows) fell from 0.7000 " \
           "at deployment to 0.6200 (drop 0.0800 > 0.05)" in reason


def test_no_drift_reason_does_not_claim_an_unmeasured_performance_within_bounds() -> None:
    from include.retraining.monitoring.assessment import no_drift_reason

    a = assessment()
    assert no_drift_reason(a).endswith("; performance within bounds")
    assert no_drift_reason({**a, "performance": None}).endswith("; performance not measured")


# --- the drift thresholds' calibration in the reason ----------------------------------------------------


def test_weak_or_uncalibrated_thresholds_are_named_with_the_drift() -> None:
    a = assessment(drifted={"a": 0.3}, drop=None, error_increase=None)
    a["drift"]["calibration"] = {"status": "uncalibrated", "note": "only 2 windows of history"}
    result = decide(CFG, a)
    assert result["calibration_status"] == "uncalibrated"
    assert "a PSI 0.300 (>= 0.2, importance 25%) (drift thresholds uncalibrated: only 2 windows of history)" \
        in result["reason"]
    a["drift"]["calibration"] = {"status": "weak", "note": "thresholds weak: 4 windows, a prior"}
    assert result["reason"] != decide(CFG, a)["reason"]
    assert "(drift thresholds weakly calibrated: thresholds weak: 4 windows, a prior)" in decide(CFG, a)["reason"]
    a["drift"]["calibration"] = {"status": "calibrated", "note": "60 windows"}
    calibrated = decide(CFG, a)
    assert calibrated["calibration_status"] == "calibrated" and "60 windows" not in calibrated["reason"]
    # no drift named: no note, the status is still recorded
    quiet = assessment()
    quiet["drift"]["calibration"] = {"status": "uncalibrated", "note": "only 2 windows of history"}
    skip = decide(CFG, quiet)
    assert skip["calibration_status"] == "uncalibrated" and "uncalibrated" not in skip["reason"]
    assert decide(CFG, {**quiet, "drift": {**quiet["drift"], "calibration": "bad"}})["calibration_status"] is None


def test_a_predicted_rise_is_not_called_a_drop() -> None:
    rise = decide(CFG, {**assessment(drifted={"a": 0.3, "b": 0.3}), "estimated": estimate(-0.14)})
    assert rise["decision"] == "skip"
    assert "the label-free estimate of f1 rose from 0.7000 at deployment to 0.8400, no predicted drop: recorded" \
        in rise["reason"]
