"""Data-quality checks of a window against the champion's reference profile, before any decision.

Four kinds of issue, each recorded as its own outcome (``data_quality`` column and
``trigger_metrics.quality``):

- ``missing_values``: a feature's missing rate is above ``quality.max_missing_rate`` and
  ``quality.max_missing_increase`` above the reference's. Blocking: a feed that lost a
  column would otherwise retrain a model on imputed constants.
- ``unseen_categories``: more than ``quality.max_unseen_share`` of a categorical feature's
  values were never seen in the reference. Recorded; not blocking (a new category is also
  drift, which the drift statistics measure).
- ``out_of_range``: more than ``quality.max_out_of_range_share`` of a numeric feature's values
  fall outside the reference's [min, max]. Recorded; not blocking.
- ``schema_change``: the champion was trained on other features than the configuration lists.
  Recorded; it asks for a retraining rather than blocking one.
"""

from __future__ import annotations

from typing import Any

from ..config import RetrainingConfig

BLOCKING = frozenset({"missing_values"})


def check(cfg: RetrainingConfig, profile: dict[str, Any], window: dict[str, Any],
          schema_changes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """All issues of the window summary (see :func:`.drift.summarize`), each with its feature, value and
    threshold; ``blocking`` if any blocks."""
    q = cfg.quality
    issues: list[dict[str, Any]] = []
    rows = int(window.get("rows") or 0)
    ref_rows = profile.get("rows") or 1
    for kind in ("numeric", "categorical"):
        for col, ref in profile.get(kind, {}).items():
            cur = window.get(kind, {}).get(col)
            if cur is None or rows == 0:
                continue
            ref_missing = ref["missing"] / ref_rows
            missing = cur["missing"] / rows
            if missing > q.max_missing_rate and missing - ref_missing > q.max_missing_increase:
                issues.append(_issue("missing_values", col, missing, q.max_missing_rate,
                                     f"{col} is {missing:.0%} missing (reference {ref_missing:.0%})"))
            present = rows - cur["missing"]
            if present <= 0:
                continue
            if kind == "categorical":
                unseen = sum(v for k, v in cur["counts"].items() if k not in ref["counts"]) / present
                if unseen > q.max_unseen_share:
                    issues.append(_issue("unseen_categories", col, unseen, q.max_unseen_share,
                                         f"{unseen:.0%} of {col} values are categories the reference never had"))
            elif cur.get("out_of_range") is not None:
                outside = cur["out_of_range"] / present
                if outside > q.max_out_of_range_share:
                    issues.append(_issue("out_of_range", col, outside, q.max_out_of_range_share,
                                         f"{outside:.0%} of {col} values are outside the reference range "
                                         f"[{ref['min']:g}, {ref['max']:g}]"))
    if schema_changes and (schema_changes.get("added") or schema_changes.get("removed")):
        issues.append(_issue("schema_change", None, None, None,
                             f"features added {schema_changes.get('added', [])}, removed "
                             f"{schema_changes.get('removed', [])} since the champion was trained"))
    kinds = sorted({i["kind"] for i in issues})
    return {"issues": issues, "kinds": kinds, "blocking": any(i["blocking"] for i in issues)}


def _issue(kind: str, feature: str | None, value: float | None, threshold: float | None, text: str) -> dict[str, Any]:
    return {"kind": kind, "feature": feature, "value": None if value is None else round(value, 6),
            "threshold": threshold, "blocking": kind in BLOCKING, "text": text}
