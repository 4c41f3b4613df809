"""The evaluation gate: candidate against champion on the same held-out rows.

Both models score the same test split. Three kinds of criteria, all configurable:

- absolute (``gate.min_absolute``): e.g. recall >= 0.80, on the whole test split;
- no regression (``gate.max_regression``): e.g. F1 >= champion F1 - 0.01, whole test split;
- improvement (``gate.min_improvement``): the primary metric must beat the champion's by
  at least this much on the test rows from the current window (the data the model will
  meet next), or on the whole test split when fewer than ``gate.min_recent_rows`` of them
  exist. For bounded metrics (accuracy, F1, AUC, R2, ...) the margin is absolute; for
  RMSE and MAE it is relative (0.01 = 1% lower).

With no champion only the absolute criteria apply. The result lists every criterion
with both values, the threshold and whether it passed, and the reasons in words.
"""

from __future__ import annotations

import logging
from typing import Any

from .config import RetrainingConfig
from .metrics import HIGHER_IS_BETTER, clean, score

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
    candidate_recent: dict[str, float | None] | None,
    champion_recent: dict[str, float | None] | None,
) -> dict[str, Any]:
    """Apply the criteria to metrics already computed on the same rows. Pure: no I/O."""
    criteria: list[dict[str, Any]] = []
    for metric, minimum in cfg.gate.min_absolute.items():
        value = candidate.get(metric)
        if metric not in candidate:
            continue
        ok = value is not None and (value >= minimum if HIGHER_IS_BETTER[metric] else value <= minimum)
        criteria.append(_criterion("absolute", metric, "test", value, None, minimum, ok))
    if champion is not None:
        for metric, tolerance in cfg.gate.max_regression.items():
            if metric not in candidate or candidate.get(metric) is None or champion.get(metric) is None:
                continue
            new, old = candidate[metric], champion[metric]
            bound = old - tolerance if HIGHER_IS_BETTER[metric] else old + tolerance
            ok = new >= bound if HIGHER_IS_BETTER[metric] else new <= bound
            criteria.append(_criterion("no_regression", metric, "test", new, old, bound, ok))
        metric = cfg.primary_metric
        use_recent = candidate_recent is not None and champion_recent is not None
        cand_m = (candidate_recent if use_recent else candidate) or {}
        champ_m = (champion_recent if use_recent else champion) or {}
        new, old = cand_m.get(metric), champ_m.get(metric)
        margin = cfg.gate.min_improvement
        if new is None or old is None:
            criteria.append(_criterion("improvement", metric, "recent" if use_recent else "test", new, old, None, False))
        else:
            if metric in RELATIVE_METRICS:
                bound = old * (1 - margin)
            else:
                bound = old + margin if HIGHER_IS_BETTER[metric] else old - margin
            ok = new >= bound if HIGHER_IS_BETTER[metric] else new <= bound
            criteria.append(_criterion("improvement", metric, "recent" if use_recent else "test", new, old, bound, ok))
    failed = [c for c in criteria if not c["passed"]]
    reasons = [_describe(c) for c in failed] or [
        "no champion yet: absolute criteria passed" if champion is None else "all criteria passed"
    ]
    return {"passed": not failed, "criteria": criteria, "reasons": reasons, "failed": [c["criterion"] + ":" + c["metric"] for c in failed]}


def _describe(c: dict[str, Any]) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    if c["criterion"] == "absolute":
        return f"{c['metric']} {fmt(c['candidate'])} is below the required {fmt(c['threshold'])}"
    if c["criterion"] == "no_regression":
        return (f"{c['metric']} {fmt(c['candidate'])} regresses against the champion's {fmt(c['champion'])} "
                f"(allowed bound {fmt(c['threshold'])})")
    return (f"{c['metric']} on the {c['slice']} rows {fmt(c['candidate'])} does not beat the champion's "
            f"{fmt(c['champion'])} by the required margin (needs {fmt(c['threshold'])})")


def evaluate(
    cfg: RetrainingConfig,
    candidate_model: Any,
    champion_model: Any | None,
    test: Any,
    y_test: Any,
) -> dict[str, Any]:
    """Score both models on the same test rows (and their recent subset), then :func:`judge`."""
    features = cfg.columns.features
    task = cfg.model.task
    recent_mask = test["_recent"].to_numpy(dtype=bool) if "_recent" in test else None
    n_recent = int(recent_mask.sum()) if recent_mask is not None else 0
    use_recent = n_recent >= cfg.gate.min_recent_rows
    cand = clean(score(candidate_model, test[features], y_test, task))
    cand_recent = clean(score(candidate_model, test[features][recent_mask], y_test[recent_mask], task)) if use_recent else None
    champ = champ_recent = None
    if champion_model is not None:
        champ = clean(score(champion_model, test[features], y_test, task))
        if use_recent:
            champ_recent = clean(score(champion_model, test[features][recent_mask], y_test[recent_mask], task))
    verdict = judge(cfg, cand, champ, cand_recent, champ_recent)
    verdict.update(
        {
            "test_rows": int(len(test)),
            "recent_test_rows": n_recent,
            "primary_metric": cfg.primary_metric,
            "candidate_metrics": cand,
            "champion_metrics": champ,
            "candidate_recent_metrics": cand_recent,
            "champion_recent_metrics": champ_recent,
        }
    )
    log.info("gate %s: %s", "PASSED" if verdict["passed"] else "FAILED", "; ".join(verdict["reasons"]))
    return verdict
