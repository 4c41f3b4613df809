"""Keeping credentials out of everything the package writes: rows, log lines, MLflow tags and artifacts, reports.

A model configuration may carry credentials (``mlflow.tracking_uri: http://user:secret@host``, an object
store URI with keys in it, a DSN in an error message), and an exception's text repeats them. Every exit
passes its text through :func:`redact`, which masks:

- the userinfo of any URI or DSN (``scheme://user:password@host`` becomes ``scheme://***@host``);
- ``key=value`` pairs whose key names a secret (libpq ``password=...``, query strings such as
  ``?token=...`` or ``X-Amz-Signature=...``, ``aws_secret_access_key = ...``), also as JSON or repr
  (``"password": "..."``);
- ``Authorization:`` header values and AWS access key ids;
- any value registered with :func:`register_secret` (passwords read from Airflow connections).

:func:`redact_config` does the same for a configuration dump (a secret-named key loses its whole value),
and :func:`install` makes every standard-library log record of the process pass through
:class:`RedactingFilter`. Redacting twice gives the same text as redacting once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter registered values would mask ordinary words and numbers

# Key names whose value is a secret wherever they appear: query strings, libpq DSNs, JSON, reprs.
SECRET_KEYS: tuple[str, ...] = (
    "password", "passwd", "pwd", "pass", "secret", "client_secret", "token", "access_token", "refresh_token",
    "id_token", "auth_token", "api_key", "apikey", "api-key", "x-api-key", "private_key", "secret_key",
    "aws_secret_access_key", "aws_session_token", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "sig", "signature", "sas_token", "account_key", "sharedaccesssignature",
)
_SECRET_KEY_SET = frozenset(SECRET_KEYS)

# scheme://userinfo@ : the user runs to the first ':' (or '@'); the password may hold '/' (AWS secret keys
# do) and may hold '@' when another '@' follows before the host's '/'. Quotes and whitespace end a URI.
_USERINFO = re.compile(
    r"""(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)"""
    r"""(?P<userinfo>[^\s:/?#@"'<>]*(?::[^\s"'<>@]*(?:@[^\s"'<>@/]*(?=@))*)?)@"""
)
_KEYS = "|".join(re.escape(k) for k in sorted(SECRET_KEYS, key=len, reverse=True))
_KEY_VALUE = re.compile(
    rf"""(?P<key>(?<![\w\-])(?:{_KEYS})(?![\w\-]))"""
    r"""(?P<sep>["']?\s*[:=]\s*)"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&#;,'"()\[\]{}]+)""",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"(?P<key>\bauthorization\b[\"']?\s*[:=]\s*[\"']?)(?:(?:basic|bearer|token)\s+)?[^\s\"',;]+",
                          re.IGNORECASE)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")

_known: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on in this process (a password read from a connection).

    Also hands it to Airflow's secrets masker when running inside Airflow, so Airflow's own log lines and
    a task's captured stdout hide it too. Values shorter than :data:`MIN_SECRET_LENGTH` are ignored."""
    global _known_pattern
    if not value or len(value) < MIN_SECRET_LENGTH or value == MASK:
        return
    with _known_lock:
        if value in _known:
            return
        _known.add(value)
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # used without Airflow
        return
    try:
        mask_secret(value)
    except Exception:  # the masker is a second line of defence; ours already holds the value
        logging.getLogger(__name__).debug("Airflow's secrets masker refused a value", exc_info=True)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value in (MASK, f"'{MASK}'", f'"{MASK}"') or not value.strip("'\""):
        return match.group(0)
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"


def redact(text: Any) -> Any:
    """``text`` with every credential masked (see the module docstring); non-strings are returned as they are."""
    if not isinstance(text, str) or not text:
        return text
    out = text
    if _known_pattern is not None:
        out = _known_pattern.sub(MASK, out)
    if "://" in out:
        out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", out)
    if "=" in out or ":" in out:
        out = _KEY_VALUE.sub(_mask_value, out)
        out = _AUTH_HEADER.sub(lambda m: f"{m.group('key')}{MASK}", out)
    return _AWS_KEY_ID.sub(MASK, out)


def is_secret_key(name: Any) -> bool:
    """Whether a mapping key names a secret (``password``, ``mlflow_token``, ``aws_secret_access_key``, ...)."""
    if not isinstance(name, str):
        return False
    key = name.lower()
    return key in _SECRET_KEY_SET or key.endswith(("password", "_token", "_secret", "secret_key", "api_key"))


def redact_config(value: Any) -> Any:
    """A copy of a configuration dump (dicts, lists, strings) with credentials masked: a secret-named key's
    whole value, and :func:`redact` on every other string."""
    if isinstance(value, Mapping):
        return {k: (MASK if is_secret_key(k) and v not in (None, "") else redact_config(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_config(v) for v in value]
    return redact(value)


def split_userinfo(uri: str) -> tuple[str, str | None, str | None]:
    """``(uri without userinfo, user, password)``: credentials of ``scheme://user:password@host`` taken out
    (percent-decoded) so they can travel apart from the URI (e.g. in ``MLFLOW_TRACKING_USERNAME``)."""
    from urllib.parse import unquote

    parts = urlsplit(uri)
    if not parts.scheme or "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if colon else None


class RedactingFilter(logging.Filter):
    """A log filter that masks credentials in a record's message, its arguments and its exception text.

    The message is formatted once here (``record.getMessage()``) and the arguments dropped, because an
    argument (an exception, a config object) only becomes text when formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it for the handler to report
            return True
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()
# Loggers that print URIs: MLflow's clients and stores, the HTTP and PostgreSQL drivers, this package.
LOGGERS: tuple[str, ...] = ("mlflow", "urllib3", "requests", "psycopg2", "include.retraining", "airflow.task")
_installed = False


def install() -> None:
    """Redact every standard-library log record of this process (idempotent; call once per task process).

    Logger filters apply only to the logger a record is created on, not to its children, so the filter
    runs in the log-record factory: every record, from any logger, created from now on. It is also added
    to the handlers of the root logger and of :data:`LOGGERS` for records built by hand."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _FILTER.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    for name in ("", *LOGGERS):
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
