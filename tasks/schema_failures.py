"""pandera's failures, typed: grouped per column and check, with exact counts and rows.

What a failing schema check reports: `summarise_failures` groups pandera's failure cases
per (column, check) into `SchemaFailure`s with the exact count and the first rows
(`FailureRow`: index, value, id); the header's own failures (a missing, extra or repeated
column) and the label time's take the same shape. `redact` hides values, tasks/
schema_messages.py words each failure, and `unusable_columns` names the columns failures
leave unusable. A failure becomes JSON only in the report, through `SchemaFailure.as_json`.
"""

import copy
import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pydantic import JsonValue

from retrain_guard.schemas.date_checks import DATES_CHECK, TIME_ZONE_CHECK, dates_problem, zone_of
from retrain_guard.tasks.schema_messages import TWO_CLASSES_CHECK, describe

MISSING_CHECK = "column_in_dataframe"
EXTRA_CHECK = "column_in_schema"
DUPLICATE_CHECK = "unique_column_names"
CONTROL_CHECK = "no_control_characters_in_names"
LABEL_TIME_CHECK = "label_time_reads_as_dates"


@dataclass(frozen=True)
class FailureRow:
    """One failing row: its index, its value, and its id when the table has an id column.

    A check about the whole table has no single value: `values` then holds the row's
    values of the columns it compares (None when the row is not in the table).
    """

    index: JsonValue
    value: JsonValue = None
    values: tuple[tuple[str, JsonValue], ...] | None = None
    row_id: JsonValue = None
    has_id: bool = False

    def redacted(self) -> "FailureRow":
        """Return the row with its values redacted (the id stays: it names the row)."""
        values = None if self.values is None else tuple((k, redact(v)) for k, v in self.values)
        return replace(self, value=redact(self.value), values=values)

    def as_json(self) -> dict[str, JsonValue]:
        value = self.value if self.values is None else dict(self.values)
        row: dict[str, JsonValue] = {"index": self.index, "value": value}
        if self.has_id:
            row["id"] = self.row_id
        return row


@dataclass(frozen=True)
class SchemaFailure:
    """One failing check of the schema on one column (None: the table), counted and named.

    `pandera` marks a failure one of pandera's checks found: its JSON names the check's
    `threshold` and, when no row is listed (`count` is None), the `value` the check
    returned or raised. The header's failures and the label time's reading have neither.
    """

    column: str | None
    check: str
    message: str
    count: int | None = None
    rows: tuple[FailureRow, ...] = ()
    pandera: bool = False
    threshold: Mapping[str, JsonValue] | None = None
    value: JsonValue = None

    @property
    def leaves_column_unusable(self) -> bool:
        """Whether the column cannot be measured as the schema means it.

        A column that is missing, does not have its declared type, holds a label with more
        than two classes, or made a check raise cannot; one that merely holds values out of
        range still can.
        """
        if not self.column:
            return False
        raised = self.pandera and self.count is None and isinstance(self.value, str)
        return (
            raised
            or self.check.startswith(("dtype(", "coerce_dtype("))
            or self.check in (MISSING_CHECK, TWO_CLASSES_CHECK, LABEL_TIME_CHECK)
        )

    def as_json(self) -> dict[str, JsonValue]:
        """Return the failure as the report lists it under the check's metrics."""
        entry: dict[str, JsonValue] = {"column": self.column, "check": self.check}
        if self.pandera:
            entry["threshold"] = None if self.threshold is None else dict(self.threshold)
        entry["count"] = self.count
        entry["rows"] = [row.as_json() for row in self.rows]
        if self.pandera and self.count is None:
            entry["value"] = self.value
        entry["message"] = self.message
        return entry


def unusable_columns(failures: Iterable[SchemaFailure]) -> list[str]:
    """Return the columns the failures leave unusable as read, each once, in their order."""
    return list(dict.fromkeys(str(f.column) for f in failures if f.leaves_column_unusable))


def row_names(
    frame: pd.DataFrame, index: pd.Index, column: str, id_column: str | None, max_cases: int
) -> list[FailureRow]:
    """Return the first max_cases rows of `index` as failure rows: index, value, id."""
    has_id = bool(id_column) and id_column in frame.columns
    return [
        FailureRow(
            index=_jsonable(at),
            value=_jsonable(frame.at[at, column]),
            row_id=_jsonable(frame.at[at, id_column]) if has_id else None,
            has_id=has_id,
        )
        for at in index[:max_cases]
    ]


def column_failure(column: str, check: str) -> SchemaFailure:
    messages = {
        MISSING_CHECK: f"column {column!r} is missing",
        EXTRA_CHECK: f"column {column!r} is not in the schema (extra_columns: fail)",
    }
    return SchemaFailure(column=column, check=check, message=messages[check])


