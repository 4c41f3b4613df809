"""A change freeze through real runs: the window is measured and recorded as frozen, nothing is trained or promoted."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Harness, at


def test_a_frozen_model_is_measured_and_recorded_but_never_trained(harness: Harness, stream,
                                                                   monkeypatch: pytest.MonkeyPatch):
    harness.load(stream)
    monkeypatch.setenv("AIRFLOW_VAR_RETRAINING_FREEZE", "holiday change freeze (CHG-118)")
    dagrun, row = harness.run(at(8, 0))  # no champion yet: it would train a first model
    assert dagrun.state == "success", row
    assert (row["decision"], row["status"], row["execution_attempted"]) == ("frozen", "frozen", False)
    assert row["trigger_reason"].endswith(
        "(frozen by the Airflow Variable retraining_freeze: holiday change freeze (CHG-118); would retrain)")
    states = harness.task_states(dagrun.run_id)
    assert states["collect"] == "skipped" and states["train"] == "skipped"
    assert harness.alias_version("champion") is None
    assert harness.mlflow().search_model_versions(f"name = '{harness.model_name}'") == []

    monkeypatch.delenv("AIRFLOW_VAR_RETRAINING_FREEZE")  # lifted: the next window trains as usual
    dagrun, row = harness.run(at(8, 6))
    assert dagrun.state == "success" and row["decision"] == "retrain" and row["deployed"], row
