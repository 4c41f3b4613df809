"""Letting a candidate into service: the evaluation gate (``gate``, ``significance``, ``plots``), the MLflow
registry (``registry``), promotion and rollback under a lock (``promotion``) and the serving app (``serving``)."""
