"""The evaluation gate: candidate against champion, out of time, on the same held-out rows.

Both models are scored on the **out-of-time holdout**: the most recent labelled period before the
run's cutoff (``gate.holdout_hours``, at least ``gate.min_holdout_rows`` rows), which the candidate
never trained on and which lies after the champion's training data too (rows the champion could have
seen are left out). A model is so judged on data newer than what it learned from, as it will be in
production. Three kinds of criteria, all configurable, all on those rows:

- absolute (``gate.min_absolute``): e.g. recall >= 0.80;
- no regression (``gate.max_regression``): e.g. F1 >= champion F1 - 0.01;
- improvement (``gate.min_improvement``): the primary metric must beat the champion's by at least
  this much, and significantly (a paired test, ``gate.significance``). For bounded metrics
  (accuracy, F1, AUC, R2, ...) the margin is absolute; for RMSE and MAE it is relative (0.01 = 1% lower).

The in-time metrics (random held-out rows from the training period) are reported beside them, as
information only: they flatter every model. With no champion only the absolute criteria apply. The
result lists every criterion with both values, the threshold and whether it passed, and the reasons.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ..config import RetrainingConfig
from ..metrics import HIGHER_IS_BETTER, clean, metrics_of, outputs, score

log = logging.getLogger(__name__)
RELATIVE_METRICS = {"rmse", "mae"}


def _criterion(name: str, metric: str, slice_: str, candidate: float | None, reference: float | None,
               threshold: float | None, passed: bool) -> dict[str, Any]:
    return {
        "criterion": name,
        "metric": metric,
        "slice": slice_,
        "candidate": candidate,
        "champion": reference,
        "threshold": None if threshold is None else round(threshold, 6),
        "passed": bool(passed),
    }


def judge(
    cfg: RetrainingConfig,
    candidate: dict[str, float | None],
    champion: dict[str, float | None] | None,
    significance: dict[str, Any] | None = None,
    smoke: dict[str, Any] | None = None,
    slice_: str = "out_of_time",
) -> dict[str, Any]:
    """Apply the criteria to metrics already computed on the same rows. Pure: no I/O."""
    criteria: list[dict[str, Any]] = []
    if smoke is not None:
        criteria.append({**_criterion("smoke", "p99_latency_ms", "recent", smoke["p99_latency_ms"], None,
                                      smoke["max_p99_latency_ms"], smoke["passed"]), "detail": smoke})
    for metric, minimum in cfg.gate.min_absolute.items():
        value = candidate.get(metric)
        if metric not in candidate:
            continue
        ok = value is not None and (value >= minimum if HIGHER_IS_BETTER[metric] else value <= minimum)
        criteria.append(_criterion("absolute", metric, slice_, value, None, minimum, ok))
    if champion is not None:
        for metric, tolerance in cfg.gate.max_regression.items():
            if metric not in candidate or candidate.get(metric) is None or champion.get(metric) is None:
                continue
            new, old = candidate[metric], champion[metric]
            bound = old - tolerance if HIGHER_IS_BETTER[metric] else old + tolerance
            ok = new >= bound if HIGHER_IS_BETTER[metric] else new <= bound
            criteria.append(_criterion("no_regression", metric, slice_, new, old, bound, ok))
        metric = cfg.primary_metric
        new, old = candidate.get(metric), champion.get(metric)
        margin = cfg.gate.min_improvement
        if new is None or old is None:
            criteria.append(_criterion("improvement", metric, slice_, new, old, None, False))
        else:
            if metric in RELATIVE_METRICS:
                bound = old * (1 - margin)
            else:
                bound = old + margin if HIGHER_IS_BETTER[metric] else old - margin
            ok = new >= bound if HIGHER_IS_BETTER[metric] else new <= bound
            criteria.append(_criterion("improvement", metric, slice_, new, old, bound, ok))
        if significance is not None:
            criteria.append(_significance_criterion(metric, slice_, significance))
    failed = [c for c in criteria if not c["passed"]]
    reasons = [_describe(c) for c in failed] or [
        "no champion yet: absolute criteria passed" if champion is None else "all criteria passed"
    ]
    return {"passed": not failed, "criteria": criteria, "reasons": reasons, "failed": [c["criterion"] + ":" + c["metric"] for c in failed]}


def _significance_criterion(metric: str, slice_: str, result: dict[str, Any]) -> dict[str, Any]:
    """Passed when the improvement is unlikely to be luck: the whole confidence interval of the
    paired difference is on the better side (bootstrap), or McNemar's test rejects "no difference"
    with the candidate right more often."""
    if result.get("method") == "mcnemar":
        ok = bool(result.get("candidate_better")) and result["p_value"] < result["alpha"]
        return {**_criterion("significance", "accuracy", slice_, result["c"], result["b"], result["alpha"], ok),
                "detail": result}
    low, high = result.get("ci_low"), result.get("ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        ok = False
    else:
        ok = low > 0 if HIGHER_IS_BETTER[metric] else high < 0
    return {**_criterion("significance", metric, slice_, result.get("candidate"), result.get("champion"), 0.0, ok),
            "detail": result}


def _describe(c: dict[str, Any]) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    if c["criterion"] == "smoke":
        d = c["detail"]
        if not d["valid"]:
            return f"the artifact to be served gave invalid scores on {d['rows']} recent rows: {d['problem']}"
        return f"single-row p99 latency {d['p99_latency_ms']:.1f} ms exceeds {d['max_p99_latency_ms']:.0f} ms"
    if c["criterion"] == "significance":
        d = c["detail"]
        if d.get("method") == "mcnemar":
            return (f"McNemar: the candidate is right on {d['c']} rows the champion misses and wrong on {d['b']} "
                    f"it gets right (p = {d['p_value']:.3f}, needs < {d['alpha']})")
        side = "above" if HIGHER_IS_BETTER.get(c["metric"], True) else "below"
        return (f"the {c['metric']} difference {fmt(d.get('difference'))} is not a significant improvement: its "
                f"{d.get('confidence', 0.95):.0%} paired-bootstrap interval [{fmt(d.get('ci_low'))}, "
                f"{fmt(d.get('ci_high'))}] on {d.get('rows')} rows does not lie entirely {side} 0")
    if c["criterion"] == "absolute":
        return f"{c['metric']} {fmt(c['candidate'])} is below the required {fmt(c['threshold'])}"
    if c["criterion"] == "no_regression":
        return (f"{c['metric']} {fmt(c['candidate'])} regresses against the champion's {fmt(c['champion'])} "
                f"(allowed bound {fmt(c['threshold'])})")
    return (f"{c['metric']} on the {c['slice'].replace('_', '-')} rows {fmt(c['candidate'])} does not beat the champion's "
            f"{fmt(c['champion'])} by the required margin (needs {fmt(c['threshold'])})")


def smoke_test(cfg: RetrainingConfig, model: Any, rows: Any) -> dict[str, Any]:
    """Score ``rows`` with the exact artifact that will be served: every score valid, and the p99
    latency of single-row prediction (the serving path) within ``gate.smoke.max_p99_latency_ms``."""
    features = cfg.columns.features
    rows = rows[features].head(cfg.gate.smoke.rows)
    problem = None
    if cfg.model.task == "regression":
        scores = np.asarray(model.predict(rows), dtype=float)
        if not np.all(np.isfinite(scores)):
            problem = "non-finite predictions"
    else:
        scores = np.asarray(model.predict_proba(rows), dtype=float)
        if not np.all(np.isfinite(scores)):
            problem = "NaN or infinite probabilities"
        elif scores.min() < 0 or scores.max() > 1:
            problem = f"probabilities outside [0, 1] (min {scores.min():.4f}, max {scores.max():.4f})"
        elif not np.allclose(scores.sum(axis=1), 1.0, atol=1e-6):
            problem = "class probabilities do not sum to 1"
    predict = model.predict if cfg.model.task == "regression" else model.predict_proba
    latencies = []
    for i in range(len(rows)):
        started = time.perf_counter()
        predict(rows.iloc[i : i + 1])
        latencies.append((time.perf_counter() - started) * 1000)
    p99 = float(np.percentile(latencies, 99)) if latencies else 0.0
    bound = cfg.gate.smoke.max_p99_latency_ms
    return {"rows": int(len(rows)), "valid": problem is None, "problem": problem,
            "p50_latency_ms": round(float(np.percentile(latencies, 50)), 3) if latencies else 0.0,
            "p99_latency_ms": round(p99, 3), "max_p99_latency_ms": bound,
            "passed": problem is None and p99 <= bound and len(rows) > 0}


def significance_test(cfg: RetrainingConfig, y: np.ndarray, cand: np.ndarray, champ: np.ndarray) -> dict[str, Any] | None:
    """The configured paired test of the primary metric on the rows the improvement is judged on."""
    from . import significance

    conf = cfg.gate.significance
    if conf.method == "none":
        return None
    if conf.method == "mcnemar":
        if cfg.model.task == "regression":
            raise ValueError("gate.significance.method 'mcnemar' needs a classifier; use 'paired_bootstrap'")
        result = significance.mcnemar(y, cand.argmax(axis=1), champ.argmax(axis=1))
        return {**result, "method": "mcnemar", "alpha": round(1 - conf.confidence, 6)}
    result = significance.paired_bootstrap(y, cand, champ, cfg.primary_metric, n_resamples=conf.resamples,
                                           confidence=conf.confidence, seed=cfg.training.seed)
    return {**result, "method": "paired_bootstrap"}


def evaluate(
    cfg: RetrainingConfig,
    candidate_model: Any,
    champion_model: Any | None,
    test: Any,
    y_test: Any,
    *,
    champion_trained_until: Any | None = None,
    in_time: Any | None = None,
    y_in_time: Any | None = None,
) -> dict[str, Any]:
    """Score both models on the out-of-time holdout ``test`` (restricted to rows after
    ``champion_trained_until``, the newest row the champion could have learned from), test the
    improvement for significance, smoke-test the candidate's artifact, then :func:`judge`. The
    in-time rows, when given, are scored too, for information."""
    import pandas as pd

    features = cfg.columns.features
    task = cfg.model.task
    fair = np.ones(len(test), dtype=bool)
    if champion_model is not None and champion_trained_until is not None:
        cutoff = pd.Timestamp(champion_trained_until)
        cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff
        fair = (pd.to_datetime(test[cfg.columns.timestamp], utc=True) > cutoff).to_numpy()
        if not fair.all():
            log.warning("%d of %d holdout rows are not newer than the champion's training data (%s): left out",
                        int((~fair).sum()), len(test), cutoff)
    rows, y = test[fair], y_test[fair]
    if len(rows) == 0:
        raise ValueError(
            f"none of the {len(test)} out-of-time holdout rows is newer than the champion's training data "
            f"(up to {champion_trained_until}): the two models cannot be compared fairly; wait for newer labelled "
            "data or widen gate.holdout_hours"
        )
    cand_scores = outputs(candidate_model, rows[features], task).astype(float)  # each model predicts once
    cand = clean(metrics_of(y, cand_scores, task))
    champ = sig = None
    if champion_model is not None:
        champ_scores = outputs(champion_model, rows[features], task).astype(float)
        champ = clean(metrics_of(y, champ_scores, task))
        sig = significance_test(cfg, y, cand_scores, champ_scores)
    in_time_metrics = None
    if in_time is not None and len(in_time):
        in_time_metrics = {
            "rows": int(len(in_time)),
            "candidate": clean(score(candidate_model, in_time[features], y_in_time, task)),
            "champion": clean(score(champion_model, in_time[features], y_in_time, task)) if champion_model else None,
        }
    smoke = smoke_test(cfg, candidate_model, rows.tail(cfg.gate.smoke.rows))
    verdict = judge(cfg, cand, champ, significance=sig, smoke=smoke)
    ts = pd.to_datetime(rows[cfg.columns.timestamp], utc=True)
    verdict.update(
        {
            "evaluation": "out_of_time",
            "test_rows": int(len(rows)),
            "holdout_rows": int(len(test)),
            "holdout_start": ts.min().isoformat(),
            "holdout_end": ts.max().isoformat(),
            "champion_trained_until": None if champion_trained_until is None else str(champion_trained_until),
            "primary_metric": cfg.primary_metric,
            "candidate_metrics": cand,
            "champion_metrics": champ,
            "in_time": in_time_metrics,
            "significance": sig,
            "smoke": smoke,
        }
    )
    log.info("gate %s on %d out-of-time rows [%s, %s]: %s", "PASSED" if verdict["passed"] else "FAILED",
             len(rows), verdict["holdout_start"][:16], verdict["holdout_end"][:16], "; ".join(verdict["reasons"]))
    return verdict
