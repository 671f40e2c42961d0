"""Schema validation with pandera: every failure collected, each with its rows."""

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas import SCHEMAS
from schemas.declaration import (
    DATES_CHECK,
    TIME_ZONE_CHECK,
    compile_spec,
    dates_problem,
    is_yaml_reference,
    load_spec,
    with_time_zone_checks,
    zone_of,
)
from schemas.params import DataParams, SchemaParams
from schemas.report import CheckResult
from schemas.roles import SchemaDeclarationError, SchemaRoles
from tasks.dates import ISO_REMEDY, read_label_time

CODE = "schema_invalid"
BASELINE = "baseline"
EMPTY_CODE = "empty_columns"
MISSING_CHECK = "column_in_dataframe"
EXTRA_CHECK = "column_in_schema"
DUPLICATE_CHECK = "unique_column_names"
TWO_CLASSES_CHECK = "at_most_two_classes"
LABEL_TIME_CHECK = "label_time_reads_as_dates"


@dataclass(frozen=True)
class DeclaredSchema:
    """A resolved schema with what it declares beyond pandera: roles and reporting policies."""

    schema: pa.DataFrameSchema
    roles: SchemaRoles
    extra_columns: Literal["fail", "ignore"]
    redact_values: bool
    source: str

    @property
    def lists_columns(self) -> bool:
        """Whether the schema names its columns (the baseline adapts to any table)."""
        return self.source != BASELINE


def baseline_schema(columns: list[str], data: DataParams) -> pa.DataFrameSchema:
    """Return the schema used when none is named.

    The label is present and has at most two classes (one class is the profile stage's
    `single_class_target`); rows without a label are left out by the profile stage, which
    reports them (`unlabelled_rows`). The label time, if given, is a datetime column: it
    is read by tasks/dates.py before validation (read_label_times), never by pandera's
    guessing coercion; rows without one are left out of the time split, which reports
    them (`rows_without_label_time`). Columns in data.drop are not checked at all. An
    entirely empty column is no schema failure: empty_columns warns and leaves it out of
    the features.
    """
    dropped = set(data.drop) - {data.label, data.label_time}
    spec: dict[str, pa.Column] = {
        column: pa.Column(nullable=True, required=True)
        for column in columns
        if column not in dropped
    }
    spec[data.label] = pa.Column(
        nullable=True,
        checks=[pa.Check(lambda s: s.nunique() <= 2, name=TWO_CLASSES_CHECK)],
    )
    if data.label_time:
        spec[data.label_time] = pa.Column(pa.DateTime, nullable=True)
    return pa.DataFrameSchema(spec, name=BASELINE, strict=False)


def read_label_times(
    frame: pd.DataFrame, data: DataParams, declared: DeclaredSchema, max_cases: int
) -> tuple[pd.DataFrame, dict[str, JsonValue] | None]:
    """Read the baseline's label time as dates with tasks/dates.py; return the failure if not.

    Day/month order is never guessed: an unsettled dd/mm text label time stays text and is
    a failure that says to write ISO 8601. Present values that do not parse are listed by
    row. A user schema declares its own dtypes; its label time is left to it.
    """
    column = data.label_time
    if declared.lists_columns or not column or column not in frame.columns:
        return frame, None
    values = frame[column]
    read = read_label_time(column, values)
    if read.values is None:
        return frame, {
            "column": column,
            "check": LABEL_TIME_CHECK,
            "count": None,
            "rows": [],
            "message": str(read.problem),
        }
    if read.bad_rows:
        index = frame.index[list(read.bad_rows)]
        rows = _row_names(frame, index, column, data.id_column, max_cases)
        shown: list[JsonValue] = list(values.loc[index[:3]].astype(str))
        if declared.redact_values:
            rows = [
                {**r, "value": redact(r.get("value"))} if isinstance(r, dict) else r for r in rows
            ]
            shown = [redact(v) for v in shown]
        return frame, {
            "column": column,
            "check": LABEL_TIME_CHECK,
            "count": len(read.bad_rows),
            "rows": rows,
            "message": f"label time {column!r} read as {read.how}, but {len(read.bad_rows)} "
            f"value(s) do not parse (e.g. {', '.join(map(repr, shown))}); {ISO_REMEDY}",
        }
    if read.values is values:  # already datetimes
        return frame, None
    return frame.assign(**{column: read.values}), None


def _row_names(
    frame: pd.DataFrame, index: pd.Index, column: str, id_column: str | None, max_cases: int
) -> list[JsonValue]:
    """Return the first max_cases rows of `index` as failure rows: index, value, id."""
    has_id = bool(id_column) and id_column in frame.columns
    rows: list[JsonValue] = []
    for at in index[:max_cases]:
        row: dict[str, JsonValue] = {
            "index": _jsonable(at),
            "value": _jsonable(frame.at[at, column]),
        }
        if has_id:
            row["id"] = _jsonable(frame.at[at, id_column])
        rows.append(row)
    return rows


