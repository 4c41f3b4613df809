"""Versioned, content-hashed training snapshots.

``collect`` takes the latest snapshot whose cutoff is not after the window end, reads
the labelled rows that are new since that cutoff (with a margin for labels that
arrived late), appends them, removes duplicates, and writes the result as a new
snapshot named by its cutoff and content hash. Writing is idempotent: the same data
gives the same hash and the same file, so a retried or re-run task changes nothing.
The manifest (``manifest.json``) lists every snapshot with its parent, so the lineage
of any model's training data can be followed back.

Labels as of a time (``columns.label_time`` and :func:`~include.retraining.sources.labels_as_of` in force): the
snapshot holds the labels that had arrived by then, records that time (``labels_as_of`` in the manifest and
the returned entry) and folds it into its hash, so the same rows taken as of another time are another
snapshot. A parent is only built on when its own as-of time is known and not later (a replay never inherits
labels a later live run saw), and the labels that arrived since the parent's as-of time are added whatever
their rows' time (not only within the late-label margin).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import storage
from ..config import RetrainingConfig
from ..sources import label_cutoff, load_window

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the frame's values and column names, independent of row order."""
    import pandas as pd

    ordered = frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, ordered.columns)).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def snapshot_hash(frame: pd.DataFrame, labels_as_of: datetime | None = None) -> str:
    """The snapshot's hash: :func:`content_hash`, with the as-of time of its labels folded in when there is one."""
    digest = content_hash(frame)
    if labels_as_of is None:
        return digest
    return hashlib.sha256(f"{digest}\x1flabels_as_of={labels_as_of.isoformat()}".encode()).hexdigest()


def snapshot_root(cfg: RetrainingConfig) -> str:
    return storage.join(storage.resolve(cfg.storage.uri), cfg.model.name, "snapshots")


def read_manifest(cfg: RetrainingConfig) -> list[dict[str, Any]]:
    uri = storage.join(snapshot_root(cfg), "manifest.json")
    return list(storage.read_json(uri)) if storage.exists(uri) else []


def dedupe(cfg: RetrainingConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """Drop repeated rows: by the id column when configured (newest label wins), else identical rows."""
    if cfg.columns.id:
        return frame.drop_duplicates(subset=[cfg.columns.id], keep="last")
    return frame.drop_duplicates(keep="last")


SPLIT_COLUMN = "_split"


def _cut(idx: np.ndarray, fraction: float, seed: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if len(idx) < 3:
        return idx, idx[:0]
    kept, cut = train_test_split(idx, test_size=fraction, random_state=seed,
                                 stratify=None if labels is None else labels[idx])
    return kept, cut


def assign_splits(cfg: RetrainingConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """Give each row its split (train/validation/test) once: stratified by label where possible, seeded.

    Rows keep their split in every later snapshot, so a row a champion was trained on
    never becomes a test row for judging its successor.
    """
    t = cfg.training
    labels = frame[cfg.columns.label].to_numpy()
    counts = frame[cfg.columns.label].value_counts()
    stratify = cfg.model.task != "regression" and len(counts) > 1 and counts.min() >= 7
    rest, test = _cut(np.arange(len(frame)), t.test_fraction, t.seed, labels if stratify else None)
    val_share = t.validation_fraction / (t.train_fraction + t.validation_fraction)
    train, validation = _cut(rest, val_share, t.seed, labels if stratify else None)
    split = np.empty(len(frame), dtype=object)
    split[train], split[validation], split[test] = "train", "validation", "test"
    return frame.assign(**{SPLIT_COLUMN: split})


def _only_new(cfg: RetrainingConfig, base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``new`` that ``base`` does not hold yet (by id, else by their values)."""
    if cfg.columns.id:
        return new[~new[cfg.columns.id].isin(base[cfg.columns.id])]
    keys = [c for c in new.columns if c != SPLIT_COLUMN]
    merged = new.merge(base[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    return new[(merged["_merge"] == "left_only").to_numpy()]


def collect(cfg: RetrainingConfig, window_end: datetime) -> dict[str, Any]:
    """Append the labelled rows new since the last snapshot and write the new snapshot."""
    import pandas as pd

    manifest = read_manifest(cfg)
    as_of = label_cutoff(cfg)
    usable = [s for s in manifest if datetime.fromisoformat(s["cutoff"]) <= window_end and _labels_within(s, as_of)]
    parent = max(usable, key=lambda s: s["cutoff"]) if usable else None
    history_start = window_end - timedelta(days=cfg.training.history_days) if cfg.training.history_days else None
    late = None  # labels that arrived after the parent's as-of time, of rows before the margin
    if parent is None:
        base = None
        since = history_start
    else:
        base = storage.read_parquet(parent["uri"])
        base[cfg.columns.timestamp] = pd.to_datetime(base[cfg.columns.timestamp], utc=True)
        margin = timedelta(hours=cfg.window.lookback_hours + cfg.window.label_wait_hours)
        since = datetime.fromisoformat(parent["cutoff"]) - margin
        if history_start is not None:
            since = max(since, history_start)
        if as_of is not None:
            late = load_window(cfg, history_start, since, labelled_only=True,
                               labels_after=datetime.fromisoformat(parent["labels_as_of"]))
    new = load_window(cfg, since, window_end, labelled_only=True)
    if late is not None and len(late):
        new = pd.concat([late, new], ignore_index=True)
    new = dedupe(cfg, new)
    if base is not None:
        new = _only_new(cfg, base, new)
    new = assign_splits(cfg, new)
    frames = [f for f in (base, new) if f is not None and len(f)]
    combined = pd.concat(frames, ignore_index=True) if frames else new
    if history_start is not None:
        combined = combined[combined[cfg.columns.timestamp] >= history_start]
    combined = combined.sort_values(cfg.columns.timestamp, kind="stable").reset_index(drop=True)
    digest = snapshot_hash(combined, as_of)
    name = f"{window_end.strftime('%Y%m%dT%H%M%SZ')}_{digest[:12]}.parquet"
    uri = storage.join(snapshot_root(cfg), name)
    if not storage.exists(uri):
        storage.write_parquet(combined, uri)
    entry = {
        "uri": uri,
        "hash": digest,
        "cutoff": window_end.isoformat(),
        "rows": int(len(combined)),
        "new_rows": int(len(new)),
        "parent": parent["hash"] if parent else None,
        **({"labels_as_of": as_of.isoformat()} if as_of else {}),
    }
    if not any(s["hash"] == digest and s["cutoff"] == entry["cutoff"] for s in manifest):
        manifest = [s for s in manifest if s["cutoff"] != entry["cutoff"]] + [entry]
        storage.write_json(sorted(manifest, key=lambda s: s["cutoff"]), storage.join(snapshot_root(cfg), "manifest.json"))
    log.info(
        "snapshot %s: %d rows (%d new since %s), sha256 %s%s",
        name,
        entry["rows"],
        entry["new_rows"],
        parent["cutoff"] if parent else "the start of history",
        digest[:12],
        f", labels as of {as_of.isoformat()}" if as_of else "",
    )
    return entry


def _labels_within(snapshot: dict[str, Any], as_of: datetime | None) -> bool:
    """Whether a snapshot may be built on under labels as of ``as_of``: always without one; else only when
    the snapshot's own labels were taken as of a time no later (an older snapshot without one may hold any)."""
    if as_of is None:
        return True
    taken = snapshot.get("labels_as_of")
    return taken is not None and datetime.fromisoformat(taken) <= as_of