def duplicate_failure(column: str, path: str) -> SchemaFailure:
    """Name a repeated column; say what a reader of this file's format would do with it."""
    if Path(path).suffix.lower() == ".csv":
        fate = "a CSV reader would silently rename the repeat, e.g. to " + repr(f"{column}.1")
    else:
        fate = "whatever reads the Parquet file by column name finds only one of them"
    return SchemaFailure(
        column=column,
        check=DUPLICATE_CHECK,
        message=f"column name {column!r} appears more than once in the header; give "
        f"each column its own name ({fate})",
    )


def control_names(columns: list[str]) -> list[str]:
    """Return the column names holding a control character (NUL, tab, newline, ...)."""
    return [c for c in columns if any(unicodedata.category(ch) == "Cc" for ch in c)]


def control_name_failure(column: str) -> SchemaFailure:
    """Name a column whose name holds a control character: numpy cuts a trailing NUL from
    strings, so scikit-learn could not find such a column by its name."""
    return SchemaFailure(
        column=column,
        check=CONTROL_CHECK,
        message=f"column name {column!r} holds a control character; rename the column "
        "(such names are cut or mangled by the libraries that read them)",
    )


def redact(value: JsonValue) -> JsonValue:
    """Return a value as its type and a short hash: rows stay matchable, the value unseen.

    The hash is unsalted: it hides a value from a reader of the report, but a low-entropy
    value (a short code) can be found again by trying candidates.
    """
    if value is None:
        return None
    digest = hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:16]
    return f"<{type(value).__name__} sha256:{digest}>"


def _check_object(schema: pa.DataFrameSchema, column: Any, number: Any) -> pa.Check | None:
    try:
        index = int(number)
    except (TypeError, ValueError):
        return None
    if column is None:
        checks = schema.checks
    elif column in schema.columns:
        checks = schema.columns[column].checks
    else:
        return None
    return checks[index] if 0 <= index < len(checks) else None


def _threshold(
    schema: pa.DataFrameSchema, column: str | None, check: str, number: Any, frame: pd.DataFrame
) -> dict[str, JsonValue] | None:
    if check.startswith(("dtype(", "coerce_dtype(")):
        return {"dtype": check.split("'")[1] if "'" in check else check}
    if check == "field_uniqueness":
        return {"unique": True}
    if check == "not_nullable":
        return {"nullable": False}
    if check == DATES_CHECK and column in frame.columns:
        return {"reason": dates_problem(frame[column])}
    if check == TIME_ZONE_CHECK and column in frame.columns:
        zones = zone_of(frame[column]).value_counts()
        return {"time_zones_seen": {str(k): int(v) for k, v in zones.items()}}
    found = _check_object(schema, column, number)
    if found is None or not found.statistics:
        return None
    return {str(k): _jsonable(v) for k, v in found.statistics.items()}


def capped_schema(schema: pa.DataFrameSchema, max_cases: int) -> pa.DataFrameSchema:
    """Return a copy whose checks keep at most max_cases failure cases each.

    pandera formats every failure case into its error message in Python; capping keeps a
    million failing rows cheap. The exact counts come from exact_counts instead.
    """
    capped = copy.deepcopy(schema)
    for check in [*capped.checks, *(c for col in capped.columns.values() for c in col.checks)]:
        check.n_failure_cases = max_cases
    return capped


def exact_counts(errors: pa.errors.SchemaErrors) -> dict[tuple[str | None, int], int]:
    """Return failing rows per (column or None for the table, check number) from the outputs."""
    counts: dict[tuple[str | None, int], int] = {}
    for error in errors.schema_errors:
        output = getattr(error, "check_output", None)
        number = getattr(error, "check_index", None)
        if not isinstance(output, pd.Series) or number is None:
            continue
        column = str(error.schema.name) if isinstance(error.schema, pa.Column) else None
        counts[(column, int(number))] = int((~output.astype(bool)).sum())
    return counts


