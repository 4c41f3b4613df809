"""Reading production data: a SQL table or query (through an Airflow connection), or Parquet/CSV files.

Every read is bounded by a half-open time window ``[start, end)`` on the configured
timestamp column; windows come from the run's data interval, never from the clock.

Time zones: a timestamp without a time zone is taken as UTC everywhere. SQL sources are read
in a session whose ``TimeZone`` is UTC (see :func:`source_dsn`), so a ``timestamp without time
zone`` column is compared with the window's bounds as UTC whatever the server's, database's or
role's default time zone is; Parquet and CSV values without an offset are read as UTC too.
Store local times with their offset (``timestamptz``) or convert them to UTC.
Columns are checked against the configuration before anything is computed, so a
missing column or a text value in a numeric feature is reported by name.

Categorical features as codes (``load_window(..., categorical_codes=True)``, for the in-memory drift
check): a Parquet window's categorical columns come as ``pandas.Categorical`` whose categories are the
labels :func:`coerce_types` gives (strings read as Parquet dictionaries, numbers and booleans
dictionary-encoded in C++; no Python object per cell), so :func:`.monitoring.drift.summarize` counts them
with one ``bincount`` and gives the same summary; :func:`decode_categoricals` gives back exactly the usual
frame for scoring. Measured by ``benchmarks/window_codes.py`` (2026-12-01, 2 cores shared, load 1.6-2.2),
1,000,000 rows x 20 numeric + 5 categorical, four files, median of 3:

==============================  =========  =========  =====
Parquet                         strings    codes      ratio
==============================  =========  =========  =====
read                            0.93 s     0.71 s     1.31x
read + summarize                1.32 s     1.06 s     1.25x
+ decode the 200,000 scored     —          0.02 s     1.22x
categorical columns in memory   296 MB     4.8 MB     62x
==============================  =========  =========  =====

(The read alone in a warm process at load 1.1-1.5: 0.97 s against 0.51 s.) The rest of the read is the numeric columns,
the window's filter and sort and ``coerce_types``' copy, which both paths pay.

**Labels as of a time** (``columns.label_time``, the moment each row's label arrived): inside
``with labels_as_of(when):`` every read that counts, loads or snapshots labelled rows (:func:`count_window`,
:func:`latest_labelled_time`, :func:`load_window`, the training snapshot's collect) treats a label whose arrival
time is NULL or later than ``when`` as missing (NULL): in the SQL source by a parameterised ``CASE`` in the
query, in Parquet/CSV files through pandas and through DuckDB. So a replay or a backfill of an old window sees
the labels a run of that window could have seen, not the ones that arrived since. Without ``label_time``, or
with no as-of time in force, labels are read as they are now. A context variable rather than a parameter, so
the callers (the assessment, the post-deploy watch, point-in-time window choice) keep their signatures: the
pipeline wraps a task's work in ``labels_as_of(...)``; :func:`decision_time` is the moment a run of a window
would have decided, the as-of time of a replay.

A SQL source is read as before. A prototype fetching integer codes from PostgreSQL (``SELECT DISTINCT`` per
categorical, then each categorical joined to its numbered categories, one REPEATABLE READ snapshot; in the
benchmark) was slower on the same window: 15.8 s against 18.7 s to read (0.84x): psycopg2 builds a Python
object per cell whatever its type, the 5 text columns are a fifth of the cells, and PostgreSQL pays the
joins. A faster SQL read has to avoid the per-cell objects altogether (e.g. ``COPY`` into Arrow). CSV files
are read as before.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psycopg2 import sql

from .config import RetrainingConfig
from .connections import connect, resolve_dsn
from .errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowCounts:
    rows: int
    labelled: int


def as_utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


_LABELS_AS_OF: ContextVar[datetime | None] = ContextVar("retraining_labels_as_of", default=None)


@contextmanager
def labels_as_of(when: datetime | None) -> Iterator[datetime | None]:
    """Within the block, reads see only the labels that had arrived by ``when`` (with ``columns.label_time``
    configured; naive times are UTC). ``None`` lifts an outer as-of time: labels as they are now."""
    token = _LABELS_AS_OF.set(as_utc(when))
    try:
        yield as_utc(when)
    finally:
        _LABELS_AS_OF.reset(token)


def current_labels_as_of() -> datetime | None:
    """The as-of time in force (:func:`labels_as_of`), or None."""
    return _LABELS_AS_OF.get()


def label_cutoff(cfg: RetrainingConfig) -> datetime | None:
    """The as-of time that filters this source's labels: the one in force when ``columns.label_time`` is set."""
    return _LABELS_AS_OF.get() if cfg.columns.label_time else None


