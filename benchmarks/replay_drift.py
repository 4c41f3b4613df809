"""Replay the retrain decision over synthetic streams with known drift points, against two simpler rules.

Four synthetic streams, each with its own LightGBM champion, arrive at 500 rows/h and are checked in
6-hour windows (``--rows`` rows each, 4 windows a day):

- ``credit``: a credit-risk-like binary stream (12 numeric + 3 categorical features; the label
  follows a logistic model that depends mostly on five features: credit_score, debt_to_income,
  late_payments_12m, annual_income, revolving_utilization); three days of history;
- ``seasonal``: the credit stream with a daily cycle (see the ``seasonal`` scenario);
- ``concentrated``: 20 standard-normal numeric features x00..x19 and a label logistic in all 20 with
  equal coefficients (0.3 each), so the champion's permutation importance spreads evenly (about 5 %
  per feature); three days of history;
- ``weather``: 12 numeric features, six of them weather-like (temperature, humidity, wind_speed,
  pressure, cloud_cover, precipitation): each window's mean follows an AR(1) across windows
  (phi 0.9, stationary sd 1 in units of the per-row noise, which is standard normal around it),
  continuing through the history and the replay; the other six are stationary standard normals; the
  label is logistic in all 12 with fixed coefficients; ``--weather-history-days`` (14 by default, 56
  windows) of history, so that the calibration sees the weather wander.

Each champion is trained with the package's own code (``training.fit`` with the default LightGBM
hyperparameters, no Optuna search) on its history split as ``prepare`` does (the out-of-time holdout
of the newest ``gate.holdout_hours``, the earlier rows by ``snapshots.assign_splits``); as
``training.train_candidate`` does, it gets baseline metrics on that holdout, permutation importances
(``training.feature_importance``), the isotonic calibration on the validation rows and the label-free
``estimated_baseline``. The reference profile (``drift.build_profile``) is the last day of the history
(``--reference-hours``, 24 by default, so that it covers a whole daily cycle; the package's own
default is ``window.lookback_hours``, 6 h), and, as ``prepare`` does, ``profile["calibration"] =
calibration.calibrate(history, profile, ts, cutoff, window.lookback_hours, reference_hours,
max_windows=drift.calibration_windows)``: the statistics of the history's 6-hour windows against the
reference, from which the check derives per-feature thresholds at the edge of natural variation.

Scenarios (``--windows`` windows, drift from window ``--drift-at`` on, fresh random draws per
window; the drift sizes are fixed below and were not tuned to favour any rule):

- ``no_drift`` (credit): the same distribution throughout;
- ``sudden_shift`` (credit): credit_score -0.75 sd, revolving_utilization +0.5 sd, open_accounts +0.75 sd;
- ``gradual`` (credit): credit_score's mean falls linearly to -1 sd over 15 windows (1/15 sd in the
  first drifted window) while the loan_purpose mix moves toward small_business and medical;
- ``label_only`` (credit): P(y | x) changes (credit_score's coefficient weakens from -1.1 to -0.4),
  the features do not;
- ``seasonal`` (seasonal): a daily cycle (0.4 sd) in loan_amount, age and months_since_last_inquiry
  and in the channel mix, present in the history and the reference too; no drift ever, so every
  alarm is a false alarm;
- ``concentrated`` (concentrated): drift in a few features of a model that spreads its importance:
  from the drift point x00, x01 and x02 shift by ``--concentrated-shift`` sd (0.5 by default);
- ``weather`` (weather): naturally variable, autocorrelated features and no real change: P(y | x)
  never changes and the weather keeps wandering as it did in the history, so every alarm is a false
  alarm.

Rules, per window:

- ``ours``: the package's decision, run through its own code: ``assessment._before_labels``
  and ``assessment._measure`` (with the registry and the window read stubbed to hand them the
  in-memory champion, profile, metadata and window) and ``assessment.decide`` with the
  default settings (``DriftSection``, ``PerformanceSection``, ``QualitySection``) and
  ``history={"sequential": [...]}``: the ``performance["evidence"]`` of the scenario's earlier
  windows, oldest first (as the pipeline reads it from the events table; the champion never changes
  within a scenario here), for the accumulated concept-drift test; an alarm is the decision
  ``retrain`` (before or after the labels);
- ``evidently``: Evidently's ``Report([DataDriftPreset()])`` on the reference frame against the
  window's features (column kinds declared), alarm when its dataset-drift test fails (share of
  drifted columns >= 0.5, default per-column tests: Wasserstein / Jensen-Shannon at 0.1 here);
- ``any_ks``: ``scipy.stats.ks_2samp`` per numeric feature and, for the categorical features, the
  chi-square test of homogeneity (``scipy.stats.chi2_contingency`` on the 2 x k table of counts),
  reference frame against the window; alarm when any p-value < 0.05.

Reported per scenario and rule: false-alarm rate (alarms in the windows before the drift point, or
in all windows for no_drift, seasonal and weather, over their number), detection delay (windows
from the drift point to the first alarm at or after it, ``missed`` if none), the share of seeds
detected within 2 windows (delay <= 1: an alarm in the drift window or the next) and the share of
post-drift windows alarmed; plus the champion's real F1 before and after the drift next to its
baseline F1 (what the performance signal compares with), and our false alarms broken down by the
signal that raised them. Then the targets of issue 9 (false alarms <= 5 % on every quiet or
harmless stream: no_drift, seasonal, weather, and the pre-drift windows of the drift scenarios;
detection within 2 windows >= 95 % of the seeds for concentrated drift of 0.5 sd or more and for
label-only drift), met or not per rule; the mean wall time per check per rule (ours: the whole
decision, i.e. both assessments with the model scored, the label-free estimate, the bootstrap
standard error and ``decide``, and separately its drift check alone, ``drift.summarize`` +
``drift.check``) with the 1/5/15-minute load averages (``os.getloadavg``, as ``uptime``) sampled
after each scenario; and a paragraph generated from the numbers. With ``--repeats R`` the whole
replay (streams, champions) is repeated for seeds seed..seed+R-1: rates are pooled (and listed per
seed for the quiet streams), delays summarised by their median and the number of misses. ``--json``
keeps every window's record (each rule's verdict and time; our signals, drift_score and its
threshold, every feature's statistic with its fixed and calibrated thresholds, the window's
evidence and the accumulated test, F1) for a closer look.

Usage (from the repository root). A window takes about 4.5 s with Evidently on the shared 2-core machine
(load ~3: ours ~1.7 s, most of it the bootstrap standard error of the window's F1; Evidently ~2.4 s;
any-KS 0.03 s), so all seven scenarios take about 17 minutes per seed with ``--windows 30`` and 22 with
the default 40; ``--skip-evidently`` halves that. The script sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is
set: LightGBM's waiting threads then sleep instead of spinning (same models, same numbers; on a busy
machine a champion trains in ~40 s instead of ~140 s)::

    .venv/bin/python benchmarks/replay_drift.py [--windows 40] [--rows 3000] [--seed 0]
        [--repeats 1] [--scenarios ...] [--concentrated-shift 0.5] [--weather-history-days 14]
        [--skip-evidently] [--json out.json]
    .venv/bin/python benchmarks/replay_drift.py --from-json seed0.json seed1.json ... [--json pooled.json]

    # issue 9: all scenarios, five seeds; the concentrated drift at 1 and 3 sd too
    .venv/bin/python benchmarks/replay_drift.py --repeats 5 --windows 30 --json /tmp/replay9.json
    .venv/bin/python benchmarks/replay_drift.py --repeats 5 --windows 30 --scenarios concentrated \\
        --concentrated-shift 1
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

log = logging.getLogger("replay_drift")

SCENARIOS = ("no_drift", "sudden_shift", "gradual", "label_only", "seasonal", "concentrated", "weather")
NO_DRIFT_SCENARIOS = ("no_drift", "seasonal", "weather")
STREAM_OF = {"no_drift": "credit", "sudden_shift": "credit", "gradual": "credit", "label_only": "credit",
             "seasonal": "seasonal", "concentrated": "concentrated", "weather": "weather"}
RULES = ("ours", "evidently", "any_ks")
RULE_LABELS = {
    "ours": "ours (decide, defaults)",
    "evidently": "Evidently DataDriftPreset",
    "any_ks": "any KS/chi2 p<0.05",
}
ALPHA = 0.05

# issue 9's targets
QUIET_TARGET = 0.05  # false-alarm rate on every quiet or harmless stream
DETECTION_TARGET = 0.95  # share of seeds detected within 2 windows
DETECTION_SCENARIOS = ("concentrated", "label_only")  # concentrated: for a shift of 0.5 sd or more
WITHIN = 2  # "within 2 windows": an alarm in the drift window or the next (delay <= 1)

WINDOW_HOURS = 6
HISTORY_HOURS = 72  # the credit and concentrated champions' training data: three days before the first window
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

# concentrated: 20 equally important features, three of them shift
CONCENTRATED = [f"x{i:02d}" for i in range(20)]
CONCENTRATED_COEF, CONCENTRATED_INTERCEPT = 0.3, -1.5
CONCENTRATED_SHIFTED = ("x00", "x01", "x02")
CONCENTRATED_SHIFT = 0.5  # sd; --concentrated-shift

# weather: six features whose window means wander (AR(1) across windows), six steady ones; P(y | x) fixed
WEATHER = ["temperature", "humidity", "wind_speed", "pressure", "cloud_cover", "precipitation"]
STEADY = ["asset_age", "load_factor", "usage_hours", "maintenance_gap", "crew_size", "distance_km"]
WEATHER_NUMERIC = [*WEATHER, *STEADY]
WEATHER_COEF = {"temperature": 0.5, "humidity": 0.3, "wind_speed": 0.4, "pressure": 0.2, "cloud_cover": 0.15,
                "precipitation": 0.1, "asset_age": 0.6, "load_factor": 0.8, "usage_hours": 0.4,
                "maintenance_gap": 0.3, "crew_size": -0.2, "distance_km": 0.1}
WEATHER_INTERCEPT = -1.6
WEATHER_PHI = 0.9  # window-to-window autocorrelation of the weather features' means
WEATHER_SD = 1.0  # stationary sd of those means, in units of the per-row noise (standard normal)
WEATHER_HISTORY_DAYS = 14  # --weather-history-days
WEATHER_MAX_WINDOWS = 4096  # the weather path's length either side of window 0


# --- the streams ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """A stream's columns and how many 6-hour windows of history its champion is trained on."""

    name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


