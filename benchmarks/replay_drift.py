"""Replay the retrain decision over synthetic streams with known drift points, against two simpler rules.

A credit-risk-like binary stream (12 numeric + 3 categorical features; the label follows a
logistic model that depends mostly on five features: credit_score, debt_to_income,
late_payments_12m, annual_income, revolving_utilization) arrives at 500 rows/h and is checked
in 6-hour windows (``--rows`` rows each, 4 windows a day). A LightGBM champion is trained with
the package's own code (``training.fit`` with the default LightGBM hyperparameters, no
Optuna search) on a three-day history split as ``prepare`` does (the out-of-time holdout of the
newest ``gate.holdout_hours``, the earlier rows by ``snapshots.assign_splits``); as
``training.train_candidate`` does, it gets baseline metrics on that holdout, permutation importances
(``training.feature_importance``), the isotonic calibration on the validation rows and the
label-free ``estimated_baseline``. The reference profile (``drift.build_profile``) is the last
day of the history (``--reference-hours``, 24 by default, so that it covers a whole daily cycle;
the package's own default is ``window.lookback_hours``, 6 h).

Scenarios (``--windows`` windows, drift from window ``--drift-at`` on, fresh random draws per
window; the drift sizes are fixed below and were not tuned to favour any rule):

- ``no_drift``: the same distribution throughout;
- ``sudden_shift``: credit_score -0.75 sd, revolving_utilization +0.5 sd, open_accounts +0.75 sd;
- ``gradual``: credit_score's mean falls linearly to -1 sd over 15 windows (1/15 sd in the
  first drifted window) while the loan_purpose mix moves toward small_business and medical;
- ``label_only``: P(y | x) changes (credit_score's coefficient weakens from -1.1 to -0.4),
  the features do not;
- ``seasonal``: a daily cycle (0.4 sd) in loan_amount, age and months_since_last_inquiry and
  in the channel mix, present in the history and the reference too; no drift ever, so every
  alarm is a false alarm.

Rules, per window:

- ``ours``: the package's decision, run through its own code: ``assessment._before_labels``
  and ``assessment._measure`` (with the registry and the window read stubbed to hand them the
  in-memory champion, profile, metadata and window) and ``assessment.decide`` with the
  default settings (``DriftSection``, ``PerformanceSection``, ``QualitySection``) and no storm
  history; an alarm is the decision ``retrain`` (before or after the labels);
- ``evidently``: Evidently's ``Report([DataDriftPreset()])`` on the reference frame against the
  window's features (column kinds declared), alarm when its dataset-drift test fails (share of
  drifted columns >= 0.5, default per-column tests: Wasserstein / Jensen-Shannon at 0.1 here);
- ``any_ks``: ``scipy.stats.ks_2samp`` per numeric feature and, for the three categorical
  features, the chi-square test of homogeneity (``scipy.stats.chi2_contingency`` on the 2 x k
  table of counts), reference frame against the window; alarm when any p-value < 0.05.

Reported per scenario and rule: false-alarm rate (alarms in the windows before the drift
point, or in all windows for no_drift and seasonal, over their number), detection delay
(windows from the drift point to the first alarm at or after it, ``missed`` if none) and the
share of post-drift windows alarmed; plus the champion's real F1 before and after the drift
next to its baseline F1 (what the performance signal compares with), and our false alarms
broken down by the signal that raised them. A paragraph generated from the numbers follows
the table. With ``--repeats R`` the whole replay (stream, champion) is repeated for seeds
seed..seed+R-1: rates are pooled (and listed per seed for no_drift and seasonal), delays
summarised by their median and the number of misses. ``--json`` keeps every window's record
(each rule's verdict; our signals, drifted features, F1, error-rate test) for a closer look.

Usage (from the repository root)::

    .venv/bin/python benchmarks/replay_drift.py [--windows 40] [--rows 3000] [--seed 0]
        [--repeats 1] [--skip-evidently] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

log = logging.getLogger("replay_drift")

SCENARIOS = ("no_drift", "sudden_shift", "gradual", "label_only", "seasonal")
NO_DRIFT_SCENARIOS = ("no_drift", "seasonal")
RULES = ("ours", "evidently", "any_ks")
RULE_LABELS = {
    "ours": "ours (decide, defaults)",
    "evidently": "Evidently DataDriftPreset",
    "any_ks": "any KS/chi2 p<0.05",
}
ALPHA = 0.05

WINDOW_HOURS = 6
HISTORY_HOURS = 72  # the champion's training data: three days before the first replayed window
TIMESTAMP, LABEL = "ts", "defaulted"
NUMERIC = [
    "credit_score", "debt_to_income", "annual_income", "revolving_utilization", "late_payments_12m",
    "loan_amount", "age", "employment_years", "open_accounts", "months_since_last_inquiry",
    "tenure_months", "num_dependents",
]
CATEGORICAL = ["home_ownership", "loan_purpose", "channel"]
FEATURES = [*NUMERIC, *CATEGORICAL]
LATENT = ["credit_score", "debt_to_income", "annual_income", "revolving_utilization", "loan_amount", "age",
          "employment_years", "open_accounts", "months_since_last_inquiry", "tenure_months"]

HOME, HOME_P = ["RENT", "MORTGAGE", "OWN"], [0.40, 0.45, 0.15]
PURPOSES = ["debt_consolidation", "credit_card", "home_improvement", "car", "medical", "small_business"]
PURPOSE_P = np.array([0.45, 0.20, 0.12, 0.10, 0.06, 0.07])
PURPOSE_P_DRIFTED = np.array([0.35, 0.15, 0.10, 0.08, 0.12, 0.20])  # gradual: where the mix ends up
CHANNELS, CHANNEL_P = ["web", "mobile", "branch", "broker"], np.array([0.45, 0.30, 0.15, 0.10])

# ground truth: logit of P(default | x), on standardised observed features
INTERCEPT = -1.9
COEF = {"credit_score": -1.1, "debt_to_income": 0.9, "annual_income": -0.5, "revolving_utilization": 0.5,
        "late_payments_12m": 0.6, "loan_amount": 0.1, "age": -0.1, "employment_years": -0.1}
PURPOSE_EFFECT = {"small_business": 0.5, "medical": 0.3, "debt_consolidation": 0.1}
HOME_EFFECT = {"OWN": -0.2, "RENT": 0.1}

SUDDEN_SHIFT = {"credit_score": -0.75, "revolving_utilization": 0.5, "open_accounts": 0.75}  # in sd
GRADUAL_TARGET, GRADUAL_FEATURE, GRADUAL_RAMP = -1.0, "credit_score", 15
CONCEPT_COEF = {"credit_score": -0.4}  # label_only: credit_score's coefficient after the drift point
SEASONAL_AMPLITUDE = 0.4  # sd of the daily cycle's swing in the seasonal features' means
SEASONAL_PHASE = {"loan_amount": 0.0, "age": math.pi / 2, "months_since_last_inquiry": math.pi}
SEASONAL_CHANNEL = 0.12  # mobile's share swings by this much over the day (web takes the difference)


# --- the stream ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """What the stream looks like at a moment: latent mean shifts (sd), purpose mix, concept, seasonality."""

    shifts: dict[str, float] = field(default_factory=dict)
    purpose_mix: float = 0.0  # 0: PURPOSE_P, 1: PURPOSE_P_DRIFTED
    concept: bool = False
    seasonal: bool = False


def conditions(scenario: str, window: int, drift_at: int) -> Conditions:
    """The stream's conditions in window ``window`` (negative: the history) of ``scenario``."""
    seasonal = scenario == "seasonal"
    if window < drift_at or scenario in NO_DRIFT_SCENARIOS:
        return Conditions(seasonal=seasonal)
    if scenario == "sudden_shift":
        return Conditions(shifts=dict(SUDDEN_SHIFT))
    if scenario == "gradual":
        progress = min(1.0, (window - drift_at + 1) / GRADUAL_RAMP)
        return Conditions(shifts={GRADUAL_FEATURE: GRADUAL_TARGET * progress}, purpose_mix=progress)
    if scenario == "label_only":
        return Conditions(concept=True)
    raise ValueError(f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIOS)}")


