"""Schema validation speed and memory against reading the same Parquet file.

Run: .venv/bin/python -m benchmarks.schema_bench --rows 1000000 [--write]
Writes the table under "## Schema validation (issue 3)" in benchmarks/RESULTS.md with --write.
"""

import argparse
import gc
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandera.pandas as pa

from benchmarks.results import describe_machine, replace_section
from retrain_guard.schemas.declaration import compile_spec, parse_spec
from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.schemas.roles import SchemaRoles
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.schema_failures import capped_schema, exact_counts, summarise_failures
from retrain_guard.tasks.validation import DeclaredSchema, validate_frame, validate_schema

T = TypeVar("T")

HEADING = "## Schema validation (issue 3)"
CATEGORIES = ["a", "b", "c", "d", "e", "f", "g"]


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Return rows x 30 columns: id, label, label time, 10 float, 8 int, 6 text, 3 dates."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-01")
    event = start + pd.to_timedelta(rng.integers(0, 365 * 86400, rows), unit="s")
    columns: dict[str, object] = {
        "row_id": np.char.add("r-", np.arange(rows).astype(str)),
        "label": rng.integers(0, 2, rows),
        "event_time": event,
    }
    for i in range(10):
        values = rng.normal(100, 20, rows)
        if i % 3 == 0:
            values[rng.random(rows) < 0.05] = np.nan
        columns[f"f{i}"] = values
    for i in range(8):
        columns[f"i{i}"] = rng.integers(0, 1000, rows)
    for i in range(6):
        columns[f"s{i}"] = rng.choice(CATEGORIES, rows)
    for i in range(3):
        columns[f"d{i}"] = event - pd.to_timedelta(rng.integers(0, 1000, rows), unit="D")
    frame = pd.DataFrame(columns)
    frame["row_id"] = frame["row_id"].astype("str")
    for i in range(6):
        frame[f"s{i}"] = frame[f"s{i}"].astype("str")
    return frame


def schema_yaml() -> str:
    lines = [
        "name: bench",
        "extra_columns: fail",
        "roles: {label: label, label_time: event_time, id: row_id}",
        "columns:",
        "  row_id: {dtype: str, unique: true}",
        "  label: {dtype: int64, isin: [0, 1]}",
        "  event_time: {dtype: datetime}",
    ]
    lines += [
        f"  f{i}: {{dtype: float64, ge: -1000, le: 1000, nullable: {str(i % 3 == 0).lower()}}}"
        for i in range(10)
    ]
    lines += [f"  i{i}: {{dtype: int64, ge: 0, le: 999}}" for i in range(8)]
    lines += [f"  s{i}: {{dtype: str, isin: {CATEGORIES}}}" for i in range(6)]
    lines += [f"  d{i}: {{dtype: datetime}}" for i in range(3)]
    lines += ["checks:"] + [f"  - {{left: d{i}, op: '<=', right: event_time}}" for i in range(3)]
    return "\n".join(lines) + "\n"


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Return the best wall time of `repeat` calls and the last call's result."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_bytes(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def rss_peak_delta(fn) -> int | None:  # type: ignore[no-untyped-def]
    """Return the rise of the process's peak RSS while fn runs (Linux; None elsewhere).

    Arrow allocates string buffers outside Python's allocator, which tracemalloc misses.
    """
    status, clear = Path("/proc/self/status"), Path("/proc/self/clear_refs")

    def field(name: str) -> int:
        match = re.search(rf"^{name}:\s+(\d+) kB", status.read_text(), re.M)
        return int(match.group(1)) * 1024 if match else 0

    try:
        gc.collect()
        before = field("VmRSS")
        clear.write_text("5")  # resets VmHWM to the current RSS
        fn()
        return max(0, field("VmHWM") - before)
    except OSError:
        return None


