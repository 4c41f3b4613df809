"""The demo: `model_retraining` run through Airflow over successive six-hour windows.

It starts everything it needs locally (an embedded PostgreSQL for the events table and
the demo's production data, a SQLite MLflow store, Airflow's SQLite metadata database,
all under ``.local/``), writes a credit-risk stream whose population drifts at
2026-03-08 12:00 UTC, and runs the DAG with ``dag.test()`` for five consecutive six-hour
intervals, dated as the scheduler dates them (logical date = the interval's start, so a
later ``airflow backfill create`` over these days finds them), then two more runs:

- [03-07 18:00, 03-08 00:00)  no champion yet: train, gate (absolute criteria), register, deploy v1
- [03-08 00:00, 06:00)        no drift: skip
- [03-08 06:00, 12:00)        no drift: skip
- [03-08 12:00, 18:00)        the window after the drift: detect, retrain, gate out of time, deploy v2
- [03-08 18:00, 03-09 00:00)  the new champion fits the new population: skip
- the drifted window again (a cleared and re-run run): a replay, judged by v1, the champion of its
  time; it records "would retrain" as its second attempt and the deployment stays on record
- a manual run without a logical date, as from the UI form (force, logistic regression): it checks
  the latest window holding labelled data, and the gate rejects the worse candidate

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
HOURS = timedelta(hours=6)
INTERVAL_STARTS = [datetime(2026, 3, 7, 18, tzinfo=timezone.utc) + i * HOURS for i in range(5)]
REPLAYED = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)  # the drifted window, run again after v2 took over
# The last run is triggered by hand, as from the UI form with the date left empty: a simpler model, forced.
MANUAL = (datetime(2026, 3, 9, 6, 30, tzinfo=timezone.utc),
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
    from include.retraining.record.champion_history import TABLE as HISTORY
    from include.retraining.record.champion_history import ensure_schema
    from include.retraining.record.events import ATTEMPTS
    from include.retraining.record.events import TABLE as EVENTS

    for folder in (LOCAL / "mlflow", LOCAL / "storage"):
        shutil.rmtree(folder, ignore_errors=True)
    ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        for table in (EVENTS, ATTEMPTS):
            cur.execute(f"DELETE FROM {table} WHERE dag_id = 'model_retraining'")
        cur.execute(f"DELETE FROM {HISTORY} WHERE model_name = 'credit_risk'")


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
        SELECT to_char(window_end, 'MM-DD HH24:MI') AS window_end, attempt, decision, trigger_type, severity,
               status, champion_version_before AS champ_before, champion_version_after AS champ_after,
               round(retraining_auc::numeric, 4) AS cand_auc, round(comparison_previous_auc::numeric, 4) AS prev_auc,
               round(improvement_auc_percent::numeric, 2) AS auc_gain_pct, left(trigger_reason, 90) AS reason
        FROM model_retraining_events WHERE dag_id = 'model_retraining' ORDER BY window_end, triggered_at"""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall()
        names = [d.name for d in cur.description]
    widths = [max(len(str(n)), *(len(str(r[i])) for r in rows)) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for r in rows:
        print("  ".join(str("" if v is None else v).ljust(w) for v, w in zip(r, widths, strict=True)))


def print_history(dsn: str) -> None:
    from include.retraining.connections import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_char(effective_at, 'MM-DD HH24:MI'), previous_version, version, action, run_id "
                    "FROM model_champion_history ORDER BY effective_at, id")
        for effective, previous, version, action, run_id in cur.fetchall():
            print(f"    from {effective}: v{version} (was {'v' + str(previous) if previous else 'none'}), {action} by {run_id}")


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
    from airflow.dag_processing.dagbag import DagBag

    airflow_log = LOCAL / "demo-airflow.log"
    airflow_log.write_text("")
    print(f"    task logs of every run: {airflow_log}")
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        print(bag.import_errors)
        return 1
    dag = bag.get_dag("model_retraining")

    from include.retraining.local_runs import run_manual, run_window

    defaults = {"model_type": None, "force_retrain": False, "check_only": False, "lookback_hours": None,
                "reason": None}
    runs = [(start, f"the window [{start:%m-%d %H:%M}, {start + HOURS:%m-%d %H:%M}) UTC", {}) for start in INTERVAL_STARTS]
    runs.append((REPLAYED, f"the window [{REPLAYED:%m-%d %H:%M}, {REPLAYED + HOURS:%m-%d %H:%M}) UTC again, "
                           "as a cleared run re-runs (a replay: v2 has taken over since)", {}))
    runs.append((None, f"a manual run without a logical date at {MANUAL[0]:%m-%d %H:%M} UTC, triggered with "
                       f"{MANUAL[1]}", MANUAL[1]))
    for start, what, conf in runs:
        step(f"model_retraining for {what}")
        t0 = time.monotonic()
        with airflow_output_to(airflow_log):
            if start is None:
                run = run_manual(dag, MANUAL[0], {**defaults, **conf})
            else:
                run = run_window(dag, start, start + HOURS, {**defaults, **conf})
        from include.retraining.connections import connect

        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT decision, status, trigger_type, trigger_reason, drift_report_uri, attempt, window_start, "
                "window_end FROM model_retraining_event_attempts WHERE dag_id = %s AND run_id = %s "
                "ORDER BY attempt DESC LIMIT 1",
                (dag.dag_id, run.run_id),
            )
            decision, status, trigger, reason, report, attempt, w_start, w_end = cur.fetchone() or (None,) * 8
        again = f" (attempt {attempt})" if attempt and attempt > 1 else ""
        print(f"    run {run.state} in {time.monotonic() - t0:.0f} s{again}: {decision} / {status} ({trigger}): {reason}")
        if start is None and w_end is not None:
            print(f"    it checked the window [{w_start:%m-%d %H:%M}, {w_end:%m-%d %H:%M}) UTC")
        if report:
            print(f"    drift report (open in a browser, or from the drift-check run in MLflow): {report}")

    step("model_retraining_events (the current row of each run)")
    print_events(dsn)
    step("model_champion_history (which champion served from when)")
    print_history(dsn)
    from include.retraining.config import load_config
    from include.retraining.release.registry import tracking_uri

    uri = tracking_uri(load_config())
    step("where to look next")
    print(f"    MLflow runs and registry:  .venv/bin/mlflow ui --backend-store-uri {uri}  (http://127.0.0.1:5000)")
    print("    SQL on the events table:   make psql   (then e.g. SELECT * FROM model_retraining_events"
          " ORDER BY triggered_at DESC LIMIT 10;)")
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
