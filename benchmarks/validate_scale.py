"""How `retrain-guard validate` scales with the rows, against a plain Parquet read.

Run on demand (not in tests):
`.venv/bin/python -m benchmarks.validate_scale [--repeats 5] [--write]`.

A clean 27-column table (the example's 10 columns and 17 more: numeric, categorical, some
with missing values, and a date known before the label time) is written as Parquet at 20k
and 1M rows. Each measure runs in a fresh process:
- read: the wall time of `pandas.read_parquet` of the 1M file (the call alone);
- validate: the wall time of the whole `retrain-guard validate` process at 20k and at 1M,
  with the stages' own timings from the report's `run.timings_seconds`.
The data-dependent cost of validation is T(1M) - T(20k): process start, imports and
Prefect's orchestration cancel out. The ratio divides it by the read. Medians of the
repeats are compared; the machine may be shared, so only figures of one run are compared.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.results import describe_machine, replace_section
from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.schemas.example import ID, LABEL, LABEL_TIME

SECTION = "## Validation at scale: latest run"
PACKAGES = ("prefect", "pandera", "pandas", "numpy", "pyarrow")
SIZES = (20_000, 1_000_000)
STAGES = ("load", "schema", "profile", "leakage")
COUNTRIES = tuple(f"C{i:02d}" for i in range(24))
DEVICES = ("ios", "android", "web", "terminal")
CARDS = ("debit", "credit", "prepaid")
SEGMENTS = ("retail", "premium", "business", "student", "senior")


def make_wide(rows: int, seed: int = 11) -> pd.DataFrame:
    """Return the example transactions with 17 clean extra columns: 27 in all, seeded."""
    frame = make_transactions(rows=rows)
    rng = np.random.default_rng(seed)
    event_time = frame[LABEL_TIME]

    def with_missing(values: np.ndarray, share: float) -> np.ndarray:
        return np.where(rng.random(rows) < share, np.nan, values)

    extra = {
        "merchant_risk_score": np.round(rng.beta(2.0, 8.0, rows), 4),
        "avg_amount_30d": np.round(rng.lognormal(3.4, 0.5, rows), 2),
        "txn_count_7d": rng.poisson(9.0, rows).astype("int64"),
        "txn_count_30d": rng.poisson(35.0, rows).astype("int64"),
        "days_since_last_txn": with_missing(np.round(rng.exponential(2.0, rows), 2), 0.03),
        "customer_age": rng.integers(18, 90, rows).astype("int64"),
        "credit_limit": np.round(rng.choice([500.0, 1000.0, 2500.0, 5000.0, 10000.0], rows), 2),
        "balance": with_missing(np.round(rng.uniform(0.0, 5000.0, rows), 2), 0.02),
        "n_devices": rng.integers(1, 6, rows).astype("int64"),
        "hour_of_day": rng.integers(0, 24, rows).astype("int64"),
        "is_weekend": (rng.random(rows) < 2 / 7).astype("int64"),
        "country": rng.choice(COUNTRIES, rows),
        "device_type": rng.choice(DEVICES, rows, p=[0.35, 0.35, 0.25, 0.05]),
        "card_type": rng.choice(CARDS, rows, p=[0.5, 0.4, 0.1]),
        "customer_segment": pd.Series(rng.choice(SEGMENTS, rows)).where(rng.random(rows) >= 0.04),
        "merchant_id": pd.Series(rng.integers(0, 5000, rows)).map("m{:04d}".format),
        "last_login_at": (
            event_time - pd.to_timedelta(rng.integers(60, 30 * 24 * 3600, rows), unit="s")
        ),
    }
    wide = frame.assign(**{name: np.asarray(values) for name, values in extra.items()})
    assert wide.shape[1] == 27, wide.shape
    return wide


READ = (
    "import sys, time, pandas\n"
    "t = time.perf_counter(); pandas.read_parquet(sys.argv[1]); "
    "print(time.perf_counter() - t)\n"
)
VALIDATE = "import sys; from retrain_guard.flows.cli import main; sys.exit(main(sys.argv[1:]))"


def time_read(path: Path) -> float:
    """Seconds a fresh process spends in pandas.read_parquet of the file."""
    out = subprocess.run(
        [sys.executable, "-c", READ, str(path)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def time_validate(path: Path, workdir: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of a fresh `retrain-guard validate` process, and its stages' timings.

    Each run writes to an output directory of its own: runs sharing one would be compared
    with each other's history (a 20k-row run after a 1M-row one halts with row_count_drop).
    """
    report = workdir / "report.json"
    out = Path(tempfile.mkdtemp(prefix="out-", dir=workdir))
    argv = [
        *("validate", "--data", str(path), "--label", LABEL),
        *("--label-time", LABEL_TIME, "--id", ID),
        *("--report", str(report), "--output-dir", str(out)),
    ]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", VALIDATE, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"validate exited {done.returncode}: {done.stderr[-2000:]}")
    timings = json.loads(report.read_text())["run"]["timings_seconds"]
    return wall, {stage: float(timings.get(stage, 0.0)) for stage in STAGES}


