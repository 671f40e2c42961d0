"""Time the per-column leakage measurements: in turn in one process, and on Prefect's Dask runner.

    .venv/bin/python -m benchmarks.dask_runner --rows 2000000 --date-columns 8 --workers 2

Prints a markdown table row per variant (seconds, best of --repeat). The Dask variants are
timed twice: on a cluster already running (the steady state of a shared cluster) and with
the cluster started for the run (what `compute.task_runner: dask` without an address costs).
"""

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def make_frame(rows: int, date_columns: int, seed: int = 0) -> pd.DataFrame:
    """Return a label time and `date_columns` dates, a few of them after the label time."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "s")
    label_time = start + rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]")
    frame = pd.DataFrame({"label_time": label_time})
    for i in range(date_columns):
        offset = rng.normal(-5 * 86400, 3 * 86400, rows).astype("int64").astype("timedelta64[s]")
        frame[f"date_{i}"] = label_time + offset
    return frame


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--date-columns", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from distributed import LocalCluster
    from prefect import flow

    from benchmarks.results import describe_machine
    from retrain_guard.schemas.params import ComputeParams
    from retrain_guard.tasks.leakage.date_leads import measure_post_label_dates
    from retrain_guard.tasks.parallel import dask_runner, measure_date_leads_on

    frame = make_frame(args.rows, args.date_columns)
    columns = [c for c in frame.columns if c != "label_time"]
    expected = measure_post_label_dates(frame, "label_time", columns)

    @flow(name="benchmark-dask-runner")
    def timed(compute: ComputeParams) -> float:
        def on_runner() -> None:
            measured = measure_date_leads_on(dask_runner(compute), frame, "label_time", columns)
            assert measured == expected

        return best_of(args.repeat, on_runner)

    default = best_of(args.repeat, lambda: measure_post_label_dates(frame, "label_time", columns))
    with LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        running = timed(ComputeParams(task_runner="dask", dask_address=cluster.scheduler_address))
    started = timed(ComputeParams(task_runner="dask", dask_workers=args.workers))

    print(describe_machine(("prefect", "prefect-dask", "dask", "pandas")))
    print(f"rows {args.rows:,}, date columns {len(columns)}, workers {args.workers}")
    print("| variant | seconds | speed-up |")
    print("|---|---|---|")
    for name, seconds in (
        ("default: columns in turn, one process", default),
        (f"dask: cluster running, {args.workers} workers", running),
        (f"dask: cluster started for the run, {args.workers} workers", started),
    ):
        print(f"| {name} | {seconds:.2f} | {default / seconds:.2f}x |")


if __name__ == "__main__":
    main()
