"""Both engines at 1M to 20M rows: wall time and the process tree's peak memory (issue 13).

Run on demand (not in tests):
`.venv/bin/python -m benchmarks.engine_scale [--rows 1000000 5000000 10000000 20000000]
[--engines pandas dask] [--flows validate run] [--limit-gib 18] [--write] [--workdir DIR]`.

The 27-column table of benchmarks/validate_scale.py is generated in chunks (1M rows by
default) and never held whole: each chunk is make_wide's table with seeds of its own (the
example's columns drawn again with another seed), its row ids continuing the previous
chunk's and its times in its own slice of the year, so that ids stay unique and time keeps
increasing over the whole table. The chunks are written both into one Parquet file
(ParquetWriter, a row group a chunk) and as a dataset directory of one file a chunk; both are
cached in the workdir, so a rerun skips the generation. The measurements read the dataset
directory (`--layout dataset`, the default; `--layout file` reads the single file): the form a
large extract usually has, read by both engines (the Dask engine reads each file's 1M-row row
group as slices of about 64 MiB in pandas, tasks/dask_slices.py).

Each `retrain-guard validate` and `retrain-guard run` runs as the CLI in a fresh process with
`--engine pandas|dask`, its own output directory emptied first (no earlier model to compare
with, no history to judge against) and a config raising
compute.max_memory_fraction to 1 (the benchmark measures what the refusal would prevent). The
resident memory of its whole process tree (the flow, Dask's nannies and workers, Prefect's
temporary server) is sampled from /proc every 50 ms; a tree above `--limit-gib` is killed
(its whole process group), as is a run over `--timeout-min`. The pandas engine is not run
where its estimate says it cannot fit (the estimate times 4 for run, 3 for validate, above the
limit: a run peaks at about 3.4 tables from 5M rows on, once the model is fitted on the
class-aware training sample, and validate at about 2 to 2.7).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.memory_peak import BASELINE, CLI, _tree_rss
from benchmarks.results import describe_machine, replace_section
from benchmarks.validate_scale import make_wide
from retrain_guard.flows.example_data import START, make_transactions
from retrain_guard.schemas.example import ID, LABEL, LABEL_TIME
from retrain_guard.schemas.params import DataParams
from retrain_guard.schemas.report import Report
from retrain_guard.tasks.memory import estimate_table

SECTION = "## Both engines at scale (issue 13)"
PACKAGES = ("prefect", "pandas", "dask", "distributed", "pyarrow", "pandera", "scikit-learn")
SIZES = (1_000_000, 5_000_000, 10_000_000, 20_000_000)
ENGINES = ("pandas", "dask")
FLOWS = ("validate", "run")
# Bump when the generated table changes: the cached files are named after it.
GENERATOR = "g1"
# Seeds of chunk 0 are make_wide's own (its extras 11, the example's columns 7): a table of
# one chunk is exactly benchmarks/validate_scale.py's table, ids and times included.
BASE_SEED, EXTRA_SEED = 7, 11
YEAR = pd.Timedelta(days=365)
# Tables in memory a flow holds at its peak with the pandas engine on a large table (this
# benchmark: run 3.35 at 5M rows, where the fit uses the training sample; validate 2.0-2.7),
# rounded up: beyond that the run is not started. (At 1M rows, unsampled, run peaks at 10.)
PANDAS_COPIES = {"validate": 3.0, "run": 4.0}
SAMPLE_SECONDS = 0.05
GIB = 2**30
# The flow's imports, Prefect's temporary server and, for Dask, the run's local cluster.
DASK_BASELINE = (
    "import time, retrain_guard.flows.cli, retrain_guard.flows.retrain\n"
    "from prefect import flow\n"
    "from retrain_guard.schemas.params import ComputeParams\n"
    "from retrain_guard.tasks.dask_engine import dask_cluster\n"
    "@flow\ndef nothing() -> None:\n"
    "    compute = ComputeParams(engine='dask')\n"
    "    with dask_cluster(compute) as client:\n"
    "        client.wait_for_workers(compute.dask_workers)\n"
    "        time.sleep(2)\n"
    "nothing(); time.sleep(1)"
)
REAL_SIZE = (
    "import sys\n"
    "from retrain_guard.schemas.params import DataParams\n"
    "from retrain_guard.tasks.load import read_table\n"
    "frame = read_table(DataParams(path=sys.argv[1], label=sys.argv[2]))\n"
    "print(int(frame.memory_usage(deep=True).sum()))\n"
)
# A real read (memory_usage(deep=True)) is made up to this size, to state the estimate's ratio.
REAL_READ_MAX_ROWS = 5_000_000


# --- the table, in chunks ---------------------------------------------------------------


def chunk_sizes(rows: int, chunk_rows: int) -> list[int]:
    """Return the rows of each chunk: full chunks, then the remainder."""
    if rows < 1 or chunk_rows < 1:
        raise ValueError("rows and chunk_rows must be positive")
    full, rest = divmod(rows, chunk_rows)
    return [chunk_rows] * full + ([rest] if rest else [])


def _shift_dates(frame: pd.DataFrame, old_time: pd.Series) -> pd.DataFrame:
    """Move every date column other than the label time as the label time moved from
    `old_time`, so each keeps its distance to it (whole days stay whole days)."""
    moved = frame[LABEL_TIME] - old_time
    for name in frame.columns:
        column = frame[name]
        if name == LABEL_TIME or not pd.api.types.is_datetime64_any_dtype(column):
            continue
        whole_days = bool((column.dropna() == column.dropna().dt.floor("D")).all())
        shifted = column + moved
        frame[name] = shifted.dt.floor("D") if whole_days else shifted
    return frame


def with_base(wide: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Return `wide` with the example's columns taken from `base` (another seed's draw); the
    extra date columns keep their distance to the label time."""
    old_time = wide[LABEL_TIME].copy()
    result = wide.assign(**{name: base[name].to_numpy() for name in base.columns})
    return _shift_dates(result, old_time)


