"""The sensor's assessment of a window, and the skip-or-retrain decision drawn from it.

:func:`assess` waits for labelled data: until the window holds
``window.min_labelled_rows`` labelled rows its status is ``waiting``, unless
``window.label_wait_hours`` have passed since the window closed, in which case the
verdict is ``insufficient_data``. The deadline is measured from the window's end, so
a backfill of an old window decides at once instead of waiting for labels that will
never come. With enough data it measures data drift (PSI per feature against the
champion's reference profile) and the champion's performance on the labelled rows
against its baseline at deployment.

:func:`decide` is pure: the same assessment and options give the same decision.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from . import quality
from .config import RetrainingConfig
from .drift import dataset_drift, feature_drift
from .metrics import HIGHER_IS_BETTER, clean, error_rate, score

log = logging.getLogger(__name__)

SIGNAL_ORDER = ("data_drift", "performance_degradation", "concept_drift")
# Concept drift needs the effect (error rate up by more than the configured share) AND evidence that it
# is not sampling noise: a one-sided two-proportion z-test against the baseline's error rate.
CONCEPT_DRIFT_ALPHA = 0.01


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


def assess(cfg: RetrainingConfig, window_start: datetime, window_end: datetime, now: datetime) -> dict[str, Any]:
    """The assessment of the window; ``status`` is ``waiting`` while labelled data is still expected."""
    from . import registry
    from .sources import count_window, load_window
    from .training import targets

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

    client = registry.setup(cfg)
    champ = registry.champion(cfg, client)
    if champ is None:
        log.info("no champion registered for %s yet", cfg.model.registry_name)
        return {**base, "status": "ok", "champion": None}

    frame = load_window(cfg, window_start, window_end)
    profile = registry.load_run_json(champ.run_id, registry.PROFILE_ARTIFACT)
    meta = registry.load_run_json(champ.run_id, registry.META_ARTIFACT)
    results = feature_drift(profile, frame, cfg.drift.psi_threshold)
    verdict = dataset_drift(results, cfg.drift.drifted_share)

    schema_changes = {
        "added": sorted(set(cfg.columns.features) - set(meta["features"])),
        "removed": sorted(set(meta["features"]) - set(cfg.columns.features)),
    }
    data_quality = quality.check(cfg, profile, frame, schema_changes)
    for issue in data_quality["issues"]:
        log.warning("data quality (%s%s): %s", issue["kind"], ", blocking" if issue["blocking"] else "", issue["text"])
    labelled = frame[frame[cfg.columns.label].notna()]
    baseline = meta["baseline_metrics"]
    if schema_changes["added"] or schema_changes["removed"]:
        log.warning("the champion's features differ from the configuration's: %s", schema_changes)
        return {
            **base,
            "status": "ok",
            "champion": {"version": champ.version, "run_id": champ.run_id},
            "schema_changes": schema_changes,
            "quality": data_quality,
            "drift": {**verdict, "method": cfg.drift.method, "features": results},
            "performance": None,
        }
    model = registry.load_model(champ.uri)
    current = clean(score(model, labelled[meta["features"]], targets(cfg, labelled, meta["classes"]), cfg.model.task))
    metric = cfg.performance_metric
    drop = None
    if current.get(metric) is not None and baseline.get(metric) is not None:
        diff = baseline[metric] - current[metric]
        drop = diff if HIGHER_IS_BETTER[metric] else -diff / abs(baseline[metric] or 1.0)
    err_now, err_base = error_rate(current, cfg.model.task), error_rate(baseline, cfg.model.task)
    error_increase = (err_now - err_base) / err_base if err_base else None
    error_p_value = None
    if cfg.model.task != "regression" and meta.get("baseline_rows"):
        error_p_value = error_rate_p_value(err_base, int(meta["baseline_rows"]), err_now, len(labelled))
    log.info(
        "champion v%s on %d labelled rows: %s %.4f (baseline %.4f); %d/%d features drifted (max PSI %.3f)",
        champ.version, len(labelled), metric, current.get(metric) or float("nan"), baseline.get(metric) or float("nan"),
        len(verdict["drifted_features"]), len(results), verdict["max_psi"],
    )
    return {
        **base,
        "status": "ok",
        "champion": {"version": champ.version, "run_id": champ.run_id},
        "quality": data_quality,
        "drift": {**verdict, "method": cfg.drift.method, "features": results},
        "performance": {
            "metric": metric,
            "current": current,
            "baseline": baseline,
            "drop": None if drop is None else round(drop, 6),
            "max_drop": cfg.performance.max_drop,
            "error_increase": None if error_increase is None else round(error_increase, 6),
            "error_increase_p_value": None if error_p_value is None else round(error_p_value, 6),
            "max_error_increase": cfg.performance.max_relative_error_increase,
        },
    }


def _signals(cfg: RetrainingConfig, assessment: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(trigger type, strength as a multiple of its threshold, reason) for each signal that fired."""
    signals: list[tuple[str, float, str]] = []
    schema = assessment.get("schema_changes") or {}
    if schema.get("added") or schema.get("removed"):
        signals.append(
            ("data_drift", 3.0, f"the feature schema changed since the champion was trained "
                                f"(added {schema.get('added', [])}, removed {schema.get('removed', [])})")
        )
    drift = assessment.get("drift") or {}
    if drift.get("detected"):
        top = [f for f in drift["features"] if f["drifted"]]
        top.sort(key=lambda f: -(f["statistic"] or 0))
        named = ", ".join(f"{f['feature']} PSI {f['statistic']:.3f}" for f in top[:5])
        signals.append(
            (
                "data_drift",
                drift["max_psi"] / cfg.drift.psi_threshold,
                f"data drift in {len(top)}/{len(drift['features'])} features ({named}; threshold "
                f"{cfg.drift.psi_threshold}), {drift['drifted_share']:.0%} >= {drift['share_threshold']:.0%}",
            )
        )
    perf = assessment.get("performance") or {}
    if perf.get("drop") is not None and perf["drop"] > cfg.performance.max_drop:
        metric = perf["metric"]
        signals.append(
            (
                "performance_degradation",
                perf["drop"] / max(cfg.performance.max_drop, 1e-9),
                f"{metric} fell from {perf['baseline'][metric]:.4f} at deployment to {perf['current'][metric]:.4f} "
                f"(drop {perf['drop']:.4f} > {cfg.performance.max_drop})",
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
                f"the champion's error rate rose {perf['error_increase']:.0%} against deployment "
                f"(threshold {cfg.performance.max_relative_error_increase:.0%}"
                + (f", p = {p_value:.2g}" if p_value is not None else "") + ")",
            )
        )
    return sorted(signals, key=lambda s: SIGNAL_ORDER.index(s[0]))  # stable: schema change first


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
        drift = assessment.get("drift") or {}
        share, limit = drift.get("drifted_share", 0.0), drift.get("share_threshold", 1.0)
        return round(max(0.5, 1.0 - share / max(limit, 1e-9) / 2), 3)
    strongest = max(s[1] for s in signals)
    return round(min(0.99, 0.45 + 0.15 * len(signals) + 0.1 * min(strongest - 1.0, 2.0)), 3)