def _standardised(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "credit_score": (frame["credit_score"].to_numpy() - 680) / 60,
        "debt_to_income": (frame["debt_to_income"].to_numpy() - 0.30) / 0.10,
        "annual_income": (np.log(frame["annual_income"].to_numpy()) - math.log(62_000)) / 0.45,
        "revolving_utilization": (frame["revolving_utilization"].to_numpy() - 0.40) / 0.20,
        "late_payments_12m": frame["late_payments_12m"].to_numpy() - 0.5,
        "loan_amount": (np.log(frame["loan_amount"].to_numpy()) - math.log(15_000)) / 0.6,
        "age": (frame["age"].to_numpy() - 42) / 12,
        "employment_years": (frame["employment_years"].to_numpy() - 6) / 5,
    }


def default_probability(frame: pd.DataFrame, concept: bool = False) -> np.ndarray:
    """The ground truth P(default | x): a function of the observed features only."""
    coef = {**COEF, **(CONCEPT_COEF if concept else {})}
    z = _standardised(frame)
    logit = INTERCEPT + sum(coef[name] * z[name] for name in coef)
    logit = logit + frame["loan_purpose"].map(PURPOSE_EFFECT).fillna(0.0).to_numpy()
    logit = logit + frame["home_ownership"].map(HOME_EFFECT).fillna(0.0).to_numpy()
    return 1.0 / (1.0 + np.exp(-logit))