def continue_chunk(frame: pd.DataFrame, index: int, chunks: int, first_id: int) -> pd.DataFrame:
    """Place chunk `index` of `chunks` in the whole table.

    Its ids number on from `first_id` (the example's `tx-0000000` form), and its label times
    (within the example's year) are squeezed into the year's `index`-th slice of `chunks`, so
    the whole table spans one year with time increasing; the other date columns keep their
    distance to the label time. Chunk 0 of 1 is returned unchanged.
    """
    result = frame.copy()
    result[ID] = [f"tx-{first_id + i:07d}" for i in range(len(frame))]
    old_time = frame[LABEL_TIME]
    result[LABEL_TIME] = (START + (index * YEAR + (old_time - START)) / chunks).dt.round("s")
    return _shift_dates(result, old_time)


def make_chunk(rows: int, index: int, chunks: int, first_id: int) -> pd.DataFrame:
    """Return chunk `index` of the table: make_wide's columns, seeded by the chunk."""
    wide = make_wide(rows, seed=EXTRA_SEED + index)
    if index:  # make_wide draws the example's columns with one seed: draw them again
        wide = with_base(wide, make_transactions(rows=rows, seed=BASE_SEED + index))
    return continue_chunk(wide, index, chunks, first_id)


@dataclass(frozen=True)
class Tables:
    """One table's two cached forms: a single Parquet file and a dataset directory."""

    file: Path
    dataset: Path


def cached_tables(workdir: Path, rows: int, chunk_rows: int) -> Tables:
    """Return the table's paths in the workdir (named by rows, chunk size and generator)."""
    stem = f"wide_{GENERATOR}_{rows}_by_{chunk_rows}"
    return Tables(workdir / f"{stem}.parquet", workdir / stem)


