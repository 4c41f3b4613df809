"""Drift methods as data: a registry of declared statistics, each a pure function of two samples.

A :class:`DriftMethod` declares a statistic (its name, the column kinds it accepts, its default
threshold and which direction means drift); its ``compute(reference, current)`` takes the two raw
samples and returns one number. Which method and threshold a column gets is decided elsewhere
(:func:`method_for` gives the default). Missing values (NaN, None and, for numeric samples, +-inf)
are dropped inside; a sample that is empty afterwards is a ``ValueError``. Numeric dtypes are
numeric samples, anything else (strings, objects, booleans) categorical; :meth:`DriftMethod.statistic`
takes the column's declared kind instead, so integer codes of a categorical column count as categories.

The statistics, with Evidently 0.7.23 (``evidently/legacy/calculations/stattests``) as reference:

- ``ks`` (numeric, p-value): two-sided two-sample Kolmogorov-Smirnov test, ``scipy.stats.ks_2samp``.
  Same call as Evidently's ``ks_stat_test``.
- ``wasserstein`` (numeric, distance): the first Wasserstein (earth mover's) distance between the
  two empirical distributions divided by the reference standard deviation (population, ``ddof=0``,
  floored at 0.001 for a constant reference), i.e. in units of reference standard deviations: a
  shift of the whole distribution by ``d`` gives ``d / std``. Same as ``wasserstein_stat_test``.
- ``jensenshannon`` (both, distance): Jensen-Shannon distance (square root of the divergence,
  natural logarithm, so between 0 and sqrt(ln 2) ~ 0.833) of the two frequency vectors on shared
  bins. Categorical: one bin per category of the union, same as ``jensenshannon_stat_test``.
  Numeric: the bins of numeric ``psi`` below (:func:`distance_edges`), so that the registry and the
  profile-based check in :mod:`.drift` give one value under one name. Evidently's
  ``get_binned_data`` (:func:`shared_histogram`) cuts a numeric sample whose reference has more than
  20 distinct values into ``numpy.histogram_bin_edges(..., bins="sturges")`` bins of the pooled
  samples (``ceil(log2(n + m)) + 1`` equal-width bins over their combined range), else one bin per
  value; the formula agrees with it to 1e-6 on those bins. Over the PSI cases measured below the two
  values differ by at most 0.043 (median by case 0.001-0.035), ours the lower in most.
- ``chisquare`` (categorical, p-value): Pearson's chi-square goodness-of-fit test of the current
  category counts against expected counts ``n_current * reference share`` over the union of the
  categories, ``k - 1`` degrees of freedom. Same as ``chi_stat_test``. A category the reference never
  had makes the statistic infinite and the p-value 0 (Evidently gets the same 0 from scipy, with a
  division warning); a single category on both sides is no evidence of change, p-value 1 (NaN
  in Evidently).
- ``linf`` (categorical, distance): L-infinity distance, the largest absolute difference between
  the reference and current share of any one category (as NannyML's ``l_infinity``). Evidently has no
  counterpart.
- ``psi`` (both, distance): Population Stability Index ``sum_i (c_i - r_i) * ln(c_i / r_i)`` over
  bins, shares floored at ``EPSILON = stats.EPSILON`` so that an empty bin gives a large but finite term.
  Categorical: one bin per category of the union, exactly Evidently's ``psi_stat_test`` (to 1e-6)
  whenever every non-zero share exceeds 1e-4, which holds below 10 000 rows per sample; Evidently
  fills zeros with ``min share / 1e6`` instead when some share is <= 1e-4. Numeric: the bins of
  :mod:`.drift`, deliberately, so that the value equals what a profile-based check reports
  (:func:`distance_edges`): inner edges at the ``PSI_BINS = 10`` reference deciles (ties merged)
  and two more, :func:`.stats.outer_edges`, that isolate the values outside the reference's range,
  each bin ``(e_i, e_i+1]``: ``(-inf, nextafter(min, -inf)]`` holds exactly the values below the
  reference's minimum and ``(max, inf)`` those above its maximum. The reference has none there
  (share floored at ``EPSILON``), so out-of-range mass ``c`` adds about ``c ln(c / EPSILON)``: 5 %
  beyond the maximum (the rest as the reference) gives 0.31, where pooled into the open top decile
  (profile version 2, which keeps that) it looked like 0.019. Evidently instead cuts the pooled samples into Sturges bins over
  their combined range (or uses value frequencies below 21 distinct reference values), which also
  gives out-of-range values bins of their own, several. Both are PSI on a coarsening of the same two
  samples and agree to 1e-6 given the same bins, but not in general. Measured against
  ``psi_stat_test``, N(0, 1) reference against N(shift, 1) or N(0, scale), n = m, medians and
  ``|ours - Evidently|``; "before": the same on the deciles alone (``beyond``: share of samples
  with values outside the reference's range)::

      n = m = 2000, 500 seeds        ours  Evid.  max|d| med|d|  max|d|/Evid.  before: max  med
      shift 0     (beyond 74 %)     0.010  0.012  0.024  0.004      -             0.020  0.004
      shift 0.1   (75 %)            0.019  0.021  0.022  0.004      -             0.023  0.004
      shift 0.5   (88 %)            0.249  0.255  0.046  0.008     19 %           0.049  0.011
      shift 1     (98 %)            0.955  0.985  0.134  0.033     12 %           0.166  0.052
      shift 2     (100 %)           3.69   3.84   0.76   0.17      17 %           0.96   0.46
      shift 3     (100 %)           7.89   8.06   1.95   0.40      21 %           2.95   1.95
      scale 0.5   (0 %)             0.856  0.909  0.219  0.053     20 %           0.219  0.053
      scale 0.8   (8 %)             0.083  0.106  0.095  0.023     55 %           0.095  0.023
      scale 1.25  (100 %)           0.096  0.108  0.066  0.015     55 %           0.098  0.034
      scale 1.5   (100 %)           0.295  0.329  0.180  0.036     47 %           0.242  0.123
      scale 2     (100 %)           0.916  0.917  0.413  0.068     42 %           0.679  0.415
      scale 3     (100 %)           2.41   2.09   0.91   0.34      45 %           1.42   1.07

  At 2000 rows every non-empty share exceeds 1e-4, so Evidently floors empty bins at 1e-4 as we do
  and only the bins differ. The bound: ``|ours - Evidently| <= 0.05 + 0.21 * Evidently`` for
  shifts and ``<= 0.1 + 0.41 * Evidently`` for scale changes (largest coefficients measured); both
  give the same verdict at 0.1 and at 0.25 in every sample except where a case sits on the
  threshold (scale 0.8 and 1.25 at 0.1, shift 0.5 and scale 1.5 at 0.25). Under no drift both are
  about ``(k - 1) * (1/n + 1/m)`` for ``k`` non-empty bins (the chi-square approximation). Scale
  changes part most: Evidently's equal-width bins resolve the tails inside the range that our end
  deciles pool.

  At n = m = 20 000 (200 seeds) there is no small bound: in 68-88 % of samples some Sturges bin
  holds a single value (share 5e-5 <= 1e-4) and Evidently then fills empty bins with ``min share /
  1e6`` (about 5e-11, not 1e-4), so an empty bin weighs ``c ln(c / 5e-11)`` instead of ``c ln(c /
  1e-4)``. Evidently's value is up to 2.3 times ours (ours / Evidently 0.43-1.10 where Evidently
  >= 0.1): ``max|d|`` 0.14 at 1 sd (median 0.06), 1.1 at 2 sd, 5.6 at 3 sd (9.3 against 6.8,
  median 2.5), 0.72 at scale 0.5, 0.24 / 0.82 / 2.3 at scale 1.5 / 2 / 3 (medians 0.15 / 0.47 /
  0.23); its floor makes up to 80 % of the gap (median by case: 52 % at shift 3, 80 % at scale
  0.5), its finer tail bins the rest. Both still flag every sample at 0.1 except on that threshold
  (scale 0.8, 1.25), and at 0.25 except shift 0.5 and scale 1.5 (ours 0.22 against Evidently's
  0.36 there, median).
  ``tests/unit/test_drift_evidently_parity.py`` asserts these bounds with a margin.

Across many features, :func:`benjamini_hochberg` turns per-feature p-values into decisions that
keep the false discovery rate at ``q``, and :func:`weighted_drift_share` weighs the drifted
features by their importance.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.spatial import distance

from . import stats as shared
from .method_kinds import CATEGORICAL, KINDS, NUMERIC

logger = logging.getLogger(__name__)

EPSILON = shared.EPSILON
LN10 = math.log(10.0)
PSI_BINS = 10
WASSERSTEIN_MIN_STD = 0.001
DISTINCT_VALUES_AS_CATEGORIES = 20  # Evidently's get_binned_data: <= 20 distinct reference values -> one bin each
SMALL_SAMPLE_ROWS = 1000  # Evidently's _get_default_stattest: "small" reference data

StatisticKind = Literal["p_value", "distance"]


# --- samples ------------------------------------------------------------------------------------


def _is_categorical(values: np.ndarray) -> bool:
    return values.dtype.kind not in "iuf"


def _numeric_sample(values: np.ndarray, side: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        raise ValueError(f"the {side} sample has no finite values")
    return finite


def _categorical_sample(values: np.ndarray, side: str) -> pd.Series:
    series = pd.Series(np.asarray(values, dtype=object).ravel()).dropna()
    if series.empty:
        raise ValueError(f"the {side} sample has no non-missing values")
    return series


def category_counts(reference: np.ndarray, current: np.ndarray) -> tuple[list[object], np.ndarray, np.ndarray]:
    """The union of the categories (reference order first) and the counts of each in both samples."""
    ref = _categorical_sample(reference, "reference").value_counts(sort=False)
    cur = _categorical_sample(current, "current").value_counts(sort=False)
    categories = list(dict.fromkeys([*ref.index, *cur.index]))
    ref_counts = np.array([ref.get(k, 0) for k in categories], dtype=float)
    cur_counts = np.array([cur.get(k, 0) for k in categories], dtype=float)
    return categories, ref_counts, cur_counts


def shared_histogram(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both numeric samples on Evidently's shared bins (Sturges of the pooled samples, or values)."""
    ref = _numeric_sample(reference, "reference")
    cur = _numeric_sample(current, "current")
    if np.unique(ref).size <= DISTINCT_VALUES_AS_CATEGORIES:
        _, ref_counts, cur_counts = category_counts(ref, cur)
        return ref_counts, cur_counts
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    return np.histogram(ref, edges)[0].astype(float), np.histogram(cur, edges)[0].astype(float)


