"""The demo: two models retrained by Airflow side by side over successive six-hour windows.

It starts everything it needs locally (an embedded PostgreSQL for the events table and
the demo's production data, a SQLite MLflow store, Airflow's SQLite metadata database,
all under ``.local/``) and writes two streams whose population drifts at 2026-03-08 12:00 UTC:
credit applications for the classifier ``credit_risk`` (DAG ``model_retraining``, the default
model) and the loss on each loan for the regressor ``loan_loss`` (DAG ``model_retraining__loan_loss``,
from include/config/loan_loss.yaml). It runs both DAGs with ``dag.test()`` for five consecutive
six-hour intervals, dated as the scheduler dates them (logical date = the interval's start, so a
later ``airflow backfill create`` over these days finds them), then two more runs of the classifier:

- [03-07 18:00, 03-08 00:00)  no champion yet: train, gate (absolute criteria), register, deploy v1
- [03-08 00:00, 06:00)        no drift: skip
- [03-08 06:00, 12:00)        no drift: skip
- [03-08 12:00, 18:00)        the window after the drift: detect, retrain, gate out of time, deploy v2
- [03-08 18:00, 03-09 00:00)  the new champion fits the new population: skip
- the drifted window again (a cleared and re-run run): a replay, judged by v1, the champion of its
  time, on the labels that had arrived when its run decided (``label_arrived_at``, the configs'
  ``columns.label_time``); it records "would retrain" as its second attempt and the deployment stays on record
- a manual run without a logical date, as from the UI form (force, logistic regression): it checks
  the latest window holding labelled data, and the gate rejects the worse candidate

The regressor, in the same windows: a first model (R2 and RMSE gated on absolute criteria), two
skips, the drift (a new loan purpose that loses far more) detected and retrained, the candidate gated
against its champion in R2 and RMSE and deployed, then a skip.

It starts from a clean demo state every time (``--keep`` keeps the previous state), then
prints the rows of ``model_retraining_events``, runs the SQL queries of the team's runbook on it
(each must return values for both models), and says where to find the MLflow runs.
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
LOSS_TABLE = "loan_losses"  # the regressor's source (include/config/loan_loss.yaml)
MODELS = {"model_retraining": "credit_risk", "model_retraining__loan_loss": "loan_loss"}  # DAG -> model
# The queries on model_retraining_events in the team's runbook ("Automatic Retraining - Quick Reference"),
# as written there: each must return rows of both models, the improvements query numbers for the regressor.
SEED_QUERIES = {
    "View All Retraining Events": "SELECT * FROM model_retraining_events \nORDER BY triggered_at DESC LIMIT 10;",
    "Count by Trigger Type": "SELECT trigger_type, COUNT(*) \nFROM model_retraining_events \nGROUP BY trigger_type;",
    "Successful Retrainings": "SELECT * FROM model_retraining_events \nWHERE execution_successful = TRUE \n"
                              "ORDER BY triggered_at DESC;",
    "Check Improvements": "SELECT \n    triggered_at,\n    trigger_type,\n    improvement_r2_percent,\n"
                          "    improvement_rmse_percent\nFROM model_retraining_events\nWHERE execution_successful = TRUE;",
    "Check Latest Event": "SELECT * FROM model_retraining_events \nORDER BY triggered_at DESC LIMIT 1;",
}

os.environ.setdefault("RETRAINING_HOME", str(LOCAL))
os.environ.setdefault("AIRFLOW_HOME", str(LOCAL / "airflow"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("RETRAINING_CONFIG", str(REPO / "include" / "config" / "credit_risk.yaml"))
os.environ.setdefault("RETRAINING_CONFIG_DIR", str(REPO / "include" / "config"))  # credit_risk.yaml, loan_loss.yaml
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
    from include.retraining.record import promotions
    from include.retraining.record.champion_history import TABLE as HISTORY
    from include.retraining.record.champion_history import ensure_schema
    from include.retraining.record.events import ATTEMPTS
    from include.retraining.record.events import TABLE as EVENTS

    for folder in (LOCAL / "mlflow", LOCAL / "storage"):
        shutil.rmtree(folder, ignore_errors=True)
    ensure_schema(dsn)
    promotions.ensure_schema(dsn)
    with connect(dsn) as conn, conn.cursor() as cur:
        for table in (EVENTS, ATTEMPTS):
            cur.execute(f"DELETE FROM {table} WHERE dag_id = ANY(%s)", (list(MODELS),))
        # the promotion records too: a promotion of the same run "completed earlier" would not be redone
        for table in (HISTORY, promotions.TABLE):
            cur.execute(f"DELETE FROM {table} WHERE model_name = ANY(%s)", (list(MODELS.values()),))


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


def print_table(names: list[str], rows: list[tuple], indent: str = "") -> None:
    widths = [max(len(str(n)), *(len(str(r[i])) for r in rows)) for i, n in enumerate(names)]
    print(indent + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for r in rows:
        print(indent + "  ".join(str("" if v is None else v).ljust(w) for v, w in zip(r, widths, strict=True)))


def print_events(dsn: str) -> None:
    """The current row of each run, per model: the classifier's AUC columns, the regressor's R2 and RMSE."""
    from include.retraining.connections import connect

    metrics = {
        "model_retraining": """round(retraining_auc::numeric, 4) AS cand_auc, round(comparison_previous_auc::numeric, 4)
               AS prev_auc, round(improvement_auc_percent::numeric, 2) AS auc_gain_pct""",
        "model_retraining__loan_loss": """round(retraining_r2::numeric, 4) AS cand_r2,
               round(comparison_previous_r2::numeric, 4) AS prev_r2, round(improvement_r2_percent::numeric, 2) AS
               r2_gain_pct, round(retraining_rmse::numeric, 1) AS cand_rmse, round(improvement_rmse_percent::numeric,
               2) AS rmse_gain_pct""",
    }
    for dag_id, model in MODELS.items():
        query = f"""
            SELECT to_char(window_end, 'MM-DD HH24:MI') AS window_end, attempt, decision, trigger_type, severity,
                   status, champion_version_before AS champ_before, champion_version_after AS champ_after,
                   {metrics[dag_id]}, left(trigger_reason, 80) AS reason
            FROM model_retraining_events WHERE dag_id = %s ORDER BY window_end, triggered_at"""
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, (dag_id,))
            rows = cur.fetchall()
            names = [d.name for d in cur.description]
        print(f"\n  {model} ({dag_id}):")
        print_table(names, rows, indent="  ")


def run_seed_queries(dsn: str) -> list[str]:
    """Run the runbook's queries as written; show what they return for each model; return what is missing."""
    from include.retraining.connections import connect

    problems: list[str] = []
    for title, query in SEED_QUERIES.items():
        print(f"\n  -- {title}\n  " + query.replace("\n", "\n  "))
        with connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query)
            rows = cur.fetchall()
            names = [d.name for d in cur.description]
        if "model_name" in names:  # SELECT *: the columns that say what happened, and how many are filled in
            at = {n: i for i, n in enumerate(names)}
            shown = ["model_name", "triggered_at", "trigger_type", "decision", "status", "execution_successful"]
            print_table([*shown, "columns_filled"],
                        [(*(r[at[n]] for n in shown), f"{sum(v is not None for v in r)}/{len(r)}") for r in rows],
                        indent="  ")
            if "LIMIT 1;" not in query:  # the latest event is one model's, of course
                seen = {r[at["model_name"]] for r in rows}
                problems += [f"{title}: no row of {m}" for m in sorted(set(MODELS.values()) - seen)]
        else:
            print_table(names, rows, indent="  ")
        if not rows:
            problems.append(f"{title}: no rows")
        if "improvement_r2_percent" in query:
            # which model each row is: the same query with model_name (the runbook's has none)
            cur_query = query.replace("SELECT \n", "SELECT \n    model_name,\n").rstrip(";") + " ORDER BY triggered_at;"
            with connect(dsn) as conn, conn.cursor() as cur:
                cur.execute(cur_query)
                rows = cur.fetchall()
                names = [d.name for d in cur.description]
            print("  -- the same rows with their model_name (and model_name added to the SELECT):")
            print_table(names, rows, indent="  ")
            gains = [r for r in rows if r[0] == "loan_loss" and r[3] is not None and r[4] is not None]
            if not gains:
                problems.append(f"{title}: no R2/RMSE improvement of loan_loss")
            if not {r[0] for r in rows} >= set(MODELS.values()):
                problems.append(f"{title}: not every model has a successful retraining")
    return problems


