"""The current window's drift histograms, computed where the data lives: in PostgreSQL, or by DuckDB over files.

A drift check needs, per feature, the counts of the window's values in the bins of the
reference profile (see :mod:`.drift`), the missing count and a few summary statistics;
never the rows themselves. :func:`sql_histograms` (PostgreSQL) and :func:`file_histograms`
(DuckDB over Parquet or CSV files) ask the engine the same questions, written per engine by
:mod:`.sql_dialects`, and only the aggregates reach Python. :func:`parquet_histograms` is
DuckDB's by default; ``engine="arrow"`` reads Parquet in record batches with pyarrow instead.

All return the window summary of :func:`.drift.summarize` (``rows``, then per numeric feature
``edges``, ``counts``, ``missing``, ``mean``, ``std``, ``min``, ``max``, ``tail_means`` (means of
the two open outer bins), ``out_of_range`` (values outside the reference's ``bounds``, None
without them) and ``infinite`` (values that are +/-inf); per categorical feature ``counts`` and
``missing``) and agree with it exactly on the same data:

* bins are ``(-inf, e1], (e1, e2], ..., (ek, inf)``: a value equal to an edge goes to the
  lower bin; NULL and NaN are missing; infinities are binned but left out of the statistics;
* categories are labelled as :func:`.sources.coerce_types` labels them (``3`` for a float
  column of whole numbers, ``3.0`` when the column also holds ``3.5``; ``True`` for a
  boolean), and NULL or NaN is missing.

One scan for every numeric feature: per feature **one histogram aggregate** (see
:mod:`.sql_dialects`: in PostgreSQL ``width_bucket`` on the negated edges and an exact
``sum`` over ``numeric`` of ``10^(12 * bin)``, split into the bins in Python; in DuckDB
``histogram(x, boundaries)``) on the feature's edges merged with ``-inf``, the largest double
and the reference bounds, so that the same aggregate also gives the infinities and the values
out of range; then ``count``, ``avg`` and ``stddev_samp`` (one shared transition), ``min``,
``max`` and the two tail means. A second scan only for columns whose ``min``/``max`` show NaN
or infinities (their statistics without them). Categorical features: one ``GROUP BY GROUPING
SETS ((c1), (c2), ...)``. PostgreSQL runs the queries in one read-only REPEATABLE READ
transaction (one snapshot), in parallel, without JIT.

Measured on 1M rows x 20 numeric features (~100 bins each, 1606 bins) + 5 categorical, PostgreSQL
15 on the shared 2-core machine at load 3 to 6 (so all slow by ~2x; the ratios are what counts),
JIT off unless said:

==============================================================  ==========
``SELECT count(*)`` of the window                                 0.09-0.17 s
``count`` of the window's last column (every column decoded)      0.14-0.26 s
before (``count(*) FILTER (WHERE x <= e)`` per edge: 1,800 aggs)   45.2 s
now, numeric + categorical (:func:`sql_histograms`, exact)          6.9 s
  statistics only (count/avg/stddev/min/max: 100 aggregates)      0.8-1.3 s
  ... plus tail means, out-of-range ``FILTER`` (160 aggregates)   1.6-2.5 s
  ``width_bucket`` of every feature, summed (no histogram)        0.9-1.4 s
  histograms, ``numeric`` counter looked up in a ``numeric[]``    3.0-4.6 s
  ... counter from text, ``('1e' || 12 * bin)::numeric``          4.2-4.7 s
  ... counter from ``power(10^12, bin)``                            6.6 s
  lateral ``unnest`` of the bins, ``GROUP BY`` (feature, bin)     4.2-7.3 s
  ``GROUPING SETS`` on the 20 bin columns                           13.6 s
  categorical ``GROUPING SETS`` (5 columns)                       0.8-1.2 s
  JIT on: statistics 3.5 s (off 1.6 s), histograms 3.7 s (off 3.0 s): compiling costs more
``TABLESAMPLE SYSTEM`` of 100K rows, numeric + categorical         1.2 s (not run in parallel)
==============================================================  ==========

So an exact summary costs ~40-60 times a ``count(*)``, whatever the SQL (decoding 25 columns
alone costs 1.5-2.5 counts; PostgreSQL evaluates an aggregate per row, per feature), ~6.6 times
less than before. **Above** :data:`SAMPLE_ABOVE_ROWS` **rows** (the planner's estimate of the
window), a table's window is therefore read from a repeatable block sample
(``TABLESAMPLE SYSTEM (p) REPEATABLE (0)``, both queries the same blocks) of about
:data:`SAMPLE_ROWS` rows; the ratio falls as windows grow (the count grows with the window, the
sample does not). The summary then describes the sample (``rows`` is the rows sampled, so rates
and shares are consistent) and says so under ``sample``. What a sample cannot promise: a value
seen in fewer than about 1/p rows (a handful of infinities, a rare category, the extreme
``min``/``max``) may be absent from it. Query sources (``source.query``) and views are always exact.

10M rows x 25 (``benchmarks/sql_histograms.py --exact``; two runs, at load 2.2-3.7 and 4-7 on 2 cores):

=====================================  ======================  =======================================
PostgreSQL (2.4 GB table)              count(*) 0.90-2.26 s    push-down 1.61-2.16 s: **1.60x** and
                                                               1.82x (medians; 200K rows sampled; 300K
                                                               rows: 2.87x at load 5)
PostgreSQL exact, every row            56-58 s = 45-63x        (before this design: 143-152 s idle)
DuckDB on Parquet (1.3 GB)             one pass 3.0-5.1 s      push-down 1.9-2.7 s: 0.56-0.72x
                                                               (184K rows sampled)
DuckDB exact, every row                17.6-24.7 s = 5-6x
Python peak RSS                        454-469 MB (250 MB of it the imports; push-downs add < 25 MB)
=====================================  ======================  =======================================

Error of the 2% samples against the exact summaries, worst of the 20 numeric / 5 categorical
features (PostgreSQL; DuckDB alike): bin share 0.17 points, PSI(sample, exact) 0.0005, missing
rate 0.05 points, mean 0.005 std, std 0.25 %, tail means 0.04 std, out-of-range share 0.0015
points, category share 0.19 points, no category missed; ``min`` 9 % and ``max`` 32 % of the
range short on a long-tailed column (exponential), as any sample's extremes are.

100M rows (on paper: not built on this shared machine; a 24 GB table, more than its RAM): the
count and an exact summary grow with the rows (count ~10-25 s as the disk allows, exact ~10
min), the sampled summary does not (0.2 % of the blocks: ~6K block reads plus ~1.5 s of
aggregates), so ~0.1-0.4x a count; DuckDB decodes every sampled vector of the files,
~0.5x one pass.

DuckDB details (1M rows, 2 threads, load 4-6): one pass 0.5 s, exact :func:`file_histograms`
2.7 s (histograms ~1.1-2.1 s of it; tail means with ``CASE`` 0.5 s against 1.3 s with
``FILTER``; bins by a ``CASE`` binary-search tree 3.4 s), the pyarrow batch path 2.4 s with
twice the memory. A 128 MB DuckDB memory limit is too small for these queries (out of memory).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ

from ..connections import connect
from ..errors import DataValidationError
from ..sources import as_utc, window_clause
from .drift import numeric_histogram
from .sql_dialects import DUCKDB, POSTGRES, Dialect, NumericPlan, merged_plans, quote_ident, split_counts

log = logging.getLogger(__name__)

# One query evaluates at most this many aggregates: PostgreSQL limits a row (and so a
# partial aggregate's state tuple) to 1664 columns. Past it, numeric features take more scans.
MAX_AGGREGATES_PER_QUERY = 1000
AGGREGATES_PER_FEATURE = 8  # histogram, count, avg, stddev_samp, min, max, two tail means
# Windows above SAMPLE_ABOVE_ROWS rows (PostgreSQL: the planner's estimate; DuckDB: counted) are
# read from a block sample of about SAMPLE_ROWS rows (see the module docstring for its error);
# None: always exact.
SAMPLE_ABOVE_ROWS: int | None = 2_000_000
SAMPLE_ROWS = 200_000
SAMPLE_SEED = 0  # REPEATABLE: the same window of the same table samples the same blocks
PARQUET_ENGINE = "duckdb"  # parquet_histograms: "duckdb" (file_histograms) or "arrow" (pyarrow batches)


def _checked_edges(numeric: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    checked: dict[str, list[float]] = {}
    for col, edges in numeric.items():
        values = [float(e) for e in edges]
        if any(math.isnan(e) for e in values) or any(b < a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError(f"bin edges of {col!r} must be ascending numbers, got {values}")
        checked[col] = values
    return checked


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, float or Decimal
    except (TypeError, ValueError):
        return False


def _category_counts(raw: Mapping[Any, int]) -> dict[str, Any]:
    """Counts keyed by raw value -> counts keyed by the label coerce_types gives, and the missing count."""
    import pandas as pd

    missing = 0
    values: list[Any] = []
    counts: list[int] = []
    for value, count in raw.items():
        if _is_missing(value):
            missing += int(count)
        else:
            values.append(value)
            counts.append(int(count))
    labelled: dict[str, int] = {}
    if values:
        series = pd.Series(values)
        if pd.api.types.is_float_dtype(series) and (series % 1 == 0).all():
            series = series.astype("Int64")  # as sources.coerce_types: 3.0 is the category "3"
        for label, count in zip(series.astype("string").astype(str), counts, strict=True):
            labelled[label] = labelled.get(label, 0) + count
    ordered = dict(sorted(labelled.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"counts": ordered, "missing": missing}


def _numeric_entry(
    edges: list[float], counts: Sequence[int], missing: int, n: int, mean: Any, std: Any, lo: Any, hi: Any,
    tails: Sequence[Any] = (None, None), outside: Any = None, infinite: int = 0,
) -> dict[str, Any]:
    return {
        "tail_means": [None if t is None else float(t) for t in tails],
        "out_of_range": None if outside is None else int(outside),
        "infinite": int(infinite),
        "edges": list(edges),
        "counts": [int(c) for c in counts],
        "missing": int(missing),
        "mean": float(mean) if n and mean is not None else None,
        "std": float(std) if n > 1 and std is not None else None,
        "min": float(lo) if n and lo is not None else None,
        "max": float(hi) if n and hi is not None else None,
    }


# --------------------------------------------------------------------------- PostgreSQL


def _relation_types(cur: Any, relation: sql.Composable, needed: Sequence[str]) -> dict[str, int]:
    cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(relation))
    types = {d.name: d.type_code for d in cur.description}
    missing = [c for c in dict.fromkeys(needed) if c not in types]
    if missing:
        raise DataValidationError(
            f"the SQL source has no column(s) {missing} that the histograms need (available: {sorted(types)})"
        )
    return types


def _numeric_chunks(edges: Mapping[str, Sequence[float]]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for col in edges:
        if chunk and size + AGGREGATES_PER_FEATURE > MAX_AGGREGATES_PER_QUERY:
            yield chunk
            chunk, size = [], 0
        chunk.append(col)
        size += AGGREGATES_PER_FEATURE
    yield chunk


def _scan_numeric(
    execute: Callable[[str], list[tuple]],
    dialect: Dialect,
    source: str,
    where: str,
    plans: dict[str, NumericPlan],
    values: Mapping[str, str],
) -> tuple[int, dict[str, dict[str, Any]]]:
    """One scan per chunk of features (one for up to 125 features): the histograms on the merged edges, the
    statistics and the tail means; then a second scan only for the columns holding NaN or infinities.

    ``execute`` runs a query and returns its rows; ``values`` is each column read as a double."""
    rows = 0
    found: dict[str, tuple] = {}
    for chunk in _numeric_chunks(plans):
        select = ["count(*)"]
        for col in chunk:
            select += dialect.numeric_aggregates(values[col], plans[col])
        row = execute(f"SELECT {', '.join(select)} FROM {source} WHERE {where}")[0]
        rows = int(row[0])
        for i, col in enumerate(chunk):
            found[col] = row[1 + AGGREGATES_PER_FEATURE * i: 1 + AGGREGATES_PER_FEATURE * (i + 1)]

    # NaN and infinities reach min/max (NaN sorts above everything). Only then is a second,
    # exact pass needed for those columns' statistics: infinities have no mean.
    non_finite = [col for col, (_, n, _, _, lo, hi, _, _) in found.items()
                  if n and (math.isnan(hi) or math.isinf(hi) or math.isinf(lo))]
    exact: dict[str, tuple] = {}
    if non_finite:
        select = [agg for col in non_finite for agg in dialect.finite_aggregates(values[col])]
        row = execute(f"SELECT {', '.join(select)} FROM {source} WHERE {where}")[0]
        exact = {col: row[5 * i: 5 * i + 5] for i, col in enumerate(non_finite)}
        log.info("exact pass for %d numeric column(s) holding NaN or infinities: %s", len(non_finite), non_finite)

    result: dict[str, dict[str, Any]] = {}
    for col, (raw, n, mean, std, lo, hi, low_mean, high_mean) in found.items():
        plan = plans[col]
        counts, infinite, outside, binned = split_counts(plan, dialect.parse_histogram(raw, plan))
        if col in exact:
            n, mean, std, lo, hi = exact[col]
        result[col] = _numeric_entry(plan.edges, counts, rows - binned, int(n or 0), mean, std, lo, hi,
                                     (low_mean, high_mean), outside, infinite)
    return rows, result


def _scan_categorical(
    execute: Callable[[str], list[tuple]], dialect: Dialect, source: str, where: str, columns: list[str]
) -> tuple[int, dict[str, dict[str, Any]]]:
    """One ``GROUP BY GROUPING SETS ((c1), (c2), ...)``: one scan, a small hash table per column."""
    raw: dict[str, dict[Any, int]] = {c: {} for c in columns}
    width = len(columns)
    for row in execute(dialect.categorical_query(source, where, columns)):
        j = list(row[:width]).index(0)  # the one column this group is grouped by
        raw[columns[j]][row[width + j]] = int(row[-1])
    rows = sum(raw[columns[0]].values())
    return rows, {c: _category_counts(raw[c]) for c in columns}


# --------------------------------------------------------------------------- PostgreSQL


def _sample_clause(cur: Any, relation: sql.Composable, source: str, where: str, sample_above_rows: int | None,
                   sample_rows: int, window_rows: int | None) -> tuple[str, dict[str, Any] | None]:
    """``TABLESAMPLE SYSTEM (p) REPEATABLE (0)`` for a table whose window holds more than ``sample_above_rows``
    rows (``window_rows`` when the caller counted them, else the planner's estimate), so that about
    ``sample_rows`` rows are read; else nothing."""
    if sample_above_rows is None or not isinstance(relation, sql.Identifier):
        return "", None
    cur.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [source])
    kind = cur.fetchone()
    if not kind or kind[0] not in ("r", "m", "p"):  # TABLESAMPLE reads tables and materialized views, not views
        return "", None
    counted = window_rows is not None
    if window_rows is None:
        cur.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {source} WHERE {where}")
        plan = cur.fetchone()[0]
        window_rows = int((plan[0] if isinstance(plan, list) else plan)["Plan"]["Plan Rows"])
    if window_rows <= sample_above_rows:
        return "", None
    percent = max(min(100.0 * sample_rows / window_rows, 100.0), 1e-6)
    return (f" TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE ({SAMPLE_SEED})",
            {"method": "TABLESAMPLE SYSTEM", "percent": round(percent, 6), "window_rows": window_rows,
             "window_rows_from": "count" if counted else "planner estimate"})


def sql_histograms(
    dsn: str,
    relation: sql.Composable,
    timestamp: str,
    start: datetime | None,
    end: datetime | None,
    numeric: Mapping[str, Sequence[float]],
    categorical: Sequence[str],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    sample_above_rows: int | None | str = "default",
    sample_rows: int | None = None,
    window_rows: int | None = None,
) -> dict[str, Any]:
    """Histograms of the rows with ``start <= timestamp < end`` in ``relation``, computed by PostgreSQL.

    ``relation`` is a table identifier or a parenthesised query with an alias (as
    ``sources`` builds it); ``numeric`` maps each numeric column to its reference inner
    edges; ``start``/``end`` may be None for an open end (naive datetimes are UTC).
    Returns ``{"rows", "numeric": {col: {...}}, "categorical": {col: {...}}}`` in the
    shape of :func:`.drift.summarize`. Two scans of the window (numeric, categorical),
    plus one more only for numeric columns holding NaN or infinities.

    A table window of more than ``sample_above_rows`` rows (default :data:`SAMPLE_ABOVE_ROWS`;
    None: never; ``window_rows`` if the caller counted them, else the planner's estimate) is read
    from a repeatable block sample of about ``sample_rows`` rows (default :data:`SAMPLE_ROWS`):
    the summary then describes the sample (``rows`` is the rows sampled) and says so under
    ``sample``. A sample far smaller than asked (the estimate was wrong) is replaced by the exact
    answer. Query sources are always exact.
    """
    edges = _checked_edges(numeric)
    categories = list(dict.fromkeys(categorical))
    threshold = SAMPLE_ABOVE_ROWS if sample_above_rows == "default" else sample_above_rows
    began = time.perf_counter()
    # no bounds: every row with a timestamp, as in the Parquet files
    where_sql, params = window_clause(timestamp, start, end, unbounded="{} IS NOT NULL")
    sample: dict[str, Any] | None = None
    with connect(dsn) as conn:
        # Both queries see one snapshot, so their row counts agree even while rows arrive.
        conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        with conn.cursor() as cur:
            # JIT compiling hundreds of aggregates costs seconds and saves less (measured: module docstring).
            cur.execute("SET LOCAL jit = off")
            types = _relation_types(cur, relation, [timestamp, *edges, *categories])
            # Everything is bound into the text once (no parameters, so no %-escaping of the rest).
            where = cur.mogrify(where_sql.as_string(conn), params).decode()
            source = relation.as_string(conn)
            target = SAMPLE_ROWS if sample_rows is None else sample_rows
            tablesample, sample = _sample_clause(cur, relation, source, where, threshold, target, window_rows)

            def execute(query: str) -> list[tuple]:
                cur.execute(query)
                return cur.fetchall()

            rows = 0
            numeric_result: dict[str, dict[str, Any]] = {}
            try:
                if edges or not categories:
                    values = {c: POSTGRES.as_double(c, types[c]) for c in edges}
                    plans = merged_plans(edges, {c: v for c, v in (bounds or {}).items() if c in edges})
                    rows, numeric_result = _scan_numeric(execute, POSTGRES, source + tablesample, where, plans, values)
                    expected = sample["percent"] / 100 * sample["window_rows"] if sample else 0
                    if sample and rows < expected / 2:  # the window is much smaller than estimated: read it all
                        log.info("a %.3f%% sample held %d rows, not ~%d: the window is read whole",
                                 sample["percent"], rows, expected)
                        tablesample, sample = "", None
                        rows, numeric_result = _scan_numeric(execute, POSTGRES, source, where, plans, values)
                source += tablesample
            except (psycopg2.errors.InvalidTextRepresentation, psycopg2.errors.CannotCoerce) as exc:
                suspects = [c for c in edges if types[c] not in POSTGRES.NUMERIC_TYPES]
                raise DataValidationError(
                    f"numeric feature(s) {suspects} of the SQL source are not numbers "
                    f"({str(exc).strip().splitlines()[0]}); fix the source or list them under columns.categorical"
                ) from exc
            numeric_done = time.perf_counter()
            categorical_result: dict[str, dict[str, Any]] = {}
            if categories:
                cat_rows, categorical_result = _scan_categorical(execute, POSTGRES, source, where, categories)
                rows = rows if edges else cat_rows
    done = time.perf_counter()
    log.info(
        "histograms of %d rows, %d numeric and %d categorical column(s), in PostgreSQL for [%s, %s) "
        "in %.2fs (numeric %.2fs, categorical %.2fs)%s",
        rows, len(edges), len(categories), start, end, done - began, numeric_done - began, done - numeric_done,
        f", from a {sample['percent']:.3f}% block sample of ~{sample['window_rows']:,} rows" if sample else "",
    )  # fmt: skip
    result: dict[str, Any] = {"rows": rows, "numeric": numeric_result, "categorical": categorical_result}
    if sample:
        result["sample"] = sample
    return result


# --------------------------------------------------------------------------- Parquet


def _tail_means(sums: np.ndarray) -> tuple[float | None, float | None]:
    low_sum, low_n, high_sum, high_n = (float(v) for v in sums)
    return (low_sum / low_n if low_n else None, high_sum / high_n if high_n else None)


class _Moments:
    """Count, mean, sum of squared deviations, min and max of finite values, merged batch by batch (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, finite: np.ndarray) -> None:
        n_b = int(finite.size)
        if not n_b:
            return
        mean_b = float(finite.mean())
        m2_b = float(np.square(finite - mean_b).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.min = min(self.min, float(finite.min()))
        self.max = max(self.max, float(finite.max()))

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None


def _bound(value: datetime | None, ts_type: Any) -> Any:
    import pyarrow as pa

    if value is None:
        return None
    utc = as_utc(value).astimezone(timezone.utc)
    if getattr(ts_type, "tz", None) is None:
        utc = utc.replace(tzinfo=None)  # naive timestamps are UTC, as sources reads them
    return pa.scalar(utc, type=ts_type)


class _ParquetWindow:
    """``start <= timestamp < end`` on a Parquet timestamp (or date) column: as a dataset expression and as a mask."""

    def __init__(self, schema: Any, timestamp: str, start: datetime | None, end: datetime | None) -> None:
        import pyarrow as pa

        self.timestamp = timestamp
        self.type = schema.field(timestamp).type
        if pa.types.is_date(self.type):
            self.type = pa.timestamp("s")
        elif not pa.types.is_timestamp(self.type):
            raise DataValidationError(
                f"timestamp column {timestamp!r} has Parquet type {self.type}, expected a timestamp"
            )
        self.lo, self.hi = _bound(start, self.type), _bound(end, self.type)

    def expression(self) -> Any:
        """For pruning row groups on their statistics."""
        import pyarrow.dataset as ds

        field = ds.field(self.timestamp).cast(self.type)
        condition = field.is_valid()
        if self.lo is not None:
            condition &= field >= self.lo
        if self.hi is not None:
            condition &= field < self.hi
        return condition

    def mask(self, column: Any) -> Any:
        """For the rows of one batch: True in the window, False outside it or without a timestamp."""
        import pyarrow.compute as pc

        values = column.cast(self.type) if column.type != self.type else column
        inside = pc.is_valid(values)
        if self.lo is not None:
            inside = pc.and_kleene(inside, pc.greater_equal(values, self.lo))
        if self.hi is not None:
            inside = pc.and_kleene(inside, pc.less(values, self.hi))
        return inside


def _window_batches(dataset: Any, window: _ParquetWindow, columns: list[str], batch_rows: int) -> Iterator[Any]:
    """Record batches of the rows in ``window``, at most ``batch_rows`` rows decoded at a time.

    The dataset prunes each file's row groups on their statistics; the rows of the others
    stream through ``ParquetFile.iter_batches`` and are filtered batch by batch (a batch
    wholly inside the window is not copied). ``Dataset.to_batches`` would push the filter
    down as well, but it decodes ahead of a slower consumer without bound
    (apache/arrow#39808; measured here: 600 MB of queued batches for 5 million rows).
    """
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys([*columns, window.timestamp]))
    expression = window.expression()
    for fragment in dataset.get_fragments():
        row_groups = [rg.id for rg in fragment.subset(filter=expression).row_groups]
        if not row_groups:
            continue
        with pq.ParquetFile(fragment.path, buffer_size=1 << 20) as parquet_file:
            for batch in parquet_file.iter_batches(batch_size=batch_rows, row_groups=row_groups, columns=wanted):
                inside = window.mask(batch.column(window.timestamp))
                kept = inside.true_count
                if kept == batch.num_rows:
                    yield batch
                elif kept:
                    yield batch.filter(inside)


def parquet_histograms(
    paths: Sequence[str],
    timestamp: str,
    start: datetime | None,
    end: datetime | None,
    numeric: Mapping[str, Sequence[float]],
    categorical: Sequence[str],
    batch_rows: int = 250_000,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    """Histograms of the rows with ``start <= timestamp < end`` in Parquet ``paths``, read in batches.

    Row groups outside the window are skipped on their statistics; the others are decoded
    ``batch_rows`` rows at a time, each batch binned with :func:`.drift.numeric_histogram`
    and dropped, so memory is bounded by the batch size (and the files' page and
    dictionary sizes), not by the window. Same output as :func:`sql_histograms`.

    ``engine="duckdb"`` (the default, :data:`PARQUET_ENGINE`) hands the same question to DuckDB
    instead (:func:`file_histograms`); ``"arrow"`` is the batch path described above.
    """
    engine = engine or PARQUET_ENGINE
    if engine == "duckdb":
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, got {batch_rows}")
        return file_histograms("parquet", paths, timestamp, start, end, numeric, categorical, bounds)
    if engine != "arrow":
        raise ValueError(f"engine must be 'duckdb' or 'arrow', got {engine!r}")
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if batch_rows < 1:
        raise ValueError(f"batch_rows must be positive, got {batch_rows}")
    edges = _checked_edges(numeric)
    categories = list(dict.fromkeys(categorical))
    files = [str(p) for p in paths]
    absent = [f for f in files if not Path(f).exists()]
    if absent or not files:
        raise DataValidationError(f"Parquet file(s) not found: {absent or 'none given'}")
    began = time.perf_counter()
    dataset = ds.dataset(files, format="parquet")
    available = dataset.schema.names
    missing_cols = [c for c in dict.fromkeys([timestamp, *edges, *categories]) if c not in available]
    if missing_cols:
        raise DataValidationError(
            f"the Parquet files have no column(s) {missing_cols} that the histograms need "
            f"(available: {sorted(available)})"
        )
    columns = list(dict.fromkeys([*edges, *categories]))
    counts = {col: np.zeros(len(e) + 1, dtype=np.int64) for col, e in edges.items()}
    missing = dict.fromkeys(edges, 0)
    moments = {col: _Moments() for col in edges}
    tails = {col: np.zeros(4) for col in edges}  # sum and count of the finite values in the lowest and highest bin
    limits = dict(bounds or {})
    outside = {col: 0 for col in limits if col in edges}
    infinite = dict.fromkeys(edges, 0)
    raw: dict[str, dict[Any, int]] = {col: {} for col in categories}
    rows = 0
    window = _ParquetWindow(dataset.schema, timestamp, start, end)
    for batch in _window_batches(dataset, window, columns, batch_rows):
        rows += batch.num_rows
        for col, col_edges in edges.items():
            try:
                values = pc.cast(batch.column(col), pa.float64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataValidationError(
                    f"numeric feature {col!r} is not numbers in the Parquet files ({exc}); "
                    "fix the source or list the column under columns.categorical"
                ) from exc
            batch_counts, batch_missing = numeric_histogram(values, col_edges)
            counts[col] += np.asarray(batch_counts, dtype=np.int64)
            missing[col] += batch_missing
            finite = values[np.isfinite(values)]
            infinite[col] += int(np.count_nonzero(np.isinf(values)))
            moments[col].add(finite)
            if col_edges:
                low, high = finite[finite <= col_edges[0]], finite[finite > col_edges[-1]]
                tails[col] += (low.sum(), low.size, high.sum(), high.size)
            if col in outside:
                outside[col] += int(np.count_nonzero((values < limits[col][0]) | (values > limits[col][1])))
        for col in categories:
            column = batch.column(col)
            tallies = raw[col]
            tallies[None] = tallies.get(None, 0) + column.null_count
            value_counts = pc.value_counts(column.drop_null())
            for value, count in zip(
                value_counts.field("values").to_pylist(), value_counts.field("counts").to_pylist(), strict=True
            ):
                tallies[value] = tallies.get(value, 0) + count
    numeric_result = {
        col: _numeric_entry(edges[col], counts[col], missing[col], m.n, m.mean, m.std, m.min, m.max,
                            _tail_means(tails[col]), outside.get(col), infinite[col])
        for col, m in moments.items()
    }
    log.info(
        "histograms of %d rows, %d numeric and %d categorical column(s), from %d Parquet file(s) for [%s, %s) in %.2fs",
        rows, len(edges), len(categories), len(files), start, end, time.perf_counter() - began,
    )  # fmt: skip
    return {
        "rows": rows,
        "numeric": numeric_result,
        "categorical": {col: _category_counts(raw[col]) for col in categories},
    }


# --------------------------------------------------------------------------- DuckDB (Parquet, CSV)

DUCKDB_MEMORY_LIMIT = "256MB"  # DuckDB's own buffers (in this process); aggregates here are small


def file_histograms(
    kind: str,
    paths: Sequence[str],
    timestamp: str,
    start: datetime | None,
    end: datetime | None,
    numeric: Mapping[str, Sequence[float]],
    categorical: Sequence[str],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    sample_above_rows: int | None | str = "default",
    sample_rows: int | None = None,
    window_rows: int | None = None,
) -> dict[str, Any]:
    """Histograms of the rows with ``start <= timestamp < end`` in Parquet or CSV ``paths``, computed by DuckDB.

    The same queries as :func:`sql_histograms` (:mod:`.sql_dialects`), over ``read_parquet``
    or ``read_csv``: DuckDB reads only the columns asked for, skips Parquet row groups outside
    the window on their statistics and streams the rest, so memory is DuckDB's buffers
    (capped at :data:`DUCKDB_MEMORY_LIMIT`) and the aggregates, not the window.

    A window of more than ``sample_above_rows`` rows (default :data:`SAMPLE_ABOVE_ROWS`; None:
    never) is summarised from a repeatable sample of about ``sample_rows`` rows (default
    :data:`SAMPLE_ROWS`) in runs of 2,048 consecutive rows (``TABLESAMPLE ... (system, seed)``),
    said under ``sample`` as in :func:`sql_histograms`.
    """
    import duckdb

    edges = _checked_edges(numeric)
    categories = list(dict.fromkeys(categorical))
    files = [str(p) for p in paths]
    absent = [f for f in files if not Path(f).exists()]
    if absent or not files:
        raise DataValidationError(f"{kind.capitalize()} file(s) not found: {absent or 'none given'}")
    began = time.perf_counter()
    source = DUCKDB.relation(kind, files)
    from ..threads import budget

    # DuckDB's threads from the task's budget (include/retraining/threads.py), as training and scoring
    conn = duckdb.connect(":memory:", config={"threads": budget().threads, "memory_limit": DUCKDB_MEMORY_LIMIT})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        types = {name: str(kind_) for name, kind_, *_ in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        missing_cols = [c for c in dict.fromkeys([timestamp, *edges, *categories]) if c not in types]
        if missing_cols:
            raise DataValidationError(
                f"the {kind} files have no column(s) {missing_cols} that the histograms need "
                f"(available: {sorted(types)})"
            )
        where = DUCKDB.window(timestamp, types[timestamp], start, end)

        def execute(query: str) -> list[tuple]:
            try:
                return conn.execute(query).fetchall()
            except duckdb.OutOfMemoryException as exc:
                raise MemoryError(f"DuckDB needs more than DUCKDB_MEMORY_LIMIT={DUCKDB_MEMORY_LIMIT} for these "
                                  f"files (large row groups?): raise it in {__name__} ({exc})") from exc

        threshold = SAMPLE_ABOVE_ROWS if sample_above_rows == "default" else sample_above_rows
        sample: dict[str, Any] | None = None
        if threshold is not None:
            if window_rows is None:  # reads the timestamps only, or just the row groups' statistics
                window_rows = int(execute(f"SELECT count(*) FROM {source} WHERE {where}")[0][0])
            if window_rows > threshold:
                target = SAMPLE_ROWS if sample_rows is None else sample_rows
                percent = max(min(100.0 * target / window_rows, 100.0), 1e-6)
                source = (f"(SELECT * FROM {source} WHERE {where}) AS window_rows "
                          f"TABLESAMPLE {percent:.6f} PERCENT (system, {SAMPLE_SEED})")
                where = "TRUE"
                sample = {"method": "DuckDB TABLESAMPLE (system)", "percent": round(percent, 6),
                          "window_rows": window_rows, "window_rows_from": "count"}

        rows = 0
        numeric_result: dict[str, dict[str, Any]] = {}
        if edges or not categories:
            for col in edges:
                _check_numbers(conn, kind, source, where, col, types[col])
            values = {c: DUCKDB.as_double(c, types[c]) for c in edges}
            plans = merged_plans(edges, {c: v for c, v in (bounds or {}).items() if c in edges})
            rows, numeric_result = _scan_numeric(execute, DUCKDB, source, where, plans, values)
        categorical_result: dict[str, dict[str, Any]] = {}
        if categories:
            cat_rows, categorical_result = _scan_categorical(execute, DUCKDB, source, where, categories)
            rows = rows if edges else cat_rows
    finally:
        conn.close()
    log.info(
        "histograms of %d rows, %d numeric and %d categorical column(s), in DuckDB over %d %s file(s) "
        "for [%s, %s) in %.2fs%s", rows, len(edges), len(categories), len(files), kind, start, end,
        time.perf_counter() - began,
        f", from a {sample['percent']:.3f}% sample of {sample['window_rows']:,} rows" if sample else "",
    )  # fmt: skip
    result: dict[str, Any] = {"rows": rows, "numeric": numeric_result, "categorical": categorical_result}
    if sample:
        result["sample"] = sample
    return result


def _check_numbers(conn: Any, kind: str, source: str, where: str, column: str, type_name: str) -> None:
    """A numeric feature must be numbers; text that reads as numbers (CSV) is, as sources.coerce_types reads it."""
    if type_name.upper().startswith(DUCKDB.NUMBERS):
        return
    ident = quote_ident(column)
    bad = conn.execute(
        f"SELECT count(*), min({ident}) FROM {source} WHERE {where} AND {ident} IS NOT NULL "
        f"AND TRY_CAST({ident} AS DOUBLE) IS NULL"
    ).fetchone()
    if type_name.upper() != "VARCHAR" or bad[0]:
        example = f", e.g. {bad[1]!r}" if bad[0] else ""
        raise DataValidationError(
            f"numeric feature {column!r} is not numbers in the {kind} files ({type_name}, {bad[0]} value(s) "
            f"that are not numbers{example}); fix the source or list the column under columns.categorical"
        )