def ensure_tables(workdir: Path, rows: int, chunk_rows: int) -> Tables:
    """Generate the table's file and dataset directory unless they are cached."""
    tables = cached_tables(workdir, rows, chunk_rows)
    if tables.file.exists() and tables.dataset.is_dir():
        return tables
    workdir.mkdir(parents=True, exist_ok=True)
    file_tmp = tables.file.with_name(f".{tables.file.name}.tmp")
    dir_tmp = tables.dataset.with_name(f".{tables.dataset.name}.tmp")
    dir_tmp.mkdir(exist_ok=True)
    sizes = chunk_sizes(rows, chunk_rows)
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    first_id = 0
    try:
        for index, size in enumerate(sizes):
            chunk = make_chunk(size, index, len(sizes), first_id)
            first_id += size
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            del chunk
            if schema is None:
                schema = table.schema
                writer = pq.ParquetWriter(file_tmp, schema)
            else:
                table = table.cast(schema)
            assert writer is not None
            writer.write_table(table, row_group_size=size)
            pq.write_table(table, dir_tmp / f"part-{index:05d}.parquet")
            say(f"  generated chunk {index + 1}/{len(sizes)} of {rows:,} rows")
    finally:
        if writer is not None:
            writer.close()
    file_tmp.replace(tables.file)
    if tables.dataset.exists():
        for stale in tables.dataset.iterdir():
            stale.unlink()
        tables.dataset.rmdir()
    dir_tmp.replace(tables.dataset)
    return tables


# --- one measured run -----------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What a process tree did: its peak, its wall time and how it ended."""

    peak: int
    wall: float
    exit_code: int | None
    stopped: str | None  # "killed at N GiB" or "timed out after N min"


def measure(argv: Sequence[str], limit: int, timeout: float, log: Path) -> Measured:
    """Run a command in its own process group, sampling its tree's resident memory.

    The whole group is killed when the tree exceeds `limit` bytes or the run `timeout` s.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        peak, stopped = 0, None
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            elapsed = time.perf_counter() - start
            if peak > limit:
                stopped = f"killed at {peak / GIB:.1f} GiB"
            elif elapsed > timeout:
                stopped = f"timed out after {timeout / 60:.0f} min"
            if stopped:
                _kill_group(process)
                break
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - start
    return Measured(peak, wall, None if stopped else process.returncode, stopped)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def verdict_of(report: Path) -> str:
    """Return the report's failure code (its first failing check), 'passed', or why not."""
    try:
        parsed = Report.model_validate_json(report.read_text())
    except (OSError, ValueError) as exc:
        return f"no report ({type(exc).__name__})"
    if parsed.failure is not None:
        return parsed.failure.code
    failing = next((c.code for c in parsed.checks if c.status == "fail"), None)
    return failing or "passed"


def pandas_need(estimate: int, flow: str) -> float:
    """Return the bytes the pandas engine's tree is expected to need for the flow."""
    return estimate * PANDAS_COPIES[flow]


