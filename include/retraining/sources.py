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
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
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
        query = sql.SQL("SELECT count(*), count({label}) FROM {rel} WHERE {where}").format(
            label=sql.Identifier(cfg.columns.label), rel=source_relation(cfg), where=where
        )
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            rows, labelled = cur.fetchone()
        return WindowCounts(int(rows), int(labelled))
    frame = _read_files(cfg, [cfg.columns.timestamp, cfg.columns.label])
    window = frame[_in_window(frame, cfg.columns.timestamp, start, end)]
    return WindowCounts(len(window), int(window[cfg.columns.label].notna().sum()))


def latest_labelled_time(cfg: RetrainingConfig, before: datetime) -> datetime | None:
    """The timestamp of the newest labelled row before ``before`` (None when there is none)."""
    import pandas as pd

    if cfg.source.kind == "sql":
        dsn = source_dsn(cfg)
        _check_present(cfg, _sql_columns(cfg, dsn))
        where, params = window_clause(cfg.columns.timestamp, None, before)
        query = sql.SQL("SELECT max({ts}) FROM {rel} WHERE {where} AND {label} IS NOT NULL").format(
            ts=sql.Identifier(cfg.columns.timestamp), rel=source_relation(cfg), where=where,
            label=sql.Identifier(cfg.columns.label))
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            found = cur.fetchone()[0]
    else:
        frame = _read_files(cfg, [cfg.columns.timestamp, cfg.columns.label])
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
) -> pd.DataFrame:
    """The configured columns for rows with ``start <= timestamp < end``, ordered by time, validated.

    ``newest`` keeps only that many of the most recent rows (read as such from SQL)."""
    import pandas as pd

    columns = required_columns(cfg)
    if cfg.source.kind == "sql":
        dsn = source_dsn(cfg)
        _check_present(cfg, _sql_columns(cfg, dsn))
        where, params = window_clause(cfg.columns.timestamp, start, end)
        if labelled_only:
            where = sql.SQL("{} AND {} IS NOT NULL").format(where, sql.Identifier(cfg.columns.label))
        query = sql.SQL("SELECT {cols} FROM {rel} WHERE {where} ORDER BY {ts}{limit}").format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            rel=source_relation(cfg),
            where=where,
            ts=sql.Identifier(cfg.columns.timestamp),
            limit=sql.SQL(" DESC LIMIT {}").format(sql.Literal(int(newest))) if newest else sql.SQL(""),
        )
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            frame = pd.DataFrame(cur.fetchall(), columns=columns)
        frame[cfg.columns.timestamp] = pd.to_datetime(frame[cfg.columns.timestamp], utc=True)
        if newest:
            frame = frame.iloc[::-1].reset_index(drop=True)
    elif cfg.source.kind == "parquet" and newest:
        frame = _newest_from_parquet(cfg, columns, start, end, labelled_only, int(newest))
    else:
        frame = _read_files(cfg, columns)
        frame = frame[_in_window(frame, cfg.columns.timestamp, start, end)]
        if labelled_only:
            frame = frame[frame[cfg.columns.label].notna()]
        frame = frame.sort_values(cfg.columns.timestamp, kind="stable").reset_index(drop=True)
        if newest:
            frame = frame.tail(newest).reset_index(drop=True)
    log.info("read %d rows from %s for window [%s, %s)", len(frame), _describe(cfg), start, end)
    return coerce_types(cfg, frame)


def _newest_from_parquet(cfg: RetrainingConfig, columns: list[str], start: datetime | None, end: datetime | None,
                         labelled_only: bool, newest: int) -> pd.DataFrame:
    """The ``newest`` rows of the window in the Parquet files, read by DuckDB: memory holds those rows, not the window.

    The same rows and order as the pandas path (every file read, filtered, stably sorted by time,
    the tail kept): ties in time are broken by file (in :func:`files` order) and row within it.
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
    conn = duckdb.connect(":memory:", config={"threads": 2, "memory_limit": "512MB"})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        types = {name: str(kind) for name, kind, *_ in conn.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        _check_present(cfg, [c for c in types if c not in ("filename", "file_row_number")])
        where = DUCKDB.window(ts, types[ts], start, end)
        if labelled_only:
            where += f" AND {quote_ident(cfg.columns.label)} IS NOT NULL"
        # files() is sorted, and DuckDB orders text by code point as Python does
        table = conn.sql(
            f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {relation} WHERE {where} "
            f"ORDER BY {quote_ident(ts)} DESC, filename DESC, file_row_number DESC LIMIT {newest}"
        ).to_arrow_table()
    finally:
        conn.close()
    frame = table.to_pandas().iloc[::-1].reset_index(drop=True)
    frame[ts] = pd.to_datetime(frame[ts], utc=True)
    return frame


def coerce_types(cfg: RetrainingConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric features as floats, categoricals as strings; a non-numeric value is an error naming it."""
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
        if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
            values = values.astype("Int64")  # 3.0 and 3 are the same category, NULLs or not
        frame[col] = values.astype("string").astype(object).where(values.notna(), np.nan)
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
