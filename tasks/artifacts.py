"""The report as Prefect artifacts: a markdown summary and tables, under stable kebab-case keys."""

import json
import re
from pathlib import Path
from typing import Literal

from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from pydantic import Field, JsonValue, TypeAdapter

from retrain_guard.schemas.report import Report
from retrain_guard.tasks.history import RunRecord, render_history
from retrain_guard.tasks.registry import label, name_of
from retrain_guard.tasks.reporting import (
    Holdout,
    Metrics,
    Number,
    ReportView,
    ThresholdAnalysis,
    run_of,
)

SUMMARY_KEY = "retrain-guard-summary"
CHECKS_KEY = "retrain-guard-checks"
SCHEMA_FAILURES_KEY = "retrain-guard-schema-failures"
LEAKAGE_KEY = "retrain-guard-leakage"
REPORT_KEY = "retrain-guard-report"
HISTORY_KEY = "retrain-guard-history"
_KEY = re.compile(r"^[a-z0-9-]+$")
_STATUS_MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "not_run": "not run"}


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, report_path: str | None = None, images: bool = True) -> str:
    """Return the summary: verdict, then the diagnosis, then the evidence tables and charts."""
    lines: list[str] = []
    if report.failure:
        failure = report.failure
        lines += [
            f"# Halted: `{failure.code}`",
            "",
            f"**{failure.summary}** (check: {name_of(failure.code)}, stage: {failure.stage})",
            "",
        ]
    else:
        done = "the model was published" if report.published else "nothing was trained"
        lines += ["# Passed", "", f"Every check passed; {done}.", ""]
    if report.diagnosis:
        lines += ["## Diagnosis (most likely first)", ""]
        for i, cause in enumerate(report.diagnosis, 1):
            lines += [
                f"{i}. **{cause.title}** (`{cause.cause}`, score {cause.score:.2f})",
                f"   - Evidence: {cause.evidence}",
                f"   - Remedy: {cause.remedy}",
            ]
            if cause.remedy_params:
                lines.append(
                    "   - Try: "
                    + ", ".join(f"`{k}: {_json(v)}`" for k, v in cause.remedy_params.items())
                )
        lines.append("")
    metrics = Metrics.of(report)
    if metrics.holdout is not None:
        lines += _holdout_tables(metrics.holdout, metrics)
        if images:
            lines += _charts(metrics.holdout, run_of(report).parameters.model.decision_threshold)
    resampling = metrics.resampling
    if resampling is not None:
        lines += [
            "## Class balance of the training part",
            "",
            f"- before resampling: {resampling.before}",
            f"- after resampling ({resampling.sampler}): {resampling.after}",
            *(f"- adapted: {note}" for note in resampling.adaptations),
            "",
        ]
    lines += ["## Checks", "", "| status | check | stage | summary |", "|---|---|---|---|"]
    for check in report.checks:
        shown = _cell(label(check.code, check.status))
        lines.append(
            f"| {_STATUS_MARK[check.status]} | {shown} | {check.stage} | {_cell(check.summary)} |"
        )
    lines.append("")
    if report.published:
        lines += [f"Model: `{report.published.model_path}` (sha256 {report.published.sha256})", ""]
    if report_path:
        lines += [f"Report: `{report_path}`", ""]
    return "\n".join(lines)


def _json(value: object) -> str:
    return json.dumps(value)


