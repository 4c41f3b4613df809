"""One function per task of the ``model_retraining`` DAG, testable without Airflow.

Each stage takes a :class:`RunInfo` (what the run is: ids, data interval, params) and
the small JSON results of earlier stages, does its work, writes its columns of the
run's row in ``model_retraining_events``, and returns a small JSON-serialisable dict
for XCom. Data frames and models never travel through XCom: they live in the shared
storage location and in MLflow.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from . import faults, storage
from .config import RetrainingConfig, load_config
from .connections import EVENTS_CONN_ID, resolve_dsn
from .record import events

log = logging.getLogger(__name__)

PARAM_OVERRIDES = {"model_type": "model.type", "lookback_hours": "window.lookback_hours"}


@dataclass(frozen=True)
class RunInfo:
    """What a DAG run is, in plain values (built from the Airflow context by ``runtime``)."""

    dag_id: str
    run_id: str
    run_type: str = "manual"
    logical_date: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_after: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    params: Mapping[str, Any] = field(default_factory=dict)
    clear_number: int = 0  # how often the run was cleared (a new attempt each time)
    ti_id: str | None = None  # the running task instance: a new one per try (retry, clear, new run)
    requested_by: str | None = None  # the user who triggered a manual run
    attempt: int | None = None  # set once the first task has begun the attempt
    bounds: tuple[datetime, datetime] | None = None  # the window the first task chose (later tasks reuse it)
    grid: timedelta = timedelta(hours=6)  # the schedule's interval: manual runs without a date align to it
    config_path: str | None = None  # the model's YAML file; None: the fleet's file for dag_id (see fleet.py)

    @property
    def window_end(self) -> datetime:
        """The end of the evaluation window: the chosen window's, else the data interval's (else ``run_after``)."""
        if self.bounds:
            return self.bounds[1]
        return self.data_interval_end or self.run_after

    def window(self, cfg: RetrainingConfig) -> tuple[datetime, datetime]:
        if self.bounds:
            return self.bounds
        end = self.window_end
        return end - timedelta(hours=cfg.window.lookback_hours), end

    def config(self) -> RetrainingConfig:
        """The run's model configuration with the trigger form's overrides. Which model: the one the DAG was
        generated for (``model_retraining__<name>``), else the default model (``$RETRAINING_CONFIG``)."""
        from . import fleet
        from .config import ConfigError

        try:
            file = self.config_path or fleet.config_path_for(self.dag_id)
        except fleet.FleetError as exc:  # a configuration problem: fail at once, recorded on the run's row
            raise ConfigError(str(exc)) from None
        cfg = load_config(file)
        return cfg.with_overrides({path: self.params.get(name) for name, path in PARAM_OVERRIDES.items()})

    def key(self, cfg: RetrainingConfig | None) -> events.RunKey:
        """The run's identity in the events tables: model, DAG and run (models may share the database)."""
        return events.RunKey(cfg.model.name if cfg else "", self.dag_id, self.run_id)

    @property
    def attempt_key(self) -> str:
        return f"clear {self.clear_number}, first task {self.ti_id}"

    @property
    def safe_run_id(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.run_id)

    @property
    def reason(self) -> str | None:
        """The reason typed in the trigger form, cleaned (no NUL or control characters), or None."""
        text = str(self.params.get("reason") or "")
        text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()
        return text[:500] or None

    def run_fields(self, cfg: RetrainingConfig | None) -> dict[str, Any]:
        return {
            "run_type": self.run_type,
            "logical_date": self.logical_date,
            "data_interval_start": self.data_interval_start,
            "data_interval_end": self.data_interval_end,
            "triggered_at": self.run_after,
            "requested_by": self.requested_by if self.run_type == "manual" else None,
        }

    def tags(self) -> dict[str, str]:
        return {"airflow_dag_id": self.dag_id, "airflow_run_id": self.run_id, "airflow_run_type": self.run_type}


def events_dsn(cfg: RetrainingConfig | None) -> str:
    return resolve_dsn(cfg.events.conn_id if cfg else EVENTS_CONN_ID)


def attempt_of(info: RunInfo, cfg: RetrainingConfig | None) -> int:
    """The attempt a task writes to: the one its first task began, else the run's latest (else a new one)."""
    if info.attempt is not None:
        return info.attempt
    dsn = events_dsn(cfg)
    return events.latest_attempt(dsn, info.key(cfg)) or events.begin_attempt(dsn, info.key(cfg), info.attempt_key)


def record(info: RunInfo, cfg: RetrainingConfig | None, fields: Mapping[str, Any]) -> None:
    events.upsert_event(events_dsn(cfg), info.key(cfg), fields, attempt=attempt_of(info, cfg))


class AwaitingApproval(Exception):
    """Automatic promotion is off: the registered challenger waits for a person."""


@contextmanager
def recorded(info: RunInfo, task_id: str, cfg: RetrainingConfig | None = None) -> Iterator[None]:
    """Record any error of the stage on the run's row (then let it propagate)."""
    try:
        yield
    except AwaitingApproval:
        raise
    except Exception as exc:
        message = f"{task_id}: {type(exc).__name__}: {exc}"
        log.error("%s failed: %s", task_id, exc)
        try:
            record(info, cfg, {**info.run_fields(cfg), "status": "failed", "error": message[:4000], "failed_task": task_id})
        except Exception:  # the original error matters more than the bookkeeping one
            log.exception("could not record the failure of %s in %s", task_id, events.TABLE)
        raise