def cli_argv(flow: str, engine: str, data: Path, out: Path, config: Path) -> list[str]:
    """Return the command of one CLI run with its own output directory and report."""
    return [
        *(sys.executable, "-c", CLI, flow, "--data", str(data), "--engine", engine),
        *("--label", LABEL, "--label-time", LABEL_TIME, "--id", ID, "--config", str(config)),
        *("--output-dir", str(out / "out"), "--report", str(out / "report.json")),
    ]


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One (rows, engine, flow) cell: measured, or why not."""

    rows: int
    engine: str
    flow: str
    table: int  # the estimate, bytes
    baseline: int
    measured: Measured | None
    verdict: str  # the report's verdict, or "not run: ..."

    @property
    def finished(self) -> bool:
        return self.measured is not None and self.measured.stopped is None


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def _row(result: Result) -> str:
    head = f"| {result.rows:,} | {result.engine} "
    m = result.measured
    if m is None:
        return head + f"| - | - | - | {_gib(result.table)} | - | - | {result.verdict} |"
    wall = f"{m.wall:.1f}" if m.stopped is None else f"> {m.wall:.0f}"
    verdict = m.stopped or result.verdict
    code = "-" if m.exit_code is None else str(m.exit_code)
    return (
        head + f"| {wall} | {_gib(m.peak)} | {_gib(m.peak - result.baseline)} "
        f"| {_gib(result.table)} | {m.peak / max(result.table, 1):.2f} | {code} | {verdict} |"
    )


def flow_table(results: Sequence[Result], flow: str) -> list[str]:
    """Return the markdown table of one flow: a row per size and engine."""
    lines = [
        f"`retrain-guard {flow}`:",
        "",
        "| rows | engine | wall s | peak tree GiB | peak less baseline GiB | table GiB "
        "| peak / table | exit | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(r) for r in results if r.flow == flow]
    return lines


def _find(results: Sequence[Result], rows: int, engine: str, flow: str) -> Result | None:
    return next(
        (r for r in results if (r.rows, r.engine, r.flow) == (rows, engine, flow) and r.finished),
        None,
    )


def _wall(result: Result) -> float:
    assert result.measured is not None
    return result.measured.wall


def derived(results: Sequence[Result]) -> list[str]:
    """Return the issue's figures: time growth, Dask against pandas, peak against table."""
    sizes = sorted({r.rows for r in results})
    lines = []
    big, small = (20_000_000, 5_000_000) if {20_000_000, 5_000_000} <= set(sizes) else (0, 0)
    if not big and len(sizes) > 1:
        big, small = sizes[-1], sizes[0]
    for engine in ENGINES:
        for flow in FLOWS:
            a, b = _find(results, big, engine, flow), _find(results, small, engine, flow)
            if a and b:
                lines.append(
                    f"- {engine} {flow}: time {big:,} / {small:,} rows = "
                    f"{_wall(a) / _wall(b):.2f} (rows x{big / small:g}; goal at 20M/5M: <= 4.5)"
                )
    at = 1_000_000 if 1_000_000 in sizes else (sizes[0] if sizes else 0)
    for flow in FLOWS:
        d, p = _find(results, at, "dask", flow), _find(results, at, "pandas", flow)
        if d and p:
            lines.append(
                f"- {flow} at {at:,} rows: Dask / pandas time = {_wall(d) / _wall(p):.2f} "
                "(goal at 1M: <= 3)"
            )
    if sizes:
        top = sizes[-1]
        for flow, goal in (("validate", 0.25), ("run", 0.5)):
            for engine in ENGINES:
                r = _find(results, top, engine, flow)
                if r is None or r.measured is None:
                    continue
                m = r.measured
                lines.append(
                    f"- {flow} at {top:,} rows, {engine}: peak / table = "
                    f"{m.peak / r.table:.2f} (less baseline "
                    f"{(m.peak - r.baseline) / r.table:.2f}; goal at 20M: <= {goal:g})"
                )
    return lines or ["- (no pair of finished runs to compare)"]


# --- the benchmark ----------------------------------------------------------------------


def say(line: str) -> None:
    print(line, flush=True)