def median_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    return {stage: statistics.median(run[stage] for run in runs) for stage in STAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label", default="this branch", help="row name in the table")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    machine = describe_machine(PACKAGES)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        files = {rows: workdir / f"wide_{rows}.parquet" for rows in SIZES}
        for rows, path in files.items():
            write_table(make_wide(rows), path)
        big = files[SIZES[-1]]
        size_mb = big.stat().st_size / 1e6
        # Freshly written files are still being flushed to disk: reads made meanwhile are
        # slower by a varying amount. Flush, and run each measure once untimed.
        os.sync()
        time_read(big)
        for path in files.values():
            time_validate(path, workdir)
        reads: list[float] = []
        walls: dict[int, list[float]] = {n: [] for n in SIZES}
        stages: dict[int, list[dict[str, float]]] = {n: [] for n in SIZES}
        for _ in range(args.repeats):
            reads.append(time_read(big))
            for rows, path in files.items():
                wall, timed = time_validate(path, workdir)
                walls[rows].append(wall)
                stages[rows].append(timed)
    read = statistics.median(reads)
    t_small, t_big = (statistics.median(walls[n]) for n in SIZES)
    ratio = (t_big - t_small) / read
    best_ratio = (min(walls[SIZES[-1]]) - min(walls[SIZES[0]])) / min(reads)
    per_stage = {n: median_stages(stages[n]) for n in SIZES}
    # The stages alone, without process start and Prefect's constant costs: steadier.
    in_flow = sum(per_stage[SIZES[-1]].values()) - sum(per_stage[SIZES[0]].values())
    lines = [
        f"{args.label}: 1M x 27 Parquet ({size_mb:.0f} MB), medians of {args.repeats} fresh"
        " processes",
        f"  read_parquet 1M: {read:.3f} s (best {min(reads):.3f})",
        f"  validate 20k: {t_small:.2f} s, 1M: {t_big:.2f} s; T(1M) - T(20k) = "
        f"{t_big - t_small:.2f} s",
        f"  ratio (T(1M) - T(20k)) / read = {ratio:.2f} (from the best runs: {best_ratio:.2f})",
        f"  stages only: sum at 1M - sum at 20k = {in_flow:.2f} s, {in_flow / read:.2f} x the read",
    ]
    for rows in SIZES:
        parts = ", ".join(f"{s} {per_stage[rows][s]:.3f}" for s in STAGES)
        lines.append(f"  stages at {rows:,} rows (s): {parts}")
    print(machine)
    print("\n".join(lines))
    if args.write:
        how = "By `.venv/bin/python -m benchmarks.validate_scale --write`; see the section above."
        body = "\n".join([SECTION, "", how, "", machine, "", "```", *lines, "```", ""])
        replace_section(SECTION, body)


if __name__ == "__main__":
    main()