def _config_or_record(info: RunInfo, task_id: str) -> RetrainingConfig:
    with recorded(info, task_id):
        return info.config()


# --- check_drift_and_performance -------------------------------------------------------------

def check(info: RunInfo, task_id: str, now: datetime | None = None) -> dict[str, Any] | None:
    """One poke of the sensor: ``None`` while waiting for labels, else the assessment.

    The first poke of a run's first task begins an *attempt* (see :mod:`.record.events`) and fixes the
    window: from the data interval, or for a manual run without a logical date the latest window
    that holds labelled data. The window is judged by the champion in service at its end.
    """
    from . import point_in_time
    from .monitoring.assessment import assess
    from .release import registry
    from .sources import labels_as_of

    cfg = _config_or_record(info, task_id)
    now = now or datetime.now(timezone.utc)
    dsn = events_dsn(cfg)
    warn_weak_calibration(cfg)
    recovered = recover_interrupted(info, cfg, dsn)
    info = replace(info, attempt=events.begin_attempt(dsn, info.key(cfg), info.attempt_key))
    with recorded(info, task_id, cfg):
        with labels_as_of(now):
            window = choose_window(info, cfg, dsn)
        point_in_time.check_start_date(window.end)
        start, end = window.start, window.end
        with labels_as_of(labels_time(info, cfg, dsn, start, end, now)) as as_of:
            result = assess(cfg, start, end, now, judge=lambda: point_in_time.judging_champion(
                cfg, registry.setup(cfg), dsn, end, info.run_type))
        result.update({"attempt": info.attempt, "window": {**window.as_dict(),
                                                           **({"labels_as_of": as_of.isoformat()} if as_of else {})}})
        if recovered:
            result["recovered"] = recovered
        if result["status"] == "ok":
            with labels_as_of(now):  # live runs only
                watched = post_deploy_watch(info, cfg, dsn, result)
            if watched:
                result["watch"] = watched
            with labels_as_of(now):  # live runs only
                shadowed = shadow_look(info, cfg, dsn, result)
            if shadowed:
                result["shadow"] = shadowed
        fields: dict[str, Any] = {**info.run_fields(cfg), "window_start": start, "window_end": end,
                                  "model_type": cfg.model.type, "attempt_key": info.attempt_key}
        if result["status"] == "waiting":
            record(info, cfg, {**fields, "status": "waiting_for_data", "rows_in_window": result["rows"],
                               "labelled_rows": result["labelled_rows"],
                               "trigger_metrics": {"window": window.as_dict()}})
            return None
        judged = result.get("judge") or {}
        record(
            info,
            cfg,
            {
                **fields,
                "status": "running",
                "rows_in_window": result["rows"],
                "labelled_rows": result["labelled_rows"],
                "trigger_metrics": {k: result.get(k) for k in ("drift", "performance", "estimated", "quality",
                                                                "schema_changes", "rows", "labelled_rows",
                                                                "before_labels", "window", "judge", "recovered",
                                                                "watch", "shadow", "sample")
                                    if k not in ("recovered", "watch", "shadow", "sample") or result.get(k)},
                "data_quality": _quality_summary(result.get("quality")),
                "judged_by_version": judged.get("version"),
                "champion_source": judged.get("source"),
                "champion_version_before": (result.get("champion") or {}).get("version"),
                "champion_version_after": (result.get("champion") or {}).get("version"),
            },
        )
        return result


def labels_time(info: RunInfo, cfg: RetrainingConfig, dsn: str, start: datetime, end: datetime,
                now: datetime) -> datetime | None:
    """The time whose labels the run may use (:func:`.sources.labels_as_of`): a live run's own moment (``now``); a
    backfill, or a replay (a later change of champion overtook the window), the moment a run of the window would
    have decided (:func:`.sources.decision_time`), never after ``now``. None without ``columns.label_time``."""
    from .record import champion_history
    from .sources import decision_time

    if not cfg.columns.label_time:
        return None
    replay = info.run_type == "backfill" or bool(champion_history.changes_from(dsn, cfg.model.registry_name, end))
    return min(now, decision_time(cfg, start, end)) if replay else now


def collect_labels_time(info: RunInfo, cfg: RetrainingConfig) -> datetime | None:
    """The labels the training snapshot may use: those the attempt's check decided with (recorded on its row), so a
    retried or cleared ``collect`` of one attempt takes the same snapshot; else :func:`labels_time` now."""
    if not cfg.columns.label_time:
        return None
    dsn = events_dsn(cfg)
    row = events.get_attempt(dsn, info.key(cfg), attempt_of(info, cfg)) or {}
    recorded_at = ((row.get("trigger_metrics") or {}).get("window") or {}).get("labels_as_of")
    if recorded_at:
        return datetime.fromisoformat(recorded_at)
    return labels_time(info, cfg, dsn, *info.window(cfg), datetime.now(timezone.utc))


def warn_weak_calibration(cfg: RetrainingConfig) -> None:
    """Say in the task log when the configured training history cannot fully calibrate the drift check."""
    from .monitoring.calibration import calibration_outlook

    outlook = calibration_outlook(cfg)
    if outlook["level"] in ("weak", "none") and cfg.drift.threshold_mode == "calibrated":
        log.warning("drift calibration: %s", outlook["sentence"])