def generate(rng: np.random.Generator, n: int, start_hour: float, hours: float, cond: Conditions) -> pd.DataFrame:
    """``n`` applications spread uniformly over ``[start_hour, start_hour + hours)``, with their labels."""
    t = np.sort(rng.uniform(start_hour, start_hour + hours, n))
    z = {name: rng.standard_normal(n) + cond.shifts.get(name, 0.0) for name in LATENT}
    phase = 2 * math.pi * (t % 24) / 24
    if cond.seasonal:
        for name, offset in SEASONAL_PHASE.items():
            z[name] = z[name] + SEASONAL_AMPLITUDE * np.sin(phase + offset)
    purpose_p = (1 - cond.purpose_mix) * PURPOSE_P + cond.purpose_mix * PURPOSE_P_DRIFTED
    if cond.seasonal:
        swing = SEASONAL_CHANNEL * np.sin(phase)
        u = rng.random(n)
        # mobile's share is 0.30 + swing, web's 0.45 - swing; branch and broker keep theirs
        cuts = np.column_stack([CHANNEL_P[0] - swing, np.full(n, CHANNEL_P[0] + CHANNEL_P[1]),
                                np.full(n, 1 - CHANNEL_P[3])])
        channel = np.asarray(CHANNELS, dtype=object)[(u[:, None] >= cuts).sum(axis=1)]
    else:
        channel = rng.choice(CHANNELS, n, p=CHANNEL_P)
    frame = pd.DataFrame({
        TIMESTAMP: pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(t, unit="h"),
        "credit_score": np.clip(np.round(680 + 60 * z["credit_score"]), 300, 850),
        "debt_to_income": np.clip(0.30 + 0.10 * z["debt_to_income"], 0.0, 0.95).round(3),
        "annual_income": np.round(np.exp(math.log(62_000) + 0.45 * z["annual_income"]), -2),
        "revolving_utilization": np.clip(0.40 + 0.20 * z["revolving_utilization"], 0.0, 1.0).round(3),
        "late_payments_12m": rng.poisson(0.5, n).astype(float),
        "loan_amount": np.round(np.exp(math.log(15_000) + 0.6 * z["loan_amount"]), -2),
        "age": np.clip(np.round(42 + 12 * z["age"]), 18, 80),
        "employment_years": np.clip(6 + 5 * z["employment_years"], 0, 45).round(1),
        "open_accounts": np.clip(np.round(8 + 3 * z["open_accounts"]), 0, None),
        "months_since_last_inquiry": np.clip(np.round(12 + 8 * z["months_since_last_inquiry"]), 0, None),
        "tenure_months": np.clip(np.round(36 + 24 * z["tenure_months"]), 0, None),
        "num_dependents": rng.poisson(1.0, n).astype(float),
        "home_ownership": rng.choice(HOME, n, p=HOME_P),
        "loan_purpose": rng.choice(PURPOSES, n, p=purpose_p / purpose_p.sum()),
        "channel": channel,
    })
    frame[LABEL] = (rng.random(n) < default_probability(frame, cond.concept)).astype(np.int64)
    return frame


def window_frame(seed: int, scenario: str, window: int, rows: int, drift_at: int) -> pd.DataFrame:
    """Window ``window`` of ``scenario``: its own random draw, hours [6 w, 6 w + 6)."""
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario), window + 10_000])
    return generate(rng, rows, WINDOW_HOURS * window, WINDOW_HOURS, conditions(scenario, window, drift_at))


def history_frame(seed: int, seasonal: bool, rows_per_window: int) -> pd.DataFrame:
    """The champion's three days of labelled history before the first window (hours [-72, 0))."""
    rng = np.random.default_rng([seed, 99, int(seasonal)])
    windows = HISTORY_HOURS // WINDOW_HOURS
    parts = [generate(rng, rows_per_window, -HISTORY_HOURS + WINDOW_HOURS * i, WINDOW_HOURS,
                      Conditions(seasonal=seasonal)) for i in range(windows)]
    return pd.concat(parts, ignore_index=True)


# --- the champion ---------------------------------------------------------------------------------------------


