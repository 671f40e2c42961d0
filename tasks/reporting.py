"""Collecting check results, metrics and timings of one run into its report."""

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from pydantic import JsonValue

from schemas.params import RetrainParams
from schemas.report import Cause, CheckResult, DataSummary, Failure, Published, Report, Stage

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
DATA_CHECKS: tuple[tuple[str, Stage], ...] = (
    ("schema_invalid", "schema"),
    ("non_finite_values", "load"),
    ("unusable_columns", "load"),
    ("non_numeric_values", "load"),
    ("empty_columns", "schema"),
    ("single_class_target", "profile"),
    ("too_few_rows", "profile"),
    ("temporal_leakage", "leakage"),
    ("missingness_leakage", "leakage"),
    ("target_leakage", "leakage"),
    ("order_leakage", "leakage"),
    ("resampling_leakage", "leakage"),
    ("ambiguous_dates", "leakage"),
)
RETRAIN_CHECKS: tuple[tuple[str, Stage], ...] = (
    *DATA_CHECKS,
    ("insufficient_minority", "split"),
    ("holdout_fraction_off", "split"),
    ("split_leakage", "split"),
    ("sampler_adapted", "resample"),
    ("high_cardinality_features", "train"),
    ("constant_features", "train"),
    ("single_class_prediction", "gate"),
    ("near_single_class_prediction", "gate"),
    ("pr_auc_lift", "gate"),
    ("minority_recall", "gate"),
    ("suspiciously_perfect", "gate"),
)


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
        self, params: RetrainParams, expected: tuple[tuple[str, Stage], ...], flow: str
    ) -> None:
        self.params = params
        self.expected = expected
        self.flow = flow
        self.checks: list[CheckResult] = []
        self.metrics: dict[str, JsonValue] = {}
        self.data = DataSummary()
        self.diagnosis: list[Cause] = []
        self.timings: dict[str, float] = {}
        self.published: Published | None = None
        self.started = datetime.now(UTC)

    @contextmanager
    def stage(self, name: Stage) -> Iterator[None]:
        """Time a stage; the seconds go into report.run.timings."""
        start = time.perf_counter()
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
            CheckResult(
                code=code,
                stage=stage,
                status="not_run",
                columns=list(columns or []),
                summary=f"not run: {reason}",
            )
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
                checks.append(
                    CheckResult(
                        code=code,
                        stage=stage,
                        status="not_run",
                        summary="not run: the run halted before this check",
                    )
                )
        failure = None
        if failed is not None:
            failure = Failure(
                code=failed.code,
                stage=failed.stage,
                summary=failed.summary,
                details={"columns": list(failed.columns), **failed.metrics},
            )
        finished = datetime.now(UTC)
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
            },
            published=self.published,
        )
