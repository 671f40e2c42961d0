"""Collecting check results, metrics and timings of one run into its report, and reading it.

RunRecorder gathers what the stages report and builds the Report; the typed views read the
report's metrics back for the outputs (the CLI summary here, the Prefect artifacts).
"""

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import (
    Cause,
    CheckResult,
    DataSummary,
    Failure,
    Published,
    Report,
    Stage,
)
from retrain_guard.tasks.heap import release_freed_memory
from retrain_guard.tasks.registry import check, expected_checks, label

PACKAGES = (
    "retrain-guard",
    "prefect",
    "pandera",
    "pandas",
    "numpy",
    "scikit-learn",
    "imbalanced-learn",
    "pyarrow",
    "skops",
)

# The checks each flow runs, in order; those not reached before a halt are reported not_run.
DATA_CHECKS: tuple[tuple[str, Stage], ...] = expected_checks("validate")
RETRAIN_CHECKS: tuple[tuple[str, Stage], ...] = expected_checks("retrain")


def versions() -> dict[str, JsonValue]:
    """Return the Python and library versions this run used."""
    found: dict[str, JsonValue] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


class RunRecorder:
    """Accumulates what the stages of one run report, and builds the Report from it."""

    def __init__(
        self,
        params: RetrainParams,
        expected: tuple[tuple[str, Stage], ...],
        flow: str,
        owns_process: bool = False,
    ) -> None:
        """`owns_process`: the run is one of the project's flows in a process of its own (not
        check_data or check_model in a team's process), so its stages may tidy the heap."""
        self.params = params
        self.owns_process = owns_process
        self.expected = expected
        self.flow = flow
        self.checks: list[CheckResult] = []
        self.metrics: dict[str, JsonValue] = {}
        self.data = DataSummary()
        self.diagnosis: list[Cause] = []
        self.timings: dict[str, float] = {}
        self.published: Published | None = None
        # A person's decisions on a paused run (tasks/approval.py), as the report keeps them.
        self.approvals: list[JsonValue] = []
        self.started = datetime.now(UTC)

    @contextmanager
    def stage(self, name: Stage) -> Iterator[None]:
        """Time a stage; the seconds go into report.run.timings.

        On the Dask engine, in a process of the project's own flows, the memory the stages
        before freed goes back to the system first (counted in the stage's time): the
        process then starts each stage from what it holds, not from the peak of the one
        before (tasks/heap.py). A team's own process keeps its allocator's habits.
        """
        start = time.perf_counter()
        if self.owns_process and self.params.compute.engine == "dask":
            # Cycles are collected once, before the checks that read the stored table.
            release_freed_memory(collect_cycles=name == "leakage")
        try:
            yield
        finally:
            # A stage may be entered twice (the schema: header, then rows); times add up.
            spent = time.perf_counter() - start + self.timings.get(name, 0.0)
            self.timings[name] = spent

    def add(self, *checks: CheckResult) -> CheckResult | None:
        """Record checks; return the first failing one, if any."""
        self.checks.extend(checks)
        return next((c for c in checks if c.status == "fail"), None)

    def skip(self, code: str, stage: Stage, reason: str, columns: list[str] | None = None) -> None:
        """Record that a check was not run, and why (a check not run is never a pass)."""
        self.checks.append(
            check(code).result("not_run", f"not run: {reason}", columns, stage=stage)
        )

    def first_failure(self) -> CheckResult | None:
        """Return the first failing check recorded so far, if any."""
        return next((c for c in self.checks if c.status == "fail"), None)

    def build(self, failed: CheckResult | None = None) -> Report:
        """Return the report: passed, or failed on `failed` with unreached checks not_run."""
        checks = list(self.checks)
        ran = {c.code for c in checks}
        for code, stage in self.expected:
            if code not in ran:
                halted = "not run: the run halted before this check"
                checks.append(check(code).result("not_run", halted, stage=stage))
        failure = None
        if failed is not None:
            failure = Failure(
                code=failed.code,
                stage=failed.stage,
                summary=failed.summary,
                details={"columns": list(failed.columns), **failed.metrics},
            )
        finished = datetime.now(UTC)
        approvals: dict[str, JsonValue] = {}
        if self.approvals:
            approvals["approvals"] = list(self.approvals)
        return Report(
            status="failed" if failed else "passed",
            failure=failure,
            checks=checks,
            diagnosis=list(self.diagnosis),
            metrics=dict(self.metrics),
            data=self.data,
            run={
                "flow": self.flow,
                "parameters": self.params.to_json_dict(),
                "versions": versions(),
                "timings_seconds": {k: round(v, 4) for k, v in self.timings.items()},
                "started_at": self.started.isoformat(),
                "finished_at": finished.isoformat(),
                **approvals,
            },
            published=self.published,
        )


Number = int | float


