"""How long Airflow needs to parse dags/: the figure the DAG processor pays every ~30 seconds.

Runs ``DagBag(dag_folder=dags/)`` in fresh interpreters (so nothing is cached) and
prints, for each, the DagBag's own per-file parse duration and the wall time of the
whole DagBag fill, then the medians. ``import airflow`` itself is not counted: the DAG
processor has it loaded already.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import json, time, logging
logging.disable(logging.CRITICAL)
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder={dags!r})
total = time.perf_counter() - t
files = {{s.file: s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration
          for s in bag.dagbag_stats}}
print(json.dumps({{"total": total, "files": files, "errors": list(bag.import_errors), "dags": sorted(bag.dag_ids)}}))
"""


def main(runs: int = 5) -> int:
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(REPO)}
    env.setdefault("AIRFLOW_HOME", str(REPO / ".local" / "airflow"))
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(dags=str(REPO / "dags"))],
            capture_output=True, text=True, env=env, check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if results[0]["errors"]:
        print("import errors:", results[0]["errors"])
        return 1
    totals = [r["total"] for r in results]
    print(f"DAGs: {results[0]['dags']}")
    for file in results[0]["files"]:
        per_file = [r["files"][file] for r in results]
        print(f"{file}: median {statistics.median(per_file) * 1000:.0f} ms over {runs} fresh processes "
              f"(min {min(per_file) * 1000:.0f}, max {max(per_file) * 1000:.0f})")
    print(f"whole DagBag fill: median {statistics.median(totals) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
