"""The demo: `model_retraining` run through Airflow over successive six-hour windows.

It starts everything it needs locally (an embedded PostgreSQL for the events table and
the demo's production data, a SQLite MLflow store, Airflow's SQLite metadata database,
all under ``.local/``), writes a credit-risk stream whose population drifts at
2026-03-08 12:00 UTC, and runs the DAG with ``dag.test()`` for six consecutive
intervals:

- 03-08 00:00  no champion yet: train, gate (absolute criteria), register, deploy v1
- 03-08 06:00  no drift: skip
- 03-08 12:00  no drift: skip
- 03-08 18:00  the window after the drift: detect, retrain, gate, register, deploy v2
- 03-09 00:00  the new champion fits the new population: skip
- 03-09 06:00  triggered by hand (force, logistic regression): the gate rejects the worse candidate

It starts from a clean demo state every time (``--keep`` keeps the previous state), then
prints the rows of ``model_retraining_events`` and where to find the MLflow runs.
Usage: ``make demo`` (or ``.venv/bin/python scripts/demo.py [--keep]``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL = Path(os.environ.get("RETRAINING_HOME") or REPO / ".local").resolve()
INTERVAL_ENDS = [datetime(2026, 3, 8, h, tzinfo=timezone.utc) for h in (0, 6, 12, 18)] + [
    datetime(2026, 3, 9, 0, tzinfo=timezone.utc)
]
# The last run is triggered by hand, as from the UI form: a simpler model family, forced.
FORCED = (datetime(2026, 3, 9, 6, tzinfo=timezone.utc),
          {"force_retrain": True, "model_type": "logistic_regression", "reason": "demo: try a simpler model"})
TABLE = "credit_applications"

os.environ.setdefault("RETRAINING_HOME", str(LOCAL))
os.environ.setdefault("AIRFLOW_HOME", str(LOCAL / "airflow"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("RETRAINING_CONFIG", str(REPO / "include" / "config" / "credit_risk.yaml"))
os.environ.setdefault("RETRAINING_STORAGE_URI", str(LOCAL / "storage"))
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("RETRAINING_TASK_RETRIES", "0")
sys.path.insert(0, str(REPO))

log = logging.getLogger("demo")


def step(message: str) -> None:
    print(f"\n=== {message}", flush=True)


def reset(dsn: str) -> None:
    """Forget the previous demo: its MLflow store, snapshots and events rows."""
    from include.retraining.connections import connect
    from include.retraining.events import TABLE as EVENTS
    from include.retraining.events import ensure_schema

    for folder in (LOCAL / "mlflow", LOCAL / "storage"):
        shutil.rmtree(folder, ignore_errors=True)
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"DELETE FROM {EVENTS} WHERE dag_id = 'model_retraining'")


@contextlib.contextmanager
def airflow_output_to(path: Path) -> Iterator[None]:
    """Send everything written to stdout/stderr (Airflow's task logs) to ``path`` for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def socket_uri(dsn: str) -> str:
    """An Airflow connection URI for the embedded server (its host is a socket directory)."""
    from urllib.parse import parse_qs, quote, urlparse

    parsed = urlparse(dsn)
    host = parse_qs(parsed.query).get("host", [parsed.hostname or "localhost"])[0]
    return f"postgresql://{parsed.username or 'postgres'}@{quote(host, safe='')}{parsed.path or '/postgres'}"


def migrate_airflow() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_events(dsn: str) -> None:
    from include.retraining.connections import connect

    query = """
        SELECT to_char(data_interval_end, 'MM-DD HH24:MI') AS interval_end, decision, trigger_type, severity,
               status, champion_version_before AS champ_before, champion_version_after AS champ_after,
               round(retraining_auc::numeric, 4) AS cand_auc, round(comparison_previous_auc::numeric, 4) AS prev_auc,
               round(improvement_auc_percent::numeric, 2) AS auc_gain_pct, left(trigger_reason, 90) AS reason
        FROM model_retraining_events WHERE dag_id = 'model_retraining' ORDER BY data_interval_end"""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall()
        names = [d.name for d in cur.description]
    widths = [max(len(str(n)), *(len(str(r[i])) for r in rows)) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for r in rows:
        print("  ".join(str("" if v is None else v).ljust(w) for v, w in zip(r, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the previous demo's MLflow store and events")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    LOCAL.mkdir(parents=True, exist_ok=True)

    step("starting the embedded PostgreSQL (events table and demo data)")
    from include.retraining.connections import embedded_postgres_dsn

    dsn = embedded_postgres_dsn()
    os.environ.setdefault("AIRFLOW_CONN_RETRAINING_DB", socket_uri(dsn))
    print(f"    {dsn}  (Airflow connection retraining_db)")
    if not args.keep:
        reset(dsn)

    step(f"writing the demo stream into {TABLE} (drift starts 2026-03-08 12:00 UTC)")
    from include.retraining import demo_data

    frame = demo_data.generate()
    demo_data.load_into_postgres(dsn, TABLE, frame)
    print(f"    {len(frame):,} applications, {int(frame[demo_data.LABEL].isna().sum()):,} still without a label")

    step("preparing Airflow's metadata database (SQLite)")
    migrate_airflow()
    from airflow.models.dagbag import DagBag

    airflow_log = LOCAL / "demo-airflow.log"
    airflow_log.write_text("")
    print(f"    task logs of every run: {airflow_log}")
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        print(bag.import_errors)
        return 1
    dag = bag.get_dag("model_retraining")

    defaults = {"model_type": None, "force_retrain": False, "check_only": False, "lookback_hours": None, "reason": ""}
    for end, conf in [*((e, {}) for e in INTERVAL_ENDS), FORCED]:
        window = f"[{(end - timedelta(hours=6)):%m-%d %H:%M}, {end:%m-%d %H:%M})"
        step(f"model_retraining for the window {window} UTC" + (f", triggered with {conf}" if conf else ""))
        t0 = time.monotonic()
        with airflow_output_to(airflow_log):
            run = dag.test(logical_date=end, run_after=end, run_conf={**defaults, **conf})
        from include.retraining.connections import connect

        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT decision, status, trigger_type, trigger_reason, drift_report_uri FROM model_retraining_events "
                "WHERE dag_id = %s AND run_id = %s",
                (dag.dag_id, run.run_id),
            )
            decision, status, trigger, reason, report = cur.fetchone() or (None, None, None, None, None)
        print(f"    run {run.state} in {time.monotonic() - t0:.0f} s: {decision} / {status} ({trigger}): {reason}")
        if report:
            print(f"    drift report (open in a browser, or from the drift-check run in MLflow): {report}")

    step("model_retraining_events")
    print_events(dsn)
    from include.retraining.config import load_config
    from include.retraining.registry import tracking_uri

    uri = tracking_uri(load_config())
    step("where to look next")
    print(f"    MLflow runs and registry:  .venv/bin/mlflow ui --backend-store-uri {uri}  (http://127.0.0.1:5000)")
    print("    SQL on the events table:   make psql   (then e.g. SELECT * FROM model_retraining_events"
          " ORDER BY triggered_at DESC LIMIT 10;)")
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