def measure_empty_columns(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Return the columns among `columns` that hold no value in any row (none without rows)."""
    if not len(frame):
        return []  # a table without rows is the label profile's finding, not its columns'
    return [c for c in columns if c in frame.columns and not bool(frame[c].notna().any())]


def judge_empty_columns(empty: list[str], rows: int) -> CheckResult:
    """Warn about entirely empty feature columns: they are left out of the features."""
    if not empty:
        return CheckResult(
            code=EMPTY_CODE,
            stage="schema",
            status="pass",
            summary="no feature column is empty in every row",
            metrics={"empty_columns": [], "rows": rows},
        )
    names = ", ".join(repr(c) for c in empty)
    subject = f"column {names} is" if len(empty) == 1 else f"columns {names} are"
    return CheckResult(
        code=EMPTY_CODE,
        stage="schema",
        status="warn",
        columns=list(empty),
        summary=f"{subject} empty in all {rows:,} rows; left out of the features",
        metrics={"empty_columns": list(empty), "rows": rows},
    )


def _model_roles(model: type[pa.DataFrameModel]) -> SchemaRoles:
    config = getattr(model, "Config", None)
    metadata = getattr(config, "metadata", None) or {}
    return SchemaRoles.from_mapping(metadata.get("roles"), model.to_schema().columns)


def declare_schema(params: SchemaParams, data: DataParams, columns: list[str]) -> DeclaredSchema:
    """Return the schema `schema.name` selects: a registered model, a YAML file, or the baseline.

    Args:
        params: the schema parameters (a name in schemas/, or a path ending .yaml/.yml).
        data: the data parameters (the baseline schema is built from their roles).
        columns: the table's columns, read from its header.

    Raises:
        SchemaDeclarationError: unknown name, unreadable YAML, or wrong role declarations;
            raised before any data row is read.
    """
    if params.name is None:
        return DeclaredSchema(
            schema=baseline_schema(columns, data),
            roles=SchemaRoles(),
            extra_columns="ignore",
            redact_values=params.redact_values,
            source=BASELINE,
        )
    if is_yaml_reference(params.name):
        spec = load_spec(params.name)
        return DeclaredSchema(
            schema=compile_spec(spec),
            roles=spec.parsed_roles(),
            extra_columns=spec.extra_columns,
            redact_values=params.redact_values or spec.redact_values,
            source=params.name,
        )
    model = SCHEMAS.get(params.name)
    if model is None:
        known = ", ".join(sorted(SCHEMAS)) or "(none)"
        raise SchemaDeclarationError(
            [f"{params.name!r} is not a known schema; known: {known}, or a path to a .yaml file"],
            "schema.name",
        )
    schema = with_time_zone_checks(model.to_schema())
    roles = _model_roles(model)
    problems = roles.problems(schema.columns)
    if problems:
        raise SchemaDeclarationError(problems, f"schema {params.name}")
    return DeclaredSchema(
        schema=schema,
        roles=roles,
        extra_columns="fail" if schema.strict is True else "ignore",
        redact_values=params.redact_values,
        source=params.name,
    )


def apply_roles(data: DataParams, roles: SchemaRoles) -> DataParams:
    """Fill the data roles the user left empty from the schema's roles.

    Raises:
        SchemaDeclarationError: a role given by the user names another column than the schema.
    """
    pairs = (("label", "label", "--label"), ("label_time", "label_time", "--label-time"),
             ("id_column", "id", "--id"))  # fmt: skip
    update: dict[str, str] = {}
    conflicts: list[str] = []
    for field, role, flag in pairs:
        given, declared = getattr(data, field), getattr(roles, role)
        if declared is None:
            continue
        if given is None:
            update[field] = declared
        elif given != declared:
            conflicts.append(
                f"data.{field} ({flag}) is {given!r} but the schema declares roles.{role} "
                f"{declared!r}; give the same column or leave the flag out"
            )
    if conflicts:
        raise SchemaDeclarationError(conflicts, "roles")
    return data.model_copy(update=update) if update else data


def check_header(
    declared: DeclaredSchema,
    data: DataParams,
    columns: list[str],
    duplicates: list[str] | None = None,
) -> CheckResult | None:
    """Fail on repeated names and missing (or, when the schema says so, extra) columns.

    Only the header is read: `duplicates` are the names the raw header repeats.
    """
    present = set(columns)
    wanted = [str(n) for n, c in declared.schema.columns.items() if c.required]
    wanted += [c for c in (data.label, data.label_time, data.id_column) if c]
    missing = list(dict.fromkeys(c for c in wanted if c not in present))
    extra = [c for c in extra_columns(declared, columns) if c not in data.drop]
    failing_extra = extra if declared.extra_columns == "fail" else []
    repeated = list(duplicates or [])
    if not missing and not failing_extra and not repeated:
        return None
    failures = [_duplicate_failure(c, data.path) for c in repeated]
    failures += [_column_failure(c, MISSING_CHECK) for c in missing]
    failures += [_column_failure(c, EXTRA_CHECK) for c in failing_extra]
    return _failed(declared, failures, extra, read="header")


def extra_columns(declared: DeclaredSchema, columns: list[str]) -> list[str]:
    """Return the table's columns the schema does not list (none for the baseline)."""
    if not declared.lists_columns:
        return []
    return [c for c in columns if c not in declared.schema.columns]


def _column_failure(column: str, check: str) -> dict[str, JsonValue]:
    messages = {
        MISSING_CHECK: f"column {column!r} is missing",
        EXTRA_CHECK: f"column {column!r} is not in the schema (extra_columns: fail)",
    }
    message = messages[check]
    return {"column": column, "check": check, "count": None, "rows": [], "message": message}


def _duplicate_failure(column: str, path: str) -> dict[str, JsonValue]:
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


def _failed(
    declared: DeclaredSchema,
    failures: list[dict[str, JsonValue]],
    extra: list[str],
    read: Literal["header", "rows"],
) -> CheckResult:
    columns = sorted({str(f["column"]) for f in failures if f.get("column")})
    total = sum(int(f["count"]) if isinstance(f["count"], int) else 1 for f in failures)
    first = failures[0]["message"] if failures else "schema validation failed"
    more = f" (and {len(failures) - 1} more failing checks)" if len(failures) > 1 else ""
    return CheckResult(
        code=CODE,
        stage="schema",
        status="fail",
        columns=columns,
        summary=f"{first}{more}",
        metrics={
            "schema": declared.schema.name,
            "source": declared.source,
            "checked": read,
            "failing_checks": len(failures),
            "failing_cases": total,
            "extra_columns": list(extra),
            "redacted": declared.redact_values,
            "failures": list(failures),
        },
    )


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
) -> JsonValue:
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
            summary += [_column_failure(str(c), str(check)) for c in group["failure_case"]]
            continue
        with_index = group[group["index"].notna()]
        if label is None and len(with_index):
            with_index = with_index.drop_duplicates(subset=["index"])
        number = group["check_number"].iloc[0]
        rows = _rows(with_index, frame, schema, label, number, id_column, max_cases)
        if redact_values:
            rows = [
                {**row, "value": redact(row.get("value"))} if isinstance(row, dict) else row
                for row in rows
            ]
        count: int | None = len(with_index) if len(with_index) else None
        if count is not None and _is_number(number):
            count = counts.get((label, int(number)), count)
        entry: dict[str, JsonValue] = {
            "column": label,
            "check": str(check),
            "threshold": _threshold(schema, label, str(check), number, frame),
            "count": count,
            "rows": rows,
        }
        if not len(with_index):
            value = _jsonable(group["failure_case"].iloc[0])
            # A dtype name is not data; anything else a check returned or raised may be.
            is_dtype = str(check).startswith(("dtype(", "coerce_dtype("))
            entry["value"] = redact(value) if redact_values and not is_dtype else value
        entry["message"] = _describe(
            label, str(check), count, entry.get("value"), entry["threshold"]
        )
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
) -> list[JsonValue]:
    listed = with_index.head(max_cases)
    compared: list[str] = []
    if column is None:
        found = _check_object(schema, None, number)
        statistics = (found.statistics or {}) if found is not None else {}
        compared = [str(statistics[k]) for k in ("left", "right") if k in statistics]
    has_id = bool(id_column) and id_column in frame.columns
    rows: list[JsonValue] = []
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


