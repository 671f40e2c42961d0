"""pandera's failures in words: grouped per column and check, with exact counts and rows.

What a failing schema check reads like in a report: `summarise_failures` groups pandera's
failure cases per (column, check) with the exact count and the first rows (index, value,
id), `describe` turns one into a sentence, `redact` hides values, and the header's own
failures (a missing, extra or repeated column) take the same shape.
"""

import copy
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pydantic import JsonValue

from schemas.date_checks import DATES_CHECK, TIME_ZONE_CHECK, dates_problem, zone_of

MISSING_CHECK = "column_in_dataframe"
EXTRA_CHECK = "column_in_schema"
DUPLICATE_CHECK = "unique_column_names"
TWO_CLASSES_CHECK = "at_most_two_classes"


def row_names(
    frame: pd.DataFrame, index: pd.Index, column: str, id_column: str | None, max_cases: int
) -> list[dict[str, JsonValue]]:
    """Return the first max_cases rows of `index` as failure rows: index, value, id."""
    has_id = bool(id_column) and id_column in frame.columns
    rows: list[dict[str, JsonValue]] = []
    for at in index[:max_cases]:
        row: dict[str, JsonValue] = {
            "index": _jsonable(at),
            "value": _jsonable(frame.at[at, column]),
        }
        if has_id:
            row["id"] = _jsonable(frame.at[at, id_column])
        rows.append(row)
    return rows


def column_failure(column: str, check: str) -> dict[str, JsonValue]:
    messages = {
        MISSING_CHECK: f"column {column!r} is missing",
        EXTRA_CHECK: f"column {column!r} is not in the schema (extra_columns: fail)",
    }
    message = messages[check]
    return {"column": column, "check": check, "count": None, "rows": [], "message": message}


def duplicate_failure(column: str, path: str) -> dict[str, JsonValue]:
    """Name a repeated column; say what a reader of this file's format would do with it."""
    if Path(path).suffix.lower() == ".csv":
        fate = "a CSV reader would silently rename the repeat, e.g. to " + repr(f"{column}.1")
    else:
        fate = "whatever reads the Parquet file by column name finds only one of them"
    return {
        "column": column,
        "check": DUPLICATE_CHECK,
        "count": None,
        "rows": [],
        "message": f"column name {column!r} appears more than once in the header; give "
        f"each column its own name ({fate})",
    }


def redact_rows(rows: list[dict[str, JsonValue]]) -> list[dict[str, JsonValue]]:
    """Return failure rows with their values redacted (ids stay: they name the rows)."""
    return [{**row, "value": redact(row.get("value"))} for row in rows]


