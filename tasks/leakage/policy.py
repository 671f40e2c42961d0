"""The on_leakage policy: what a failed leakage check does to the run (fail, drop or warn)."""

from collections.abc import Sequence

from pydantic import JsonValue

from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.leakage.findings import Judged
from retrain_guard.tasks.registry import ROW_CHECKS


def apply_policy(judged: Sequence[Judged], on_leakage: str) -> tuple[list[CheckResult], list[str]]:
    """Apply on_leakage to failed leakage checks; return the checks and the columns to drop.

    fail keeps failures; warn turns them into warnings; drop removes the columns named by
    failing column findings and turns those checks into warnings. Row findings (duplicates,
    resampling traces) cannot be fixed by dropping a column, so under drop they still fail.
    """
    if on_leakage == "fail":
        return [j.check for j in judged], []
    out: list[CheckResult] = []
    dropped: list[str] = []
    for one in judged:
        result = one.check
        if result.status != "fail":
            out.append(result)
            continue
        if on_leakage == "warn":
            out.append(downgrade(result, "on_leakage=warn: reported, not halted", {}))
            continue
        if result.code in ROW_CHECKS:
            out.append(result)
            continue
        columns = one.failing_columns()
        dropped += [c for c in columns if c not in dropped]
        out.append(
            downgrade(
                result,
                f"on_leakage=drop: dropped {', '.join(columns)} from the features",
                {"dropped_columns": list(columns)},
            )
        )
    return out, dropped


def downgrade(result: CheckResult, note: str, extra: dict[str, JsonValue]) -> CheckResult:
    """Return a failed check as a warning, the policy's note in its summary and metrics."""
    return result.model_copy(
        update={
            "status": "warn",
            "summary": f"{result.summary} ({note})",
            "metrics": {**result.metrics, "policy": note, **extra},
        }
    )
