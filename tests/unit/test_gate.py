"""The evaluation gate: absolute, no-regression and improvement criteria, with hand-picked numbers.

Values are chosen to be exact in binary floating point (halves, quarters, eighths) where a
test sits on a bound, so that ``>=`` is what is being tested, not rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from unit_helpers import build_config

from include.retraining.release.gate import evaluate, judge


def gate_config(task: str = "binary", **gate: object):
    return build_config(model={"task": task}, gate=gate)


CFG = gate_config(
    primary_metric="roc_auc",
    min_improvement=0.125,
    max_regression={"f1": 0.125, "roc_auc": 0.0625},
    min_absolute={"precision": 0.5, "recall": 0.5},
)
GOOD = {"precision": 0.75, "recall": 0.75, "f1": 0.75, "roc_auc": 0.875, "accuracy": 0.75}
CHAMP = {"precision": 0.75, "recall": 0.75, "f1": 0.75, "roc_auc": 0.75, "accuracy": 0.75}


def by_name(verdict: dict) -> dict[str, dict]:
    return {f"{c['criterion']}:{c['metric']}": c for c in verdict["criteria"]}


# --- no champion ---------------------------------------------------------------------------------


def test_no_champion_applies_only_absolute_criteria() -> None:
    weak_but_above_minimum = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "roc_auc": 0.5}
    verdict = judge(CFG, weak_but_above_minimum, None, None, None)
    assert verdict["passed"] is True
    assert [c["criterion"] for c in verdict["criteria"]] == ["absolute", "absolute"]
    assert verdict["reasons"] == ["no champion yet: absolute criteria passed"]
    assert verdict["failed"] == []
    precision = by_name(verdict)["absolute:precision"]
    assert precision == {
        "criterion": "absolute", "metric": "precision", "slice": "out_of_time", "candidate": 0.5, "champion": None,
        "threshold": 0.5, "passed": True,
    }


def test_no_champion_fails_below_an_absolute_minimum() -> None:
    verdict = judge(CFG, {**GOOD, "recall": 0.375}, None, None, None)
    assert verdict["passed"] is False
    assert verdict["failed"] == ["absolute:recall"]
    assert verdict["reasons"] == ["recall 0.3750 is below the required 0.5000"]


def test_absolute_criteria_skip_metrics_the_task_does_not_have_but_fail_on_missing_values() -> None:
    # a regression model has no precision/recall: such minimums do not apply to it
    reg = gate_config("regression", min_absolute={"precision": 0.85, "recall": 0.80})
    verdict = judge(reg, {"r2": 0.1, "rmse": 3.0, "mae": 2.0}, None, None, None)
    assert verdict["criteria"] == [] and verdict["passed"] is True
    # its default minimum is R2 > 0
    default = judge(gate_config("regression"), {"r2": -0.1, "rmse": 3.0, "mae": 2.0}, None, None, None)
    assert default["failed"] == ["absolute:r2"]
    # a metric that could not be computed (NaN -> None) fails its minimum
    verdict = judge(gate_config(min_absolute={"roc_auc": 0.5}), {"roc_auc": None, "f1": 0.9}, None, None, None)
    assert verdict["passed"] is False
    assert verdict["reasons"] == ["roc_auc n/a is below the required 0.5000"]


def test_absolute_maximum_for_a_lower_is_better_metric() -> None:
    reg = gate_config("regression", min_absolute={"rmse": 2.0})
    assert judge(reg, {"rmse": 1.5, "r2": 0.5}, None, None, None)["passed"] is True
    assert judge(reg, {"rmse": 2.5, "r2": 0.5}, None, None, None)["failed"] == ["absolute:rmse"]


# --- with a champion -----------------------------------------------------------------------------


def test_all_criteria_pass() -> None:
    verdict = judge(CFG, GOOD, CHAMP, None, None)
    assert verdict["passed"] is True
    assert list(by_name(verdict)) == [
        "absolute:precision", "absolute:recall", "no_regression:f1", "no_regression:roc_auc", "improvement:roc_auc",
    ]
    assert verdict["reasons"] == ["all criteria passed"]
    improvement = by_name(verdict)["improvement:roc_auc"]
    assert improvement["threshold"] == 0.875  # 0.75 + 0.125, absolute for AUC
    assert (improvement["candidate"], improvement["champion"], improvement["slice"]) == (0.875, 0.75, "out_of_time")


def test_regression_tolerance() -> None:
    # champion f1 0.75, tolerance 0.125: bound 0.625 (inclusive)
    at_bound = judge(CFG, {**GOOD, "f1": 0.625}, CHAMP, None, None)
    assert by_name(at_bound)["no_regression:f1"]["passed"] is True
    assert by_name(at_bound)["no_regression:f1"]["threshold"] == 0.625
    below = judge(CFG, {**GOOD, "f1": 0.5}, CHAMP, None, None)
    assert below["passed"] is False
    assert below["failed"] == ["no_regression:f1"]
    assert below["reasons"] == ["f1 0.5000 regresses against the champion's 0.7500 (allowed bound 0.6250)"]


def test_regression_tolerance_for_a_lower_is_better_metric() -> None:
    reg = gate_config("regression", primary_metric="r2", min_improvement=0.0, max_regression={"rmse": 0.5},
                      min_absolute={})
    champ = {"r2": 0.5, "rmse": 2.0, "mae": 1.0}
    ok = judge(reg, {"r2": 0.5, "rmse": 2.5, "mae": 1.0}, champ, None, None)
    assert by_name(ok)["no_regression:rmse"]["threshold"] == 2.5 and ok["passed"] is True
    worse = judge(reg, {"r2": 0.5, "rmse": 2.75, "mae": 1.0}, champ, None, None)
    assert worse["failed"] == ["no_regression:rmse"]


def test_regression_criterion_skipped_when_either_value_is_missing() -> None:
    verdict = judge(CFG, {**GOOD, "f1": None}, {**CHAMP, "roc_auc": None}, None, None)
    names = by_name(verdict)
    assert "no_regression:f1" not in names and "no_regression:roc_auc" not in names
    # ...but the improvement criterion cannot be judged without the champion's value: it fails
    assert names["improvement:roc_auc"]["passed"] is False
    assert names["improvement:roc_auc"]["threshold"] is None
    assert verdict["reasons"] == [
        "roc_auc on the out-of-time rows 0.8750 does not beat the champion's n/a by the required margin (needs n/a)"
    ]


def test_improvement_margin_is_absolute_for_bounded_metrics() -> None:
    just_short = judge(CFG, {**GOOD, "roc_auc": 0.8125}, CHAMP, None, None)  # needs 0.75 + 0.125
    assert just_short["failed"] == ["improvement:roc_auc"]
    assert just_short["reasons"] == [
        "roc_auc on the out-of-time rows 0.8125 does not beat the champion's 0.7500 by the required margin (needs 0.8750)"
    ]
    equal = judge(CFG, {**GOOD, "roc_auc": 0.75}, CHAMP, None, None)
    assert equal["passed"] is False  # an equal model is not an improvement
    zero_margin = gate_config(primary_metric="roc_auc", min_improvement=0.0, min_absolute={})
    assert judge(zero_margin, {**GOOD, "roc_auc": 0.75}, CHAMP, None, None)["passed"] is True


@pytest.mark.parametrize(("metric", "candidate", "passed"), [("rmse", 1.75, True), ("rmse", 1.875, False),
                                                              ("mae", 0.875, True), ("mae", 0.9375, False)])
def test_improvement_margin_is_relative_for_rmse_and_mae(metric: str, candidate: float, passed: bool) -> None:
    # margin 0.125 = 12.5% lower: rmse 2.0 -> needs <= 1.75, mae 1.0 -> needs <= 0.875
    reg = gate_config("regression", primary_metric=metric, min_improvement=0.125, max_regression={}, min_absolute={})
    champ = {"r2": 0.5, "rmse": 2.0, "mae": 1.0}
    verdict = judge(reg, {**champ, metric: candidate}, champ, None, None)
    assert verdict["passed"] is passed
    assert by_name(verdict)[f"improvement:{metric}"]["threshold"] == champ[metric] * (1 - 0.125)


def test_rmse_margin_is_not_an_absolute_one() -> None:
    reg = gate_config("regression", primary_metric="rmse", min_improvement=0.125, max_regression={}, min_absolute={})
    champ = {"r2": 0.5, "rmse": 2.0, "mae": 1.0}
    # 1.8 is more than 0.125 below 2.0 in absolute terms, but only 10% lower
    assert judge(reg, {**champ, "rmse": 1.8}, champ, None, None)["passed"] is False


def test_improvement_on_r2_is_absolute() -> None:
    reg = gate_config("regression", min_improvement=0.125, max_regression={}, min_absolute={})
    champ = {"r2": 0.5, "rmse": 2.0, "mae": 1.0}
    assert reg.primary_metric == "r2"
    assert by_name(judge(reg, {**champ, "r2": 0.625}, champ, None, None))["improvement:r2"]["threshold"] == 0.625
    assert judge(reg, {**champ, "r2": 0.625}, champ, None, None)["passed"] is True
    assert judge(reg, {**champ, "r2": 0.5625}, champ, None, None)["passed"] is False


def test_every_criterion_is_judged_on_the_out_of_time_rows() -> None:
    verdict = judge(CFG, GOOD, CHAMP)
    assert {c["slice"] for c in verdict["criteria"]} == {"out_of_time"}
    worse = judge(CFG, {**GOOD, "roc_auc": 0.75}, CHAMP)
    assert "on the out-of-time rows" in worse["reasons"][0]


def test_every_failing_criterion_is_named() -> None:
    bad = {"precision": 0.25, "recall": 0.75, "f1": 0.5, "roc_auc": 0.625}
    verdict = judge(CFG, bad, CHAMP, None, None)
    assert verdict["passed"] is False
    assert verdict["failed"] == ["absolute:precision", "no_regression:f1", "no_regression:roc_auc", "improvement:roc_auc"]
    assert len(verdict["reasons"]) == 4
    assert all(isinstance(r, str) and r for r in verdict["reasons"])


def test_judge_is_pure() -> None:
    candidate, champion = dict(GOOD), dict(CHAMP)
    first = judge(CFG, candidate, champion, None, None)
    assert judge(CFG, candidate, champion, None, None) == first
    assert candidate == GOOD and champion == CHAMP


# --- evaluate: both models scored on the same rows -----------------------------------------------


class ColumnModel:
    """Scores P(class 1) straight from one feature column, so metrics can be worked out by hand."""

    def __init__(self, column: str) -> None:
        self.column = column

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        p = features[self.column].to_numpy(dtype=float)
        return np.column_stack([1 - p, p])


HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2026-03-08 00:00", tz="UTC")


def test_evaluate_scores_both_models_on_the_same_rows() -> None:
    cfg = gate_config(primary_metric="accuracy", min_improvement=0.125, max_regression={}, min_absolute={})
    test = pd.DataFrame(
        {
            "ts": [T0 + i * HOUR for i in range(6)],
            "x1": [0.9, 0.8, 0.1, 0.2, 0.7, 0.3],  # the candidate: all six right
            "x2": [0.9, 0.2, 0.1, 0.8, 0.7, 0.3],  # the champion: rows 1 and 3 wrong
            "c": ["a"] * 6,
        }
    )
    y = np.array([1, 1, 0, 0, 1, 0])
    verdict = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), test, y)
    assert verdict["evaluation"] == "out_of_time"
    assert verdict["candidate_metrics"]["accuracy"] == 1.0
    assert verdict["champion_metrics"]["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert verdict["test_rows"] == verdict["holdout_rows"] == 6
    assert verdict["holdout_start"] == T0.isoformat() and verdict["holdout_end"] == (T0 + 5 * HOUR).isoformat()
    assert verdict["passed"] is False  # 6 rows cannot show significance
    assert verdict["failed"] == ["significance:accuracy"]
    assert verdict["primary_metric"] == "accuracy"


def test_rows_the_champion_may_have_trained_on_are_left_out_for_both_models() -> None:
    cfg = gate_config(primary_metric="accuracy", min_improvement=0.125, max_regression={}, min_absolute={},
                      significance={"method": "none"})
    test = pd.DataFrame({"ts": [T0 + i * HOUR for i in range(6)],
                         "x1": [0.9, 0.8, 0.1, 0.2, 0.7, 0.3], "x2": [0.9, 0.2, 0.1, 0.8, 0.7, 0.3], "c": "a"})
    y = np.array([1, 1, 0, 0, 1, 0])
    # the champion learned from rows up to 03:00: only the rows of 04:00 and 05:00 are fair to both
    verdict = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), test, y,
                       champion_trained_until=(T0 + 3 * HOUR).isoformat())
    assert verdict["test_rows"] == 2 and verdict["holdout_rows"] == 6
    assert verdict["champion_metrics"]["accuracy"] == verdict["candidate_metrics"]["accuracy"] == 1.0
    assert verdict["failed"] == ["improvement:accuracy"]
    with pytest.raises(ValueError, match="none of the 6 out-of-time holdout rows is newer"):
        evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), test, y, champion_trained_until=T0 + 5 * HOUR)


def test_in_time_metrics_are_reported_but_not_judged() -> None:
    cfg = gate_config(primary_metric="accuracy", min_improvement=0.0, max_regression={}, min_absolute={},
                      significance={"method": "none"})
    test = pd.DataFrame({"ts": [T0 + i * HOUR for i in range(4)], "x1": [0.9, 0.8, 0.1, 0.2],
                         "x2": [0.9, 0.2, 0.1, 0.8], "c": "a"})
    in_time = pd.DataFrame({"ts": [T0 - 48 * HOUR] * 2, "x1": [0.1, 0.9], "x2": [0.9, 0.1], "c": "a"})
    verdict = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), test, np.array([1, 1, 0, 0]),
                       in_time=in_time, y_in_time=np.array([1, 0]))
    assert verdict["in_time"]["rows"] == 2
    assert verdict["in_time"]["candidate"]["accuracy"] == 0.0 and verdict["in_time"]["champion"]["accuracy"] == 1.0
    assert verdict["passed"] is True  # judged on the out-of-time rows only


def test_evaluate_without_a_champion() -> None:
    cfg = gate_config(min_absolute={"recall": 0.75})
    test = pd.DataFrame({"ts": [T0 + i * HOUR for i in range(4)], "x1": [0.9, 0.4, 0.1, 0.2], "x2": 0.0, "c": "a"})
    verdict = evaluate(cfg, ColumnModel("x1"), None, test, np.array([1, 1, 0, 0]))
    assert verdict["champion_metrics"] is None
    assert verdict["candidate_metrics"]["recall"] == 0.5
    assert verdict["failed"] == ["absolute:recall"]


# --- significance and the smoke test ---------------------------------------------------------------


def noisy_pair(rows: int, gain: float, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two score columns for the same rows: x1 (candidate) better than x2 (champion) by ``gain``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    champ = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.3, rows), 0.001, 0.999)
    cand = np.clip(champ + (y - 0.5) * gain + rng.normal(0, 0.05, rows), 0.001, 0.999)
    test = pd.DataFrame({"ts": pd.date_range("2026-03-08", periods=rows, freq="min", tz="UTC"), "x1": cand,
                         "x2": champ, "c": "a"})
    return test, y


def sig_config(**extra: object):
    settings: dict[str, object] = {"primary_metric": "roc_auc", "min_improvement": 0.0, "max_regression": {},
                                   "min_absolute": {}, "min_holdout_rows": 10,
                                   "smoke": {"rows": 20, "max_p99_latency_ms": 1000}}
    return gate_config(**{**settings, **extra})


def test_a_real_improvement_is_significant() -> None:
    test, y = noisy_pair(3000, gain=0.3)
    verdict = evaluate(sig_config(), ColumnModel("x1"), ColumnModel("x2"), test, y)
    sig = by_name(verdict)["significance:roc_auc"]
    assert sig["passed"] is True and sig["detail"]["ci_low"] > 0
    assert verdict["passed"] is True


def test_an_improvement_by_noise_alone_is_rejected_by_the_significance_test() -> None:
    # the candidate is the champion plus noise: on a small slice its AUC may come out higher, but the
    # paired interval straddles 0, so the gate says no even with a zero improvement margin
    for seed in range(50):
        test, y = noisy_pair(120, gain=0.0, seed=seed)
        verdict = evaluate(sig_config(), ColumnModel("x1"), ColumnModel("x2"), test, y)
        crit = by_name(verdict)
        if crit["improvement:roc_auc"]["passed"]:  # point estimate better: the lucky split
            break
    assert crit["improvement:roc_auc"]["passed"] is True
    assert crit["significance:roc_auc"]["passed"] is False
    assert verdict["passed"] is False
    assert any("not a significant improvement" in r for r in verdict["reasons"])
    detail = crit["significance:roc_auc"]["detail"]
    assert detail["ci_low"] < 0 < detail["ci_high"] and detail["rows"] == 120


def test_mcnemar_can_be_chosen_for_accuracy() -> None:
    test, y = noisy_pair(2000, gain=0.4)
    cfg = sig_config(significance={"method": "mcnemar"})
    verdict = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), test, y)
    sig = by_name(verdict)["significance:accuracy"]
    assert sig["detail"]["method"] == "mcnemar" and sig["detail"]["c"] > sig["detail"]["b"]
    assert sig["passed"] is True


class BrokenModel(ColumnModel):
    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        out = super().predict_proba(features)
        out[0, 0] = np.nan
        return out


class SlowModel(ColumnModel):
    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        import time

        time.sleep(0.004)
        return super().predict_proba(features)


def test_the_smoke_test_rejects_invalid_scores_even_for_a_first_model() -> None:
    test, y = noisy_pair(200, gain=0.3)
    verdict = evaluate(sig_config(), BrokenModel("x1"), None, test, y)
    assert verdict["passed"] is False and "smoke:p99_latency_ms" in verdict["failed"]
    assert verdict["smoke"]["valid"] is False and "NaN" in verdict["smoke"]["problem"]


def test_the_smoke_test_measures_single_row_latency_against_the_bound() -> None:
    test, y = noisy_pair(200, gain=0.3)
    cfg = sig_config(smoke={"rows": 20, "max_p99_latency_ms": 1.0})
    verdict = evaluate(cfg, SlowModel("x1"), None, test, y)
    smoke = verdict["smoke"]
    assert smoke["rows"] == 20 and smoke["valid"] is True
    assert smoke["p99_latency_ms"] >= 4.0 and smoke["passed"] is False
    assert any("p99 latency" in r for r in verdict["reasons"])


# --- no threshold traps: each model judged at its own operating threshold ---------------------------


def trap_rows(rows: int, seed: int, days: int = 30) -> tuple[pd.DataFrame, np.ndarray]:
    """The issue's trap: positives are frequent (half the rows); the old champion ranks barely better than chance
    (AUC about 0.56) with scores around 0.5, so it flags half of all rows at 0.5; the candidate ranks far better
    (AUC about 0.71) but its probabilities sit low, so at 0.5 it flags few rows and its F1 there is poor."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    champion = np.clip(0.5 + 0.01 * (2 * y - 1) + rng.normal(0, 0.1, rows), 0.001, 0.999)
    logit = 0.39 * (2 * y - 1) + rng.normal(0, 1, rows) - 1.5
    candidate = 1 / (1 + np.exp(-logit))
    ts = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(np.sort(rng.random(rows)) * days * 24, unit="h")
    return pd.DataFrame({"ts": ts, "x1": candidate, "x2": champion, "c": "a"}), y


