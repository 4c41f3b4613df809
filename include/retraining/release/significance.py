"""Paired significance tests: is the candidate really better than the champion on the same rows?

Both models score the same held-out rows, so their errors are correlated and the
comparison has to be paired. Two tests:

- :func:`paired_bootstrap` resamples the row indices with replacement, the same indices
  for both models each time, and recomputes ``metric(candidate) - metric(champion)``.
  The percentile interval of those differences is the confidence interval; the one-sided
  p-value is the share of resamples in which the candidate is not better (difference
  ``<= 0``, or ``>= 0`` for a loss such as RMSE), with the +1 correction ``(k + 1) / (n + 1)``
  so that it is never exactly 0. Resamples where the metric is undefined (one class only
  for ROC AUC, constant targets for R2) are skipped and counted.

  Named metrics are computed for a whole block of resamples at once: a resample is a
  vector of counts ``w`` (how often each row was drawn), so sums over the resample become
  matrix products ``x @ W``, and ROC AUC is the weighted Mann-Whitney statistic: each
  drawn positive counts the drawn negatives scored below it plus half of those tied with
  it, read off a cumulative sum of negative counts in score order. ``"accuracy"``, ``"precision"``, ``"recall"``, ``"f1"`` and
  ``"roc_auc"`` take class indices as ``y_true`` and, as scores, probabilities of class 1
  (class 1 when ``> 0.5``, as ``argmax`` of ``[1 - p, p]`` in :mod:`.metrics`), a
  ``predict_proba`` matrix (multiclass: macro averages, one-vs-rest AUC) or integer
  predicted labels. Precision, recall and F1 count 0 when undefined, like ``zero_division=0``.
  ``"rmse"``, ``"mae"`` and ``"r2"`` take regression predictions. Any other callable
  ``metric(y_true, scores) -> float`` is called once per resample, on the same indices
  (same seed, same indices), so a named metric and its scikit-learn twin give the same result.

  ``"log_loss"`` and ``"brier"`` take probabilities (1-D of class 1, or the matrix).

- **Blocks of time.** Rows of one day share its weather and its incidents, so they are not
  independent draws. With ``clusters`` (block labels per row, or :class:`Blocks` from
  :func:`choose_blocks`) the bootstrap draws whole blocks with replacement: a resample's count
  for a row is the count of its block, so the vectorised metrics work unchanged. With ``G``
  blocks the percentile interval is widened around the point estimate by
  ``t(G - 1) / z`` at the same level (the usual few-clusters correction; it is 1.01 at G = 100),
  and with fewer than ``min_blocks`` blocks no interval is given, so nothing is claimed.
  :func:`choose_blocks` takes the coarsest of day, hour, 15, 5 and 1 minutes (UTC) that gives
  at least ``min_blocks`` (default 20) non-empty blocks: a day when the rows span enough days,
  else shorter periods, which then cannot account for shocks that last longer (the result says
  which block it used and how many there were).
- The result records the bootstrap standard error of the difference and the **minimum
  detectable effect**: ``(q(1 - alpha/2) + q(power)) * se``, ``q`` the normal quantile, or
  Student's t with ``G - 1`` degrees of freedom for blocks: the smallest true gain the test
  would have found with that power on those rows (shrinks as ``1 / sqrt(rows)``).

- :func:`mcnemar` compares hard predictions row by row. Only rows where exactly one model
  is right count: ``b`` (champion right, candidate wrong) and ``c`` (candidate right,
  champion wrong). Under "no difference" ``b ~ Binomial(b + c, 1/2)``: the exact two-sided
  binomial test below 25 discordant rows, otherwise chi-square with one degree of freedom
  and continuity correction, ``(|b - c| - 1)^2 / (b + c)``. With clusters it is the
  cluster-adjusted statistic of Durkalski et al. (2003), ``(B - C)^2 / sum_k (b_k - c_k)^2``
  over the blocks ``k``, with the spread centred on the mean difference (the cluster-robust
  variance, ``G / (G - 1) * sum_k (d_k - n_k * dbar)^2`` for ``d_k = c_k - b_k``: the uncentred one
  loses most of its power when the candidate really is better) and referred to ``F(1, G - 1)``
  (Student's t squared) for ``G`` blocks; no claim below ``min_blocks`` blocks. With one row per
  block it is close to McNemar's chi-square without continuity correction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics import HIGHER_IS_BETTER

log = logging.getLogger(__name__)

MetricFn = Callable[[np.ndarray, np.ndarray], float]
Evaluator = Callable[[np.ndarray], np.ndarray]  # counts (rows, m) -> m metric values, NaN where undefined
CLASSIFICATION_NAMES = ("roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier")
REGRESSION_NAMES = ("rmse", "mae", "r2")
NAMED_METRICS = CLASSIFICATION_NAMES + REGRESSION_NAMES
CHUNK_CELLS = 2_000_000  # resamples x rows drawn at once; bounds memory to a few tens of MB
EXACT_BELOW = 25  # McNemar: exact binomial test below this many discordant rows
BLOCK_UNITS: tuple[tuple[str, int], ...] = (("day", 86_400), ("hour", 3_600), ("15min", 900), ("5min", 300),
                                            ("1min", 60))
PROBA_EPS = 1e-15


@dataclass(frozen=True)
class Blocks:
    """Which block of time each row belongs to (``ids``: 0..count-1), the block's length and whether there are
    enough blocks (``count >= min_blocks``) for a test to claim anything."""

    ids: np.ndarray
    unit: str
    seconds: int | None
    count: int
    min_blocks: int

    @property
    def enough(self) -> bool:
        return self.count >= self.min_blocks

    def as_dict(self) -> dict[str, Any]:
        return {"block": self.unit, "block_seconds": self.seconds, "blocks": self.count,
                "min_blocks": self.min_blocks, "enough_blocks": self.enough}


def choose_blocks(timestamps: Any, min_blocks: int = 20, unit: str = "auto") -> Blocks:
    """Blocks of time for a block bootstrap: with ``unit="auto"`` the coarsest of day, hour, 15, 5 and 1
    minutes (UTC) that gives at least ``min_blocks`` non-empty blocks, else 1 minute (not enough blocks:
    no claim). ``"day"``/``"hour"`` force the block; ``"row"`` makes every row its own block."""
    import pandas as pd

    if min_blocks < 2:
        raise ValueError(f"min_blocks must be at least 2, got {min_blocks}")
    ts = pd.to_datetime(pd.Series(np.asarray(timestamps)), utc=True)
    if ts.isna().any():
        raise ValueError(f"{int(ts.isna().sum())} timestamps are missing: blocks of time need every row's time")
    if unit == "row":
        return Blocks(np.arange(len(ts)), "row", None, len(ts), min_blocks)
    seconds = (ts.astype("int64") // 10**9).to_numpy()
    units = [u for u in BLOCK_UNITS if unit in ("auto", u[0])]
    if not units:
        raise ValueError(f"unknown block {unit!r}; valid: auto, row, {', '.join(u for u, _ in BLOCK_UNITS)}")
    chosen = None
    for name, length in units:
        _, ids = np.unique(seconds // length, return_inverse=True)
        chosen = Blocks(ids.ravel(), name, length, int(ids.max()) + 1 if len(ids) else 0, min_blocks)
        if chosen.enough:
            break
    assert chosen is not None
    return chosen


def _cluster_ids(clusters: Any, rows: int) -> np.ndarray:
    ids = clusters.ids if isinstance(clusters, Blocks) else np.unique(np.asarray(clusters), return_inverse=True)[1]
    ids = np.asarray(ids).ravel()
    if ids.size != rows:
        raise ValueError(f"clusters has {ids.size} labels but there are {rows} rows")
    return ids


def _quantile(q: float, dof: int | None) -> float:
    from scipy import stats

    return float(stats.norm.ppf(q) if dof is None else stats.t.ppf(q, dof))


def min_detectable_effect(se: float, confidence: float, power: float = 0.8, blocks: int | None = None
                          ) -> float | None:
    """The smallest true difference a two-sided test at ``confidence`` finds with ``power``, given the
    standard error of the difference (Student's t with ``blocks - 1`` degrees of freedom for blocks)."""
    if se is None or not math.isfinite(se) or (blocks is not None and blocks < 2):
        return None
    dof = None if blocks is None else blocks - 1
    return float((_quantile(1 - (1 - confidence) / 2, dof) + _quantile(power, dof)) * se)


def auc_fast(y_true_binary: Any, scores: Any) -> float:
    """ROC AUC by the Mann-Whitney rank formula, tied scores at their average rank. NaN with one class only."""
    pos = _binary_truth(y_true_binary)
    s = _finite(scores, "scores").ravel()
    if s.shape != pos.shape:
        raise ValueError(f"y_true_binary has {pos.size} rows but scores has {s.size}")
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _average_ranks(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def paired_bootstrap(
    y_true: Any,
    scores_candidate: Any,
    scores_champion: Any,
    metric: str | MetricFn,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool | None = None,
    clusters: Blocks | Any | None = None,
    min_blocks: int | None = None,
    power: float = 0.8,
) -> dict[str, Any]:
    """Paired bootstrap of ``metric(candidate) - metric(champion)`` over the same resampled rows.

    ``metric`` is a name from ``NAMED_METRICS`` (vectorised) or a callable ``(y_true, scores) -> float``.
    ``higher_is_better`` sets the direction of the p-value; by default it comes from
    :data:`.metrics.HIGHER_IS_BETTER` for a name and is True for a callable. ``clusters``: resample whole
    blocks (see the module docstring); ``min_blocks`` (default: the :class:`Blocks`' own, else 2): fewer
    blocks give no interval. The result holds the standard error ``se`` and ``min_detectable_effect``.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    y = np.asarray(y_true)
    cand = np.asarray(scores_candidate)
    champ = np.asarray(scores_champion)
    rows = len(y)
    if rows == 0:
        raise ValueError("paired_bootstrap needs at least one row")
    if len(cand) != rows or len(champ) != rows:
        raise ValueError(f"y_true has {rows} rows but the scores have {len(cand)} and {len(champ)}")
    if isinstance(metric, str):
        if metric not in NAMED_METRICS:
            raise ValueError(f"unknown metric {metric!r}; named metrics are {', '.join(NAMED_METRICS)}")
        name = metric
        better_up = HIGHER_IS_BETTER[metric] if higher_is_better is None else higher_is_better
        eval_cand, eval_champ = _evaluators(metric, y, cand, champ)
    else:
        name = getattr(metric, "__name__", type(metric).__name__)
        better_up = True if higher_is_better is None else higher_is_better
        eval_cand = eval_champ = None

    def both(counts: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if eval_cand is not None and eval_champ is not None:
            return eval_cand(counts), eval_champ(counts)
        return (np.array([_call(metric, y[i], cand[i]) for i in idx]),  # type: ignore[arg-type]
                np.array([_call(metric, y[i], champ[i]) for i in idx]))  # type: ignore[arg-type]

    ids = None if clusters is None else _cluster_ids(clusters, rows)
    n_blocks = None if ids is None else int(ids.max()) + 1
    need = min_blocks if min_blocks is not None else (clusters.min_blocks if isinstance(clusters, Blocks) else 2)
    block_info: dict[str, Any] = (clusters.as_dict() if isinstance(clusters, Blocks) else
                                  {"block": "row" if ids is None else "cluster", "block_seconds": None,
                                   "blocks": rows if ids is None else n_blocks})
    block_info.update(min_blocks=need if ids is not None else None,
                      enough_blocks=ids is None or bool(n_blocks is not None and n_blocks >= need))
    all_rows = np.arange(rows)[None, :]
    point_cand, point_champ = (float(v[0]) for v in both(np.ones((rows, 1)), all_rows))
    result: dict[str, Any] = {
        "metric": name,
        "candidate": point_cand,
        "champion": point_champ,
        "difference": point_cand - point_champ,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "p_value": math.nan,
        "n_resamples": int(n_resamples),
        "skipped": int(n_resamples),
        "confidence": float(confidence),
        "rows": int(rows),
        "higher_is_better": bool(better_up),
        "se": None,
        "min_detectable_effect": None,
        "power": float(power),
        **block_info,
    }
    if math.isnan(result["difference"]):
        log.warning("paired bootstrap: %s is undefined on the %d rows; nothing to compare", name, rows)
        return result
    rng = np.random.default_rng(seed)
    draws = _resamples(rng, rows, n_resamples) if ids is None else _block_resamples(rng, ids, n_resamples,
                                                                                      eval_cand is None)
    diffs = np.concatenate([np.subtract(*both(counts, idx)) for idx, counts in draws])
    valid = diffs[~np.isnan(diffs)]
    result["skipped"] = int(n_resamples - valid.size)
    if valid.size == 0:
        log.warning("paired bootstrap: %s was undefined in all %d resamples", name, n_resamples)
        return result
    alpha = 1 - confidence
    dof = None if ids is None else (n_blocks or 1) - 1
    if valid.size >= 2:
        result["se"] = float(np.std(valid, ddof=1))
        result["min_detectable_effect"] = min_detectable_effect(result["se"], confidence, power,
                                                                None if ids is None else n_blocks)
    if not block_info["enough_blocks"] or dof == 0:
        log.warning("paired bootstrap %s: only %s blocks (%s) of %d rows, %s needed: no interval, no claim",
                    name, n_blocks, block_info["block"], rows, need)
        return result
    low, high = (float(v) for v in np.quantile(valid, [alpha / 2, 1 - alpha / 2]))
    widen = 1.0 if dof is None else _quantile(1 - alpha / 2, dof) / _quantile(1 - alpha / 2, None)
    point = result["difference"]
    low, high = point - (point - low) * widen, point + (high - point) * widen
    not_better = int(np.count_nonzero(valid <= 0 if better_up else valid >= 0))
    result.update(ci_low=low, ci_high=high, p_value=(not_better + 1) / (valid.size + 1),
                  few_blocks_factor=round(widen, 6))
    log.info(
        "paired bootstrap %s: difference %.4f, %.0f%% CI [%.4f, %.4f], p=%.4g, MDE %.4g (%d resamples, %d skipped, "
        "%d rows in %s blocks of %s)",
        name, point, 100 * confidence, low, high, result["p_value"], result["min_detectable_effect"] or math.nan,
        n_resamples, result["skipped"], rows, result["blocks"], result["block"],
    )
    return result


def mcnemar(y_true: Any, pred_candidate: Any, pred_champion: Any, clusters: Blocks | Any | None = None,
            min_blocks: int | None = None, confidence: float = 0.95, power: float = 0.8) -> dict[str, Any]:
    """McNemar's test on predicted labels: exact binomial below 25 discordant rows, else chi-square; with
    ``clusters``, the cluster-adjusted chi-square (see the module docstring). Records the minimum
    detectable accuracy difference at ``confidence`` and ``power``."""
    from scipy import stats

    y = np.asarray(y_true)
    cand = np.asarray(pred_candidate)
    champ = np.asarray(pred_champion)
    if y.ndim != 1 or cand.shape != y.shape or champ.shape != y.shape:
        raise ValueError(
            f"mcnemar needs 1-D label arrays of one length, got {y.shape}, {cand.shape} and {champ.shape}"
        )
    cand_right = cand == y
    champ_right = champ == y
    b = int(np.count_nonzero(champ_right & ~cand_right))
    c = int(np.count_nonzero(cand_right & ~champ_right))
    n = b + c
    if clusters is not None:
        return _clustered_mcnemar(y, cand_right, champ_right, b, c, clusters, min_blocks, confidence, power)
    if n < EXACT_BELOW:
        method = "exact"
        statistic = float(min(b, c))
        p_value = 1.0 if n == 0 else min(1.0, float(stats.binomtest(min(b, c), n, 0.5).pvalue))
    else:
        method = "chi2"
        statistic = (abs(b - c) - 1) ** 2 / n
        p_value = float(stats.chi2.sf(statistic, df=1))
    log.info("mcnemar (%s): b=%d, c=%d, p=%.4g", method, b, c, p_value)
    return {
        "b": b,
        "c": c,
        "statistic": float(statistic),
        "p_value": p_value,
        "method": method,
        "candidate_better": c > b,
        "rows": int(y.size),
        "min_detectable_effect": None if y.size == 0 else min_detectable_effect(math.sqrt(n) / y.size, confidence,
                                                                                  power),
        "block": "row",
        "blocks": int(y.size),
    }


def _clustered_mcnemar(y: np.ndarray, cand_right: np.ndarray, champ_right: np.ndarray, b: int, c: int,
                       clusters: Any, min_blocks: int | None, confidence: float, power: float) -> dict[str, Any]:
    from scipy import stats

    ids = _cluster_ids(clusters, y.size)
    g = int(ids.max()) + 1 if ids.size else 0
    need = min_blocks if min_blocks is not None else (clusters.min_blocks if isinstance(clusters, Blocks) else 2)
    diff = np.bincount(ids, weights=(cand_right & ~champ_right).astype(float) -
                       (champ_right & ~cand_right).astype(float), minlength=g)
    sizes = np.bincount(ids, minlength=g)
    mean = (c - b) / y.size if y.size else 0.0
    spread = float(((diff - sizes * mean) ** 2).sum()) * g / max(g - 1, 1)
    enough = g >= max(need, 2)
    statistic = (c - b) ** 2 / spread if spread > 0 else 0.0
    p_value = float(stats.f.sf(statistic, 1, g - 1)) if enough and spread > 0 else 1.0
    info = clusters.as_dict() if isinstance(clusters, Blocks) else {"block": "cluster", "block_seconds": None,
                                                                     "blocks": g}
    log.info("clustered mcnemar: b=%d, c=%d over %d blocks, p=%.4g", b, c, g, p_value)
    return {"b": b, "c": c, "statistic": float(statistic), "p_value": p_value, "method": "clustered_f",
            "candidate_better": c > b, "rows": int(y.size),
            "min_detectable_effect": min_detectable_effect(math.sqrt(spread) / y.size, confidence, power, g)
            if y.size and enough else None,
            **info, "min_blocks": need, "enough_blocks": enough}


# --- resampling -------------------------------------------------------------------------------


def _resamples(rng: np.random.Generator, rows: int, n_resamples: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of m resamples: row indices drawn with replacement ``(m, rows)`` and row counts ``(rows, m)``."""
    block = max(1, CHUNK_CELLS // rows)
    done = 0
    while done < n_resamples:
        m = min(block, n_resamples - done)
        idx = rng.integers(0, rows, size=(m, rows))
        cells = idx * m + np.arange(m)[:, None]  # rows x resamples layout: gathering rows is contiguous
        counts = np.bincount(cells.ravel(), minlength=rows * m).reshape(rows, m).astype(float)
        yield idx, counts
        done += m


def _block_resamples(rng: np.random.Generator, ids: np.ndarray, n_resamples: int, need_idx: bool
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Resamples of whole blocks: ``g`` blocks drawn with replacement; a row's count is its block's count.
    Row indices (for callable metrics only, ``need_idx``) list each drawn block's rows."""
    rows = ids.size
    g = int(ids.max()) + 1
    members = [np.flatnonzero(ids == k) for k in range(g)] if need_idx else []
    step = max(1, CHUNK_CELLS // rows)
    done = 0
    while done < n_resamples:
        m = min(step, n_resamples - done)
        drawn = rng.integers(0, g, size=(m, g))
        cells = drawn * m + np.arange(m)[:, None]
        block_counts = np.bincount(cells.ravel(), minlength=g * m).reshape(g, m).astype(float)
        idx = [np.concatenate([members[k] for k in row]) for row in drawn] if need_idx else []
        yield idx, block_counts[ids]  # type: ignore[misc]
        done += m


def _call(metric: MetricFn, y: np.ndarray, scores: np.ndarray) -> float:
    try:
        value = float(metric(y, scores))
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return math.nan
    return value if math.isfinite(value) else math.nan


# --- vectorised metrics: each evaluator maps counts (rows, m) to m values, NaN when undefined ----


def _evaluators(name: str, y: np.ndarray, cand: np.ndarray, champ: np.ndarray) -> tuple[Evaluator, Evaluator]:
    if name in REGRESSION_NAMES:
        target = _finite(y, "y_true")
        return _regression(name, target, _finite(cand, "scores_candidate")), _regression(
            name, target, _finite(champ, "scores_champion")
        )
    k = _n_classes(y, cand, champ)
    labels = _labels(y, k, "y_true")
    return _classification(name, labels, cand, k, "scores_candidate"), _classification(
        name, labels, champ, k, "scores_champion"
    )


def _regression(name: str, y: np.ndarray, pred: np.ndarray) -> Evaluator:
    if y.ndim != 1 or pred.shape != y.shape:
        raise ValueError(f"{name} needs 1-D targets and predictions of one length, got {y.shape} and {pred.shape}")
    err = y - pred

    if name == "rmse":
        sq = err**2
        return lambda w: np.sqrt((sq @ w) / w.sum(axis=0))
    if name == "mae":
        ab = np.abs(err)
        return lambda w: (ab @ w) / w.sum(axis=0)
    centred = y - y.mean()  # SS_tot does not change with the centre; this keeps it well conditioned
    sq_err, sq_c = err**2, centred**2

    def r2(w: np.ndarray) -> np.ndarray:
        total = w.sum(axis=0)
        ss_c = sq_c @ w
        ss_tot = ss_c - (centred @ w) ** 2 / total
        ok = (total >= 2) & (ss_tot > 1e-12 * ss_c)
        return np.where(ok, 1 - (sq_err @ w) / np.where(ok, ss_tot, 1.0), np.nan)

    return r2


def _n_classes(y: np.ndarray, *scores: np.ndarray) -> int:
    widths = {s.shape[1] for s in scores if s.ndim == 2}
    if len(widths) > 1:
        raise ValueError(f"the two probability matrices have different numbers of columns: {sorted(widths)}")
    if widths:
        return widths.pop()
    highest = [int(_labels(s, None, "predicted labels").max()) for s in scores if _is_labels(s) and s.size]
    if not highest:
        return 2  # probabilities of class 1
    return max(2, int(_labels(y, None, "y_true").max()) + 1, *(h + 1 for h in highest))


def _is_labels(s: np.ndarray) -> bool:
    return s.ndim == 1 and s.dtype.kind in "biu"


def _labels(values: np.ndarray, k: int | None, what: str) -> np.ndarray:
    """Class indices ``0..k-1`` as int64; floats are accepted when they are whole numbers."""
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {v.shape}")
    if v.dtype.kind == "b":
        v = v.astype(np.int64)
    elif v.dtype.kind == "f":
        if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
            raise ValueError(f"{what} must be class indices 0..k-1 (see metrics.encode_labels)")
        v = v.astype(np.int64)
    elif v.dtype.kind not in "iu":
        raise ValueError(f"{what} must be class indices 0..k-1 (see metrics.encode_labels), got dtype {v.dtype}")
    if v.size and (v.min() < 0 or (k is not None and v.max() >= k)):
        raise ValueError(f"{what} must be class indices in 0..{'k' if k is None else k}-1")
    return v.astype(np.int64)


def _classification(name: str, y: np.ndarray, scores: np.ndarray, k: int, what: str) -> Evaluator:
    """Evaluator for one model's scores: probabilities (1-D for class 1, or a matrix) or labels."""
    if len(scores) != len(y):
        raise ValueError(f"{what} has {len(scores)} rows but y_true has {len(y)}")
    if scores.ndim == 2:
        proba = _finite(scores, what)
        pred = proba.argmax(axis=1)
        ranking: np.ndarray | None = proba[:, 1] if k == 2 else proba
    elif _is_labels(scores):
        pred = _labels(scores, k, what)
        ranking = pred.astype(float) if k == 2 else None
    elif scores.ndim == 1:
        if k != 2:
            raise ValueError(f"{what}: a 1-D vector of probabilities is for binary tasks; pass predict_proba")
        ranking = _finite(scores, what)
        pred = (ranking > 0.5).astype(np.int64)
    else:
        raise ValueError(f"{what} must be 1-D or 2-D, got shape {scores.shape}")

    if name in ("log_loss", "brier"):
        if scores.ndim == 2:
            matrix = proba
        elif ranking is not None and not _is_labels(scores):
            matrix = np.column_stack([1 - ranking, ranking])
        else:
            raise ValueError(f"{what}: {name} needs probabilities, not predicted labels")
        if name == "log_loss":
            per_row = -np.log(np.clip(matrix[np.arange(len(y)), y], PROBA_EPS, 1 - PROBA_EPS))
        elif k == 2:
            per_row = (matrix[:, 1] - (y == 1)) ** 2
        else:
            per_row = ((matrix - np.eye(k)[y]) ** 2).sum(axis=1)
        return lambda w: (per_row @ w) / w.sum(axis=0)
    if name == "roc_auc":
        if ranking is None:
            raise ValueError(f"{what}: multiclass roc_auc needs the predict_proba matrix, not labels")
        if ranking.ndim == 1:
            return _weighted_auc(y == 1, ranking)
        per_class = [_weighted_auc(y == c, ranking[:, c]) for c in range(k)]
        return lambda w: np.mean(np.stack([f(w) for f in per_class], axis=1), axis=1)  # NaN if a class is absent
    if name == "accuracy":
        right = (pred == y).astype(float)
        return lambda w: (right @ w) / w.sum(axis=0)
    if k == 2:
        tp_v = ((pred == 1) & (y == 1)).astype(float)
        pred_pos = (pred == 1).astype(float)
        true_pos = (y == 1).astype(float)
        return lambda w: _ratio(name, tp_v @ w, pred_pos @ w, true_pos @ w)
    truth = np.eye(k)[y]
    guess = np.eye(k)[pred]
    both = truth * guess

    def macro(w: np.ndarray) -> np.ndarray:
        predicted, actual = w.T @ guess, w.T @ truth  # (m, k)
        values = _ratio(name, w.T @ both, predicted, actual)
        present = (predicted + actual) > 0  # scikit-learn averages over the labels seen in y_true or y_pred
        return (values * present).sum(axis=1) / present.sum(axis=1)

    return macro


def _ratio(name: str, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Precision, recall or F1 from counts; 0 where the denominator is 0 (``zero_division=0``)."""
    num, den = {"precision": (tp, predicted), "recall": (tp, actual), "f1": (2 * tp, predicted + actual)}[name]
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def _weighted_auc(pos: np.ndarray, scores: np.ndarray) -> Evaluator:
    """ROC AUC of resamples given by row counts (rows, m); the same pairs as ``roc_auc_score`` on the drawn rows.

    Each drawn positive scores the drawn negatives strictly below it plus half of those tied
    with it: ``(C[lo] + C[hi]) / 2``, where ``C`` is the cumulative count of negatives in
    score order and ``lo``/``hi`` bracket the positive's score among the negatives' scores.
    """
    neg_rows = np.flatnonzero(~pos)
    neg_rows = neg_rows[np.argsort(scores[neg_rows], kind="stable")]
    neg_scores = scores[neg_rows]
    pos_rows = np.flatnonzero(pos)
    lo = np.searchsorted(neg_scores, scores[pos_rows], side="left")
    hi = np.searchsorted(neg_scores, scores[pos_rows], side="right")

    def evaluate(w: np.ndarray) -> np.ndarray:
        below = np.zeros((neg_rows.size + 1, w.shape[1]))
        np.cumsum(w[neg_rows], axis=0, out=below[1:])
        drawn_pos = w[pos_rows]
        pairs = drawn_pos.sum(axis=0) * below[-1]
        won = 0.5 * (drawn_pos * (below[lo] + below[hi])).sum(axis=0)
        ok = pairs > 0
        return np.where(ok, won / np.where(ok, pairs, 1.0), np.nan)

    return evaluate


# --- small helpers ------------------------------------------------------------------------------


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks (``scipy.stats.rankdata``'s "average")."""
    order = np.argsort(s, kind="stable")
    ordered = s[order]
    group = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1
    sizes = np.bincount(group)
    mean_rank = np.cumsum(sizes) - (sizes - 1) / 2
    ranks = np.empty(s.size, dtype=float)
    ranks[order] = mean_rank[group]
    return ranks


def _binary_truth(y: Any) -> np.ndarray:
    v = np.asarray(y).ravel()
    if v.dtype.kind == "b":
        return v
    if v.dtype.kind not in "iuf" or not np.all(np.isin(v, (0, 1))):
        raise ValueError("y_true_binary must hold 0/1 (or booleans)")
    return v == 1


def _finite(values: Any, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return v
