"""Shadow evaluation's sequential test (known answers, error rate and power over simulated streams) and its state
in PostgreSQL with a real (local) MLflow registry."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from scipy.stats import t as student
from unit_helpers import build_config

from include.retraining.record.events import RunKey
from include.retraining.release import shadow

ALPHA = 0.05


# --- the test's pieces: known answers --------------------------------------------------------------------

def test_spending_functions_spend_nothing_at_zero_and_all_of_alpha_at_the_horizon():
    for kind in ("obrien_fleming", "pocock"):
        assert shadow.spent(0.0, ALPHA, kind) == 0.0
        assert shadow.spent(1.0, ALPHA, kind) == pytest.approx(ALPHA)
        assert shadow.spent(2.0, ALPHA, kind) == pytest.approx(ALPHA)  # beyond the horizon: capped
        values = [shadow.spent(t, ALPHA, kind) for t in np.linspace(0.05, 1, 20)]
        assert all(a < b for a, b in zip(values, values[1:], strict=False))
    # Lan-DeMets O'Brien-Fleming: 2 (1 - Phi(z_{0.975} / sqrt(0.25))) = 2 (1 - Phi(3.92))
    assert shadow.spent(0.25, ALPHA) == pytest.approx(2 * norm.sf(1.959964 / 0.5), rel=1e-4)
    assert shadow.spent(0.25, ALPHA) < 1e-4  # almost nothing early
    assert shadow.spent(0.5, ALPHA, "pocock") == pytest.approx(ALPHA * math.log(1 + (math.e - 1) / 2))
    with pytest.raises(ValueError, match="spending"):
        shadow.spent(0.5, ALPHA, "haybittle")


def test_a_look_tests_at_the_increment_of_spent_alpha_with_students_t():
    result = shadow.look(0.05, 0.01, 11, 1.0, 0.0, alpha=ALPHA)
    critical = student.isf(ALPHA, 10)  # 1.812
    assert result["level"] == pytest.approx(ALPHA) and result["critical"] == pytest.approx(critical)
    assert result["lower"] == pytest.approx(0.05 - critical * 0.01) and result["outcome"] == "promote"
    later = shadow.look(0.05, 0.01, 11, 1.0, 0.75, alpha=ALPHA)
    assert later["level"] == pytest.approx(ALPHA - shadow.spent(0.75, ALPHA))
    assert shadow.look(-0.05, 0.01, 11, 1.0, 0.0, alpha=ALPHA)["outcome"] == "worse"
    assert shadow.look(0.005, 0.01, 11, 1.0, 0.0, alpha=ALPHA)["outcome"] == "continue"
    # significantly above 0 but cannot reach the required gain: futile
    assert shadow.look(0.005, 0.001, 11, 1.0, 0.0, alpha=ALPHA, min_improvement=0.02)["outcome"] == "futile"
    assert shadow.look(0.05, 0.01, 11, 0.5, 0.5, alpha=ALPHA)["outcome"] == "continue"  # nothing new to spend


def test_the_jackknife_over_blocks_is_the_clustered_standard_error():
    """Accuracy is a mean over rows, so with equal blocks the leave-one-block-out jackknife equals the
    standard error of the block means: rows of one block count as one observation, not as many."""
    rng = np.random.default_rng(3)
    blocks = np.repeat(np.arange(8), 50)
    y = rng.integers(0, 2, blocks.size)
    right_champ = rng.random(blocks.size) < 0.7
    right_chall = rng.random(blocks.size) < 0.75
    as_proba = lambda right: np.column_stack([np.where(right == (y == 0), 0.9, 0.1),  # noqa: E731
                                              np.where(right == (y == 1), 0.9, 0.1)])
    ev = shadow.block_evidence(y, as_proba(right_champ), as_proba(right_chall), blocks, "accuracy", "binary")
    diff = right_chall.astype(float) - right_champ.astype(float)
    means = np.array([diff[blocks == b].mean() for b in range(8)])
    assert ev["estimate"] == pytest.approx(diff.mean())
    assert ev["se"] == pytest.approx(means.std(ddof=1) / math.sqrt(8))
    assert (ev["rows"], ev["blocks"], ev["jackknife_blocks"]) == (400, 8, 8)


def test_gain_is_in_the_gates_units():
    assert shadow.gain("roc_auc", 0.70, 0.72) == pytest.approx(0.02)
    assert shadow.gain("rmse", 10.0, 9.0) == pytest.approx(0.1)  # relative: 10 % lower
    assert shadow.gain("mae", 10.0, 11.0) == pytest.approx(-0.1)


# --- the sequential test over simulated streams ------------------------------------------------------------

def _stream(rng: np.random.Generator, days: int, per_day: int, challenger_noise: float):
    """Binary labels and two models' probabilities; days share a shift of the labels and of both scores, and each
    model's quality varies from day to day (the clustering the per-day blocks have to respect)."""
    day = np.repeat(np.arange(days), per_day)
    shift = rng.normal(0, 0.5, days)[day]
    x = rng.normal(0, 1, day.size)
    y = (rng.random(day.size) < 1 / (1 + np.exp(-(1.5 * x + shift)))).astype(int)

    def model(noise: float) -> np.ndarray:
        spread = noise * np.exp(rng.normal(0, 0.3, days))[day]
        score = 1 / (1 + np.exp(-(x + 0.5 * shift + spread * rng.normal(0, 1, day.size))))
        return np.column_stack([1 - score, score])

    return y, model(1.0), model(challenger_noise), day


