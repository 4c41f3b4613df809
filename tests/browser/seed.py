"""A realistic retraining history, written through the events module as the DAG writes it.

Two models. ``credit_risk`` (DAG ``model_retraining``), nine six-hour windows from 2026-03-08 00:00 UTC:
a first model deployed, quiet windows, data drift in six features that retrained and deployed v2, a
manual retraining the gate rejected (improvement and significance failed), a drift retraining held back
by storm control, a window re-run as a second attempt, and a run still waiting for labels. ``loan_loss``
(DAG ``model_retraining__loan_loss``, a regressor): a first model and a drift retraining whose candidate
regressed. Used by the UI's unit tests, the browser test and ``scripts/retraining_page_screenshot.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from include.retraining.record import champion_history, events
from include.retraining.record.events import RunKey

T0 = datetime(2026, 3, 8, tzinfo=timezone.utc)
WINDOW = timedelta(hours=6)
CREDIT, LOAN = "credit_risk", "loan_loss"
CREDIT_DAG, LOAN_DAG = "model_retraining", "model_retraining__loan_loss"
FEATURES = [  # name, method, threshold, importance
    ("credit_score", "psi", 0.2, 0.21), ("debt_to_income", "psi", 0.2, 0.17), ("income", "psi", 0.2, 0.14),
    ("loan_amount", "psi", 0.2, 0.12), ("utilization", "psi", 0.2, 0.1), ("purpose", "chi2", 0.05, 0.08),
    ("age", "psi", 0.2, 0.06), ("term_months", "chi2", 0.05, 0.05), ("employment_years", "psi", 0.2, 0.03),
    ("num_open_accounts", "psi", 0.2, 0.02), ("delinquencies", "psi", 0.2, 0.02),
]
DRIFTING = ("credit_score", "debt_to_income", "income", "loan_amount", "utilization", "purpose")


@dataclass(frozen=True)
class Seeded:
    """What was written: ids of notable rows (current rows, by run id) for the tests' checks."""

    dsn: str
    ids: dict[str, int]
    report: Path | None


def _drift(level: float, drifting: tuple[str, ...] = DRIFTING) -> dict[str, Any]:
    """A drift verdict in the shape monitoring/drift.py writes; ``level`` 0 (quiet) to 1 (strong drift)."""
    features = []
    for i, (name, method, threshold, importance) in enumerate(FEATURES):
        base = threshold * (0.15 + 0.05 * (i % 3))
        if name in drifting:  # below the threshold for a quiet window, above it from level 0.3
            statistic = base + (threshold * (1.2 + 2.5 * level * (1 - i / 20)) if level >= 0.3 else threshold * level)
        else:
            statistic = base
        features.append({"feature": name, "method": method, "statistic": round(statistic, 4),
                         "threshold": threshold, "drifted": statistic > threshold, "importance": importance,
                         "psi": round(statistic, 4) if method == "psi" else None})
    drifted = [f["feature"] for f in features if f["drifted"]]
    share = sum(f["importance"] for f in features if f["drifted"])
    score = round(min(1.0, share * (0.6 + 0.4 * level)), 4)
    return {"detected": score >= 0.3, "drifted_features": drifted, "drift_score": score, "score_threshold": 0.3,
            "drifted_share": round(share, 4), "share_threshold": 0.3, "features": features}


def _perf(metric: str, current: float, baseline: float, rows: int = 420) -> dict[str, Any]:
    return {"metric": metric, "current": {metric: current}, "baseline": {metric: baseline}, "rows": rows,
            "drop": round(baseline - current, 6), "max_drop": 0.03, "evidence": {"metric": {"n": rows}}}


def _gate(metric: str, candidate: float, champion: float | None, *, improvement_ok: bool = True,
          significance_ok: bool = True, regression_ok: bool = True) -> dict[str, Any]:
    higher = metric != "rmse"
    criteria = [{"criterion": "smoke", "metric": "p99_latency_ms", "slice": "recent", "candidate": 3.1,
                 "champion": None, "threshold": 50.0, "passed": True},
                {"criterion": "absolute", "metric": metric, "slice": "out_of_time", "candidate": candidate,
                 "champion": None, "threshold": 0.7 if higher else 2000.0, "passed": True}]
    reasons = []
    if champion is not None:
        criteria.append({"criterion": "no_regression", "metric": metric, "slice": "out_of_time", "candidate": candidate,
                         "champion": champion, "threshold": champion - 0.02 if higher else champion * 1.05,
                         "passed": regression_ok})
        criteria.append({"criterion": "improvement", "metric": metric, "slice": "out_of_time", "candidate": candidate,
                         "champion": champion, "threshold": champion + 0.005 if higher else champion * 0.99,
                         "passed": improvement_ok})
        criteria.append({"criterion": "significance", "metric": metric, "slice": "out_of_time", "candidate": candidate,
                         "champion": champion, "threshold": 0.0, "passed": significance_ok,
                         "detail": {"method": "bootstrap", "ci_low": -0.031, "ci_high": 0.004}})
        if not regression_ok:
            reasons.append(f"{metric} {candidate:.4f} regresses against the champion's {champion:.4f}")
        if not improvement_ok:
            reasons.append(f"{metric} on the out-of-time rows {candidate:.4f} does not beat the champion's "
                           f"{champion:.4f} by the required margin")
        if not significance_ok:
            reasons.append(f"the {metric} difference is not a significant improvement: its 95% paired-bootstrap "
                           f"interval [-0.0310, 0.0040] on 310 rows does not lie entirely above 0")
    failed = [c for c in criteria if not c["passed"]]
    return {"passed": not failed, "criteria": criteria,
            "reasons": reasons or ["no champion yet: absolute criteria passed" if champion is None else "all criteria passed"],
            "failed": [c["criterion"] + ":" + c["metric"] for c in failed],
            "candidate_metrics": {metric: candidate}, "champion_metrics": None if champion is None else {metric: champion},
            "champion_version": None, "plots": ["gate/roc.png"] * 3}


