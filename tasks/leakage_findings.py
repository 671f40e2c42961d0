"""Leakage findings: one shape for every leak the checks find, and the on_leakage policy."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import JsonValue

from schemas.report import CheckResult, Stage

# Kapoor & Narayanan (2023), "Leakage and the reproducibility crisis in ML-based science".
TAXONOMY: dict[str, str] = {
    "L1.2": "preprocessing on training and test data",
    "L1.4": "duplicates in training and test data",
    "L2": "illegitimate feature",
    "L3.1": "temporal leakage",
}
# Findings that a column drop cannot remove: they are about rows, not features.
ROW_CHECKS = frozenset({"split_leakage", "resampling_leakage", "order_leakage"})
_STATUS_RANK = {"fail": 0, "warn": 1}
# Severity of a finding past a threshold of 0 (any amount is too much); JSON has no infinity.
UNBOUNDED = 1e9
_LISTED = 5


@dataclass(frozen=True)
class Finding:
    """One leak: where it is, what was measured, against which threshold, and its type."""

    check: str
    status: Literal["fail", "warn"]
    columns: tuple[str, ...]
    measure: str
    value: float
    threshold: float
    taxonomy: str
    detail: str
    # How far past the fail threshold (1.0 = at it); orders findings worst first.
    severity: float
    evidence: dict[str, JsonValue] = field(default_factory=dict)

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "check": self.check,
            "status": self.status,
            "columns": list(self.columns),
            "measure": self.measure,
            "value": _round(self.value),
            "threshold": _round(self.threshold),
            "taxonomy": self.taxonomy,
            "taxonomy_name": TAXONOMY[self.taxonomy],
            "detail": self.detail,
            "severity": _round(self.severity),
            "evidence": dict(self.evidence),
        }


def _round(value: float) -> float:
    return round(min(max(float(value), -UNBOUNDED), UNBOUNDED), 6)


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """Return findings ordered by status (fail first), then by severity."""
    return sorted(findings, key=lambda f: (_STATUS_RANK[f.status], -f.severity, f.columns))


def check_from_findings(
    code: str,
    stage: Stage,
    findings: Sequence[Finding],
    passed: str,
    metrics: dict[str, JsonValue],
) -> CheckResult:
    """Return the check: fail if any finding fails, warn if any warns, else pass."""
    ordered = worst_first(findings)
    status: Literal["pass", "warn", "fail"] = "pass"
    if ordered:
        status = "fail" if ordered[0].status == "fail" else "warn"
    columns: list[str] = []
    for finding in ordered:
        columns += [c for c in finding.columns if c not in columns]
    summary = passed
    if ordered:
        listed = "; ".join(f.detail for f in ordered[:_LISTED])
        more = f"; and {len(ordered) - _LISTED} more" if len(ordered) > _LISTED else ""
        summary = listed + more
    return CheckResult(
        code=code,
        stage=stage,
        status=status,
        columns=columns,
        summary=summary,
        metrics={**metrics, "findings": [f.as_json() for f in ordered]},
    )


def apply_policy(
    checks: Sequence[CheckResult], on_leakage: str
) -> tuple[list[CheckResult], list[str]]:
    """Apply on_leakage to failed leakage checks; return the checks and the columns to drop.

    fail keeps failures; warn turns them into warnings; drop removes the columns named by
    failing column findings and turns those checks into warnings. Row findings (duplicates,
    resampling traces) cannot be fixed by dropping a column, so under drop they still fail.
    """
    if on_leakage == "fail":
        return list(checks), []
    out: list[CheckResult] = []
    dropped: list[str] = []
    for check in checks:
        if check.status != "fail":
            out.append(check)
            continue
        if on_leakage == "warn":
            out.append(_downgrade(check, "on_leakage=warn: reported, not halted", {}))
            continue
        if check.code in ROW_CHECKS:
            out.append(check)
            continue
        columns = _failing_columns(check)
        dropped += [c for c in columns if c not in dropped]
        out.append(
            _downgrade(
                check,
                f"on_leakage=drop: dropped {', '.join(columns)} from the features",
                {"dropped_columns": list(columns)},
            )
        )
    return out, dropped


def _failing_columns(check: CheckResult) -> list[str]:
    columns: list[str] = []
    findings = check.metrics.get("findings")
    for finding in findings if isinstance(findings, list) else []:
        if isinstance(finding, dict) and finding.get("status") == "fail":
            named = finding.get("columns")
            for column in named if isinstance(named, list) else []:
                if isinstance(column, str) and column not in columns:
                    columns.append(column)
    return columns


def _downgrade(check: CheckResult, note: str, extra: dict[str, JsonValue]) -> CheckResult:
    return check.model_copy(
        update={
            "status": "warn",
            "summary": f"{check.summary} ({note})",
            "metrics": {**check.metrics, "policy": note, **extra},
        }
    )


def with_status(finding: Finding, status: Literal["fail", "warn"]) -> Finding:
    """Return the finding with another status."""
    return replace(finding, status=status)
