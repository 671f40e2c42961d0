"""How many copies of the table the flow holds at its peak: the ground for the default of
compute.max_memory_fraction.

Run on demand (not in tests): `.venv/bin/python -m benchmarks.memory_peak [--rows N] [--write]`.

The 27-column table of benchmarks/validate_scale.py is written as Parquet. The flow's own
estimate of its in-memory size (tasks/memory.py, from the Parquet footers) is compared with the
table's real size after reading (`memory_usage(deep=True)`), and `retrain-guard validate` and
`retrain-guard run` each run in a fresh process whose resident memory (the whole process tree,
from /proc) is sampled every 20 ms. The peak, less the resident memory of a process that only
imported the project (interpreter, libraries, Prefect's temporary server), divided by the
table's size, is the number of table-sized copies the stages hold at once.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.results import describe_machine, replace_section
from benchmarks.validate_scale import make_wide
from retrain_guard.flows.example_data import write_table
from retrain_guard.schemas.example import ID, LABEL, LABEL_TIME
from retrain_guard.schemas.params import ComputeParams, DataParams
from retrain_guard.tasks.memory import estimate_table

SECTION = "## Memory peak of the pandas engine (issue 13)"
PACKAGES = ("prefect", "pandas", "numpy", "pyarrow", "scikit-learn")
CLI = "import sys; from retrain_guard.flows.cli import main; sys.exit(main(sys.argv[1:]))"
# The flow's imports and Prefect's temporary server, without a table.
BASELINE = (
    "import time, retrain_guard.flows.cli, retrain_guard.flows.retrain; "
    "from prefect import flow\n"
    "@flow\ndef nothing() -> None: pass\n"
    "nothing(); time.sleep(1)"
)
PAGE = 4096


def _tree_rss(pid: int) -> int:
    """Resident bytes of the process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry.name))
        rss[int(entry.name)] = int(stat[21]) * PAGE
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo += children.get(current, [])
    return total


def peak_rss(argv: list[str]) -> tuple[int, float]:
    """Run a command; return the peak resident bytes of its process tree and its wall time."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode not in (0, 1):  # 1: halted by a check, still a whole run
        raise RuntimeError(f"{argv[:3]} exited {process.returncode}: {stderr[-2000:]}")
    return peak, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    machine = describe_machine(PACKAGES)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "wide.parquet"
        write_table(make_wide(args.rows), path)
        data = DataParams(path=str(path), label=LABEL, label_time=LABEL_TIME, id_column=ID)
        estimate = estimate_table(data)
        actual = int(pd.read_parquet(path).memory_usage(deep=True).sum())
        baseline, _ = peak_rss([sys.executable, "-c", BASELINE])
        rows = []
        for command in ("validate", "run"):
            argv = [
                *(sys.executable, "-c", CLI, command, "--data", str(path)),
                *("--label", LABEL, "--label-time", LABEL_TIME, "--id", ID),
                *("--output-dir", str(workdir / "out"), "--report", str(workdir / "r.json")),
            ]
            peak, wall = peak_rss(argv)
            rows.append((command, peak, wall))
    mib = 2**20
    fraction = ComputeParams().max_memory_fraction
    lines = [
        machine,
        "",
        f"`python -m benchmarks.memory_peak --rows {args.rows}`: a {args.rows:,}-row x 27-column "
        f"table. In memory after reading: {actual / mib:.0f} MiB; the flow's estimate from the "
        f"Parquet footers: {(estimate.bytes or 0) / mib:.0f} MiB ({estimate.method}). Resident "
        f"memory of the process tree with the project imported and no table: "
        f"{baseline / mib:.0f} MiB.",
        "",
        "| command | wall s | peak MiB (process tree) | peak less no-table baseline, in tables |",
        "|---|---|---|---|",
    ]
    for command, peak, wall in rows:
        copies = (peak - baseline) / actual
        lines.append(f"| {command} | {wall:.1f} | {peak / mib:.0f} | {copies:.1f} |")
    worst = max((peak - baseline) / actual for _, peak, _ in rows)
    lines += [
        "",
        f"The default compute.max_memory_fraction {fraction:g} admits a table up to "
        f"{fraction:g} of the available memory; at the peak the run above holds about "
        f"{worst:.1f} tables' worth beyond the process's own memory, so a table admitted at "
        f"the limit needs about {fraction * worst:.1f}x the available memory at the peak"
        + (
            ": the default leaves headroom."
            if fraction * worst <= 1
            else ": the default does not leave headroom at this peak; a lower fraction "
            f"(at most {1 / worst:.2f}) would."
        ),
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        replace_section(SECTION, body)


if __name__ == "__main__":
    main()