def _sql_label(cfg: RetrainingConfig, when: datetime | None) -> tuple[sql.Composable, list]:
    """The label column as known at ``when`` (all of it when None), with its parameters."""
    label = sql.Identifier(cfg.columns.label)
    if when is None:
        return label, []
    return (sql.SQL("CASE WHEN {lt} IS NOT NULL AND {lt} <= %s THEN {label} END").format(
        lt=sql.Identifier(cfg.columns.label_time or ""), label=label), [when])


def mask_labels(cfg: RetrainingConfig, frame: pd.DataFrame, when: datetime | None = None) -> pd.DataFrame:
    """``frame`` with the labels that had not arrived by ``when`` (default: the as-of time in force) set missing.

    Needs the ``columns.label_time`` column in ``frame`` when there is a time to filter by; a frame without
    label_time configured, or without a time, is returned as it is."""
    import pandas as pd

    when = as_utc(when) if when is not None else label_cutoff(cfg)
    if when is None or not cfg.columns.label_time:
        return frame
    lt = cfg.columns.label_time
    if lt not in frame.columns:
        raise DataValidationError(f"columns.label_time '{lt}' is not in the rows read ({sorted(frame.columns)}): "
                                  "the labels cannot be taken as of a time without it")
    arrived = pd.to_datetime(frame[lt], utc=True)
    known = (arrived.notna() & (arrived <= pd.Timestamp(when))).to_numpy()
    label = cfg.columns.label
    if known.all():
        return frame
    frame = frame.copy()
    frame[label] = frame[label].where(known)  # as a file with NULL labels reads (integers become floats)
    return frame


def source_relation(cfg: RetrainingConfig) -> sql.Composable:
    src = cfg.source
    if src.table:
        return sql.Identifier(*src.table.split("."))
    return sql.SQL("({}) AS src").format(sql.SQL(src.query or ""))


def _describe(cfg: RetrainingConfig) -> str:
    src = cfg.source
    if src.kind == "sql":
        return f"table {src.table}" if src.table else "the configured SQL query"
    return f"{src.kind} files at {src.path}"


def required_columns(cfg: RetrainingConfig) -> list[str]:
    cols = [cfg.columns.timestamp, cfg.columns.label, *cfg.columns.features]
    if cfg.columns.id:
        cols.append(cfg.columns.id)
    return cols


def _check_present(cfg: RetrainingConfig, available: list[str]) -> None:
    missing = [c for c in required_columns(cfg) if c not in available]
    if missing:
        raise DataValidationError(
            f"{_describe(cfg)} has no column(s) {missing} that the model configuration expects "
            f"(available: {sorted(available)}); fix columns.* in the config or the source"
        )
    if label_cutoff(cfg) is not None and cfg.columns.label_time not in available:
        raise DataValidationError(
            f"{_describe(cfg)} has no column '{cfg.columns.label_time}' (columns.label_time, when each label "
            f"arrived; available: {sorted(available)}): fix columns.label_time or remove it from the config"
        )


def _with_label_time(cfg: RetrainingConfig, columns: list[str]) -> list[str]:
    """``columns`` plus the label-arrival time when the labels are read as of a time."""
    lt = cfg.columns.label_time
    return [*columns, lt] if label_cutoff(cfg) is not None and lt and lt not in columns else columns


UTC_SESSION = "-c TimeZone=UTC"


