"""A realistic credit-risk stream for the demo and the tests: delayed labels and a drift at a known time.

Loan applications arrive at a steady rate. Each has numeric features (age, income,
loan amount, credit score, debt-to-income, employment years, open accounts, late
payments) and categorical ones (home ownership, loan purpose, region); a small share
of ``employment_years`` is missing. Whether the loan defaults follows a non-linear
logistic model. Labels arrive late: a row's label is ``NULL`` until it arrives,
``label_delay_hours`` after the application (plus, with ``label_delay_spread_hours``, an
exponentially distributed extra delay of that mean: hours to days), as seen from ``as_of``. The
moment each known label arrived is the column ``label_arrived_at`` (``NULL`` while the label is),
which the bundled configurations name as ``columns.label_time``: a replay of an old window then sees
only the labels that had arrived by its time.

From ``drift_at`` on, the population changes (lower incomes and credit scores,
higher debt-to-income) and a new loan purpose, ``bnpl_refinance``, appears with a
much higher default rate: data drift and concept drift a retrained model can learn. With
``concept_until`` the higher default rates end there while the new population stays (a transient
change that misleads a model retrained on it: the post-deploy watch's case).

:func:`generate_losses` is the same applications with a regression target instead, the
amount lost on each loan (``loss_amount``, for the demo's second model, ``loan_loss``): it
depends non-linearly on credit score, debt-to-income, late payments and the loan amount, and
after ``drift_at`` refinanced buy-now-pay-later loans and the south region lose much more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

NUMERIC = [
    "age",
    "annual_income",
    "loan_amount",
    "credit_score",
    "debt_to_income",
    "employment_years",
    "open_accounts",
    "late_payments_12m",
]
CATEGORICAL = ["home_ownership", "loan_purpose", "region"]
LABEL = "defaulted"
LOSS_LABEL = "loss_amount"  # the regression stream's target (generate_losses)
TIMESTAMP = "application_ts"
ID = "application_id"
LABEL_TIME = "label_arrived_at"  # when the row's label arrived (columns.label_time); NULL while it has not

_PURPOSES = ["debt_consolidation", "credit_card", "home_improvement", "car", "medical", "small_business"]
_PURPOSE_P = [0.45, 0.20, 0.12, 0.10, 0.06, 0.07]
_PURPOSES_DRIFT = [*_PURPOSES, "bnpl_refinance"]
_PURPOSE_P_DRIFT = [0.28, 0.14, 0.08, 0.07, 0.06, 0.09, 0.28]
_HOME = ["RENT", "MORTGAGE", "OWN"]
_REGIONS = ["north", "south", "east", "west"]


@dataclass(frozen=True)
class StreamSpec:
    start: datetime = datetime(2026, 3, 1, tzinfo=timezone.utc)
    end: datetime = datetime(2026, 3, 9, 6, tzinfo=timezone.utc)
    drift_at: datetime | None = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)
    rows_per_hour: int = 500
    label_delay_hours: float = 3.0  # the shortest delay of a label (every label's, without a spread)
    label_delay_spread_hours: float = 0.0  # mean of an exponential extra delay per label (0: none; e.g. 24: days)
    as_of: datetime | None = None  # labels not yet known at this time are NULL; default: ``end``
    seed: int = 7
    # From this time on the drifted population's defaults follow the original concept again (a transient change:
    # a model retrained on it learned a pattern that stopped holding); None: the drift lasts.
    concept_until: datetime | None = None


def _segment(rng: np.random.Generator, n: int, drifted: bool, concept: bool | None = None) -> pd.DataFrame:
    """``n`` applications; ``drifted`` changes the population and (unless ``concept`` is False) the defaults."""
    concept = drifted if concept is None else concept
    shift = 1.0 if drifted else 0.0
    age = np.clip(rng.normal(42, 12, n), 18, 80).round()
    income = np.exp(rng.normal(np.log(62_000) - 0.28 * shift, 0.45, n)).round(-2)
    loan = np.exp(rng.normal(np.log(14_000) + 0.1 * shift, 0.6, n)).round(-2)
    score = np.clip(rng.normal(685 - 35 * shift, 60, n), 300, 850).round()
    dti = np.clip(rng.beta(2.2, 5.5, n) + 0.06 * shift, 0.0, 0.95).round(4)
    employment = np.clip(rng.exponential(6.0, n), 0, 45).round(1)
    employment[rng.random(n) < 0.02] = np.nan
    accounts = rng.poisson(8, n).astype(float)
    late = rng.poisson(0.5 + 0.3 * shift, n).astype(float)
    home = rng.choice(_HOME, n, p=[0.40, 0.45, 0.15])
    purposes, probs = (_PURPOSES_DRIFT, _PURPOSE_P_DRIFT) if drifted else (_PURPOSES, _PURPOSE_P)
    purpose = rng.choice(purposes, n, p=probs)
    region = rng.choice(_REGIONS, n, p=[0.3, 0.25, 0.25, 0.2])

    logit = (
        -2.75
        - 0.006 * (score - 685)
        + 0.035 * np.clip(640 - score, 0, None)  # risk climbs steeply below 640
        + 2.0 * (dti - 0.28)
        + 1.1 * (dti > 0.45)
        + 0.45 * np.log1p(loan / income * 4)
        + 0.40 * np.minimum(late, 3)
        - 0.035 * np.nan_to_num(employment, nan=2.0)
        + 0.30 * (home == "RENT")
        + 0.55 * (purpose == "small_business")
        + 1.6 * ((dti > 0.38) & (score < 650))  # interactions a linear model cannot see
        + 0.7 * ((age < 25) | (age > 68))
        - 0.6 * ((home == "OWN") & (income > 80_000))
    )
    if concept:
        logit = logit + 3.0 * (purpose == "bnpl_refinance") + 0.8 * (region == "south")
    defaulted = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "annual_income": income,
            "loan_amount": loan,
            "credit_score": score,
            "debt_to_income": dti,
            "employment_years": employment,
            "open_accounts": accounts,
            "late_payments_12m": late,
            "home_ownership": home,
            "loan_purpose": purpose,
            "region": region,
            LABEL: defaulted,
        }
    )


def generate(spec: StreamSpec | None = None) -> pd.DataFrame:
    """The stream from ``spec.start`` to ``spec.end``, one row per application, ordered by time."""
    spec = spec or StreamSpec()
    rng = np.random.default_rng(spec.seed)
    hours = (spec.end - spec.start).total_seconds() / 3600
    n = int(round(hours * spec.rows_per_hour))
    offsets = np.sort(rng.uniform(0, hours * 3600, n))
    ts = pd.to_datetime(spec.start) + pd.to_timedelta(offsets, unit="s")
    drifted = np.zeros(n, dtype=bool) if spec.drift_at is None else np.asarray(ts >= pd.Timestamp(spec.drift_at))
    if spec.concept_until is None:
        parts = [_segment(rng, int((~drifted).sum()), False), _segment(rng, int(drifted.sum()), True)]
    else:
        reverted = np.asarray(ts >= pd.Timestamp(spec.concept_until)) & drifted
        parts = [_segment(rng, int((~drifted).sum()), False), _segment(rng, int((drifted & ~reverted).sum()), True),
                 _segment(rng, int(reverted.sum()), True, concept=False)]
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, TIMESTAMP, ts)
    frame.insert(0, ID, np.arange(1, n + 1, dtype=np.int64))
    as_of = pd.Timestamp(spec.as_of or spec.end)
    delay_hours = np.full(n, float(spec.label_delay_hours))
    if spec.label_delay_spread_hours > 0:  # its own generator: the applications and outcomes stay the same
        delay_hours += np.random.default_rng(spec.seed + 2).exponential(spec.label_delay_spread_hours, n)
    arrived = frame[TIMESTAMP] + pd.to_timedelta(delay_hours, unit="h")
    unknown = arrived > as_of
    frame[LABEL] = frame[LABEL].astype("Int64").mask(unknown)
    frame[LABEL_TIME] = arrived.mask(unknown)
    return frame


def generate_losses(spec: StreamSpec | None = None, noise: float = 300.0) -> pd.DataFrame:
    """The applications of :func:`generate` with the amount lost on each loan as the label instead of
    ``defaulted`` (NULL until it is known, as the default label is): a regression stream. Seeded apart
    from the applications (``spec.seed + 1``) so the two streams can be compared without sharing noise."""
    spec = spec or StreamSpec()
    frame = generate(spec)
    rng = np.random.default_rng(spec.seed + 1)
    drifted = (
        np.zeros(len(frame), dtype=bool)
        if spec.drift_at is None
        else (frame[TIMESTAMP] >= pd.Timestamp(spec.drift_at)).to_numpy()
    )
    score, dti, loan = frame["credit_score"], frame["debt_to_income"], frame["loan_amount"]
    risk = np.clip((700 - score) / 200, 0, None) + 2 * dti + 0.15 * np.minimum(frame["late_payments_12m"], 3)
    loss = loan * 0.2 * risk + 800 * (frame["loan_purpose"] == "small_business")
    # after the drift: refinanced BNPL loans lose a quarter of their amount more, the south region more too
    loss = loss + drifted * (0.25 * loan * (frame["loan_purpose"] == "bnpl_refinance")
                             + 400 * (frame["region"] == "south"))
    loss = (loss + rng.normal(0, noise, len(frame))).clip(lower=0).round(2)
    known = frame[LABEL].notna()
    return frame.drop(columns=[LABEL, LABEL_TIME]).assign(**{LOSS_LABEL: loss.where(known),
                                                            LABEL_TIME: frame[LABEL_TIME]})


def create_table_sql(table: str, label: str = LABEL, label_type: str = "INTEGER") -> str:
    """DDL of the demo source table (labels and their arrival times nullable: they arrive late)."""
    numeric = ",\n  ".join(f"{c} DOUBLE PRECISION" for c in NUMERIC)
    categorical = ",\n  ".join(f"{c} TEXT" for c in CATEGORICAL)
    return (
        f"CREATE TABLE {table} (\n  {ID} BIGINT PRIMARY KEY,\n  {TIMESTAMP} TIMESTAMPTZ NOT NULL,\n"
        f"  {numeric},\n  {categorical},\n  {label} {label_type},\n  {LABEL_TIME} TIMESTAMPTZ\n);\n"
        f"CREATE INDEX {table}_ts_idx ON {table} ({TIMESTAMP});"
    )


def load_into_postgres(dsn: str, table: str, frame: pd.DataFrame, replace: bool = True) -> int:
    """Write the stream into ``table`` (dropped and re-created when ``replace``) with COPY: the credit
    stream (label ``defaulted``) or the loss stream (label ``loss_amount``)."""
    import io

    from psycopg2 import sql

    from .connections import connect

    label, label_type = (LOSS_LABEL, "DOUBLE PRECISION") if LOSS_LABEL in frame.columns else (LABEL, "INTEGER")
    columns = [ID, TIMESTAMP, *NUMERIC, *CATEGORICAL, label, *([LABEL_TIME] if LABEL_TIME in frame.columns else [])]
    buffer = io.StringIO()
    frame[columns].to_csv(buffer, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f%z")
    buffer.seek(0)
    with connect(dsn) as conn, conn.cursor() as cur:
        if replace:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
            cur.execute(create_table_sql(table, label, label_type))
        cur.copy_expert(
            sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL '\\N')").format(
                sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            ),
            buffer,
        )
    return len(frame)
