"""The post-deploy watch through real runs: a promotion, then windows where the new champion does worse than the
one it replaced, and the automatic rollback through the promotion path, on record and announced as an asset event."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from include.retraining import demo_data
from include.retraining import runtime as rt
from tests.integration.conftest import Harness, at

# A transient change: from 12:00 on March 8 new applicants arrive and buy-now-pay-later refinancing defaults
# far more often; from 18:00 the population stays but the defaults are back to normal. A model retrained on
# 12:00-18:00 learned a pattern that stopped holding.
TRANSIENT = demo_data.StreamSpec(
    start=datetime(2026, 3, 6, tzinfo=timezone.utc),
    end=datetime(2026, 3, 9, 6, tzinfo=timezone.utc),
    drift_at=datetime(2026, 3, 8, 12, tzinfo=timezone.utc),
    concept_until=datetime(2026, 3, 8, 18, tzinfo=timezone.utc),
    rows_per_hour=500,
)


def champion_asset_events(harness: Harness) -> list[dict]:
    """The champion asset's events of this test's model (the DAG was parsed with the bundled model's name, so
    its asset is that model's; the extra names the test's model)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    (name,) = {o.name for t in harness.dag.tasks for o in t.outlets}
    with create_session() as session:
        rows = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.name == name).order_by(AssetEvent.id).all())
        return [dict(e.extra) for e in rows if (e.extra or {}).get("model") == harness.model_name]


def test_a_worse_new_champion_is_rolled_back_by_the_watch(harness: Harness, monkeypatch: pytest.MonkeyPatch):
    # the demo stream's rows are independent draws with no shocks shared by a day, and the test has hours, not
    # days: the watch spans one day in 6-hour checkpoints and resamples hours
    monkeypatch.setenv("RETRAINING_CONFIG", str(harness.configure(**{
        "training.search": {"trials": 0, "folds": 3},
        "watch": {"hours": 24, "looks": 4, "block": "hour", "min_blocks": 3, "min_rows": 200}})))
    harness.load(demo_data.generate(TRANSIENT))

    _, first = harness.run(at(8, 0))
    assert first["status"] == "deployed" and harness.alias_version("champion") == 1, first
    _, second = harness.run(at(8, 18))  # drift and a worse v1: v2 learns the new defaults and passes the gate
    assert second["status"] == "deployed" and harness.alias_version("champion") == 2, second

    dagrun, row = harness.run(at(9, 0))  # the defaults are back to normal: v2 misjudges the new applicants
    assert dagrun.state == "success", row
    assert (row["decision"], row["trigger_type"], row["status"]) == ("rollback", "post_deploy_watch", "rolled_back")
    assert row["deployed"] is True and row["execution_attempted"] is True
    assert (row["champion_version_before"], row["champion_version_after"]) == (2, 1)
    assert row["trigger_reason"].startswith("post-deploy watch of v2") and "significantly worse" in row["trigger_reason"]
    watched = row["trigger_metrics"]["watch"]
    assert watched["status"] == "worse" and watched["look"] == 1 and watched["rows"] >= 1000
    assert watched["new_checkpoints"] == 1 and watched["alpha"] == pytest.approx(0.05 / 4)
    assert watched["block"] == "hour" and watched["blocks"] >= 3 and watched["significance"]["blocks"] >= 3
    metric = watched["metric"]
    assert watched["previous_metrics"][metric] > watched["new_metrics"][metric]
    states = harness.task_states(dagrun.run_id)
    assert states[rt.ROLLBACK] == "success" and states[rt.COLLECT] == "skipped" and states[rt.SKIP] == "skipped"

    # through the promotion path: the ledger, the champion history and the registry agree
    assert harness.alias_version("champion") == 1 and harness.alias_version("previous_champion") == 2
    promotion = harness.query("SELECT * FROM model_promotions WHERE id = %s", (row["promotion_id"],))[0]
    assert (promotion["action"], promotion["state"], promotion["target_version"]) == ("rollback", "completed", 1)
    history = harness.query("SELECT version, action, effective_at FROM model_champion_history "
                            "WHERE registered_name = %s ORDER BY effective_at", (harness.model_name,))
    assert [(h["version"], h["action"]) for h in history] == [(1, "deploy"), (2, "deploy"), (1, "rollback")]
    assert history[-1]["effective_at"] == at(9, 0)

    # every change of champion is an asset event carrying the version that serves now
    extras = champion_asset_events(harness)
    assert [(e["version"], e["action"]) for e in extras] == [(1, "deploy"), (2, "deploy"), (1, "rollback")]
    assert extras[-1]["previous_version"] == 2 and extras[-1]["promotion_id"] == row["promotion_id"]

    # the rollback is not watched in turn, and the next window is judged by the restored champion
    _, after = harness.run(at(9, 6), check_only=True)
    assert after["decision"] == "check_only" and "watch" not in (after["trigger_metrics"] or {})
    assert after["judged_by_version"] == 1