def _shadow_outcome(rng: np.random.Generator, challenger_noise: float, days: int = 14, per_day: int = 100,
                    every: int = 2) -> str:
    """Looks every ``every`` days until a verdict or the horizon (all rows): promote, worse or none."""
    y, champ, chall, day = _stream(rng, days, per_day, challenger_noise)
    t_previous = 0.0
    for end in range(every, days + 1, every):
        seen = day < end
        ev = shadow.block_evidence(y[seen], champ[seen], chall[seen], day[seen], "roc_auc", "binary")
        result = shadow.look(ev["estimate"], ev["se"], ev["jackknife_blocks"], seen.sum() / y.size, t_previous,
                             alpha=ALPHA)
        t_previous = result["t"]
        if result["outcome"] != "continue":
            return result["outcome"]
    return "none"


def test_with_no_difference_a_challenger_is_promoted_in_at_most_alpha_of_streams():
    rng = np.random.default_rng(20261207)
    outcomes = [_shadow_outcome(rng, 1.0) for _ in range(200)]
    false_promotions = outcomes.count("promote") / len(outcomes)
    false_drops = outcomes.count("worse") / len(outcomes)
    assert false_promotions <= ALPHA, outcomes
    assert false_drops <= ALPHA, outcomes


def test_a_truly_better_challenger_is_promoted_in_most_streams_and_never_dropped():
    rng = np.random.default_rng(11)
    outcomes = [_shadow_outcome(rng, 0.5) for _ in range(120)]
    assert outcomes.count("promote") / len(outcomes) >= 0.8, outcomes
    assert outcomes.count("worse") == 0


# --- the state: PostgreSQL and a local MLflow registry -----------------------------------------------------

@pytest.fixture
def registry(tmp_path: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("unit_model")
    for _ in range(3):
        client.create_model_version("unit_model", source=str(tmp_path), run_id=None)
    return client


RUN = RunKey("unit_model", "model_retraining", "scheduled__2026-03-08T18:00:00+00:00")
T0 = datetime(2026, 3, 8, 18, tzinfo=timezone.utc)


def test_a_newer_candidate_replaces_the_challenger_in_shadow(pg_dsn: str, registry) -> None:
    cfg = build_config()
    registry.set_registered_model_alias("unit_model", "challenger", "2")
    first = shadow.start(cfg, registry, pg_dsn, version=2, champion_version=1, started_at=T0, run=RUN, attempt=1,
                         reason="the gate's evidence was inconclusive")
    again = shadow.start(cfg, registry, pg_dsn, version=2, champion_version=1, started_at=T0, run=RUN, attempt=1,
                         reason="a retry")
    assert again.id == first.id and again.reason == "the gate's evidence was inconclusive"  # a retry: the same row
    assert shadow.active(pg_dsn, "unit_model").version == 2

    registry.set_registered_model_alias("unit_model", "challenger", "3")  # registry.register moves the alias first
    assert shadow.replaced(cfg, registry, pg_dsn, 3, RunKey("unit_model", "model_retraining", "later")) == [2]
    assert shadow.active(pg_dsn, "unit_model") is None
    old = shadow.of_version(pg_dsn, "unit_model", 2)
    assert old.state == "dropped" and old.resolution.startswith("replaced by a newer candidate, v3")
    assert int(registry.get_model_version_by_alias("unit_model", "challenger").version) == 3  # not the dropped one's


def test_dropping_removes_the_alias_only_while_it_names_the_dropped_version(pg_dsn: str, registry) -> None:
    cfg = build_config()
    registry.set_registered_model_alias("unit_model", "challenger", "2")
    s = shadow.start(cfg, registry, pg_dsn, version=2, champion_version=1, started_at=T0, run=RUN, attempt=1,
                     reason="inconclusive")
    assert shadow.drop(pg_dsn, registry, s, "significantly worse")
    assert not shadow.drop(pg_dsn, registry, s, "again")  # resolved once: the first reason stays
    assert shadow.of_version(pg_dsn, "unit_model", 2).resolution == "significantly worse"
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        registry.get_model_version_by_alias("unit_model", "challenger")


def test_a_look_drops_a_challenger_whose_champion_changed(pg_dsn: str, registry) -> None:
    cfg = build_config()
    registry.set_registered_model_alias("unit_model", "challenger", "2")
    shadow.start(cfg, registry, pg_dsn, version=2, champion_version=1, started_at=T0, run=RUN, attempt=1,
                 reason="inconclusive")
    looked = shadow.observe(cfg, registry, pg_dsn, 3, datetime(2026, 3, 9, tzinfo=timezone.utc), RUN)
    assert looked["status"] == "dropped" and "champion changed from v1 to v3" in looked["reason"]
    # a retry of the same check reports the same end; another run finds nothing to look at
    again = shadow.observe(cfg, registry, pg_dsn, 3, datetime(2026, 3, 9, tzinfo=timezone.utc), RUN)
    assert again["status"] == "dropped" and "champion changed from v1 to v3" in again["reason"]
    other = RunKey("unit_model", "model_retraining", "scheduled__2026-03-09T00:00:00+00:00")
    assert shadow.observe(cfg, registry, pg_dsn, 3, datetime(2026, 3, 9, 6, tzinfo=timezone.utc), other) is None


def test_a_look_at_a_challenger_promoted_by_hand_marks_it_promoted(pg_dsn: str, registry) -> None:
    cfg = build_config()
    registry.set_registered_model_alias("unit_model", "challenger", "2")
    shadow.start(cfg, registry, pg_dsn, version=2, champion_version=1, started_at=T0, run=RUN, attempt=1,
                 reason="inconclusive")
    looked = shadow.observe(cfg, registry, pg_dsn, 2, datetime(2026, 3, 9, tzinfo=timezone.utc), RUN)
    assert looked["status"] == "promoted"
    assert shadow.of_version(pg_dsn, "unit_model", 2).state == "promoted"
