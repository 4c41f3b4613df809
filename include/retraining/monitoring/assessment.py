"""The sensor's assessment of a window, and the skip-or-retrain decision drawn from it.

:func:`assess` waits for labelled data: until the window holds
``window.min_labelled_rows`` labelled rows its status is ``waiting``, unless
``window.label_wait_hours`` have passed since the window closed, in which case the
verdict is ``insufficient_data``. The deadline is measured from the window's end, so
a backfill of an old window decides at once instead of waiting for labels that will
never come. With enough data it reads the window once into its summary (see
:mod:`.drift`), checks data quality and data drift against the champion's reference
profile, estimates the champion's performance without labels and measures
it on the labelled rows against its baseline at deployment.

:func:`decide` is pure: the same assessment and options give the same decision.

**Drift that matters.** Data drift is a change of the inputs; it matters when it harms the champion.
Where the window's labels measured the champion's performance and nothing says it got worse (no
performance degradation, no concept drift, the accumulated evidence quiet), the drift is recorded as
drift without measurable harm (``decision["harm"] = "none_measured"``, trigger type ``data_drift``)
and ``drift.action`` says what it does: ``retrain`` (the rule before), ``retrain_if_estimated_drop``
(retrain only when the champion's label-free estimate predicts a drop beyond
``performance.max_estimated_drop``) or ``record``. Drift with measured harm, drift decided before the
labels (drift plus a predicted drop acts early) and drift in a window whose performance could not be
measured retrain as before. Recorded drift never meets storm control.

**Regressors** are judged as classifiers are: concept drift is the RMSE's rise beyond what the error
profile expects for the window's predictions, against the same ratio on the holdout, on the log scale
with a one-sided test (:func:`.performance_estimate.regression_excess_error`), and it feeds the
accumulated evidence; a level the inputs explain raises the expectation with the error and cancels.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..config import RetrainingConfig
from ..metrics import HIGHER_IS_BETTER, bootstrap_se, clean, error_rate, metrics_of, outputs
from ..point_in_time import Judge, JudgeLookup
from . import drift, quality, sequential

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SIGNAL_ORDER = ("data_drift", "performance_degradation", "concept_drift")
# Concept drift needs the effect (error rate up by more than the configured share) AND evidence that it
# is not sampling noise: a one-sided two-proportion z-test against the baseline's error rate.
CONCEPT_DRIFT_ALPHA = 0.01


# A metric drop counts when it is larger than performance.max_drop AND unlikely to be noise: the
# baseline was measured on a few hundred held-out rows, the window on a few thousand.
PERFORMANCE_ALPHA = 0.01


def drop_p(drop: float, se: float) -> float:
    """One-sided p-value that a metric drop this large arises by chance, given its standard error."""
    from scipy.stats import norm

    if se <= 0:
        return 0.0 if drop > 0 else 1.0
    return float(norm.sf(drop / se))


def error_rate_p_value(base_rate: float, base_rows: int, current_rate: float, current_rows: int) -> float:
    """One-sided p-value that the current error rate is higher than the baseline's (two-proportion z-test)."""
    from scipy.stats import norm

    if base_rows <= 0 or current_rows <= 0:
        return 1.0
    pooled = (base_rate * base_rows + current_rate * current_rows) / (base_rows + current_rows)
    se = (pooled * (1 - pooled) * (1 / base_rows + 1 / current_rows)) ** 0.5
    if se == 0:
        return 0.0 if current_rate > base_rate else 1.0
    return float(norm.sf((current_rate - base_rate) / se))


def live_judge(cfg: RetrainingConfig) -> JudgeLookup:
    """The registry's current champion, as a judge (what a run of the current window uses)."""
    def lookup() -> Judge:
        from ..release import registry

        champ = registry.champion(cfg, registry.setup(cfg))
        return Judge(champ, "registry" if champ else "none")

    return lookup


def assess(cfg: RetrainingConfig, window_start: datetime, window_end: datetime, now: datetime,
           judge: JudgeLookup | None = None) -> dict[str, Any]:
    """The assessment of the window; ``status`` is ``waiting`` while labelled data is still expected.

    While waiting, a window that already holds ``window.min_labelled_rows`` rows is checked without
    labels: when its data drifted and the champion's label-free performance estimate fell by more
    than ``performance.max_estimated_drop``, the assessment is final at once
    (``performance.act_before_labels``), since harmful drift need not wait for labels.

    ``judge`` finds the champion that judges the window (default: the registry's current one; see
    :mod:`..point_in_time` for the champion in service at the window's time).
    """
    from ..sources import count_window

    judge = judge or live_judge(cfg)

    counts = count_window(cfg, window_start, window_end)
    base: dict[str, Any] = {
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "rows": counts.rows,
        "labelled_rows": counts.labelled,
        "min_labelled_rows": cfg.window.min_labelled_rows,
    }
    if counts.labelled < cfg.window.min_labelled_rows:
        deadline = window_end + timedelta(hours=cfg.window.label_wait_hours)
        if now < deadline:
            early = _before_labels(cfg, base, window_start, window_end, counts.rows, judge)
            if early is not None:
                return early
            log.info(
                "window [%s, %s) has %d rows, %d labelled; waiting for %d labelled rows until %s",
                window_start, window_end, counts.rows, counts.labelled, cfg.window.min_labelled_rows, deadline,
            )
            return {**base, "status": "waiting", "deadline": deadline.isoformat()}
        reason = (
            f"only {counts.labelled} labelled rows ({counts.rows} rows) in window "
            f"[{window_start:%Y-%m-%d %H:%M}, {window_end:%Y-%m-%d %H:%M}) UTC; window.min_labelled_rows is "
            f"{cfg.window.min_labelled_rows} and the labels were due by {deadline:%Y-%m-%d %H:%M} UTC"
        )
        log.warning("insufficient data: %s", reason)
        return {**base, "status": "insufficient_data", "reason": reason, "champion": None}

    found = judge()
    base["judge"] = found.as_dict()
    if found.champion is None:
        log.info("no champion of %s judges this window: %s", cfg.model.registry_name,
                 found.note or "none registered yet")
        return {**base, "status": "ok", "champion": None}
    if found.note:
        log.info("%s", found.note)
    return _measure(cfg, base, found.champion, window_start, window_end, counts.rows)


