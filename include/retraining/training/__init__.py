"""Making a candidate: versioned training snapshots (``snapshots``), the out-of-time split and the reference
profile (``prepare``), model families, search and the MLflow training run (``models``)."""