STREAMS = {
    "credit": Stream("credit", tuple(NUMERIC), tuple(CATEGORICAL)),
    "seasonal": Stream("seasonal", tuple(NUMERIC), tuple(CATEGORICAL)),
    "concentrated": Stream("concentrated", tuple(CONCENTRATED), ()),
    "weather": Stream("weather", tuple(WEATHER_NUMERIC), ()),
}


@dataclass(frozen=True)
class Options:
    """The scenario sizes a run may change from the command line."""

    concentrated_shift: float = CONCENTRATED_SHIFT
    weather_history_days: int = WEATHER_HISTORY_DAYS

    def history_windows(self, stream: str) -> int:
        hours = 24 * self.weather_history_days if stream == "weather" else HISTORY_HOURS
        return int(hours // WINDOW_HOURS)


@dataclass(frozen=True)
class Conditions:
    """What the stream looks like at a moment: latent mean shifts (sd), purpose mix, concept, seasonality."""

    shifts: dict[str, float] = field(default_factory=dict)
    purpose_mix: float = 0.0  # 0: PURPOSE_P, 1: PURPOSE_P_DRIFTED
    concept: bool = False
    seasonal: bool = False


def conditions(scenario: str, window: int, drift_at: int,
               concentrated_shift: float = CONCENTRATED_SHIFT) -> Conditions:
    """The stream's conditions in window ``window`` (negative: the history) of ``scenario``."""
    seasonal = scenario == "seasonal"
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIOS)}")
    if window < drift_at or scenario in NO_DRIFT_SCENARIOS:
        return Conditions(seasonal=seasonal)
    if scenario == "sudden_shift":
        return Conditions(shifts=dict(SUDDEN_SHIFT))
    if scenario == "gradual":
        progress = min(1.0, (window - drift_at + 1) / GRADUAL_RAMP)
        return Conditions(shifts={GRADUAL_FEATURE: GRADUAL_TARGET * progress}, purpose_mix=progress)
    if scenario == "label_only":
        return Conditions(concept=True)
    if scenario == "concentrated":
        return Conditions(shifts=dict.fromkeys(CONCENTRATED_SHIFTED, concentrated_shift))
    raise ValueError(f"scenario {scenario!r} has no drift conditions")


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
    """The ground truth P(default | x) of the credit stream: a function of the observed features only."""
    coef = {**COEF, **(CONCEPT_COEF if concept else {})}
    z = _standardised(frame)
    logit = INTERCEPT + sum(coef[name] * z[name] for name in coef)
    logit = logit + frame["loan_purpose"].map(PURPOSE_EFFECT).fillna(0.0).to_numpy()
    logit = logit + frame["home_ownership"].map(HOME_EFFECT).fillna(0.0).to_numpy()
    return 1.0 / (1.0 + np.exp(-logit))