def real_size(data: Path) -> int:
    """The table's bytes in pandas, read as the pandas engine reads it (a fresh process)."""
    done = subprocess.run(
        [sys.executable, "-c", REAL_SIZE, str(data), LABEL],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def _estimate(data: Path) -> int:
    return estimate_table(DataParams(path=str(data), label=LABEL)).bytes or 0


def baselines(workdir: Path, engines: Sequence[str], limit: int) -> dict[str, int]:
    """Peak tree RSS of each engine's process with no table (imports, server, cluster)."""
    found = {}
    for engine in engines:
        code = DASK_BASELINE if engine == "dask" else BASELINE
        m = measure([sys.executable, "-c", code], limit, 300, workdir / f"baseline_{engine}.log")
        found[engine] = m.peak
        say(f"baseline {engine}: {m.peak / GIB:.2f} GiB ({m.stopped or f'exit {m.exit_code}'})")
    return found


def runs(
    args: argparse.Namespace, workdir: Path, base: dict[str, int]
) -> Iterator[tuple[Result, str]]:
    """Generate the tables and run every cell; yield each result and a note on the table."""
    limit, timeout = int(args.limit_gib * GIB), args.timeout_min * 60
    config = workdir / "config.yaml"
    config.write_text("compute:\n  max_memory_fraction: 1.0\n")
    for rows in args.rows:
        tables = ensure_tables(workdir, rows, args.chunk_rows)
        data = tables.dataset if args.layout == "dataset" else tables.file
        # The single file's estimate: the same rows as the dataset's, and the estimate of a
        # dataset directory also counts its columns as hive partition values (tasks/memory.py).
        estimate = _estimate(tables.file)
        note = f"{rows:,} rows: estimate {estimate / GIB:.2f} GiB"
        if data != tables.file:
            note += f" (the flow's own estimate of the directory: {_estimate(data) / GIB:.2f} GiB)"
        if rows <= REAL_READ_MAX_ROWS:
            actual = real_size(data)
            note += f", real read {actual / GIB:.2f} GiB (estimate / real {estimate / actual:.2f})"
        say(note)
        for flow in args.flows:
            for engine in args.engines:
                out = workdir / "runs" / f"{rows}_{engine}_{flow}"
                need = pandas_need(estimate, flow)
                if engine == "pandas" and need > limit:
                    verdict = f"not run: would need ~{need / GIB:.1f} GiB"
                    result = Result(rows, engine, flow, estimate, base[engine], None, verdict)
                else:
                    # A fresh output directory: an earlier run's model or history would add
                    # the comparison with the last good model, or halt on row_count_drop.
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir(parents=True)
                    argv = cli_argv(flow, engine, data, out, config)
                    m = measure(argv, limit, timeout, out / "cli.log")
                    verdict = verdict_of(out / "report.json")
                    result = Result(rows, engine, flow, estimate, base[engine], m, verdict)
                say(f"{flow} {_row(result)}")
                yield result, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--flows", nargs="+", choices=FLOWS, default=list(FLOWS))
    parser.add_argument("--limit-gib", type=float, default=18.0, help="kill a tree above this")
    parser.add_argument("--timeout-min", type=float, default=30.0, help="kill a run after this")
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--layout", choices=("dataset", "file"), default="dataset")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/engine_scale"))
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    machine = describe_machine(PACKAGES)
    say(machine)
    args.workdir.mkdir(parents=True, exist_ok=True)
    base = baselines(args.workdir, args.engines, int(args.limit_gib * GIB))
    results, notes = [], []
    for result, note in runs(args, args.workdir, base):
        results.append(result)
        if note not in notes:
            notes.append(note)
    read = "dataset directory of one file a chunk" if args.layout == "dataset" else "single file"
    lines = [
        SECTION,
        "",
        f"By `python -m benchmarks.engine_scale --rows {' '.join(map(str, args.rows))} "
        f"--engines {' '.join(args.engines)} --flows {' '.join(args.flows)}`; "
        f"the {read} ({args.chunk_rows:,} rows a chunk) read; tree RSS sampled every "
        f"{SAMPLE_SECONDS * 1000:.0f} ms; limit {args.limit_gib:g} GiB, timeout "
        f"{args.timeout_min:g} min; compute.max_memory_fraction 1.",
        "",
        machine,
        "",
        "Baseline (tree RSS with no table): "
        + ", ".join(f"{engine} {peak / GIB:.2f} GiB" for engine, peak in base.items())
        + ". Table size: the flow's estimate from the Parquet footers (tasks/memory.py):",
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    for flow in args.flows:
        lines += [*flow_table(results, flow), ""]
    lines += ["Derived:", "", *derived(results), ""]
    body = "\n".join(lines)
    say("")
    say(body)
    if args.write:
        replace_section(SECTION, body)


if __name__ == "__main__":
    main()
