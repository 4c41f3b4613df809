"""Helpers shared by the unit tests: small, valid model configurations built in code.

Imported as ``unit_helpers`` (pytest puts tests/unit on sys.path; there are no packages)."""

from __future__ import annotations

import copy
from typing import Any

from include.retraining.config import RetrainingConfig

BASE: dict[str, Any] = {
    "model": {"name": "unit_model", "task": "binary", "type": "logistic_regression"},
    "source": {"kind": "parquet", "path": "/nonexistent/data.parquet"},
    "columns": {"timestamp": "ts", "label": "y", "numeric": ["x1", "x2"], "categorical": ["c"]},
    "storage": {"uri": "/nonexistent/storage"},
}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged into it, section by section (a None value removes the key)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def raw_config(**sections: Any) -> dict[str, Any]:
    return merge(BASE, sections)


def build_config(**sections: Any) -> RetrainingConfig:
    return RetrainingConfig.model_validate(raw_config(**sections))



def load_benchmark(name: str) -> Any:
    """A script of benchmarks/ as a module (they are scripts, not a package), registered under ``name``."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
