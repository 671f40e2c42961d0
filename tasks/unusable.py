"""Columns the schema or the quirks made unusable, as the later data checks see them.

After a failed schema the data checks still run on the table as read: these functions name
the columns they cannot use, give the data roles without them, and say why a leakage check
did not run or which date it could not see.
"""

from pandas.api.types import is_datetime64_any_dtype

from retrain_guard.schemas.params import DataParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.leakage.column_dates import unsettled_column
from retrain_guard.tasks.leakage.temporal import (
    AMBIGUOUS_DATES,
    AmbiguousDates,
    judge_ambiguous_dates,
    measure_ambiguous_dates,
)
from retrain_guard.tasks.stored_table import Frame, dtype_of
from retrain_guard.tasks.validation import SchemaOutcome


def unusable_after_schema(frame: Frame, data: DataParams, schema: SchemaOutcome) -> list[str]:
    """Return the columns the later data checks cannot use after a failed schema.

    `frame` is the table the later checks see (as read, when the schema failed).
    """
    if schema.frame is not None:
        return []
    unusable = schema.unusable
    # Unvalidated, the label time is as read; only a datetime column can be measured.
    label_time = data.label_time
    if (
        label_time
        and label_time in frame.columns
        and label_time not in unusable
        and not is_datetime64_any_dtype(dtype_of(frame, label_time))
    ):
        unusable.append(label_time)
    return unusable


def without(data: DataParams, unusable: list[str]) -> DataParams:
    """Return the data roles with the unusable columns left out of the measures."""
    if not unusable:
        return data
    return data.model_copy(
        update={
            "drop": list(dict.fromkeys([*data.drop, *unusable])),
            "label_time": None if data.label_time in unusable else data.label_time,
            "id_column": None if data.id_column in unusable else data.id_column,
        }
    )


def explain_skips(
    checks: list[CheckResult], data: DataParams, unusable: list[str]
) -> list[CheckResult]:
    """Say why a leakage check did not run when the schema made the label time unusable."""
    if data.label_time is None or data.label_time not in unusable:
        return checks
    reason = (
        f"not run: label time {data.label_time!r} failed the schema, so no date can be "
        "checked against it"
    )
    return [
        c.model_copy(update={"summary": reason, "columns": [data.label_time]})
        if c.status == "not_run" and c.code == "temporal_leakage"
        else c
        for c in checks
    ]


def name_unsettled_label_time(
    checks: list[CheckResult], frame: Frame, data: DataParams, unusable: list[str]
) -> list[CheckResult]:
    """Name a label time left text for its unsettled day/month order in ambiguous_dates.

    The schema failed it, so the leakage checks ran without it and could not see it.
    """
    column = data.label_time
    if not column or column not in unusable or column not in frame.columns:
        return checks
    order = unsettled_column(frame, column)
    if order is None:
        return checks
    already = [col for c in checks if c.code == AMBIGUOUS_DATES for col in c.columns]
    others = [col for col in already if col != column]
    found = [AmbiguousDates(column, order), *measure_ambiguous_dates(frame, others)]
    judged = judge_ambiguous_dates(found)
    return [judged if c.code == AMBIGUOUS_DATES else c for c in checks]


def explain_leakage(
    checks: list[CheckResult], frame: Frame, data: DataParams, unusable: list[str]
) -> list[CheckResult]:
    """Return the leakage checks saying what the unusable columns kept them from seeing."""
    explained = explain_skips(checks, data, unusable)
    return name_unsettled_label_time(explained, frame, data, unusable)