def _write(dsn: str, model: str, dag_id: str, run_id: str, window_end: datetime, attempt: int = 1,
           **fields: Any) -> None:
    run = RunKey(model, dag_id, run_id)
    number = events.begin_attempt(dsn, run, f"{run_id}:{attempt}")
    assert number == attempt, (run_id, number, attempt)
    events.upsert_event(dsn, run, {"run_type": fields.pop("run_type", "scheduled"), "window_start": window_end - WINDOW,
                                   "window_end": window_end, "data_interval_start": window_end - WINDOW,
                                   "data_interval_end": window_end, "triggered_at": window_end,
                                   "model_type": fields.pop("model_type", "xgboost"), **fields}, attempt=number)


def seed(dsn: str, report_dir: Path | None = None) -> Seeded:
    """Write both models' history into the events database at ``dsn``; a drift report HTML file in
    ``report_dir`` (when given) is the drift retraining's report."""
    report = None
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        report = report_dir / "drift_report.html"
        report.write_text("<!doctype html><title>Drift report</title><h1>Drift report: credit_risk</h1>"
                          "<p>6 of 11 features drifted, carrying 82% of the importance.</p>")
    champion_history.ensure_schema(dsn)  # before any deployment, as in a real deployment (else it seeds itself)
    ids: dict[str, int] = {}
    w = [T0 + WINDOW * (i + 1) for i in range(10)]
    auc = "roc_auc"
    quiet = {"trigger_type": "none", "severity": "low", "decision": "skip", "status": "skipped",
             "execution_successful": True}

    def run_id(i: int) -> str:
        return f"scheduled__{(w[i] - WINDOW).isoformat()}"

    _write(dsn, CREDIT, CREDIT_DAG, "manual__first", w[0], run_type="manual", trigger_type="manual", severity="low",
           decision="retrain", status="deployed", trigger_reason="no champion registered for 'credit_risk' yet: "
           "train a first model", execution_attempted=True, execution_successful=True, champion_version_after=1,
           candidate_version=1, candidate_run_id="a1b2c3d4e5f60718", gate_passed=True, gate_details=_gate(auc, 0.8335, None),
           retraining_auc=0.8335, deployed=True, rows_in_window=2400, labelled_rows=1800, training_rows=5200,
           requested_by="admin")
    for i, (current, level) in ((1, (0.829, 0.0)), (2, (0.826, 0.05))):
        _write(dsn, CREDIT, CREDIT_DAG, run_id(i), w[i], **quiet, trigger_reason="no drift: 0/11 features drifted, "
               "carrying 0% of the importance, drift score 0.00", trigger_metrics={"drift": _drift(level),
               "performance": _perf(auc, current, 0.8335)}, judged_by_version=1, champion_version_before=1,
               champion_version_after=1, rows_in_window=2400, labelled_rows=1750)
    _write(dsn, CREDIT, CREDIT_DAG, run_id(3), w[3], trigger_type="data_drift", severity="critical", decision="retrain",
           status="deployed", trigger_reason="data drift in 6/11 features carrying 82% of the champion's feature "
           "importance, drift score 0.74 (threshold 0.30); performance drop 0.025 on 410 labelled rows",
           trigger_metrics={"drift": _drift(1.0), "performance": _perf(auc, 0.8081, 0.8335)}, judged_by_version=1,
           execution_attempted=True, execution_successful=True, champion_version_before=1, champion_version_after=2,
           candidate_version=2, candidate_run_id="f00dfeed12345678", gate_passed=True,
           gate_details=_gate(auc, 0.8742, 0.8081), retraining_auc=0.8742, comparison_previous_auc=0.8081,
           improvement_auc_percent=8.17, deployed=True, rows_in_window=2400, labelled_rows=1710, training_rows=7400,
           drift_report_uri=str(report) if report else None, drift_report_run_id="d1f7d1f7d1f7d1f7" if report else None)
    _write(dsn, CREDIT, CREDIT_DAG, run_id(4), w[4], **quiet, trigger_reason="no drift: 0/11 features drifted, "
           "carrying 0% of the importance, drift score 0.00", trigger_metrics={"drift": _drift(0.1, ("age",)),
           "performance": _perf(auc, 0.871, 0.8742)}, judged_by_version=2, champion_version_before=2,
           champion_version_after=2)
    _write(dsn, CREDIT, CREDIT_DAG, "manual__simpler", w[5], run_type="manual", trigger_type="manual", severity="low",
           decision="retrain", status="rejected", trigger_reason="retraining forced by the trigger: demo: try a "
           "simpler model", model_type="logistic_regression", trigger_metrics={"drift": _drift(0.0),
           "performance": _perf(auc, 0.8821, 0.8742)}, judged_by_version=2, execution_attempted=True,
           execution_successful=True, champion_version_before=2, champion_version_after=2, candidate_run_id="0badc0de77",
           gate_passed=False, gate_details=_gate(auc, 0.8642, 0.8821, improvement_ok=False, significance_ok=False),
           retraining_auc=0.8642, comparison_previous_auc=0.8821, improvement_auc_percent=-2.03, requested_by="admin")
    _write(dsn, CREDIT, CREDIT_DAG, run_id(6), w[6], trigger_type="data_drift", severity="high", decision="suppressed",
           status="suppressed", trigger_reason="data drift in 4/11 features carrying 64% of the importance; held back "
           "by storm control: 6 h since the last retraining, minimum 24 h", trigger_metrics={
               "drift": _drift(0.6, DRIFTING[:4]), "performance": _perf(auc, 0.862, 0.8742)}, judged_by_version=2,
           champion_version_before=2, champion_version_after=2, execution_successful=True)
    # a window run twice: the second attempt (a cleared run) is the run's current row
    for attempt, reason in ((1, "no drift: 0/11 features drifted"), (2, "no drift: 0/11 features drifted (re-run)")):
        _write(dsn, CREDIT, CREDIT_DAG, run_id(7), w[7], attempt=attempt, **quiet, trigger_reason=reason,
               trigger_metrics={"drift": _drift(0.05), "performance": _perf(auc, 0.869, 0.8742)},
               judged_by_version=2, champion_version_before=2, champion_version_after=2)
    _write(dsn, CREDIT, CREDIT_DAG, run_id(8), w[8], status="waiting_for_data", trigger_metrics={"window": {}})
    for version, previous, i, rid in ((1, None, 0, "manual__first"), (2, 1, 3, run_id(3))):
        champion_history.record(dsn, model_name=CREDIT, registered_name=CREDIT, version=version,
                                previous_version=previous, effective_at=w[i], action="deploy", dag_id=CREDIT_DAG,
                                run_id=rid, attempt=1, reason=None)

    # the regressor: lower RMSE is better, R2 is its gate's primary metric here
    _write(dsn, LOAN, LOAN_DAG, "manual__first", w[0], run_type="manual", trigger_type="manual", severity="low",
           decision="retrain", status="deployed", trigger_reason="no champion registered for 'loan_loss' yet",
           execution_attempted=True, execution_successful=True, champion_version_after=1, candidate_version=1,
           gate_passed=True, gate_details=_gate("r2", 0.9717, None), retraining_r2=0.9717, retraining_rmse=390.6,
           deployed=True, model_type="xgboost")
    _write(dsn, LOAN, LOAN_DAG, run_id(3), w[3], trigger_type="data_drift", severity="critical", decision="retrain",
           status="rejected", trigger_reason="data drift in 6/11 features carrying 100% of the importance",
           trigger_metrics={"drift": _drift(0.9), "performance": _perf("r2", 0.6723, 0.9717)}, judged_by_version=1,
           execution_attempted=True, champion_version_before=1, champion_version_after=1, gate_passed=False,
           gate_details=_gate("r2", 0.61, 0.6723, improvement_ok=False, regression_ok=False, significance_ok=False),
           retraining_r2=0.61, comparison_previous_r2=0.6723, improvement_r2_percent=-9.27)
    champion_history.record(dsn, model_name=LOAN, registered_name=LOAN, version=1, previous_version=None,
                            effective_at=w[0], action="deploy", dag_id=LOAN_DAG, run_id="manual__first", attempt=1,
                            reason=None)

    for model, dag_id, rid in ((CREDIT, CREDIT_DAG, "manual__first"), (CREDIT, CREDIT_DAG, run_id(3)),
                               (CREDIT, CREDIT_DAG, "manual__simpler"), (CREDIT, CREDIT_DAG, run_id(7)),
                               (LOAN, LOAN_DAG, run_id(3))):
        row = events.get_event(dsn, RunKey(model, dag_id, rid))
        assert row is not None
        ids[f"{model}/{rid}"] = int(row["id"])
    return Seeded(dsn=dsn, ids=ids, report=report)


def drift_run_id() -> str:
    return f"scheduled__{(T0 + WINDOW * 3).isoformat()}"
