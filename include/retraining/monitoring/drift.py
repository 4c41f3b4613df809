"""Data drift: a compact reference profile stored with each model, and the check of a window against it.

When a model is trained, :func:`build_profile` summarises the reference data (the most
recent slice of its training data) once: per numeric feature the decile bin edges and
counts, finer quantile bins (every distinct value when there are few), summary statistics
and a bounded random sample; per categorical feature the category frequencies; missing
counts for both. A check never re-reads the training data.

A check reads the window once into its sufficient statistics, :func:`summarize` (in
pandas), or :mod:`.window_histograms` (inside PostgreSQL, or over Parquet in batches):
counts on the profile's fine bins, category counts, missing counts, min/max/mean/std. In
pandas a numeric column is counted by :func:`bin_counts` (a lookup table of a uniform grid,
exactly the binary search's bins, in cache-sized steps), a categorical column given as codes
and categories (``pandas.Categorical``, an Arrow dictionary) on its codes. Every
statistic is then computed from the two summaries by :func:`check`:

- ``psi``: PSI on the decile bins and, from profile version 3, two bins for the values below
  the reference's minimum and above its maximum (:func:`distance_edges`; reference share 0,
  floored at ``EPSILON``, so out-of-range mass counts instead of joining the open end deciles),
  plus a bin for missing values when either side has some; categorical on the union of the
  categories (Evidently's rule), plus the missing bin.
- ``ks``: the Kolmogorov-Smirnov distance ``D`` is the largest gap between the two empirical
  CDFs at the fine bin edges (every distinct reference value for a discrete feature, so exact
  there); for continuous features it is a lower bound of the exact ``D``, short by at most
  the largest pooled share of a fine bin (~1 % with 100 bins). The p-value is the
  asymptotic two-sided one, ``kstwo.sf(D, round(n m / (n + m)))``, as ``scipy.stats.ks_2samp``
  computes it for large samples (its limit ``kstwobign`` above 10 000 effective rows).
- ``wasserstein``: the first Wasserstein distance between the two binned distributions, each
  bin's values spread uniformly over the part of the bin within the side's [min, max] (a point
  at the value for discrete features; tail bins placed by their means, see
  :func:`summary_wasserstein`), divided by the reference's standard deviation (ddof 0,
  floored at 0.001) as Evidently does. The difference to the exact distance of the raw samples
  is measured in ``tests/unit/test_drift.py`` and documented in the README.
- ``jensenshannon``: Jensen-Shannon distance (natural log) on the bins of ``psi`` (without the
  missing bin; a bin per category for categorical features): the registry's ``jensenshannon``
  computes the same from raw samples. Evidently bins numeric values differently (Sturges
  bins of the pooled samples), see :mod:`.drift_methods`.
- ``chisquare`` and ``linf``: from the category counts, exactly as :mod:`.drift_methods`.

P-values of all features are adjusted together with Benjamini-Hochberg; the dataset-level
verdict weighs each drifted feature by the champion's importance (see :func:`check`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import drift_methods as methods
from .stats import (  # noqa: F401 (part of this module's interface)
    EPSILON,
    component_limit,
    natural_limit,
    outer_edges,
    p_value_limit,
    psi,
    quantile_edges,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..config import DriftSection

log = logging.getLogger(__name__)

PROFILE_VERSION = 3  # 3: fine edges isolate the values outside the reference's [min, max] (outer_edges)
WASSERSTEIN_MIN_STD = 0.001
TAIL_QUANTILES = (0.001, 0.005, 0.995, 0.999)
SMALL_SAMPLE_ROWS = 1000  # at most this many rows on either side: p-value tests, else distances
MAX_CATEGORY_BINS = 30  # categories shown per histogram in a result (the rest are summed as "other")


def numeric_histogram(values: np.ndarray, edges: Sequence[float]) -> tuple[list[int], int]:
    """Counts per bin ``(-inf, e1], (e1, e2], ..., (ek, inf)`` and the number of missing values."""
    values = np.asarray(values, dtype=float)
    if _grid_tables(edges, values.size) is not None:
        nan = int(np.count_nonzero(np.isnan(values)))
        return [int(c) for c in bin_counts(values, edges, nan)], nan
    nan_mask = np.isnan(values)
    missing = int(nan_mask.sum())
    present = values[~nan_mask] if missing else values
    idx = bin_index(present, np.asarray(edges, dtype=float))
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return [int(c) for c in counts], missing


# --- counting values on the bins in one pass: a lookup table of a fine uniform grid ------------------

COUNT_GRID = 1 << 14  # cells of the uniform grid over [e1, ek] (the tables stay in the CPU cache)
COUNT_CHUNK = 1 << 15  # values per step: the step's temporaries stay in the CPU cache
COUNT_MIN_VALUES = 4096
RECOUNT_SHARE = 0.01  # more of the values so far in cells with two edges: compare with both edges instead
_EXACT_SCALE = 2.0**48  # max(|e1|, |ek|) * cells / (ek - e1) above this: rounding could move a value by a cell


@dataclass(frozen=True)
class _Grid:
    """Per grid cell (0: below ``e1`` and NaN, 1..G: ``[e1 + (j-1)/scale, e1 + j/scale)``, G+1: ``ek`` and
    above): the bin of a value in it is ``base + (value > first) + (value > second)``, the edges within the
    cell or its two neighbours (``+inf`` for none), or bin ``k + 1`` (none: recount) with three or more."""

    offset: float
    scale: float
    base: np.ndarray
    first: np.ndarray
    second: np.ndarray | None
    # the same without ``second``: its cells recounted (cheaper while they hold few values, e.g. two edges an
    # ulp apart, as a decile and a percentile can be); None when no cell has two edges
    base_single: np.ndarray | None = None
    first_single: np.ndarray | None = None


_grid_cache: dict[bytes, _Grid | None] = {}


def _grid_tables(edges: Sequence[float] | np.ndarray, n_values: int) -> _Grid | None:
    """The lookup tables of these edges (cached), or None where a binary search is as good or exactness
    cannot be guaranteed (few values or edges, an empty or extreme range)."""
    if n_values < COUNT_MIN_VALUES or len(edges) < 2:
        return None
    e = np.asarray(edges, dtype=float)
    key = e.tobytes()
    if key in _grid_cache:
        return _grid_cache[key]
    grid = _build_grid(e)
    if len(_grid_cache) >= 256:
        _grid_cache.clear()
    _grid_cache[key] = grid
    return grid


def _build_grid(edges: np.ndarray) -> _Grid | None:
    lo, hi = float(edges[0]), float(edges[-1])
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        return None
    cells = COUNT_GRID
    scale = cells / (hi - lo)
    if not math.isfinite(scale) or max(abs(lo), abs(hi)) * scale >= _EXACT_SCALE:
        return None
    k = edges.size
    offset = lo - 1.0 / scale
    # each edge's cell, by the same arithmetic as the values' (bin_counts); a value and an edge whose cells
    # are more than two apart are apart by more than a cell's width of rounding: the edge is below the value
    # (its cell is lower) or above it, so a cell's bin needs only the edges whose cells are within two of it
    with np.errstate(invalid="ignore", over="ignore"):
        at = np.minimum((edges - offset) * scale, cells + 1).astype(np.int64)
    at = np.clip(at, 0, cells + 1)
    near_lo, near_hi = np.clip(at - 2, 0, cells + 1), np.clip(at + 2, 0, cells + 1)
    opens = np.bincount(near_lo, minlength=cells + 3)
    closes = np.bincount(near_hi + 1, minlength=cells + 3)
    covering = np.cumsum(opens - closes)[: cells + 2]
    base = np.cumsum(closes)[: cells + 2]  # edges whose neighbourhood ends below the cell: below its values
    first = np.full(cells + 2, np.inf)
    second = np.full(cells + 2, np.inf)
    some = covering >= 1
    first[some] = edges[base[some]]
    two = covering == 2
    second[two] = edges[base[two] + 1]
    base = base.astype(np.int32)
    crowded = covering > 2
    base[crowded], first[crowded] = k + 1, np.inf  # recounted by binary search
    if not two.any():
        return _Grid(offset=offset, scale=scale, base=base, first=first, second=None)
    base_single, first_single = base.copy(), first.copy()
    base_single[two], first_single[two] = k + 1, np.inf
    return _Grid(offset=offset, scale=scale, base=base, first=first, second=second, base_single=base_single,
                 first_single=first_single)


def bin_counts(values: np.ndarray, edges: Sequence[float] | np.ndarray, nan: int | None = None,
               extremes: list[float] | None = None) -> np.ndarray:
    """Counts of the non-missing float64 ``values`` on the bins ``(-inf, e1], ..., (ek, inf)``: exactly those of
    ``searchsorted(edges, values, side="left")``, counted without a binary search per value.

    Each value's cell of a uniform grid over ``[e1, ek]`` is found by arithmetic; a table gives the bin of
    the cell's values below its edges, and comparing the value with the (at most two) edges in and next to
    the cell gives its bin. Values in a cell with more edges are counted again by binary search. ``nan``:
    how many values are NaN, when the caller knows (they are counted in the lowest bin and taken out).
    ``extremes``: a list to receive the values' minimum and maximum, read while they are in the cache
    (meaningful for values without NaN).
    """
    k = len(edges)
    values = np.asarray(values, dtype=float)
    grid = _grid_tables(edges, values.size)
    if grid is None:
        present = values[~np.isnan(values)] if nan is None or nan else values
        if extremes is not None and values.size:
            extremes[:] = [float(values.min()), float(values.max())]
        return np.bincount(bin_index(present, np.asarray(edges, dtype=float)), minlength=k + 1)
    if nan is None:
        nan = int(np.count_nonzero(np.isnan(values)))
    counts = np.zeros(k + 2, dtype=np.int64)
    size = min(values.size, COUNT_CHUNK)
    cell_f, edge, above = np.empty(size), np.empty(size), np.empty(size, dtype=bool)
    cell, idx = np.empty(size, dtype=np.int32), np.empty(size, dtype=np.int32)
    recount: list[np.ndarray] = []
    recounted = 0
    # cells with two edges: recounted while they hold few values, else compared with the second edge
    single = grid.base_single is not None
    base, first = (grid.base_single, grid.first_single) if single else (grid.base, grid.first)
    lows: list[float] = []
    highs: list[float] = []
    with np.errstate(invalid="ignore", over="ignore"):
        for begin in range(0, values.size, COUNT_CHUNK):
            v = values[begin:begin + COUNT_CHUNK]
            m = v.size
            if extremes is not None:
                lows.append(v.min())
                highs.append(v.max())
            t, c, i, e, a = cell_f[:m], cell[:m], idx[:m], edge[:m], above[:m]
            np.subtract(v, grid.offset, out=t)
            np.multiply(t, grid.scale, out=t)
            np.minimum(t, COUNT_GRID + 1, out=t)  # +inf and beyond: the last cell; NaN stays NaN
            c[...] = t  # truncation toward 0; NaN, below e1 and -inf become <= 0, clipped to cell 0 below
            np.take(base, c, out=i, mode="clip")
            np.take(first, c, out=e, mode="clip")
            np.greater(v, e, out=a)
            i += a
            if not single and grid.second is not None:
                np.take(grid.second, c, out=e, mode="clip")
                np.greater(v, e, out=a)
                i += a
            chunk_counts = np.bincount(i, minlength=k + 2)
            if chunk_counts[k + 1]:
                recount.append(v[i == k + 1])
                recounted += int(chunk_counts[k + 1])
                if single and recounted > RECOUNT_SHARE * (begin + m):
                    single, base, first = False, grid.base, grid.first
            counts += chunk_counts
    if extremes is not None and lows:
        extremes[:] = [float(min(lows)), float(max(highs))]
    counts = counts[: k + 1]
    if recount:
        again = np.concatenate(recount)
        in_grid_nan = int(np.count_nonzero(np.isnan(again)))  # NaN of a recounted cell 0: no value
        if in_grid_nan:
            again = again[~np.isnan(again)]
        counts += np.bincount(np.searchsorted(np.asarray(edges, dtype=float), again, side="left"), minlength=k + 1)
        nan -= in_grid_nan
    counts[0] -= nan  # NaN: in cell 0, below every edge
    return counts


GRID_CELLS = 4096
GRID_MIN_EDGES = 16
GRID_MIN_VALUES = 20_000


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``searchsorted(edges, values, side="left")`` (bin of each value, an edge's value in the lower bin), faster.

    With many edges a binary search per value dominates a check, so values are first mapped to a
    uniform grid of ``GRID_CELLS`` cells over ``[e1, ek]`` by arithmetic; a cell whose neighbourhood
    holds no edge gives every value in it the same bin, read from a table. Values in cells with an
    edge nearby (the neighbours too, against rounding), above ``ek`` or not finite fall back to the
    binary search, so the result is exactly the binary search's.
    """
    k = edges.size
    if k < GRID_MIN_EDGES or values.size < GRID_MIN_VALUES or not (edges[-1] > edges[0]):
        return np.searchsorted(edges, values, side="left")
    lo, hi = float(edges[0]), float(edges[-1])
    scale = GRID_CELLS / (hi - lo)
    if not np.isfinite(scale):
        return np.searchsorted(edges, values, side="left")
    bounds = lo + np.arange(GRID_CELLS + 1) / scale
    at_bounds = np.searchsorted(edges, bounds, side="left")
    # cell 0: values < e1 (bin 0); cells 1..GRID_CELLS: [lo + (j-1)/scale, lo + j/scale); last: beyond
    low_bin = np.concatenate([[0], at_bounds[:-1], [k]])
    high_bin = np.concatenate([[0], at_bounds[1:], [k]])
    sure = low_bin == high_bin
    sure[1:-1] &= sure[:-2] & sure[2:]
    sure[0], sure[-1] = True, False
    with np.errstate(invalid="ignore", over="ignore"):
        cell = np.floor((values - lo) * scale)
    np.clip(cell, -1, GRID_CELLS, out=cell)
    cell = cell.astype(np.intp)
    cell += 1
    idx = low_bin[cell]
    unsure = ~sure[cell]
    idx[unsure] = np.searchsorted(edges, values[unsure], side="left")
    return idx




