"""The sensor's wait: keep waiting while labels are due, give up (on the record) once they are late."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from unit_helpers import build_config

from include.retraining.monitoring.assessment import assess

END = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)


def source(tmp_path: Path, labelled: int, unlabelled: int):
    ts = [END - timedelta(minutes=5 * (i + 1)) for i in range(labelled + unlabelled)]
    frame = pd.DataFrame({"ts": ts, "x1": 1.0, "x2": 2.0, "c": "a",
                          "y": [1.0] * labelled + [None] * unlabelled})
    frame.to_parquet(tmp_path / "data.parquet")
    return build_config(source={"kind": "parquet", "path": str(tmp_path / "data.parquet")},
                        window={"lookback_hours": 6, "min_labelled_rows": 10, "label_wait_hours": 5},
                        storage={"uri": str(tmp_path / "storage")})


def test_waits_while_labels_are_still_due(tmp_path: Path):
    cfg = source(tmp_path, labelled=4, unlabelled=20)
    out = assess(cfg, END - timedelta(hours=6), END, now=END + timedelta(hours=1))
    assert out["status"] == "waiting"
    assert out["rows"] == 24 and out["labelled_rows"] == 4
    assert out["deadline"] == (END + timedelta(hours=5)).isoformat()


def test_gives_up_with_insufficient_data_once_the_labels_are_late(tmp_path: Path):
    cfg = source(tmp_path, labelled=4, unlabelled=20)
    out = assess(cfg, END - timedelta(hours=6), END, now=END + timedelta(hours=5))
    assert out["status"] == "insufficient_data"
    assert "only 4 labelled rows (24 rows)" in out["reason"] and "min_labelled_rows is 10" in out["reason"]


def test_a_backfilled_old_window_decides_at_once(tmp_path: Path):
    cfg = source(tmp_path, labelled=0, unlabelled=3)
    out = assess(cfg, END - timedelta(hours=6), END, now=datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert out["status"] == "insufficient_data"