def _describe(
    column: str | None,
    check: str,
    count: int | None,
    value: JsonValue = None,
    threshold: JsonValue = None,
) -> str:
    """Return one sentence about a failing check, in words (never a bare True/False)."""
    where = f"column {column!r}" if column else "the table"
    rows = f"{count:,} row(s)" if count is not None else None
    if isinstance(threshold, dict) and {"left", "op", "right"} <= threshold.keys():
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
        reason = threshold.get("reason") if isinstance(threshold, dict) else None
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


def validate_frame(
    frame: pd.DataFrame,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str] | None = None,
) -> tuple[pd.DataFrame | None, CheckResult]:
    """Validate lazily; return the (coerced) frame and a pass check, or None and a fail check.

    `unusable_roles` are role columns (label, label time, id) whose values no check can use
    (lists, structs, ...): unusable_columns reports them, so the schema leaves them alone
    rather than give a misleading reason ("more than two classes") for the same column.
    """
    schema = declared.schema
    # Columns the run leaves out (data.drop) are not checked at all; they stay in the
    # frame for what may still name them (a known_at time column).
    dropped = [
        c for c in data.drop if c in frame.columns and c not in (data.label, data.label_time)
    ]
    dropped += [c for c in unusable_roles or [] if c in frame.columns and c not in dropped]
    if data.label_time in dropped:
        data = data.model_copy(update={"label_time": None})
    if dropped:
        schema = schema.remove_columns([c for c in dropped if c in schema.columns])
    extra = [
        c for c in extra_columns(declared, [str(c) for c in frame.columns]) if c not in dropped
    ]
    frame, label_time_failure = read_label_times(frame, data, declared, params.max_failure_cases)
    if label_time_failure is not None and data.label_time in schema.columns:
        # Reported once, in words, by read_label_times; not again as a dtype mismatch.
        schema = schema.update_column(str(data.label_time), dtype=None)
    try:
        # A shallow copy validated in place: pandas copies on write, so the caller's frame
        # is untouched and pandera skips its own full copy.
        capped = capped_schema(schema, params.max_failure_cases)
        # pandera takes a frame with a column named 'dask' for a Dask DataFrame (it tests
        # hasattr(frame, "dask")) and breaks; its pandas path is called directly then.
        target = frame.drop(columns=dropped) if dropped else frame.copy(deep=False)
        run = capped._validate if "dask" in target.columns else capped.validate
        validated = run(target, lazy=True, inplace=True)
        if dropped:
            validated = validated.assign(**{c: frame[c] for c in dropped})[list(frame.columns)]
    except pa.errors.SchemaErrors as err:
        failures = summarise_failures(
            err.failure_cases,
            frame,
            data.id_column,
            params.max_failure_cases,
            schema,
            declared.redact_values,
            exact_counts(err),
        )
        if label_time_failure is not None:
            failures.insert(0, label_time_failure)
        return None, _failed(declared, failures, extra, read="rows")
    if label_time_failure is not None:
        return None, _failed(declared, [label_time_failure], extra, read="rows")
    ignored = f"; extra columns ignored: {', '.join(extra)}" if extra else ""
    return validated, CheckResult(
        code=CODE,
        stage="schema",
        status="pass",
        columns=[],
        summary=f"{len(validated)} rows match schema {schema.name!r}{ignored}",
        metrics={
            "schema": schema.name,
            "source": declared.source,
            "failing_checks": 0,
            "failing_cases": 0,
            "extra_columns": list(extra),
            # What the schema declares for later stages (known_at feeds the leakage checks).
            "roles": declared.roles.to_mapping(),
        },
    )