def _times(rng: np.random.Generator, n: int, start_hour: float, hours: float) -> np.ndarray:
    return np.sort(rng.uniform(start_hour, start_hour + hours, n))


def _timestamps(t: np.ndarray) -> pd.Series:
    return pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(t, unit="h")


def generate(rng: np.random.Generator, n: int, start_hour: float, hours: float, cond: Conditions) -> pd.DataFrame:
    """``n`` credit applications spread uniformly over ``[start_hour, start_hour + hours)``, with their labels."""
    t = _times(rng, n, start_hour, hours)
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
        TIMESTAMP: _timestamps(t),
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


def _logistic_labels(rng: np.random.Generator, frame: pd.DataFrame, intercept: float,
                     coef: dict[str, float]) -> np.ndarray:
    logit = intercept + sum(c * frame[name].to_numpy() for name, c in coef.items())
    return (rng.random(len(frame)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)


def generate_concentrated(rng: np.random.Generator, n: int, start_hour: float, hours: float,
                          cond: Conditions) -> pd.DataFrame:
    """``n`` rows of the concentrated stream: x00..x19 standard normal (plus the shifts), label logistic in all."""
    t = _times(rng, n, start_hour, hours)
    values = {name: np.round(rng.standard_normal(n) + cond.shifts.get(name, 0.0), 4) for name in CONCENTRATED}
    frame = pd.DataFrame({TIMESTAMP: _timestamps(t), **values})
    frame[LABEL] = _logistic_labels(rng, frame, CONCENTRATED_INTERCEPT, dict.fromkeys(CONCENTRATED, CONCENTRATED_COEF))
    return frame


@functools.lru_cache(maxsize=64)
def _weather_paths(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The weather features' window means from window 0 forward and backward (a stationary Gaussian AR(1)
    is time-reversible, so the history is drawn backward from window 0 with the same law; the replayed
    windows do not depend on how long the history is)."""
    scale = WEATHER_SD * math.sqrt(1 - WEATHER_PHI ** 2)
    start = WEATHER_SD * np.random.default_rng([seed, 98, 0]).standard_normal(len(WEATHER))
    paths = []
    for direction in (1, 2):
        eps = np.random.default_rng([seed, 98, direction]).standard_normal((WEATHER_MAX_WINDOWS, len(WEATHER)))
        path = np.empty_like(eps)
        previous = start
        for i in range(WEATHER_MAX_WINDOWS):
            previous = path[i] = WEATHER_PHI * previous + scale * eps[i]
        paths.append(path)
    return np.vstack([start, paths[0]]), paths[1]


def weather_means(seed: int, window: int) -> np.ndarray:
    """The weather features' means in window ``window`` (negative: the history), in per-row sd."""
    forward, backward = _weather_paths(seed)
    if not -WEATHER_MAX_WINDOWS <= window < WEATHER_MAX_WINDOWS:
        raise ValueError(f"window {window} beyond the weather path (+-{WEATHER_MAX_WINDOWS} windows)")
    return forward[window] if window >= 0 else backward[-window - 1]


def generate_weather(rng: np.random.Generator, n: int, start_hour: float, hours: float,
                     means: np.ndarray) -> pd.DataFrame:
    """``n`` rows of the weather stream: the weather features standard normal around the window's means,
    the steady ones standard normal; the label logistic in all twelve (never changes)."""
    t = _times(rng, n, start_hour, hours)
    values = {name: np.round(means[j] + rng.standard_normal(n), 4) for j, name in enumerate(WEATHER)}
    values.update({name: np.round(rng.standard_normal(n), 4) for name in STEADY})
    frame = pd.DataFrame({TIMESTAMP: _timestamps(t), **values})
    frame[LABEL] = _logistic_labels(rng, frame, WEATHER_INTERCEPT, WEATHER_COEF)
    return frame


def _draw(stream: str, rng: np.random.Generator, seed: int, window: int, rows: int, cond: Conditions) -> pd.DataFrame:
    start = WINDOW_HOURS * window
    if stream == "concentrated":
        return generate_concentrated(rng, rows, start, WINDOW_HOURS, cond)
    if stream == "weather":
        return generate_weather(rng, rows, start, WINDOW_HOURS, weather_means(seed, window))
    return generate(rng, rows, start, WINDOW_HOURS, cond)


def window_frame(seed: int, scenario: str, window: int, rows: int, drift_at: int,
                 options: Options | None = None) -> pd.DataFrame:
    """Window ``window`` of ``scenario``: its own random draw, hours [6 w, 6 w + 6)."""
    options = options or Options()
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario), window + 10_000])
    cond = conditions(scenario, window, drift_at, options.concentrated_shift)
    return _draw(STREAM_OF[scenario], rng, seed, window, rows, cond)


