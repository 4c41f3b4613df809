"""Model retraining: drift checks, training, an evaluation gate and safe promotion for Airflow 3.

Grouped by what the code is for:

- top level: ``config`` (the typed model configuration), ``connections``, ``storage``, ``sources``
  (reading production data), ``errors``, ``metrics``, ``point_in_time`` (which window a run checks and
  which champion judges it), ``pipeline`` (one function per Airflow task), ``runtime`` (the Airflow glue),
  ``local_runs`` and ``demo_data``;
- ``monitoring``: profiles, drift, data quality, label-free estimates, the assessment and decision;
- ``training``: snapshots, the out-of-time split, model families and the training run;
- ``release``: the gate, the registry, promotion and serving;
- ``record``: the events tables and the champion history.

Nothing here imports Airflow at module level, and nothing the DAG files import pulls in pandas or SciPy.
"""

__version__ = "0.1.0"