def unusable_columns(check: CheckResult) -> list[str]:
    """Return the columns a failed schema check leaves unusable as read.

    A column that is missing, does not have its declared type, holds a label with more
    than two classes, or made a check raise cannot be measured as the schema means it;
    columns that merely hold values out of range still can.
    """
    found: list[str] = []
    failures = check.metrics.get("failures")
    for failure in failures if isinstance(failures, list) else []:
        if not isinstance(failure, dict) or not failure.get("column"):
            continue
        name = str(failure.get("check") or "")
        raised = failure.get("count") is None and isinstance(failure.get("value"), str)
        if (
            raised
            or name.startswith(("dtype(", "coerce_dtype("))
            or name
            in (
                MISSING_CHECK,
                TWO_CLASSES_CHECK,
                LABEL_TIME_CHECK,
            )
        ):
            found.append(str(failure["column"]))
    return list(dict.fromkeys(found))


def declaration_failure(error: SchemaDeclarationError) -> CheckResult:
    """Return the schema_invalid failure of a schema that is wrong before any data is read."""
    return CheckResult(
        code=CODE,
        stage="schema",
        status="fail",
        summary=f"schema declaration: {error}",
        metrics={"checked": "declaration", "declaration_errors": list(error.problems)},
    )


@task(name="declare-schema", cache_policy=NO_CACHE, persist_result=False)
def declare_schema_task(
    data: DataParams,
    params: SchemaParams,
    columns: list[str],
    duplicates: list[str] | None = None,
) -> tuple[DataParams, DeclaredSchema] | CheckResult:
    """Resolve the schema and its roles, and check the header, before reading any row."""
    try:
        declared = declare_schema(params, data, columns)
        data = apply_roles(data, declared.roles)
    except SchemaDeclarationError as exc:
        return declaration_failure(exc)
    failed = check_header(declared, data, columns, duplicates)
    return failed if failed is not None else (data, declared)


@task(name="validate-schema", cache_policy=NO_CACHE, persist_result=False)
def validate_schema_task(
    frame: pd.DataFrame,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str] | None = None,
) -> tuple[pd.DataFrame | None, CheckResult]:
    """Validate the table against the declared schema, collecting every failure."""
    return validate_frame(frame, declared, data, params, unusable_roles)