def history_frame(seed: int, stream: str, rows_per_window: int, options: Options | None = None) -> pd.DataFrame:
    """The champion's labelled history before the first window: ``options.history_windows(stream)`` windows."""
    options = options or Options()
    rng = np.random.default_rng([seed, 99, list(STREAMS).index(stream)])
    windows = options.history_windows(stream)
    cond = Conditions(seasonal=stream == "seasonal")
    parts = [_draw(stream, rng, seed, i - windows, rows_per_window, cond) for i in range(windows)]
    return pd.concat(parts, ignore_index=True)


# --- the champion ---------------------------------------------------------------------------------------------


def make_config(reference_hours: int = 24, lightgbm_params: dict[str, Any] | None = None,
                stream: str = "credit") -> Any:
    """A RetrainingConfig with every decision setting at its default (as tests/unit/unit_helpers.build_config).

    ``lightgbm_params`` override the package's default LightGBM hyperparameters (the smoke test
    uses fewer trees); the replay itself uses the defaults."""
    from include.retraining.config import RetrainingConfig

    spec = STREAMS[stream]
    model: dict[str, Any] = {"name": "replay_drift", "task": "binary", "type": "lightgbm"}
    if lightgbm_params:
        model["hyperparameters"] = {"lightgbm": dict(lightgbm_params)}
    return RetrainingConfig.model_validate({
        "model": model,
        "source": {"kind": "parquet", "path": "/nonexistent/replay.parquet"},
        "columns": {"timestamp": TIMESTAMP, "label": LABEL, "numeric": list(spec.numeric),
                    "categorical": list(spec.categorical)},
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
    """Split, fit, baseline, importance, calibration, reference profile and its drift calibration, as
    prepare/train_candidate do."""
    from include.retraining.monitoring import calibration, drift
    from include.retraining.training.models import fit, monitoring_meta
    from include.retraining.training.prepare import out_of_time_holdout
    from include.retraining.training.snapshots import assign_splits

    numeric, categorical = list(cfg.columns.numeric), list(cfg.columns.categorical)
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
    profile = drift.build_profile(reference, numeric, categorical, cfg.drift.bins, fine_bins=cfg.drift.fine_bins,
                                  sample_rows=cfg.drift.sample_rows, seed=cfg.training.seed)
    if cfg.drift.threshold_mode == "calibrated":  # as prepare does, on the labelled training rows
        profile["calibration"] = calibration.calibrate(
            frame, profile, TIMESTAMP, cutoff.to_pydatetime(), cfg.window.lookback_hours,
            cfg.drift.reference_hours or cfg.window.lookback_hours, max_windows=cfg.drift.calibration_windows)
    meta = {
        "task": "binary", "model_type": "lightgbm", "features": [*numeric, *categorical], "numeric": numeric,
        "categorical": categorical, "label": LABEL, "classes": classes,
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
            patch.object(registry, "load_model", lambda uri, threads=None: champion.model), \
            patch.object(assessment, "_read_window", read_window):
        yield


def _feature_record(f: dict[str, Any]) -> dict[str, Any]:
    """One feature of our drift verdict: the statistic compared, its thresholds and what it counted for."""
    observed = f["p_adjusted"] if f["kind_of_statistic"] == "p_value" else f["statistic"]
    return {"method": f["method"], "statistic": observed, "threshold": f["threshold"],
            "fixed_threshold": f.get("fixed_threshold"), "calibrated_threshold": f.get("calibrated_threshold"),
            "drifted": bool(f["drifted"]), "strength": f.get("strength"), "importance": f.get("importance")}


def rule_ours(cfg: Any, champion: Champion, window: pd.DataFrame, index: int,
              sequential: Sequence[dict[str, Any] | None] = ()) -> dict[str, Any]:
    """The package's own assessment and decision for this window (before the labels, then with them).

    ``sequential``: the ``performance["evidence"]`` of the earlier windows judged by this champion, oldest
    first, handed to ``decide`` as the pipeline hands it the events table's record."""
    from include.retraining.monitoring import assessment
    from include.retraining.point_in_time import Judge

    base = {"window_start": f"w{index}", "window_end": f"w{index + 1}", "rows": len(window),
            "labelled_rows": len(window), "min_labelled_rows": cfg.window.min_labelled_rows}
    with serving(champion, window):
        early = assessment._before_labels(cfg, base, None, None, len(window),
                                          lambda: Judge(champion.info, "registry"))
        final = assessment._measure(cfg, base, champion.info, None, None, len(window))
    history = {"sequential": list(sequential)}
    early_decision = assessment.decide(cfg, early, history=history) if early is not None else None
    decision = assessment.decide(cfg, final, history=history)
    early_alarm = bool(early_decision and early_decision["decision"] == "retrain")
    perf = final["performance"] or {}
    verdict = final["drift"]
    # drift that the labels show harmless is detected and recorded; drift.action decides whether it retrains
    recorded = decision.get("harm") == "none_measured" and decision["decision"] != "retrain"
    return {
        "alarm": early_alarm or decision["decision"] == "retrain" or recorded,
        "recorded_only": recorded,
        "before_labels": early_alarm,
        "decision": decision["decision"],
        "signals": decision.get("signals", []),
        "drift_detected": bool(verdict["detected"]),
        "drift_score": verdict.get("drift_score"),
        "score_threshold": verdict.get("score_threshold"),
        "calibrated_score_limit": verdict.get("calibrated_score_limit"),
        "drifted_share": verdict["drifted_share"],
        "drifted_features": verdict["drifted_features"],
        "features": {f["feature"]: _feature_record(f) for f in verdict["features"]},
        "f1": perf.get("current", {}).get("f1"),
        "f1_drop": perf.get("drop"),
        "accuracy": perf.get("current", {}).get("accuracy"),
        "error_increase": perf.get("error_increase"),
        "error_increase_p_value": perf.get("error_increase_p_value"),
        "estimated_f1_drop": (final.get("estimated") or {}).get("drop"),
        "evidence": perf.get("evidence"),
        "accumulated": decision.get("accumulated"),
    }


def drift_check_seconds(cfg: Any, champion: Champion, window: pd.DataFrame) -> float:
    """Wall time of our drift check alone (window summary + verdict), comparable with the other two rules."""
    from include.retraining.monitoring import drift

    started = time.perf_counter()
    drift.check(champion.profile, drift.summarize(window, champion.profile), cfg.drift,
                champion.meta.get("feature_importance"))
    return time.perf_counter() - started


class EvidentlyRule:
    """Evidently 0.7.23's DataDriftPreset with its defaults; the alarm is its dataset-drift test failing."""

    def __init__(self, reference: pd.DataFrame, numeric: Sequence[str] = NUMERIC,
                 categorical: Sequence[str] = CATEGORICAL) -> None:
        from evidently import DataDefinition, Dataset

        self._features = [*numeric, *categorical]
        self._definition = DataDefinition(numerical_columns=list(numeric), categorical_columns=list(categorical))
        self._reference = Dataset.from_pandas(reference[self._features].reset_index(drop=True),
                                              data_definition=self._definition)

    def __call__(self, window: pd.DataFrame) -> dict[str, Any]:
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        current = Dataset.from_pandas(window[self._features].reset_index(drop=True), data_definition=self._definition)
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

    def __init__(self, reference: pd.DataFrame, numeric: Sequence[str] = NUMERIC,
                 categorical: Sequence[str] = CATEGORICAL) -> None:
        self._numeric = {c: reference[c].to_numpy(dtype=float) for c in numeric}
        self._categorical = {c: reference[c].value_counts() for c in categorical}

    def __call__(self, window: pd.DataFrame) -> dict[str, Any]:
        from scipy.stats import chi2_contingency, ks_2samp

        p = {c: float(ks_2samp(ref, window[c].to_numpy(dtype=float)).pvalue) for c, ref in self._numeric.items()}
        for c, ref_counts in self._categorical.items():
            table = pd.concat([ref_counts, window[c].value_counts()], axis=1).fillna(0).to_numpy().T
            p[c] = float(chi2_contingency(table).pvalue)
        rejected = sorted(c for c, v in p.items() if v < ALPHA)
        return {"alarm": bool(rejected), "rejected": rejected, "min_p": min(p.values())}


# --- replay and scoring ---------------------------------------------------------------------------------------


def scenario_note(scenario: str, options: Options) -> str:
    """What the scenario's stream does, in a few words (printed under its rows)."""
    if scenario == "concentrated":
        return (f"{', '.join(CONCENTRATED_SHIFTED)} of 20 equally important features "
                f"+{options.concentrated_shift:g} sd")
    if scenario == "weather":
        return (f"{len(WEATHER)} of 12 features' window means AR(1) phi {WEATHER_PHI:g}, sd {WEATHER_SD:g}; "
                f"{options.weather_history_days} days of history")
    return ""


def replay(windows: int = 40, rows: int = 3000, seed: int = 0, drift_at: int = 10,
           scenarios: Sequence[str] = SCENARIOS, evidently: bool = True, reference_hours: int = 24,
           lightgbm_params: dict[str, Any] | None = None, concentrated_shift: float = CONCENTRATED_SHIFT,
           weather_history_days: int = WEATHER_HISTORY_DAYS) -> dict[str, Any]:
    """Every scenario's windows through every rule, for one seed: per-window records and the summary."""
    if not 0 < drift_at < windows:
        raise ValueError(f"the drift point ({drift_at}) must lie inside the {windows} windows")
    options = Options(concentrated_shift=concentrated_shift, weather_history_days=weather_history_days)
    rules = [r for r in RULES if evidently or r != "evidently"]
    configs: dict[str, Any] = {}
    champions: dict[str, Champion] = {}
    checkers: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {"seed": seed, "options": asdict(options), "scenarios": {}, "champions": {},
                               "load": []}
    for scenario in scenarios:
        stream = STREAM_OF[scenario]
        if stream not in champions:
            started = time.monotonic()
            cfg = configs[stream] = make_config(reference_hours, lightgbm_params, stream)
            history = history_frame(seed, stream, rows, options)
            champion = champions[stream] = train_champion(cfg, history)
            spec = STREAMS[stream]
            checkers[stream] = {"any_ks": AnyTestRule(champion.reference, spec.numeric, spec.categorical)}
            if evidently:
                checkers[stream]["evidently"] = EvidentlyRule(champion.reference, spec.numeric, spec.categorical)
            top = sorted(champion.meta["feature_importance"].items(), key=lambda kv: -kv[1])
            calibrated = champion.profile.get("calibration") or {}
            log.info("seed %d: %s champion trained on %d rows in %.1f s; baseline f1 %.4f on %d rows; "
                     "calibration %d windows; importance %s", seed, stream, len(history), time.monotonic() - started,
                     champion.meta["baseline_metrics"]["f1"], champion.meta["baseline_rows"],
                     len(calibrated.get("windows") or []), ", ".join(f"{k} {v:.2f}" for k, v in top[:6]))
            results["champions"][stream] = {
                "history_rows": len(history),
                "baseline_metrics": champion.meta["baseline_metrics"],
                "baseline_rows": champion.meta["baseline_rows"],
                "feature_importance": champion.meta["feature_importance"],
                "reference_rows": len(champion.reference),
                "calibration_windows": len(calibrated.get("windows") or []),
                "calibration_excluded_reference": calibrated.get("excluded_reference"),
                "calibration_seconds": calibrated.get("seconds"),
                "seconds": round(time.monotonic() - started, 2),
            }
        cfg, champion, checks = configs[stream], champions[stream], checkers[stream]
        records = []
        evidence: list[dict[str, Any] | None] = []  # the sequential history: earlier windows' evidence, oldest first
        started = time.monotonic()
        for w in range(windows):
            frame = window_frame(seed, scenario, w, rows, drift_at, options)
            clock = time.perf_counter()
            ours = rule_ours(cfg, champion, frame, w, evidence)
            ours["seconds"] = round(time.perf_counter() - clock, 4)
            ours["drift_seconds"] = round(drift_check_seconds(cfg, champion, frame), 4)
            evidence.append(ours["evidence"])
            record: dict[str, Any] = {"window": w, "drifted": scenario not in NO_DRIFT_SCENARIOS and w >= drift_at,
                                      "default_rate": round(float(frame[LABEL].mean()), 4), "ours": ours}
            for rule in rules[1:]:
                clock = time.perf_counter()
                record[rule] = checks[rule](frame)
                record[rule]["seconds"] = round(time.perf_counter() - clock, 4)
            records.append(record)
            log.debug("%s w%02d: %s; drift_score %s (>= %s); accumulated %s", scenario, w,
                      {r: record[r]["alarm"] for r in rules}, ours["drift_score"], ours["score_threshold"],
                      (ours["accumulated"] or {}).get("error"))
        load = os.getloadavg()
        results["load"].append({"scenario": scenario, "load": [round(v, 2) for v in load]})
        log.info("seed %d: %-12s %d windows in %.1f s; alarms %s; load %.2f %.2f %.2f", seed, scenario, windows,
                 time.monotonic() - started, ", ".join(f"{r} {sum(rec[r]['alarm'] for rec in records)}"
                                                      for r in rules), *load)
        summary = summarize(scenario, records, rules, drift_at)
        summary["stream"] = stream
        summary["note"] = scenario_note(scenario, options)
        if scenario == "concentrated":
            summary["concentrated_shift"] = options.concentrated_shift
        summary["baseline_f1"] = champion.meta["baseline_metrics"]["f1"]
        summary["baseline_rows"] = champion.meta["baseline_rows"]
        results["scenarios"][scenario] = {"windows": records, "summary": summary}
    return results


def summarize(scenario: str, records: list[dict[str, Any]], rules: Sequence[str], drift_at: int) -> dict[str, Any]:
    """Per rule: false alarms, detection delay, detected within 2 windows, post-drift alarm share; and the
    champion's real F1 pre/post."""
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
            entry["within_2"] = entry["delay"] is not None and entry["delay"] <= WITHIN - 1
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
    """The summaries of several seeds: pooled rates, the list of delays (None = missed), their median and the
    share of seeds detected within 2 windows."""
    out: dict[str, Any] = {}
    for scenario in runs[0]["scenarios"]:
        summaries = [run["scenarios"][scenario]["summary"] for run in runs]
        entry: dict[str, Any] = {"rules": {}}
        for rule in rules:
            per = [s["rules"][rule] for s in summaries]
            pre = sum(s["pre_windows"] for s in summaries)
            false_alarms = sum(p["false_alarms"] for p in per)
            agg: dict[str, Any] = {"false_alarm_rate": round(false_alarms / pre, 4),
                                   "false_alarm_rates": [p["false_alarm_rate"] for p in per],
                                   "false_alarms": false_alarms, "pre_windows": pre}
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
                agg["within_2"] = round(sum(d is not None and d <= WITHIN - 1 for d in delays) / len(delays), 4)
                post = sum(s["post_windows"] for s in summaries)
                agg["post_alarm_share"] = round(sum(p["post_alarmed"] for p in per) / post, 4)
            entry["rules"][rule] = agg
        entry["baseline_f1"] = [s.get("baseline_f1") for s in summaries]
        for key in ("f1_pre", "f1_post", "f1_last10"):
            values = [s[key] for s in summaries if s[key] is not None]
            entry[key] = round(statistics.fmean(values), 4) if values else None
        for key in ("stream", "note", "concentrated_shift"):
            if summaries[0].get(key) not in (None, ""):
                entry[key] = summaries[0][key]
        out[scenario] = entry
    return out


def targets(summary: dict[str, Any], rules: Sequence[str]) -> list[dict[str, Any]]:
    """Issue 9's targets per rule: false alarms <= 5 % on every quiet or harmless stream (the no-drift scenarios
    and, pooled, the pre-drift windows of the drift scenarios); detection within 2 windows >= 95 % of the seeds
    for concentrated drift (of 0.5 sd or more) and label-only drift."""
    rows: list[dict[str, Any]] = []
    for scenario in NO_DRIFT_SCENARIOS:
        if scenario in summary:
            rows.append({"target": f"false alarms {scenario} <= {QUIET_TARGET:.0%}", "kind": "false_alarms",
                         "rules": {r: (v := summary[scenario]["rules"][r]["false_alarm_rate"], v <= QUIET_TARGET)
                                   for r in rules}})
    drifting = [s for s, e in summary.items() if s not in NO_DRIFT_SCENARIOS]
    if drifting:
        pooled = {}
        for r in rules:
            alarms = sum(summary[s]["rules"][r]["false_alarms"] for s in drifting)
            windows = sum(summary[s]["rules"][r]["pre_windows"] for s in drifting)
            pooled[r] = (round(alarms / windows, 4), alarms / windows <= QUIET_TARGET)
        rows.append({"target": f"false alarms before the drift ({len(drifting)} scenarios) <= {QUIET_TARGET:.0%}",
                     "kind": "false_alarms", "rules": pooled})
    for scenario in DETECTION_SCENARIOS:
        if scenario not in summary:
            continue
        shift = summary[scenario].get("concentrated_shift")
        label = scenario + (f" +{shift:g} sd" if shift is not None else "")
        applies = shift is None or shift >= 0.5
        rows.append({"target": f"{label} detected within {WITHIN} windows >= {DETECTION_TARGET:.0%}"
                               + ("" if applies else " (target is for >= 0.5 sd)"), "kind": "detection",
                     "applies": applies,
                     "rules": {r: (v := summary[scenario]["rules"][r]["within_2"], v >= DETECTION_TARGET)
                               for r in rules}})
    return rows


def timing(runs: list[dict[str, Any]], rules: Sequence[str]) -> dict[str, Any]:
    """Mean wall time per check per rule, overall and per stream, and the load averages sampled during the runs."""
    per_stream: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for result in run["scenarios"].values():
            stream = result["summary"].get("stream", "credit")
            bucket = per_stream.setdefault(stream, {})
            for record in result["windows"]:
                for rule in rules:
                    bucket.setdefault(rule, []).append(record[rule]["seconds"])
                bucket.setdefault("ours_drift_check", []).append(record["ours"]["drift_seconds"])
    keys = [*rules, "ours_drift_check"]
    overall = {k: [v for b in per_stream.values() for v in b.get(k, [])] for k in keys}
    loads = [sample["load"] for run in runs for sample in run.get("load", [])]
    return {
        "checks": len(overall[rules[0]]),
        "mean_seconds": {k: round(statistics.fmean(v), 4) for k, v in overall.items() if v},
        "per_stream": {s: {k: round(statistics.fmean(v), 4) for k, v in b.items()} for s, b in per_stream.items()},
        "load_1min_range": [min(x[0] for x in loads), max(x[0] for x in loads)] if loads else None,
        "load_samples": loads,
        "load_at_end": [round(v, 2) for v in os.getloadavg()],
    }


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
    head = (f"{'scenario':<13} {'rule':<27} {'false alarms':>12} {'delay':>16} {'within 2':>9} "
            f"{'post-drift alarmed':>19}")
    lines = [head, "-" * len(head)]
    for scenario, entry in summary.items():
        for i, rule in enumerate(rules):
            agg = entry["rules"][rule]
            post = f"{agg['post_alarm_share']:.0%}" if "post_alarm_share" in agg else "-"
            within = f"{agg['within_2']:.0%}" if "within_2" in agg else "-"
            lines.append(f"{scenario if i == 0 else '':<13} {RULE_LABELS[rule]:<27} "
                         f"{agg['false_alarm_rate']:>12.1%} {_fmt_delay(agg, repeats):>16} {within:>9} {post:>19}")
        if entry.get("note"):
            lines.append(f"{'':<13} ({entry['note']})")
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


def targets_table(rows: list[dict[str, Any]], rules: Sequence[str]) -> str:
    """Issue 9's targets, one line each: every rule's value and whether it meets the target."""
    width = max([len(r["target"]) for r in rows] + [6])
    head = f"{'target':<{width}} " + " ".join(f"{RULE_LABELS[r]:>26}" for r in rules)
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = []
        for rule in rules:
            value, met = row["rules"][rule]
            cells.append(f"{value:.0%} {'met' if met else 'MISSED'}".rjust(26))
        lines.append(f"{row['target']:<{width}} " + " ".join(cells))
    return "\n".join(lines)


def timing_text(times: dict[str, Any], rules: Sequence[str]) -> str:
    keys = [*rules, "ours_drift_check"]
    labels = {**RULE_LABELS, "ours": "ours (whole decision)", "ours_drift_check": "ours (drift check alone)"}
    lines = [f"Mean wall time per check over {times['checks']} checks per rule: "
             + "; ".join(f"{labels[k]} {times['mean_seconds'][k]:.3f} s" for k in keys if k in times["mean_seconds"])]
    for stream, means in times["per_stream"].items():
        features = len(STREAMS[stream].features)
        lines.append(f"  {stream} ({features} features): "
                     + "; ".join(f"{k} {means[k]:.3f} s" for k in keys if k in means))
    lo_hi = times.get("load_1min_range")
    load = f"1-minute load {lo_hi[0]:.2f}-{lo_hi[1]:.2f} after the scenarios" if lo_hi else "load not sampled"
    end = times["load_at_end"]
    lines.append(f"  ({load}; load average at the end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}, "
                 f"{os.cpu_count()} cores)")
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
    goals = targets(summary, rules)
    for rule in rules:
        fa = {s: e["rules"][rule]["false_alarm_rate"] for s, e in summary.items()}
        chance = detected_by_chance(summary, rule)
        missed = [s for s, e in summary.items() if math.isinf(_delay_key(e["rules"][rule], repeats))
                  and "delays" in e["rules"][rule]]
        detected = [s for s, e in summary.items() if "delays" in e["rules"][rule] and s not in missed]
        quiet = ", ".join(f"{s} {fa[s]:.0%}" for s in NO_DRIFT_SCENARIOS if s in fa)
        per_seed = ""
        if repeats > 1 and any(s in summary for s in NO_DRIFT_SCENARIOS):
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
        within = ", ".join(f"{s} {e['rules'][rule]['within_2']:.0%}" for s, e in summary.items()
                           if "within_2" in e["rules"][rule])
        met = [g for g in goals if g.get("applies", True)]
        n_met = sum(g["rules"][rule][1] for g in met)
        parts.append(f"{RULE_LABELS[rule]}: false-alarm rate {min(fa.values()):.0%}-{max(fa.values()):.0%} "
                     f"({quiet or 'no quiet stream'}{';' + per_seed if per_seed else ''}){cause_text}; "
                     f"detects {', '.join(detected) or 'nothing'}"
                     + (f"; misses {', '.join(missed)}" if missed else "")
                     + (f"; detected within {WITHIN} windows: {within}" if within else "")
                     + (f"; in {', '.join(chance)} it alarms no more often after the drift than it false-alarms "
                        "without drift, so its 'detection' there is chance" if chance else "")
                     + (f"; meets {n_met} of {len(met)} targets of issue 9" if met else "") + ".")
    parts.append(f"({windows} windows per scenario, drift from window {drift_at}; "
                 f"{repeats} seed(s); delays in windows of 6 h.)")
    return " ".join(parts)


def pooled_runs(args: argparse.Namespace, files: Sequence[Path]) -> tuple[list[dict[str, Any]], list[str], float]:
    """The runs of earlier ``--json`` files, their rules and total seconds; ``args`` takes their settings."""
    payloads = [json.loads(Path(f).read_text()) for f in files]
    settings = ("windows", "rows", "drift_at", "reference_hours", "concentrated_shift", "weather_history_days")
    first = payloads[0]["args"]
    for f, payload in zip(files, payloads, strict=True):
        differ = [k for k in settings if payload["args"].get(k) != first.get(k)]
        scenarios = [list(run["scenarios"]) for run in payload["runs"]]
        if differ or any(s != list(payloads[0]["runs"][0]["scenarios"]) for s in scenarios):
            raise SystemExit(f"{f}: not the same replay as {files[0]} ({', '.join(differ) or 'scenarios'} differ)")
    runs = [run for payload in payloads for run in payload["runs"]]
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"seeds repeat across the files: {seeds}")
    for key in settings:
        setattr(args, key, first.get(key, getattr(args, key)))
    args.repeats = len(runs)
    args.scenarios = list(runs[0]["scenarios"])
    window = next(iter(runs[0]["scenarios"].values()))["windows"][0]
    rules = [r for r in RULES if r in window]
    args.skip_evidently = "evidently" not in rules
    return runs, rules, float(sum(p.get("seconds") or 0.0 for p in payloads))


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
    parser.add_argument("--concentrated-shift", type=float, default=CONCENTRATED_SHIFT,
                        help=f"concentrated: shift of x00, x01, x02 in sd (default {CONCENTRATED_SHIFT:g})")
    parser.add_argument("--weather-history-days", type=int, default=WEATHER_HISTORY_DAYS,
                        help=f"weather: days of history the champion and its calibration see "
                             f"(default {WEATHER_HISTORY_DAYS})")
    parser.add_argument("--skip-evidently", action="store_true", help="leave out the Evidently rule")
    parser.add_argument("--json", type=Path, default=None, help="write every window's record and the summary here")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None, metavar="FILE",
                        help="replay nothing: print the tables of earlier runs' --json files, their seeds pooled "
                             "(e.g. one process per seed; with --json, the pooled file is written)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every window (and the package's logs)")
    args = parser.parse_args(argv)
    # OpenMP threads that sleep instead of spinning while they wait: the same models and numbers (LightGBM keeps
    # its n_jobs), far less time lost to contention on a shared machine. Set before LightGBM is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("include.retraining", "evidently", "lightgbm", "matplotlib", "numba"):
        logging.getLogger(noisy).setLevel(logging.INFO if args.verbose and noisy == "include.retraining"
                                          else logging.ERROR)
    warnings.filterwarnings("ignore")
    rules = [r for r in RULES if not args.skip_evidently or r != "evidently"]
    seeds = list(range(args.seed, args.seed + args.repeats))
    started = time.monotonic()
    runs = []
    seconds = 0.0
    if args.from_json:
        runs, rules, seconds = pooled_runs(args, args.from_json)
        seeds = [run["seed"] for run in runs]
    for seed in [] if args.from_json else seeds:
        runs.append(replay(args.windows, args.rows, seed, args.drift_at, args.scenarios,
                           evidently=not args.skip_evidently, reference_hours=args.reference_hours,
                           concentrated_shift=args.concentrated_shift,
                           weather_history_days=args.weather_history_days))
    seconds += time.monotonic() - started
    summary = aggregate(runs, rules)
    goals = targets(summary, rules)
    times = timing(runs, rules)
    print()
    print(f"seeds {', '.join(map(str, seeds))}; {args.windows} windows of {args.rows} rows per scenario, "
          f"drift from window {args.drift_at}; {seconds:.0f} s in all")
    print(table(summary, rules, args.repeats, args.drift_at))
    print()
    print(targets_table(goals, rules))
    print()
    print(timing_text(times, rules))
    print()
    print(reading(summary, rules, args.repeats, args.windows, args.drift_at))
    if args.json:
        def plain(value: Any) -> Any:
            return [plain(v) for v in value] if isinstance(value, list) else str(value) if isinstance(value, Path) else value

        payload = {"args": {k: plain(v) for k, v in vars(args).items()},
                   "seeds": seeds, "seconds": round(seconds, 1), "summary": summary, "targets": goals, "timing": times,
                   "comparison": compare(summary, rules, args.repeats), "runs": runs}
        args.json.write_text(json.dumps(payload, indent=1, default=float))
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