def make_config(reference_hours: int = 24, lightgbm_params: dict[str, Any] | None = None) -> Any:
    """A RetrainingConfig with every decision setting at its default (as tests/unit/unit_helpers.build_config).

    ``lightgbm_params`` override the package's default LightGBM hyperparameters (the smoke test
    uses fewer trees); the replay itself uses the defaults."""
    from include.retraining.config import RetrainingConfig

    model: dict[str, Any] = {"name": "replay_drift", "task": "binary", "type": "lightgbm"}
    if lightgbm_params:
        model["hyperparameters"] = {"lightgbm": dict(lightgbm_params)}
    return RetrainingConfig.model_validate({
        "model": model,
        "source": {"kind": "parquet", "path": "/nonexistent/replay.parquet"},
        "columns": {"timestamp": TIMESTAMP, "label": LABEL, "numeric": NUMERIC, "categorical": CATEGORICAL},
        "storage": {"uri": "/nonexistent/storage"},
        "drift": {"reference_hours": reference_hours},  # only where the profile comes from; no decision setting
    })


@dataclass
class Champion:
    model: Any
    profile: dict[str, Any]
    meta: dict[str, Any]
    reference: pd.DataFrame
    info: Any = None


def train_champion(cfg: Any, history: pd.DataFrame) -> Champion:
    """Split, fit, baseline, importance, calibration and reference profile, as prepare/train_candidate do."""
    from include.retraining.monitoring import drift
    from include.retraining.training.models import fit, monitoring_meta
    from include.retraining.training.prepare import out_of_time_holdout
    from include.retraining.training.snapshots import assign_splits

    classes = [0, 1]
    frame = assign_splits(cfg, history.reset_index(drop=True))
    cutoff = history[TIMESTAMP].max().ceil("h")
    holdout = out_of_time_holdout(cfg, frame[TIMESTAMP], cutoff.to_pydatetime())
    earlier = frame[~holdout]
    splits = {name: earlier[earlier["_split"] == name] for name in ("train", "validation")}
    model = fit(cfg, "lightgbm", splits["train"], splits["validation"], classes)
    baseline_rows = frame[holdout]  # the out-of-time holdout, as prepare/train_candidate do
    reference = history[history[TIMESTAMP] >= cutoff - pd.Timedelta(hours=cfg.drift.reference_hours)]
    reference = reference.tail(cfg.drift.reference_max_rows)
    profile = drift.build_profile(reference, NUMERIC, CATEGORICAL, cfg.drift.bins, fine_bins=cfg.drift.fine_bins,
                                  sample_rows=cfg.drift.sample_rows, seed=cfg.training.seed)
    meta = {
        "task": "binary", "model_type": "lightgbm", "features": FEATURES, "numeric": NUMERIC,
        "categorical": CATEGORICAL, "label": LABEL, "classes": classes,
        **monitoring_meta(cfg, model, splits["validation"], baseline_rows, classes),
    }
    info = SimpleNamespace(version=1, run_id="replay", uri="models:/replay_drift/1")
    return Champion(model=model, profile=profile, meta=meta, reference=reference, info=info)


# --- the three rules ------------------------------------------------------------------------------------------


@contextmanager
def serving(champion: Champion, window: pd.DataFrame) -> Iterator[None]:
    """The registry and the window read, answered from memory, so the production assessment code runs as is."""
    from unittest.mock import patch

    from include.retraining.monitoring import assessment, drift
    from include.retraining.release import registry

    artifacts = {registry.PROFILE_ARTIFACT: champion.profile, registry.META_ARTIFACT: champion.meta}

    def read_window(cfg: Any, profile: dict[str, Any], *_: Any) -> tuple[dict[str, Any], pd.DataFrame]:
        return drift.summarize(window, profile), window

    with patch.object(registry, "setup", lambda cfg: None), \
            patch.object(registry, "champion", lambda cfg, client=None: champion.info), \
            patch.object(registry, "load_run_json", lambda run_id, name: artifacts[name]), \
            patch.object(registry, "load_model", lambda uri: champion.model), \
            patch.object(assessment, "_read_window", read_window):
        yield