def source_dsn(cfg: RetrainingConfig) -> str:
    """The source connection's DSN with the session time zone set to UTC.

    PostgreSQL compares a ``timestamp without time zone`` column with a ``timestamptz`` bound in the
    session's time zone: with a New York session the window [18:00, 00:00) UTC would read the rows
    stamped 13:00-19:00. Python reads those values as UTC, so the session must too. The setting is
    appended to the connection's own ``options`` (the last ``-c`` wins), and so holds for every query
    made with this DSN, including the drift summary computed inside PostgreSQL."""
    from psycopg2.extensions import make_dsn, parse_dsn

    params = parse_dsn(resolve_dsn(cfg.source.conn_id or ""))
    params["options"] = f"{params.get('options', '')} {UTC_SESSION}".strip()
    return make_dsn(**params)


def _sql_columns(cfg: RetrainingConfig, dsn: str) -> list[str]:
    query = sql.SQL("SELECT * FROM {} LIMIT 0").format(source_relation(cfg))
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query)
        return [d.name for d in cur.description]


def window_clause(timestamp: str, start: datetime | None, end: datetime | None,
                  unbounded: str = "TRUE") -> tuple[sql.Composable, list]:
    """``start <= ts AND ts < end`` with its parameters (naive bounds are UTC); without bounds,
    ``unbounded`` (``TRUE``: every row; ``{} IS NOT NULL``: every row with a timestamp)."""
    ts = sql.Identifier(timestamp)
    parts: list[sql.Composable] = []
    params: list = []
    if start is not None:
        parts.append(sql.SQL("{} >= %s").format(ts))
        params.append(as_utc(start))
    if end is not None:
        parts.append(sql.SQL("{} < %s").format(ts))
        params.append(as_utc(end))
    if not parts:
        return sql.SQL(unbounded).format(ts), params
    return sql.SQL(" AND ").join(parts), params


def files(cfg: RetrainingConfig) -> list[str]:
    """The source's data files (Parquet or CSV): a folder's files, a glob's matches, or the path itself."""
    path = cfg.source.path or ""
    if Path(path).is_dir():
        suffix = ".parquet" if cfg.source.kind == "parquet" else ".csv"
        return sorted(str(p) for p in Path(path).rglob(f"*{suffix}"))
    matches = sorted(glob.glob(path))
    return matches or [path]


def _read_files(cfg: RetrainingConfig, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for file in files(cfg):
        if not Path(file).exists():
            raise DataValidationError(f"data file not found: {file} (source.path in the model configuration)")
        if cfg.source.kind == "parquet":
            frames.append(pd.read_parquet(file))
        else:
            frames.append(pd.read_csv(file))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    _check_present(cfg, list(frame.columns))
    absent = [c for c in columns or [] if c not in frame.columns]
    if absent:
        raise DataValidationError(f"{_describe(cfg)} has no column(s) {absent} (available: {sorted(frame.columns)})")
    ts = cfg.columns.timestamp
    frame[ts] = pd.to_datetime(frame[ts], utc=True)
    return frame[columns] if columns else frame


def _in_window(frame: pd.DataFrame, column: str, start: datetime | None, end: datetime | None) -> pd.Series:
    mask = frame[column].notna()
    if start is not None:
        mask &= frame[column] >= as_utc(start)
    if end is not None:
        mask &= frame[column] < as_utc(end)
    return mask


def count_window(cfg: RetrainingConfig, start: datetime | None, end: datetime | None) -> WindowCounts:
    """Rows and labelled rows in the window: what the sensor waits on. Cheap: counts only."""
    if cfg.source.kind == "sql":
        dsn = source_dsn(cfg)
        _check_present(cfg, _sql_columns(cfg, dsn))
        where, params = window_clause(cfg.columns.timestamp, start, end)
        label, label_params = _sql_label(cfg, label_cutoff(cfg))
        query = sql.SQL("SELECT count(*), count({label}) FROM {rel} WHERE {where}").format(
            label=label, rel=source_relation(cfg), where=where
        )
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, [*label_params, *params])
            rows, labelled = cur.fetchone()
        return WindowCounts(int(rows), int(labelled))
    frame = _read_files(cfg, _with_label_time(cfg, [cfg.columns.timestamp, cfg.columns.label]))
    window = mask_labels(cfg, frame[_in_window(frame, cfg.columns.timestamp, start, end)])
    return WindowCounts(len(window), int(window[cfg.columns.label].notna().sum()))