def _holdout_tables(holdout: Holdout, metrics: Metrics) -> list[str]:
    baseline = metrics.baseline
    lines = [
        "## Holdout metrics",
        "",
        "| metric | model | most-frequent-class baseline |",
        "|---|---|---|",
    ]
    for name in ("balanced_accuracy", "geometric_mean", "mcc", "roc_auc", "pr_auc"):
        value = getattr(holdout, name)
        shown = value if value is not None else f"undefined: {holdout.undefined.get(name, '')}"
        base = holdout.pr_auc_no_skill if name == "pr_auc" else baseline.get(name, "")
        lines.append(f"| {name} | {_cell(shown)} | {_cell(base)} |")
    lines.append(
        f"| accuracy | {baseline.get('model_accuracy', '')} | {baseline.get('accuracy', '')} |"
    )
    lines.append(
        f"| predicted_class_counts | {_cell(holdout.predicted_class_counts)} | "
        f"all {baseline.get('predicts', '')} |"
    )
    lines.append(f"| true_class_counts | {_cell(holdout.true_class_counts)} | |")
    lines.append("")
    if holdout.per_class is not None:
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for name, entry in holdout.per_class.items():
            lines.append(
                f"| {name} | {entry.precision} | {entry.recall} | {entry.f1} | {entry.support} |"
            )
        lines.append("")
    distribution = holdout.score_distribution
    if distribution is not None and distribution.quantiles:
        lines += [
            "### Score of the positive class, per true class",
            "",
            "| true class | min | p50 | p90 | p99 | max |",
            "|---|---|---|---|---|---|",
        ]
        for name, q in distribution.quantiles.items():
            shown_q = " | ".join(str(q.get(k, "")) for k in ("min", "p50", "p90", "p99", "max"))
            lines.append(f"| {name} | {shown_q} |")
        lines.append("")
    if metrics.threshold_analysis is not None:
        lines += _threshold_lines(metrics.threshold_analysis)
    return lines


def _standing_for(analysis: ThresholdAnalysis) -> str:
    rows = analysis.validation_rows_in_training_part
    return "" if rows is None else f"; of the training sample, standing for about {rows} rows"


def _threshold_lines(analysis: ThresholdAnalysis) -> list[str]:
    lines = ["### Threshold analysis (validation slice of the training part)", ""]
    if analysis.threshold is None:
        lines.append(f"No threshold: {analysis.reason}")
    else:
        lines.append(
            f"The F1-maximising threshold on the {analysis.validation_rows} rows of "
            f"the validation slice ({analysis.slice}{_standing_for(analysis)}) is "
            f"**{analysis.threshold}** (F1 {analysis.validation_f1}; the "
            f"current threshold is {analysis.current_threshold})."
        )
        on_holdout = analysis.on_holdout
        if on_holdout is not None:
            lines.append(
                f"On the holdout it would predict {on_holdout.get('predicted_class_counts')}: "
                + ", ".join(
                    f"{k} {v}"
                    for k, v in on_holdout.items()
                    if k not in ("threshold", "predicted_class_counts")
                )
                + "."
            )
    lines.append("")
    return lines


def _charts(holdout: Holdout, threshold: float) -> list[str]:
    from retrain_guard.tasks.charts import confusion_matrix_png, data_uri, score_histogram_png

    lines = []
    matrix = confusion_matrix_png(holdout.confusion_matrix)
    if matrix:
        lines.append(f"![Holdout confusion matrix]({data_uri(matrix)})")
    histogram = score_histogram_png(holdout.score_distribution, threshold)
    if histogram:
        lines.append(f"![Holdout scores per true class]({data_uri(histogram)})")
    return [*lines, ""] if lines else []


def checks_table(report: Report) -> list[dict[str, JsonValue]]:
    """Return one row per check, named by what it checks (with the code when it warns or fails)."""
    return [
        {
            "status": c.status,
            "check": label(c.code, c.status),
            "stage": c.stage,
            "columns": ", ".join(c.columns),
            "summary": c.summary,
        }
        for c in report.checks
    ]


class _FailureCase(ReportView):
    index: JsonValue = None
    id: JsonValue = None
    value: JsonValue = None


class _SchemaFailure(ReportView):
    column: str | None = None
    check: str | None = None
    threshold: JsonValue = None
    count: int | None = None
    value: JsonValue = None
    rows: list[_FailureCase] = Field(default_factory=list)


_SCHEMA_FAILURES = TypeAdapter(list[_SchemaFailure])