def rule_ours(cfg: Any, champion: Champion, window: pd.DataFrame, index: int) -> dict[str, Any]:
    """The package's own assessment and decision for this window (before the labels, then with them)."""
    from include.retraining.monitoring import assessment
    from include.retraining.point_in_time import Judge

    base = {"window_start": f"w{index}", "window_end": f"w{index + 1}", "rows": len(window),
            "labelled_rows": len(window), "min_labelled_rows": cfg.window.min_labelled_rows}
    with serving(champion, window):
        early = assessment._before_labels(cfg, base, None, None, len(window),
                                          lambda: Judge(champion.info, "registry"))
        final = assessment._measure(cfg, base, champion.info, None, None, len(window))
    early_decision = assessment.decide(cfg, early) if early is not None else None
    decision = assessment.decide(cfg, final)
    early_alarm = bool(early_decision and early_decision["decision"] == "retrain")
    perf = final["performance"] or {}
    return {
        "alarm": early_alarm or decision["decision"] == "retrain",
        "before_labels": early_alarm,
        "decision": decision["decision"],
        "signals": decision.get("signals", []),
        "drifted_share": final["drift"]["drifted_share"],
        "drifted_features": final["drift"]["drifted_features"],
        "f1": perf.get("current", {}).get("f1"),
        "f1_drop": perf.get("drop"),
        "accuracy": perf.get("current", {}).get("accuracy"),
        "error_increase": perf.get("error_increase"),
        "error_increase_p_value": perf.get("error_increase_p_value"),
        "estimated_f1_drop": (final.get("estimated") or {}).get("drop"),
    }


