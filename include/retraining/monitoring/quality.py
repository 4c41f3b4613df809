"""Data-quality checks of a window against the champion's reference profile, before any decision.

Six kinds of issue, each recorded as its own outcome (``data_quality`` column and
``trigger_metrics.quality``):

- ``non_finite_values``: a numeric feature holds +/-inf. Blocking: no model scores an infinity
  (scikit-learn refuses it, "Input X contains infinity"), and the window is not scored.
- ``all_missing``: a feature has no value at all in a non-empty window. Blocking: the feed lost the
  column, and a model would only see its imputed constant.
- ``missing_values``: a feature's missing rate is above its limit and ``quality.max_missing_increase``
  above the reference's. Blocking: a feed that lost most of a column would otherwise retrain a
  model on imputed constants.
- ``unseen_categories``: more than ``quality.max_unseen_share`` of a categorical feature's
  values were never seen in the reference. Recorded; not blocking (a new category is also
  drift, which the drift statistics measure).
- ``out_of_range``: a share of a numeric feature's values above its limit falls outside the
  reference's [min, max]. Recorded; not blocking.
- ``schema_change``: the champion was trained on other features than the configuration lists.
  Recorded; it asks for a retraining rather than blocking one.

**Calibrated limits** (``quality.threshold_mode: calibrated``, the default). A feature whose missing
rate swings between 1 and 29 % from week to week, and which the model imputes, is not broken at 29 %.
When the champion's profile holds a calibration (``profile["calibration"]``, see :mod:`.calibration`:
the feature's missing rate and out-of-range share in each window of the training period), the
missing-value limit is ``max(quality.max_missing_rate, mean + k * sd)`` of those rates and the
out-of-range limit ``max(quality.max_out_of_range_share, mean + k * sd)`` of those shares, with
``k = quality.calibration_sd`` (:func:`.stats.natural_limit`); with fewer than six known windows, the
sub-window estimate of :mod:`.calibration` (:func:`.stats.component_limit`) when the profile has one. The fixed limits stay the floor; ``fixed`` mode, or a profile without calibration
(older models), uses them alone. Each issue records ``threshold`` (the limit used),
``threshold_source`` (``calibrated`` when the natural limit raised it, else ``fixed``),
``fixed_threshold`` and ``calibrated_threshold``.
"""

from __future__ import annotations

from typing import Any

from ..config import QualitySection, RetrainingConfig
from .stats import component_limit, natural_limit

BLOCKING = frozenset({"missing_values", "non_finite_values", "all_missing"})


def check(cfg: RetrainingConfig, profile: dict[str, Any], window: dict[str, Any],
          schema_changes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """All issues of the window summary (see :func:`.drift.summarize`), each with its feature, value and
    threshold; ``blocking`` if any blocks."""
    q = cfg.quality
    issues: list[dict[str, Any]] = []
    rows = int(window.get("rows") or 0)
    ref_rows = profile.get("rows") or 1
    calibrated = q.threshold_mode == "calibrated"
    calibration = ((profile.get("calibration") or {}).get("features") or {}) if calibrated else {}
    components = ((profile.get("calibration") or {}).get("limits") or {}) if calibrated else {}
    for kind in ("numeric", "categorical"):
        for col, ref in profile.get(kind, {}).items():
            cur = window.get(kind, {}).get(col)
            if cur is None or rows == 0:
                continue
            series = calibration.get(col) or {}
            parts = components.get(col) or {}
            infinite = int(cur.get("infinite") or 0)
            if infinite:
                issues.append(_issue("non_finite_values", col, infinite / rows, 0.0,
                                     f"{col} holds {infinite} infinite value(s) (+/-inf) in {rows} rows; no model "
                                     "can score them", count=infinite))
            ref_missing = ref["missing"] / ref_rows
            missing = cur["missing"] / rows
            if cur["missing"] >= rows:
                issues.append(_issue("all_missing", col, 1.0, None,
                                     f"{col} is 100% missing: no value in the window's {rows} rows "
                                     f"(reference {ref_missing:.0%}); the feed lost the column", count=rows))
                continue
            limit = _limit(q.max_missing_rate, series.get("missing_rate"), q, parts.get("missing_rate"))
            if missing > limit["threshold"] and missing - ref_missing > q.max_missing_increase:
                issues.append(_issue("missing_values", col, missing,
                                     text=f"{col} is {missing:.0%} missing (reference {ref_missing:.0%}, "
                                     f"{limit['threshold_source']} limit {limit['threshold']:.0%})", **limit))
            present = rows - cur["missing"]
            if kind == "categorical":
                unseen = sum(v for k, v in cur["counts"].items() if k not in ref["counts"]) / present
                if unseen > q.max_unseen_share:
                    issues.append(_issue("unseen_categories", col, unseen, q.max_unseen_share,
                                         f"{unseen:.0%} of {col} values are categories the reference never had"))
            elif cur.get("out_of_range") is not None:
                outside = cur["out_of_range"] / present
                limit = _limit(q.max_out_of_range_share, series.get("out_of_range"), q, parts.get("out_of_range"))
                if outside > limit["threshold"]:
                    issues.append(_issue("out_of_range", col, outside,
                                         text=f"{outside:.0%} of {col} values are outside the reference range "
                                         f"[{ref['min']:g}, {ref['max']:g}] ({limit['threshold_source']} limit "
                                         f"{limit['threshold']:.0%})", **limit))
    if schema_changes and (schema_changes.get("added") or schema_changes.get("removed")):
        issues.append(_issue("schema_change", None, None, None,
                             f"features added {schema_changes.get('added', [])}, removed "
                             f"{schema_changes.get('removed', [])} since the champion was trained"))
    kinds = sorted({i["kind"] for i in issues})
    return {"issues": issues, "kinds": kinds, "blocking": any(i["blocking"] for i in issues)}


def _limit(fixed: float, calibration: Any, q: QualitySection, components: Any = None) -> dict[str, Any]:
    """The limit of one feature's rate: the fixed one, raised to its natural variation when calibrated (six or
    more windows of the check's size; else, in a profile calibrated from sub-windows, their components)."""
    natural = natural_limit(calibration, q.calibration_sd) if calibration else None
    if natural is None and components and components.get("status") != "uncalibrated":
        natural = component_limit(components, q.calibration_sd)
    raised = natural is not None and natural > fixed
    return {"threshold": round(natural, 6) if raised else fixed,
            "threshold_source": "calibrated" if raised else "fixed",
            "fixed_threshold": fixed,
            "calibrated_threshold": None if natural is None else round(natural, 6)}


def _issue(kind: str, feature: str | None, value: float | None, threshold: float | None = None, text: str = "",
           **details: Any) -> dict[str, Any]:
    return {"kind": kind, "feature": feature, "value": None if value is None else round(value, 6),
            "threshold": threshold, "blocking": kind in BLOCKING, "text": text, **details}