def _categorical_counts(values: pd.Series) -> tuple[dict[str, int], int]:
    """Counts of the non-missing values as strings (``1`` and ``"1"`` are one category) and the missing count.

    A column that carries integer codes and its categories (a pandas ``Categorical``, what a dictionary-encoded
    Parquet column or a source that sends codes gives; an Arrow dictionary column) is counted on its codes,
    without touching a Python object per cell; other columns by hashing each value.
    """
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return categorical_counts_from_codes(values.cat.codes.to_numpy(), dtype.categories)
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        if pa.types.is_dictionary(dtype.pyarrow_dtype):
            return _arrow_dictionary_counts(pa.chunked_array(values.array.__arrow_array__()))
    # missing values counted as keys and taken out after: a missing-value test per cell costs as much as hashing
    counts = values.value_counts(dropna=False, sort=False)
    missing = 0
    merged: dict[str, int] = {}
    for key, count in counts.items():
        if not count:
            continue
        if isinstance(na := pd.isna(key), bool) and na:  # None, NaN, NaT, pd.NA: as dropna=True drops them
            missing += int(count)
            continue
        label = str(key)
        merged[label] = merged.get(label, 0) + int(count)
    return merged, missing


def categorical_counts_from_codes(codes: np.ndarray, categories: Sequence[Any]) -> tuple[dict[str, int], int]:
    """Category counts (as strings, categories without values left out) and the missing count of a column
    given as integer ``codes`` into ``categories`` (code -1, or any negative code, is missing): one
    ``bincount``. The same answer as counting the decoded values.

    This is how a source that can send codes hands a categorical column to :func:`summarize`: as
    ``pandas.Categorical.from_codes(codes, categories)`` (no copy), which is counted here."""
    codes = np.asarray(codes)
    size = len(categories)
    shifted = np.add(codes, 1, dtype=np.intp)
    try:
        counts = np.bincount(shifted, minlength=size + 1)
    except ValueError:  # below -1
        np.maximum(shifted, 0, out=shifted)
        counts = np.bincount(shifted, minlength=size + 1)
    if counts.size > size + 1:
        raise ValueError(f"a category code is {counts.size - 2}, but there are only {size} categories: codes "
                         "must index the categories given with them")
    merged: dict[str, int] = {}
    for category, count in zip(categories, counts[1:].tolist(), strict=True):
        if count:
            label = str(category)
            merged[label] = merged.get(label, 0) + count
    return merged, int(counts[0])