def _before_labels(cfg: RetrainingConfig, base: dict[str, Any], window_start: datetime, window_end: datetime,
                   rows: int, judge: JudgeLookup) -> dict[str, Any] | None:
    """The final assessment of a window whose labels are missing, if data drift and the estimate agree, or if
    its data-quality check blocks (labels would not change that)."""
    if not cfg.performance.act_before_labels or rows < cfg.window.min_labelled_rows:
        return None
    found = judge()
    if found.champion is None:
        return None
    from ..release import registry

    if not _estimable(cfg, registry.load_run_json(found.champion.run_id, registry.META_ARTIFACT)):
        return None  # an older champion without calibration or error profile: no estimate, wait for labels
    result = _measure(cfg, {**base, "judge": found.as_dict()}, found.champion, window_start, window_end, rows,
                      labels=False)
    if (result.get("quality") or {}).get("blocking"):
        log.warning("data-quality problem before the labels: the window is decided now (no labels will fix it)")
        return {**result, "before_labels": True}
    estimated = result.get("estimated") or {}
    drift = result.get("drift") or {}
    if drift.get("detected") and estimated.get("drop") is not None \
            and estimated["drop"] > cfg.performance.max_estimated_drop:
        log.warning("acting before labels: data drift and an estimated %s drop of %.4f",
                    estimated["metric"], estimated["drop"])
        return {**result, "before_labels": True}
    return None


