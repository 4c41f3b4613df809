"""The evaluation gate: candidate against champion, out of time, on the same held-out rows.

Both models are scored on the **out-of-time holdout**: the most recent labelled period before the
run's cutoff (``gate.holdout_hours``, at least ``gate.min_holdout_rows`` rows), which the candidate
never trained on and which lies after the champion's training data too (rows the champion could have
seen are left out). Three kinds of criteria, all configurable, all on those rows:

- absolute (``gate.min_absolute``): e.g. recall >= 0.80;
- no regression (``gate.max_regression``): e.g. ROC AUC >= champion's - 0.005 (in the metric's units);
- improvement (``gate.min_improvement``): the primary metric must beat the champion's by at least
  this much, and significantly (a paired test on blocks of time, ``gate.significance``). The margin is
  absolute for bounded metrics (accuracy, F1, AUC, Brier, R2) and relative for RMSE, MAE and log loss.

No threshold traps: classifiers are compared on the threshold-free ROC AUC by default; a threshold
metric (accuracy, precision, recall, F1) of a binary model is computed at **each model's own operating
threshold**, chosen on its validation rows at training (``operating_threshold`` in its metadata), never
at one fixed cut for both; a champion trained before thresholds were stored is judged at 0.5 and the
verdict says so. Each such criterion records both thresholds.

Three outcomes (``verdict["outcome"]``): ``promote`` (every criterion passed; ``passed`` is True only
then), ``reject``, and ``inconclusive``: every criterion other than improvement and significance passed
and the candidate is neither shown better nor significantly worse (its interval holds 0, or its gain
is below the margin without being significantly below the champion). The significance record holds the
**minimum detectable effect**: the smallest gain the test could have found on those rows with 80 %
power. The in-time metrics (random held-out rows from the training period) are reported, never judged.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ..config import RetrainingConfig
from ..metrics import (
    DEFAULT_THRESHOLD,
    HIGHER_IS_BETTER,
    THRESHOLD_METRICS,
    clean,
    metrics_of,
    outputs,
    predicted_labels,
    score,
)

log = logging.getLogger(__name__)
RELATIVE_METRICS = {"rmse", "mae", "log_loss"}  # unbounded losses: min_improvement is a share of the champion's
EVIDENCE_CRITERIA = ("improvement", "significance")
OUTCOMES = ("promote", "reject", "inconclusive")


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
    thresholds: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply the criteria to metrics already computed on the same rows. Pure: no I/O.

    ``thresholds`` (binary models): ``{"candidate": t, "champion": t, ...}``, the operating thresholds the
    threshold metrics were computed at, recorded on each criterion of such a metric."""
    criteria: list[dict[str, Any]] = []

    def at(c: dict[str, Any], with_champion: bool) -> dict[str, Any]:
        if thresholds and c["metric"] in THRESHOLD_METRICS:
            c["candidate_threshold"] = thresholds.get("candidate")
            if with_champion:
                c["champion_threshold"] = thresholds.get("champion")
        return c

    if smoke is not None:
        criteria.append({**_criterion("smoke", "p99_latency_ms", "recent", smoke["p99_latency_ms"], None,
                                      smoke["max_p99_latency_ms"], smoke["passed"]), "detail": smoke})
    for metric, minimum in cfg.gate.min_absolute.items():
        value = candidate.get(metric)
        if metric not in candidate:
            continue
        ok = value is not None and (value >= minimum if HIGHER_IS_BETTER[metric] else value <= minimum)
        criteria.append(at(_criterion("absolute", metric, slice_, value, None, minimum, ok), False))
    if champion is not None:
        for metric, tolerance in cfg.gate.max_regression.items():
            if metric not in candidate or candidate.get(metric) is None or champion.get(metric) is None:
                continue
            new, old = candidate[metric], champion[metric]
            bound = old - tolerance if HIGHER_IS_BETTER[metric] else old + tolerance
            ok = new >= bound if HIGHER_IS_BETTER[metric] else new <= bound
            criteria.append(at(_criterion("no_regression", metric, slice_, new, old, bound, ok), True))
        metric = cfg.primary_metric
        new, old = candidate.get(metric), champion.get(metric)
        margin = cfg.gate.min_improvement
        if new is None or old is None:
            criteria.append(at(_criterion("improvement", metric, slice_, new, old, None, False), True))
        else:
            if metric in RELATIVE_METRICS:
                bound = old * (1 - margin)
            else:
                bound = old + margin if HIGHER_IS_BETTER[metric] else old - margin
            ok = new >= bound if HIGHER_IS_BETTER[metric] else new <= bound
            criteria.append(at(_criterion("improvement", metric, slice_, new, old, bound, ok), True))
        if significance is not None:
            criteria.append(_significance_criterion(metric, slice_, significance))
    failed = [c for c in criteria if not c["passed"]]
    outcome, why = _outcome(cfg, champion, failed, significance)
    reasons = [_describe(c) for c in failed] or [
        "no champion yet: absolute criteria passed" if champion is None else "all criteria passed"
    ]
    if why:
        reasons.insert(0, why)
    return {"passed": outcome == "promote", "outcome": outcome, "criteria": criteria, "reasons": reasons,
            "failed": [c["criterion"] + ":" + c["metric"] for c in failed]}