def own_thresholds() -> tuple[float, float]:
    from include.retraining.metrics import operating_threshold

    validation, y = trap_rows(3000, seed=99)
    return operating_threshold(y, validation["x1"]), operating_threshold(y, validation["x2"])


def test_the_threshold_trap_old_rule_rejects_a_much_better_candidate_the_new_one_promotes_it() -> None:
    test, y = trap_rows(3000, seed=1)
    old = gate_config(primary_metric="roc_auc", min_improvement=0.01, max_regression={"f1": 0.01, "roc_auc": 0.005},
                      min_absolute={}, smoke={"rows": 20})
    # the old rule: F1 of both models at one fixed cut of 0.5 (no stored thresholds)
    before = evaluate(old, ColumnModel("x1"), ColumnModel("x2"), test, y)
    crit = by_name(before)
    assert before["candidate_metrics"]["roc_auc"] > 0.68 and before["champion_metrics"]["roc_auc"] < 0.59
    assert before["outcome"] == "reject" and before["failed"] == ["no_regression:f1"]  # rejected on F1 alone
    assert crit["no_regression:f1"]["candidate_threshold"] == crit["no_regression:f1"]["champion_threshold"] == 0.5
    assert crit["significance:roc_auc"]["passed"] is True  # the better ranking is not in doubt
    # the new rule: each model's F1 at its own operating threshold, chosen on its validation rows
    t_cand, t_champ = own_thresholds()
    assert t_cand < 0.4  # the candidate's probabilities sit low: its best cut is well below 0.5
    after = evaluate(old, ColumnModel("x1"), ColumnModel("x2"), test, y, candidate_threshold=t_cand,
                     champion_threshold=t_champ)
    f1 = by_name(after)["no_regression:f1"]
    assert (f1["candidate_threshold"], f1["champion_threshold"]) == (t_cand, t_champ)
    assert f1["passed"] is True and after["outcome"] == "promote" and after["passed"] is True
    assert after["thresholds"]["candidate_source"] == after["thresholds"]["champion_source"] == "model metadata"
    # and by default a classifier is compared threshold-free: the trap is not even set
    default = gate_config(min_absolute={}, smoke={"rows": 20})
    assert default.primary_metric == "roc_auc" and set(default.gate.max_regression) == {"roc_auc"}
    assert evaluate(default, ColumnModel("x1"), ColumnModel("x2"), test, y)["outcome"] == "promote"