def rss_in_fresh_process(path: Path) -> int | None:
    """Return the peak RSS rise of one validation in a new process that has only read the file.

    A fresh process has little freed memory to reuse, so the rise is closer to the truth
    than in this process, where earlier steps left pages behind.
    """
    result = subprocess.run(
        [sys.executable, __file__, "--child-rss", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout.strip()
    return int(text) if text.isdigit() else None


def _child_rss(path: Path) -> None:
    declared, data, params = _setup()
    frame = read_table(path)
    print(rss_peak_delta(lambda: validate_frame(frame, declared, data, params)) or "")


def _setup() -> tuple[DeclaredSchema, DataParams, SchemaParams]:
    spec = parse_spec(schema_yaml(), "bench")
    declared = DeclaredSchema(compile_spec(spec), SchemaRoles(), "fail", False, "bench")
    data = DataParams(path="bench", label="label", label_time="event_time", id_column="row_id")
    return declared, data, SchemaParams(name="bench.yaml", max_failure_cases=100)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--child-rss", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        _child_rss(Path(args.child_rss))
        return
    declared, data, params = _setup()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.parquet"
        make_frame(args.rows).to_parquet(path, index=False)
        # Each round reads the file and validates that fresh frame, so both see the same load.
        reads, validations = [], []
        for _ in range(args.repeat):
            read_round, frame = timed(lambda: read_table(path), 1)
            assert isinstance(frame, pd.DataFrame)
            validate_round, (_validated, check) = timed(
                partial(validate_frame, frame, declared, data, params), 1
            )
            reads.append(read_round)
            validations.append(validate_round)
        read_s, validate_s = min(reads), min(validations)
        ratios = sorted(v / r for v, r in zip(validations, reads, strict=True))
        frame_bytes = int(frame.memory_usage(deep=True).sum())
        if check.status != "pass":
            raise SystemExit(f"benchmark frame should pass: {check.summary}")
        validate_peak = peak_bytes(lambda: validate_frame(frame, declared, data, params))
        validate_rss = rss_in_fresh_process(path)

        # The failure path: every row fails one range check, and 10% fail a comparison.
        broken = frame.copy()
        broken["i0"] = -1
        late = np.random.default_rng(1).random(len(broken)) < 0.1
        broken.loc[late, "d0"] = broken.loc[late, "event_time"] + pd.Timedelta(days=1)
        fail_s, failed = timed(lambda: validate_schema(broken, declared, data, params), 1)
        try:
            capped_schema(declared.schema, 100).validate(broken, lazy=True)
        except pa.errors.SchemaErrors as err:
            cases, counts = err.failure_cases, exact_counts(err)
        summarise_s, _ = timed(
            lambda: summarise_failures(
                cases, broken, "row_id", 100, declared.schema, False, counts
            ),
            1,
        )
        fail_counts = {f.check: f.count for f in failed.failures}
        fail_peak = peak_bytes(lambda: validate_frame(broken, declared, data, params))

    ratio_time = max(validate_s / read_s, ratios[len(ratios) // 2])
    peak = max(validate_peak, validate_rss or 0)
    ratio_mem = peak / frame_bytes
    mib = 1024 * 1024
    rows = [
        ("rows x columns", f"{len(frame):,} x {frame.shape[1]}"),
        ("frame in memory", f"{frame_bytes / mib:,.0f} MiB"),
        (f"read Parquet (best of {args.repeat})", f"{read_s:.2f} s"),
        (f"validate, passing (best of {args.repeat})", f"{validate_s:.2f} s"),
        (
            "validation / read time, worse of best-vs-best and median round (target <= 3x)",
            f"{ratio_time:.2f}x ({'met' if ratio_time <= 3 else 'MISSED'})",
        ),
        ("peak traced memory of validation (tracemalloc)", f"{validate_peak / mib:,.0f} MiB"),
        (
            "peak RSS rise during validation, fresh process after the read (/proc VmHWM)",
            "n/a" if validate_rss is None else f"{validate_rss / mib:,.0f} MiB",
        ),
        (
            "validation peak (larger of the two) / frame size (target < 3x)",
            f"{ratio_mem:.2f}x ({'met' if ratio_mem < 3 else 'MISSED'})",
        ),
        (
            "failing: validate + summarise, every row failing one check, 10% a comparison",
            f"{fail_s:.2f} s, of which summarise_failures {summarise_s:.2f} s; traced peak "
            f"{fail_peak / mib:,.0f} MiB (counts: "
            + ", ".join(f"{k} {v:,}" for k, v in fail_counts.items() if v is not None)
            + ")",
        ),
    ]
    machine = (
        describe_machine(("pandas", "pandera", "pyarrow", "numpy"))
        + " Run: `.venv/bin/python -m benchmarks.schema_bench --rows "
        f"{args.rows} --write` on {time.strftime('%Y-%m-%d')}."
    )
    table = "\n".join(
        [
            HEADING,
            "",
            "Schema: 30 columns with dtype, range, category and uniqueness checks, 3 "
            "dataframe-level comparisons and the time-zone check on 4 datetime columns "
            "(benchmarks/schema_bench.py). tracemalloc sees numpy buffers but not Arrow's "
            "(string columns), so the peak RSS rise is measured too; the larger one is judged.",
            "",
            "| measure | value |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in rows],
            "",
            machine,
            "",
        ]
    )
    print(table)
    if args.write:
        replace_section(HEADING, table)


if __name__ == "__main__":
    main()
