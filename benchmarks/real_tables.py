"""Run validate and run on every table of the real-table corpus; write the outcome table.

    .venv/bin/python -m benchmarks.real_tables [--only NAME ...] [--no-write]

The same corpus and the same CLI calls as tests/flows/test_real_tables.py (default settings,
the tables as Parquet in a temporary directory), with the outcome of each command next to
the verdict tests/real_tables.py documents. Writes the section "Real-table corpus (issue 9)"
of benchmarks/RESULTS.md.
"""

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

SECTION = "## Real-table corpus (issue 9)"
PACKAGES = (
    "prefect",
    "pandas",
    "scikit-learn",
    "imbalanced-learn",
    "palmerpenguins",
    "statsmodels",
    "vega_datasets",
)
COMMANDS = ("validate", "run")


@dataclass(frozen=True)
class Outcome:
    """What one command did on one table."""

    exit_code: int
    failure: str | None
    failing: tuple[str, ...]
    warning: tuple[str, ...]
    seconds: float
    traceback: bool

    def describe(self) -> str:
        verdict = "passed" if self.exit_code == 0 else (self.failure or "no failure code")
        return f"exit {self.exit_code} {verdict}"


def run_command(argv: list[str], report: Path) -> Outcome:
    """Run the CLI in-process; return its exit code and the report's verdict and checks."""
    from retrain_guard.flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    seconds = time.perf_counter() - start
    written: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    checks = written.get("checks", [])
    return Outcome(
        exit_code=code,
        failure=(written.get("failure") or {}).get("code"),
        failing=tuple(c["code"] for c in checks if c["status"] == "fail"),
        warning=tuple(c["code"] for c in checks if c["status"] == "warn"),
        seconds=seconds,
        traceback="Traceback" in out.getvalue() + err.getvalue(),
    )


def as_expected(
    outcome: Outcome, exit_code: int, failure: str | None, fails: frozenset[str]
) -> bool:
    """Whether the outcome is the documented verdict, with no unexpected failing check."""
    return (
        outcome.exit_code == exit_code
        and outcome.failure == failure
        and set(outcome.failing) <= fails
        and not outcome.traceback
    )


def render(rows: list[str], machine: str, seconds: float, mismatches: int, alarms: int) -> str:
    header = (
        "| table | rows | minority share | label time | expected validate | expected run "
        "| validate | run | as expected | warnings / failures seen (run, else validate) |\n"
        "|---|---:|---:|---|---|---|---|---|---|---|\n"
    )
    return (
        f"{SECTION}\n\n"
        "Public real-world tables that ship inside PyPI packages, each turned into a binary "
        "training table as `tests/real_tables.py` documents (label, label time, columns left "
        "out and why, the verdict an honest tool must give and the reason). `validate` and "
        "`run` with default settings, through the CLI in one process; the same calls as "
        "`tests/flows/test_real_tables.py`. Reproduce with "
        "`.venv/bin/python -m benchmarks.real_tables`.\n\n"
        f"{machine}\n\n"
        + header
        + "\n".join(rows)
        + f"\n\n{len(rows)} tables, {2 * len(rows)} commands in {seconds:.0f} s; "
        f"{mismatches} table(s) not as documented, {alarms} false alarm(s) (a failing check "
        "the registry does not expect on a table, or a halt where it expects a pass).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="table names (default: the whole corpus)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args()

    import pandas as pd

    from benchmarks.results import describe_machine, replace_section
    from tests.real_tables import CORPUS, materialise, minority_share

    machine = describe_machine(PACKAGES)
    tables = [t for t in CORPUS if not args.only or t.name in args.only]
    rows: list[str] = []
    mismatches = alarms = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for table in tables:
            path = materialise(table, directory)
            frame = pd.read_parquet(path, columns=[table.label])
            outcomes: dict[str, Outcome] = {}
            for command in COMMANDS:
                report = directory / f"{table.name}-{command}.json"
                argv = table.argv(command, path, directory / "out", report)
                outcomes[command] = run_command(argv, report)
            matched = True
            for command, outcome in outcomes.items():
                expected = table.verdict(command)
                ok = as_expected(outcome, expected.exit_code, expected.failure, expected.fails)
                matched = matched and ok
                unexpected = set(outcome.failing) - expected.fails
                if unexpected or (expected.exit_code == 0 and outcome.exit_code != 0):
                    alarms += 1
            mismatches += not matched
            seen = (
                outcomes["run"]
                if outcomes["run"].failing or outcomes["run"].warning
                else (outcomes["validate"])
            )
            notes = [f"fail {c}" for c in seen.failing] + [f"warn {c}" for c in seen.warning]
            if any(o.traceback for o in outcomes.values()):
                notes.append("TRACEBACK")
            expected_text = {
                c: "pass" if table.verdict(c).exit_code == 0 else str(table.verdict(c).failure)
                for c in COMMANDS
            }
            rows.append(
                f"| {table.name} | {len(frame):,} | {minority_share(frame, table.label):.1%} "
                f"| {table.label_time or 'none (random split)'} | {expected_text['validate']} "
                f"| {expected_text['run']} | {outcomes['validate'].describe()} "
                f"| {outcomes['run'].describe()} | {'yes' if matched else 'NO'} "
                f"| {', '.join(notes) or '-'} |"
            )
            print(rows[-1], flush=True)
    body = render(rows, machine, time.perf_counter() - start, mismatches, alarms)
    if args.no_write:
        print(body)
    else:
        replace_section(SECTION, body)
        print(f"wrote {SECTION!r} to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
