"""Deploying to a serving app: the model files on disk, then a reload call (blue-green).

Moving the ``champion`` alias is enough for a server that loads ``models:/<name>@champion``
itself (that is also how object-store deployments are served: the registry alias is the
switch, and nothing here is needed). For a server that reads a local folder, deploy does:

1. ``export_model``: download the registered version into ``<serving_dir>/<name>/v<version>``
   and point the symlink ``<serving_dir>/<name>/current`` at it. The files are written into a
   hidden temporary folder inside ``<serving_dir>/<name>`` (same filesystem), fsync'ed, then
   renamed into place, and ``current`` is swapped with ``os.replace``: a reader sees the old
   model or the whole new one, never half of it, and ``current`` never dangles.
2. ``reload_endpoint``: ``POST /model/reload`` to the serving app (an Airflow HTTP
   connection), which swaps to the files behind ``current``.

Rolling back is ``point_current`` to the previous version, then the reload call again.
Local (or mounted, POSIX) filesystems only: symlinks and atomic renames are what make it safe.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CURRENT = "current"
MODEL_FILE = "MLmodel"
BODY_LIMIT = 500
_VERSION_DIR = re.compile(r"^v(\d+)$")


class ReloadError(RuntimeError):
    """The serving app did not confirm the reload: a non-2xx answer, no answer, or no connection."""

    def __init__(self, message: str, url: str, status_code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code
        self.body = body


# --- files -------------------------------------------------------------------------------------


def _model_dir(serving_dir: str | Path, name: str) -> Path:
    text = str(serving_dir)
    if "://" in text and not text.startswith("file://"):
        raise ValueError(
            f"serving_dir {text!r} is not a local folder: export_model writes to a local or mounted filesystem. "
            "For a server that reads from an object store, load models:/<name>@champion and rely on the "
            "registry alias instead of exporting files"
        )
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"model name {name!r} cannot be used as a folder name: pass the registered model name")
    return Path(text.removeprefix("file://")).expanduser().resolve() / name


def _version_dir(model_dir: Path, version: int) -> Path:
    if int(version) < 1:
        raise ValueError(f"model version must be a positive integer, got {version!r}")
    return model_dir / f"v{int(version)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk, so a rename publishes complete files."""
    for folder, _dirs, files in os.walk(root):
        for file in files:
            path = os.path.join(folder, file)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def current_version(serving_dir: str | Path, name: str) -> int | None:
    """The version ``<serving_dir>/<name>/current`` points at, or None (no link, or not a ``v<N>`` folder)."""
    link = _model_dir(serving_dir, name) / CURRENT
    if not link.is_symlink():
        return None
    match = _VERSION_DIR.match(Path(os.readlink(link)).name)
    return int(match.group(1)) if match else None


def point_current(serving_dir: str | Path, name: str, version: int) -> None:
    """Atomically point ``<serving_dir>/<name>/current`` at the exported folder ``v<version>``.

    Used by ``export_model`` and to roll back. The link is relative (``current -> v3``), so the
    serving folder can be mounted elsewhere, e.g. in the serving container.
    """
    model_dir = _model_dir(serving_dir, name)
    target = _version_dir(model_dir, version)
    if not (target / MODEL_FILE).is_file():
        exported = sorted(p.name for p in model_dir.glob("v*") if _VERSION_DIR.match(p.name)) if model_dir.is_dir() else []
        raise FileNotFoundError(
            f"cannot point {model_dir / CURRENT} at version {version}: {target} is not an exported model "
            f"(exported: {', '.join(exported) or 'none'}). Run export_model for models:/{name}/{version} first"
        )
    link = model_dir / CURRENT
    if link.exists() and not link.is_symlink():
        raise IsADirectoryError(
            f"{link} is a real file or folder, not a symlink: move it away (e.g. to {model_dir / 'v0'}) "
            "so that deploys can manage it as a link"
        )
    tmp = model_dir / f".{CURRENT}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    os.symlink(target.name, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(model_dir)
    log.info("%s now points at %s", link, target.name)


def _download(model_uri: str, model_dir: Path, target: Path) -> bool:
    """Download into a temporary folder and rename it to ``target``. False when another export won the race."""
    import mlflow.artifacts

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=model_dir))
    try:
        downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(tmp))).resolve()
        if not (downloaded.is_dir() and downloaded.is_relative_to(tmp.resolve()) and (downloaded / MODEL_FILE).is_file()):
            raise ValueError(
                f"{model_uri!r} is not an MLflow model (no {MODEL_FILE} file in what was downloaded): "
                "pass a model URI such as models:/<name>/<version>"
            )
        os.chmod(downloaded, 0o755)  # mkdtemp makes it 0700; the serving app may run as another user
        _fsync_tree(downloaded)
        try:
            os.rename(downloaded, target)
        except OSError:
            if (target / MODEL_FILE).is_file():  # exported meanwhile by a concurrent run: keep theirs
                return False
            raise
        _fsync_dir(model_dir)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_model(model_uri: str, serving_dir: str | Path, name: str, version: int) -> dict[str, Any]:
    """Put the model at ``model_uri`` in ``<serving_dir>/<name>/v<version>`` and point ``current`` at it.

    The MLflow tracking/registry URI must already be set (``registry.setup``). Exporting a version
    that is already there downloads nothing and only repoints ``current``. On any failure
    ``current`` and the existing versions are left as they were, and the temporary folder is removed.

    Returns ``{"path", "current", "previous", "version", "exported"}``: the version folder, the
    ``current`` link, the version ``current`` pointed at before (None if none), the version, and
    whether files were downloaded (False for a re-export).
    """
    model_dir = _model_dir(serving_dir, name)
    target = _version_dir(model_dir, version)
    model_dir.mkdir(parents=True, exist_ok=True)
    previous = current_version(serving_dir, name)

    exported = False
    if target.exists():
        if not (target / MODEL_FILE).is_file():
            raise FileExistsError(
                f"{target} exists but holds no {MODEL_FILE} file (not written by export_model): "
                "remove it and deploy again"
            )
        log.info("%s is already exported to %s: only repointing %s", model_uri, target, CURRENT)
    else:
        started = time.monotonic()
        exported = _download(model_uri, model_dir, target)
        log.info("exported %s to %s in %.1fs", model_uri, target, time.monotonic() - started)

    point_current(serving_dir, name, version)
    return {
        "path": str(target),
        "current": str(model_dir / CURRENT),
        "previous": previous,
        "version": int(version),
        "exported": exported,
    }


