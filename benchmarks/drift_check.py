"""Time the data-drift check (profile + window summary + verdict) against Evidently, and measure its memory.

Main case (default): a reference and a current frame of N rows (default 1,000,000) x 20
numeric + 5 categorical features. Numeric features cycle through normal, lognormal,
integer counts (Poisson) and uniform, every fifth with 1 % NaN; categorical features are
plain object strings, one Python string per cell as a SQL read gives them, 5 to 17
categories with skewed frequencies (one with 1 % None). The current frame shifts five
features moderately: one numeric of each shape (normed Wasserstein ~0.3) and the first
categorical (Jensen-Shannon ~0.15); a sixth numeric feature moves by 0.02 standard
deviations, which neither tool should flag. Everything is generated from fixed seeds.

It times, in one run:

- ``build_profile`` on the reference (once per model, at training);
- our check, :func:`drift.summarize` on the current frame + :func:`drift.check` with
  ``DriftSection()`` defaults (``--repeat`` times; the first call is the headline, since it
  also pays for hashing the fresh strings, and for the lookup tables of the bins, cached per process);
- our check again on the same window with its categorical columns as codes and categories (pandas
  ``Categorical``: what a dictionary-encoded Parquet read, or a source sending integer codes, gives;
  the conversion is not timed), which must give the same result feature by feature;
- Evidently 0.7's ``Report([DataDriftPreset()])`` on the same two frames, both declared
  with a ``DataDefinition`` listing the same numeric and categorical columns;

and prints Evidently's time over ours (per check, and over profile + check), the features
each flags and whether each calls dataset drift (ours: share >= 0.25; Evidently: >= 0.5).

Memory: peak RSS over the call minus RSS just before it (``/proc/self/clear_refs`` resets
the high-water mark ``VmHWM``; free heap is returned to the OS with ``malloc_trim`` first,
so memory the call reuses is not hidden). Our check is measured again in a fresh child
process that only builds the current frame and holds the profile, both as that RSS
increment and as ``tracemalloc``'s peak of Python and NumPy allocations; both are set
against the window's size, ``cur.memory_usage(deep=True).sum()``.

``--large``: our check alone on 10,000,000 rows x 40 numeric + 10 categorical features in a
child process (the profile from a 1,000,000-row reference; categorical cells share one
string object per category, as NumPy indexing gives them). Evidently is not run.

``--postgres``: a 10,000,000-row x 25-feature window generated inside PostgreSQL (schema
``bench_drift_window_<pid>``, dropped afterwards), the profile from a 200,000-row reference
table read into pandas, then :func:`window_histograms.sql_histograms` + :func:`drift.check`
in a fresh child process, whose peak RSS must stay under 500 MB: ``VmHWM``, the high-water mark
of the child's own address space since it started, imports included (not ``ru_maxrss``, which a
spawned child inherits from the parent's footprint at fork time).

Usage (from the repository root)::

    .venv/bin/python benchmarks/drift_check.py [--rows 1000000] [--numeric 20] [--categorical 5] [--skip-evidently]
    .venv/bin/python benchmarks/drift_check.py --large
    .venv/bin/python benchmarks/drift_check.py --postgres [--dsn DSN]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DSN = os.environ.get("RETRAINING_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SHAPES = ("normal", "lognormal", "counts", "uniform")
REFERENCE_SEED, CURRENT_SEED = 1, 2
CATEGORY_SKEW, SHIFTED_SKEW = 1.5, 0.9  # category code = floor(k * u ** (1 / skew)): smaller codes more frequent
SUBTLE = 4  # the numeric feature moved by 0.02 standard deviations only
TARGET_SPEEDUP, TARGET_MEMORY_RATIO, TARGET_PG_RSS_MB = 100.0, 3.0, 500.0
TARGET_CODES_SPEEDUP, MOONSHOT_SPEEDUP = 300.0, 1000.0  # categorical columns as codes (issue 12)
MB = 2**20

log = logging.getLogger("bench.drift_check")


# ----------------------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _trim_heap() -> None:
    """Return freed heap to the OS, so the baseline RSS is live memory (glibc only)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakRSS:
    """RSS just before the block and its high-water mark during it (VmHWM after a reset), in MB."""

    def __enter__(self) -> PeakRSS:
        _trim_heap()
        with open("/proc/self/clear_refs", "w") as f:  # "5" resets VmHWM to the current RSS
            f.write("5")
        self.base = _status_kb("VmRSS") / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _status_kb("VmHWM") / 1024
        self.increment = self.peak - self.base