def _arrow_dictionary_counts(chunked: Any) -> tuple[dict[str, int], int]:
    """Counts of an Arrow dictionary column, chunk by chunk on its indices (chunks may differ in dictionary)."""
    import pyarrow.compute as pc

    merged: dict[str, int] = {}
    missing = 0
    for chunk in chunked.chunks:
        codes = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
        counts, chunk_missing = categorical_counts_from_codes(codes, chunk.dictionary.to_pylist())
        missing += chunk_missing
        for label, count in counts.items():
            merged[label] = merged.get(label, 0) + count
    return merged, missing


def _finite_stats(finite: np.ndarray) -> dict[str, float | None]:
    mean = float(finite.mean()) if finite.size else None
    return {
        "mean": mean,
        "std": _sample_std(finite, mean) if finite.size > 1 else None,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
    }


def _sample_std(finite: np.ndarray, mean: float | None) -> float:
    """``finite.std(ddof=1)`` bit for bit (numpy's own steps: subtract the mean, square in place, sum), given
    the mean already summed, without numpy's second sum for the mean."""
    if mean is None or not math.isfinite(mean):
        return float(finite.std(ddof=1))
    centred = np.subtract(finite, mean)
    with np.errstate(over="ignore", invalid="ignore"):
        np.multiply(centred, centred, out=centred)
        return math.sqrt(float(np.add.reduce(centred)) / (finite.size - 1))


