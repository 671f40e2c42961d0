"""The report as Prefect artifacts: a markdown summary and tables, under stable kebab-case keys."""

import json
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
LEAKAGE_KEY = "retrain-guard-leakage"
REPORT_KEY = "retrain-guard-report"
_KEY = re.compile(r"^[a-z0-9-]+$")
_STATUS_MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "not_run": "not run"}


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, report_path: str | None = None, images: bool = True) -> str:
    """Return the summary: verdict, then the diagnosis, then the evidence tables and charts."""
    lines: list[str] = []
    if report.failure:
        lines += [
            f"# Halted: `{report.failure.code}`",
            "",
            f"**{report.failure.summary}** (stage: {report.failure.stage})",
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
    holdout = report.metrics.get("holdout")
    if isinstance(holdout, dict):
        lines += _holdout_tables(holdout, report)
        if images:
            lines += _charts(holdout, report)
    resampling = report.metrics.get("resampling")
    if isinstance(resampling, dict):
        lines += [
            "## Class balance of the training part",
            "",
            f"- before resampling: {resampling.get('before')}",
            f"- after resampling ({resampling.get('sampler')}): {resampling.get('after')}",
        ]
        adaptations = resampling.get("adaptations")
        for note in adaptations if isinstance(adaptations, list) else []:
            lines.append(f"- adapted: {note}")
        lines.append("")
    lines += ["## Checks", "", "| status | code | stage | summary |", "|---|---|---|---|"]
    for check in report.checks:
        lines.append(
            f"| {_STATUS_MARK[check.status]} | `{check.code}` | {check.stage} | "
            f"{_cell(check.summary)} |"
        )
    lines.append("")
    if report.published:
        lines += [f"Model: `{report.published.model_path}` (sha256 {report.published.sha256})", ""]
    if report_path:
        lines += [f"Report: `{report_path}`", ""]
    return "\n".join(lines)


def _json(value: object) -> str:
    return json.dumps(value)


def _holdout_tables(holdout: dict[str, JsonValue], report: Report) -> list[str]:
    baseline = report.metrics.get("baseline")
    baseline = baseline if isinstance(baseline, dict) else {}
    lines = [
        "## Holdout metrics",
        "",
        "| metric | model | most-frequent-class baseline |",
        "|---|---|---|",
    ]
    undefined = holdout.get("undefined")
    undefined = undefined if isinstance(undefined, dict) else {}
    for name in ("balanced_accuracy", "geometric_mean", "mcc", "roc_auc", "pr_auc"):
        value = holdout.get(name)
        shown = value if value is not None else f"undefined: {undefined.get(name, '')}"
        base = baseline.get(name, "")
        if name == "pr_auc":
            base = holdout.get("pr_auc_no_skill")
        lines.append(f"| {name} | {_cell(shown)} | {_cell(base)} |")
    lines.append(
        f"| accuracy | {baseline.get('model_accuracy', '')} | {baseline.get('accuracy', '')} |"
    )
    lines.append(
        f"| predicted_class_counts | {_cell(holdout.get('predicted_class_counts'))} | "
        f"all {baseline.get('predicts', '')} |"
    )
    lines.append(f"| true_class_counts | {_cell(holdout.get('true_class_counts'))} | |")
    lines.append("")
    per_class = holdout.get("per_class")
    if isinstance(per_class, dict):
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for name, entry in per_class.items():
            if isinstance(entry, dict):
                lines.append(
                    f"| {name} | {entry.get('precision')} | {entry.get('recall')} | "
                    f"{entry.get('f1')} | {entry.get('support')} |"
                )
        lines.append("")
    distribution = holdout.get("score_distribution")
    quantiles = distribution.get("quantiles") if isinstance(distribution, dict) else None
    if isinstance(quantiles, dict):
        lines += [
            "### Score of the positive class, per true class",
            "",
            "| true class | min | p50 | p90 | p99 | max |",
            "|---|---|---|---|---|---|",
        ]
        for name, q in quantiles.items():
            if isinstance(q, dict):
                lines.append(
                    f"| {name} | "
                    + " | ".join(str(q.get(k, "")) for k in ("min", "p50", "p90", "p99", "max"))
                    + " |"
                )
        lines.append("")
    threshold = report.metrics.get("threshold_analysis")
    if isinstance(threshold, dict):
        lines += ["### Threshold analysis (validation slice of the training part)", ""]
        if threshold.get("threshold") is None:
            lines.append(f"No threshold: {threshold.get('reason')}")
        else:
            on_holdout = threshold.get("on_holdout")
            lines.append(
                f"The F1-maximising threshold on the {threshold.get('validation_rows')} rows of "
                f"the validation slice ({threshold.get('slice')}) is "
                f"**{threshold.get('threshold')}** (F1 {threshold.get('validation_f1')}; the "
                f"current threshold is {threshold.get('current_threshold')})."
            )
            if isinstance(on_holdout, dict):
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


def _charts(holdout: dict[str, JsonValue], report: Report) -> list[str]:
    from tasks.charts import confusion_matrix_png, data_uri, score_histogram_png

    parameters = report.run.get("parameters")
    model = parameters.get("model") if isinstance(parameters, dict) else None
    threshold = model.get("decision_threshold") if isinstance(model, dict) else None
    lines = []
    matrix = confusion_matrix_png(holdout)
    if matrix:
        lines.append(f"![Holdout confusion matrix]({data_uri(matrix)})")
    histogram = score_histogram_png(
        holdout, float(threshold) if isinstance(threshold, int | float) else 0.5
    )
    if histogram:
        lines.append(f"![Holdout scores per true class]({data_uri(histogram)})")
    return [*lines, ""] if lines else []


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
                    "threshold": _threshold_text(failure.get("threshold")),
                    "failing_rows": failure.get("count"),
                    "row_index": case.get("index"),
                    "id": case.get("id"),
                    "value": case.get("value", failure.get("value")),
                }
            )
    return rows


def _threshold_text(threshold: JsonValue) -> str | None:
    # A table cell shows text: the check's statistics as compact JSON.
    return None if threshold is None else json.dumps(threshold, default=str)


_FINDING_RANK = {"fail": 0, "warn": 1}


def leakage_table(report: Report) -> list[dict[str, JsonValue]]:
    """Return one row per leakage finding of any check, worst first (fail, then severity)."""
    rows: list[tuple[int, float, dict[str, JsonValue]]] = []
    for check in report.checks:
        findings = check.metrics.get("findings")
        for finding in findings if isinstance(findings, list) else []:
            if not isinstance(finding, dict):
                continue
            columns = finding.get("columns")
            severity = finding.get("severity")
            row: dict[str, JsonValue] = {
                "status": finding.get("status"),
                "check": check.code,
                # Row findings (row order, copied rows) have no column to name.
                "columns": ", ".join(str(c) for c in columns)
                if isinstance(columns, list) and columns
                else "(rows)",
                "measure": finding.get("measure"),
                "value": finding.get("value"),
                "threshold": finding.get("threshold"),
                "type": f"{finding.get('taxonomy')} {finding.get('taxonomy_name')}",
                "check_status": check.status,
                "detail": finding.get("detail"),
            }
            rank = _FINDING_RANK.get(str(finding.get("status")), 2)
            rows.append((rank, -float(severity) if isinstance(severity, int | float) else 0, row))
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