def timed(call: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call(*args)
    return time.perf_counter() - started, result


CPU_SECONDS: list[float] = []  # CPU time (all threads of this process) of each timed_cpu call, in order


def timed_cpu(call: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """As :func:`timed`, and the call's CPU time appended to ``CPU_SECONDS`` (less sensitive to load)."""
    cpu = time.process_time()
    seconds, result = timed(call, *args)
    CPU_SECONDS.append(time.process_time() - cpu)
    return seconds, result


# ------------------------------------------------------------------------------------------- data


def feature_names(n_numeric: int, n_categorical: int) -> tuple[list[str], list[str]]:
    numeric = [f"x{i:02d}_{SHAPES[i % 4]}" for i in range(n_numeric)]
    return numeric, [f"c{j:02d}" for j in range(n_categorical)]


def shifted_features(numeric: list[str], categorical: list[str]) -> list[str]:
    """The moderately shifted features: the first numeric of each shape and the first categorical."""
    return [*numeric[:4], *categorical[:1]]


def numeric_column(i: int, rows: int, seed: int, shift: bool) -> Any:
    import numpy as np

    rng = np.random.default_rng([seed, i])
    moved = shift and i < 4
    shape = SHAPES[i % 4]
    if shape == "normal":
        sd = 10.0
        loc = 50.0 + i + (0.3 * sd if moved else 0.0) + (0.02 * sd if shift and i == SUBTLE else 0.0)
        values = rng.normal(loc, sd, rows)
    elif shape == "lognormal":
        values = rng.lognormal(1.0 + 0.05 * i, 0.6, rows) * (1.25 if moved else 1.0)
    elif shape == "counts":
        values = rng.poisson((3.0 + i % 5) * (1.2 if moved else 1.0), rows).astype(float)
    else:
        values = rng.uniform(0.0, 100.0, rows) + (8.0 if moved else 0.0)
    if i % 5 == 0:
        values[rng.random(rows) < 0.01] = np.nan
    return values


def categorical_column(j: int, rows: int, seed: int, shift: bool, distinct_strings: bool) -> Any:
    """Object strings; ``distinct_strings``: one str object per cell (a SQL read), else shared per category."""
    import numpy as np

    rng = np.random.default_rng([seed, 1000 + j])
    k = 5 + (4 * j) % 16  # 5, 9, 13, 17, 5, ...
    skew = SHIFTED_SKEW if shift and j == 0 else CATEGORY_SKEW
    codes = np.minimum((k * rng.random(rows) ** (1.0 / skew)).astype(np.intp), k - 1)
    labels = np.array([f"c{j:02d}_value_{v}" for v in range(k)])
    column = labels[codes].astype(object) if distinct_strings else labels.astype(object)[codes]
    if j == 1:
        column[rng.random(rows) < 0.01] = None
    return column


def make_frame(rows: int, n_numeric: int, n_categorical: int, seed: int, shift: bool, distinct_strings: bool) -> Any:
    import pandas as pd

    numeric, categorical = feature_names(n_numeric, n_categorical)
    data: dict[str, Any] = {name: numeric_column(i, rows, seed, shift) for i, name in enumerate(numeric)}
    for j, name in enumerate(categorical):
        data[name] = categorical_column(j, rows, seed, shift, distinct_strings)
    return pd.DataFrame(data)


def frame_mb(frame: Any) -> tuple[float, float]:
    """The frame's size with every Python object counted (deep) and without (the pointers only)."""
    return frame.memory_usage(deep=True).sum() / MB, frame.memory_usage(deep=False).sum() / MB


# ------------------------------------------------------------------------------------------ tools


def settings() -> Any:
    from include.retraining.config import DriftSection

    return DriftSection()


def build_profile(frame: Any, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    from include.retraining.monitoring import drift

    s = settings()
    return drift.build_profile(frame, numeric, categorical, s.bins, fine_bins=s.fine_bins, sample_rows=s.sample_rows)


def our_check(frame: Any, profile: dict[str, Any]) -> dict[str, Any]:
    from include.retraining.monitoring import drift

    return drift.check(profile, drift.summarize(frame, profile), settings())


def run_evidently(ref: Any, cur: Any, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
        current_data=Dataset.from_pandas(cur, data_definition=definition),
    )
    count, flagged, methods = None, [], set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            count, share, share_threshold = metric["value"]["count"], metric["value"]["share"], config["drift_share"]
        elif config["type"].endswith("ValueDrift"):
            methods.add(config["method"])
            p_value = "p_value" in config["method"]
            value, threshold = metric["value"], config["threshold"]
            if (value < threshold) if p_value else (value >= threshold):
                flagged.append(config["column"])
    return {"count": int(count), "share": share, "detected": share >= share_threshold, "flagged": sorted(flagged),
            "share_threshold": share_threshold, "methods": sorted(methods)}


# --------------------------------------------------------------------------------- child processes


def in_child(function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(*args)`` in a fresh (spawned) interpreter and return its result."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def _child_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="  [child] %(name)s: %(message)s", stream=sys.stdout)


def child_check_memory(rows: int, n_numeric: int, n_categorical: int, profile: dict[str, Any]) -> dict[str, Any]:
    """Build the current frame, then measure one check's RSS increment and tracemalloc peak."""
    _child_logging()
    import include.retraining.config  # noqa: F401
    import include.retraining.monitoring.drift  # noqa: F401  (imports before the baseline)

    cur = make_frame(rows, n_numeric, n_categorical, CURRENT_SEED, shift=True, distinct_strings=True)
    deep, shallow = frame_mb(cur)
    with PeakRSS() as rss:
        seconds, result = timed(our_check, cur, profile)
    _trim_heap()
    tracemalloc.start()
    our_check(cur, profile)
    traced = tracemalloc.get_traced_memory()[1] / MB
    tracemalloc.stop()
    log.info("child: check in %.2fs, RSS %.0f -> peak %.0f MB, tracemalloc peak %.0f MB",
             seconds, rss.base, rss.peak, traced)
    return {"deep": deep, "shallow": shallow, "base": rss.base, "peak": rss.peak, "increment": rss.increment,
            "traced": traced, "seconds": seconds, "flagged": len(result["drifted_features"])}


def child_large(rows: int, n_numeric: int, n_categorical: int, reference_rows: int, repeat: int) -> dict[str, Any]:
    """Profile from a reference of ``reference_rows``, then time our check on ``rows`` in memory."""
    _child_logging()
    numeric, categorical = feature_names(n_numeric, n_categorical)
    ref = make_frame(reference_rows, n_numeric, n_categorical, REFERENCE_SEED, shift=False, distinct_strings=False)
    profile_seconds, profile = timed(build_profile, ref, numeric, categorical)
    del ref
    log.info("profile of %s reference rows in %.1fs; generating %s current rows", f"{reference_rows:,}",
             profile_seconds, f"{rows:,}")
    generated, cur = timed(lambda: make_frame(rows, n_numeric, n_categorical, CURRENT_SEED, True, False))
    deep, shallow = frame_mb(cur)
    log.info("generated in %.1fs: %.0f MB deep, %.0f MB without the string objects", generated, deep, shallow)
    times, result, rss = [], None, None
    for run in range(repeat):
        with PeakRSS() as measured:
            seconds, result = timed(our_check, cur, profile)
        rss = rss or measured
        times.append(seconds)
        log.info("check %d: %.2fs, RSS +%.0f MB", run + 1, seconds, measured.increment)
    return {"profile_seconds": profile_seconds, "times": times, "deep": deep, "shallow": shallow, "base": rss.base,
            "peak": rss.peak, "increment": rss.increment,
            "flagged": result["drifted_features"], "detected": result["detected"]}


def child_postgres(dsn: str, schema: str, rows: int, categorical: list[str], profile: dict[str, Any],
                   repeat: int) -> dict[str, Any]:
    """sql_histograms + check over the table, in a process that never held the rows."""
    _child_logging()
    from psycopg2 import sql

    from include.retraining.monitoring import drift
    from include.retraining.monitoring.window_histograms import sql_histograms

    before = _status_kb("VmHWM") / 1024
    relation = sql.Identifier(schema, "events")
    end = T0 + timedelta(seconds=rows)
    times, result = [], None
    for _ in range(repeat):
        def call() -> dict[str, Any]:
            summary = sql_histograms(dsn, relation, "ts", T0, end, drift.window_edges(profile), categorical,
                                     bounds=drift.bounds(profile))
            assert summary["rows"] == rows, (summary["rows"], rows)
            return drift.check(profile, summary, settings())

        seconds, result = timed(call)
        times.append(seconds)
    return {"times": times, "before": before, "max_rss": _status_kb("VmHWM") / 1024,
            "flagged": result["drifted_features"],
            "detected": result["detected"]}


# ------------------------------------------------------------------------------------------ cases


def uptime() -> str:
    """The machine's load (``uptime``): timings on a shared machine are read beside it."""
    import subprocess

    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def forget_tables() -> None:
    """Drop the check's cached lookup tables (built from the profile's edges on first use in a process)."""
    from include.retraining.monitoring import drift

    drift._grid_cache.clear()


def row(label: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"  {label:<58} {value:>22}  {target:<12} {verdict}")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def run_main(args: argparse.Namespace) -> None:
    import pandas as pd  # noqa: F401

    import include.retraining.monitoring.drift  # noqa: F401

    numeric, categorical = feature_names(args.numeric, args.categorical)
    shifted = shifted_features(numeric, categorical)
    load_before = uptime()
    seconds, ref = timed(lambda: make_frame(args.rows, args.numeric, args.categorical, REFERENCE_SEED, False, True))
    log.info("reference frame generated in %.1fs", seconds)
    seconds, cur = timed(lambda: make_frame(args.rows, args.numeric, args.categorical, CURRENT_SEED, True, True))
    deep, shallow = frame_mb(cur)
    log.info("current frame generated in %.1fs: %.0f MB deep (%.0f MB without the string objects)",
             seconds, deep, shallow)

    profile_seconds, profile = timed(build_profile, ref, numeric, categorical)
    log.info("profile built in %.2fs", profile_seconds)
    times, ours, ours_rss = [], None, None
    forget_tables()  # the first call pays for what a fresh task process would
    for run in range(args.repeat):
        with PeakRSS() as measured:
            seconds, ours = timed_cpu(our_check, cur, profile)
        ours_rss = ours_rss or measured
        times.append(seconds)
        log.info("our check %d: %.3fs (RSS +%.0f MB)", run + 1, seconds, measured.increment)
    strings_cpu = CPU_SECONDS[0]
    # the same window with its categorical columns as codes and categories (pandas Categorical), as a
    # dictionary-encoded Parquet read or a source that sends integer codes gives it; converting is not timed
    cur_codes = cur.assign(**{name: cur[name].astype("category") for name in categorical})
    forget_tables()
    code_times, ours_codes = [], None
    for run in range(args.repeat):
        seconds, ours_codes = timed_cpu(our_check, cur_codes, profile)
        code_times.append(seconds)
        log.info("our check, categoricals as codes %d: %.3fs", run + 1, seconds)
    codes_cpu = CPU_SECONDS[len(times)]
    del cur_codes
    if args.cprofile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(our_check, cur, profile)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(18)

    evidently, evidently_seconds, evidently_rss = None, None, None
    if not args.skip_evidently:
        log.info("running Evidently's DataDriftPreset on %s x 2 rows (minutes)", f"{args.rows:,}")
        with PeakRSS() as evidently_rss:
            evidently_seconds, evidently = timed_cpu(run_evidently, ref, cur, numeric, categorical)
        evidently_cpu = CPU_SECONDS[-1]
        log.info("Evidently: %.1fs, methods %s", evidently_seconds, evidently["methods"])

    del ref
    log.info("measuring the check's memory in a fresh child process")
    child = in_child(child_check_memory, args.rows, args.numeric, args.categorical, profile)

    first, best = times[0], min(times)
    n_features = len(numeric) + len(categorical)
    print(f"\nDrift check, {args.rows:,} rows x {n_features} features ({len(numeric)} numeric, {len(categorical)} "
          f"categorical as object strings); shifted: {', '.join(shifted)}")
    print(f"current window: {deep:.0f} MB (memory_usage deep; {shallow:.0f} MB without the string objects)")
    print(f"uptime before: {load_before}\nuptime after:  {uptime()}\n")
    row("metric", "value", "target", "")
    row("build_profile on the reference (once per model)", f"{profile_seconds:.2f} s")
    row(f"our check, summarize + check: first call (of {len(times)})", f"{first:.3f} s")
    row("our check: median / best", f"{statistics.median(times):.3f} / {best:.3f} s")
    row("our check: CPU time of the first call (all threads)", f"{strings_cpu:.3f} s")
    row("our check, categoricals as codes: first call", f"{code_times[0]:.3f} s")
    row("our check, categoricals as codes: CPU time of the first call", f"{codes_cpu:.3f} s")
    row("our check, categoricals as codes: median / best",
        f"{statistics.median(code_times):.3f} / {min(code_times):.3f} s")
    row("our profile + check", f"{profile_seconds + first:.2f} s")
    if evidently is not None:
        speedup, speedup_total = evidently_seconds / first, evidently_seconds / (profile_seconds + first)
        row("Evidently Report([DataDriftPreset()]).run", f"{evidently_seconds:.1f} s")
        row("Evidently: CPU time (all threads)", f"{evidently_cpu:.1f} s")
        row("Evidently / our check, CPU time (first calls): strings / codes",
            f"{evidently_cpu / strings_cpu:.0f}x / {evidently_cpu / codes_cpu:.0f}x")
        row("Evidently / our check (first call)", f"{speedup:.0f}x", f">= {TARGET_SPEEDUP:.0f}x",
            verdict(speedup >= TARGET_SPEEDUP))
        row("Evidently / our check (median)", f"{evidently_seconds / statistics.median(times):.0f}x")
        codes_speedup = evidently_seconds / code_times[0]
        row("Evidently / our check, categoricals as codes (first call)", f"{codes_speedup:.0f}x",
            f">= {TARGET_CODES_SPEEDUP:.0f}x", verdict(codes_speedup >= TARGET_CODES_SPEEDUP))
        row("Evidently / our check, categoricals as codes (median)",
            f"{evidently_seconds / statistics.median(code_times):.0f}x", f"({MOONSHOT_SPEEDUP:.0f}x moonshot)")
        # the profile is built once per model, at training; the target is per check
        row("Evidently / our profile + check (for scale)", f"{speedup_total:.0f}x")
    else:
        row("Evidently", "skipped")
    row("in this process: RSS increment, our check", f"{ours_rss.increment:.0f} MB")
    if evidently_rss is not None:
        row("in this process: RSS increment, Evidently", f"{evidently_rss.increment:.0f} MB")
    row("child: RSS before the check (frame + profile + imports)", f"{child['base']:.0f} MB")
    row("child: peak RSS during the check (absolute)", f"{child['peak']:.0f} MB")
    row("child: peak RSS increment over the frame", f"{child['increment']:.0f} MB")
    ratio = child["increment"] / child["deep"]
    row("child: increment / window size", f"{ratio:.2f}x", f"<= {TARGET_MEMORY_RATIO:.0f}x",
        verdict(ratio <= TARGET_MEMORY_RATIO))
    row("child: tracemalloc peak (Python + NumPy) / window size", f"{child['traced']:.0f} MB = "
        f"{child['traced'] / child['deep']:.2f}x")
    row("child: absolute peak RSS / window size", f"{child['peak'] / child['deep']:.2f}x")
    print("\nverdicts on the same frames:")
    same_codes = ours_codes["features"] == ours["features"]
    print(f"  ours with the categoricals as codes: the same result, feature by feature: {same_codes}")
    print(f"  ours      ({len(ours['drifted_features'])} flagged, share {ours['unweighted_share']:.2f}, "
          f"dataset drift at >= {ours['share_threshold']}: {ours['detected']}): {sorted(ours['drifted_features'])}")
    if evidently is not None:
        print(f"  Evidently ({evidently['count']} flagged, share {evidently['share']:.2f}, dataset drift at >= "
              f"{evidently['share_threshold']}: {evidently['detected']}): {evidently['flagged']}")
        agree = sorted(ours["drifted_features"]) == evidently["flagged"]
        print(f"  same features flagged: {agree}; expected (shifted): {sorted(shifted)}")
        statistic = {f["feature"]: f["statistic"] for f in ours["features"]}
        print("  our statistic per shifted feature: "
              + ", ".join(f"{name} {statistic[name]:.3f}" for name in shifted))


def run_large(args: argparse.Namespace) -> None:
    n_features = args.numeric + args.categorical
    log.info("generating and checking %s rows x %d features in a child process", f"{args.rows:,}", n_features)
    r = in_child(child_large, args.rows, args.numeric, args.categorical, args.reference_rows, args.repeat)
    first = r["times"][0]
    print(f"\nDrift check in memory, {args.rows:,} rows x {n_features} features ({args.numeric} numeric, "
          f"{args.categorical} categorical, object strings shared per category)")
    print(f"current window: {r['deep']:.0f} MB (memory_usage deep; {r['shallow']:.0f} MB without the string "
          f"objects, which are shared here)\n")
    row("build_profile on a reference of " + f"{args.reference_rows:,} rows", f"{r['profile_seconds']:.1f} s")
    row(f"our check, summarize + check: first call (of {len(r['times'])})", f"{first:.2f} s")
    row("our check: best", f"{min(r['times']):.2f} s")
    row("rows per second (first call)", f"{args.rows / first:,.0f}")
    row("RSS before the check (frame + profile + imports)", f"{r['base']:.0f} MB")
    row("peak RSS during the check (absolute)", f"{r['peak']:.0f} MB")
    row("peak RSS increment over the frame", f"{r['increment']:.0f} MB")
    row("increment / window size (deep)", f"{r['increment'] / r['deep']:.2f}x", f"<= {TARGET_MEMORY_RATIO:.0f}x",
        verdict(r["increment"] / r["deep"] <= TARGET_MEMORY_RATIO))
    row("increment / window size (without string objects)", f"{r['increment'] / r['shallow']:.2f}x")
    row("Evidently", "not run")
    print(f"\n  ours: {len(r['flagged'])} flagged, dataset drift {r['detected']}: {sorted(r['flagged'])}")


def _numeric_sql(i: int, shift: bool) -> str:
    """The shapes of the in-memory frames, in SQL: Box-Muller normals, geometric counts (no Poisson in SQL)."""
    normal = "sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())"
    moved = shift and i < 4
    shape = SHAPES[i % 4]
    if shape == "normal":
        offset = 3.0 if moved else (0.2 if shift and i == SUBTLE else 0.0)
        expr = f"{50 + i + offset} + 10 * {normal}"
    elif shape == "lognormal":
        expr = f"{1.25 if moved else 1.0} * exp({1.0 + 0.05 * i} + 0.6 * {normal})"
    elif shape == "counts":
        expr = f"floor(-ln(1 - random()) * {(3.0 + i % 5) * (1.2 if moved else 1.0)})"
    else:
        expr = f"random() * 100 + {8.0 if moved else 0.0}"
    return f"CASE WHEN random() < 0.01 THEN NULL ELSE {expr} END" if i % 5 == 0 else expr


def _categorical_sql(j: int, shift: bool) -> str:
    k = 5 + (4 * j) % 16
    skew = SHIFTED_SKEW if shift and j == 0 else CATEGORY_SKEW
    value = f"'c{j:02d}_value_' || least(floor({k} * power(random(), {1.0 / skew}))::int, {k - 1})"
    return f"CASE WHEN random() < 0.01 THEN NULL ELSE {value} END" if j == 1 else value


def _create_table(cur: Any, schema: str, table: str, rows: int, numeric: list[str], categorical: list[str],
                  shift: bool, seed: float) -> None:
    from psycopg2 import sql

    columns = [sql.SQL("{} + g * interval '1 second' AS ts").format(sql.Literal(T0))]
    columns += [sql.SQL(f"({_numeric_sql(i, shift)})::float8 AS {{}}").format(sql.Identifier(c))
                for i, c in enumerate(numeric)]
    columns += [sql.SQL(f"{_categorical_sql(j, shift)} AS {{}}").format(sql.Identifier(c))
                for j, c in enumerate(categorical)]
    cur.execute("SELECT setseed(%s)", [seed])
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {} FROM generate_series(0, %s) AS g").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(columns)), [rows - 1])
    cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, table)))


def run_postgres(args: argparse.Namespace) -> None:
    import pandas as pd
    import psycopg2
    from psycopg2 import sql

    numeric, categorical = feature_names(args.numeric, args.categorical)
    schema = f"bench_drift_window_{os.getpid()}"
    conn = psycopg2.connect(args.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            log.info("generating %s reference rows and a %s-row window in PostgreSQL (schema %s)",
                     f"{args.reference_rows:,}", f"{args.rows:,}", schema)
            load_seconds, _ = timed(lambda: (
                _create_table(cur, schema, "reference", args.reference_rows, numeric, categorical, False, 0.11),
                _create_table(cur, schema, "events", args.rows, numeric, categorical, True, 0.42)))
            cur.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [f"{schema}.events"])
            table_size = cur.fetchone()[0]
            log.info("tables built in %.1fs; window table %s", load_seconds, table_size)
            cur.execute(sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, [*numeric, *categorical])),
                sql.Identifier(schema, "reference")))
            ref = pd.DataFrame(cur.fetchall(), columns=[*numeric, *categorical])
        ref[numeric] = ref[numeric].astype(float)
        profile_seconds, profile = timed(build_profile, ref, numeric, categorical)
        del ref
        log.info("profile of the reference built in %.2fs; checking the window in a fresh child process",
                 profile_seconds)
        r = in_child(child_postgres, args.dsn, schema, args.rows, categorical, profile, args.repeat)
    finally:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.close()
        log.info("dropped schema %s", schema)

    first = r["times"][0]
    print(f"\nDrift check inside PostgreSQL, {args.rows:,} rows x {len(numeric) + len(categorical)} features "
          f"({len(numeric)} numeric, {len(categorical)} categorical), table {table_size}\n")
    row("loading the tables (generate_series in PostgreSQL)", f"{load_seconds:.1f} s")
    row(f"build_profile on {args.reference_rows:,} reference rows", f"{profile_seconds:.2f} s")
    row(f"sql_histograms + check: first call (of {len(r['times'])})", f"{first:.1f} s")
    if len(r["times"]) > 1:
        row("sql_histograms + check: best", f"{min(r['times']):.1f} s")
    row("rows per second (first call)", f"{args.rows / first:,.0f}")
    row("child peak RSS before the call (imports)", f"{r['before']:.0f} MB")
    row("child peak RSS (VmHWM since start, imports included)", f"{r['max_rss']:.0f} MB", f"< {TARGET_PG_RSS_MB:.0f} MB",
        verdict(r["max_rss"] < TARGET_PG_RSS_MB))
    print(f"\n  ours: {len(r['flagged'])} flagged, dataset drift {r['detected']}: {sorted(r['flagged'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None,
                        help="rows per frame (default 1,000,000; 10,000,000 with --large or --postgres)")
    parser.add_argument("--numeric", type=int, default=None, help="numeric features (default 20; 40 with --large)")
    parser.add_argument("--categorical", type=int, default=None,
                        help="categorical features (default 5; 10 with --large)")
    parser.add_argument("--skip-evidently", action="store_true", help="time our check only")
    parser.add_argument("--large", action="store_true", help="our check alone on 10M rows x 50 features in memory")
    parser.add_argument("--postgres", action="store_true", help="sql_histograms + check over a PostgreSQL table")
    parser.add_argument("--reference-rows", type=int, default=None,
                        help="reference rows for the profile with --large (1,000,000) or --postgres (200,000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed calls of the check (default 3; 2 with --large or --postgres); the first is reported")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL for --postgres")
    parser.add_argument("--cprofile", action="store_true", help="print a cProfile of one check (main case)")
    args = parser.parse_args()
    if args.large and args.postgres:
        parser.error("--large and --postgres are separate runs")
    big = args.large or args.postgres
    args.rows = args.rows or (10_000_000 if big else 1_000_000)
    args.numeric = args.numeric if args.numeric is not None else (40 if args.large else 20)
    args.categorical = args.categorical if args.categorical is not None else (10 if args.large else 5)
    args.repeat = args.repeat or (2 if big else 3)
    args.reference_rows = args.reference_rows or (200_000 if args.postgres else 1_000_000)
    if args.numeric < 0 or args.categorical < 0 or args.numeric + args.categorical == 0:
        parser.error("need at least one feature")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stdout)
    logging.getLogger("include.retraining").setLevel(logging.WARNING if not args.postgres else logging.INFO)
    if args.large:
        run_large(args)
    elif args.postgres:
        run_postgres(args)
    else:
        run_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
