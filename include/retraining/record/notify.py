"""Notifications of what a run did, through Airflow's notifier mechanism.

:class:`RetrainingNotifier` is the ``on_success_callback`` / ``on_failure_callback`` of the task that
closes a run (``record_outcome`` of ``model_retraining``, ``switch_champion`` of ``model_rollback``).
Task callbacks run in the task's own process once the task has finished (also under ``dag.test()``),
so the run's row in ``model_retraining_events`` is complete when the notifier reads it. From that row
it tells what happened (:func:`classify`: a promotion, a gate rejection, a failure, a suppressed
retraining, a rollback, ...), writes the message (:func:`build`: the row's reason or error, champion
before and after, the gate's failing criteria, links to the row, the Airflow run, the MLflow run and
the drift report), and sends it: always as a log line of the task, and through the Airflow connection
``notify.conn_id`` when one is configured (:func:`send`: a JSON webhook, a Slack incoming webhook, or
a mail over SMTP). Only the standard library is used for sending.

A notification never changes a run's outcome: any error while building or sending one is logged as a
warning (with the message, so it is not lost) and the task keeps its state. Messages pass through the
project's redaction before they leave the process, so a DSN or URI with a password never reaches a
channel. The module imports nothing heavy at module level: the DAG files import it at parse time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

PROMOTION = "promotion"
GATE_REJECTION = "gate_rejection"
FAILURE = "failure"
SUPPRESSED = "suppressed"
ROLLBACK = "rollback"
MANUAL_PROMOTION = "manual_promotion"
AWAITING_APPROVAL = "awaiting_approval"
SKIPPED = "skipped"
FIRST_MODEL_REJECTED = "first_model_rejected"  # no champion yet and the first model failed the gate's floors
SHADOW_PROMOTION = "shadow_promotion"  # a challenger promoted by its shadow evaluation
SHADOW = "shadow"  # the gate could not tell: the candidate is in shadow evaluation (off by default)
# kinds that call for a person's attention are logged at WARNING, the others at INFO; a model left without any
# champion is logged at ERROR (it serves nothing until a person acts)
WARNING_KINDS = {FAILURE, GATE_REJECTION, SUPPRESSED, ROLLBACK}
ERROR_KINDS = {FIRST_MODEL_REJECTED}
SKIP_DECISIONS = {"skip", "check_only", "insufficient_data", "data_quality"}

WEBHOOK_TYPES = {"http", "https"}
SLACK_TYPES = {"slack", "slackwebhook"}
MAIL_TYPES = {"smtp", "email"}
SLACK_DEFAULT_BASE = "https://hooks.slack.com/services"


class NotificationError(RuntimeError):
    """A notification could not be sent (bad connection settings or a channel that refused it)."""


# --- what happened ---------------------------------------------------------------------------------

def classify(row: Mapping[str, Any] | None, failed: bool = False) -> str | None:
    """The kind of notification a finished run's row calls for, or None when there is nothing to say.

    ``failed`` is True when the closing task itself failed (it fails when any task of the run failed),
    which is a failure whatever the row says, as the row may not have been completed."""
    if failed:
        return FAILURE
    if not row:
        return None
    status, decision = row.get("status"), row.get("decision")
    if status in ("failed", "incomplete"):
        return FAILURE
    if status == "rolled_back" or decision == "rollback":  # model_rollback, or a rollback after a bad deploy
        return ROLLBACK
    if status == "promoted" and decision == "promote_challenger":  # the shadow evaluation's promotion
        return SHADOW_PROMOTION
    if status == "promoted":  # model_rollback's "promote": a person approved a waiting challenger
        return MANUAL_PROMOTION
    if status == "deployed":
        return PROMOTION
    if status == "rejected":
        gate = row.get("gate_details") or {}
        if row.get("champion_version_before") is None and "champion_version" in gate \
                and gate["champion_version"] is None and not gate.get("champion_metrics"):
            return FIRST_MODEL_REJECTED
        return GATE_REJECTION
    if status == "shadow":
        return SHADOW
    if decision == "suppressed":
        return SUPPRESSED
    if status == "awaiting_approval":
        return AWAITING_APPROVAL
    if decision in SKIP_DECISIONS:
        return SKIPPED
    return None


@dataclass(frozen=True)
class Notification:
    """One message, ready for any channel: a title, plain-text lines, key facts and links."""

    kind: str
    title: str
    lines: list[str]
    facts: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        body = [self.title, "", *self.lines]
        if self.links:
            body += ["", "links:", *(f"  {name}: {target}" for name, target in self.links.items())]
        return "\n".join(body)

    def payload(self) -> dict[str, Any]:
        """The generic webhook's JSON body."""
        return {"kind": self.kind, "title": self.title, "text": self.text, **self.facts, "links": dict(self.links)}

    def slack_payload(self) -> dict[str, Any]:
        """A Slack incoming-webhook body: ``text`` (the fallback and the notification) and Block Kit blocks."""
        links = " · ".join(
            f"<{target}|{name}>" if target.startswith(("http://", "https://")) else f"{name}: `{target}`"
            for name, target in self.links.items()
        )
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(self.title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(self.lines), 3000)}},
        ]
        if links:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(links, 3000)}]})
        return {"text": _clip(self.text, 3500), "blocks": blocks}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _version(value: Any) -> str:
    return f"v{value}" if value is not None else "none"


