"""Time the retrain flow's train-to-gate stages against a bare fit and predict, at 1M rows.

Run on demand (not in tests): `.venv/bin/python -m benchmarks.train_to_gate --rows 1000000
[--repeats 3] [--write]`.

The example table (`flows/example_data.py`) is written as Parquet, read, validated and split
as the flow does. A first model is published to a temporary output dir, so `latest` names a
last good model and the comparison runs. Then, alternately, each repeat measures:
- bare: the same pipeline built and fitted on the training part (tasks/training.py
  build_model), and its positive-class scores of the holdout;
- train-to-gate: the plain functions the flow's stages call, in its order: train, the feature
  checks, evaluate (holdout and training-part metrics, baseline, threshold analysis), the
  comparison with the last good model (its scores and the paired bootstrap), the gate.
Prefect's orchestration is left out: its cost per task does not grow with the rows.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.results import describe_machine, example_params, replace_section
from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import Report
from retrain_guard.tasks.compare import Comparison, compare_with_last_good, judge_regression
from retrain_guard.tasks.evaluation import evaluate
from retrain_guard.tasks.features import check_features
from retrain_guard.tasks.gate import judge_holdout
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.profile import measure_label
from retrain_guard.tasks.publish import publish
from retrain_guard.tasks.split import make_split
from retrain_guard.tasks.training import (
    Parts,
    Trained,
    build_model,
    positive_scores,
    publishable,
    split_parts,
    train,
)
from retrain_guard.tasks.validation import declare_schema, validate_frame

HEADING = "## Train to gate: latest run"
PACKAGES = ("pandas", "numpy", "scikit-learn", "imbalanced-learn")
STAGES = ("train", "features", "evaluate", "compare", "gate")


def prepare(rows: int, workdir: Path) -> tuple[RetrainParams, Parts]:
    """Write the example table, read, validate and split it; publish a first model."""
    path = write_table(make_transactions(rows=rows), workdir / "example.parquet")
    params = example_params(path, workdir / "out")
    data = params.data
    loaded = read_table(path)
    schema = declare_schema(params.schema_, data, list(loaded.columns))
    frame, _ = validate_frame(loaded, schema, data, params.schema_)
    assert frame is not None, "the example table passes its schema"
    profile = measure_label(frame, data.label)
    split = make_split(frame, data, params.split)
    parts = split_parts(frame, data, split.train, split.holdout, profile)
    # The last good model: the same pipeline fitted on every other training row.
    first = Trained(
        model=build_model(parts.X_train, params.model, params.resample).fit(
            parts.X_train.iloc[::2], parts.y_train[::2]
        ),
        counts_before={},
        counts_after={},
        features=parts.features,
    )
    publish(publishable(first, parts), Report(status="passed"), params.publish.output_dir)
    return params, parts


@dataclass(frozen=True)
class Seconds:
    """Wall time, and this process's CPU time (less sensitive to a shared machine's load)."""

    wall: float
    cpu: float

    def __add__(self, other: "Seconds") -> "Seconds":
        return Seconds(self.wall + other.wall, self.cpu + other.cpu)


def timed(step: Callable[[], Any]) -> tuple[Any, Seconds]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, Seconds(time.perf_counter() - wall, time.process_time() - cpu)


def bare(params: RetrainParams, parts: Parts) -> Seconds:
    """Fit the pipeline on the training part and score the holdout; return the seconds."""

    def fit_and_predict() -> Any:
        model = build_model(parts.X_train, params.model, params.resample)
        model.fit(parts.X_train, parts.y_train)
        return positive_scores(model, parts.X_holdout)

    return timed(fit_and_predict)[1]


@dataclass
class Stages:
    seconds: dict[str, Seconds]
    verdicts: list[tuple[str, str]]
    # The report's numbers that sampling or fewer replicates may move.
    measured: dict[str, Any]

    @property
    def total(self) -> Seconds:
        return sum(self.seconds.values(), Seconds(0.0, 0.0))


def train_to_gate(params: RetrainParams, parts: Parts) -> Stages:
    """Run the flow's stages from train to the gate; return each stage's seconds."""
    seconds: dict[str, Seconds] = {}
    trained, seconds["train"] = timed(lambda: train(parts, params))
    assert isinstance(trained, Trained)
    checked, seconds["features"] = timed(lambda: check_features(trained, parts, params))
    evaluation, seconds["evaluate"] = timed(lambda: evaluate(trained, parts, params))
    comparison, seconds["compare"] = timed(
        lambda: compare_with_last_good(trained, parts, params, evaluation.holdout_scores)
    )
    verdicts, seconds["gate"] = timed(
        lambda: [
            *judge_holdout(evaluation.holdout, params.gate, [], checked.separation),
            judge_regression(comparison, params.gate),
        ]
    )
    on_train = evaluation.training_part
    measured: dict[str, Any] = {
        "threshold": evaluation.threshold.threshold,
        "validation_f1": evaluation.threshold.validation_f1,
        "training_part": (on_train.roc_auc, on_train.pr_auc, on_train.predicted),
        "threshold_for_prior": evaluation.threshold_for_prior,
    }
    if isinstance(comparison, Comparison):
        m = comparison.metrics["pr_auc"]
        measured["pr_auc interval"] = (round(m.low, 5), round(m.high, 5))
        measured["replicates"] = comparison.replicates
    return Stages(seconds, [(v.code, v.status) for v in verdicts], measured)


def run(rows: int, repeats: int) -> tuple[list[Seconds], list[Stages]]:
    with tempfile.TemporaryDirectory() as tmp:
        params, parts = prepare(rows, Path(tmp))
        bares: list[Seconds] = []
        stages: list[Stages] = []
        for i in range(repeats):
            bares.append(bare(params, parts))
            stages.append(train_to_gate(params, parts))
            b, t = bares[-1], stages[-1].total
            print(
                f"repeat {i + 1}: bare {b.wall:.2f} s (cpu {b.cpu:.2f}), train-to-gate "
                f"{t.wall:.2f} s (cpu {t.cpu:.2f}); "
                + " ".join(f"{k} {v.wall:.2f}" for k, v in stages[-1].seconds.items()),
                flush=True,
            )
    return bares, stages


def summary(rows: int, bares: list[Seconds], stages: list[Stages]) -> list[str]:
    lines = [f"{rows:,} rows, medians of {len(bares)} alternating repeats"]
    for kind in ("wall", "cpu"):
        base = [getattr(b, kind) for b in bares]
        total = [getattr(s.total, kind) for s in stages]
        ratios = [t / b for t, b in zip(total, base, strict=True)]
        per_stage = {
            k: statistics.median(getattr(st.seconds[k], kind) for st in stages) for k in STAGES
        }
        lines += [
            f"  {kind}: bare fit + predict {statistics.median(base):.2f} s (best {min(base):.2f}),"
            f" train-to-gate {statistics.median(total):.2f} s (best {min(total):.2f})",
            f"  {kind}: ratio of the medians "
            f"{statistics.median(total) / statistics.median(base):.2f},"
            f" median of the per-repeat ratios {statistics.median(ratios):.2f}",
            f"  {kind}: stages (s) " + ", ".join(f"{k} {v:.2f}" for k, v in per_stage.items()),
        ]
    lines.append("  verdicts: " + ", ".join(f"{c} {s}" for c, s in stages[-1].verdicts))
    lines.append("  measured: " + ", ".join(f"{k} {v}" for k, v in stages[-1].measured.items()))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    machine = describe_machine(PACKAGES)
    bares, stages = run(args.rows, args.repeats)
    lines = summary(args.rows, bares, stages)
    print("\n".join(lines))
    if args.write:
        body = [
            HEADING,
            "",
            "By `.venv/bin/python -m benchmarks.train_to_gate --write`; see the section above.",
            "",
            f"{machine} Measured {time.strftime('%Y-%m-%d')}.",
            "",
            "```",
            *lines,
            "```",
        ]
        replace_section(HEADING, "\n".join(body) + "\n")


if __name__ == "__main__":
    main()