def decision_time(cfg: RetrainingConfig, start: datetime, end: datetime) -> datetime:
    """The moment a run of the window ``[start, end)`` would have decided: the sensor waits from the window's end
    until ``window.min_labelled_rows`` of its labels have arrived, at most ``window.label_wait_hours``.

    So: the arrival time of the window's ``min_labelled_rows``-th label (by ``columns.label_time``), not before
    ``end``, and ``end + label_wait_hours`` when fewer arrive by then (or without ``columns.label_time``). The
    as-of time of a replay or backfill; it ignores the sensor's poke interval and an early decision before the
    labels (``performance.act_before_labels``), which can only make a live run decide earlier."""
    import pandas as pd

    deadline = as_utc(end) + timedelta(hours=cfg.window.label_wait_hours)
    lt, k = cfg.columns.label_time, cfg.window.min_labelled_rows
    if not lt:
        return deadline
    found: object = None
    if cfg.source.kind == "sql":
        dsn = source_dsn(cfg)
        available = _sql_columns(cfg, dsn)
        with labels_as_of(end):  # label_time must be there
            _check_present(cfg, available)
        where, params = window_clause(cfg.columns.timestamp, start, end)
        query = sql.SQL("SELECT {lt} FROM {rel} WHERE {where} AND {label} IS NOT NULL AND {lt} IS NOT NULL "
                        "ORDER BY {lt} OFFSET %s LIMIT 1").format(
            lt=sql.Identifier(lt), rel=source_relation(cfg), where=where, label=sql.Identifier(cfg.columns.label))
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, [*params, k - 1])
            row = cur.fetchone()
            found = row[0] if row else None
    else:
        with labels_as_of(end):
            frame = _read_files(cfg, _with_label_time(cfg, [cfg.columns.timestamp, cfg.columns.label]))
        window = frame[_in_window(frame, cfg.columns.timestamp, start, end) & frame[cfg.columns.label].notna()]
        arrived = pd.to_datetime(window[lt], utc=True).dropna().sort_values()
        found = arrived.iloc[k - 1] if len(arrived) >= k else None
    if found is None:
        return deadline
    arrived_at = as_utc(pd.Timestamp(found).to_pydatetime())
    return min(max(arrived_at, as_utc(end)), deadline)


def latest_labelled_time(cfg: RetrainingConfig, before: datetime) -> datetime | None:
    """The timestamp of the newest labelled row before ``before`` (None when there is none)."""
    import pandas as pd

    if cfg.source.kind == "sql":
        dsn = source_dsn(cfg)
        _check_present(cfg, _sql_columns(cfg, dsn))
        where, params = window_clause(cfg.columns.timestamp, None, before)
        label, label_params = _sql_label(cfg, label_cutoff(cfg))
        query = sql.SQL("SELECT max({ts}) FROM {rel} WHERE {where} AND {label} IS NOT NULL").format(
            ts=sql.Identifier(cfg.columns.timestamp), rel=source_relation(cfg), where=where, label=label)
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, [*params, *label_params])
            found = cur.fetchone()[0]
    else:
        frame = mask_labels(cfg, _read_files(cfg, _with_label_time(cfg, [cfg.columns.timestamp, cfg.columns.label])))
        frame = frame[_in_window(frame, cfg.columns.timestamp, None, before) & frame[cfg.columns.label].notna()]
        found = frame[cfg.columns.timestamp].max() if len(frame) else None
    if found is None or (not isinstance(found, datetime) and pd.isna(found)):
        return None
    return as_utc(pd.Timestamp(found).to_pydatetime())