def post_deploy_watch(info: RunInfo, cfg: RetrainingConfig, dsn: str, assessment: dict[str, Any]
                      ) -> dict[str, Any] | None:
    """The post-deploy watch's verdict (see :mod:`.release.watch`) for a live run of the current window judged by
    the registry's champion; None for backfills, replays, windows without a sound champion measurement, or when
    no promotion is under watch."""
    from .release import registry, watch

    judge = assessment.get("judge") or {}
    champion = assessment.get("champion") or {}
    if (info.run_type == "backfill" or judge.get("source") != "registry" or judge.get("replay")
            or not champion.get("version") or assessment.get("schema_changes")
            or (assessment.get("quality") or {}).get("blocking")):
        return None
    return watch.observe(cfg, registry.setup(cfg), dsn, int(champion["version"]), info.window_end, info.grid)


def shadow_look(info: RunInfo, cfg: RetrainingConfig, dsn: str, assessment: dict[str, Any]) -> dict[str, Any] | None:
    """This run's look at the challenger in shadow evaluation (see :mod:`.release.shadow`); None for backfills,
    replays, check-only runs, windows without a sound champion measurement, or when no challenger is in shadow."""
    from .release import registry, shadow

    judge = assessment.get("judge") or {}
    champion = assessment.get("champion") or {}
    if (info.run_type == "backfill" or info.params.get("check_only") or judge.get("source") != "registry"
            or judge.get("replay") or not champion.get("version") or assessment.get("schema_changes")
            or (assessment.get("quality") or {}).get("blocking") or not cfg.shadow.enabled):
        return None
    if shadow.active(dsn, cfg.model.registry_name) is None:
        return None
    return shadow.observe(cfg, registry.setup(cfg), dsn, int(champion["version"]), info.window_end, info.key(cfg))


def gate_outcome(verdict: Mapping[str, Any] | None) -> str | None:
    """The gate's outcome: ``promote``, ``reject`` or ``inconclusive`` (not significantly better, not significantly
    worse: the candidate goes to shadow evaluation); None without a verdict."""
    if not verdict:
        return None
    return verdict.get("outcome") or ("promote" if verdict.get("passed") else "reject")


def recover_interrupted(info: RunInfo, cfg: RetrainingConfig, dsn: str) -> dict[str, Any] | None:
    """What earlier runs left unfinished: promotions begun and never completed (finished or reverted now, see
    :func:`.release.promotion.recover`) and MLflow runs left RUNNING by a killed task (marked FAILED).

    Live runs only: a backfill replays history and never changes the registry or the serving app."""
    from .record import promotions
    from .release import promotion, registry

    if info.run_type == "backfill" or info.attempt is not None:
        return None
    with recorded(info, CHECK_RECOVERY, cfg):
        found: dict[str, Any] = {}
        if promotions.unfinished(dsn, cfg.model.registry_name):
            client = registry.setup(cfg)
            found["promotions"] = promotion.recover(cfg, client, dsn, run=info.key(cfg))
        orphans = registry.fail_orphan_runs(cfg, dag_id=info.dag_id, older_than_hours=ORPHAN_RUN_HOURS,
                                            who=f"{info.dag_id} {info.run_id}")
        if orphans:
            found["orphan_mlflow_runs"] = orphans
        return found or None


CHECK_RECOVERY = "check_drift_and_performance (recovery)"
# A training run's task times out after 2 hours (the DAG's execution_timeout); an MLflow run of this DAG still
# RUNNING after this many hours belongs to a task that no longer exists.
ORPHAN_RUN_HOURS = 3.0


def choose_window(info: RunInfo, cfg: RetrainingConfig, dsn: str) -> Any:
    """The attempt's window: kept from an earlier poke of the same attempt, else from the data interval,
    else the latest window holding labelled data: for a manual run without a logical date, one dated off
    the schedule's grid (the trigger form's default date is the moment it was opened), or a run triggered by
    the model's labelled-data asset."""
    from .point_in_time import Window, floor_to_grid, latest_window_with_data

    row = events.get_attempt(dsn, info.key(cfg), info.attempt or 0) or {}
    if row.get("window_end") and row.get("window_start"):
        rule = ((row.get("trigger_metrics") or {}).get("window") or {})
        return Window(row["window_start"], row["window_end"], rule.get("rule", "data_interval"), rule.get("note"))
    end = info.data_interval_end
    if info.run_type == "asset_triggered":  # new labelled rows arrived (window.labels_asset): the latest window
        end = None
    if end is not None and not (info.run_type == "manual" and end != floor_to_grid(end, info.grid)):
        start, end = info.window(cfg)
        return Window(start, end, "data_interval")
    # a manual run without a date, or dated off the schedule's grid (the trigger form fills in the moment it
    # was opened): the latest window with labelled data as of then
    window = latest_window_with_data(cfg, end or info.run_after, info.grid)
    if info.run_type == "asset_triggered":
        window = replace(window, note=f"triggered by new labelled data (the model's labelled-data asset): "
                                      f"{window.note.split(': ', 1)[-1]}")
    elif end is not None:
        window = replace(window, note=f"manual run dated {end:%Y-%m-%d %H:%M} UTC, not the end of a scheduled window: "
                                      f"{window.note.split(': ', 1)[-1]}")
    log.info("%s: window [%s, %s)", window.note, window.start, window.end)
    return window


def _quality_summary(data_quality: dict[str, Any] | None) -> str | None:
    """'ok', the comma-separated issue kinds, or None when no check ran (no champion to compare with)."""
    if data_quality is None:
        return None
    return ",".join(data_quality["kinds"]) or "ok"


# --- decide ---------------------------------------------------------------------------------

