"""Leakage detection: features whose values could not be known when the prediction is made."""

from dataclasses import dataclass

import pandas as pd
from pandas.api.types import is_datetime64_any_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas.params import LeakageParams
from schemas.report import CheckResult

TEMPORAL = "temporal_leakage"


def as_naive_utc(values: pd.Series) -> pd.Series:
    """Return datetimes comparable with each other: aware values in UTC without zone."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values


def date_columns(frame: pd.DataFrame, exclude: set[str]) -> list[str]:
    """Return the datetime columns of the frame, leaving out `exclude`."""
    return [
        str(c)
        for c in frame.columns
        if c not in exclude and is_datetime64_any_dtype(frame[c].dtype)
    ]


@dataclass(frozen=True)
class DateLead:
    """How many of a date column's values fall after the row's label time, and by how much."""

    column: str
    non_null: int
    after_label_time: int
    max_lead_days: float

    @property
    def share(self) -> float:
        return self.after_label_time / self.non_null if self.non_null else 0.0

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "non_null": self.non_null,
            "after_label_time": self.after_label_time,
            "share_after_label_time": round(self.share, 6),
            "max_lead_days": round(self.max_lead_days, 3),
        }


def measure_post_label_dates(
    frame: pd.DataFrame, label_time: str, columns: list[str]
) -> list[DateLead]:
    """Measure, per date column, how many non-null values fall strictly after the label time."""
    reference = as_naive_utc(frame[label_time])
    measured = []
    for column in columns:
        values = as_naive_utc(frame[column])
        present = values.notna() & reference.notna()
        lead = values[present] - reference[present]
        after = lead > pd.Timedelta(0)
        n_after = int(after.sum())
        max_lead = lead[after].max() / pd.Timedelta(days=1) if n_after else 0.0
        measured.append(DateLead(column, int(present.sum()), n_after, float(max_lead)))
    return measured


def judge_post_label_dates(
    measured: list[DateLead], params: LeakageParams, label_time: str
) -> CheckResult:
    """Fail when a column's share after the label time exceeds the threshold; warn above 0."""
    threshold = params.max_share_after_label_time
    failing = [m for m in measured if m.share > threshold]
    flagged = sorted((m for m in measured if m.share > 0), key=lambda m: -m.share)
    metrics: dict[str, JsonValue] = {
        "threshold": threshold,
        "label_time": label_time,
        "columns_checked": len(measured),
        "findings": [m.as_json() for m in flagged],
    }
    if not flagged:
        return CheckResult(
            code=TEMPORAL,
            stage="leakage",
            status="pass",
            summary=f"no date among {len(measured)} date column(s) falls after {label_time!r}",
            metrics=metrics,
        )
    parts = [
        f"{m.column} ({m.share:.1%} of values after {label_time}, up to {m.max_lead_days:.0f} days)"
        for m in flagged
    ]
    return CheckResult(
        code=TEMPORAL,
        stage="leakage",
        status="fail" if failing else "warn",
        columns=[m.column for m in flagged],
        summary="dates after the label time: " + "; ".join(parts),
        metrics=metrics,
    )


def check_temporal_leakage(
    frame: pd.DataFrame, label_time: str | None, exclude: set[str], params: LeakageParams
) -> CheckResult:
    """Measure and judge every date column against the label time."""
    if label_time is None:
        return CheckResult(
            code=TEMPORAL,
            stage="leakage",
            status="not_run",
            summary="no label time given (data.label_time), so dates cannot be checked",
        )
    columns = date_columns(frame, exclude | {label_time})
    return judge_post_label_dates(
        measure_post_label_dates(frame, label_time, columns), params, label_time
    )


@task(name="detect-leakage", cache_policy=NO_CACHE, persist_result=False)
def detect_leakage_task(
    frame: pd.DataFrame, label_time: str | None, exclude: set[str], params: LeakageParams
) -> list[CheckResult]:
    """Run every leakage check on the whole table."""
    return [check_temporal_leakage(frame, label_time, exclude, params)]