def storm_limit(cfg: RetrainingConfig, history: dict[str, Any] | None) -> str | None:
    """Why storm control holds this retraining back, or None. ``history`` holds
    ``hours_since_last_retrain``, ``retrains_last_week`` and ``previous_signal_windows`` (how many
    windows right before this one had a drift or performance signal)."""
    if not history:
        return None
    storm = cfg.storm
    needed = storm.consecutive_windows - 1
    if needed and history.get("previous_signal_windows", 0) < needed:
        return (f"signals in {history.get('previous_signal_windows', 0) + 1} consecutive window(s), "
                f"storm.consecutive_windows is {storm.consecutive_windows}")
    since = history.get("hours_since_last_retrain")
    if since is not None and since < storm.min_hours_between_retrains:
        return (f"the last retraining was {since:.1f} h before this window, "
                f"storm.min_hours_between_retrains is {storm.min_hours_between_retrains:g}")
    week = history.get("retrains_last_week", 0)
    if storm.max_retrains_per_week is not None and week >= storm.max_retrains_per_week:
        return f"{week} retrainings in the 7 days before this window, storm.max_retrains_per_week is {storm.max_retrains_per_week}"
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
) -> dict[str, Any]:
    """Skip or retrain, with trigger type, severity, confidence and reasons in words.

    ``history`` (see :func:`storm_history`) lets retrain-storm control suppress a retraining that
    drift alone asks for; a suppressed retraining is a decision of its own, with its reason."""
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
            + " (fix the feed; quality.max_missing_rate / quality.max_missing_increase set the limits)",
        }
    signals = _signals(cfg, assessment)
    reasons = [s[2] for s in signals]
    if assessment.get("champion") is None:
        would_retrain = True
        trigger_type = requested
        reasons.insert(0, f"no champion registered for '{cfg.model.registry_name}' yet: train a first model")
    else:
        would_retrain = bool(signals) or force
        trigger_type = signals[0][0] if signals else ("manual" if force else "none")
    if force:
        reasons.append(f"retraining forced by the trigger{': ' + manual_reason if manual_reason else ''}")
    if not reasons:
        drift = assessment.get("drift") or {}
        reasons.append(
            f"no drift: {len(drift.get('drifted_features', []))}/{len(drift.get('features', []))} features over the "
            f"PSI threshold (max PSI {drift.get('max_psi', 0):.3f}); performance within bounds"
        )
    result = {
        "trigger_type": trigger_type,
        "severity": _severity(signals),
        "confidence": _confidence(signals, assessment),
        "signals": [s[0] for s in signals],
        "would_retrain": would_retrain,
    }
    suppressed = storm_limit(cfg, history) if (signals and not force and assessment.get("champion")) else None
    if suppressed and not (check_only or run_type == "backfill"):
        return {**result, "decision": "suppressed", "retrain": False,
                "reason": "; ".join(reasons) + f" (retraining suppressed: {suppressed})"}
    if check_only or run_type == "backfill":
        why = "check-only run" if check_only else "backfill runs replay the check and never retrain or deploy"
        return {**result, "decision": "check_only", "retrain": False,
                "reason": "; ".join(reasons) + f" ({why}; would {'retrain' if would_retrain else 'skip'})"}
    return {**result, "decision": "retrain" if would_retrain else "skip", "retrain": would_retrain,
            "reason": "; ".join(reasons)}