def decide(info: RunInfo, task_id: str, assessment: dict[str, Any]) -> dict[str, Any]:
    from . import point_in_time
    from .monitoring.assessment import decide as decide_
    from .release import freeze

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        dsn = events_dsn(cfg)
        judge = assessment.get("judge") or {}
        replay = point_in_time.replay_reason(judge["later_changes"]) \
            if judge.get("replay") and info.run_type != "backfill" else None
        # Under a per-model lock, so that two runs deciding at once see each other's retraining.
        frozen = None if info.run_type == "backfill" else freeze.freeze_reason(cfg)
        with events.model_lock(dsn, cfg.model.name, "decide"):
            history = events.storm_history(dsn, info.key(cfg), info.window_end, cfg.storm.consecutive_windows - 1)
            history["sequential"] = events.sequential_history(
                dsn, info.key(cfg), assessment["window_start"], (assessment.get("champion") or {}).get("version"))
            decision = decide_(
                cfg,
                assessment,
                force=bool(info.params.get("force_retrain")),
                check_only=bool(info.params.get("check_only")),
                run_type=info.run_type,
                manual_reason=info.reason,
                history=history,
                replay=replay,
                frozen=frozen,
            )
            decision["storm_history"] = {k: v for k, v in history.items() if k != "sequential"}
            decision = shadow_decision(cfg, assessment, decision)
            record(info, cfg, {"trigger_type": decision["trigger_type"], "severity": decision["severity"],
                               "confidence": decision["confidence"], "trigger_reason": decision["reason"],
                               "decision": decision["decision"],
                               "execution_attempted": decision["retrain"] or bool(decision.get("rollback"))
                               or bool(decision.get("promote_challenger"))})
        report = drift_report(info, cfg, assessment, decision)
        if report:
            record(info, cfg, {"drift_report_uri": report["uri"], "drift_report_run_id": report["run_id"]})
        decision.update({"attempt": info.attempt, "window_start": assessment["window_start"],
                         "window_end": assessment["window_end"],
                         "champion_version": (assessment.get("champion") or {}).get("version")})
        log.info("decision: %s (%s, severity %s): %s", decision["decision"], decision["trigger_type"],
                 decision["severity"], decision["reason"])
        return decision


SHADOW_OVERRIDES = ("retrain", "skip", "suppressed")  # decisions a shadow promotion takes the place of


def shadow_decision(cfg: RetrainingConfig, assessment: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    """A live run whose shadow look found the challenger significantly better decides ``promote_challenger``
    (before retraining: the challenger is newer and proven on new rows; drift is judged again next window, by the
    new champion). A rollback, a freeze, a check-only run, a backfill or a replay keep their decision, with what
    the shadow would have done in the reason. With ``deploy.auto_promote`` off the challenger waits for a person."""
    looked = assessment.get("shadow") or {}
    if looked.get("status") != "promote":
        return decision
    if decision["decision"] not in SHADOW_OVERRIDES or decision.get("trigger_type") == "manual" \
            or not cfg.deploy.auto_promote:
        why = "" if cfg.deploy.auto_promote else (" (deploy.auto_promote is off: promote it with the model_rollback "
                                                 "DAG, action 'promote')")
        return {**decision, "reason": f"{decision['reason']}; {looked['reason']}{why}"}
    before = decision["decision"]
    evidence = looked.get("evidence") or {}
    return {**decision, "decision": "promote_challenger", "retrain": False, "promote_challenger": True,
            "trigger_type": "shadow_evaluation", "severity": "medium",
            "confidence": round(1 - float(evidence.get("level") or 0.0), 6),
            "signals": ["shadow_evaluation", *(decision.get("signals") or [])],
            "challenger_version": looked["version"], "shadow_id": looked["shadow_id"],
            "reason": f"{looked['reason']} (instead of {before}: {decision['reason']})"}


def drift_report(info: RunInfo, cfg: RetrainingConfig, assessment: dict[str, Any],
                 decision: dict[str, Any]) -> dict[str, str] | None:
    """For a check that found drift (``drift.report``), the HTML report on MLflow: its run id and URI."""
    from .monitoring import drift_report as report_
    from .release import registry

    verdict = assessment.get("drift") or {}
    if not (cfg.drift.report and verdict.get("detected")):
        return None
    champion = assessment.get("champion") or {}
    context = {
        "model": cfg.model.registry_name,
        "champion": f"version {champion.get('version')}",
        "window": f"[{assessment['window_start']}, {assessment['window_end']})",
        "airflow run": f"{info.dag_id} / {info.run_id}",
    }
    html = report_.render_html(verdict, title=f"Drift report: {cfg.model.name}", context=context, decision=decision)
    return registry.log_drift_report(cfg, html, verdict, info.tags(), run_name=f"drift-check-{info.safe_run_id}")


# --- collect / prepare / train ----------------------------------------------------------------

def collect(info: RunInfo, task_id: str) -> dict[str, Any]:
    from .sources import labels_as_of
    from .training.snapshots import collect as collect_

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg), labels_as_of(collect_labels_time(info, cfg)):
        snapshot = collect_(cfg, info.window_end)
        record(info, cfg, {"training_snapshot_uri": snapshot["uri"], "training_snapshot_hash": snapshot["hash"]})
        return snapshot


