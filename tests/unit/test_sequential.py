"""The accumulated-evidence test for concept drift (monitoring/sequential.py), on simulated error counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from include.retraining.monitoring import sequential

BASE_RATE, BASE_ROWS, WINDOW_ROWS = 0.15, 1500, 3000
MIN_EFFECT = 0.25 * 0.15 * BASE_RATE  # a quarter of the one-window rule's 15 % relative increase
BURN_IN = 4


def _stream(rng: np.random.Generator, rates: list[float]) -> list[dict[str, float] | None]:
    """Each window's error-rate evidence against a baseline measured on BASE_ROWS rows of the true rate."""
    base = rng.binomial(BASE_ROWS, BASE_RATE) / BASE_ROWS
    out = []
    for rate in rates:
        now = rng.binomial(WINDOW_ROWS, rate) / WINDOW_ROWS
        binomial = base * (1 - base)
        out.append({"error": sequential.evidence(now - base, math.sqrt(binomial / WINDOW_ROWS),
                                                 math.sqrt(binomial / BASE_ROWS), MIN_EFFECT)})
    return out


def _alarms(stream: list[dict[str, float] | None], windows: int = 3, alpha: float = 0.01) -> list[bool]:
    return [sequential.test(stream[:i], stream[i], windows, alpha, BURN_IN)["alarm"] for i in range(len(stream))]


def test_quiet_streams_alarm_at_most_alpha_per_window() -> None:
    rng = np.random.default_rng(1)
    alarms = [a for _ in range(400) for a in _alarms(_stream(rng, [BASE_RATE] * 20))]
    rate = sum(alarms) / len(alarms)
    # per window the test's size is alpha = 1 % (Bonferroni over 3 looks is conservative); 8000 windows
    assert rate <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / len(alarms)), rate


def test_baseline_luck_does_not_accumulate() -> None:
    """A baseline that was lucky (error 1.5 of its standard errors below the truth) must not make every
    later window of a quiet stream look worse and worse: its error counts once per look."""
    rng = np.random.default_rng(2)
    se0 = math.sqrt(BASE_RATE * (1 - BASE_RATE) / BASE_ROWS)
    base = BASE_RATE - 1.5 * se0
    alarms = []
    for _ in range(200):
        stream = []
        for _ in range(20):
            now = rng.binomial(WINDOW_ROWS, BASE_RATE) / WINDOW_ROWS
            b = base * (1 - base)
            stream.append({"error": sequential.evidence(now - base, math.sqrt(b / WINDOW_ROWS), math.sqrt(b / BASE_ROWS),
                                                        MIN_EFFECT)})
        alarms.extend(_alarms(stream))
    assert sum(alarms) / len(alarms) < 0.05


def test_a_drop_one_window_rarely_shows_is_caught_within_two() -> None:
    """Error rate 0.15 -> 0.18 (+20 %) from window 5 on (windows 0-3 are the burn-in). The one-window rule
    (above +15 % and a two-proportion test against the 1500-row holdout at p < 0.01, see
    assessment.error_rate_p_value) sees it within two windows in 215 of 300 streams; the accumulated test,
    whose level also holds the burn-in's 12 000 rows, in 283 (seed 3)."""
    from include.retraining.monitoring.assessment import error_rate_p_value

    rng = np.random.default_rng(3)
    ours = single = 0
    streams = 300
    for _ in range(streams):
        base = rng.binomial(BASE_ROWS, BASE_RATE) / BASE_ROWS
        rates = [rng.binomial(WINDOW_ROWS, r) / WINDOW_ROWS for r in [BASE_RATE] * 5 + [0.18] * 2]
        b = base * (1 - base)
        stream = [{"error": sequential.evidence(now - base, math.sqrt(b / WINDOW_ROWS), math.sqrt(b / BASE_ROWS),
                                                MIN_EFFECT)} for now in rates]
        ours += any(_alarms(stream)[5:7])
        single += any(now > base * 1.15 and error_rate_p_value(base, BASE_ROWS, now, WINDOW_ROWS) < 0.01
                      for now in rates[5:7])
    print(f"caught within two windows: accumulated {ours}/{streams}, one-window rule {single}/{streams}")
    assert ours / streams >= 0.9, (ours, single)
    assert single / streams < ours / streams - 0.05, (ours, single)


def test_the_burn_in_corrects_a_lucky_holdout() -> None:
    """A holdout 2 standard errors luckier than the truth makes a quiet stream look worse than at deployment;
    once the burn-in windows join the level, the same windows look as they are (the holdout's luck counts
    once per look either way, so neither alarms)."""
    se0 = math.sqrt(BASE_RATE * (1 - BASE_RATE) / BASE_ROWS)
    quiet = {"error": sequential.evidence(2 * se0, math.sqrt(0.1275 / WINDOW_ROWS), se0, MIN_EFFECT)}
    without = sequential.test([quiet] * 6, quiet, 3, 0.01, burn_in=0)
    with_burn_in = sequential.test([quiet] * 6, quiet, 3, 0.01, burn_in=4)
    assert with_burn_in["burn_in_windows"] == 4
    assert with_burn_in["error"]["max_z"] < 0 < without["error"]["max_z"]
    assert not without["alarm"] and not with_burn_in["alarm"]


def test_evidence_restarts_after_an_alarm() -> None:
    strong = {"error": sequential.evidence(0.05, 0.006, 0.009, MIN_EFFECT)}
    quiet = {"error": sequential.evidence(0.0, 0.006, 0.009, MIN_EFFECT)}
    first = sequential.test([], strong, 3, 0.01)
    assert first["alarm"] and first["error"]["pooled_windows"] == 1
    # the window after an alarm pools nothing from before it
    after = sequential.test([strong], quiet, 3, 0.01)
    assert not after["alarm"] and after["pooled_since"] == 0 and after["error"]["z"] == [
        pytest.approx((0.0 - MIN_EFFECT) / math.hypot(0.006, 0.009), abs=1e-3)]


def test_missing_evidence_is_no_evidence() -> None:
    assert sequential.evidence(None, 0.01, 0.01, 0.0) is None
    assert sequential.evidence(0.1, 0.0, 0.01, 0.0) is None
    assert sequential.test([None, {}], {"metric": sequential.evidence(0.0, 0.01, 0.01, 0.0)}, 3, 0.01)["alarm"] is False
