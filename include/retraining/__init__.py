"""Model retraining: drift checks, training, an evaluation gate and safe promotion for Airflow 3.

Modules, one per stage: ``config`` (the typed model configuration), ``sources`` (reading
production data), ``drift`` (reference profiles and per-feature drift), ``metrics``,
``assessment`` (the sensor's verdict and the skip/retrain decision), ``snapshots``
(versioned training data), ``prepare``, ``training``, ``gate``, ``registry`` (MLflow),
``events`` (the ``model_retraining_events`` table) and ``pipeline`` (one function per
Airflow task). Nothing here imports Airflow at module level.
"""

__version__ = "0.1.0"