def _read_window(cfg: RetrainingConfig, profile: dict[str, Any], window_start: datetime, window_end: datetime,
                 rows: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """The window's drift summary (one read) and the rows to score the champion on.

    A window of at least ``drift.pushdown_min_rows`` rows is summarised where it lives (inside
    PostgreSQL, or by DuckDB over Parquet/CSV; above ``drift.pushdown_sample_above_rows`` on a block
    sample) and only its newest ``performance.max_rows`` rows are loaded; a smaller one is loaded once
    and summarised in pandas.
    """
    from ..sources import decode_categoricals, load_window, source_engine, window_summary

    numeric = {c: e for c, e in drift.window_edges(profile).items() if c in cfg.columns.numeric}
    categorical = [c for c in profile["categorical"] if c in cfg.columns.categorical]
    if rows >= cfg.drift.pushdown_min_rows and (cfg.source.kind in ("parquet", "csv")
                                                or source_engine(cfg) == "postgresql"):
        summary = window_summary(cfg, window_start, window_end, numeric, categorical, drift.bounds(profile),
                                 window_rows=rows)
        if summary.get("sample"):
            log.info("drift measured on a block sample of the window: %s", summary["sample"])
        frame = load_window(cfg, window_start, window_end, newest=cfg.performance.max_rows)
        return summary, frame
    # categorical features as codes where the source has them (Parquet dictionaries): counted without a Python
    # string per cell, then decoded to exactly the usual dtypes for the rows the champion scores
    frame = load_window(cfg, window_start, window_end, categorical_codes=True)
    summary = drift.summarize(frame, profile)
    if len(frame) > cfg.performance.max_rows:
        frame = frame.tail(cfg.performance.max_rows)
    return summary, decode_categoricals(cfg, frame)


def _measure(cfg: RetrainingConfig, base: dict[str, Any], champ: Any, window_start: datetime, window_end: datetime,
             rows: int, labels: bool = True) -> dict[str, Any]:
    """Data quality, data drift, the label-free estimate and (with ``labels``) the champion's performance."""
    from .. import threads
    from ..release import registry
    from ..training.models import targets

    profile = registry.load_run_json(champ.run_id, registry.PROFILE_ARTIFACT)
    meta = registry.load_run_json(champ.run_id, registry.META_ARTIFACT)
    summary, frame = _read_window(cfg, profile, window_start, window_end, rows)
    verdict = drift.check(profile, summary, cfg.drift, meta.get("feature_importance"))
    schema_changes = {
        "added": sorted(set(cfg.columns.features) - set(meta["features"])),
        "removed": sorted(set(meta["features"]) - set(cfg.columns.features)),
    }
    data_quality = quality.check(cfg, profile, summary, schema_changes)
    for issue in data_quality["issues"]:
        log.warning("data quality (%s%s): %s", issue["kind"], ", blocking" if issue["blocking"] else "", issue["text"])
    log.info("drift: %d/%d features drifted, carrying %.0f%% of the importance; drift score %.2f (threshold %.2f, "
             "%s thresholds): %s", len(verdict["drifted_features"]), len(verdict["features"]),
             100 * verdict["drifted_share"], verdict["drift_score"], verdict["score_threshold"],
             f"calibrated on {verdict['calibration_windows']} windows" if verdict["calibration_windows"] else "fixed",
             ", ".join(verdict["drifted_features"][:10]) or "none")
    result: dict[str, Any] = {
        **base,
        "status": "ok",
        "champion": {"version": champ.version, "run_id": champ.run_id},
        "quality": data_quality,
        "drift": verdict,
        "performance": None,
        "estimated": None,
    }
    if summary.get("sample"):  # the drift was measured on a block sample of a very large window
        result["sample"] = summary["sample"]
    if schema_changes["added"] or schema_changes["removed"]:
        log.warning("the champion's features differ from the configuration's: %s", schema_changes)
        return {**result, "schema_changes": schema_changes}
    if data_quality["blocking"]:
        return result  # decided as data_quality: the champion never scores the window (infinities crash predict)
    model = registry.load_model(champ.uri, threads.for_config(cfg).threads)
    if _estimable(cfg, meta) and len(frame):
        result["estimated"] = _estimate(cfg, meta, outputs(model, frame[meta["features"]], cfg.model.task))
    if not labels:
        return result
    labelled = frame[frame[cfg.columns.label].notna()]
    baseline = meta["baseline_metrics"]
    y = targets(cfg, labelled, meta["classes"])
    out = outputs(model, labelled[meta["features"]], cfg.model.task)
    current = clean(metrics_of(y, out, cfg.model.task))
    metric = cfg.performance_metric
    expected, expected_baseline = _expected(cfg, meta, out)
    drop = drop_p_value = base_se = current_se = expected_drop = None
    scale = 1.0
    if current.get(metric) is not None and baseline.get(metric) is not None:
        diff = baseline[metric] - current[metric]
        scale = 1.0 if HIGHER_IS_BETTER[metric] else -1.0 / abs(baseline[metric] or 1.0)
        drop = diff * scale
        if expected.get(metric) is not None and expected_baseline.get(metric) is not None:
            expected_drop = (expected_baseline[metric] - expected[metric]) * scale
        base_se = (meta.get("baseline_se") or {}).get(metric)
        current_se = bootstrap_se(y, out, cfg.model.task, metric, seed=cfg.training.seed)
        if base_se is not None and current_se is not None:
            drop_p_value = drop_p(drop - (expected_drop or 0.0), math.hypot(base_se, current_se) * abs(scale))
    err_now, err_base = error_rate(current, cfg.model.task), error_rate(baseline, cfg.model.task)
    error_p_value = expected_error = expected_base_error = excess_error = None
    evidence: dict[str, Any] = {}
    rmse_se = (meta.get("baseline_se") or {}).get("rmse")
    share = cfg.performance.sequential_min_effect
    min_error_effect = share * cfg.performance.max_relative_error_increase * err_base
    if expected.get("accuracy") is not None and expected_baseline.get("accuracy_se") is not None:
        # concept drift: the champion errs more than its own calibrated confidence expects for these rows,
        # compared with how it did on its holdout; a change of the inputs alone (the weather, the mix of
        # easy and hard cases) moves both and cancels
        expected_error, expected_base_error = 1.0 - expected["accuracy"], 1.0 - expected_baseline["accuracy"]
        excess = (err_now - expected_error) - (err_base - (1.0 - expected_baseline["accuracy"]))
        se_now, se_base = expected["accuracy_se"], expected_baseline["accuracy_se"]
        error_increase = excess / err_base if err_base else None
        error_p_value = drop_p(excess, math.hypot(se_now, se_base))
        evidence["error"] = sequential.evidence(excess, se_now, se_base, min_error_effect)
    elif cfg.model.task == "regression" and err_base and rmse_se is not None and len(labelled) > 1:
        # concept drift for a regressor: the RMSE's rise beyond what its error profile expects for these
        # predictions (a level the inputs explain raises both), on the log scale, with its standard error
        from . import performance_estimate

        has_profile = bool(meta.get("error_profile")) and expected_baseline.get("rmse") is not None
        excess_error = performance_estimate.regression_excess_error(
            y, out, err_base, rmse_se, meta["error_profile"] if has_profile else None,
            expected_baseline.get("rmse") if has_profile else None)
        error_increase, error_p_value = excess_error["error_increase"], excess_error["p_value"]
        expected_error = excess_error["expected_rmse"]
        expected_base_error = excess_error["expected_baseline_rmse"]
        evidence["error"] = sequential.evidence(
            excess_error["excess"], excess_error["se"], excess_error["se0"],
            share * math.log1p(cfg.performance.max_relative_error_increase))
    else:
        error_increase = (err_now - err_base) / err_base if err_base else None
        if cfg.model.task != "regression" and meta.get("baseline_rows"):
            error_p_value = error_rate_p_value(err_base, int(meta["baseline_rows"]), err_now, len(labelled))
            binomial = err_base * (1 - err_base)
            evidence["error"] = sequential.evidence(
                err_now - err_base, math.sqrt(binomial / max(len(labelled), 1)) if binomial else None,
                math.sqrt(binomial / int(meta["baseline_rows"])), min_error_effect)
    if drop is not None and base_se is not None and current_se is not None:
        evidence["metric"] = sequential.evidence(drop - (expected_drop or 0.0), current_se * abs(scale),
                                                 base_se * abs(scale), share * cfg.performance.max_drop)
    log.info(
        "champion v%s on %d labelled rows: %s %.4f (baseline %.4f)",
        champ.version, len(labelled), metric, current.get(metric) or float("nan"), baseline.get(metric) or float("nan"),
    )
    result["performance"] = {
        "metric": metric,
        "current": current,
        "baseline": baseline,
        "rows": int(len(labelled)),
        "drop": None if drop is None else round(drop, 6),
        # the part of the drop the champion's calibrated confidence expects from the inputs alone (None
        # without a label-free estimate): the signals judge the rest
        "expected_drop": None if expected_drop is None else round(expected_drop, 6),
        "drop_p_value": None if drop_p_value is None else round(drop_p_value, 6),
        "max_drop": cfg.performance.max_drop,
        "error_increase": None if error_increase is None else round(error_increase, 6),
        "error_increase_p_value": None if error_p_value is None else round(error_p_value, 6),
        "expected_error": None if expected_error is None else round(expected_error, 6),
        # the error (1 - accuracy; RMSE for regression) measured now and at deployment, and what the label-free
        # expectation gave on the holdout at deployment: the reasons state the direction from these numbers
        "error_rate": None if err_now is None else round(err_now, 6),
        "baseline_error_rate": None if err_base is None else round(err_base, 6),
        "expected_baseline_error": None if expected_base_error is None else round(expected_base_error, 6),
        # regression: the log-scale test of the RMSE's rise beyond the error profile's expectation
        "excess_error": None if excess_error is None else {
            k: (round(v, 6) if isinstance(v, float) else v) for k, v in excess_error.items()},
        "max_error_increase": cfg.performance.max_relative_error_increase,
        "evidence": {k: v for k, v in evidence.items() if v is not None} or None,
    }
    return result


def _estimable(cfg: RetrainingConfig, meta: dict[str, Any]) -> bool:
    """Whether the champion's metadata holds what a label-free estimate needs (older models may lack it)."""
    fitted = meta.get("error_profile") if cfg.model.task == "regression" else meta.get("calibration")
    return bool(fitted and meta.get("estimated_baseline"))


def estimated_metric(cfg: RetrainingConfig) -> str:
    """The metric the label-free estimate watches: ``performance.estimated_metric`` for classifiers; for
    regression the performance metric when it is r2, rmse or mae, else rmse."""
    if cfg.model.task != "regression":
        return cfg.performance.estimated_metric
    return cfg.performance_metric if cfg.performance_metric in ("r2", "rmse", "mae") else "rmse"


def _expected(cfg: RetrainingConfig, meta: dict[str, Any], out: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the champion's own calibrated confidence (or error profile) expects of its metrics on the labelled
    rows, and the same expectation on its holdout at deployment; empty without a label-free estimate."""
    from . import performance_estimate

    baseline = meta.get("estimated_baseline") or {}
    if not baseline or not len(out):
        return {}, {}
    try:
        if cfg.model.task == "regression":
            if not meta.get("error_profile"):
                return {}, {}
            return performance_estimate.estimate_regression(meta["error_profile"], out), baseline
        if not meta.get("calibration"):
            return {}, {}
        return performance_estimate.estimate(meta["calibration"], out), baseline
    except ValueError as exc:  # e.g. probabilities the calibration cannot read: judge against the baseline alone
        log.warning("no label-free expectation for the labelled rows: %s", exc)
        return {}, {}


def _estimate(cfg: RetrainingConfig, meta: dict[str, Any], out: Any) -> dict[str, Any] | None:
    """The champion's expected metrics on the window's rows, labelled or not, against the same estimate at deployment.

    ``out`` is the champion's output on the rows: probabilities (classifiers) or predictions (regression).
    None when the metric has no estimate: a baseline from an older model that lacks it, or an undefined
    value (ROC AUC where every calibrated probability is 0 or 1 alike).
    """
    from . import performance_estimate

    metric = estimated_metric(cfg)
    if cfg.model.task == "regression":
        current = clean(performance_estimate.estimate_regression(meta["error_profile"], out))
    else:
        current = clean(performance_estimate.estimate(meta["calibration"], out))
    baseline = clean(meta["estimated_baseline"])
    if current.get(metric) is None or baseline.get(metric) is None:
        log.info("no label-free estimate of %s: %s", metric,
                 "the champion's baseline estimate lacks it" if baseline.get(metric) is None else "undefined on the window")
        return None
    drop = performance_estimate.estimated_drop(current, baseline, metric)
    log.info("label-free estimate on %d rows: expected %s %.4f (at deployment %.4f, drop %.4f)",
             current["rows"], metric, current[metric], baseline[metric], drop)
    return {"metric": metric, "current": current, "baseline": baseline, "drop": round(drop, 6),
            "max_drop": cfg.performance.max_estimated_drop}


def _signals(cfg: RetrainingConfig, assessment: dict[str, Any],
             history: dict[str, Any] | None = None) -> list[tuple[str, float, str]]:
    """(trigger type, strength as a multiple of its threshold, reason) for each signal that fired."""
    signals: list[tuple[str, float, str]] = []
    schema = assessment.get("schema_changes") or {}
    if schema.get("added") or schema.get("removed"):
        signals.append(
            ("data_drift", 3.0, f"the feature schema changed since the champion was trained "
                                f"(added {schema.get('added', [])}, removed {schema.get('removed', [])})")
        )
    drift_ = assessment.get("drift") or {}
    if drift_.get("detected"):
        signals.append(("data_drift", data_drift_strength(drift_), data_drift_reason(drift_) + calibration_suffix(drift_)))
    estimated = assessment.get("estimated") or {}
    if assessment.get("before_labels") and estimated.get("drop") is not None and estimated["drop"] > estimated["max_drop"]:
        metric = estimated["metric"]
        basis = "error profile by prediction" if cfg.model.task == "regression" else "calibrated probabilities"
        change = moved(estimated["baseline"][metric], estimated["current"][metric])
        if HIGHER_IS_BETTER.get(metric, True):
            drop = f"drop {estimated['drop']:.4f} > {estimated['max_drop']}"
        else:  # an error: the drop is its relative increase
            drop = f"up {estimated['drop']:.1%} > {estimated['max_drop']:.1%}"
        signals.append(
            (
                "performance_degradation",
                estimated["drop"] / max(estimated["max_drop"], 1e-9),
                f"estimated {metric} (label-free, from the champion's {basis} on "
                f"{estimated['current']['rows']:.0f} rows) {change} ({drop}); acting before the labels arrive",
            )
        )
    perf = assessment.get("performance") or {}
    drop_p_value = perf.get("drop_p_value")
    explained = perf.get("expected_drop") or 0.0
    if (
        perf.get("drop") is not None
        and perf["drop"] - explained > cfg.performance.max_drop
        and (drop_p_value is None or drop_p_value < PERFORMANCE_ALPHA)
    ):
        signals.append(
            (
                "performance_degradation",
                (perf["drop"] - explained) / max(cfg.performance.max_drop, 1e-9),
                performance_reason(cfg, perf),
            )
        )
    p_value = perf.get("error_increase_p_value")
    if (
        perf.get("error_increase") is not None
        and perf["error_increase"] > cfg.performance.max_relative_error_increase
        and (p_value is None or p_value < CONCEPT_DRIFT_ALPHA)
    ):
        signals.append(
            (
                "concept_drift",
                perf["error_increase"] / max(cfg.performance.max_relative_error_increase, 1e-9),
                concept_drift_reason(cfg, perf),
            )
        )
    accumulated = accumulated_test(cfg, assessment, history)
    fired = {s[0] for s in signals}
    for stream, trigger in (("error", "concept_drift"), ("metric", "performance_degradation")):
        result = (accumulated or {}).get(stream) or {}
        if result.get("alarm") and trigger not in fired:
            signals.append((trigger, result["max_z"] / accumulated["critical_z"], accumulated_reason(stream, result, perf)))
    return sorted(signals, key=lambda s: SIGNAL_ORDER.index(s[0]))  # stable: schema change first


def moved(before: float, after: float, digits: int = 4) -> str:
    """'fell from 0.8000 at deployment to 0.7000', 'rose from ...' or 'stayed at ...': the direction from the numbers."""
    if round(after, digits) == round(before, digits):
        return f"stayed at {after:.{digits}f} (as at deployment)"
    word = "rose" if after > before else "fell"
    return f"{word} from {before:.{digits}f} at deployment to {after:.{digits}f}"


def performance_reason(cfg: RetrainingConfig, perf: dict[str, Any]) -> str:
    """Why the measured metric is a performance degradation, in words that match its numbers.

    Without a label-free expectation the drop is the change since deployment. With one, the signal
    judges the drop net of what the inputs alone explain, so the metric may even have risen: the reason
    then names the value the inputs predicted and how far short of it the champion fell."""
    metric = perf["metric"]
    higher = HIGHER_IS_BETTER.get(metric, True)
    before, now = perf["baseline"][metric], perf["current"][metric]
    drop, explained = perf["drop"], perf.get("expected_drop") or 0.0
    p_value = perf.get("drop_p_value")
    p_text = f", p = {p_value:.2g}" if p_value is not None else ""
    limit = cfg.performance.max_drop
    if not explained:
        size = f"drop {drop:.4f} > {limit}" if higher else f"up {drop:.1%} > {limit:.1%}"
        return f"{metric} {moved(before, now)} ({size}{p_text})"
    # the drop is (before - now) * scale, scale 1 where higher is better, -1/|before| for an error (relative)
    scale = 1.0 if higher else -1.0 / abs(before or 1.0)
    predicted = before - explained / scale
    net = drop - explained
    if higher:
        short = f"{predicted - now:.4f} short" if now < predicted else f"{now - predicted:.4f} above it"
        size = f"net drop {net:.4f} > {limit}"
    else:
        short = f"{(now - predicted) / abs(before or 1.0):.1%} of its deployment value worse"
        size = f"net rise {net:.1%} > {limit:.1%}"
    return f"{metric} {moved(before, now)}, but the inputs predicted {predicted:.4f}: {short} ({size}{p_text})"


def concept_drift_reason(cfg: RetrainingConfig, perf: dict[str, Any]) -> str:
    """Why the champion's errors are concept drift, in words that match the numbers: the error measured at
    deployment and now and, when the rule is net of a label-free expectation, what that expected."""
    regression = cfg.model.task == "regression"
    what = "RMSE" if regression else "error rate"
    expects = ("what its error profile expects for these predictions" if regression
               else "what its calibrated confidence expects for these rows")
    increase, p_value = perf["error_increase"], perf.get("error_increase_p_value")
    tail = (f"threshold {cfg.performance.max_relative_error_increase:.0%}"
            + (f", p = {p_value:.2g}" if p_value is not None else "") + ")")
    before, now = perf.get("baseline_error_rate"), perf.get("error_rate")
    expected, expected_before = perf.get("expected_error"), perf.get("expected_baseline_error")
    if expected is None:
        if before is not None and now is not None:
            return f"the champion's {what} {moved(before, now)} (+{increase:.0%}, {tail}"
        return f"the champion's {what} rose {increase:.0%} against deployment ({tail}"
    if before is not None and now is not None and expected_before is not None:
        how = "relative to" if regression else "of"
        return (f"the champion's {what} {moved(before, now)} while {expects} went from {expected_before:.4f} "
                f"(its holdout at deployment) to {expected:.4f}: {increase:.0%} {how} its deployment {what} "
                f"beyond that expectation ({tail}")
    return f"the champion's {what} is {increase:.0%} worse than at deployment beyond {expects} ({tail}"


def accumulated_test(cfg: RetrainingConfig, assessment: dict[str, Any],
                     history: dict[str, Any] | None) -> dict[str, Any] | None:
    """The accumulated-evidence test of this window with the earlier ones judged by the same champion
    (``history["sequential"]``: their recorded evidence, oldest first), or None without evidence."""
    current = (assessment.get("performance") or {}).get("evidence")
    if not current or not cfg.performance.sequential_windows:
        return None
    return sequential.test((history or {}).get("sequential") or [], current, cfg.performance.sequential_windows,
                           cfg.performance.sequential_alpha, cfg.performance.sequential_burn_in)


def accumulated_reason(stream: str, result: dict[str, Any], perf: dict[str, Any]) -> str:
    """The accumulated test's alarm in words: worse than at deployment, net of the label-free expectation
    where there is one (so the raw metric may have moved either way; the reason does not say it fell)."""
    regression = perf.get("excess_error") is not None
    error_name = "RMSE" if regression else "error rate"
    what = error_name if stream == "error" else perf.get("metric", "metric")
    net = (perf.get("expected_error") is not None) if stream == "error" else bool(perf.get("expected_drop"))
    basis = ((", net of what its error profile expects for these predictions," if regression
              else ", net of what its calibrated confidence expects for these rows,") if net else "")
    span = "this window" if result["pooled_windows"] == 1 else f"the last {result['pooled_windows']} windows"
    return (f"the champion's {what}{basis} is worse than at deployment over {span} by more than the smallest "
            f"change that matters (accumulated evidence z = {result['max_z']:.2f})")


STATISTIC_LABELS = {
    "wasserstein": "Wasserstein {:.3f} sd",
    "jensenshannon": "Jensen-Shannon {:.3f}",
    "psi": "PSI {:.3f}",
    "linf": "L-inf {:.3f}",
    "ks": "KS p={:.2g}",
    "chisquare": "chi-square p={:.2g}",
}


def describe_feature(feature: dict[str, Any]) -> str:
    """'credit_score Wasserstein 0.412 sd (>= 0.1, importance 31%)': the number and the rule it broke."""
    value = feature["p_adjusted"] if feature["kind_of_statistic"] == "p_value" else feature["statistic"]
    stat = STATISTIC_LABELS.get(feature["method"], feature["method"] + " {:.3g}").format(value)
    if feature["kind_of_statistic"] == "p_value":
        rule = f"adjusted, < {feature['threshold']:g}"
    else:
        rule = f">= {feature['threshold']:g}"
    if feature.get("threshold_source") == "calibrated":
        rule += ", its natural variation"
    return f"{feature['feature']} {stat} ({rule}, importance {feature.get('importance', 0):.0%})"


def _score(verdict: dict[str, Any]) -> tuple[float, float]:
    """The window's drift score and the score it had to reach (older records: the drifted share and its threshold)."""
    if "drift_score" in verdict:
        return verdict["drift_score"], verdict["score_threshold"]
    return verdict.get("drifted_share", 0.0), verdict.get("share_threshold", 1.0)


def data_drift_strength(verdict: dict[str, Any]) -> float:
    """How far past its rule the window is: the square root of its drift score (drifted features' importance
    times their strength, already a product of two ratios) over the score it had to reach, so that a
    signal twice its threshold (severity high) takes a score four times the threshold."""
    score, threshold = _score(verdict)
    return round(math.sqrt(score / max(threshold, 1e-9)), 4)


def data_drift_reason(verdict: dict[str, Any], limit: int = 5) -> str:
    features = {f["feature"]: f for f in verdict["features"]}
    named = "; ".join(describe_feature(features[n]) for n in verdict["drifted_features"][:limit])
    more = len(verdict["drifted_features"]) - limit
    weighted = "of the champion's feature importance" if verdict.get("importance_weighted") else "of the features"
    score, threshold = _score(verdict)
    return (f"data drift in {len(verdict['drifted_features'])}/{len(verdict['features'])} features carrying "
            f"{verdict['drifted_share']:.0%} {weighted}, drift score {score:.2f} (>= {threshold:.2f}): {named}"
            + (f"; and {more} more" if more > 0 else ""))


def _severity(signals: list[tuple[str, float, str]]) -> str:
    if not signals:
        return "low"
    strongest = max(s[1] for s in signals)
    if len(signals) >= 3 or (len(signals) == 2 and strongest >= 3):
        return "critical"
    if len(signals) == 2 or strongest >= 2:
        return "high"
    return "medium"


def _confidence(signals: list[tuple[str, float, str]], assessment: dict[str, Any]) -> float:
    if not signals:
        share, limit = _score(assessment.get("drift") or {})
        return round(max(0.5, 1.0 - share / max(limit, 1e-9) / 2), 3)
    strongest = max(s[1] for s in signals)
    return round(min(0.99, 0.45 + 0.15 * len(signals) + 0.1 * min(strongest - 1.0, 2.0)), 3)


def no_drift_reason(assessment: dict[str, Any]) -> str:
    drift_ = assessment.get("drift") or {}
    score, threshold = _score(drift_)
    text = (f"no drift: {len(drift_.get('drifted_features', []))}/{len(drift_.get('features', []))} features drifted, "
            f"carrying {drift_.get('drifted_share', 0):.0%} of the importance, drift score {score:.2f} "
            f"(< {threshold:.2f})")
    if drift_.get("drifted_features"):
        features = {f["feature"]: f for f in drift_["features"]}
        text += " (" + "; ".join(describe_feature(features[n]) for n in drift_["drifted_features"][:3]) + ")"
    estimated = assessment.get("estimated")
    if estimated:
        text += (f"; estimated {estimated['metric']} {estimated['current'][estimated['metric']]:.4f} "
                 f"(at deployment {estimated['baseline'][estimated['metric']]:.4f})")
    perf = assessment.get("performance") or {}
    measured = perf.get("drop") is not None or perf.get("error_increase") is not None
    return text + ("; performance within bounds" if measured else "; performance not measured")


def calibration_status(verdict: dict[str, Any] | None) -> str | None:
    """The drift thresholds' calibration status (calibrated, weak or uncalibrated), None where the verdict
    does not say (older records)."""
    calibration = (verdict or {}).get("calibration")
    return calibration.get("status") if isinstance(calibration, dict) else None


def calibration_suffix(verdict: dict[str, Any]) -> str:
    """' (thresholds uncalibrated: only 2 windows of history)' for drift judged on weak or uncalibrated
    thresholds, else ''."""
    status = calibration_status(verdict)
    if status not in ("weak", "uncalibrated"):
        return ""
    text = None
    note_of = getattr(drift, "calibration_note", None)
    if callable(note_of):
        try:
            text = note_of(verdict)
        except Exception as exc:  # noqa: BLE001 (a wording helper never stops a decision)
            log.warning("no calibration note: %s", exc)
    text = text or (verdict.get("calibration") or {}).get("note")
    if not text:
        return f" (thresholds {status})"
    return f" ({text})" if status in text else f" (thresholds {status}: {text})"


def drift_harm(assessment: dict[str, Any], signals: list[tuple[str, float, str]]) -> str | None:
    """What the labels say about the harm of the window's data drift, None without data drift.

    ``none_measured``: the champion's performance was measured on the window's labels and no performance
    degradation or concept drift fired, in this window or in the accumulated evidence; ``measured``: one
    did; ``estimated``: decided before the labels on the label-free estimate; ``unmeasured``: no
    measurement of the primary metric (or a schema change, which is never harmless)."""
    if not (assessment.get("drift") or {}).get("detected"):
        return None
    if assessment.get("before_labels"):
        return "estimated"
    if {s[0] for s in signals} - {"data_drift"}:
        return "measured"
    schema = assessment.get("schema_changes") or {}
    perf = assessment.get("performance") or {}
    if schema.get("added") or schema.get("removed") or perf.get("drop") is None:
        return "unmeasured"
    return "none_measured"


def drift_action(cfg: RetrainingConfig, assessment: dict[str, Any]) -> tuple[bool, str]:
    """Whether data drift without measurable harm is only recorded (``drift.action``), and the words that say
    what the labels and the label-free estimate showed."""
    perf = assessment["performance"]
    metric = perf["metric"]
    rows = f" on {perf['rows']} labelled rows" if perf.get("rows") else ""
    shown = (f"the champion's {metric} {moved(perf['baseline'][metric], perf['current'][metric])}{rows}, within "
             f"bounds (performance.max_drop {cfg.performance.max_drop}), no concept drift, accumulated evidence quiet")
    action = cfg.drift.action
    if action == "retrain":
        return False, shown + "; drift.action is retrain"
    estimated = assessment.get("estimated") or {}
    if action == "retrain_if_estimated_drop":
        limit = cfg.performance.max_estimated_drop
        if estimated.get("drop") is None:
            return True, shown + ("; no label-free estimate: recorded, no retraining "
                                  "(drift.action retrain_if_estimated_drop)")
        name = estimated["metric"]
        said = (f"the label-free estimate of {name} "
                f"{moved(estimated['baseline'][name], estimated['current'][name])}")
        size = f"{estimated['drop']:.4f}" if HIGHER_IS_BETTER.get(name, True) else f"{estimated['drop']:.1%}"
        if estimated["drop"] > limit:
            return False, (f"{shown}; but {said}, a predicted drop of {size} > performance.max_estimated_drop "
                           f"{limit}: retrain (drift.action retrain_if_estimated_drop)")
        predicted = (f"a predicted drop of {size} <= performance.max_estimated_drop {limit}" if estimated["drop"] > 0
                     else "no predicted drop")
        return True, (f"{shown}; {said}, {predicted}: recorded, no retraining "
                      "(drift.action retrain_if_estimated_drop)")
    return True, shown + "; recorded, no retraining (drift.action record)"


def storm_limit(cfg: RetrainingConfig, history: dict[str, Any] | None) -> str | None:
    """Why storm control holds this retraining back, or None. ``history`` holds
    ``hours_since_last_retrain``, ``retrains_last_week``, ``retrains_hours_ago`` (the newest retrainings,
    hours before this window) and ``previous_signal_windows`` (how many windows right before this one
    had a drift or performance signal); see :func:`..record.events.storm_history`.

    Spacing and cap hold in hours and in windows of the check's size (``window.lookback_hours``),
    whichever is longer, so they engage at a two-week cadence as at the default six hours."""
    if not history:
        return None
    storm = cfg.storm
    window = float(cfg.window.lookback_hours)
    needed = storm.consecutive_windows - 1
    if needed and history.get("previous_signal_windows", 0) < needed:
        return (f"signals in {history.get('previous_signal_windows', 0) + 1} consecutive window(s), "
                f"storm.consecutive_windows is {storm.consecutive_windows}")
    since = history.get("hours_since_last_retrain")
    if since is not None:
        if since < storm.min_hours_between_retrains:
            return (f"the last retraining was {since:.1f} h before this window, "
                    f"storm.min_hours_between_retrains is {storm.min_hours_between_retrains:g}")
        windows = storm.min_windows_between_retrains
        if windows is not None and since < windows * window:
            return (f"the last retraining was {since / window:.3g} window(s) ({since:.1f} h) before this one, "
                    f"storm.min_windows_between_retrains is {windows:g} (windows of {window:g} h)")
    week = history.get("retrains_last_week", 0)
    if storm.max_retrains_per_week is not None and week >= storm.max_retrains_per_week:
        return f"{week} retrainings in the 7 days before this window, storm.max_retrains_per_week is {storm.max_retrains_per_week}"
    ago = history.get("retrains_hours_ago")
    if storm.max_retrains_per_windows is not None and ago is not None:
        span = storm.cap_windows * window
        recent = sum(1 for hours in ago if hours <= span)
        if recent >= storm.max_retrains_per_windows:
            return (f"{recent} retrainings in the {storm.cap_windows} windows ({span:g} h) before this one, "
                    f"storm.max_retrains_per_windows is {storm.max_retrains_per_windows}")
    return None


def decide(
    cfg: RetrainingConfig,
    assessment: dict[str, Any],
    *,
    force: bool = False,
    check_only: bool = False,
    run_type: str = "scheduled",
    manual_reason: str | None = None,
    history: dict[str, Any] | None = None,
    replay: str | None = None,
    frozen: str | None = None,
) -> dict[str, Any]:
    """Skip or retrain, with trigger type, severity, confidence and reasons in words.

    ``frozen`` (why the model is frozen, see :mod:`..release.freeze`) makes a live run record ``frozen``
    with what it would have done; it never trains.

    ``history`` (see :func:`storm_history`) lets retrain-storm control suppress a retraining that
    drift alone asks for; a suppressed retraining is a decision of its own, with its reason.
    ``replay`` (why this run replays a window that a later champion overtook) makes the run record what
    it would decide, like a backfill. ``manual_reason``, the reason a person typed, is always recorded."""
    requested = "manual" if run_type == "manual" else "scheduled"
    if assessment.get("status") == "insufficient_data":
        return {
            "decision": "insufficient_data",
            "retrain": False,
            "trigger_type": "none",
            "severity": "low",
            "confidence": 1.0,
            "reason": assessment["reason"],
        }
    data_quality = assessment.get("quality") or {}
    if data_quality.get("blocking"):
        blocking = [i["text"] for i in data_quality["issues"] if i["blocking"]]
        return {
            "decision": "data_quality",
            "retrain": False,
            "trigger_type": "none",
            "severity": "high",
            "confidence": 1.0,
            "signals": [],
            "would_retrain": False,
            "reason": "data-quality problem, no decision on this window: " + "; ".join(blocking)
            + " (fix the feed; infinities and all-missing features always block, quality.max_missing_rate /"
            " max_missing_increase and quality.threshold_mode set the missing-value limits)",
        }
    records_only = check_only or run_type == "backfill" or bool(replay)
    watch = assessment.get("watch") or {}
    if watch.get("status") == "worse" and not records_only:
        # the post-deploy watch found the new champion significantly worse than the one it replaced: restore that
        # one first (also under a freeze: a rollback is the emergency lever); drift is judged again next window
        test = watch.get("significance") or {}
        return {
            "decision": "rollback",
            "retrain": False,
            "rollback": True,
            "trigger_type": "post_deploy_watch",
            "severity": "high",
            "confidence": round(1 - float(test.get("p_value") or 0.0), 4) if test else 1.0,
            "signals": ["post_deploy_watch"],
            "would_retrain": False,
            "rollback_to": watch["previous_version"],
            "reason": watch["reason"] + (f" ({manual_reason})" if manual_reason else ""),
        }
    signals = _signals(cfg, assessment, history)
    harm = drift_harm(assessment, signals)
    held = None
    if harm == "none_measured" and assessment.get("champion") is not None:
        held, note = drift_action(cfg, assessment)
        at = next(i for i, s in enumerate(signals) if s[0] == "data_drift")
        signals[at] = (signals[at][0], signals[at][1],
                       "data drift without measurable harm: " + signals[at][2] + "; " + note)
    acting = [] if held else signals  # drift that was only recorded neither retrains nor meets storm control
    reasons = [s[2] for s in signals]
    if watch.get("status") == "worse":
        reasons.append(f"would roll back: {watch['reason']}")
    if assessment.get("champion") is None:
        would_retrain = True
        trigger_type = requested
        judge = assessment.get("judge") or {}
        if judge.get("source") == "history":
            reasons.insert(0, f"{judge.get('note') or 'no champion was in service then'}: train a first model")
        else:
            reasons.insert(0, f"no champion registered for '{cfg.model.registry_name}' yet: train a first model")
    else:
        would_retrain = bool(acting) or force
        trigger_type = signals[0][0] if signals else ("manual" if force else "none")
    if force:
        reasons.append(f"retraining forced by the trigger{': ' + manual_reason if manual_reason else ''}")
    if not reasons:
        reasons.append(no_drift_reason(assessment))
    if manual_reason and not force:
        reasons.append(f"reason given by the trigger: {manual_reason}")
    result = {
        "trigger_type": trigger_type,
        "severity": _severity(acting),
        "confidence": _confidence(acting, assessment),
        "signals": [s[0] for s in signals],
        "would_retrain": would_retrain,
        "accumulated": accumulated_test(cfg, assessment, history),
        # data drift's measured harm: none_measured (labels show the champion within bounds), measured (a
        # performance or concept-drift signal too), estimated (before labels), unmeasured; None without drift
        "harm": harm,
        "drift_action": cfg.drift.action if harm == "none_measured" else None,
        "calibration_status": calibration_status(assessment.get("drift")),
    }
    if frozen and not records_only:
        return {**result, "decision": "frozen", "retrain": False,
                "reason": "; ".join(reasons) + f" ({frozen}; would {'retrain' if would_retrain else 'skip'})"}
    suppressed = storm_limit(cfg, history) if (acting and not force and assessment.get("champion")) else None
    if suppressed and not records_only:
        return {**result, "decision": "suppressed", "retrain": False,
                "reason": "; ".join(reasons) + f" (retraining suppressed: {suppressed})"}
    if records_only:
        if check_only:
            why = "check-only run"
        elif run_type == "backfill":
            why = "backfill runs replay the check and never retrain or deploy"
        else:
            why = replay
        judged = (assessment.get("judge") or {}).get("note")
        if judged and assessment.get("champion") is not None:
            why = f"{why}; {judged}"
        return {**result, "decision": "check_only", "retrain": False,
                "reason": "; ".join(reasons) + f" ({why}; would {'retrain' if would_retrain else 'skip'})"}
    return {**result, "decision": "retrain" if would_retrain else "skip", "retrain": would_retrain,
            "reason": "; ".join(reasons)}
