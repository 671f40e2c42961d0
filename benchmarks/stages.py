"""Time each stage of the retrain flow on the example data at scale; write benchmarks/RESULTS.md.

Run on demand (not in tests): `make benchmark`, or
`.venv/bin/python -m benchmarks.stages --rows 1000000`.

Each stage's plain functions run once, in order, on the previous stage's output; a sampler
thread records the process's peak resident memory during the stage, reported as growth over
the memory held when the stage began. Prefect's orchestration is left out: its cost per task
does not grow with the rows.
"""

import argparse
import gc
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.results import RESULTS, describe_machine, example_params, replace_section
from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.schemas.report import Report
from retrain_guard.tasks.evaluation import Evaluation, evaluate
from retrain_guard.tasks.features import FeatureChecks, check_features
from retrain_guard.tasks.gate import judge_holdout
from retrain_guard.tasks.leakage.detect import detect_leakage
from retrain_guard.tasks.leakage.split_sharing import check_split_leakage
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.profile import judge_label, measure_label
from retrain_guard.tasks.publish import publish
from retrain_guard.tasks.split import Split, judge_split, make_split
from retrain_guard.tasks.training import Trained, fit_model, split_parts
from retrain_guard.tasks.validation import declare_schema, validate_frame

PAGE = os.sysconf("SC_PAGE_SIZE")
SECTION = "## Stages of the retrain flow (issue 2)"
PACKAGES = ("prefect", "pandera", "pandas", "numpy", "scikit-learn", "imbalanced-learn")


class RssPeak:
    """Sample this process's resident memory every few milliseconds and keep the peak.

    tracemalloc misses Arrow's allocator, so the resident set is the honest measure of
    what a stage costs the machine.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * PAGE

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> "RssPeak":
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def measure(step: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run `step`; return its result, wall seconds and peak resident memory growth in MiB."""
    gc.collect()
    with RssPeak() as sampler:
        before = RssPeak.rss()
        start = time.perf_counter()
        result = step()
        seconds = time.perf_counter() - start
    return result, seconds, max(0, sampler.peak - before) / 2**20


def run(rows: int, workdir: Path) -> list[tuple[str, float, float]]:
    frame = make_transactions(rows=rows)
    path = write_table(frame, workdir / "example.parquet")
    params = example_params(path, workdir / "out")
    data = params.data
    table: list[tuple[str, float, float]] = []

    def stage(name: str, step: Callable[[], Any]) -> Any:
        result, seconds, peak = measure(step)
        table.append((name, seconds, peak))
        print(f"{name:>10}: {seconds:8.2f} s  {peak:9.1f} MiB", flush=True)
        return result

    loaded = stage("load", lambda: read_table(path))
    schema = declare_schema(params.schema_, data, list(loaded.columns))
    validated, _ = stage("schema", lambda: validate_frame(loaded, schema, data, params.schema_))
    profile_value = stage("profile", lambda: measure_label(validated, data.label))
    judge_label(profile_value, data.label)
    stage(
        "leakage",
        lambda: detect_leakage(validated, data, params.leakage, profile_value.positive),
    )

    def split_and_check() -> Split:
        split = make_split(validated, data, params.split)
        judge_split(split, validated[data.label], profile_value.positive, data)
        check_split_leakage(validated, split, data, params.leakage)
        return split

    split = stage("split", split_and_check)
    parts = split_parts(validated, data, split.train, split.holdout, profile_value)

    def train() -> tuple[Trained, FeatureChecks]:
        trained = fit_model(parts.X_train, parts.y_train, params.model, params.resample)
        return trained, check_features(trained, parts, params)

    trained, checked = stage("train", train)
    # The evaluation fits the model a second time on the earlier training rows (the
    # threshold analysis; a stratified sample of them on a large table).
    evaluation: Evaluation = stage("evaluate", lambda: evaluate(trained, parts, params))
    stage(
        "gate",
        lambda: judge_holdout(evaluation.holdout, params.gate, [], checked.separation),
    )
    stage("publish", lambda: publish(trained.model, Report(status="passed"), workdir / "out"))
    return table


def write_results(rows: int, table: list[tuple[str, float, float]]) -> None:
    total = sum(seconds for _, seconds, _ in table)
    lines = [
        SECTION,
        "",
        f"Example data (`flows/example_data.py`), {rows:,} rows, Parquet; default parameters "
        "(logistic_regression, class_weight balanced, no resampling), example schema. Each "
        "stage runs what the flow's stage runs: leakage = every whole-table check; split = "
        "the cut, both-classes check and split leakage; train = fit and feature checks; "
        "evaluate = holdout and training-part metrics, baseline and the threshold analysis "
        "(a second fit on the earlier training rows, a stratified sample of them on a large "
        "table). "
        "`python -m benchmarks.stages --rows N`; peak = growth of the resident set during the "
        "stage over what the process held when it began.",
        "",
        f"{describe_machine(PACKAGES)} Measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| stage | seconds | share of total | peak memory growth MiB |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds, peak in table:
        lines.append(f"| {name} | {seconds:.2f} | {seconds / total:.0%} | {peak:.0f} |")
    lines.append(f"| **total** | **{total:.2f}** | 100% | |")
    replace_section(SECTION, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = run(args.rows, Path(tmp))
    write_results(args.rows, table)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