def load_window(
    cfg: RetrainingConfig,
    start: datetime | None,
    end: datetime | None,
    labelled_only: bool = False,
    newest: int | None = None,
    categorical_codes: bool = False,
    labels_after: datetime | None = None,
) -> pd.DataFrame:
    """The configured columns for rows with ``start <= timestamp < end``, ordered by time, validated.

    Labels are those known at the as-of time in force (:func:`labels_as_of`). ``labels_after`` (with
    ``columns.label_time``) keeps only the rows whose label arrived after that time: the late labels a training
    snapshot has not seen yet.

    ``newest`` keeps only that many of the most recent rows (read as such from SQL).
    ``categorical_codes``: the categorical features of a Parquet source come as ``pandas.Categorical``
    (integer codes into the labels :func:`coerce_types` gives, see :func:`_coded_categoricals`), which
    :func:`.monitoring.drift.summarize` counts on the codes; :func:`decode_categoricals` turns the frame
    back into this function's usual output for scoring. Other sources (SQL, CSV) and columns whose type
    differs between files come as usual (object columns of strings)."""
    import pandas as pd

    columns = required_columns(cfg)
    codes = categorical_codes and cfg.source.kind == "parquet"
    coded: list[str] = []  # the categorical columns read as codes
    when = label_cutoff(cfg)
    lt = cfg.columns.label_time
    if labels_after is not None and not lt:
        raise ValueError("labels_after needs columns.label_time (when each label arrived) in the configuration")
    labels_after = as_utc(labels_after)
    if cfg.source.kind == "sql":
        dsn = source_dsn(cfg)
        available = _sql_columns(cfg, dsn)
        _check_present(cfg, available)
        if labels_after is not None and lt not in available:
            raise DataValidationError(f"{_describe(cfg)} has no column '{lt}' (columns.label_time)")
        where, params = window_clause(cfg.columns.timestamp, start, end)
        label, label_params = _sql_label(cfg, when)
        if labelled_only:
            where = sql.SQL("{} AND {} IS NOT NULL").format(where, label)
            params = [*params, *label_params]
        if labels_after is not None:
            where = sql.SQL("{} AND {} > %s").format(where, sql.Identifier(lt or ""))
            params = [*params, labels_after]
        selected = [sql.SQL("{} AS {}").format(label, sql.Identifier(c)) if c == cfg.columns.label and when
                    else sql.Identifier(c) for c in columns]
        query = sql.SQL("SELECT {cols} FROM {rel} WHERE {where} ORDER BY {ts}{limit}").format(
            cols=sql.SQL(", ").join(selected),
            rel=source_relation(cfg),
            where=where,
            ts=sql.Identifier(cfg.columns.timestamp),
            limit=sql.SQL(" DESC LIMIT {}").format(sql.Literal(int(newest))) if newest else sql.SQL(""),
        )
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, [*(label_params if when else []), *params])
            frame = pd.DataFrame(cur.fetchall(), columns=columns)
        frame[cfg.columns.timestamp] = pd.to_datetime(frame[cfg.columns.timestamp], utc=True)
        if newest:
            frame = frame.iloc[::-1].reset_index(drop=True)
    elif cfg.source.kind == "parquet" and newest:
        frame, coded = _newest_from_parquet(cfg, columns, start, end, labelled_only, int(newest), codes, labels_after)
    else:
        read = _with_label_time(cfg, columns)
        if labels_after is not None and lt not in read:
            read = [*read, lt or ""]
        frame, coded = _read_parquet_coded(cfg, read) if codes else (_read_files(cfg, read), [])
        frame = mask_labels(cfg, frame[_in_window(frame, cfg.columns.timestamp, start, end)])
        if labels_after is not None:
            arrived = pd.to_datetime(frame[lt], utc=True)
            frame = frame[(arrived > pd.Timestamp(labels_after)).to_numpy()]
        frame = frame[columns]
        if labelled_only:
            frame = frame[frame[cfg.columns.label].notna()]
        frame = frame.sort_values(cfg.columns.timestamp, kind="stable").reset_index(drop=True)
        if newest:
            frame = frame.tail(newest).reset_index(drop=True)
    log.info("read %d rows from %s for window [%s, %s)", len(frame), _describe(cfg), start, end)
    return coerce_types(cfg, frame, coded)