def _headline(kind: str, model: str, row: Mapping[str, Any]) -> str:
    before, after = row.get("champion_version_before"), row.get("champion_version_after")
    candidate = row.get("candidate_version")
    was = f" (was {_version(before)})" if before is not None else " (first champion)"
    if kind == PROMOTION:
        return f"{model}: {_version(after)} promoted to champion{was}"
    if kind == MANUAL_PROMOTION:
        return f"{model}: {_version(after)} promoted to champion by hand{was}"
    if kind == ROLLBACK:
        by = " by the post-deploy watch" if row.get("trigger_type") == "post_deploy_watch" else ""
        return f"{model}: rolled back to {_version(after)}{by}{was}"
    if kind == GATE_REJECTION:
        return f"{model}: candidate rejected by the evaluation gate, champion stays {_version(before)}"
    if kind == FIRST_MODEL_REJECTED:
        return (f"{model}: NO CHAMPION: the first model was rejected by the gate's absolute floors; nothing serves "
                "until a model passes (fix the data or the floors, then trigger a run)")
    if kind == SHADOW_PROMOTION:
        return f"{model}: {_version(after)} promoted to champion by its shadow evaluation{was}"
    if kind == SHADOW:
        return (f"{model}: the gate could not tell; {_version(candidate)} is in shadow evaluation beside "
                f"champion {_version(before)}")
    if kind == SUPPRESSED:
        return f"{model}: retraining suppressed by storm control"
    if kind == AWAITING_APPROVAL:
        return f"{model}: {_version(candidate)} passed the gate and awaits approval (model_rollback, action promote)"
    if kind == FAILURE:
        where = f" in {row['failed_task']}" if row.get("failed_task") else ""
        return f"{model}: run failed{where}"
    return f"{model}: no retraining ({row.get('decision') or row.get('status')})"