def summarise_failures(
    failure_cases: pd.DataFrame,
    frame: pd.DataFrame,
    id_column: str | None,
    max_cases: int,
    schema: pa.DataFrameSchema | None = None,
    redact_values: bool = False,
    counts: Mapping[tuple[str | None, int], int] | None = None,
) -> list[SchemaFailure]:
    """Group pandera's failure cases per (column, check) with exact counts and capped rows.

    Work is done on whole columns of the failure-case table; only the listed (capped) rows
    are visited one by one, so a million failing rows cost a few vectorised passes.
    `counts` (from exact_counts) gives the true count of a check whose cases were capped.
    """
    counts = counts or {}
    schema = schema if schema is not None else pa.DataFrameSchema({})
    cases = failure_cases[["schema_context", "column", "check", "check_number", "index"]].copy()
    cases["failure_case"] = failure_cases["failure_case"]
    cases["column"] = cases["column"].astype(object).where(cases["column"].notna(), None)
    # pandera reports a failed coercion twice (coerce_dtype and dtype): keep one.
    cases["check"] = cases["check"].astype(str)
    is_coerce = cases["check"].str.startswith("coerce_dtype(")
    if bool(is_coerce.any()):
        keys = pd.MultiIndex.from_frame(cases[["column", "index"]].astype(str))
        coerced = keys[is_coerce.to_numpy()]
        is_dtype_echo = cases["check"].str.startswith("dtype(").to_numpy() & keys.isin(coerced)
        cases = cases[~is_dtype_echo]
    # A dataframe-level check lists a failing row once per column (or, when it raised,
    # names the schema as its column): one group per check, about the table.
    frame_level = (cases["schema_context"] == "DataFrameSchema") & ~cases["check"].isin(
        [MISSING_CHECK, EXTRA_CHECK]
    )
    cases.loc[frame_level, "column"] = None
    summary: list[SchemaFailure] = []
    grouped = cases.groupby(["schema_context", "column", "check"], dropna=False, sort=False)
    for (context, column, check), group in grouped:
        label = None if column is None or column != column else str(column)
        if context == "DataFrameSchema" and check in (MISSING_CHECK, EXTRA_CHECK):
            summary += [column_failure(str(c), str(check)) for c in group["failure_case"]]
            continue
        with_index = group[group["index"].notna()]
        if label is None and len(with_index):
            with_index = with_index.drop_duplicates(subset=["index"])
        number = group["check_number"].iloc[0]
        rows = _rows(with_index, frame, schema, label, number, id_column, max_cases)
        if redact_values:
            rows = [row.redacted() for row in rows]
        count: int | None = len(with_index) if len(with_index) else None
        if count is not None and _is_number(number):
            count = counts.get((label, int(number)), count)
        threshold = _threshold(schema, label, str(check), number, frame)
        value: JsonValue = None
        if count is None:
            value = _jsonable(group["failure_case"].iloc[0])
            # A dtype name is not data; anything else a check returned or raised may be.
            is_dtype = str(check).startswith(("dtype(", "coerce_dtype("))
            value = redact(value) if redact_values and not is_dtype else value
        summary.append(
            SchemaFailure(
                column=label,
                check=str(check),
                message=describe(label, str(check), count, value, threshold),
                count=count,
                rows=tuple(rows),
                pandera=True,
                threshold=threshold,
                value=value,
            )
        )
    # Causes before consequences: absent columns, then dtypes, then values, then the table.
    return sorted(summary, key=failure_order)


def failure_order(failure: SchemaFailure) -> int:
    """Sort key of failures: causes before consequences (absent columns, dtypes, values)."""
    check = failure.check
    if check in (MISSING_CHECK, EXTRA_CHECK):
        return 0
    if check == DATES_CHECK:  # why the dtype check fails, in words
        return 1
    if check.startswith(("dtype(", "coerce_dtype(")):
        return 2
    return 3 if failure.column is not None else 4


def _rows(
    with_index: pd.DataFrame,
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema,
    column: str | None,
    number: Any,
    id_column: str | None,
    max_cases: int,
) -> list[FailureRow]:
    listed = with_index.head(max_cases)
    compared: list[str] = []
    if column is None:
        found = _check_object(schema, None, number)
        statistics = (found.statistics or {}) if found is not None else {}
        compared = [str(statistics[k]) for k in ("left", "right") if k in statistics]
    has_id = bool(id_column) and id_column in frame.columns
    rows: list[FailureRow] = []
    for index, value in zip(listed["index"], listed["failure_case"], strict=True):
        known = index in frame.index
        values: tuple[tuple[str, JsonValue], ...] | None = None
        if column is None and known:
            # The row's values of the compared columns, or of every column for a check in code.
            names = compared or [str(c) for c in frame.columns]
            values = tuple((n, _jsonable(frame.at[index, n])) for n in names if n in frame.columns)
        rows.append(
            FailureRow(
                index=_jsonable(index),
                value=_jsonable(value) if column is not None else None,
                values=values,
                row_id=_jsonable(frame.at[index, id_column]) if has_id and known else None,
                has_id=has_id and known,
            )
        )
    return rows


def _is_number(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


def _jsonable(value: Any) -> JsonValue:
    if value is None:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is pd.NaT or (not isinstance(value, list | dict) and _is_missing(value)):
        return None
    if hasattr(value, "item"):
        item = value.item()
        if isinstance(item, bool | int | float | str):
            return item
    return str(value)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