class EvidentlyRule:
    """Evidently 0.7.23's DataDriftPreset with its defaults; the alarm is its dataset-drift test failing."""

    def __init__(self, reference: pd.DataFrame) -> None:
        from evidently import DataDefinition, Dataset

        self._definition = DataDefinition(numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL))
        self._reference = Dataset.from_pandas(reference[FEATURES].reset_index(drop=True),
                                              data_definition=self._definition)

    def __call__(self, window: pd.DataFrame) -> dict[str, Any]:
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        current = Dataset.from_pandas(window[FEATURES].reset_index(drop=True), data_definition=self._definition)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = Report([DataDriftPreset()], include_tests=True).run(current_data=current,
                                                                         reference_data=self._reference).dict()
        counts = next(m for m in result["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
        share_test = next(t for t in result["tests"] if t["metric_config"]["metric_id"] == counts["id"])
        share = float(counts["value"]["share"])
        alarm = share_test["status"] == "FAIL"
        if alarm != (share >= 0.5):  # Evidently's get_dataset_drift: share of drifted columns >= drift_share
            raise RuntimeError(f"Evidently's test says {share_test['status']} for a drifted share of {share}")
        return {"alarm": alarm, "drifted_columns": int(counts["value"]["count"]), "drifted_share": round(share, 4)}


class AnyTestRule:
    """Alarm when any feature's p-value is below 0.05: KS for numeric, chi-square homogeneity for categorical."""

    def __init__(self, reference: pd.DataFrame) -> None:
        self._numeric = {c: reference[c].to_numpy(dtype=float) for c in NUMERIC}
        self._categorical = {c: reference[c].value_counts() for c in CATEGORICAL}

    def __call__(self, window: pd.DataFrame) -> dict[str, Any]:
        from scipy.stats import chi2_contingency, ks_2samp

        p = {c: float(ks_2samp(ref, window[c].to_numpy(dtype=float)).pvalue) for c, ref in self._numeric.items()}
        for c, ref_counts in self._categorical.items():
            table = pd.concat([ref_counts, window[c].value_counts()], axis=1).fillna(0).to_numpy().T
            p[c] = float(chi2_contingency(table).pvalue)
        rejected = sorted(c for c, v in p.items() if v < ALPHA)
        return {"alarm": bool(rejected), "rejected": rejected, "min_p": min(p.values())}


# --- replay and scoring ---------------------------------------------------------------------------------------


def replay(windows: int = 40, rows: int = 3000, seed: int = 0, drift_at: int = 10,
           scenarios: Sequence[str] = SCENARIOS, evidently: bool = True, reference_hours: int = 24,
           lightgbm_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every scenario's windows through every rule, for one seed: per-window records and the summary."""
    if not 0 < drift_at < windows:
        raise ValueError(f"the drift point ({drift_at}) must lie inside the {windows} windows")
    rules = [r for r in RULES if evidently or r != "evidently"]
    cfg = make_config(reference_hours, lightgbm_params)
    champions: dict[bool, Champion] = {}
    checkers: dict[bool, dict[str, Any]] = {}
    results: dict[str, Any] = {"seed": seed, "scenarios": {}, "champions": {}}
    for scenario in scenarios:
        seasonal = scenario == "seasonal"
        if seasonal not in champions:
            started = time.monotonic()
            champion = train_champion(cfg, history_frame(seed, seasonal, rows))
            champions[seasonal] = champion
            checkers[seasonal] = {"any_ks": AnyTestRule(champion.reference)}
            if evidently:
                checkers[seasonal]["evidently"] = EvidentlyRule(champion.reference)
            top = sorted(champion.meta["feature_importance"].items(), key=lambda kv: -kv[1])
            log.info("seed %d: champion for %s streams trained in %.1f s; baseline f1 %.4f on %d rows; "
                     "importance %s", seed, "seasonal" if seasonal else "non-seasonal", time.monotonic() - started,
                     champion.meta["baseline_metrics"]["f1"], champion.meta["baseline_rows"],
                     ", ".join(f"{k} {v:.2f}" for k, v in top[:6]))
            results["champions"]["seasonal" if seasonal else "plain"] = {
                "baseline_metrics": champion.meta["baseline_metrics"],
                "baseline_rows": champion.meta["baseline_rows"],
                "feature_importance": champion.meta["feature_importance"],
                "reference_rows": len(champion.reference),
            }
        champion, checks = champions[seasonal], checkers[seasonal]
        records = []
        started = time.monotonic()
        for w in range(windows):
            frame = window_frame(seed, scenario, w, rows, drift_at)
            record: dict[str, Any] = {"window": w, "drifted": scenario not in NO_DRIFT_SCENARIOS and w >= drift_at,
                                      "default_rate": round(float(frame[LABEL].mean()), 4),
                                      "ours": rule_ours(cfg, champion, frame, w)}
            for rule in rules[1:]:
                record[rule] = checks[rule](frame)
            records.append(record)
            log.debug("%s w%02d: %s", scenario, w, {r: record[r]["alarm"] for r in rules})
        log.info("seed %d: %-12s %d windows in %.1f s; alarms %s", seed, scenario, windows,
                 time.monotonic() - started, ", ".join(f"{r} {sum(rec[r]['alarm'] for rec in records)}"
                                                      for r in rules))
        summary = summarize(scenario, records, rules, drift_at)
        summary["baseline_f1"] = champion.meta["baseline_metrics"]["f1"]
        summary["baseline_rows"] = champion.meta["baseline_rows"]
        results["scenarios"][scenario] = {"windows": records, "summary": summary}
    return results


def summarize(scenario: str, records: list[dict[str, Any]], rules: Sequence[str], drift_at: int) -> dict[str, Any]:
    """Per rule: false alarms, detection delay, post-drift alarm share; and the champion's real F1 pre/post."""
    drift = scenario not in NO_DRIFT_SCENARIOS
    pre = [r for r in records if not r["drifted"]]
    post = [r for r in records if r["drifted"]]
    out: dict[str, Any] = {"pre_windows": len(pre), "post_windows": len(post), "rules": {}}
    for rule in rules:
        false_alarms = sum(r[rule]["alarm"] for r in pre)
        entry: dict[str, Any] = {"false_alarms": false_alarms, "false_alarm_rate": round(false_alarms / len(pre), 4)}
        if drift:
            first = next((r["window"] for r in post if r[rule]["alarm"]), None)
            entry["delay"] = None if first is None else first - drift_at
            entry["post_alarmed"] = sum(r[rule]["alarm"] for r in post)
            entry["post_alarm_share"] = round(entry["post_alarmed"] / len(post), 4)
        out["rules"][rule] = entry
    # which of our signals the false alarms came from (a window may have several)
    causes: dict[str, int] = {}
    for r in pre:
        if r["ours"]["alarm"]:
            for signal in r["ours"]["signals"] or ["none"]:
                causes[signal] = causes.get(signal, 0) + 1
    out["rules"]["ours"]["false_alarm_signals"] = causes
    f1 = [r["ours"]["f1"] for r in records]
    out["f1_pre"] = round(statistics.fmean(f1[:drift_at] if drift else f1), 4)
    out["f1_post"] = round(statistics.fmean(f1[drift_at:]), 4) if drift else None
    out["f1_last10"] = round(statistics.fmean(f1[-10:]), 4)
    return out


def aggregate(runs: list[dict[str, Any]], rules: Sequence[str]) -> dict[str, Any]:
    """The summaries of several seeds: pooled rates, the list of delays (None = missed) and their median."""
    out: dict[str, Any] = {}
    for scenario in runs[0]["scenarios"]:
        summaries = [run["scenarios"][scenario]["summary"] for run in runs]
        entry: dict[str, Any] = {"rules": {}}
        for rule in rules:
            per = [s["rules"][rule] for s in summaries]
            pre = sum(s["pre_windows"] for s in summaries)
            agg: dict[str, Any] = {"false_alarm_rate": round(sum(p["false_alarms"] for p in per) / pre, 4),
                                   "false_alarm_rates": [p["false_alarm_rate"] for p in per]}
            if rule == "ours":
                causes: dict[str, int] = {}
                for p in per:
                    for signal, count in p["false_alarm_signals"].items():
                        causes[signal] = causes.get(signal, 0) + count
                agg["false_alarm_signals"] = causes
            if "delay" in per[0]:
                delays = [p["delay"] for p in per]
                found = [d for d in delays if d is not None]
                agg["delays"] = delays
                agg["missed"] = len(delays) - len(found)
                agg["median_delay"] = statistics.median(found) if found else None
                post = sum(s["post_windows"] for s in summaries)
                agg["post_alarm_share"] = round(sum(p["post_alarmed"] for p in per) / post, 4)
            entry["rules"][rule] = agg
        entry["baseline_f1"] = [s.get("baseline_f1") for s in summaries]
        for key in ("f1_pre", "f1_post", "f1_last10"):
            values = [s[key] for s in summaries if s[key] is not None]
            entry[key] = round(statistics.fmean(values), 4) if values else None
        out[scenario] = entry
    return out


def _delay_key(agg: dict[str, Any], repeats: int) -> float:
    """A delay to compare rules by: the median over the detected seeds, a miss counting as never (inf)."""
    if agg.get("missed", 0) * 2 >= repeats or agg.get("median_delay") is None:
        return math.inf
    return float(agg["median_delay"])


def compare(summary: dict[str, Any], rules: Sequence[str], repeats: int) -> list[dict[str, Any]]:
    """Per scenario: does ours have the lowest false-alarm rate, and a delay no worse than each other rule's?"""
    rows = []
    for scenario, entry in summary.items():
        ours = entry["rules"]["ours"]
        others = {r: entry["rules"][r] for r in rules if r != "ours"}
        lowest_fa = all(ours["false_alarm_rate"] <= o["false_alarm_rate"] for o in others.values())
        worse_fa = [r for r, o in others.items() if o["false_alarm_rate"] < ours["false_alarm_rate"]]
        slower = []
        if "delay" in ours or "delays" in ours:
            mine = _delay_key(ours, repeats)
            slower = [r for r, o in others.items() if _delay_key(o, repeats) < mine]
        rows.append({"scenario": scenario, "lowest_false_alarm_rate": lowest_fa, "lower_false_alarms": worse_fa,
                     "faster": slower, "holds": lowest_fa and not slower})
    return rows


# --- output ---------------------------------------------------------------------------------------------------


def _fmt_delay(agg: dict[str, Any], repeats: int) -> str:
    if "delays" not in agg:
        return "-"
    if repeats == 1:
        return "missed" if agg["delays"][0] is None else str(agg["delays"][0])
    med = "missed" if agg["median_delay"] is None else f"{agg['median_delay']:g}"
    return f"{med} (miss {agg['missed']}/{repeats})"


def table(summary: dict[str, Any], rules: Sequence[str], repeats: int, drift_at: int) -> str:
    head = f"{'scenario':<13} {'rule':<27} {'false alarms':>12} {'delay':>16} {'post-drift alarmed':>19}"
    lines = [head, "-" * len(head)]
    for scenario, entry in summary.items():
        for i, rule in enumerate(rules):
            agg = entry["rules"][rule]
            post = f"{agg['post_alarm_share']:.0%}" if "post_alarm_share" in agg else "-"
            lines.append(f"{scenario if i == 0 else '':<13} {RULE_LABELS[rule]:<27} "
                         f"{agg['false_alarm_rate']:>12.1%} {_fmt_delay(agg, repeats):>16} {post:>19}")
        causes = entry["rules"]["ours"].get("false_alarm_signals")
        if causes:
            lines.append(f"{'':<13} (our false alarms by signal: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(causes.items(), key=lambda kv: -kv[1])) + ")")
        baseline = "/".join(f"{b:.3f}" for b in entry.get("baseline_f1") or [] if b is not None)
        baseline = f"; its baseline F1 {baseline}" if baseline else ""
        if entry["f1_post"] is not None:
            lines.append(f"{'':<13} (champion's real F1: {entry['f1_pre']:.3f} before window {drift_at}, "
                         f"{entry['f1_post']:.3f} after, {entry['f1_last10']:.3f} in the last 10{baseline})")
        else:
            lines.append(f"{'':<13} (champion's real F1: {entry['f1_pre']:.3f} over all windows{baseline})")
    return "\n".join(lines)


def detected_by_chance(summary: dict[str, Any], rule: str) -> list[str]:
    """Drift scenarios where the rule's post-drift alarm share is no higher than its false-alarm rate in no_drift
    (or, without no_drift, in the scenario's own pre-drift windows)."""
    out = []
    for scenario, entry in summary.items():
        agg = entry["rules"][rule]
        if "post_alarm_share" not in agg or agg.get("median_delay") is None:
            continue
        floor = summary.get("no_drift", entry)["rules"][rule]["false_alarm_rate"]
        if agg["post_alarm_share"] <= max(floor, agg["false_alarm_rate"]):
            out.append(scenario)
    return out


def reading(summary: dict[str, Any], rules: Sequence[str], repeats: int, windows: int, drift_at: int) -> str:
    """One paragraph, generated from the measurements (no interpretation beyond them)."""
    verdicts = compare(summary, rules, repeats)
    holds = [v["scenario"] for v in verdicts if v["holds"]]
    parts = [f"Claim 'ours has the lowest false-alarm rate at a detection delay no worse than the others'' "
             f"holds in {len(holds)} of {len(verdicts)} scenarios ({', '.join(holds) or 'none'})."]
    for v in verdicts:
        if v["holds"]:
            continue
        why = []
        if v["lower_false_alarms"]:
            why.append("lower false-alarm rate for " + ", ".join(RULE_LABELS[r] for r in v["lower_false_alarms"]))
        if v["faster"]:
            why.append("earlier detection by " + ", ".join(RULE_LABELS[r] for r in v["faster"]))
        parts.append(f"Not in {v['scenario']}: {'; '.join(why)}.")
    for rule in rules:
        fa = {s: e["rules"][rule]["false_alarm_rate"] for s, e in summary.items()}
        chance = detected_by_chance(summary, rule)
        missed = [s for s, e in summary.items() if math.isinf(_delay_key(e["rules"][rule], repeats))
                  and "delays" in e["rules"][rule]]
        detected = [s for s, e in summary.items() if "delays" in e["rules"][rule] and s not in missed]
        per_seed = ""
        if repeats > 1:
            per_seed = " per seed: " + "; ".join(
                f"{s} " + "/".join(f"{v:.0%}" for v in summary[s]["rules"][rule]["false_alarm_rates"])
                for s in NO_DRIFT_SCENARIOS if s in summary)
        causes: dict[str, int] = {}
        if rule == "ours":
            for e in summary.values():
                for k, v in e["rules"]["ours"].get("false_alarm_signals", {}).items():
                    causes[k] = causes.get(k, 0) + v
        cause_text = ("; its false alarms came from " + ", ".join(
            f"{k} ({v})" for k, v in sorted(causes.items(), key=lambda kv: -kv[1]))) if causes else ""
        parts.append(f"{RULE_LABELS[rule]}: false-alarm rate {min(fa.values()):.0%}-{max(fa.values()):.0%} "
                     f"(no_drift {fa.get('no_drift', float('nan')):.0%}, seasonal {fa.get('seasonal', float('nan')):.0%}"
                     f"{';' + per_seed if per_seed else ''}){cause_text}; "
                     f"detects {', '.join(detected) or 'nothing'}"
                     + (f"; misses {', '.join(missed)}" if missed else "")
                     + (f"; in {', '.join(chance)} it alarms no more often after the drift than it false-alarms "
                        "without drift, so its 'detection' there is chance" if chance else "") + ".")
    parts.append(f"({windows} windows per scenario, drift from window {drift_at}; "
                 f"{repeats} seed(s); delays in windows of 6 h.)")
    return " ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=40, help="windows per scenario (default 40)")
    parser.add_argument("--rows", type=int, default=3000, help="rows per 6-hour window (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--repeats", type=int, default=1, help="seeds to replay (seed .. seed+repeats-1)")
    parser.add_argument("--drift-at", type=int, default=10, help="first drifted window (default 10)")
    parser.add_argument("--reference-hours", type=int, default=24,
                        help="hours of history in the reference (default 24: one daily cycle)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--skip-evidently", action="store_true", help="leave out the Evidently rule")
    parser.add_argument("--json", type=Path, default=None, help="write every window's record and the summary here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every window (and the package's logs)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("include.retraining", "evidently", "lightgbm", "matplotlib", "numba"):
        logging.getLogger(noisy).setLevel(logging.INFO if args.verbose and noisy == "include.retraining"
                                          else logging.ERROR)
    warnings.filterwarnings("ignore")
    rules = [r for r in RULES if not args.skip_evidently or r != "evidently"]
    runs = []
    for seed in range(args.seed, args.seed + args.repeats):
        runs.append(replay(args.windows, args.rows, seed, args.drift_at, args.scenarios,
                           evidently=not args.skip_evidently, reference_hours=args.reference_hours))
    summary = aggregate(runs, rules)
    print()
    print(table(summary, rules, args.repeats, args.drift_at))
    print()
    print(reading(summary, rules, args.repeats, args.windows, args.drift_at))
    if args.json:
        payload = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                   "summary": summary, "comparison": compare(summary, rules, args.repeats), "runs": runs}
        args.json.write_text(json.dumps(payload, indent=1, default=float))
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