def build_profile(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    bins: int = 10,
    *,
    fine_bins: int = 100,
    sample_rows: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """A JSON-serialisable summary of the reference data: everything a drift check needs.

    Numeric features: ``edges``/``counts`` on the ``bins`` reference quantiles (PSI and
    Jensen-Shannon), ``fine_edges``/``fine_counts`` on ``fine_bins`` quantiles, or on every
    distinct value when there are at most ``fine_bins`` of them (``discrete``), always
    including ``edges`` and the two :func:`.stats.outer_edges` ``nextafter(min, -inf)`` and
    ``max`` (version 3), so that a window's values below the minimum and above the maximum
    are counted apart (the reference has none there); ``missing``, ``mean``, ``std`` (ddof 1),
    ``std_pop`` (ddof 0), ``min``, ``max``, ``tail_means`` (of the values in the two outer fine
    bins: none in the reference, kept for the shape a window summary shares),
    ``range_tail_means`` (of the values in the next two, the reference's own tails) and a
    sorted random ``sample`` of at most ``sample_rows`` finite values.
    Categorical features: ``counts`` per category and ``missing``.
    """
    rng = np.random.default_rng(seed)
    profile: dict[str, Any] = {"version": PROFILE_VERSION, "rows": int(len(frame)), "numeric": {}, "categorical": {}}
    for col in numeric:
        values = frame[col].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        edges = quantile_edges(values, bins)
        distinct, distinct_counts = np.unique(finite, return_counts=True)
        discrete = bool(distinct.size <= fine_bins)
        fine = distinct.tolist() if discrete else [*quantile_edges(values, fine_bins), *_tail_edges(finite),
                                                   *_point_mass_edges(distinct, distinct_counts, fine_bins)]
        fine_edges = sorted({*edges, *fine, *outer_edges(finite)})
        counts, missing = numeric_histogram(values, edges)
        fine_counts, _ = numeric_histogram(values, fine_edges)
        take = min(sample_rows, finite.size)
        sample = np.sort(rng.choice(finite, size=take, replace=False)) if take else finite[:0]
        profile["numeric"][col] = {
            "edges": edges,
            "counts": counts,
            "fine_edges": [float(e) for e in fine_edges],
            "fine_counts": fine_counts,
            "discrete": discrete,
            "missing": missing,
            **_finite_stats(finite),
            "std_pop": float(finite.std()) if finite.size else None,
            "tail_means": tail_means(finite, fine_edges),
            "range_tail_means": tail_means(finite, fine_edges[1:-1]),
            "sample": [float(v) for v in sample],
        }
    for col in categorical:
        counts_, missing = _categorical_counts(frame[col])
        profile["categorical"][col] = {"counts": counts_, "missing": missing}
    return profile


def _point_mass_edges(distinct: np.ndarray, counts: np.ndarray, fine_bins: int) -> list[float]:
    """A value holding at least a fine bin's share (a point mass) gets the bin (previous value, value] of its own."""
    heavy = np.flatnonzero(counts >= counts.sum() / fine_bins)
    return [float(distinct[i - 1]) for i in heavy if i > 0] + [float(distinct[i]) for i in heavy]


def _tail_edges(finite: np.ndarray) -> list[float]:
    """Extra edges at the 0.1 % and 0.5 % quantiles of each tail, so that the open outer bins hold little mass."""
    if finite.size == 0:
        return []
    return [float(x) for x in np.quantile(finite, TAIL_QUANTILES)]


def tail_means(finite: np.ndarray, edges: Sequence[float]) -> list[float | None]:
    """Mean of the finite values in the lowest bin ``(-inf, e1]`` and in the highest ``(ek, inf)``."""
    if not len(edges) or finite.size == 0:
        return [None, None]
    low, high = finite[finite <= edges[0]], finite[finite > edges[-1]]
    return [float(low.mean()) if low.size else None, float(high.mean()) if high.size else None]


def out_of_range(values: np.ndarray, lo: float | None, hi: float | None) -> int | None:
    """How many values (infinities included, NaN not) lie outside the reference's [lo, hi]."""
    if lo is None or hi is None:
        return None
    return int(np.count_nonzero((values < lo) | (values > hi)))


def bounds(profile: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The reference's [min, max] per numeric feature, for counting out-of-range window values."""
    return {col: (ref["min"], ref["max"]) for col, ref in profile["numeric"].items() if ref.get("min") is not None}


def fine_edges(reference: Mapping[str, Any]) -> list[float]:
    """The bins a window is counted on for this numeric feature (a version-1 profile has only ``edges``)."""
    return list(reference.get("fine_edges", reference["edges"]))


def summarize(frame: pd.DataFrame, profile: Mapping[str, Any]) -> dict[str, Any]:
    """The window's sufficient statistics on the profile's bins, in one pass over each column.

    The same shape as :func:`.window_histograms.sql_histograms` returns for the profile's fine
    edges: ``rows``; per numeric feature ``counts`` (on the fine bins), ``missing``, ``mean``,
    ``std``, ``min``, ``max``, ``tail_means``, ``out_of_range`` and ``infinite`` (how many values are
    +/-inf); per categorical feature ``counts`` and ``missing``. Features the
    frame lacks are left out (the check reports them as a schema change).

    One thread: the counting (``take``, ``bincount``) holds the GIL, so threads over the columns
    measured no faster.
    """
    out: dict[str, Any] = {"rows": int(len(frame)), "numeric": {}, "categorical": {}}
    for col, ref in profile["numeric"].items():
        if col in frame:
            out["numeric"][col] = numeric_summary(frame[col].to_numpy(dtype=float), fine_edges(ref),
                                                  ref.get("min"), ref.get("max"))
    for col in profile["categorical"]:
        if col in frame:
            counts_, missing = _categorical_counts(frame[col])
            out["categorical"][col] = {"counts": counts_, "missing": missing}
    return out


def numeric_summary(values: np.ndarray, edges: Sequence[float], lo: float | None, hi: float | None) -> dict[str, Any]:
    """One numeric column's part of :func:`summarize`: ``counts`` on ``edges``, ``missing``, ``mean``, ``std``,
    ``min``, ``max`` (of the finite values), ``tail_means``, ``out_of_range`` (of the reference's [lo, hi]) and
    ``infinite``.

    In few passes over the values: one sum tells a column without NaN or infinities (then the finite
    values are the values, no copy); the bin counts give the out-of-range count (a version-3 profile's
    outer bins hold exactly the values outside [lo, hi]) and whether the tail bins hold values at all.
    """
    values = np.asarray(values, dtype=float)
    n = values.size
    with np.errstate(invalid="ignore", over="ignore"):
        total = float(np.add.reduce(values)) if n else 0.0
    missing = infinite = neg_infinite = 0
    finite = values
    if not math.isfinite(total):  # NaN or +/-inf somewhere (or a sum beyond the float range)
        nan = np.isnan(values)
        inf = np.isinf(values)
        missing, infinite = int(np.count_nonzero(nan)), int(np.count_nonzero(inf))
        if infinite:
            neg_infinite = int(np.count_nonzero(values[inf] < 0))
        if missing or infinite:
            finite = values[~(nan | inf)]
            total = float(np.add.reduce(finite)) if finite.size else 0.0
    extremes: list[float] = []
    counts = bin_counts(values, edges, missing, extremes if finite is values else None)
    m = finite.size
    stats: dict[str, float | None] = {"mean": None, "std": None, "min": None, "max": None}
    if m:
        mean = total / m
        stats["mean"] = mean
        if m > 1:
            stats["std"] = _sample_std(finite, mean)
        stats["min"], stats["max"] = extremes if extremes else (float(finite.min()), float(finite.max()))
    k = len(edges)
    if k and m:
        below, beyond = int(counts[0]) - neg_infinite, int(counts[k]) - (infinite - neg_infinite)
        tails = [float(finite[finite <= edges[0]].mean()) if below else None,
                 float(finite[finite > edges[-1]].mean()) if beyond else None]
    else:
        tails = [None, None]
    if lo is None or hi is None:
        outside = None
    elif k >= 2 and edges[-1] == hi and edges[0] == float(np.nextafter(lo, -np.inf)):
        outside = int(counts[0] + counts[k])  # the outer bins: below lo (-inf too) and above hi (+inf too)
    else:
        outside = out_of_range(values, lo, hi)
    return {"counts": [int(c) for c in counts], "missing": missing, **stats, "tail_means": tails,
            "out_of_range": outside, "infinite": infinite}


def window_edges(profile: Mapping[str, Any]) -> dict[str, list[float]]:
    """Per numeric feature, the edges a window summary must be counted on (for window_histograms)."""
    return {col: fine_edges(ref) for col, ref in profile["numeric"].items()}


# --- statistics from two summaries -----------------------------------------------------------------


def _coarse(counts: np.ndarray, fine: Sequence[float], coarse: Sequence[float]) -> np.ndarray:
    """Counts on the coarse bins, summed from counts on fine bins whose edges include the coarse ones."""
    if list(coarse) == list(fine):
        return counts
    positions = np.searchsorted(np.asarray(fine, dtype=float), np.asarray(coarse, dtype=float))
    return np.add.reduceat(counts, np.concatenate([[0], positions + 1]))


def _toward_body(lower: float, upper: float, mean: float, low_tail: bool) -> tuple[float, float]:
    """The part of a tail bin ``[lower, upper]`` on which a uniform mass has this mean, sharing the bin's
    edge nearer the body (``upper`` for a low tail), or its outer edge when that one does not fit."""
    if low_tail:
        start = max(lower, min(2 * mean - upper, upper))
        return start, upper if start > lower else min(upper, max(2 * mean - lower, lower))
    end = min(upper, max(2 * mean - lower, lower))
    return lower if end < upper else max(lower, min(2 * mean - upper, upper)), end


def _pieces(edges: np.ndarray, counts: np.ndarray, lo: float, hi: float, discrete: bool,
            tails: Sequence[float | None] = (None, None),
            inner: Sequence[float | None] = (None, None)) -> tuple[np.ndarray, ...]:
    """Each non-empty bin as (mass, start, end): uniform over the bin's part of [lo, hi], a point if discrete.

    An outer bin whose mean is known (``tails``) is uniform on the interval that shares the bin's
    inner edge and has that mean: tails thin out away from the body, so their mass sits near it.
    ``inner`` does the same for the second and the second-to-last bin (of a continuous feature): in a
    version-3 profile those are the reference's own tail bins, next to the out-of-range outer bins.
    """
    k = edges.size
    lower = np.concatenate([[lo], edges])
    upper = np.concatenate([edges, [hi]])
    if discrete:
        # every distinct reference value is an edge, so a bin (e_i-1, e_i] holds the value e_i
        lower = np.concatenate([edges, [edges[-1] if k else lo]])
        lower[0] = min(lo, edges[0]) if k else lo
    start = np.clip(lower, lo, hi)
    end = np.clip(upper, lo, hi)
    start = np.minimum(start, end)
    low_mean, high_mean = tails
    if k and low_mean is not None:
        start[0], end[0] = _toward_body(lo, end[0], low_mean, True)
    if k and high_mean is not None:
        start[k], end[k] = _toward_body(start[k], hi, high_mean, False)
    if k > 2 and not discrete:
        for j, mean, low_tail in ((1, inner[0], True), (k - 1, inner[1], False)):
            if mean is not None and start[j] <= mean <= end[j]:
                start[j], end[j] = _toward_body(start[j], end[j], mean, low_tail)
    keep = counts > 0
    return counts[keep] / counts.sum(), start[keep], end[keep]


def _cdf(points: np.ndarray, mass: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    width = end - start
    safe = np.where(width > 0, width, 1.0)
    frac = np.where(width[None, :] > 0, (points[:, None] - start[None, :]) / safe[None, :],
                    (points[:, None] >= start[None, :]).astype(float))
    return np.clip(frac, 0.0, 1.0) @ mass


def binned_wasserstein(edges: Sequence[float], ref_counts: Sequence[float], cur_counts: Sequence[float],
                       ref_range: tuple[float, float], cur_range: tuple[float, float], discrete: bool = False,
                       ref_tails: Sequence[float | None] = (None, None),
                       cur_tails: Sequence[float | None] = (None, None),
                       ref_inner: Sequence[float | None] = (None, None),
                       cur_inner: Sequence[float | None] = (None, None)) -> float:
    """First Wasserstein distance between two histograms on the same bins (not normalised).

    Each side's CDF is piecewise linear (uniform within bins, clipped to its own range) or, for
    discrete features, a step at each edge; ``|F_r - F_c|`` is integrated exactly between knots.
    Known means place the mass of the outer bins (``*_tails``) and of the bins next to them
    (``*_inner``) within their bins, see :func:`_pieces`.
    """
    e = np.asarray(edges, dtype=float)
    r = _pieces(e, np.asarray(ref_counts, dtype=float), *ref_range, discrete, ref_tails, ref_inner)
    c = _pieces(e, np.asarray(cur_counts, dtype=float), *cur_range, discrete, cur_tails, cur_inner)
    grid = np.unique(np.concatenate([r[1], r[2], c[1], c[2]]))
    if grid.size < 2:
        return 0.0
    h = np.diff(grid)
    q1, q3 = grid[:-1] + h / 4, grid[:-1] + 3 * h / 4
    d1 = _cdf(q1, *r) - _cdf(q1, *c)
    d3 = _cdf(q3, *r) - _cdf(q3, *c)
    a = d1 - (d3 - d1) / 2  # the difference is linear inside each interval: extrapolate to its ends
    b = d3 + (d3 - d1) / 2
    same = a * b >= 0
    denom = np.where(same, 1.0, np.abs(a) + np.abs(b))
    area = np.where(same, (np.abs(a) + np.abs(b)) / 2, (a * a + b * b) / (2 * denom)) * h
    return float(area.sum())


KS_LIMITING_ROWS = 10_000


def binned_ks(ref_counts: Sequence[float], cur_counts: Sequence[float]) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance at the bin edges and its asymptotic two-sided p-value.

    ``kstwo.sf(D, round(n m / (n + m)))`` as ``scipy.stats.ks_2samp`` (method ``asymp``); above
    ``KS_LIMITING_ROWS`` effective rows, where that costs tens of milliseconds per feature, the
    limiting Kolmogorov distribution ``kstwobign.sf(D sqrt(en))`` it converges to (the two differ
    by less than 0.005 there). The p-value may underflow to 0: :func:`binned_ks_log10` keeps its log.
    """
    d, log10_p = binned_ks_log10(ref_counts, cur_counts)
    return d, float(min(1.0, 10.0 ** log10_p))


def binned_ks_log10(ref_counts: Sequence[float], cur_counts: Sequence[float]) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance at the bin edges and ``log10`` of its p-value (:func:`.drift_methods.ks_log10_sf`)."""
    r = np.asarray(ref_counts, dtype=float)
    c = np.asarray(cur_counts, dtype=float)
    n, m = r.sum(), c.sum()
    d = float(np.max(np.abs(np.cumsum(r)[:-1] / n - np.cumsum(c)[:-1] / m), initial=0.0))
    en = max(1, round(n * m / (n + m)))
    return d, methods.ks_log10_sf(d, en, KS_LIMITING_ROWS)


def _numeric_bin_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    labels = [f"<= {edges[0]:.4g}"]
    labels += [f"({a:.4g}, {b:.4g}]" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [*labels, f"> {edges[-1]:.4g}"]


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [round(float(v / total), 6) if total else 0.0 for v in counts]


def _with_missing(ref: np.ndarray, ref_missing: int, cur: np.ndarray, cur_missing: int) -> tuple[np.ndarray, np.ndarray]:
    if ref_missing or cur_missing:
        return np.append(ref, ref_missing), np.append(cur, cur_missing)
    return ref, cur


def distance_edges(reference: Mapping[str, Any]) -> list[float]:
    """The bins of numeric PSI and Jensen-Shannon: the decile ``edges`` and, in a version-3 profile, the
    two :func:`.stats.outer_edges` (its first fine edge lies below ``min``), so that values outside the
    reference's range count as bins of their own (reference share 0, floored at ``EPSILON`` in PSI)
    instead of joining the open end deciles. An older profile keeps the deciles alone."""
    fine, edges = fine_edges(reference), [float(e) for e in reference["edges"]]
    lo = reference.get("min")
    if not fine or lo is None or not fine[0] < lo:
        return edges
    return sorted({fine[0], *edges, fine[-1]})


def summary_wasserstein(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> float:
    """The normalised binned Wasserstein distance between a profile's numeric feature and a window's summary.

    The outer bins are placed by their means (the window's ``tail_means``). In a version-3 profile the
    outer bins hold only values beyond the reference's range and the next two are the reference's
    own tails, placed by its ``range_tail_means``; the window summary has no means for those, so the
    window's are estimated by :func:`_tail_bin_mean`.
    """
    fine = fine_edges(ref)
    r_fine = np.asarray(ref.get("fine_counts", ref["counts"]), dtype=float)
    norm = max(ref.get("std_pop") or ref.get("std") or 0.0, WASSERSTEIN_MIN_STD)
    lo_r, hi_r = ref["min"], ref["max"]
    lo_c, hi_c = cur["min"], cur["max"]
    if lo_c is None:  # only infinities: place them at the reference's ends
        lo_c, hi_c = lo_r, hi_r
    # version 3 (the first fine edge below min): the bins next to the out-of-range ones are the reference's
    # tail bins, whose means it keeps; the window's mean there is estimated (see _tail_bin_mean)
    inner = ref.get("range_tail_means") or (None, None)
    c = np.asarray(cur["counts"], dtype=float)
    cur_inner: list[float | None] = [None, None]
    if len(fine) > 2 and fine[0] < lo_r and not ref.get("discrete"):
        cur_inner = [_tail_bin_mean(fine[1], lo_r, lo_c, c[1], c[0], inner[0]),
                     _tail_bin_mean(fine[-2], hi_r, hi_c, c[-2], c[-1], inner[1])]
    return binned_wasserstein(fine, r_fine, c, (lo_r, hi_r), (lo_c, hi_c), bool(ref.get("discrete")),
                              ref.get("tail_means") or (None, None), cur.get("tail_means") or (None, None),
                              inner, cur_inner) / norm


TAIL_PRIOR_COUNT = 10  # values beyond the reference's range that weigh as much as its own tail's shape


def _tail_bin_mean(inner_edge: float, outer_edge: float, reach: float, inside: float, beyond: float,
                   prior: float | None) -> float | None:
    """Where the window's values in a reference tail bin (from ``inner_edge`` to ``outer_edge``, the
    reference's min or max) are centred: the window summary has the means of the outer bins only.

    A window that ends within the bin (``reach``, its min or max): the reference's mean ``prior`` at the
    same relative place in the part of the bin the window covers. One with ``beyond`` values past the
    outer edge for ``inside`` values in the bin: the mean of a density decaying exponentially through
    the bin and beyond, ``exp(-lambda w) = r / (1 + r)`` for width ``w`` and ``r = beyond / inside``, at
    ``w (1 / ln(1 + 1/r) - r)`` from the inner edge, pulled towards ``prior`` with the weight of
    ``TAIL_PRIOR_COUNT`` values beyond (a few values beyond say little about the shape).
    """
    if prior is None or inside <= 0:
        return None
    width = outer_edge - inner_edge  # negative for the low tail
    if beyond <= 0:
        covered = min(max((reach - inner_edge) / width, 0.0), 1.0) if width else 1.0
        return inner_edge + (prior - inner_edge) * covered
    r = beyond / inside
    fitted = inner_edge + width * min(max(1.0 / math.log1p(1.0 / r) - r, 0.0), 0.5)
    return (beyond * fitted + TAIL_PRIOR_COUNT * prior) / (beyond + TAIL_PRIOR_COUNT)


def _numeric_statistics(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
    fine = fine_edges(ref)
    r_fine = np.asarray(ref.get("fine_counts", ref["counts"]), dtype=float)
    c_fine = np.asarray(cur["counts"], dtype=float)
    r_coarse = np.asarray(ref["counts"], dtype=float)
    c_coarse = _coarse(c_fine, fine, ref["edges"])
    ks_d, ks_log10 = binned_ks_log10(r_fine, c_fine)
    ks_p = min(1.0, 10.0 ** ks_log10)
    wasserstein = summary_wasserstein(ref, cur)
    bins = distance_edges(ref)
    r_bins, c_bins = _coarse(r_fine, fine, bins), _coarse(c_fine, fine, bins)
    r_psi, c_psi = _with_missing(r_bins, ref["missing"], c_bins, cur["missing"])
    return {
        "values": {
            "ks": ks_p,
            "wasserstein": wasserstein,
            "psi": psi(r_psi, c_psi),
            "jensenshannon": methods.jensenshannon_from_counts(r_bins, c_bins),
        },
        "log10_p": {"ks": ks_log10},
        "ks_distance": ks_d,
        "effect": wasserstein,
        "histogram": {"bins": _numeric_bin_labels(ref["edges"]), "reference": _shares(r_coarse),
                      "current": _shares(c_coarse)},
        "reference_mean": ref.get("mean"),
        "current_mean": cur.get("mean"),
        "unseen_categories": [],
    }


def _categorical_statistics(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
    ref_counts, cur_counts = ref["counts"], cur["counts"]
    unseen = sorted((k for k in cur_counts if k not in ref_counts), key=lambda k: -cur_counts[k])
    categories = [*ref_counts, *unseen]
    r = np.array([ref_counts.get(k, 0) for k in categories], dtype=float)
    c = np.array([cur_counts.get(k, 0) for k in categories], dtype=float)
    r_psi, c_psi = _with_missing(r, ref["missing"], c, cur["missing"])
    js = methods.jensenshannon_from_counts(r, c)
    chi_log10 = methods.chisquare_log10_from_counts(r, c)
    order = np.argsort(-np.maximum(r / r.sum(), c / c.sum()), kind="stable")
    shown = order[:MAX_CATEGORY_BINS]
    labels = [categories[i] for i in shown]
    r_shown, c_shown = r[shown], c[shown]
    if order.size > MAX_CATEGORY_BINS:
        labels.append(f"other ({order.size - MAX_CATEGORY_BINS})")
        r_shown = np.append(r_shown, r[order[MAX_CATEGORY_BINS:]].sum())
        c_shown = np.append(c_shown, c[order[MAX_CATEGORY_BINS:]].sum())
    return {
        "values": {
            "chisquare": 10.0 ** chi_log10,
            "jensenshannon": js,
            "psi": psi(r_psi, c_psi),
            "linf": methods.linf_from_counts(r, c),
        },
        "log10_p": {"chisquare": chi_log10},
        "effect": js,
        "histogram": {"bins": labels, "reference": [round(float(v / r.sum()), 6) for v in r_shown],
                      "current": [round(float(v / c.sum()), 6) for v in c_shown]},
        "reference_mean": None,
        "current_mean": None,
        "unseen_categories": unseen[:10],
    }


def feature_values(section: str, ref: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, float]:
    """Every statistic of one feature's kind (``section``: numeric or categorical) between two summaries."""
    return feature_statistics(section, ref, cur)[0]


def feature_statistics(section: str, ref: Mapping[str, Any], cur: Mapping[str, Any]) -> tuple[dict[str, float],
                                                                                                dict[str, float]]:
    """:func:`feature_values` and the ``log10`` of its p-values (``ks`` / ``chisquare``), which never underflow."""
    stats_ = _numeric_statistics(ref, cur) if section == "numeric" else _categorical_statistics(ref, cur)
    return {k: float(v) for k, v in stats_["values"].items()}, {k: float(v) for k, v in stats_["log10_p"].items()}


def default_method(kind: str, n_reference: int, n_current: int) -> str:
    """``ks``/``chisquare`` p-values while either side has at most 1000 rows, else Wasserstein/Jensen-Shannon.

    Evidently chooses on the reference's size alone; the current window matters as much: a
    p-value test on tens of thousands of rows flags differences too small to matter, and a
    distance on a few hundred rows is mostly noise.
    """
    small = min(n_reference, n_current) <= SMALL_SAMPLE_ROWS
    if kind == methods.NUMERIC:
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"


def column_method(settings: DriftSection, feature: str, kind: str, n_reference: int, n_current: int) -> tuple[str, float]:
    """The method and threshold for one feature: its own rule, else the kind's method, else the default."""
    rule = settings.columns.get(feature)
    name = rule.method if rule is not None and rule.method else None
    if name in (None, "auto"):
        configured = settings.numeric_method if kind == methods.NUMERIC else settings.categorical_method
        name = default_method(kind, n_reference, n_current) if configured == "auto" else configured
    method = methods.get_method(name)
    if kind not in method.kinds:
        raise ValueError(f"drift method {name!r} for {feature!r} accepts {sorted(method.kinds)} columns, not {kind}")
    if rule is not None and rule.threshold is not None:
        return name, float(rule.threshold)
    if name in settings.thresholds:
        return name, float(settings.thresholds[name])
    return name, float(settings.fdr_q if method.kind_of_statistic == "p_value" else method.default_threshold)


def check(
    profile: Mapping[str, Any],
    window: Mapping[str, Any],
    settings: DriftSection,
    importance: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The drift verdict of a window summary against the reference profile.

    Per feature: the configured (or default) method's statistic against its threshold; p-values
    are first adjusted together with Benjamini-Hochberg, on the log10 scale (``log10_p``,
    ``log10_p_adjusted``, ``log10_threshold``: nothing underflows, nothing is rounded before it is
    compared; ``statistic``, ``p_adjusted`` and ``threshold`` are rounded copies for display). A feature
    with no value in the window (all missing) is not tested; one whose statistic cannot be computed
    (a constant reference for Wasserstein, NaN/inf results, any error) is ``unverifiable`` with a note,
    and the check goes on. With a calibrated profile (``drift.threshold_mode: calibrated``, the
    default) a feature's threshold is raised to the edge of its natural variation (see
    :mod:`.calibration`); ``calibration`` says how well that was known (:func:`calibration_note`). The
    window drifts when its :func:`drift_score` (drifted features' importance times their strength,
    capped at ``drift.max_strength``) reaches ``settings.drifted_share``, or the calibration windows'
    natural variation of that score if higher. Every statistic of the feature's kind is kept in
    ``values`` for the record, whichever decided.
    """
    n_ref = int(profile.get("rows") or 0)
    n_cur = int(window.get("rows") or 0)
    features: list[dict[str, Any]] = []
    for kind, section in ((methods.NUMERIC, "numeric"), (methods.CATEGORICAL, "categorical")):
        for col, ref in profile[section].items():
            cur = window[section].get(col)
            if cur is None:
                continue
            present_ref = n_ref - int(ref["missing"])
            present_cur = int(sum(cur["counts"].values()) if kind == methods.CATEGORICAL else sum(cur["counts"]))
            name, threshold = column_method(settings, col, kind, present_ref, present_cur)
            method = methods.get_method(name)
            entry: dict[str, Any] = {
                "feature": col, "kind": kind, "method": name, "kind_of_statistic": method.kind_of_statistic,
                "threshold": threshold,
                "missing_reference": round(ref["missing"] / n_ref, 6) if n_ref else 0.0,
                "missing_current": round(cur["missing"] / n_cur, 6) if n_cur else 0.0,
            }
            if present_cur == 0 or present_ref == 0:
                features.append({**entry, **_untested(ref), "note": "no values to compare"})
                continue
            try:
                stats_ = _numeric_statistics(ref, cur) if kind == methods.NUMERIC else _categorical_statistics(ref, cur)
                problem = _unverifiable(name, kind, ref, stats_)
            except Exception as exc:  # noqa: BLE001 (one feature's statistic never fails the check)
                log.warning("drift statistic of %s (%s) failed: %s", col, name, exc)
                stats_, problem = {}, f"its {name} statistic could not be computed ({type(exc).__name__}: {exc})"
            if problem:
                features.append({**entry, **_untested(ref), "unverifiable": True, "note": problem})
                continue
            raw = {k: float(v) for k, v in stats_.pop("values").items()}
            log10_p = stats_.pop("log10_p")
            values = {k: (round(v, 8) if math.isfinite(v) else None) for k, v in raw.items()}
            f = {**entry, "statistic": values[name], "values": values, "psi": values["psi"],
                 "_raw": raw[name], "log10_p": log10_p.get(name),
                 **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats_.items()}}
            features.append(f)
    tested_p = [i for i, f in enumerate(features) if f["kind_of_statistic"] == "p_value" and f.get("log10_p") is not None]
    adjusted = methods.adjusted_log10_p_values([features[i]["log10_p"] for i in tested_p])
    for f in features:
        f.setdefault("p_adjusted", None)
        f.setdefault("log10_p", None)
        f.setdefault("log10_p_adjusted", None)
    for i, log_adj in zip(tested_p, adjusted, strict=True):
        features[i]["log10_p_adjusted"] = log_adj
        features[i]["p_adjusted"] = display_p(10.0 ** log_adj)
        features[i]["statistic"] = display_p(10.0 ** features[i]["log10_p"])
    calibration = profile.get("calibration") if settings.threshold_mode == "calibrated" else None
    for f in features:
        _calibrated_threshold(f, calibration, settings)
        if f["statistic"] is None:
            f.update(drifted=False, strength=0.0)
        else:
            f["drifted"], f["strength"] = _verdict_of(f)
        for key in ("log10_p", "log10_p_adjusted", "log10_threshold"):
            if f.get(key) is not None:
                f[key] = round(f[key], 6)
    weights = _importance(features, importance if settings.importance_weighted else None)
    for f in features:
        f["importance"] = round(weights[f["feature"]], 6)
    drifted = {f["feature"]: f["drifted"] for f in features}
    share = methods.weighted_drift_share(drifted, weights) if features else 0.0
    unweighted = sum(drifted.values()) / len(drifted) if drifted else 0.0
    score = drift_score(features, settings.max_strength)
    score_threshold, natural = _score_threshold(features, calibration, settings)
    drivers = sorted((f for f in features if f["drifted"]), key=lambda f: -(f["importance"] * f["strength"]))
    for f in features:
        f.pop("_raw", None)
        f.pop("_threshold", None)
    return {
        "detected": bool(features) and score >= score_threshold,
        "drifted_features": [f["feature"] for f in drivers],
        "drift_score": round(score, 4),
        "score_threshold": round(score_threshold, 4),
        "calibrated_score_limit": None if natural is None else round(natural, 4),
        "max_strength": settings.max_strength,
        "drifted_share": round(share, 4),
        "unweighted_share": round(unweighted, 4),
        "share_threshold": settings.drifted_share,
        "importance_weighted": bool(settings.importance_weighted and importance),
        "threshold_mode": settings.threshold_mode,
        "calibration_windows": len((calibration or {}).get("windows") or []),
        "calibration": _verdict_calibration(features, profile.get("calibration"), settings),
        "unverifiable_features": [f["feature"] for f in features if f.get("unverifiable")],
        "fdr_q": settings.fdr_q,
        "max_psi": round(max((f["psi"] or 0.0 for f in features), default=0.0), 6),
        "reference_rows": n_ref,
        "current_rows": n_cur,
        "features": features,
    }


def display_p(p: float) -> float:
    """A p-value rounded for display: 8 decimals, or 4 significant digits below 1e-4 (never rounded to 0
    unless it underflowed; compare ``log10_p_adjusted``, not this)."""
    return round(p, 8) if p >= 1e-4 else float(f"{p:.4g}")


def _untested(ref: Mapping[str, Any]) -> dict[str, Any]:
    return {"statistic": None, "p_adjusted": None, "drifted": False, "psi": None, "effect": None, "values": {},
            "histogram": None, "reference_mean": ref.get("mean"), "current_mean": None, "unseen_categories": []}


def _unverifiable(name: str, kind: str, ref: Mapping[str, Any], stats_: Mapping[str, Any]) -> str | None:
    """Why the feature's statistic cannot be judged (None when it can)."""
    spread = ref.get("std_pop") if ref.get("std_pop") is not None else ref.get("std")
    scale = max(abs(ref.get("min") or 0.0), abs(ref.get("max") or 0.0), 1e-300)
    if name == "wasserstein" and kind == methods.NUMERIC and not (spread or 0.0) > 1e-12 * scale:
        return ("the reference is constant (standard deviation 0), so a Wasserstein distance in reference "
                "standard deviations has no scale; give the column another method (drift.columns) or drop it")
    value = stats_["values"].get(name)
    if name in stats_.get("log10_p", {}):
        value = stats_["log10_p"][name]
        if value is None or math.isnan(value) or value > 1e-9:
            return f"its {name} p-value is not a number ({value})"
        return None
    if value is None or not math.isfinite(float(value)):
        return f"its {name} statistic is {value}, not a finite number"
    return None


def _verdict_of(f: Mapping[str, Any]) -> tuple[bool, float]:
    """Drifted and strength of one tested feature, from its unrounded values (p-values on the log10 scale)."""
    if f["kind_of_statistic"] == "p_value":
        return _log_verdict(f["log10_p_adjusted"], f["log10_threshold"])
    return _verdict("distance", f["_raw"], f.get("_threshold", f["threshold"]))


def _log_verdict(log10_p: float, log10_threshold: float) -> tuple[bool, float]:
    """A p-value's verdict on the log10 scale: drifted below the threshold; strength ``log10 p / log10 threshold``."""
    scale = -log10_threshold if log10_threshold < 0 else 1.0  # fdr_q may be 1
    strength = -log10_p / scale if math.isfinite(log10_p) else 1e9
    return bool(log10_p < log10_threshold), round(max(strength, 0.0), 4)


def _verdict(kind_of_statistic: str, value: float, threshold: float) -> tuple[bool, float]:
    """Drifted, and the strength: how far past the threshold, as a multiple of it (a p-value on the log scale).

    Safe at every scale: a p-value of 0 or a threshold of 0 (an underflowed limit) are read on the log scale
    with a floor instead of failing (prefer :func:`_log_verdict` with the log10 values)."""
    if kind_of_statistic == "p_value":
        return _log_verdict(_safe_log10(value), _safe_log10(threshold))
    return bool(value >= threshold), round(value / threshold, 4) if threshold > 0 else 1e9


def _safe_log10(p: float) -> float:
    return math.log10(p) if p > 0 else -324.0


def _calibrated_threshold(f: dict[str, Any], calibration: Mapping[str, Any] | None, settings: DriftSection) -> None:
    """Raise the feature's threshold to the edge of its natural variation, when the profile was calibrated.

    The fixed threshold stays the smallest change that counts; the calibrated limit (see
    :mod:`.calibration`) is the change history calls unusual. The feature's threshold is the stricter of
    the two; both are kept in the result. P-value limits are kept as ``-log10`` scores and compared on the
    log10 scale (``log10_threshold``); ``threshold`` is their rounded display copy (0.0 below 1e-308)."""
    f["fixed_threshold"] = f["threshold"]
    f["calibrated_threshold"] = None
    f["threshold_source"] = "fixed"
    is_p = f["kind_of_statistic"] == "p_value"
    if is_p:
        f["log10_threshold"] = _safe_log10(f["threshold"])
    info = calibrated_limit(calibration, f["feature"], f["method"], settings.calibration_sd)
    f["calibration_status"] = info["status"]
    limit = info["limit"]
    if limit is None:
        return
    if is_p:
        stricter = -limit < f["log10_threshold"]
        f["calibrated_threshold"] = float(f"{10.0 ** -limit:.4g}")
        f["calibrated_log10_threshold"] = round(-limit, 6)
        if stricter:
            f["threshold"] = f["calibrated_threshold"]
            f["log10_threshold"] = -limit
            f["threshold_source"] = "calibrated"
        return
    f["calibrated_threshold"] = round(limit, 8)
    if limit > f["threshold"]:
        f["threshold"] = f["calibrated_threshold"]
        f["_threshold"] = limit  # compared unrounded
        f["threshold_source"] = "calibrated"


def calibrated_limit(calibration: Mapping[str, Any] | None, feature: str, statistic: str, k: float) -> dict[str, Any]:
    """The calibrated limit of one feature's statistic (a distance or rate as it is, a p-value as the ``-log10``
    score of its adjusted value) and the calibration's status for it.

    A profile calibrated by this version (``calibration["version"] >= 2``) holds the components of each
    limit (:func:`.stats.component_limit`); an older one per-window values only (p-values as ``-log10``
    scores capped at 300), judged as then: ``mean + k sd`` of at least six windows (:func:`.stats.natural_limit`).
    """
    if not calibration:
        return {"limit": None, "status": "uncalibrated"}
    if int(calibration.get("version") or 1) >= 2:
        entry = ((calibration.get("limits") or {}).get(feature) or {}).get(statistic)
        if not entry:
            return {"limit": None, "status": "uncalibrated"}
        return {"limit": component_limit(entry, k), "status": entry.get("status", "weak")}
    series = ((calibration.get("features") or {}).get(feature) or {}).get(statistic)
    limit = natural_limit(series, k) if series else None
    return {"limit": limit, "status": "calibrated" if limit is not None else "uncalibrated"}


STATUS_ORDER = ("calibrated", "weak", "uncalibrated")


def _verdict_calibration(features: Sequence[Mapping[str, Any]], calibration: Mapping[str, Any] | None,
                         settings: DriftSection) -> dict[str, Any]:
    """How well the thresholds of this verdict were calibrated: the worst status of its tested features."""
    cal = calibration or {}
    summary = cal.get("summary") or {}
    base = {"windows": int(summary.get("windows", len(cal.get("windows") or []))),
            "sub_windows": int(summary.get("sub_windows") or 0),
            "method": summary.get("method") or ("per-window mean + k sd (profile before calibration version 2)"
                                                 if cal else "none")}
    if settings.threshold_mode == "fixed":
        return {"status": "uncalibrated", "mode": "fixed", **base,
                "note": "thresholds fixed by configuration (drift.threshold_mode: fixed)"}
    if not cal:
        return {"status": "uncalibrated", "mode": "calibrated", **base,
                "note": "the champion's profile holds no calibration, so fixed thresholds were used"}
    statuses = [f.get("calibration_status") or "uncalibrated" for f in features if f.get("statistic") is not None]
    status = max(statuses, key=STATUS_ORDER.index) if statuses else "uncalibrated"
    weak = sorted({f["feature"] for f in features if f.get("calibration_status") in ("weak", "uncalibrated")
                   and f.get("statistic") is not None})
    if status == "calibrated":
        note = f"thresholds calibrated on {base['windows']} windows of the check's size"
    elif status == "weak":
        note = (summary.get("note") or "thresholds estimated from fewer windows than needed") + (
            f" (weak for {', '.join(weak[:5])}{' and more' if len(weak) > 5 else ''})" if weak else "")
    else:
        note = summary.get("note") or "no calibration for these features: fixed thresholds"
    return {"status": status, "mode": "calibrated", **base, "note": note}


def calibration_note(verdict: Mapping[str, Any]) -> str | None:
    """A phrase for the run's reason when the verdict's thresholds were weakly calibrated or uncalibrated
    (None when calibrated, or fixed on purpose by ``drift.threshold_mode: fixed``)."""
    cal = verdict.get("calibration") or {}
    status = cal.get("status")
    if status in (None, "calibrated") or cal.get("mode") == "fixed":
        return None
    word = "weakly calibrated" if status == "weak" else "uncalibrated"
    return f"drift thresholds {word}: {cal.get('note') or 'see the calibration record'}"


def drift_score(features: Sequence[Mapping[str, Any]], max_strength: float) -> float:
    """The dataset's drift score: each drifted feature's importance times how far past its threshold it is
    (its strength, at most ``max_strength``). With every drifted feature just past its threshold this is the
    share of the importance they carry; a few important-enough features that moved far count as much as
    many that barely moved."""
    return float(sum(f["importance"] * min(f["strength"], max_strength) for f in features if f["drifted"]))


def _score_threshold(features: Sequence[Mapping[str, Any]], calibration: Mapping[str, Any] | None,
                     settings: DriftSection) -> tuple[float, float | None]:
    """The score a window must reach: ``drifted_share``, raised to the calibration windows' natural
    variation of the same score (each window judged with today's thresholds and importances; a feature's
    windows before its newest regime, see :mod:`.calibration`, do not count)."""
    windows = len((calibration or {}).get("windows") or [])
    if not windows:
        return settings.drifted_share, None
    series = (calibration or {}).get("features") or {}
    regimes = (calibration or {}).get("regime_start_window") or {}
    scores = []
    for i in range(windows):
        total = 0.0
        for f in features:
            if f["statistic"] is None or i < int(regimes.get(f["feature"]) or 0):
                continue
            value = (series.get(f["feature"], {}).get(f["method"]) or [None] * windows)[i]
            if value is None:
                continue
            if f["kind_of_statistic"] == "p_value":  # stored as -log10 of the adjusted p-value
                drifted, strength = _log_verdict(-float(value), f["log10_threshold"])
            else:
                drifted, strength = _verdict("distance", float(value), f.get("_threshold", f["threshold"]))
            if drifted:
                total += f["importance"] * min(strength, settings.max_strength)
        scores.append(total)
    natural = natural_limit(scores, settings.calibration_sd)
    return max(settings.drifted_share, natural or 0.0), natural


def _importance(features: list[dict[str, Any]], importance: Mapping[str, float] | None) -> dict[str, float]:
    """Importance shares of the tested features (summing to 1), equal when unknown or all zero."""
    names = [f["feature"] for f in features]
    if not names:
        return {}
    raw = {n: max(float((importance or {}).get(n, 0.0)), 0.0) for n in names}
    total = sum(raw.values())
    if not importance or total <= 0:
        return {n: 1.0 / len(names) for n in names}
    return {n: v / total for n, v in raw.items()}