def build(
    kind: str,
    row: Mapping[str, Any] | None,
    *,
    model: str,
    dag_id: str,
    run_id: str,
    current_row_id: int | None = None,
    tracking_uri: str | None = None,
    airflow_base_url: str | None = None,
    error: str | None = None,
    problems: Sequence[str] = (),
) -> Notification:
    """The message for ``kind`` from the run's row (the attempt this run wrote). Pure.

    ``error`` is the closing task's exception, used when the row holds none (e.g. the row itself could
    not be written); ``problems`` are what went wrong while gathering the facts (said, not hidden)."""
    row = dict(row or {})
    decision, status = row.get("decision"), row.get("status")
    lines = [f"run: {dag_id} / {run_id}" + (f" (attempt {row['attempt']})" if row.get("attempt") else "")]
    if row.get("window_start") and row.get("window_end"):
        lines.append(f"window: [{row['window_start']}, {row['window_end']})")
    if decision or status:
        trigger = ", ".join(p for p in (
            f"trigger {row['trigger_type']}" if row.get("trigger_type") else "",
            f"severity {row['severity']}" if row.get("severity") else "",
        ) if p)
        lines.append(f"decision: {decision or 'none'}" + (f" ({trigger})" if trigger else "") + f"; status: {status}")
    if row.get("trigger_reason"):
        lines.append(f"reason: {row['trigger_reason']}")
    calibration = weak_calibration(row)
    if calibration:
        lines.append(f"warning: {calibration}")
    if row.get("requested_by"):
        lines.append(f"requested by: {row['requested_by']}")
    recorded_error = row.get("error")
    if recorded_error or error:
        where = f" (task {row['failed_task']})" if row.get("failed_task") else ""
        lines.append(f"error{where}: {recorded_error or error}")
    before, after = row.get("champion_version_before"), row.get("champion_version_after")
    if before is not None or after is not None:
        lines.append(f"champion: {_version(before)} -> {_version(after)}")
    if row.get("candidate_version") is not None or row.get("candidate_run_id"):
        lines.append("candidate: " + ", ".join(p for p in (
            _version(row["candidate_version"]) if row.get("candidate_version") is not None else "not registered",
            f"model type {row['model_type']}" if row.get("model_type") else "",
            f"MLflow run {row['candidate_run_id']}" if row.get("candidate_run_id") else "",
        ) if p))
    gate = row.get("gate_details") or {}
    gate_failed = list(gate.get("failed") or [])
    if row.get("gate_passed") is not None:
        if gate_failed:
            lines.append(f"gate: failed on {', '.join(gate_failed)}")
            lines += [f"  - {reason}" for reason in gate.get("reasons") or []]
        else:
            lines.append("gate: passed")
    lines += [f"note: {p}" for p in problems]

    links: dict[str, str] = {}
    if current_row_id is not None:
        links["events row"] = f"SELECT * FROM model_retraining_events WHERE id = {current_row_id};"
    if airflow_base_url:
        from urllib.parse import quote

        links["Airflow run"] = f"{airflow_base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
    if row.get("candidate_run_id"):
        links["MLflow run"] = mlflow_run_link(tracking_uri, row["candidate_run_id"])
    if row.get("drift_report_uri"):
        links["drift report"] = row["drift_report_uri"]
        if row.get("drift_report_run_id") and _is_http(tracking_uri):
            links["drift report run"] = mlflow_run_link(tracking_uri, row["drift_report_run_id"])

    facts = {
        "model": model,
        "dag_id": dag_id,
        "run_id": run_id,
        "attempt": row.get("attempt"),
        "status": status,
        "decision": decision,
        "trigger_type": row.get("trigger_type"),
        "severity": row.get("severity"),
        "reason": row.get("trigger_reason"),
        "error": recorded_error or error,
        "failed_task": row.get("failed_task"),
        "champion_before": before,
        "champion_after": after,
        "candidate_version": row.get("candidate_version"),
        "candidate_run_id": row.get("candidate_run_id"),
        "gate_passed": row.get("gate_passed"),
        "gate_failed": gate_failed,
        "gate_reasons": list(gate.get("reasons") or []) if gate_failed else [],
        "event_id": current_row_id,
        "calibration_warning": calibration,
    }
    note = Notification(kind, f"[retraining] {_headline(kind, model, row)}", lines, facts, links)
    return redact_notification(note)