def significantly_worse(metric: str, result: dict[str, Any] | None) -> bool:
    """Whether the paired test shows the candidate worse than the champion (interval wholly on the worse side,
    or McNemar significant with the champion right more often)."""
    if not result:
        return False
    if result.get("method") == "mcnemar":
        p = result.get("p_value")
        return (not result.get("candidate_better") and result.get("b", 0) > result.get("c", 0)
                and p is not None and p < result["alpha"])
    low, high = result.get("ci_low"), result.get("ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return False
    return high < 0 if HIGHER_IS_BETTER.get(metric, True) else low > 0


def _outcome(cfg: RetrainingConfig, champion: dict[str, Any] | None, failed: list[dict[str, Any]],
             significance: dict[str, Any] | None) -> tuple[str, str | None]:
    """promote / reject / inconclusive, and for inconclusive the sentence that says why."""
    if not failed:
        return "promote", None
    if champion is None or any(c["criterion"] not in EVIDENCE_CRITERIA for c in failed):
        return "reject", None
    improvement = next((c for c in failed if c["criterion"] == "improvement"), None)
    if improvement is not None and (improvement["candidate"] is None or improvement["champion"] is None):
        return "reject", None
    if significance is None:  # no test (method none): nothing tells "not shown better" from "worse"
        return "reject", None
    metric = cfg.primary_metric
    if significantly_worse(metric, significance):
        return "reject", None
    mde = significance.get("min_detectable_effect")
    size = "" if mde is None else f"; the smallest gain these rows could show is {mde:.4f}"
    return "inconclusive", (f"inconclusive: the candidate is neither shown better than the champion on {metric} "
                            f"nor significantly worse{size}")


def _significance_criterion(metric: str, slice_: str, result: dict[str, Any]) -> dict[str, Any]:
    """Passed when the improvement is unlikely to be luck: the whole confidence interval of the
    paired difference is on the better side (block bootstrap), or McNemar's test rejects "no difference"
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


def _blocks_text(d: dict[str, Any]) -> str:
    blocks, unit = d.get("blocks"), d.get("block")
    if unit in (None, "row"):
        return f"{d.get('rows')} rows"
    return f"{d.get('rows')} rows in {blocks} {unit} block{'s' if blocks != 1 else ''}"


def _mde_text(d: dict[str, Any]) -> str:
    mde = d.get("min_detectable_effect")
    if mde is None:
        return ""
    return f"; the smallest gain these rows could show is {mde:.4f} ({d.get('power', 0.8):.0%} power)"


def _describe(c: dict[str, Any]) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    if c["criterion"] == "smoke":
        d = c["detail"]
        if not d["valid"]:
            return f"the artifact to be served gave invalid scores on {d['rows']} recent rows: {d['problem']}"
        return f"single-row p99 latency {d['p99_latency_ms']:.1f} ms exceeds {d['max_p99_latency_ms']:.0f} ms"
    if c["criterion"] == "significance":
        d = c["detail"]
        if d.get("enough_blocks") is False:
            return (f"the {c['metric']} difference cannot be shown significant: {_blocks_text(d)}, at least "
                    f"{d.get('min_blocks')} blocks are needed (gate.significance.min_blocks)")
        if d.get("method") == "mcnemar":
            return (f"McNemar: the candidate is right on {d['c']} rows the champion misses and wrong on {d['b']} "
                    f"it gets right (p = {d['p_value']:.3f}, needs < {d['alpha']}, {_blocks_text(d)})"
                    f"{_mde_text(d)}")
        side = "above" if HIGHER_IS_BETTER.get(c["metric"], True) else "below"
        kind = "paired-bootstrap" if d.get("block") in (None, "row") else "block-bootstrap"
        return (f"the {c['metric']} difference {fmt(d.get('difference'))} is not a significant improvement: its "
                f"{d.get('confidence', 0.95):.0%} {kind} interval [{fmt(d.get('ci_low'))}, "
                f"{fmt(d.get('ci_high'))}] on {_blocks_text(d)} does not lie entirely {side} 0{_mde_text(d)}")
    at = ""
    if "candidate_threshold" in c:
        at = f" at its threshold {c['candidate_threshold']:.4f}" if c["candidate_threshold"] is not None else ""
        if c.get("champion_threshold") is not None:
            at += f" (the champion's at {c['champion_threshold']:.4f})"
    if c["criterion"] == "absolute":
        word = "below the required" if HIGHER_IS_BETTER.get(c["metric"], True) else "above the allowed"
        return f"{c['metric']} {fmt(c['candidate'])}{at} is {word} {fmt(c['threshold'])}"
    if c["criterion"] == "no_regression":
        return (f"{c['metric']} {fmt(c['candidate'])} regresses against the champion's {fmt(c['champion'])}{at} "
                f"(allowed bound {fmt(c['threshold'])})")
    return (f"{c['metric']} on the {c['slice'].replace('_', '-')} rows {fmt(c['candidate'])} does not beat the champion's "
            f"{fmt(c['champion'])} by the required margin (needs {fmt(c['threshold'])}){at}")


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


def significance_test(cfg: RetrainingConfig, y: np.ndarray, cand: np.ndarray, champ: np.ndarray,
                      blocks: Any | None = None, thresholds: tuple[float | None, float | None] = (None, None),
                      confidence: float | None = None) -> dict[str, Any] | None:
    """The configured paired test of the primary metric on the rows the improvement is judged on.

    ``blocks``: :class:`.significance.Blocks` of the rows (None: rows as independent); ``thresholds``: each
    model's operating threshold for threshold metrics and McNemar (binary; None: 0.5); ``confidence``:
    default ``gate.significance.confidence`` (the watch passes its own, split over its looks)."""
    from . import significance

    conf = cfg.gate.significance
    level = conf.confidence if confidence is None else confidence
    if conf.method == "none":
        return None
    t_cand, t_champ = thresholds
    if conf.method == "mcnemar":
        if cfg.model.task == "regression":
            raise ValueError("gate.significance.method 'mcnemar' needs a classifier; use 'paired_bootstrap'")
        result = significance.mcnemar(y, predicted_labels(cand, t_cand), predicted_labels(champ, t_champ),
                                      clusters=blocks, confidence=level, power=conf.power)
        return {**result, "method": "mcnemar", "test": result["method"], "alpha": round(1 - level, 6)}
    metric = cfg.primary_metric
    if cfg.model.task == "binary" and metric in THRESHOLD_METRICS:
        cand, champ = predicted_labels(cand, t_cand), predicted_labels(champ, t_champ)
    result = significance.paired_bootstrap(y, cand, champ, metric, n_resamples=conf.resamples,
                                           confidence=level, seed=cfg.training.seed, clusters=blocks,
                                           power=conf.power)
    return {**result, "method": "paired_bootstrap"}


def resolve_thresholds(cfg: RetrainingConfig, candidate: float | None, champion: float | None,
                       has_champion: bool) -> dict[str, Any] | None:
    """The operating thresholds the threshold metrics are judged at (binary models), with where each came from:
    the model's metadata, or 0.5 for a model trained before thresholds were stored."""
    if cfg.model.task != "binary":
        return None
    out: dict[str, Any] = {
        "candidate": DEFAULT_THRESHOLD if candidate is None else float(candidate),
        "candidate_source": "default 0.5: no stored operating threshold" if candidate is None else "model metadata",
        "champion": None, "champion_source": None, "notes": [],
    }
    if candidate is None:
        out["notes"].append("the candidate has no stored operating threshold: judged at 0.5")
    if has_champion:
        out["champion"] = DEFAULT_THRESHOLD if champion is None else float(champion)
        out["champion_source"] = ("default 0.5: trained before operating thresholds were stored" if champion is None
                                  else "model metadata")
        if champion is None:
            out["notes"].append("the champion was trained before operating thresholds were stored: its threshold "
                                "metrics are judged at 0.5")
    return out


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
    candidate_threshold: float | None = None,
    champion_threshold: float | None = None,
) -> dict[str, Any]:
    """Score both models on the out-of-time holdout ``test`` (restricted to rows after
    ``champion_trained_until``, the newest row the champion could have learned from), test the
    improvement for significance on blocks of time, smoke-test the candidate's artifact, then :func:`judge`.
    Threshold metrics of a binary model are computed at its own operating threshold (the ``*_threshold``
    arguments, from each model's metadata; None: 0.5, and the verdict says so). The in-time rows, when given,
    are scored too, for information."""
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
    from . import significance

    thresholds = resolve_thresholds(cfg, candidate_threshold, champion_threshold, champion_model is not None)
    t_cand = thresholds["candidate"] if thresholds else None
    t_champ = thresholds["champion"] if thresholds else None
    cand_scores = outputs(candidate_model, rows[features], task).astype(float)  # each model predicts once
    cand = clean(metrics_of(y, cand_scores, task, t_cand))
    champ = sig = blocks = None
    if champion_model is not None:
        champ_scores = outputs(champion_model, rows[features], task).astype(float)
        champ = clean(metrics_of(y, champ_scores, task, t_champ))
        conf = cfg.gate.significance
        blocks = significance.choose_blocks(rows[cfg.columns.timestamp], conf.min_blocks, conf.block)
        sig = significance_test(cfg, y, cand_scores, champ_scores, blocks, (t_cand, t_champ))
    in_time_metrics = None
    if in_time is not None and len(in_time):
        in_time_metrics = {
            "rows": int(len(in_time)),
            "candidate": clean(score(candidate_model, in_time[features], y_in_time, task, t_cand)),
            "champion": clean(score(champion_model, in_time[features], y_in_time, task, t_champ))
            if champion_model else None,
        }
    smoke = smoke_test(cfg, candidate_model, rows.tail(cfg.gate.smoke.rows))
    verdict = judge(cfg, cand, champ, significance=sig, smoke=smoke, thresholds=thresholds)
    if thresholds and thresholds["notes"]:
        verdict["reasons"].extend(thresholds["notes"])
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
            "blocks": None if blocks is None else blocks.as_dict(),
            "thresholds": thresholds,
            "smoke": smoke,
        }
    )
    log.info("gate %s (%s) on %d out-of-time rows [%s, %s]: %s", "PASSED" if verdict["passed"] else "FAILED",
             verdict["outcome"], len(rows), verdict["holdout_start"][:16], verdict["holdout_end"][:16],
             "; ".join(verdict["reasons"]))
    return verdict