def quantile_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference quantiles, duplicates removed: :func:`.stats.quantile_edges`."""
    return np.asarray(shared.quantile_edges(_numeric_sample(reference, "reference"), bins), dtype=float)


def binned_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ``(-inf, e1], (e1, e2], ..., (ek, inf)`` of the finite values."""
    array = np.asarray(values, dtype=float).ravel()
    finite = array[np.isfinite(array)]
    return np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1).astype(float)


# --- statistics ---------------------------------------------------------------------------------


def population_stability_index(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """PSI of two histograms over the same bins, shares floored at ``EPSILON``: the engine's own
    :func:`.stats.psi`, so the registry and the reference-profile check can never disagree."""
    return shared.psi(reference_counts, current_counts)


def ks_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value."""
    result = stats.ks_2samp(_numeric_sample(reference, "reference"), _numeric_sample(current, "current"))
    return float(result.pvalue)


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    """First Wasserstein distance in units of the reference standard deviation (floored at 0.001)."""
    ref = _numeric_sample(reference, "reference")
    cur = _numeric_sample(current, "current")
    norm = max(float(np.std(ref)), WASSERSTEIN_MIN_STD)
    return float(stats.wasserstein_distance(ref, cur) / norm)


def distance_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """The bins of numeric PSI and Jensen-Shannon: inner edges at the reference deciles (ties merged) and
    the two :func:`.stats.outer_edges` that give values below the reference's minimum and above its
    maximum bins of their own, as :func:`.drift.distance_edges` reads them from a profile."""
    ref = _numeric_sample(reference, "reference")
    return np.unique(np.concatenate([quantile_edges(ref, bins), shared.outer_edges(ref)]))


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI on the reference's deciles plus the two out-of-range bins, as the profile-based check computes it."""
    ref = _numeric_sample(reference, "reference")
    cur = _numeric_sample(current, "current")
    edges = distance_edges(ref, bins)
    return population_stability_index(binned_counts(ref, edges), binned_counts(cur, edges))


def psi_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI with one bin per category of the union of both samples."""
    _, ref_counts, cur_counts = category_counts(reference, current)
    return population_stability_index(ref_counts, cur_counts)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI, categorical bins for non-numeric samples, :func:`psi_numeric`'s bins for numeric ones."""
    if _is_categorical(np.asarray(reference)) or _is_categorical(np.asarray(current)):
        return psi_categorical(reference, current)
    return psi_numeric(reference, current)


def jensenshannon_from_counts(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance (natural log) of two histograms over the same bins."""
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    return float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()))


def chisquare_from_counts(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Chi-square goodness-of-fit p-value of current counts against the reference shares, same categories."""
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    if ref.size < 2:
        return 1.0
    expected = ref * (cur.sum() / ref.sum())
    if np.any((expected == 0) & (cur > 0)):
        return 0.0  # a category the reference never had: an infinite statistic
    keep = expected > 0  # a reference category absent now adds 0 to the statistic and 1 degree of freedom
    statistic = float(np.sum((cur[keep] - expected[keep]) ** 2 / expected[keep]))
    return float(special.chdtrc(ref.size - 1, statistic))  # stats.chi2.sf, without its checks (~1 ms a call)


def chi2_log10_sf(statistic: float, df: float) -> float:
    """``log10`` of the chi-square upper tail ``P(X > statistic)`` with ``df`` degrees of freedom, without underflow.

    ``special.chdtrc`` where its value is a normal float; far in the tail (where it underflows to 0) the
    continued fraction of the upper incomplete gamma function ``Q(df/2, statistic/2)``, summed in log space
    (Lentz's method, as in Numerical Recipes' ``gcf``). ``+inf`` gives ``-inf``; NaN gives NaN.
    """
    if math.isnan(statistic) or math.isnan(df):
        return math.nan
    if df <= 0 or statistic <= 0:
        return 0.0
    if math.isinf(statistic):
        return -math.inf
    p = float(special.chdtrc(df, statistic))
    if p > 1e-290:
        return math.log10(p)
    a, x = df / 2.0, statistic / 2.0
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b if b != 0 else 1.0 / tiny
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return (-x + a * math.log(x) - special.gammaln(a) + math.log(h)) / LN10


def ks_log10_sf(d: float, effective_rows: float, limiting_rows: int = 10_000) -> float:
    """``log10`` of the asymptotic two-sided Kolmogorov-Smirnov p-value of distance ``d`` at ``effective_rows``
    (``n m / (n + m)``), without underflow: ``kstwo.sf`` (``kstwobign`` above ``limiting_rows``) where it is a
    normal float, else the limiting tail's leading term ``2 exp(-2 en d^2)`` in log space (the series'
    other terms are below ``exp(-8 en d^2)`` relative to it there)."""
    if math.isnan(d):
        return math.nan
    en = max(1.0, float(effective_rows))
    if d <= 0:
        return 0.0
    p = float(special.kolmogorov(d * math.sqrt(en)) if en > limiting_rows else stats.kstwo.sf(d, round(en)))
    if p > 1e-290:
        return math.log10(min(1.0, p))
    return (math.log(2.0) - 2.0 * en * d * d) / LN10


def chisquare_log10_from_counts(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """``log10`` of the chi-square p-value of :func:`chisquare_from_counts`, finite where that one is 0.

    A category the reference never had makes Pearson's statistic infinite (p = 0, which the registry keeps
    for parity with Evidently); here every category of the union then gets half a row more in the
    reference (Jeffreys' pseudo-count), so the value still says how surprising the window is: a window
    where 0.1 % of the rows are new identifiers and one where half are differ by orders of magnitude, and
    the calibration can learn which is usual for the feature.
    """
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    if ref.size < 2 or cur.sum() <= 0 or ref.sum() <= 0:
        return 0.0
    if np.any((ref == 0) & (cur > 0)):
        ref = ref + 0.5
    expected = ref * (cur.sum() / ref.sum())
    keep = expected > 0
    statistic = float(np.sum((cur[keep] - expected[keep]) ** 2 / expected[keep]))
    return chi2_log10_sf(statistic, ref.size - 1)


def linf_from_counts(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """L-infinity distance of two histograms over the same categories."""
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    return float(np.max(np.abs(ref / ref.sum() - cur / cur.sum())))


def jensenshannon_numeric(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Jensen-Shannon distance on the bins of :func:`psi_numeric`, as the profile-based check computes it."""
    ref = _numeric_sample(reference, "reference")
    cur = _numeric_sample(current, "current")
    edges = distance_edges(ref, bins)
    return jensenshannon_from_counts(binned_counts(ref, edges), binned_counts(cur, edges))


def jensenshannon_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log): one bin per category, or numeric on :func:`psi_numeric`'s bins."""
    if _is_categorical(np.asarray(reference)) or _is_categorical(np.asarray(current)):
        _, ref_counts, cur_counts = category_counts(reference, current)
        return jensenshannon_from_counts(ref_counts, cur_counts)
    return jensenshannon_numeric(reference, current)


def chisquare_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Chi-square goodness-of-fit p-value of the current counts against the reference shares."""
    _, ref_counts, cur_counts = category_counts(reference, current)
    return chisquare_from_counts(ref_counts, cur_counts)


def linf_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """L-infinity distance: the largest absolute difference in any one category's share."""
    _, ref_counts, cur_counts = category_counts(reference, current)
    return linf_from_counts(ref_counts, cur_counts)


# --- declarations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftMethod:
    """A declared drift statistic: which columns it accepts, its default threshold and direction."""

    name: str
    kinds: frozenset[str]
    default_threshold: float
    kind_of_statistic: StatisticKind
    description: str
    compute: Callable[[np.ndarray, np.ndarray], float]

    def __post_init__(self) -> None:
        if not self.kinds or not self.kinds <= KINDS:
            raise ValueError(f"{self.name}: kinds must be a non-empty subset of {sorted(KINDS)}, not {set(self.kinds)}")
        if self.kind_of_statistic not in ("p_value", "distance"):
            raise ValueError(f"{self.name}: kind_of_statistic must be 'p_value' or 'distance'")

    def statistic(self, reference: np.ndarray, current: np.ndarray, kind: str) -> float:
        """``compute`` for a column declared ``kind``: categorical values are compared as categories."""
        if kind not in self.kinds:
            raise ValueError(f"drift method {self.name!r} accepts {sorted(self.kinds)} columns, not {kind!r}")
        if kind == CATEGORICAL:
            return self.compute(np.asarray(reference, dtype=object), np.asarray(current, dtype=object))
        return self.compute(np.asarray(reference, dtype=float), np.asarray(current, dtype=float))

    def drifted(self, statistic: float, threshold: float | None = None) -> bool:
        """Drift when a p-value is below the threshold or a distance at or above it; NaN is no drift."""
        limit = self.default_threshold if threshold is None else threshold
        if math.isnan(statistic):
            return False
        return statistic < limit if self.kind_of_statistic == "p_value" else statistic >= limit


REGISTRY: dict[str, DriftMethod] = {
    method.name: method
    for method in (
        DriftMethod(
            name="ks",
            kinds=frozenset({NUMERIC}),
            default_threshold=0.05,
            kind_of_statistic="p_value",
            description="Two-sample Kolmogorov-Smirnov test, p-value (Evidently 'ks')",
            compute=ks_p_value,
        ),
        DriftMethod(
            name="wasserstein",
            kinds=frozenset({NUMERIC}),
            default_threshold=0.1,
            kind_of_statistic="distance",
            description="Wasserstein distance in reference standard deviations (Evidently 'wasserstein')",
            compute=wasserstein_normed,
        ),
        DriftMethod(
            name="psi",
            kinds=frozenset({NUMERIC, CATEGORICAL}),
            default_threshold=0.1,
            kind_of_statistic="distance",
            description="Population Stability Index; numeric on reference deciles + out-of-range bins (Evidently's differ)",
            compute=psi,
        ),
        DriftMethod(
            name="jensenshannon",
            kinds=frozenset({NUMERIC, CATEGORICAL}),
            default_threshold=0.1,
            kind_of_statistic="distance",
            description="Jensen-Shannon distance; numeric on the PSI bins (Evidently 'jensenshannon' bins differ)",
            compute=jensenshannon_distance,
        ),
        DriftMethod(
            name="chisquare",
            kinds=frozenset({CATEGORICAL}),
            default_threshold=0.05,
            kind_of_statistic="p_value",
            description="Chi-square test of current counts against reference shares, p-value (Evidently 'chisquare')",
            compute=chisquare_p_value,
        ),
        DriftMethod(
            name="linf",
            kinds=frozenset({CATEGORICAL}),
            default_threshold=0.1,
            kind_of_statistic="distance",
            description="L-infinity distance: largest change in any category's share",
            compute=linf_distance,
        ),
    )
}


def get_method(name: str) -> DriftMethod:
    """The declared method of that name; an unknown name is an error listing the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown drift method {name!r}; valid methods: {', '.join(sorted(REGISTRY))}") from None


def method_for(kind: str, n_reference: int, n_current: int) -> str:
    """The default method for a column, by Evidently's rule on the size of the reference data.

    Evidently (``_get_default_stattest``) picks by reference rows only: up to 1000, ``ks`` for
    numeric and ``chisquare`` for categorical columns; above, ``wasserstein`` and ``jensenshannon``.
    Not mirrored: Evidently's z-test for binary categorical columns and its categorical tests for
    numeric columns with at most 5 distinct values (declare such a column categorical instead).
    ``n_current`` is checked but, as in Evidently, does not change the choice.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown column kind {kind!r}; valid kinds: {', '.join(sorted(KINDS))}")
    if n_reference < 1 or n_current < 0:
        raise ValueError(f"need a non-empty reference, got n_reference={n_reference}, n_current={n_current}")
    small = n_reference <= SMALL_SAMPLE_ROWS
    if kind == NUMERIC:
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"


# --- many features ------------------------------------------------------------------------------


def benjamini_hochberg(p_values: Sequence[float], q: float = 0.05) -> list[bool]:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at false discovery rate ``q``.

    With the ``m`` p-values sorted, ``p_(1) <= ... <= p_(m)``, reject the ``k`` smallest for the
    largest ``k`` with ``p_(k) <= k / m * q``. NaN p-values (a test that could not run) are never
    rejected and do not count in ``m``.
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    p = np.asarray(p_values, dtype=float)
    tested = np.flatnonzero(~np.isnan(p))
    if np.any((p[tested] < 0) | (p[tested] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    rejected = np.zeros(p.size, dtype=bool)
    m = tested.size
    if m:
        order = tested[np.argsort(p[tested], kind="stable")]
        below = np.flatnonzero(p[order] <= np.arange(1, m + 1) / m * q)
        if below.size:
            rejected[order[: below[-1] + 1]] = True
    return [bool(r) for r in rejected]


def adjusted_p_values(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values: ``p_adj <= q`` exactly when :func:`benjamini_hochberg` rejects at ``q``.

    ``p_adj(i) = min over j >= i of min(1, m / j * p_(j))`` in sorted order; NaN stays NaN and
    does not count in ``m``.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.size, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = tested.size
    if m:
        if np.any((p[tested] < 0) | (p[tested] > 1)):
            raise ValueError("p-values must lie in [0, 1]")
        order = tested[np.argsort(p[tested], kind="stable")]
        scaled = p[order] * m / np.arange(1, m + 1)
        out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return [float(v) for v in out]


def adjusted_log10_p_values(log10_p: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values on the log10 scale: ``log10`` of :func:`adjusted_p_values`, computed
    without leaving the log scale (so p-values far below 1e-300 keep their order). NaN stays NaN and does
    not count in ``m``; ``-inf`` (p = 0) stays ``-inf``."""
    x = np.asarray(log10_p, dtype=float)
    out = np.full(x.size, np.nan)
    tested = np.flatnonzero(~np.isnan(x))
    m = tested.size
    if m:
        if np.any(x[tested] > 1e-12):
            raise ValueError("log10 p-values must be <= 0")
        order = tested[np.argsort(x[tested], kind="stable")]
        scaled = x[order] + np.log10(m / np.arange(1, m + 1))
        out[order] = np.minimum(0.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return [float(v) for v in out]


def weighted_drift_share(drifted: Mapping[str, bool], importance: Mapping[str, float]) -> float:
    """Share of the features' total importance carried by the drifted ones.

    Equal weights when ``importance`` is empty (or sums to 0 over these features), so the result
    is the plain share of drifted features. A feature without an importance weighs 0;
    importances of features not in ``drifted`` are ignored.
    """
    if not drifted:
        return 0.0
    if any(w < 0 or math.isnan(w) for w in importance.values()):
        raise ValueError("feature importances must be non-negative numbers")
    weights = {f: float(importance.get(f, 0.0)) for f in drifted} if importance else dict.fromkeys(drifted, 1.0)
    unweighted = sorted(f for f in drifted if importance and f not in importance)
    if unweighted:
        logger.warning("no importance for %d feature(s), weighted 0: %s", len(unweighted), ", ".join(unweighted[:10]))
    total = sum(weights.values())
    if total <= 0:
        logger.warning("feature importances sum to 0; weighting the %d features equally", len(drifted))
        weights, total = dict.fromkeys(drifted, 1.0), float(len(drifted))
    return sum(w for f, w in weights.items() if drifted[f]) / total