# --- reload call -------------------------------------------------------------------------------


def connection_url(conn: Any) -> str:
    """The base URL of an HTTP connection, without a trailing slash.

    ``host`` may carry its scheme (``https://serving.internal``) and a base path; otherwise the
    scheme is ``schema`` (``http``/``https``, default ``http``). ``port`` is added when set and the
    host does not already name one.
    """
    host = (conn.host or "").strip()
    if not host:
        raise ValueError(
            f"connection {getattr(conn, 'conn_id', None) or ''!r} has no host: set it to the serving app, "
            "e.g. host=serving.internal, port=8080, schema=http"
        )
    if "://" in host:
        scheme, rest = host.split("://", 1)
    else:
        scheme, rest = (conn.schema or "http").strip().lower(), host
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(
            f"connection scheme {scheme!r} is not http or https: put http/https in the connection's schema "
            "field or at the start of its host"
        )
    netloc, slash, path = rest.partition("/")
    if netloc.count(":") > 1 and not netloc.startswith("["):  # a bare IPv6 address
        netloc = f"[{netloc}]"
    has_port = bool(re.search(r":\d+$", netloc))
    if conn.port and not has_port:
        netloc = f"{netloc}:{int(conn.port)}"
    return f"{scheme}://{netloc}{slash}{path}".rstrip("/")


def _verify_option(value: Any) -> bool | str:
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, bool | str):
        return value  # a string other than a boolean is a CA bundle path
    return True


def _get_connection(conn_id: str) -> Any:
    try:
        from airflow.sdk import Connection
    except ImportError as exc:
        raise RuntimeError("reload_endpoint reads an Airflow connection: install apache-airflow-task-sdk") from exc
    try:
        return Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise LookupError(
            f"Airflow connection {conn_id!r} is not configured ({exc}): add an http connection in the UI "
            f"(Admin > Connections), airflow_settings.yaml, or as the environment variable "
            f"AIRFLOW_CONN_{conn_id.upper()} pointing at the serving app"
        ) from exc


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:BODY_LIMIT]


def reload_endpoint(
    conn_id: str, endpoint: str = "/model/reload", payload: dict[str, Any] | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """POST ``payload`` (JSON) to ``endpoint`` of the serving app behind the HTTP connection ``conn_id``.

    The connection gives host/scheme/port (see ``connection_url``), basic auth (login/password)
    and, in its extra, ``headers`` (a dict) and ``verify`` (false, or a CA bundle path).
    Redirects are not followed (a redirect means the connection points at the wrong URL).

    Returns ``{"status_code", "url", "elapsed_ms", "body"}``, ``body`` being the parsed JSON answer
    or its first 500 characters. Raises ``ReloadError`` on a non-2xx answer, a timeout or no connection.
    """
    import requests

    conn = _get_connection(conn_id)
    url = f"{connection_url(conn)}/{endpoint.lstrip('/')}"
    extra = getattr(conn, "extra_dejson", None) or {}
    headers = {str(k): str(v) for k, v in (extra.get("headers") or {}).items()}
    auth = (conn.login, conn.password or "") if conn.login else None

    started = time.monotonic()
    try:
        response = requests.post(
            url,
            json=payload or {},
            headers=headers,
            auth=auth,
            timeout=timeout,
            verify=_verify_option(extra.get("verify", True)),
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        raise ReloadError(
            f"POST {url} timed out after {timeout:g}s (status: no answer): check that the serving app is up "
            "and that the reload finishes in time, or raise the timeout",
            url,
        ) from exc
    except requests.RequestException as exc:
        raise ReloadError(
            f"POST {url} failed (status: no answer): {exc}. Check the {conn_id!r} connection and that the "
            "serving app is reachable from the worker",
            url,
        ) from exc
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)

    if not 200 <= response.status_code < 300:
        text = response.text[:BODY_LIMIT]
        where = f" (redirects to {response.headers.get('Location')})" if response.is_redirect else ""
        raise ReloadError(
            f"POST {url} answered {response.status_code}{where}: {text!r}. The serving app did not reload: "
            "check its logs; the files and the previous model are still in place",
            url,
            response.status_code,
            text,
        )
    log.info("POST %s answered %s in %.0f ms", url, response.status_code, elapsed_ms)
    return {"status_code": response.status_code, "url": url, "elapsed_ms": elapsed_ms, "body": _body(response)}
