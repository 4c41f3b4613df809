"""Change freezes: config, Airflow Variables (all models / one model), prerequisite checks, and the decision."""

from __future__ import annotations

from typing import Any

import pytest
from test_decide import CFG, assessment
from unit_helpers import build_config

from include.retraining.config import ConfigError, load_config
from include.retraining.monitoring.assessment import decide
from include.retraining.release import freeze

CALLS: list[str] = []


def change_window_closed(cfg: Any) -> str | None:
    CALLS.append(cfg.model.name)
    return "release window closed until Monday"


def always_fine(cfg: Any) -> str | None:
    return None


def broken_check(cfg: Any) -> str | None:
    raise ConnectionError("incident tracker unreachable")


@pytest.fixture(autouse=True)
def no_freeze_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RETRAINING_FREEZE", "RETRAINING_FREEZE__UNIT_MODEL", "RETRAINING_OPEN_INCIDENT"):
        monkeypatch.delenv(f"AIRFLOW_VAR_{key}", raising=False)


def test_not_frozen_by_default() -> None:
    assert freeze.freeze_reason(build_config()) is None
    assert freeze.check(build_config()) == {"frozen": False, "reason": None}


def test_frozen_by_the_config_with_its_reason() -> None:
    cfg = build_config(freeze={"frozen": True, "reason": "quarter close"})
    assert freeze.freeze_reason(cfg) == "frozen by the model configuration (freeze.frozen): quarter close"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("RETRAINING_FREEZE", "true", "frozen by the Airflow Variable retraining_freeze"),
    ("RETRAINING_FREEZE", "holiday change freeze", "frozen by the Airflow Variable retraining_freeze: holiday "
                                                    "change freeze"),
    ("RETRAINING_FREEZE__UNIT_MODEL", "1", "frozen by the Airflow Variable retraining_freeze__unit_model"),
    ("RETRAINING_FREEZE", "false", None),
    ("RETRAINING_FREEZE", "", None),
    ("RETRAINING_FREEZE__OTHER_MODEL", "yes", None),
])
def test_frozen_by_a_variable_for_all_models_or_one(monkeypatch: pytest.MonkeyPatch, key: str, value: str,
                                                   expected: str | None) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{key}", value)
    assert freeze.freeze_reason(build_config()) == expected


def test_prerequisites_are_called_in_order_and_a_broken_one_freezes(monkeypatch: pytest.MonkeyPatch) -> None:
    here = f"{__name__}"
    cfg = build_config(freeze={"prerequisites": [f"{here}:always_fine", f"{here}:change_window_closed"]})
    CALLS.clear()
    assert freeze.freeze_reason(cfg) == (f"prerequisite {here}:change_window_closed not met: release window "
                                         "closed until Monday")
    assert CALLS == ["unit_model"]
    broken = build_config(freeze={"prerequisites": [f"{here}:broken_check"]})
    assert "could not be checked (ConnectionError: incident tracker unreachable)" in freeze.freeze_reason(broken)
    missing = build_config(freeze={"prerequisites": ["no_such_module_here:check"]})
    assert "cannot import 'no_such_module_here:check'" in freeze.freeze_reason(missing)


def test_the_open_incident_prerequisite_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = build_config(freeze={"prerequisites": ["include.retraining.release.freeze:no_open_incident"]})
    assert freeze.freeze_reason(cfg) is None
    monkeypatch.setenv("AIRFLOW_VAR_RETRAINING_OPEN_INCIDENT", "INC-4211 scoring latency")
    assert freeze.freeze_reason(cfg).endswith("an incident is open (Variable retraining_open_incident): INC-4211 "
                                              "scoring latency")


def test_a_prerequisite_that_is_not_module_colon_function_is_a_config_error(tmp_path: Any) -> None:
    import yaml
    from unit_helpers import raw_config

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw_config(freeze={"prerequisites": ["not a callable"]})))
    with pytest.raises(ConfigError, match="freeze.prerequisites.*'module:function'|is not 'module:function'"):
        load_config(path)


def test_a_frozen_live_run_records_frozen_with_what_it_would_have_done() -> None:
    drifted = decide(CFG, assessment(drifted={"a": 0.3}, drop=0.06), frozen="frozen by the Airflow Variable x")
    assert drifted["decision"] == "frozen" and drifted["retrain"] is False and drifted["would_retrain"] is True
    assert drifted["reason"].endswith("(frozen by the Airflow Variable x; would retrain)")
    assert drifted["trigger_type"] != "none"  # what was measured stays on record
    quiet = decide(CFG, assessment(), frozen="frozen")
    assert quiet["decision"] == "frozen" and quiet["reason"].endswith("would skip)")
    forced = decide(CFG, assessment(), force=True, frozen="frozen")
    assert forced["decision"] == "frozen" and forced["retrain"] is False
    # a backfill records check_only as always: a freeze changes nothing for a replay
    assert decide(CFG, assessment(drifted={"a": 0.3}), run_type="backfill", frozen="frozen")["decision"] == \
        "check_only"
