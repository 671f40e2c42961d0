"""Leakage findings: one typed shape for every leak a check finds, and the judged check.

A check's judge turns its measurements into `Finding`s, then `judged_from_findings` makes
the check's result from them: fail if a finding fails, warn if one warns, else pass. The
`Judged` value keeps the typed findings next to that result, so later steps (the on_leakage
policy in policy.py) read the findings, never the result's JSON.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import JsonValue

from retrain_guard.schemas.report import CheckResult, Status
from retrain_guard.tasks.registry import LEAK_TYPES, check

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
            "taxonomy_name": LEAK_TYPES[self.taxonomy],
            "detail": self.detail,
            "severity": _round(self.severity),
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class Judged:
    """A judged leakage check: its result for the report and the findings it was built from."""

    check: CheckResult
    findings: tuple[Finding, ...] = ()

    @property
    def status(self) -> Status:
        return self.check.status

    def failing_columns(self) -> list[str]:
        """Return the columns named by failing findings, worst first, each once."""
        columns: list[str] = []
        for finding in self.findings:
            if finding.status == "fail":
                columns += [c for c in finding.columns if c not in columns]
        return columns


def _round(value: float) -> float:
    return round(min(max(float(value), -UNBOUNDED), UNBOUNDED), 6)


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """Return findings ordered by status (fail first), then by severity."""
    return sorted(findings, key=lambda f: (_STATUS_RANK[f.status], -f.severity, f.columns))


def judged_from_findings(
    code: str, findings: Sequence[Finding], passed: str, metrics: dict[str, JsonValue]
) -> Judged:
    """Judge check `code` by its findings: fail if any fails, warn if any warns, else pass.

    Args:
        code: the check's registry code.
        findings: what the check found (any order).
        passed: the summary when nothing was found.
        metrics: the measurements; the findings are added under "findings".
    """
    ordered = worst_first(findings)
    status: Status = "pass"
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
    result = check(code).result(
        status,
        summary,
        columns=columns,
        metrics={**metrics, "findings": [f.as_json() for f in ordered]},
    )
    return Judged(result, tuple(ordered))