def redact(value: JsonValue) -> JsonValue:
    """Return a value as its type and a short hash: rows stay matchable, the value unseen.

    The hash is unsalted: it hides a value from a reader of the report, but a low-entropy
    value (a short code) can be found again by trying candidates.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
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
) -> list[dict[str, JsonValue]]:
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
    summary: list[dict[str, JsonValue]] = []
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
            rows = redact_rows(rows)
        count: int | None = len(with_index) if len(with_index) else None
        if count is not None and _is_number(number):
            count = counts.get((label, int(number)), count)
        threshold = _threshold(schema, label, str(check), number, frame)
        entry: dict[str, JsonValue] = {
            "column": label,
            "check": str(check),
            "threshold": threshold,
            "count": count,
            "rows": list[JsonValue](rows),
        }
        if not len(with_index):
            value = _jsonable(group["failure_case"].iloc[0])
            # A dtype name is not data; anything else a check returned or raised may be.
            is_dtype = str(check).startswith(("dtype(", "coerce_dtype("))
            entry["value"] = redact(value) if redact_values and not is_dtype else value
        entry["message"] = describe(label, str(check), count, entry.get("value"), threshold)
        summary.append(entry)
    # Causes before consequences: absent columns, then dtypes, then values, then the table.
    return sorted(summary, key=_order)


def _order(entry: dict[str, JsonValue]) -> int:
    check = str(entry["check"])
    if check in (MISSING_CHECK, EXTRA_CHECK):
        return 0
    if check == DATES_CHECK:  # why the dtype check fails, in words
        return 1
    if check.startswith(("dtype(", "coerce_dtype(")):
        return 2
    return 3 if entry["column"] is not None else 4


def _rows(
    with_index: pd.DataFrame,
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema,
    column: str | None,
    number: Any,
    id_column: str | None,
    max_cases: int,
) -> list[dict[str, JsonValue]]:
    listed = with_index.head(max_cases)
    compared: list[str] = []
    if column is None:
        found = _check_object(schema, None, number)
        statistics = (found.statistics or {}) if found is not None else {}
        compared = [str(statistics[k]) for k in ("left", "right") if k in statistics]
    has_id = bool(id_column) and id_column in frame.columns
    rows: list[dict[str, JsonValue]] = []
    for index, value in zip(listed["index"], listed["failure_case"], strict=True):
        row: dict[str, JsonValue] = {"index": _jsonable(index)}
        known = index in frame.index
        if column is None:
            # The row's values of the compared columns, or of every column for a check in code.
            names = compared or [str(c) for c in frame.columns]
            row["value"] = (
                {n: _jsonable(frame.at[index, n]) for n in names if n in frame.columns}
                if known
                else None
            )
        else:
            row["value"] = _jsonable(value)
        if has_id and known:
            row["id"] = _jsonable(frame.at[index, id_column])
        rows.append(row)
    return rows


def _is_number(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


# How each built-in pandera check reads in a sentence: "<n> value(s) <phrase>".
_VALUE_PHRASES = {
    "greater_than": "not above {0}",
    "greater_than_or_equal_to": "below {0}",
    "less_than": "not below {0}",
    "less_than_or_equal_to": "above {0}",
    "equal_to": "not equal to {0}",
    "not_equal_to": "equal to {0}",
    "in_range": "outside the range {0} to {1}",
    "isin": "outside the allowed values {0}",
    "notin": "among the forbidden values {0}",
    "str_matches": "not matching the pattern {0}",
    "str_contains": "not containing {0}",
    "str_startswith": "not starting with {0}",
    "str_endswith": "not ending with {0}",
    "str_length": "of a length outside {0} to {1}",
    "unique_values_eq": "differing from the set {0}",
}
_CALL = re.compile(r"^(?P<name>[a-z_]+)\((?P<args>.*)\)$", re.DOTALL)


def _split_args(args: str) -> list[str]:
    """Split a check's argument text at top-level commas (lists keep their commas)."""
    parts: list[str] = []
    depth, current = 0, ""
    for char in args:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def describe(
    column: str | None,
    check: str,
    count: int | None,
    value: JsonValue = None,
    threshold: Mapping[str, JsonValue] | None = None,
) -> str:
    """Return one sentence about a failing check, in words (never a bare True/False)."""
    where = f"column {column!r}" if column else "the table"
    rows = f"{count:,} row(s)" if count is not None else None
    if threshold is not None and {"left", "op", "right"} <= threshold.keys():
        # A comparison between two columns declared in a YAML schema's `checks`.
        offset = f" {threshold['offset']}" if threshold.get("offset") else ""
        rule = f"{threshold['left']} {threshold['op']} {threshold['right']}{offset}"
        if rows is not None:
            return f"{where} breaks {check!r} ({rule}) in {rows}"
        if isinstance(value, str) and value not in ("True", "False"):
            return f"{where}: {check!r} ({rule}) could not be applied ({value})"
    call = _CALL.match(check)
    name, args = (call["name"], _split_args(call["args"])) if call else (check, [])
    if name in ("dtype", "coerce_dtype"):
        wanted = args[0].strip("'\"") if args else "the declared type"
        if rows is not None:
            return f"{where}: {rows} hold values that cannot be read as {wanted}"
        found = f" holds {value}" if isinstance(value, str) and value else ""
        return f"{where}{found}; the schema wants {wanted}"
    if name == "not_nullable":
        return f"{where} has missing values in {rows or 'some rows'}; the schema forbids them"
    if name == "field_uniqueness":
        return f"{where} repeats values in {rows or 'some rows'}; the schema wants them unique"
    if name == TWO_CLASSES_CHECK:
        return f"{where} holds more than two classes; a binary classifier needs at most two"
    if name == DATES_CHECK:
        reason = threshold.get("reason") if threshold is not None else None
        if reason:
            return f"{reason} ({rows or 'some rows'})"
        return (
            f"{where} has {rows or 'values'} that do not read as dates like the other rows; "
            "write them as ISO 8601 (YYYY-MM-DD)"
        )
    if name == TIME_ZONE_CHECK:
        return (
            f"{where} mixes time zones in {rows or 'some rows'}; the schema wants one time "
            "zone per column"
        )
    if rows is None and isinstance(value, str) and value not in ("True", "False"):
        # A check that raised: pandera keeps the error as the failure case.
        return f"{where}: the check {check!r} could not be applied ({value})"
    if name in _VALUE_PHRASES and len(args) >= _VALUE_PHRASES[name].count("{"):
        phrase = _VALUE_PHRASES[name].format(*args)
        return f"{where} has {rows or 'values'} {phrase}"
    if rows is not None:
        return f"{where} fails the check {check!r} in {rows}"
    return f"{where} fails the check {check!r}"


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
