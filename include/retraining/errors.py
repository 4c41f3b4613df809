"""Errors that name the problem and say what to do. Each maps to an outcome in the events table."""

from __future__ import annotations


class RetrainingError(Exception):
    """Base class: a run could not go on. ``outcome`` is what the events table records."""

    outcome = "failed"


class DataValidationError(RetrainingError):
    """The data does not match what the model configuration expects."""

    outcome = "invalid_data"


class InsufficientDataError(RetrainingError):
    """Too few rows to decide or to train."""

    outcome = "insufficient_data"
