"""Preparing a snapshot for training: clean, check, split in time, and profile the reference data.

- duplicates removed (by id, or identical rows), rows without a label dropped;
- the schema checked against the configuration (changes against the champion's
  features are caught earlier, by the sensor): a missing column, a non-numeric value or +/-inf in a numeric
  feature, or a feature with no value in the labelled rows (or in the train split) is an error naming it; other
  missing feature values are left for the model's imputers;
- the label checked: a classifier needs at least two classes with two rows each;
- the **out-of-time holdout**: the labelled rows of the most recent ``gate.holdout_hours`` before the
  cutoff (at least ``gate.min_holdout_rows``), the ``test`` split that the gate and the performance
  baseline use. Nothing the candidate trains on is as new as these rows;
- the rows before the holdout keep the split each row was given once, when it entered a snapshot
  (stratified and seeded, 70/15/15 by default, see :func:`~include.retraining.training.snapshots.assign_splits`):
  ``train``, ``validation`` (early stopping, calibration) and ``test_in_time`` (reported, not judged on);
- the reference profile for drift checks, from the most recent rows before the cutoff.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import storage
from ..config import RetrainingConfig
from ..errors import DataValidationError, InsufficientDataError
from ..monitoring.calibration import calibrate
from ..monitoring.drift import build_profile
from ..sources import coerce_types, mask_labels, required_columns
from .snapshots import SPLIT_COLUMN, assign_splits, dedupe

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def check_label(cfg: RetrainingConfig, labels: pd.Series) -> list[Any]:
    """The classes of a classification label (sorted), or [] for regression; errors name the problem."""
    name = cfg.columns.label
    if cfg.model.task == "regression":
        import pandas as pd

        numeric = pd.to_numeric(labels, errors="coerce")
        if numeric.isna().any():
            raise DataValidationError(f"regression label '{name}' has non-numeric values")
        return []
    counts = labels.value_counts().sort_index()
    if len(counts) < 2:
        only = counts.index[0].item() if len(counts) and hasattr(counts.index[0], "item") else (
            counts.index[0] if len(counts) else "none")
        raise DataValidationError(
            f"label column '{name}' has a single class ({only!r}) in the training data: a {cfg.model.task} "
            "classifier needs at least two; check the label pipeline or widen training.history_days"
        )
    if cfg.model.task == "binary" and len(counts) > 2:
        raise DataValidationError(
            f"label column '{name}' has {len(counts)} classes {list(counts.index)} but model.task is 'binary'"
        )
    rare = {k: int(v) for k, v in counts.items() if v < 2}
    if rare:
        raise DataValidationError(f"label column '{name}' has classes with fewer than 2 rows: {rare}")
    return [v.item() if hasattr(v, "item") else v for v in counts.index]


def check_features(cfg: RetrainingConfig, frame: pd.DataFrame, rows: str = "labelled rows") -> None:
    """Refuse features no model can learn from: a numeric one holding +/-inf, or one with no value at all
    in ``frame`` (``rows`` says which rows it holds); the error names each column with its count.

    An all-missing feature would be dropped by the median imputer and XGBoost would then fail on a
    list of feature types one too long; an infinity fails scikit-learn's input check ("Input X contains
    infinity") without naming the column."""
    infinite = {c: int(np.isinf(frame[c].to_numpy(dtype=float)).sum()) for c in cfg.columns.numeric}
    infinite = {c: n for c, n in infinite.items() if n}
    empty = [c for c in cfg.columns.features if len(frame) and frame[c].isna().all()]
    problems = []
    if infinite:
        problems.append("numeric feature(s) holding +/-inf: " + ", ".join(
            f"'{c}' ({n} of {len(frame)} rows)" for c, n in infinite.items()))
    if empty:
        problems.append(f"feature(s) missing in all {len(frame)} {rows}: " + ", ".join(f"'{c}'" for c in empty))
    if problems:
        raise DataValidationError(
            "; ".join(problems) + ": fix the feed, or drop the column(s) from columns.numeric / columns.categorical"
        )