def test_a_champion_without_a_stored_threshold_is_judged_at_one_half_and_the_verdict_says_so() -> None:
    test, y = trap_rows(3000, seed=2)
    cfg = gate_config(min_improvement=0.01, max_regression={"f1": 0.5}, min_absolute={"recall": 0.5},
                      smoke={"rows": 20})
    verdict = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), test, y, candidate_threshold=0.15)
    assert verdict["thresholds"]["champion"] == 0.5
    assert verdict["thresholds"]["champion_source"].startswith("default 0.5: trained before")
    assert any("champion was trained before operating thresholds were stored" in r for r in verdict["reasons"])
    recall = by_name(verdict)["absolute:recall"]
    assert recall["candidate_threshold"] == 0.15 and "champion_threshold" not in recall
    # the candidate's metrics are at its own threshold: many more rows flagged than at 0.5
    assert verdict["candidate_metrics"]["recall"] > 0.6


def test_log_loss_and_brier_can_be_gate_metrics_with_the_right_margins() -> None:
    cfg = gate_config(primary_metric="log_loss", min_improvement=0.125, max_regression={"brier": 0.0625},
                      min_absolute={"brier": 0.25})
    champ = {"log_loss": 0.5, "brier": 0.1875, "roc_auc": 0.75}
    better = judge(cfg, {"log_loss": 0.4375, "brier": 0.125, "roc_auc": 0.75}, champ)
    crit = by_name(better)
    assert crit["improvement:log_loss"]["threshold"] == 0.4375  # relative: 12.5 % lower than 0.5
    assert crit["no_regression:brier"]["threshold"] == 0.25  # absolute, and lower is better: 0.1875 + 0.0625
    assert crit["absolute:brier"]["passed"] is True and better["outcome"] == "promote"
    worse = judge(cfg, {"log_loss": 0.45, "brier": 0.3125, "roc_auc": 0.75}, champ)
    assert worse["failed"] == ["absolute:brier", "no_regression:brier", "improvement:log_loss"]
    assert worse["reasons"][0] == "brier 0.3125 is above the allowed 0.2500"