def schema_failures_table(report: Report) -> list[dict[str, JsonValue]]:
    """Return one row per listed schema failure case (empty when the schema passed)."""
    check = report.check("schema_invalid")
    if check is None or check.status != "fail":
        return []
    rows: list[dict[str, JsonValue]] = []
    for failure in _SCHEMA_FAILURES.validate_python(check.metrics.get("failures") or []):
        for case in failure.rows or [_FailureCase()]:
            rows.append(
                {
                    "column": failure.column,
                    "check": failure.check,
                    "threshold": _threshold_text(failure.threshold),
                    "failing_rows": failure.count,
                    "row_index": case.index,
                    "id": case.id,
                    # A case names its own value, even a missing one (null).
                    "value": case.value if "value" in case.model_fields_set else failure.value,
                }
            )
    return rows


def _threshold_text(threshold: JsonValue) -> str | None:
    # A table cell shows text: the check's statistics as compact JSON.
    return None if threshold is None else json.dumps(threshold, default=str)


class _Finding(ReportView):
    status: Literal["fail", "warn"]
    columns: list[str] = Field(default_factory=list)
    measure: str | None = None
    value: Number | None = None
    threshold: Number | None = None
    taxonomy: str | None = None
    taxonomy_name: str | None = None
    detail: str | None = None
    severity: Number = 0


_FINDINGS = TypeAdapter(list[_Finding])
_FINDING_RANK = {"fail": 0, "warn": 1}


def leakage_table(report: Report) -> list[dict[str, JsonValue]]:
    """Return one row per leakage finding of any check, worst first (fail, then severity)."""
    rows: list[tuple[int, float, dict[str, JsonValue]]] = []
    for check in report.checks:
        for finding in _FINDINGS.validate_python(check.metrics.get("findings") or []):
            row: dict[str, JsonValue] = {
                "status": finding.status,
                # A finding warns or fails: the check's name, then its code.
                "name": name_of(check.code),
                "check": check.code,
                # Row findings (row order, copied rows) have no column to name.
                "columns": ", ".join(finding.columns) or "(rows)",
                "measure": finding.measure,
                "value": finding.value,
                "threshold": finding.threshold,
                "type": f"{finding.taxonomy} {finding.taxonomy_name}",
                "check_status": check.status,
                "detail": finding.detail,
            }
            rows.append((_FINDING_RANK.get(finding.status, 2), -float(finding.severity), row))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [row for _, _, row in rows]


def artifact_key(key: str) -> str:
    """Return the key if Prefect accepts it; raise otherwise (a bad key crashes a run late)."""
    if not _KEY.match(key):
        raise ValueError(f"artifact key {key!r} must be lowercase letters, digits and dashes")
    return key


def report_link(report_path: str) -> str:
    """Return a file:// URL of the report (absolute, so it means the same on every page)."""
    return Path(report_path).resolve().as_uri()


@task(name="publish-artifacts", cache_policy=NO_CACHE, persist_result=False)
def publish_artifacts_task(
    report: Report, report_path: str | None = None, runs: list[RunRecord] | None = None
) -> None:
    """Publish the summary, the checks table, any schema failure cases, the report link and
    the last runs of the output directory's history (this one included)."""
    verdict = report.one_line()
    create_markdown_artifact(
        markdown=render_markdown(report, report_path),
        key=artifact_key(SUMMARY_KEY),
        description=verdict,
    )
    create_table_artifact(
        table=checks_table(report), key=artifact_key(CHECKS_KEY), description=verdict
    )
    leaks = leakage_table(report)
    if leaks:
        create_table_artifact(
            table=leaks, key=artifact_key(LEAKAGE_KEY), description="Leakage findings, worst first"
        )
    failures = schema_failures_table(report)
    if failures:
        create_table_artifact(
            table=failures,
            key=artifact_key(SCHEMA_FAILURES_KEY),
            description="Schema failure cases",
        )
    if report_path:
        create_link_artifact(
            link=report_link(report_path),
            link_text=str(Path(report_path).resolve()),
            key=artifact_key(REPORT_KEY),
            description=f"Report JSON of this run ({verdict})",
        )
    if runs:
        create_markdown_artifact(
            markdown=render_history(runs),
            key=artifact_key(HISTORY_KEY),
            description=f"Last {len(runs)} runs: rows, minority share, PR-AUC, verdict",
        )
