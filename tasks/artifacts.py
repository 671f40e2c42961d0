"""The report as Prefect artifacts: a markdown summary and tables, under stable kebab-case keys."""

import re
from pathlib import Path

from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas.report import Report

SUMMARY_KEY = "retrain-guard-summary"
CHECKS_KEY = "retrain-guard-checks"
SCHEMA_FAILURES_KEY = "retrain-guard-schema-failures"
REPORT_KEY = "retrain-guard-report"
_KEY = re.compile(r"^[a-z0-9-]+$")
_STATUS_MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "not_run": "not run"}


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, report_path: str | None = None) -> str:
    """Return the summary: verdict and failure code first, then diagnosis, checks, metrics."""
    lines: list[str] = []
    if report.failure:
        lines += [
            f"# Halted: `{report.failure.code}`",
            "",
            f"**{report.failure.summary}** (stage: {report.failure.stage})",
            "",
        ]
    else:
        lines += ["# Passed", "", "Every check passed; the model was published.", ""]
    if report.diagnosis:
        lines += ["## Diagnosis (most likely first)", ""]
        for i, cause in enumerate(report.diagnosis, 1):
            lines += [
                f"{i}. **{cause.title}** (`{cause.cause}`, score {cause.score:.2f})",
                f"   - Evidence: {cause.evidence}",
                f"   - Remedy: {cause.remedy}",
            ]
        lines.append("")
    lines += ["## Checks", "", "| status | code | stage | summary |", "|---|---|---|---|"]
    for check in report.checks:
        lines.append(
            f"| {_STATUS_MARK[check.status]} | `{check.code}` | {check.stage} | "
            f"{_cell(check.summary)} |"
        )
    lines.append("")
    resampling = report.metrics.get("resampling")
    if isinstance(resampling, dict):
        lines += [
            "## Class balance of the training part",
            "",
            f"- before resampling: {resampling.get('before')}",
            f"- after resampling ({resampling.get('sampler')}): {resampling.get('after')}",
            "",
        ]
    holdout = report.metrics.get("holdout")
    if isinstance(holdout, dict):
        lines += ["## Holdout metrics", "", "| metric | value |", "|---|---|"]
        for name in ("balanced_accuracy", "mcc", "roc_auc", "pr_auc", "pr_auc_no_skill"):
            lines.append(f"| {name} | {holdout.get(name)} |")
        lines.append(f"| predicted_class_counts | {holdout.get('predicted_class_counts')} |")
        lines.append(f"| true_class_counts | {holdout.get('true_class_counts')} |")
        lines.append("")
    if report.published:
        lines += [f"Model: `{report.published.model_path}` (sha256 {report.published.sha256})", ""]
    if report_path:
        lines += [f"Report: `{report_path}`", ""]
    return "\n".join(lines)


def checks_table(report: Report) -> list[dict[str, JsonValue]]:
    """Return one row per check."""
    return [
        {
            "status": c.status,
            "code": c.code,
            "stage": c.stage,
            "columns": ", ".join(c.columns),
            "summary": c.summary,
        }
        for c in report.checks
    ]


def schema_failures_table(report: Report) -> list[dict[str, JsonValue]]:
    """Return one row per listed schema failure case (empty when the schema passed)."""
    check = report.check("schema_invalid")
    if check is None or check.status != "fail":
        return []
    rows: list[dict[str, JsonValue]] = []
    failures = check.metrics.get("failures")
    for failure in failures if isinstance(failures, list) else []:
        if not isinstance(failure, dict):
            continue
        cases = failure.get("rows") or [{}]
        for case in cases if isinstance(cases, list) else [{}]:
            case = case if isinstance(case, dict) else {}
            rows.append(
                {
                    "column": failure.get("column"),
                    "check": failure.get("check"),
                    "failing_rows": failure.get("count"),
                    "row_index": case.get("index"),
                    "id": case.get("id"),
                    "value": case.get("value", failure.get("value")),
                }
            )
    return rows


def artifact_key(key: str) -> str:
    """Return the key if Prefect accepts it; raise otherwise (a bad key crashes a run late)."""
    if not _KEY.match(key):
        raise ValueError(f"artifact key {key!r} must be lowercase letters, digits and dashes")
    return key


def report_link(report_path: str) -> str:
    """Return a file:// URL of the report (absolute, so it means the same on every page)."""
    return Path(report_path).resolve().as_uri()


@task(name="publish-artifacts", cache_policy=NO_CACHE, persist_result=False)
def publish_artifacts_task(report: Report, report_path: str | None = None) -> None:
    """Publish the summary, the checks table, any schema failure cases and the report link."""
    verdict = report.one_line()
    create_markdown_artifact(
        markdown=render_markdown(report, report_path),
        key=artifact_key(SUMMARY_KEY),
        description=verdict,
    )
    create_table_artifact(
        table=checks_table(report), key=artifact_key(CHECKS_KEY), description=verdict
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
