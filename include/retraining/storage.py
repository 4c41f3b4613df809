"""Shared storage for datasets: a local folder or any fsspec URL (s3://, gs://, abfs://, ...).

Every worker must reach it, so on a distributed deployment point ``storage.uri`` at an
object store or a shared volume. Writes are atomic: a reader sees the old file or the
whole new one, never half of it (local files are written aside and renamed; object
stores publish an object only when its upload completes).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .connections import REPO_ROOT

if TYPE_CHECKING:
    import pandas as pd


def _is_url(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def resolve(uri: str) -> str:
    """An absolute location: relative local paths are taken from the repository root."""
    if _is_url(uri):
        return uri.rstrip("/")
    path = Path(uri.removeprefix("file://")).expanduser()
    return str(path if path.is_absolute() else (REPO_ROOT / path).resolve())


def join(base: str, *parts: str) -> str:
    """``base/part/...``; a part that would climb out of ``base`` (a ``..`` segment) is refused, so a name
    taken from the configuration or a run id can never write above the storage location."""
    for part in parts:
        if any(segment == ".." for segment in str(part).replace("\\", "/").split("/")):
            raise ValueError(f"refusing the storage path part {part!r} under {base}: '..' would leave the "
                             "storage location (check model.name and the run id)")
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def exists(uri: str) -> bool:
    if _is_url(uri):
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return bool(fs.exists(path))
    return _local(uri).exists()


def _write_bytes(uri: str, data: bytes) -> None:
    if _is_url(uri):
        import fsspec

        with fsspec.open(uri, "wb") as fh:
            fh.write(data)
        return
    path = _local(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_bytes(uri: str) -> bytes:
    if _is_url(uri):
        import fsspec

        with fsspec.open(uri, "rb") as fh:
            return fh.read()
    return _local(uri).read_bytes()


def write_parquet(frame: pd.DataFrame, uri: str) -> None:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    _write_bytes(uri, buffer.getvalue())


def read_parquet(uri: str) -> pd.DataFrame:
    import io

    import pandas as pd

    return pd.read_parquet(io.BytesIO(_read_bytes(uri)))


def write_json(data: Any, uri: str) -> None:
    _write_bytes(uri, json.dumps(data, indent=2, sort_keys=True, default=str).encode())


def read_json(uri: str) -> Any:
    return json.loads(_read_bytes(uri))