# --- three outcomes and the minimum detectable effect ------------------------------------------------


def _sig(low: float, high: float, mde: float = 0.02) -> dict:
    return {"method": "paired_bootstrap", "ci_low": low, "ci_high": high, "difference": (low + high) / 2,
            "candidate": 0.8, "champion": 0.8, "rows": 1000, "confidence": 0.95, "min_detectable_effect": mde,
            "power": 0.8, "block": "day", "blocks": 25}


def test_three_outcomes_from_the_evidence() -> None:
    cfg = gate_config(primary_metric="roc_auc", min_improvement=0.01, max_regression={}, min_absolute={})
    champ = {"roc_auc": 0.8}
    assert judge(cfg, {"roc_auc": 0.85}, champ, _sig(0.02, 0.08))["outcome"] == "promote"
    # not shown better, not shown worse: the interval holds 0
    unsure = judge(cfg, {"roc_auc": 0.805}, champ, _sig(-0.01, 0.02, mde=0.0275))
    assert unsure["outcome"] == "inconclusive" and unsure["passed"] is False
    assert unsure["reasons"][0].startswith("inconclusive: the candidate is neither shown better")
    assert "the smallest gain these rows could show is 0.0275" in unsure["reasons"][0]
    assert any("0.0275 (80% power)" in r for r in unsure["reasons"][1:])  # the significance reason quotes the MDE
    # significantly better but by less than the margin: still inconclusive
    assert judge(cfg, {"roc_auc": 0.805}, champ, _sig(0.001, 0.009))["outcome"] == "inconclusive"
    # significantly worse: rejected
    assert judge(cfg, {"roc_auc": 0.78}, champ, _sig(-0.04, -0.005))["outcome"] == "reject"
    # any other criterion failing: rejected, whatever the evidence
    strict = gate_config(primary_metric="roc_auc", min_improvement=0.01, max_regression={}, min_absolute={"f1": 0.9})
    assert judge(strict, {"roc_auc": 0.805, "f1": 0.5}, {**champ, "f1": 0.5}, _sig(-0.01, 0.02))["outcome"] == "reject"
    # without a test nothing tells "not shown better" from "worse": rejected
    assert judge(cfg, {"roc_auc": 0.805}, champ, None)["outcome"] == "reject"
    # a first model: promote or reject
    assert judge(cfg, {"roc_auc": 0.5}, None)["outcome"] == "promote"
    # lower-is-better: significantly worse means the interval lies above 0
    ll = gate_config(primary_metric="log_loss", min_improvement=0.01, max_regression={}, min_absolute={})
    assert judge(ll, {"log_loss": 0.5}, {"log_loss": 0.45}, _sig(0.01, 0.07))["outcome"] == "reject"
    assert judge(ll, {"log_loss": 0.45}, {"log_loss": 0.45}, _sig(-0.01, 0.01))["outcome"] == "inconclusive"


