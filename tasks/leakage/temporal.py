"""Dates against the label time: temporal leakage, declared availability, ambiguous dates.

- temporal_leakage (L3.1): date values after the label time, and features whose declared
  known-at time (leakage.known_at: another column, or an offset from the label time) falls
  after it; a wrong declaration is leakage_config_invalid.
- ambiguous_dates: date-named text columns whose day/month order no value settles.

How a column is read as dates lives in tasks/dates.py; this module measures and judges.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import pandas as pd
from pandas.api.types import is_datetime64_any_dtype
from pydantic import JsonValue

from retrain_guard.schemas.params import LeakageParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.schemas.roles import KnownAt
from retrain_guard.tasks.dates import (
    DateColumn,
    DayMonthOrder,
    as_naive_utc,
    has_date_hint,
    parse_date_like,
)
from retrain_guard.tasks.label_time import read_label_time
from retrain_guard.tasks.leakage.column_dates import column_reading, unsettled_column
from retrain_guard.tasks.leakage.date_leads import (
    DateLead,
    lead_counts,
    lead_of,
    measure_post_label_dates,
    summed_leads,
)
from retrain_guard.tasks.leakage.findings import UNBOUNDED, Finding, Judged, judged_from_findings
from retrain_guard.tasks.leakage.table import LeakageTable
from retrain_guard.tasks.part_map import iter_parts
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.stored_table import Frame, StoredTable

TEMPORAL = "temporal_leakage"
CONFIG = "leakage_config_invalid"
AMBIGUOUS_DATES = "ambiguous_dates"


# --- Recognising dates ---------------------------------------------------------------------


@dataclass(frozen=True)
class AmbiguousDates:
    """A text column of day-month-year dates whose day/month order the values do not settle."""

    column: str
    order: DayMonthOrder

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "order": self.order.order,
            "example": self.order.example,
            "other": self.order.other,
        }


def measure_ambiguous_dates(frame: Frame, columns: list[str]) -> list[AmbiguousDates]:
    """Return the date-named text columns of day-month-year strings whose order is open.

    Such a column is not read as dates (parse_date_like leaves it text): reading it either
    way would be a guess.
    """
    found = []
    for column in columns:
        if has_date_hint(column) and (order := unsettled_column(frame, column)) is not None:
            found.append(AmbiguousDates(column, order))
    return found


def judge_ambiguous_dates(measured: list[AmbiguousDates]) -> CheckResult:
    """Warn, naming each column, when day/month order could not be settled."""
    if not measured:
        return check(AMBIGUOUS_DATES).result(
            "pass", "no date column with an unsettled day/month order"
        )
    parts = [f"{m.column!r}: {m.order.reason()}" for m in measured]
    return check(AMBIGUOUS_DATES).result(
        "warn",
        "day/month order not settled, so these columns stay text and are not checked "
        "as dates: "
        + "; ".join(parts)
        + ". Write the dates as ISO 8601 (YYYY-MM-DD) in the extract, or fix the wrong values",
        columns=[m.column for m in measured],
        metrics={"columns": [m.as_json() for m in measured]},
    )


class DeclarationError(ValueError):
    """A known-at declaration names a column that is not there or is not a time."""


def measure_declared_availability(
    frame: Frame, label_time: str, declarations: dict[str, str | pd.Timedelta]
) -> list[DateLead]:
    """Measure, per declared feature, how often it becomes known after the row's label time.

    On a stored table with a datetime label time, a partition at a time: the offset added
    to each partition's label times, a declared column read by the reading its sample
    decides (tasks/leakage/column_dates.py); only a column read by force (no date look, a
    label time's rules) is read whole.

    Args:
        frame: the table.
        label_time: column of the moment each prediction is made.
        declarations: feature column -> the column holding the time its value becomes known,
            or an offset from the label time (a Timedelta; positive = known later).
            Rows where the feature is missing are not counted.

    Raises:
        DeclarationError: a named column is missing or cannot be read as times.
    """
    stored = isinstance(frame, StoredTable) and is_datetime64_any_dtype(frame.dtype(label_time))
    reference: pd.Series | None = None  # the whole label time, read once if needed
    measured = []
    for feature, when in declarations.items():
        _check_declared(frame, feature, when)
        if isinstance(when, pd.Timedelta):
            source = f"declared known at label time {_signed(when)}"
            read, columns = None, [label_time, feature]
        else:
            source = f"declared known at column {when!r}"
            read = _declared_reading(frame, when) if stored else None
            columns = list(dict.fromkeys([label_time, feature, when]))
        if stored and (isinstance(when, pd.Timedelta) or read is not None):
            counts = iter_parts(frame, columns, _part_known, feature, label_time, when, read)
            measured.append(summed_leads(feature, counts, source))
            continue
        if reference is None:
            reference = as_naive_utc(pd.to_datetime(frame[label_time]))
        if isinstance(when, pd.Timedelta):
            known = reference + when
        else:
            parsed = parse_date_like(when, frame[when]) or _forced_dates(when, frame[when])
            known = parsed.values
        known = known.where(frame[feature].notna())
        measured.append(lead_of(feature, known, reference, source))
    return measured


def _check_declared(frame: Frame, feature: str, when: str | pd.Timedelta) -> None:
    if feature not in frame.columns:
        raise DeclarationError(f"leakage.known_at names feature {feature!r}: no such column")
    if isinstance(when, str) and when not in frame.columns:
        raise DeclarationError(
            f"leakage.known_at[{feature!r}] names column {when!r}: no such column"
        )


def _declared_reading(frame: Frame, when: str) -> Callable[[pd.Series], pd.Series] | None:
    """How a declared known-at column is read as dates, as its sample decides; None for a
    column only read by force (no date look: read whole, a label time's rules)."""
    reading = column_reading(frame, when)
    return None if reading is None else reading.read


def _part_known(
    chunk: pd.DataFrame,
    feature: str,
    label_time: str,
    when: str | pd.Timedelta,
    read: Callable[[pd.Series], pd.Series] | None,
) -> tuple[int, int, pd.Timedelta]:
    """A partition's `lead_counts` of a declaration: its label times plus the offset, or
    the declared column as `read`, where the feature is present."""
    if isinstance(when, pd.Timedelta):
        known = as_naive_utc(chunk[label_time]) + when
    else:
        assert read is not None
        known = as_naive_utc(read(chunk[when]))
    return lead_counts(known.where(chunk[feature].notna()), chunk[label_time])


def _forced_dates(name: str, values: pd.Series) -> DateColumn:
    # The declaration says the column holds dates: read it like a label time, never guessing.
    read = read_label_time(name, values, subject="known-at column")
    if read.unsettled is not None:
        raise DeclarationError(
            f"leakage.known_at: column {name!r} holds day-month-year dates whose order "
            f"is not settled ({read.unsettled.reason()}); write them as ISO 8601"
        )
    if read.values is None or read.bad_rows:
        raise DeclarationError(
            "leakage.known_at: "
            + (read.problem or f"column {name!r} does not hold dates or datetimes")
        )
    return DateColumn(name, as_naive_utc(read.values), "declared")


def _signed(offset: pd.Timedelta) -> str:
    return ("+" if offset >= pd.Timedelta(0) else "-") + str(abs(offset))


def declarations_from_params(
    params: LeakageParams, columns: Iterable[str] = ()
) -> dict[str, str | pd.Timedelta]:
    """Turn leakage.known_at into declarations, read as a YAML schema's roles read them.

    A text that reads as an offset ('0d', '-1d') is an offset (a Timedelta); any other text
    names the column holding the time (see schemas/roles.py KnownAt.parse).

    Raises:
        DeclarationError: an offset text is also the name of one of `columns` (ambiguous).
    """
    present = list(columns)
    out: dict[str, str | pd.Timedelta] = {}
    for feature, when in params.known_at.items():
        try:
            out[feature] = KnownAt.parse(when.strip(), present).as_declaration()
        except ValueError as exc:
            raise DeclarationError(f"leakage.known_at[{feature!r}]: {exc}") from exc
    return out


def judge_post_label_dates(
    measured: list[DateLead], params: LeakageParams, label_time: str
) -> Judged:
    """Fail when a column's share after the label time exceeds the threshold; warn above 0."""
    threshold = params.max_share_after_label_time
    findings = []
    for m in measured:
        if m.share <= 0:
            continue
        findings.append(
            Finding(
                check=TEMPORAL,
                status="fail" if m.share > threshold else "warn",
                columns=(m.column,),
                measure="share_after_label_time",
                value=m.share,
                threshold=threshold,
                taxonomy="L3.1",
                detail=f"{m.column}: {m.share:.1%} of values ({m.after_label_time} of "
                f"{m.non_null}) after {label_time}, up to {m.max_lead_days:.0f} days after "
                f"({m.source})",
                severity=m.share / threshold if threshold > 0 else UNBOUNDED,
                evidence=m.as_json(),
            )
        )
    judged = judged_from_findings(
        TEMPORAL,
        findings,
        f"no value among {len(measured)} date or declared column(s) falls after {label_time!r}",
        {
            "threshold": threshold,
            "label_time": label_time,
            "columns_checked": len(measured),
            "measured": [m.as_json() for m in measured],
        },
    )
    checked = judged.check
    undeclared = [
        c for c in checked.columns if not any(m.column == c and m.declared for m in measured)
    ]
    if not undeclared:
        return judged
    hint = declaration_hint(undeclared[0])
    hinted = checked.model_copy(
        update={
            "summary": f"{checked.summary}. {hint}",
            "metrics": {**checked.metrics, "remedy": hint},
        }
    )
    return replace(judged, check=hinted)


def declaration_hint(column: str) -> str:
    """Return how to declare a date column whose future values are known in advance."""
    return (
        f"If such a value is known before the label time (a scheduled due date, an expiry), "
        f"declare when it becomes known: leakage.known_at: {{{column}: '0d'}} (known at the "
        f"label time; '-1d' a day before) or {{{column}: COLUMN}} (the column holding that "
        f"time); otherwise drop the column"
    )


def judge_temporal_leakage(
    frame: Frame,
    label_time: str | None,
    features: list[str],
    params: LeakageParams,
) -> Judged:
    """Measure and judge every date-like column and every declaration against the label time.

    A declared column is judged by its declaration only: a date that lies in the future
    but is known in advance (a scheduled due date) is declared with offset '0d' (known at
    the label time) or a negative one (known that long before).

    Raises:
        DeclarationError: a known-at declaration is wrong (see measure_declared_availability).
    """
    if label_time is None:
        return Judged(
            check(TEMPORAL).result(
                "not_run", "no label time given (data.label_time), so dates cannot be checked"
            )
        )
    undeclared = [c for c in features if c not in params.known_at]
    measured = measure_post_label_dates(frame, label_time, undeclared)
    if params.known_at:
        measured += measure_declared_availability(
            frame, label_time, declarations_from_params(params, map(str, frame.columns))
        )
    return judge_post_label_dates(measured, params, label_time)


def check_temporal_leakage(
    frame: Frame,
    label_time: str | None,
    features: list[str],
    params: LeakageParams,
) -> CheckResult:
    """Return the temporal_leakage result of judge_temporal_leakage (raises as it does)."""
    return judge_temporal_leakage(frame, label_time, features, params).check


def config_failure(error: DeclarationError, params: LeakageParams) -> Judged:
    """Return leakage_config_invalid for a wrong known-at declaration."""
    return Judged(
        check(CONFIG).result(
            "fail",
            str(error),
            columns=sorted(params.known_at),
            metrics={"known_at": dict(params.known_at)},
        )
    )


def run(table: LeakageTable) -> Judged:
    """temporal_leakage on the table, or leakage_config_invalid when a declaration is wrong."""
    data = table.data
    try:
        return judge_temporal_leakage(table.frame, data.label_time, table.features, table.params)
    except DeclarationError as exc:
        return config_failure(exc, table.params)


def run_ambiguous_dates(table: LeakageTable) -> Judged:
    """ambiguous_dates on the features and the label time (needs no label)."""
    data = table.data
    dated = [*table.features, *([data.label_time] if data.label_time else [])]
    return Judged(judge_ambiguous_dates(measure_ambiguous_dates(table.frame, dated)))