def reference_slice(cfg: RetrainingConfig, frame: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """The data the model will be compared against: the last ``reference_hours`` before the cutoff."""
    hours = cfg.drift.reference_hours or cfg.window.lookback_hours
    ts = cfg.columns.timestamp
    recent = frame[frame[ts] >= cutoff - timedelta(hours=hours)]
    if len(recent) < 100:  # too thin to profile: fall back to the newest rows
        recent = frame.tail(min(len(frame), cfg.drift.reference_max_rows))
    return recent.tail(cfg.drift.reference_max_rows)


def out_of_time_holdout(cfg: RetrainingConfig, timestamps: pd.Series, cutoff: datetime) -> np.ndarray:
    """Rows of the most recent labelled period before ``cutoff``: ``gate.holdout_hours`` back from the
    newest row, or the newest ``gate.min_holdout_rows`` rows when that period holds fewer."""
    import pandas as pd

    ts = pd.to_datetime(timestamps, utc=True)
    before = (ts < pd.Timestamp(cutoff)).to_numpy()
    if not before.any():
        return before
    newest = ts[before].max()
    mask = before & (ts > newest - pd.Timedelta(hours=cfg.holdout_hours)).to_numpy()
    if mask.sum() < cfg.gate.min_holdout_rows:
        k = min(cfg.gate.min_holdout_rows, int(before.sum()))
        threshold = np.sort(ts[before].to_numpy())[-k]
        mask = before & (ts >= threshold).to_numpy()
    return mask


def prepare(
    cfg: RetrainingConfig,
    snapshot_uri: str,
    cutoff: datetime,
    out_dir: str,
) -> dict[str, Any]:
    """Clean and split a snapshot; write the splits and the reference profile under ``out_dir``."""
    import pandas as pd

    raw = storage.read_parquet(snapshot_uri)
    missing = [c for c in required_columns(cfg) if c not in raw.columns]
    if missing:
        raise DataValidationError(f"snapshot {snapshot_uri} lacks column(s) {missing} the configuration expects")
    if cfg.columns.label_time and cfg.columns.label_time in raw.columns:  # a snapshot made elsewhere, with arrival times: labels as of then
        raw = mask_labels(cfg, raw).drop(columns=[cfg.columns.label_time])
    frame = coerce_types(cfg, raw)
    ts_col = cfg.columns.timestamp
    frame[ts_col] = pd.to_datetime(frame[ts_col], utc=True)
    frame = frame[frame[ts_col] < pd.Timestamp(cutoff)]
    before = len(frame)
    frame = dedupe(cfg, frame)
    duplicates = before - len(frame)
    unlabelled = int(frame[cfg.columns.label].isna().sum())
    frame = frame[frame[cfg.columns.label].notna()].sort_values(ts_col, kind="stable").reset_index(drop=True)
    if len(frame) < cfg.training.min_rows:
        raise InsufficientDataError(
            f"only {len(frame)} labelled rows to train on, training.min_rows is {cfg.training.min_rows}"
        )
    if cfg.model.task != "regression":
        frame[cfg.columns.label] = frame[cfg.columns.label].astype("int64") if pd.api.types.is_numeric_dtype(
            frame[cfg.columns.label]
        ) else frame[cfg.columns.label]
    classes = check_label(cfg, frame[cfg.columns.label])
    check_features(cfg, frame)
    if SPLIT_COLUMN not in frame or frame[SPLIT_COLUMN].isna().any():
        frame = assign_splits(cfg, frame)  # a snapshot made elsewhere: split it now
    holdout = out_of_time_holdout(cfg, frame[ts_col], cutoff)
    earlier = frame[~holdout]
    parts = {
        "train": earlier[earlier[SPLIT_COLUMN] == "train"],
        "validation": earlier[earlier[SPLIT_COLUMN] == "validation"],
        "test": frame[holdout],
        "test_in_time": earlier[earlier[SPLIT_COLUMN] == "test"],
    }
    empty = [name for name in SPLITS if parts[name].empty]
    if empty:
        raise InsufficientDataError(
            f"the {empty} split(s) would be empty: {len(frame)} labelled rows, of which {int(holdout.sum())} form the "
            f"out-of-time holdout (gate.holdout_hours {cfg.holdout_hours:g}, gate.min_holdout_rows "
            f"{cfg.gate.min_holdout_rows}); widen training.history_days or shorten the holdout"
        )
    if cfg.model.task != "regression" and parts["train"][cfg.columns.label].nunique() < 2:
        raise DataValidationError(f"the training split has a single class of '{cfg.columns.label}'")
    check_features(cfg, parts["train"], "rows of the train split")  # e.g. a feature only the newest rows have
    uris = {}
    for name, part in parts.items():
        uris[name] = storage.join(out_dir, f"{name}.parquet")
        storage.write_parquet(part, uris[name])
    profile = build_profile(
        reference_slice(cfg, frame, cutoff), cfg.columns.numeric, cfg.columns.categorical, cfg.drift.bins,
        fine_bins=cfg.drift.fine_bins, sample_rows=cfg.drift.sample_rows, seed=cfg.training.seed,
    )
    if "calibrated" in (cfg.drift.threshold_mode, cfg.quality.threshold_mode):
        profile["calibration"] = calibrate(frame, profile, ts_col, cutoff, cfg.window.lookback_hours,
                                           cfg.drift.reference_hours or cfg.window.lookback_hours,
                                           max_windows=cfg.drift.calibration_windows, seed=cfg.training.seed)
    profile_uri = storage.join(out_dir, "reference_profile.json")
    storage.write_json(profile, profile_uri)
    missing_rates = {c: round(float(frame[c].isna().mean()), 6) for c in cfg.columns.features}
    learned = pd.concat([parts["train"][ts_col], parts["validation"][ts_col]])
    summary = {
        "splits": uris,
        "profile_uri": profile_uri,
        "rows": {name: int(len(part)) for name, part in parts.items()},
        "holdout": {"start": parts["test"][ts_col].min().isoformat(), "end": parts["test"][ts_col].max().isoformat(),
                    "rows": int(len(parts["test"])), "hours": cfg.holdout_hours},
        "trained_until": learned.max().isoformat(),
        "duplicates_removed": int(duplicates),
        "unlabelled_dropped": unlabelled,
        "classes": classes,
        "missing_rates": {k: v for k, v in missing_rates.items() if v > 0},
    }
    log.info(
        "prepared %d rows: train %d / validation %d (up to %s), out-of-time holdout %d [%s, %s], in-time test %d; "
        "%d duplicates removed",
        len(frame), summary["rows"]["train"], summary["rows"]["validation"], summary["trained_until"][:16],
        summary["rows"]["test"], summary["holdout"]["start"][:16], summary["holdout"]["end"][:16],
        summary["rows"]["test_in_time"], duplicates,
    )
    return summary