def test_evaluate_gives_all_three_outcomes_and_records_the_minimum_detectable_effect() -> None:
    cfg = sig_config(min_improvement=0.01)
    better, y = noisy_pair(3000, gain=0.3, seed=1)
    assert evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), better, y)["outcome"] == "promote"
    same, y0 = noisy_pair(3000, gain=0.0, seed=2)
    unsure = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), same, y0)
    assert unsure["outcome"] == "inconclusive"
    sig = unsure["significance"]
    assert sig["block"] == "hour" and sig["blocks"] == 50 and sig["enough_blocks"] is True  # 3000 minutes
    assert 0.002 < sig["min_detectable_effect"] < 0.05
    assert unsure["blocks"] == {"block": "hour", "block_seconds": 3600, "blocks": 50, "min_blocks": 20,
                                "enough_blocks": True}
    worse = evaluate(cfg, ColumnModel("x2"), ColumnModel("x1"), better, y)  # the roles swapped
    assert worse["outcome"] == "reject"


def test_minimum_detectable_effect_shrinks_with_more_rows() -> None:
    cfg = sig_config(significance={"block": "row"})
    small = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), *noisy_pair(1000, gain=0.0, seed=3))
    large = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), *noisy_pair(4000, gain=0.0, seed=3))
    ratio = small["significance"]["min_detectable_effect"] / large["significance"]["min_detectable_effect"]
    assert ratio == pytest.approx(2.0, rel=0.2)


def test_too_few_blocks_claim_nothing_and_say_so() -> None:
    test, y = noisy_pair(600, gain=0.3, seed=4)  # ten hours of rows: 10 hours, 40 quarters
    cfg = sig_config(significance={"block": "hour", "min_blocks": 20})
    verdict = evaluate(cfg, ColumnModel("x1"), ColumnModel("x2"), test, y)
    assert verdict["outcome"] == "inconclusive" and verdict["significance"]["blocks"] == 10
    assert any("cannot be shown significant: 600 rows in 10 hour blocks, at least 20 blocks are needed" in r
               for r in verdict["reasons"])