def prepare(info: RunInfo, task_id: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    from .training.prepare import prepare as prepare_

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        _, end = info.window(cfg)
        out_dir = storage.join(storage.resolve(cfg.storage.uri), cfg.model.name, "runs", info.safe_run_id)
        summary = prepare_(cfg, snapshot["uri"], end, out_dir)
        record(info, cfg, {"training_rows": summary["rows"]["train"]})
        return summary


def train(info: RunInfo, task_id: str, snapshot: dict[str, Any], prepared: dict[str, Any]) -> dict[str, Any]:
    from .release import registry
    from .training.models import train_candidate

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        # one training per DAG at a time (max_active_tis_per_dag=1): a training run still RUNNING is a killed one's
        registry.fail_orphan_runs(cfg, dag_id=info.dag_id, older_than_hours=0.0, who=f"{info.dag_id} {info.run_id}",
                                  kinds=("training",))
        faults.point("train.fit")
        result = train_candidate(cfg, prepared, info.tags(), snapshot)
        record(info, cfg, {"candidate_run_id": result["run_id"], "model_type": result["model_type"]})
        return result


# --- evaluate_gate / register / deploy --------------------------------------------------------

def evaluate_gate(info: RunInfo, task_id: str, prepared: dict[str, Any], trained: dict[str, Any],
                  judged_version: int | None = None) -> dict[str, Any]:
    """Candidate against the champion that judged the window (``judged_version``), out of time."""
    from . import threads
    from .release import gate, registry
    from .training.models import targets

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        client = registry.setup(cfg)
        test = storage.read_parquet(prepared["splits"]["test"])
        y_test = targets(cfg, test, prepared["classes"])
        in_time = storage.read_parquet(prepared["splits"]["test_in_time"]) if "test_in_time" in prepared["splits"] \
            else None
        candidate = registry.load_model(trained["model_uri"], threads.for_config(cfg).threads)
        champ = registry.version_info(client, cfg.model.registry_name, judged_version) if judged_version else None
        champion_model = registry.load_model(champ.uri, threads.for_config(cfg).threads) if champ else None
        trained_until = champion_threshold = None
        if champ:
            meta = registry.load_run_json(champ.run_id, registry.META_ARTIFACT)
            trained_until = meta.get("trained_until") or (meta.get("snapshot") or {}).get("cutoff")
            champion_threshold = meta.get("operating_threshold")  # None: trained before thresholds were stored
        verdict = events.finite(gate.evaluate(
            cfg, candidate, champion_model, test, y_test, champion_trained_until=trained_until,
            in_time=in_time, y_in_time=None if in_time is None else targets(cfg, in_time, prepared["classes"]),
            candidate_threshold=trained.get("operating_threshold"), champion_threshold=champion_threshold))
        verdict["champion_version"] = champ.version if champ else None
        verdict["candidate_run_id"] = trained["run_id"]
        verdict["plots"] = log_gate_review(cfg, client, trained["run_id"], verdict, candidate, champion_model,
                                           test, y_test, prepared["classes"])
        previous = verdict["champion_metrics"] or {}
        record(
            info,
            cfg,
            {
                "gate_passed": verdict["passed"],
                "gate_details": verdict,
                **events.metric_columns("retraining", verdict["candidate_metrics"]),
                **events.metric_columns("comparison_previous", previous),
                **events.improvement_percent(verdict["candidate_metrics"], previous),
            },
        )
        return verdict


def log_gate_review(cfg: RetrainingConfig, client: Any, run_id: str, verdict: dict[str, Any], candidate: Any,
                    champion: Any | None, test: Any, y_test: Any, classes: list[Any]) -> list[str]:
    """Plots a reviewer wants (champion and candidate side by side) and the verdict, on the candidate's run."""
    import tempfile
    from pathlib import Path

    from .release import plots

    x = test[cfg.columns.features]
    if cfg.model.task == "regression":
        figures = plots.regression_figures(y_test, candidate.predict(x), champion.predict(x) if champion else None)
    else:
        figures = plots.classification_figures(y_test, candidate.predict_proba(x),
                                               champion.predict_proba(x) if champion else None, classes)
    with tempfile.TemporaryDirectory() as folder:
        paths = plots.save_figures(figures, folder)
        (Path(folder) / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str))
        client.log_artifacts(run_id, folder, artifact_path="gate")
    client.set_tag(run_id, "gate_passed", str(verdict["passed"]).lower())
    return [f"runs:/{run_id}/gate/{p.name}" for p in paths]


def _register_candidate(info: RunInfo, cfg: RetrainingConfig, client: Any, trained: dict[str, Any],
                        verdict: dict[str, Any], extra_tags: Mapping[str, str]) -> Any:
    """Register the trained candidate (alias ``challenger``) with the tags a reviewer needs; idempotent."""
    from .release import registry

    row = events.get_attempt(events_dsn(cfg), info.key(cfg), attempt_of(info, cfg)) or {}
    primary = next((c for c in verdict.get("criteria", []) if c["criterion"] == "improvement"), None)
    tags = {
        **info.tags(),
        **{k: str(v) for k, v in (trained.get("provenance") or {}).items()},
        "gate_passed": str(bool(verdict.get("passed"))).lower(),
        "gate_outcome": str(gate_outcome(verdict)),
        "gate_reasons": "; ".join(verdict.get("reasons", []))[:500],
        "training_run_id": trained["run_id"],
        "primary_metric": cfg.primary_metric,
        "event_row_id": str(row.get("id")),  # the attempt's row in model_retraining_event_attempts
        "event_attempt": str(row.get("attempt")),
        **extra_tags,
    }
    if primary is not None:
        tags["primary_metric_candidate"] = str(primary["candidate"])
        tags["primary_metric_champion"] = str(primary["champion"])
    version = registry.register(cfg, client, trained["model_uri"], trained["run_id"], tags)
    faults.point("register.after_create")
    return version