def _is_http(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith(("http://", "https://"))


def mlflow_run_link(tracking_uri: str | None, run_id: str) -> str:
    """A link to an MLflow run: the UI's run page for an http(s) tracking server (its ``#/runs/<id>`` route
    opens the run in its experiment, so no call to MLflow is needed to send a notification, which matters
    when MLflow is the thing that failed), else the ``runs:/`` URI. Credentials in the URI are dropped."""
    if _is_http(tracking_uri):
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(str(tracking_uri))
        netloc = parts.netloc.rsplit("@", 1)[-1]
        base = urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")
        return f"{base}/#/runs/{run_id}"
    return f"runs:/{run_id}"


# --- redaction -------------------------------------------------------------------------------------

def redact(text: str) -> str:
    """The project's redaction (:mod:`include.retraining.redaction`), applied to every string a notification
    carries: a DSN in an error, a tracking URI with a password, a registered connection password."""
    from ..redaction import redact as project_redact

    return project_redact(text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_notification(note: Notification) -> Notification:
    return Notification(note.kind, redact(note.title), [redact(line) for line in note.lines],
                        _redact_value(note.facts), {k: redact(v) for k, v in note.links.items()})


# --- channels --------------------------------------------------------------------------------------

def channel_of(conn: Any) -> str:
    """``webhook``, ``slack`` or ``smtp`` for an Airflow connection (its type, and for http its host/extra)."""
    kind = (conn.conn_type or "").lower()
    extra = _extra(conn)
    if kind in SLACK_TYPES:
        return "slack"
    if kind in WEBHOOK_TYPES:
        slack = "hooks.slack.com" in (conn.host or "") or str(extra.get("format", "")).lower() == "slack"
        return "slack" if slack else "webhook"
    if kind in MAIL_TYPES:
        return "smtp"
    raise NotificationError(
        f"connection {conn.conn_id!r} has type {conn.conn_type!r}, which cannot carry notifications: use "
        f"{sorted(WEBHOOK_TYPES)} (a JSON webhook; Slack's format with extra {{\"format\": \"slack\"}}), "
        f"{sorted(SLACK_TYPES)} (a Slack incoming webhook) or {sorted(MAIL_TYPES)} (mail)"
    )


def _extra(conn: Any) -> dict[str, Any]:
    try:
        extra = conn.extra_dejson
    except Exception:  # malformed extra: treat as empty, the URL or address check names what is missing
        return {}
    return dict(extra or {})


def webhook_url(conn: Any) -> str:
    """The URL to POST to. http connections: ``host`` (a full URL, or a host name with ``schema`` http/https
    and ``port``) plus the extra's ``endpoint`` (or, for a connection given as a URI, its path, which Airflow
    stores in ``schema``). Slack webhook connections: the webhook URL as host or password, or host
    ``https://hooks.slack.com/services`` and the token part (``T000/B000/XXXX``) as password."""
    from urllib.parse import urlsplit

    extra = _extra(conn)
    host = (conn.host or "").strip()
    kind = (conn.conn_type or "").lower()
    if kind in SLACK_TYPES:
        token = (conn.password or "").strip()
        if token.startswith(("http://", "https://")):
            return token
        base = host if "://" in host else ("https://" + host if host else SLACK_DEFAULT_BASE)
        return f"{base.rstrip('/')}/{token.lstrip('/')}" if token else base
    if not host:
        raise NotificationError(f"connection {conn.conn_id!r} has no host: give the webhook's URL as its host")
    schema = (conn.schema or "").strip()
    if "://" in host:
        base = host
    else:
        scheme = schema if schema in ("http", "https") else ("https" if kind == "https" or "slack.com" in host
                                                              else "http")
        base = f"{scheme}://{host}"
    if conn.port and urlsplit(base).port is None:
        parts = urlsplit(base)
        base = f"{parts.scheme}://{parts.netloc}:{conn.port}{parts.path}"
    path = extra.get("endpoint") or (schema if schema and schema not in ("http", "https") else "")
    return f"{base.rstrip('/')}/{str(path).lstrip('/')}" if path else base


def post_json(url: str, body: Mapping[str, Any], headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` as JSON; returns the HTTP status (an error status raises :class:`NotificationError`)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body, default=str).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL from a connection)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode(errors="replace")
        raise NotificationError(f"the webhook answered HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotificationError(f"the webhook could not be reached: {getattr(exc, 'reason', exc)}") from None


def _auth_headers(conn: Any) -> dict[str, str]:
    """Basic auth from login and password, or a bearer token from the password alone (generic webhooks)."""
    import base64

    if conn.login:
        pair = f"{conn.login}:{conn.password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if conn.password:
        return {"Authorization": f"Bearer {conn.password}"}
    return {}


def send_mail(note: Notification, conn: Any, timeout: float) -> None:
    """A plain-text mail through the SMTP server of ``conn``: host, port, login/password; extra ``to``
    (a list or comma-separated), ``from`` (or ``from_email``), ``ssl`` (SMTP over TLS, default port 465)
    or ``starttls`` (upgrade a plain connection)."""
    import smtplib
    import ssl
    from email.message import EmailMessage

    extra = _extra(conn)
    to = extra.get("to") or []
    recipients = [a.strip() for a in (to.split(",") if isinstance(to, str) else to) if str(a).strip()]
    if not recipients:
        raise NotificationError(f"connection {conn.conn_id!r} names no recipient: set its extra "
                                '{"to": ["team@example.com"]}')
    if not conn.host:
        raise NotificationError(f"connection {conn.conn_id!r} has no host: give the SMTP server's host name")
    use_ssl = _flag(extra.get("ssl", False))
    message = EmailMessage()
    message["Subject"] = note.title
    message["From"] = extra.get("from") or extra.get("from_email") or conn.login or "airflow@localhost"
    message["To"] = ", ".join(recipients)
    message["X-Retraining-Kind"] = note.kind
    message.set_content(note.text)
    port = int(conn.port or (465 if use_ssl else 25))
    context = ssl.create_default_context()
    try:
        smtp = (smtplib.SMTP_SSL(conn.host, port, timeout=timeout, context=context) if use_ssl
                else smtplib.SMTP(conn.host, port, timeout=timeout))
        with smtp:
            if _flag(extra.get("starttls", False)) and not use_ssl:
                smtp.starttls(context=context)
            if conn.login and conn.password:
                smtp.login(conn.login, conn.password)
            smtp.send_message(message, to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotificationError(f"mail to {recipients} through {conn.host}:{port} failed: {exc}") from None


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def send(note: Notification, conn: Any, timeout: float = 10.0) -> str:
    """Send ``note`` through the channel ``conn`` stands for; returns the channel's name."""
    channel = channel_of(conn)
    if channel == "smtp":
        send_mail(note, conn, timeout)
        return channel
    url = webhook_url(conn)
    headers = {str(k): str(v) for k, v in (_extra(conn).get("headers") or {}).items()}
    if channel == "slack":
        post_json(url, note.slack_payload(), headers, timeout)  # the token is in the URL
    else:
        post_json(url, note.payload(), {**_auth_headers(conn), **headers}, timeout)
    return channel


def weak_calibration(row: Mapping[str, Any]) -> str | None:
    """A warning when the run's data drift was judged with weakly calibrated or uncalibrated thresholds (a short
    training history, see :mod:`..monitoring.calibration`), else None."""
    drift = (row.get("trigger_metrics") or {}).get("drift") or {}
    calibration = drift.get("calibration") if isinstance(drift, Mapping) else None
    if not isinstance(calibration, Mapping) or calibration.get("mode") == "fixed":
        return None
    status = calibration.get("status")
    if status not in ("weak", "uncalibrated") or not drift.get("detected"):
        return None
    word = "weakly calibrated" if status == "weak" else "uncalibrated"
    return (f"the data drift was judged with {word} thresholds ({calibration.get('note') or 'a short history'}); "
            "a longer training.history_days calibrates them")


def log_notification(note: Notification) -> None:
    """The log notifier: one clear block in the task's log, at WARNING for what needs a person (and for a drift
    verdict made with weakly calibrated or uncalibrated thresholds)."""
    level = logging.ERROR if note.kind in ERROR_KINDS else logging.WARNING \
        if note.kind in WARNING_KINDS or note.facts.get("calibration_warning") else logging.INFO
    log.log(level, "notification (%s): %s", note.kind, note.text)


# --- the Airflow notifier ---------------------------------------------------------------------------

def airflow_base_url() -> str | None:
    """``[api] base_url`` when it is configured (links to a run need the address people reach Airflow at)."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - older task SDKs
        from airflow.configuration import conf  # type: ignore[no-redef]
    try:
        value = conf.get("api", "base_url", fallback=None)
    except Exception:
        return None
    return value or None


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        log.debug("connection %s not available: %s", conn_id, exc)
        return None


class RetrainingNotifier(BaseNotifier):
    """Tells people what a run did. Put it on the task that closes a run: as ``on_success_callback``
    (``RetrainingNotifier()``) and as ``on_failure_callback`` (``RetrainingNotifier(failed=True)``).

    It reads the run's row, classifies it, and logs the message; with ``notify.conn_id`` it also sends it
    through that connection when the kind is listed in ``notify.events``. It never raises."""

    def __init__(self, *, failed: bool = False) -> None:
        super().__init__()
        self.failed = failed

    def notify(self, context: Any) -> None:
        try:
            self._notify(context)
        except Exception as exc:  # a notification must never change the run's outcome
            log.warning("the notification of this run could not be made or sent: %s: %s",
                        type(exc).__name__, redact(str(exc)))

    def _notify(self, context: Any) -> None:
        from .. import runtime
        from ..config import NotifySection
        from ..pipeline import events_dsn
        from . import events

        info = runtime.run_info(context)
        problems: list[str] = []
        cfg = None
        try:
            cfg = info.config()
        except Exception as exc:
            problems.append(f"the model configuration could not be read: {exc}")
        row: dict[str, Any] | None = None
        current: dict[str, Any] | None = None
        try:
            dsn, key = events_dsn(cfg), info.key(cfg)
            current = events.get_event(dsn, key)
            attempt = events.latest_attempt(dsn, key)
            # this run's attempt: a replay that acted on nothing leaves an earlier deployment as the current
            # row, and must not announce that deployment again
            row = events.get_attempt(dsn, key, attempt) if attempt else None
        except Exception as exc:
            problems.append(f"the run's row in {events.TABLE} could not be read: {exc}")
        row = row or current
        kind = classify(row, failed=self.failed)
        if kind is None:
            log.debug("run %s: nothing to notify (status %s)", info.run_id, (row or {}).get("status"))
            return
        settings = cfg.notify if cfg is not None else NotifySection()
        exception = context.get("exception")
        model = cfg.model.name if cfg is not None else (row or {}).get("model_name") or info.dag_id
        note = build(
            kind, row, model=model, dag_id=info.dag_id, run_id=info.run_id,
            current_row_id=(current or {}).get("id"), tracking_uri=self._tracking_uri(cfg),
            airflow_base_url=airflow_base_url(),
            error=f"{type(exception).__name__}: {exception}" if exception else None, problems=problems,
        )
        self._deliver(note, settings)
        recovered = ((row or {}).get("trigger_metrics") or {}).get("recovered") or {}
        for item in recovered.get("promotions") or []:
            # an interrupted promotion this run finished (or reverted): announce it as the run that asked for it
            try:
                asking = events.promotion_row(dsn, int(item["promotion_id"]))
            except Exception as exc:
                log.warning("the row of recovered promotion %s could not be read: %s", item, redact(str(exc)))
                continue
            if asking is None:
                continue
            found = classify(asking)
            if found is None:
                continue
            recovered_note = build(found, asking, model=model, dag_id=asking["dag_id"], run_id=asking["run_id"],
                                   tracking_uri=self._tracking_uri(cfg), airflow_base_url=airflow_base_url())
            self._deliver(replace(recovered_note, title=f"{recovered_note.title} [interrupted promotion "
                                                        f"#{item['promotion_id']} {item['outcome']} by run "
                                                        f"{info.run_id}]"), settings)

    def _deliver(self, note: Notification, settings: Any) -> None:
        """Log ``note`` and send it through ``notify.conn_id`` when its kind is listed in ``notify.events``."""
        kind = note.kind
        if kind not in settings.events:
            log.info("notification (%s) not sent: not in notify.events %s: %s", kind, settings.events, note.title)
            return
        log_notification(note)
        if not settings.conn_id:
            return
        conn = _connection(settings.conn_id)
        if conn is None:
            log.warning("notify.conn_id %r is not an Airflow connection here (add it in the UI, airflow_settings"
                        ".yaml or AIRFLOW_CONN_%s): the notification above went to the log only",
                        settings.conn_id, settings.conn_id.upper())
            return
        from ..redaction import register_secret

        register_secret(conn.password)  # a webhook token or SMTP password never reaches a log line
        try:
            channel = send(note, conn, timeout=settings.timeout_seconds)
        except NotificationError as exc:
            log.warning("notification (%s) not delivered through %r: %s", kind, settings.conn_id, redact(str(exc)))
            return
        log.info("notification (%s) sent through %r (%s)", kind, settings.conn_id, channel)

    @staticmethod
    def _tracking_uri(cfg: Any) -> str | None:
        if cfg is None:
            return None
        try:
            from ..release.registry import tracking_uri

            return tracking_uri(cfg)
        except Exception:
            return cfg.mlflow.tracking_uri