def _newest_from_parquet(cfg: RetrainingConfig, columns: list[str], start: datetime | None, end: datetime | None,
                         labelled_only: bool, newest: int, codes: bool = False,
                         labels_after: datetime | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The ``newest`` rows of the window in the Parquet files, read by DuckDB: memory holds those rows, not the window.

    The same rows and order as the pandas path (every file read, filtered, stably sorted by time,
    the tail kept): ties in time are broken by file (in :func:`files` order) and row within it.
    With ``codes``, the categorical columns of :func:`_codable` types come as ``Categorical`` of their values
    (dictionary-encoded in C++), listed in the second element.
    """
    import duckdb
    import pandas as pd

    from .monitoring.sql_dialects import DUCKDB, quote_ident, quote_text

    paths = files(cfg)
    for file in paths:
        if not Path(file).exists():
            raise DataValidationError(f"data file not found: {file} (source.path in the model configuration)")
    relation = ("read_parquet([" + ", ".join(quote_text(p) for p in paths) + "], union_by_name = true, "
                "filename = true, file_row_number = true)")
    ts = cfg.columns.timestamp
    from .threads import budget

    conn = duckdb.connect(":memory:", config={"threads": budget(cfg.training.threads).threads,
                                              "memory_limit": "512MB"})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        types = {name: str(kind) for name, kind, *_ in conn.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        _check_present(cfg, [c for c in types if c not in ("filename", "file_row_number")])
        where = DUCKDB.window(ts, types[ts], start, end)
        label, lt, when = cfg.columns.label, cfg.columns.label_time, label_cutoff(cfg)
        if (when is not None or labels_after is not None) and lt not in types:
            raise DataValidationError(f"{_describe(cfg)} has no column '{lt}' (columns.label_time)")
        label_value = quote_ident(label) if when is None else DUCKDB.label_as_of(label, lt or "", types[lt or ""], when)
        if labelled_only:
            where += f" AND ({label_value}) IS NOT NULL"
        if labels_after is not None:
            where += f" AND {DUCKDB.arrived_after(lt or '', types[lt or ''], labels_after)}"
        selected = [f"{label_value} AS {quote_ident(c)}" if c == label and when is not None else quote_ident(c)
                    for c in columns]
        # files() is sorted, and DuckDB orders text by code point as Python does
        table = conn.sql(
            f"SELECT {', '.join(selected)} FROM {relation} WHERE {where} "
            f"ORDER BY {quote_ident(ts)} DESC, filename DESC, file_row_number DESC LIMIT {newest}"
        ).to_arrow_table()
    finally:
        conn.close()
    coded = [c for c in cfg.columns.categorical if c in columns and _codable(table.schema.field(c).type)] if codes else []
    frame = table.drop_columns(coded).to_pandas()
    for col in coded:
        frame[col] = _arrow_categorical(table[col])
    frame = frame[columns].iloc[::-1].reset_index(drop=True)
    frame[ts] = pd.to_datetime(frame[ts], utc=True)
    return frame, coded


def _codable(kind: object) -> bool:
    """Arrow value types whose categorical columns come as codes: strings, integers, floats, booleans (those
    whose labels are tested equal to :func:`coerce_types`'), plain or dictionary-encoded."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type  # type: ignore[attr-defined]
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
                or pa.types.is_floating(kind) or pa.types.is_boolean(kind))


def _arrow_categorical(column: object) -> pd.Categorical:
    """An Arrow column as a ``pandas.Categorical`` of its own values (not yet labelled), built on codes:
    dictionary-encoded in C++ when it is not already, one dictionary for all chunks; null and NaN are
    missing (code -1), as :func:`coerce_types` makes them."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    if not pa.types.is_dictionary(chunked.type):
        chunked = pc.dictionary_encode(chunked)
    chunked = pa.table({"c": chunked}).unify_dictionaries()["c"]
    chunks = chunked.chunks
    if not chunks:
        empty = pa.array([], type=chunked.type.value_type).to_pandas()
        return pd.Categorical.from_codes(np.empty(0, dtype=np.int32), pd.Index(empty.to_numpy(), dtype=empty.dtype))
    dictionary = chunks[0].dictionary
    codes = np.concatenate([pc.fill_null(ch.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
                            for ch in chunks])
    values = dictionary.to_pandas()
    missing = values.isna().to_numpy()
    if missing.any():  # NaN in a float dictionary: missing, as in the object column
        keep = np.flatnonzero(~missing)
        remap = np.full(len(values) + 1, -1, dtype=np.int32)
        remap[keep] = np.arange(keep.size, dtype=np.int32)
        codes = remap[codes]  # -1 reads remap[-1], which is -1
        values = values.iloc[keep]
    return pd.Categorical.from_codes(codes, pd.Index(values.to_numpy(), dtype=values.dtype))


def _read_parquet_coded(cfg: RetrainingConfig, columns: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """:func:`_read_files` for Parquet, with each categorical feature as a ``pandas.Categorical`` of its values
    (strings read from Parquet as dictionaries, other types dictionary-encoded in C++): no Python object per cell.

    A categorical column takes this path when every file has it with one Arrow type among :func:`_codable`'s;
    otherwise it is read as :func:`_read_files` reads it (pandas' concatenation decides its type there).
    The files' categories are united on codes (``union_categoricals``). Returns the frame and the columns read
    as codes."""
    import pandas as pd
    import pyarrow.parquet as pq
    from pandas.api.types import union_categoricals

    paths = files(cfg)
    for file in paths:
        if not Path(file).exists():
            raise DataValidationError(f"data file not found: {file} (source.path in the model configuration)")
    schemas = [pq.read_schema(file) for file in paths]
    available = sorted({name for schema in schemas for name in schema.names})
    _check_present(cfg, available)

    def value_type(schema: object, col: str) -> object:
        kind = schema.field(col).type  # type: ignore[attr-defined]
        return kind.value_type if hasattr(kind, "value_type") else kind

    coded = [c for c in cfg.columns.categorical
             if schemas and all(c in schema.names for schema in schemas)
             and _codable(schemas[0].field(c).type)
             and len({str(value_type(schema, c)) for schema in schemas}) == 1]
    plain = [c for c in columns if c not in coded]
    frames, parts = [], {c: [] for c in coded}
    for file, schema in zip(paths, schemas, strict=True):
        frames.append(pd.read_parquet(file, columns=[c for c in plain if c in schema.names]))
        if coded:
            strings = [c for c in coded if not _codable_numbers(schema.field(c).type)]
            table = pq.read_table(file, columns=coded, read_dictionary=strings)
            for col in coded:
                parts[col].append(_arrow_categorical(table[col]))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=plain)
    for col in coded:
        frame[col] = union_categoricals(parts[col]) if len(parts[col]) > 1 else parts[col][0]
    ts = cfg.columns.timestamp
    frame[ts] = pd.to_datetime(frame[ts], utc=True)
    return frame[columns], coded


def _codable_numbers(kind: object) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type  # type: ignore[attr-defined]
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind))


def category_labels(values: pd.Series) -> pd.Series:
    """A categorical column's values as the strings drift counts and models see: whole-number floats as
    integers (``3.0`` and ``3`` are one category, with or without NULLs in the window), other values as
    ``str`` gives them, missing (None, NaN, NULL) as NaN. An object column of strings."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.astype("string").astype(object).where(values.notna(), np.nan)


def _coded_categoricals(values: pd.Series) -> pd.Categorical:
    """A ``Categorical`` of raw values relabelled as :func:`category_labels` labels them, on codes: the labels
    of the categories that occur (the whole-number rule looks at those, as at the window's values), categories
    with one label merged, a category labelled missing made code -1."""
    import pandas as pd

    cat = values.array
    codes = np.asarray(cat.codes)
    used = np.bincount(codes + 1, minlength=len(cat.categories) + 1)[1:] > 0
    labels = category_labels(pd.Series(cat.categories[used]))
    position, unique = pd.factorize(labels.to_numpy(dtype=object), use_na_sentinel=True)
    remap = np.full(len(cat.categories) + 1, -1, dtype=np.int32)
    remap[np.flatnonzero(used)] = position
    return pd.Categorical.from_codes(remap[codes], pd.Index(unique, dtype=object))


def decode_categoricals(cfg: RetrainingConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """A frame of ``load_window(..., categorical_codes=True)`` as ``load_window`` gives it without: each
    categorical feature held as codes becomes the object column of strings (NaN missing), by one ``take``."""
    import pandas as pd

    out = frame.copy()
    for col in cfg.columns.categorical:
        if col in out and isinstance(out[col].dtype, pd.CategoricalDtype):
            cat = out[col].array
            table = np.append(np.asarray(cat.categories, dtype=object), np.nan)
            out[col] = table.take(np.asarray(cat.codes, dtype=np.intp))  # code -1 takes the last: NaN
    return out


def coerce_types(cfg: RetrainingConfig, frame: pd.DataFrame, coded: Collection[str] = ()) -> pd.DataFrame:
    """Numeric features as floats, categoricals as strings (:func:`category_labels`); a non-numeric value is an
    error naming it. The ``coded`` categorical features (``Categorical`` columns of raw values, as
    ``load_window(..., categorical_codes=True)`` reads them) stay ``Categorical``, their categories labelled
    the same way (:func:`_coded_categoricals`)."""
    import pandas as pd

    frame = frame.copy()
    for col in cfg.columns.numeric:
        values = frame[col]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            bad = values[values.notna() & converted.isna()]
            if len(bad):
                examples = sorted({str(v) for v in bad.head(20)})[:3]
                raise DataValidationError(
                    f"numeric feature '{col}' has {len(bad)} non-numeric value(s), e.g. {examples}; "
                    "fix the source or list the column under columns.categorical"
                )
            frame[col] = converted.astype("float64")
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            frame[col] = values.astype("float64")
        else:
            raise DataValidationError(f"numeric feature '{col}' has type {values.dtype}, expected numbers")
    for col in cfg.columns.categorical:
        values = frame[col]
        if col in coded:
            frame[col] = _coded_categoricals(values)
        else:
            frame[col] = category_labels(values)
    return frame


def source_engine(cfg: RetrainingConfig) -> str:
    """The SQL engine that summarises this source's windows (see :mod:`.monitoring.sql_dialects`).

    Parquet and CSV files: ``duckdb``. A SQL source: from its Airflow connection's type
    (``postgres``, the default when the connection is not an Airflow one, e.g. the embedded
    server); a connection of another type is an error naming it, before any query runs.
    """
    from .connections import _airflow_connection
    from .monitoring.sql_dialects import dialect_for

    if cfg.source.kind != "sql":
        return dialect_for(cfg.source.kind).name
    conn = _airflow_connection(cfg.source.conn_id or "")
    return dialect_for("sql", getattr(conn, "conn_type", None) or "postgres").name


def window_summary(
    cfg: RetrainingConfig,
    start: datetime | None,
    end: datetime | None,
    numeric: dict[str, list[float]],
    categorical: list[str],
    bounds: dict[str, tuple[float, float]] | None = None,
    window_rows: int | None = None,
) -> dict:
    """The window's drift summary (:func:`.monitoring.drift.summarize`'s shape) computed by the source's engine:
    PostgreSQL for a SQL source, DuckDB over the Parquet or CSV files; only the aggregates reach Python.

    ``window_rows``: the window's row count if the caller has it (the sensor counted it), so the
    choice between an exact summary and a sample needs no estimate. ``drift.pushdown_sample_above_rows``
    and ``drift.pushdown_sample_rows``, when the configuration has them, override the module's
    defaults (``SAMPLE_ABOVE_ROWS``, ``SAMPLE_ROWS`` in :mod:`.monitoring.window_histograms`).
    """
    from .monitoring import window_histograms

    engine = source_engine(cfg)
    args = (cfg.columns.timestamp, start, end, numeric, categorical, bounds)
    sampling = {
        "sample_above_rows": getattr(cfg.drift, "pushdown_sample_above_rows", "default"),
        "sample_rows": getattr(cfg.drift, "pushdown_sample_rows", None),
        "window_rows": window_rows,
    }
    if cfg.source.kind == "sql" and engine == "postgresql":
        return window_histograms.sql_histograms(source_dsn(cfg), source_relation(cfg), *args, **sampling)
    if cfg.source.kind in ("parquet", "csv"):
        paths = files(cfg)
        absent = [f for f in paths if not Path(f).exists()]
        if absent or not paths:
            raise DataValidationError(f"data file(s) not found: {absent or cfg.source.path} "
                                      "(source.path in the model configuration)")
        return window_histograms.file_histograms(cfg.source.kind, paths, *args, **sampling)
    raise DataValidationError(f"no window summary for a {cfg.source.kind!r} source through {engine}")
