"""A regression model through the same loop: R2/RMSE columns, residual plots, the gate's regression criteria."""

from __future__ import annotations

import os

import numpy as np
import pytest

from include.retraining import demo_data

from .conftest import Harness, at

pytestmark = pytest.mark.integration


@pytest.fixture
def loss_stream(stream):
    """The expected loss on each loan: a non-linear function of the features, plus noise."""
    rng = np.random.default_rng(3)
    risk = np.clip((700 - stream["credit_score"]) / 200, 0, None) + 2 * stream["debt_to_income"]
    loss = stream["loan_amount"] * 0.2 * risk + 800 * (stream["loan_purpose"] == "small_business")
    noisy = loss + rng.normal(0, 300, len(stream))
    labelled = stream[demo_data.LABEL].notna()
    return stream.drop(columns=[demo_data.LABEL]).assign(expected_loss=noisy.where(labelled))


def test_a_regression_model_is_trained_gated_and_compared_in_r2_and_rmse(harness: Harness, loss_stream):
    harness.load(loss_stream)
    os.environ["RETRAINING_CONFIG"] = str(harness.configure(**{
        "model.task": "regression",
        "columns.label": "expected_loss",
        "gate.primary_metric": "r2",
        "gate.min_absolute": {"r2": 0.5},
        "gate.max_regression": {"r2": 0.02, "rmse": 50.0},
    }))
    dagrun, first = harness.run(at(8, 0))
    assert dagrun.state == "success", first["error"]
    assert first["status"] == "deployed"
    assert 0.5 < first["retraining_r2"] <= 1 and first["retraining_rmse"] > 0
    assert first["retraining_auc"] is None and first["retraining_f1"] is None

    _, second = harness.run(at(8, 6), force_retrain=True)
    # the window was judged as a classifier's is: the RMSE's rise beyond the error profile's expectation, tested,
    # and feeding the accumulated evidence
    perf = second["trigger_metrics"]["performance"]
    excess = perf["excess_error"]
    assert excess["expected_rmse"] > 0 and excess["p_value"] is not None and excess["se"] > 0
    assert perf["error_increase"] == pytest.approx(excess["error_increase"], abs=1e-5)
    assert perf["error_increase_p_value"] == pytest.approx(excess["p_value"], abs=1e-5)
    assert perf["evidence"]["error"]["d"] == pytest.approx(excess["excess"], abs=1e-5)
    assert second["comparison_previous_r2"] is not None and second["comparison_previous_rmse"] is not None
    assert second["improvement_r2_percent"] is not None and second["improvement_rmse_percent"] is not None
    # the percentage is positive when the candidate is better: for RMSE, when it is lower
    rmse_gain = (second["comparison_previous_rmse"] - second["retraining_rmse"]) / second["comparison_previous_rmse"]
    assert second["improvement_rmse_percent"] == pytest.approx(100 * rmse_gain, abs=1e-3)
    criteria = {f"{c['criterion']}:{c['metric']}" for c in second["gate_details"]["criteria"]}
    assert {"absolute:r2", "no_regression:r2", "no_regression:rmse", "improvement:r2", "significance:r2"} <= criteria
    artifacts = {f.path for f in harness.mlflow().list_artifacts(second["candidate_run_id"], "gate")}
    assert {"gate/residuals.png", "gate/predicted_vs_actual.png"} <= artifacts
    # the team's improvement query now has numbers in it for this model
    rows = harness.query(
        "SELECT triggered_at, trigger_type, improvement_r2_percent, improvement_rmse_percent "
        "FROM model_retraining_events WHERE execution_successful = TRUE;"
    )
    assert len(rows) >= 1