def print_history(dsn: str) -> None:
    from include.retraining.connections import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT model_name, to_char(effective_at, 'MM-DD HH24:MI'), previous_version, version, action, "
                    "dag_id, run_id FROM model_champion_history ORDER BY model_name, effective_at, id")
        for model, effective, previous, version, action, dag_id, run_id in cur.fetchall():
            print(f"    {model} from {effective}: v{version} (was {'v' + str(previous) if previous else 'none'}), "
                  f"{action} by {dag_id} {run_id}")


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

    step(f"writing the demo streams into {TABLE} and {LOSS_TABLE} (drift starts 2026-03-08 12:00 UTC)")
    from include.retraining import demo_data

    frame = demo_data.generate()
    demo_data.load_into_postgres(dsn, TABLE, frame)
    print(f"    {TABLE}: {len(frame):,} applications, {int(frame[demo_data.LABEL].isna().sum()):,} still without "
          "a label (whether the loan defaulted: the classifier credit_risk)")
    print(f"    each label's arrival time is in {demo_data.LABEL_TIME} (columns.label_time): a replay or backfill "
          "uses only the labels that had arrived by its run's time")
    losses = demo_data.generate_losses()
    demo_data.load_into_postgres(dsn, LOSS_TABLE, losses)
    print(f"    {LOSS_TABLE}: the same applications with the amount lost on each loan (the regressor loan_loss), "
          f"{int(losses[demo_data.LOSS_LABEL].isna().sum()):,} not known yet")

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
    missing = sorted(set(MODELS) - set(bag.dag_ids))
    if missing:
        print(f"    no DAG {missing}: is include/config/loan_loss.yaml in $RETRAINING_CONFIG_DIR "
              f"({os.environ['RETRAINING_CONFIG_DIR']})?")
        return 1
    print(f"    one DAG pair per model config: {', '.join(sorted(bag.dag_ids))}")
    dag, regressor = bag.get_dag("model_retraining"), bag.get_dag("model_retraining__loan_loss")

    from include.retraining.local_runs import run_manual, run_window

    defaults = {"model_type": None, "force_retrain": False, "check_only": False, "lookback_hours": None,
                "reason": None}
    runs = []
    for start in INTERVAL_STARTS:  # side by side: both models in each window
        for each in (dag, regressor):
            runs.append((each, start, f"the window [{start:%m-%d %H:%M}, {start + HOURS:%m-%d %H:%M}) UTC", {}))
    runs.append((dag, REPLAYED, f"the window [{REPLAYED:%m-%d %H:%M}, {REPLAYED + HOURS:%m-%d %H:%M}) UTC again, "
                                "as a cleared run re-runs (a replay: v2 has taken over since)", {}))
    runs.append((dag, None, f"a manual run without a logical date at {MANUAL[0]:%m-%d %H:%M} UTC, triggered with "
                            f"{MANUAL[1]}", MANUAL[1]))
    for dag, start, what, conf in runs:
        step(f"{dag.dag_id} ({MODELS[dag.dag_id]}) for {what}")
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

    step("model_retraining_events (the current row of each run, per model)")
    print_events(dsn)
    step("model_champion_history (which champion of which model served from when)")
    print_history(dsn)
    step("the runbook's queries on model_retraining_events, as written there")
    problems = run_seed_queries(dsn)
    print("\n    " + ("; ".join(problems) if problems else
                      "every query returns rows of both models; the improvements query has R2 and RMSE numbers "
                      "for loan_loss (the classifier's gains are in improvement_auc_percent)"))
    from include.retraining.config import load_config
    from include.retraining.release.registry import tracking_uri

    uri = tracking_uri(load_config())
    step("where to look next")
    print(f"    MLflow runs and registry:  .venv/bin/mlflow ui --backend-store-uri {uri}  (http://127.0.0.1:5000)")
    print("    SQL on the events table:   make psql   (then e.g. SELECT * FROM model_retraining_events"
          " ORDER BY triggered_at DESC LIMIT 10;)")
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
