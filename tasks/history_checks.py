"""Checks across runs: this run's data against the last good run's record.

`row_count_drop` (a truncated extract), `label_shift` (the minority share jumped) and
`feature_set_changed` (features appeared or vanished) run after the label profile, before
any training. Without a last good run in the history they are not_run, with the reason.
"""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.params import HistoryParams
from retrain_guard.schemas.report import CheckResult, DataSummary, Status
from retrain_guard.tasks.history import RunRecord, minority_share, read_last_good
from retrain_guard.tasks.registry import check

ROW_COUNT_DROP = "row_count_drop"
LABEL_SHIFT = "label_shift"
FEATURE_SET_CHANGED = "feature_set_changed"
HISTORY_CHECKS = (ROW_COUNT_DROP, LABEL_SHIFT, FEATURE_SET_CHANGED)


@dataclass(frozen=True)
class AgainstLastGood:
    """This run's data measured against the last good run's record."""

    last_run_id: str
    rows: int | None
    last_rows: int | None
    share: float | None
    last_share: float | None
    added: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def row_ratio(self) -> float | None:
        if self.rows is None or not self.last_rows:
            return None
        return self.rows / self.last_rows

    @property
    def share_factor(self) -> float | None:
        """How many times the minority share grew or shrank (>= 1), if both are known."""
        if not self.share or not self.last_share:
            return None
        return max(self.share / self.last_share, self.last_share / self.share)


def measure_against(summary: DataSummary, last: RunRecord) -> AgainstLastGood:
    """Compare the profiled table's summary with the last good run's record."""
    features, last_features = summary.features, list(last.features)
    return AgainstLastGood(
        last_run_id=last.run_id,
        rows=summary.rows,
        last_rows=last.rows,
        share=minority_share(summary.class_counts),
        last_share=last.minority_share,
        added=tuple(c for c in features if c not in last_features),
        removed=tuple(c for c in last_features if c not in features),
    )


def judge_row_count(measured: AgainstLastGood, params: HistoryParams) -> CheckResult:
    """Fail when the table has fewer rows than min_row_ratio times the last good run's."""
    ratio = measured.row_ratio
    if ratio is None:
        return _not_run(ROW_COUNT_DROP, "the last good run recorded no row count")
    status: Status = "fail" if ratio < params.min_row_ratio else "pass"
    summary = (
        f"{measured.rows} rows, {ratio:.2f}x the {measured.last_rows} of the last good run"
        + (f" (under history.min_row_ratio {params.min_row_ratio})" if status == "fail" else "")
    )
    return check(ROW_COUNT_DROP).result(
        status,
        summary,
        metrics={
            "rows": measured.rows,
            "last_good_rows": measured.last_rows,
            "ratio": round(ratio, 6),
            "min_row_ratio": params.min_row_ratio,
            "last_good_run": measured.last_run_id,
        },
    )


def judge_label_shift(measured: AgainstLastGood, params: HistoryParams) -> CheckResult:
    """Warn when the minority share moved by more than max_label_shift, either way."""
    factor = measured.share_factor
    if factor is None or measured.share is None or measured.last_share is None:
        return _not_run(LABEL_SHIFT, "the last good run recorded no minority share")
    status: Status = "warn" if factor > params.max_label_shift else "pass"
    if measured.share == measured.last_share:
        moved = "unchanged"
    else:
        way = "grew" if measured.share > measured.last_share else "shrank"
        moved = f"{way} {factor:.2f}x" + (
            f", over history.max_label_shift {params.max_label_shift}" if status == "warn" else ""
        )
    summary = (
        f"minority share {measured.share:.4%} against {measured.last_share:.4%} in the last "
        f"good run ({moved})"
    )
    return check(LABEL_SHIFT).result(
        status,
        summary,
        metrics={
            "minority_share": round(measured.share, 6),
            "last_good_minority_share": round(measured.last_share, 6),
            "factor": round(factor, 6),
            "max_label_shift": params.max_label_shift,
            "last_good_run": measured.last_run_id,
        },
    )


def judge_feature_set(measured: AgainstLastGood) -> CheckResult:
    """Warn when features were added or removed against the last good run's."""
    changed = [*measured.added, *measured.removed]
    parts = [
        f"{what}: {', '.join(columns)}"
        for what, columns in (("added", measured.added), ("removed", measured.removed))
        if columns
    ]
    summary = (
        "features " + "; ".join(parts) + " against the last good run"
        if changed
        else "the same features as the last good run"
    )
    return check(FEATURE_SET_CHANGED).result(
        "warn" if changed else "pass",
        summary,
        columns=changed,
        metrics={
            "added": list(measured.added),
            "removed": list(measured.removed),
            "last_good_run": measured.last_run_id,
        },
    )


def _not_run(code: str, reason: str) -> CheckResult:
    return check(code).result("not_run", f"not run: {reason}")


def check_against_history(
    store: str | Path, flow: str, summary: DataSummary, params: HistoryParams
) -> list[CheckResult]:
    """Judge the profiled table against the last good run of `flow` in the store.

    Each check is not_run, with the reason, when there is no last good run or the store
    cannot be read (a broken history never halts a run).
    """
    try:
        last = read_last_good(store, flow)
    # ValueError: a record this version cannot read (pydantic's errors are ValueErrors).
    except (sqlite3.Error, OSError, ValueError) as exc:
        reason = f"the run history cannot be read ({type(exc).__name__}: {exc})"
        return [_not_run(code, reason) for code in HISTORY_CHECKS]
    if last is None:
        good = "published a model" if flow == "retrain" else "passed"
        reason = f"no earlier {flow} run in this output directory {good}"
        return [_not_run(code, reason) for code in HISTORY_CHECKS]
    measured = measure_against(summary, last)
    return [
        judge_row_count(measured, params),
        judge_label_shift(measured, params),
        judge_feature_set(measured),
    ]


check_history_task = task(name="check-history", cache_policy=NO_CACHE, persist_result=False)(
    check_against_history
)