def register(info: RunInfo, task_id: str, trained: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """Register a candidate that passed the gate; a challenger in shadow evaluation is replaced by it."""
    from .release import registry, shadow

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        if gate_outcome(verdict) != "promote":
            raise RuntimeError("refusing to register a candidate that did not pass the gate")
        client = registry.setup(cfg)
        version = _register_candidate(info, cfg, client, trained, verdict, {})
        dropped = shadow.replaced(cfg, client, events_dsn(cfg), version.version, info.key(cfg))
        record(info, cfg, {"candidate_version": version.version})
        return {"name": version.name, "version": version.version, "run_id": version.run_id,
                **({"replaced_shadow": dropped} if dropped else {})}


def register_for_shadow(info: RunInfo, task_id: str, trained: dict[str, Any], verdict: dict[str, Any]
                        ) -> dict[str, Any]:
    """The gate could not tell (``inconclusive``): register the candidate as ``challenger``, not deployed, and put
    it in shadow evaluation from the end of the run's window (see :mod:`.release.shadow`)."""
    from .release import registry, shadow

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        if gate_outcome(verdict) != "inconclusive":
            raise RuntimeError(f"refusing to put in shadow a candidate whose gate outcome is {gate_outcome(verdict)!r}"
                               " (only 'inconclusive' goes to shadow evaluation)")
        if info.run_type == "backfill":
            raise RuntimeError("backfill runs never register")
        client = registry.setup(cfg)
        version = _register_candidate(info, cfg, client, trained, verdict, {"shadow": "true"})
        evidence = "; ".join(verdict.get("reasons") or [])
        s = shadow.start(cfg, client, events_dsn(cfg), version=version.version,
                         champion_version=verdict.get("champion_version"), started_at=info.window_end,
                         run=info.key(cfg), attempt=attempt_of(info, cfg),
                         reason=f"the gate's evidence was inconclusive: {evidence}")
        note = (f"not promoted: the gate's evidence was inconclusive ({evidence}); v{version.version} is registered "
                f"as 'challenger' and in shadow evaluation against champion v{s.champion_version} on the labelled "
                f"rows from {s.started_at:%Y-%m-%d %H:%M} UTC")
        record(info, cfg, {"candidate_version": version.version, "promotion_resolution": note[:2000]})
        return {"name": version.name, "version": version.version, "run_id": version.run_id, "shadow_id": s.id,
                "champion_version": s.champion_version, "started_at": s.started_at.isoformat()}


def deploy(info: RunInfo, task_id: str, registered: dict[str, Any], judged_version: int | None = None
           ) -> dict[str, Any]:
    """Promote the registered candidate (alias, export, reload), or leave it awaiting approval.

    The candidate was judged against ``judged_version``; if the champion changed since, it is not promoted.
    The new champion serves from the end of the run's window (the champion history's ``effective_at``)."""
    from .release import freeze, registry
    from .release.promotion import switch_champion

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        if info.run_type == "backfill":
            raise RuntimeError("backfill runs never deploy")
        version = int(registered["version"])
        frozen = freeze.freeze_reason(cfg)
        if frozen:  # frozen after the decision: the candidate stays registered, nothing is promoted
            record(info, cfg, {"status": "awaiting_approval", "promotion_resolution": f"not promoted: {frozen}"})
            raise AwaitingApproval(
                f"{cfg.model.registry_name} v{version} passed the gate and is registered as 'challenger', but "
                f"the model is frozen ({frozen}): promote it with the model_rollback DAG (action 'promote') once "
                "the freeze is lifted"
            )
        if not cfg.deploy.auto_promote:
            record(info, cfg, {"status": "awaiting_approval"})
            raise AwaitingApproval(
                f"{cfg.model.registry_name} v{version} passed the gate and is registered as 'challenger'; "
                "automatic promotion is off (deploy.auto_promote): promote it with the model_rollback DAG "
                "(action 'promote')"
            )
        client = registry.setup(cfg)
        moved = switch_champion(cfg, client, events_dsn(cfg), version,
                                reason=f"{info.dag_id} {info.run_id}: passed the evaluation gate",
                                effective_at=info.window_end, action="deploy", run=info.key(cfg),
                                attempt=attempt_of(info, cfg), expected_champion=judged_version)
        _record_switch(info, cfg, moved, "deploy")
        return {k: v for k, v in moved.items() if k != "resumed"}


def _record_switch(info: RunInfo, cfg: RetrainingConfig, moved: Mapping[str, Any], task: str,
                   candidate_version: int | None = None) -> None:
    """The run's row after a change of champion by ``task`` (deploy, rollback_champion, promote_challenger)."""
    record(info, cfg, {"deployed": True, **({"candidate_version": candidate_version} if candidate_version else {}),
                       "champion_version_before": moved["champion_before"],
                       "champion_version_after": moved["champion_after"], "promotion_id": moved["promotion_id"],
                       **({"promotion_resolution": f"completed by a retry of {task}"} if moved["resumed"] else {})})


def rollback_champion(info: RunInfo, task_id: str, decision: dict[str, Any]) -> dict[str, Any]:
    """The post-deploy watch's rollback: restore the champion the watched promotion replaced, through the same
    recoverable promotion path as a deploy, unless the champion changed since the watch judged it."""
    from .release import registry
    from .release.promotion import switch_champion

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        if info.run_type == "backfill":
            raise RuntimeError("backfill runs never roll back")
        target = int(decision["rollback_to"])
        judged = decision.get("champion_version")
        moved = switch_champion(cfg, registry.setup(cfg), events_dsn(cfg), target,
                                reason=f"{info.dag_id} {info.run_id}: {decision['reason']}"[:2000],
                                effective_at=info.window_end, action="rollback", run=info.key(cfg),
                                attempt=attempt_of(info, cfg), expected_champion=judged)
        _record_switch(info, cfg, moved, "rollback_champion", candidate_version=target)
        log.warning("post-deploy watch: champion v%s -> v%s", moved["champion_before"], moved["champion_after"])
        return {k: v for k, v in moved.items() if k != "resumed"}


def promote_challenger(info: RunInfo, task_id: str, decision: dict[str, Any]) -> dict[str, Any]:
    """The shadow evaluation found the challenger significantly better: make it the champion through the same
    recoverable promotion path as a deploy, unless the champion changed since the look judged it."""
    from .release import registry, shadow
    from .release.promotion import switch_champion

    cfg = _config_or_record(info, task_id)
    with recorded(info, task_id, cfg):
        if info.run_type == "backfill":
            raise RuntimeError("backfill runs never promote")
        dsn = events_dsn(cfg)
        version = int(decision["challenger_version"])
        s = shadow.of_version(dsn, cfg.model.registry_name, version)
        if s is not None and s.state == "dropped":  # ended since the look (e.g. a newer candidate replaced it)
            raise RuntimeError(f"{cfg.model.registry_name} v{version} is no longer in shadow evaluation "
                               f"({s.resolution}): not promoted")
        moved = switch_champion(cfg, registry.setup(cfg), dsn, version,
                                reason=f"{info.dag_id} {info.run_id}: {decision['reason']}"[:2000],
                                effective_at=info.window_end, action="promote", run=info.key(cfg),
                                attempt=attempt_of(info, cfg), expected_champion=decision.get("champion_version"))
        if s is not None:
            shadow.mark_promoted(dsn, s, f"promoted by {info.dag_id} {info.run_id} (promotion #{moved['promotion_id']})")
        _record_switch(info, cfg, moved, "promote_challenger", candidate_version=version)
        log.warning("shadow evaluation: champion v%s -> v%s", moved["champion_before"], moved["champion_after"])
        return {**{k: v for k, v in moved.items() if k != "resumed"}, "action": "shadow_promote"}


# --- finalize --------------------------------------------------------------------------------

FAILED_STATES = {"failed", "upstream_failed"}
FIRST_MODEL_REJECTED = "no champion: first model rejected"


def summarize(
    decision: dict[str, Any] | None,
    verdict: dict[str, Any] | None,
    deployed: dict[str, Any] | None,
    states: Mapping[str, str | None],
    recorded_error: str | None,
    check_task_id: str,
    deploy_task_id: str = "deploy",
    rolled_back: dict[str, Any] | None = None,
    shadowed: dict[str, Any] | None = None,
    promoted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The final fields of the run's row, from what each task left behind. Pure.

    ``shadowed``: what ``register_for_shadow`` registered (an inconclusive gate); ``promoted``: what
    ``promote_challenger`` did (a shadow evaluation's promotion)."""
    failed = sorted(t for t, s in states.items() if s == "failed")
    fields: dict[str, Any] = {"execution_completed_at": datetime.now(timezone.utc)}
    if decision is None:
        if check_task_id in failed and not recorded_error:
            # the sensor ran out of time waiting for labelled rows
            fields.update({"decision": "insufficient_data", "trigger_type": "none", "severity": "low",
                           "status": "insufficient_data", "execution_successful": None,
                           "error": f"{check_task_id}: timed out waiting for labelled data"})
            return {"fields": fields, "failed": failed}
        fields.update({"status": "failed", "decision": "error", "execution_successful": None})
        if failed and not recorded_error:
            fields["error"] = f"task(s) {failed} failed before a decision was made"
            fields["failed_task"] = failed[0]
        return {"fields": fields, "failed": failed}
    kind = decision["decision"]
    if kind == "rollback":  # the post-deploy watch
        if failed:
            fields.update({"status": "failed", "execution_successful": False})
            if not recorded_error:
                fields["error"] = f"task(s) {failed} failed"
                fields["failed_task"] = failed[0]
        elif rolled_back is not None:
            fields.update({"status": "rolled_back", "execution_successful": True, "deployed": True})
        else:
            fields.update({"status": "incomplete", "execution_successful": False})
        return {"fields": fields, "failed": failed}
    if kind == "promote_challenger":  # the shadow evaluation found the challenger significantly better
        if failed:
            fields.update({"status": "failed", "execution_successful": False})
            if not recorded_error:
                fields["error"] = f"task(s) {failed} failed"
                fields["failed_task"] = failed[0]
        elif promoted is not None:
            fields.update({"status": "promoted", "execution_successful": True, "deployed": True})
        else:
            fields.update({"status": "incomplete", "execution_successful": False})
        return {"fields": fields, "failed": failed}
    if kind != "retrain":
        fields.update({"status": {"skip": "skipped"}.get(kind, kind), "execution_successful": None})
        return {"fields": fields, "failed": failed}
    outcome = gate_outcome(verdict)
    reason = decision.get("reason") or ""
    if failed:
        fields.update({"status": "failed", "execution_successful": False})
        if not recorded_error:
            fields["error"] = f"task(s) {failed} failed"
            fields["failed_task"] = failed[0]
    elif outcome == "inconclusive" and verdict is not None:
        if shadowed is not None:
            fields.update({"status": "shadow", "execution_successful": None, "deployed": False,
                           "trigger_reason": f"{reason}; the gate's evidence was inconclusive "
                           f"({'; '.join(verdict.get('reasons') or [])}): v{shadowed['version']} is in shadow "
                           f"evaluation as 'challenger' against champion v{shadowed.get('champion_version')}"})
        else:
            fields.update({"status": "incomplete", "execution_successful": False, "deployed": False})
    elif verdict is not None and outcome == "reject":
        fields.update({"status": "rejected", "execution_successful": False, "deployed": False})
        if verdict.get("champion_version") is None and not verdict.get("champion_metrics"):
            fields["trigger_reason"] = (f"{reason}; {FIRST_MODEL_REJECTED}: "
                                        f"{'; '.join(verdict.get('reasons') or ['the gate rejected it'])}")
    elif deployed is not None:
        fields.update({"status": "deployed", "execution_successful": True, "deployed": True})
    elif verdict is not None and states.get(deploy_task_id) == "skipped":
        fields.update({"status": "awaiting_approval", "execution_successful": None, "deployed": False})
    else:
        fields.update({"status": "incomplete", "execution_successful": False})
    return {"fields": fields, "failed": failed}


def finalize(
    info: RunInfo,
    decision: dict[str, Any] | None,
    verdict: dict[str, Any] | None,
    deployed: dict[str, Any] | None,
    states: Mapping[str, str | None],
    check_task_id: str,
    deploy_task_id: str = "deploy",
    rolled_back: dict[str, Any] | None = None,
    shadowed: dict[str, Any] | None = None,
    promoted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Complete the run's row whatever happened; returns the fields and the failed tasks."""
    try:
        cfg: RetrainingConfig | None = info.config()
    except Exception:
        cfg = None
    dsn = events_dsn(cfg)
    attempt = attempt_of(info, cfg)
    row = events.get_attempt(dsn, info.key(cfg), attempt) or {}
    result = summarize(decision, verdict, deployed, states, row.get("error"), check_task_id, deploy_task_id,
                       rolled_back, shadowed, promoted)
    fields = {**info.run_fields(cfg), **result["fields"]}
    events.upsert_event(dsn, info.key(cfg), fields, attempt=attempt)
    log.info("run %s finished: %s", info.run_id, fields.get("status"))
    return result


# --- model_rollback ---------------------------------------------------------------------------

def switch(info: RunInfo, task_id: str) -> dict[str, Any]:
    """The ``model_rollback`` DAG: roll back to a version (default: ``previous_champion``) or promote a
    waiting challenger (default: ``challenger``). Writes its own row: trigger_type manual."""
    from .errors import DataValidationError
    from .record import promotions
    from .release import freeze, registry
    from .release.promotion import switch_champion

    cfg = _config_or_record(info, task_id)
    action = str(info.params.get("action") or "rollback")
    reason = info.reason or f"manual {action}"
    with recorded(info, task_id, cfg):
        frozen = freeze.freeze_reason(cfg) if action == "promote" else None
        if frozen:
            raise DataValidationError(f"{cfg.model.name} is frozen ({frozen}): no promotion until the freeze is "
                                      "lifted; a rollback is still allowed")
        client = registry.setup(cfg)
        name = cfg.model.registry_name
        champ = registry.version_by_alias(client, name, registry.CHAMPION)
        record(info, cfg, {**info.run_fields(cfg), "trigger_type": "manual", "decision": action,
                           "trigger_reason": reason, "severity": "low", "execution_attempted": True,
                           "status": "running", "champion_version_before": champ.version if champ else None})
        target = info.params.get("target_version")
        begun = promotions.of_run(events_dsn(cfg), info.key(cfg), attempt_of(info, cfg))
        if target is None and begun is not None:
            target = begun.target_version  # a retry: the version this attempt chose (the aliases may have moved since)
        if target is None:
            alias = registry.PREVIOUS if action == "rollback" else registry.CHALLENGER
            found = registry.version_by_alias(client, name, alias)
            if found is None:
                raise DataValidationError(
                    f"{name} has no '{alias}' alias, so there is nothing to {action} to by default; "
                    "give target_version in the trigger form"
                )
            target = found.version
        try:
            client.get_model_version(name, str(int(target)))
        except Exception as exc:
            raise DataValidationError(f"{name} has no version {target} in the registry") from exc
        moved = switch_champion(cfg, client, events_dsn(cfg), int(target), reason=f"{action}: {reason}",
                                effective_at=info.run_after, action=action, run=info.key(cfg),
                                attempt=attempt_of(info, cfg))
        record(info, cfg, {"deployed": True, "candidate_version": int(target),
                           "champion_version_before": moved["champion_before"],
                           "champion_version_after": moved["champion_after"], "promotion_id": moved["promotion_id"],
                           "status": "rolled_back" if action == "rollback" else "promoted",
                           "execution_successful": True, "execution_completed_at": datetime.now(timezone.utc)})
        log.info("%s: champion %s -> v%s", action, moved["champion_before"], moved["champion_after"])
        return {**{k: moved[k] for k in ("champion_before", "champion_after", "previous_champion", "promotion_id")},
                "action": action}
