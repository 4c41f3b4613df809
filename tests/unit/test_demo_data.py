"""The demo stream: its shape, delayed labels, the drift, and loading it into PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from include.retraining.config import DEFAULT_CONFIG_PATH, load_config
from include.retraining.connections import connect
from include.retraining.demo_data import (
    CATEGORICAL,
    ID,
    LABEL,
    LABEL_TIME,
    NUMERIC,
    TIMESTAMP,
    StreamSpec,
    generate,
    load_into_postgres,
)
from include.retraining.sources import WindowCounts, count_window, load_window

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
SPEC = StreamSpec(start=START, end=START + timedelta(hours=4), drift_at=START + timedelta(hours=2),
                  rows_per_hour=100, label_delay_hours=1.0)


def test_generate_shape_and_order() -> None:
    frame = generate(SPEC)
    assert len(frame) == 400
    assert list(frame.columns) == [ID, TIMESTAMP, *NUMERIC, *CATEGORICAL, LABEL, LABEL_TIME]
    assert frame[ID].tolist() == list(range(1, 401))
    assert frame[TIMESTAMP].is_monotonic_increasing
    assert frame[TIMESTAMP].min() >= pd.Timestamp(START) and frame[TIMESTAMP].max() < pd.Timestamp(SPEC.end)
    assert set(frame["home_ownership"]) <= {"RENT", "MORTGAGE", "OWN"}
    assert frame["credit_score"].between(300, 850).all()
    assert frame["employment_years"].isna().any() and frame["age"].notna().all()


def test_generate_is_seeded() -> None:
    pd.testing.assert_frame_equal(generate(SPEC), generate(SPEC))
    assert not generate(SPEC).equals(generate(StreamSpec(**{**SPEC.__dict__, "seed": 8})))


def test_labels_arrive_after_the_delay() -> None:
    frame = generate(SPEC)
    due = frame[TIMESTAMP] + timedelta(hours=1) <= pd.Timestamp(SPEC.end)
    assert frame.loc[due, LABEL].notna().all()
    assert frame.loc[~due, LABEL].isna().all()
    assert (~due).sum() == pytest.approx(100, abs=30)  # the last hour
    assert set(frame[LABEL].dropna()) <= {0, 1}
    later = generate(StreamSpec(**{**SPEC.__dict__, "as_of": SPEC.end + timedelta(hours=2)}))
    assert later[LABEL].notna().all()


def test_each_known_label_has_its_arrival_time() -> None:
    frame = generate(SPEC)
    known = frame[LABEL].notna()
    assert (frame[LABEL_TIME].notna() == known).all()  # NULL while the label is
    delay = frame.loc[known, LABEL_TIME] - frame.loc[known, TIMESTAMP]
    assert (delay == pd.Timedelta(hours=1)).all()  # no spread: every label label_delay_hours late
    assert (frame.loc[known, LABEL_TIME] <= pd.Timestamp(SPEC.end)).all()


def test_label_delays_spread_over_hours_to_days_without_changing_the_applications() -> None:
    spec = StreamSpec(**{**SPEC.__dict__, "rows_per_hour": 1000, "label_delay_spread_hours": 24.0,
                         "as_of": SPEC.end + timedelta(days=30)})
    spread = generate(spec)
    delay_hours = ((spread[LABEL_TIME] - spread[TIMESTAMP]).dt.total_seconds() / 3600).dropna()
    assert delay_hours.min() >= 1.0 and delay_hours.max() > 48  # hours to days
    assert delay_hours.mean() == pytest.approx(1.0 + 24.0, rel=0.1)
    fixed = generate(StreamSpec(**{**spec.__dict__, "label_delay_spread_hours": 0.0}))
    pd.testing.assert_frame_equal(spread.drop(columns=[LABEL_TIME]), fixed.drop(columns=[LABEL_TIME]))
    # seen from the stream's end, only the labels that had arrived by then are known
    now = generate(StreamSpec(**{**spec.__dict__, "as_of": None}))
    assert (now[LABEL].notna() == (spread[LABEL_TIME] <= pd.Timestamp(SPEC.end))).all()
    assert now[LABEL].notna().mean() < 0.2


def test_new_loan_purpose_only_after_the_drift() -> None:
    frame = generate(SPEC)
    after = frame[TIMESTAMP] >= pd.Timestamp(SPEC.drift_at)
    assert (frame.loc[after, "loan_purpose"] == "bnpl_refinance").any()
    assert not (frame.loc[~after, "loan_purpose"] == "bnpl_refinance").any()
    quiet = generate(StreamSpec(**{**SPEC.__dict__, "drift_at": None}))
    assert "bnpl_refinance" not in set(quiet["loan_purpose"])


def test_load_into_postgres_and_read_back_with_the_bundled_config(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = generate(SPEC)
    assert load_into_postgres(pg_dsn, "credit_demo", frame) == 400
    assert load_into_postgres(pg_dsn, "credit_demo", frame) == 400  # replace: dropped and re-created
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(defaulted), count(employment_years) FROM credit_demo")
        assert cur.fetchone() == (400, frame[LABEL].notna().sum(), frame["employment_years"].notna().sum())
        cur.execute("SELECT min(application_ts) FROM credit_demo")
        assert cur.fetchone()[0] == frame[TIMESTAMP].min().floor("us").to_pydatetime()  # COPY keeps microseconds
        cur.execute("SELECT count(label_arrived_at), min(label_arrived_at - application_ts) FROM credit_demo")
        assert cur.fetchone() == (frame[LABEL].notna().sum(), timedelta(hours=1))

    monkeypatch.setenv("RETRAINING_SOURCE_TABLE", "credit_demo")
    monkeypatch.setenv("RETRAINING_SOURCE_CONN_ID", "retraining_db")
    cfg = load_config(DEFAULT_CONFIG_PATH)
    start, end = START + timedelta(hours=1), START + timedelta(hours=3)
    in_window = frame[(frame[TIMESTAMP] >= pd.Timestamp(start)) & (frame[TIMESTAMP] < pd.Timestamp(end))]
    assert count_window(cfg, start, end) == WindowCounts(len(in_window), int(in_window[LABEL].notna().sum()))
    loaded = load_window(cfg, start, end)
    assert loaded[ID].tolist() == in_window[ID].tolist()
    assert loaded["annual_income"].tolist() == pytest.approx(in_window["annual_income"].tolist())
    assert loaded["loan_purpose"].tolist() == in_window["loan_purpose"].tolist()
    # the bundled config names the arrival time: as of the window's end, the labels of its last hour are missing
    from include.retraining.sources import labels_as_of

    assert cfg.columns.label_time == LABEL_TIME
    with labels_as_of(end):
        arrived = in_window[TIMESTAMP] + timedelta(hours=1) <= pd.Timestamp(end)
        assert count_window(cfg, start, end) == WindowCounts(len(in_window), int(arrived.sum()))


def test_the_loss_stream_is_the_same_applications_with_a_delayed_regression_label() -> None:
    from include.retraining.demo_data import LOSS_LABEL, generate_losses

    credit, losses = generate(SPEC), generate_losses(SPEC)
    assert list(losses.columns) == [ID, TIMESTAMP, *NUMERIC, *CATEGORICAL, LOSS_LABEL, LABEL_TIME]
    pd.testing.assert_frame_equal(losses.drop(columns=[LOSS_LABEL]), credit.drop(columns=[LABEL]))
    assert (losses[LOSS_LABEL].isna() == credit[LABEL].isna()).all()  # known when the default label is
    assert (losses[LOSS_LABEL].dropna() >= 0).all()
    pd.testing.assert_frame_equal(losses, generate_losses(SPEC))  # seeded
    # after the drift, refinanced BNPL loans lose far more than the others (concept drift to learn)
    late = generate_losses(StreamSpec(**{**SPEC.__dict__, "rows_per_hour": 2000, "as_of": SPEC.end + timedelta(hours=2)}))
    after = late[late[TIMESTAMP] >= pd.Timestamp(SPEC.drift_at)]
    bnpl = after["loan_purpose"] == "bnpl_refinance"
    assert after.loc[bnpl, LOSS_LABEL].mean() > 1.5 * after.loc[~bnpl, LOSS_LABEL].mean()


def test_the_loss_stream_loads_with_a_numeric_label(pg_dsn: str) -> None:
    from include.retraining.demo_data import LOSS_LABEL, generate_losses

    frame = generate_losses(SPEC)
    assert load_into_postgres(pg_dsn, "loss_demo", frame) == 400
    with connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'loss_demo' "
                    "AND column_name = %s", (LOSS_LABEL,))
        assert cur.fetchone() == ("double precision",)
        cur.execute(f"SELECT count({LOSS_LABEL}), sum({LOSS_LABEL}) FROM loss_demo")
        count, total = cur.fetchone()
    assert count == frame[LOSS_LABEL].notna().sum() and total == pytest.approx(frame[LOSS_LABEL].sum())