class ReportView(BaseModel):
    """A typed reading of part of a report's metrics; keys it does not use are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ClassScores(ReportView):
    precision: Number | None = None
    recall: Number | None = None
    f1: Number | None = None
    support: int | None = None


class ScoreDistribution(ReportView):
    bin_edges: list[float] = Field(default_factory=list)
    histogram: dict[str, list[Number]] = Field(default_factory=dict)
    quantiles: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)


class ConfusionMatrix(ReportView):
    labels: list[str] = Field(default_factory=list)
    rows_true_columns_predicted: list[list[int]] = Field(default_factory=list)


class Holdout(ReportView):
    """The holdout metrics of report.metrics['holdout']."""

    roc_auc: Number | None = None
    pr_auc: Number | None = None
    pr_auc_no_skill: Number | None = None
    balanced_accuracy: Number | None = None
    geometric_mean: Number | None = None
    mcc: Number | None = None
    predicted_class_counts: dict[str, int] | None = None
    true_class_counts: dict[str, int] | None = None
    per_class: dict[str, ClassScores] | None = None
    score_distribution: ScoreDistribution | None = None
    confusion_matrix: ConfusionMatrix | None = None
    undefined: dict[str, str] = Field(default_factory=dict)


class ThresholdAnalysis(ReportView):
    threshold: Number | None = None
    reason: str | None = None
    validation_rows: int | None = None
    validation_rows_in_training_part: int | None = None
    slice: str | None = None
    validation_f1: Number | None = None
    current_threshold: Number | None = None
    on_holdout: dict[str, JsonValue] | None = None


class _Correction(ReportView):
    class_weight: dict[str, float] | None = None
    reason: str = ""


class _TrainingSample(ReportView):
    sampled: bool = False
    rows: dict[str, int] = Field(default_factory=dict)
    of_rows: dict[str, int] = Field(default_factory=dict)
    correction: _Correction = Field(default_factory=_Correction)


class Resampling(ReportView):
    before: dict[str, int] = Field(default_factory=dict)
    after: dict[str, int] = Field(default_factory=dict)
    sampler: str | None = None
    class_weight: str | None = None
    adaptations: list[str] = Field(default_factory=list)
    training_sample: _TrainingSample | None = None


class Metrics(ReportView):
    """The parts of report.metrics the outputs show."""

    holdout: Holdout | None = None
    baseline: dict[str, JsonValue] = Field(default_factory=dict)
    threshold_analysis: ThresholdAnalysis | None = None
    resampling: Resampling | None = None

    @classmethod
    def of(cls, report: Report) -> "Metrics":
        return cls.model_validate(report.metrics)


class _ModelSettings(ReportView):
    decision_threshold: float = 0.5


class _Parameters(ReportView):
    model: _ModelSettings = Field(default_factory=_ModelSettings)


class _Run(ReportView):
    parameters: _Parameters = Field(default_factory=_Parameters)
    timings_seconds: dict[str, float] = Field(default_factory=dict)


def run_of(report: Report) -> _Run:
    """Return the typed reading of report.run: the decision threshold and the timings."""
    return _Run.model_validate(report.run)


def format_summary(report: Report) -> str:
    """Return the readable end-of-run summary: verdict, checks by name, metrics, diagnosis."""
    lines = [""]
    verdict = "PASSED" if report.status == "passed" else f"HALTED  {report.one_line()}"
    lines.append(f"retrain-guard: {verdict}")
    timings = run_of(report).timings_seconds
    if timings:
        lines.append("stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    for result in report.checks:
        lines.append(
            f"  [{result.status:>7}] {label(result.code, result.status)}: {result.summary}"
        )
    metrics = Metrics.of(report)
    resampling = metrics.resampling
    if resampling:
        lines.append(
            f"class balance (training part): before {resampling.before} -> after "
            f"{resampling.after} (sampler {resampling.sampler}, class_weight "
            f"{resampling.class_weight})"
        )
        sample = resampling.training_sample
        if sample and sample.sampled:
            weight = sample.correction.class_weight
            lines.append(
                f"training sample: {sample.rows} of {sample.of_rows} rows; "
                + (f"class_weight {weight}: " if weight else "")
                + sample.correction.reason
            )
    holdout = metrics.holdout
    if holdout:
        shown = ("roc_auc", "pr_auc", "pr_auc_no_skill", "balanced_accuracy", "mcc")
        lines.append("holdout: " + ", ".join(f"{k} {getattr(holdout, k)}" for k in shown))
        lines.append(
            f"predicted classes on the holdout: {holdout.predicted_class_counts} "
            f"(true: {holdout.true_class_counts})"
        )
    if report.diagnosis:
        lines.append("diagnosis (most likely first):")
        for i, cause in enumerate(report.diagnosis, 1):
            lines.append(f"  {i}. {cause.title}: {cause.evidence}")
            lines.append(f"     remedy: {cause.remedy}")
    if report.published:
        lines.append(f"model: {report.published.model_path}")
    return "\n".join(lines)
