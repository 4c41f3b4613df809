"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from include.retraining.config import RetrainingConfig
from unit_helpers import build_config


@pytest.fixture
def make_config() -> Callable[..., RetrainingConfig]:
    """``make_config(gate={"min_improvement": 0.02})``: the base configuration with sections merged in."""
    return build_config
