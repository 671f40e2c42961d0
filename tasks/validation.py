"""The schema stage: which schema applies, its header check, and pandera's lazy validation.

`declare_schema` resolves `schema.name` (a registered model, a YAML file, or the baseline),
`check_header` fails on missing, extra or repeated columns before any row is read, and
`validate_schema` validates every row, reading the baseline's label time with tasks/label_time.py,
and returns a typed `SchemaOutcome` (the validated frame, the check, the failures and the
columns they leave unusable). The failures, typed and in words, live in
tasks/schema_failures.py; they become JSON only in the check's metrics.
"""

from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from retrain_guard.schemas import SCHEMAS
from retrain_guard.schemas.date_checks import with_time_zone_checks
from retrain_guard.schemas.declaration import compile_spec, is_yaml_reference, load_spec
from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.schemas.roles import SchemaDeclarationError, SchemaRoles
from retrain_guard.tasks.label_time import ISO_REMEDY, read_label_time
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.schema_failures import (
    EXTRA_CHECK,
    LABEL_TIME_CHECK,
    MISSING_CHECK,
    TWO_CLASSES_CHECK,
    SchemaFailure,
    capped_schema,
    column_failure,
    control_name_failure,
    control_names,
    duplicate_failure,
    exact_counts,
    redact,
    row_names,
    summarise_failures,
    unusable_columns,
)
from retrain_guard.tasks.stored_table import Frame, column_chunks

CODE = "schema_invalid"
BASELINE = "baseline"
EMPTY_CODE = "empty_columns"


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


@dataclass(frozen=True, eq=False)
class SchemaOutcome:
    """The schema stage's result: the validated frame (None when the schema failed), its
    schema_invalid check, and the failures that check reports, typed."""

    frame: Frame | None
    check: CheckResult
    failures: tuple[SchemaFailure, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def in_memory(self) -> pd.DataFrame | None:
        """The validated frame of validate_schema, which validates a frame in memory."""
        if isinstance(self.frame, pd.DataFrame) or self.frame is None:
            return self.frame
        raise TypeError("the validated table is stored on disk, not in memory")

    @property
    def unusable(self) -> list[str]:
        """Return the columns a failed schema leaves unusable as read (see unusable_columns)."""
        return unusable_columns(self.failures)


def baseline_schema(columns: list[str], data: DataParams) -> pa.DataFrameSchema:
    """Return the schema used when none is named.

    The label is present and has at most two classes (one class is the profile stage's
    `single_class_target`); rows without a label are left out by the profile stage, which
    reports them (`unlabelled_rows`). The label time, if given, is a datetime column: it
    is read by tasks/label_time.py before validation (read_label_times), never by pandera's
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
    frame: pd.DataFrame,
    data: DataParams,
    declared: DeclaredSchema,
    max_cases: int,
) -> tuple[pd.DataFrame, SchemaFailure | None]:
    """Read the baseline's label time as dates with tasks/label_time.py; return the failure if not.

    Day/month order is never guessed: an unsettled dd/mm text label time stays text and is
    a failure that says to write ISO 8601. Present values that do not parse are listed by
    row. A user schema declares its own dtypes; its label time is left to it. A partition
    of the Dask engine reads it as the whole column settles (label_time.read_as_whole).
    """
    column = data.label_time
    if declared.lists_columns or not column or column not in frame.columns:
        return frame, None
    values = frame[column]
    read = read_label_time(column, values)
    if read.values is None:
        return frame, SchemaFailure(column, LABEL_TIME_CHECK, message=str(read.problem))
    if read.bad_rows:
        index = frame.index[list(read.bad_rows)]
        rows = row_names(frame, index, column, data.id_column, max_cases)
        shown: list[JsonValue] = list(values.loc[index[:3]].astype(str))
        if declared.redact_values:
            rows = [row.redacted() for row in rows]
            shown = [redact(v) for v in shown]
        return frame, SchemaFailure(
            column,
            LABEL_TIME_CHECK,
            message=f"label time {column!r} read as {read.how}, but {len(read.bad_rows)} "
            f"value(s) do not parse (e.g. {', '.join(map(repr, shown))}); {ISO_REMEDY}",
            count=len(read.bad_rows),
            rows=tuple(rows),
        )
    if read.values is values:  # already datetimes
        return frame, None
    return frame.assign(**{column: read.values}), None


def measure_empty_columns(frame: Frame, columns: list[str]) -> list[str]:
    """Return the columns among `columns` that hold no value in any row (none without rows)."""
    if not len(frame):
        return []  # a table without rows is the label profile's finding, not its columns'
    return [c for c in columns if c in frame.columns and not _any_value(frame, c)]


def _any_value(frame: Frame, column: str) -> bool:
    """Whether the column holds a value; a chunk at a time, up to the first one found."""
    return any(bool(part.notna().any()) for part in column_chunks(frame, column))


def judge_empty_columns(empty: list[str], rows: int) -> CheckResult:
    """Warn about entirely empty feature columns: they are left out of the features."""
    metrics: dict[str, JsonValue] = {"empty_columns": list(empty), "rows": rows}
    if not empty:
        return check(EMPTY_CODE).result(
            "pass", "no feature column is empty in every row", metrics=metrics
        )
    names = ", ".join(repr(c) for c in empty)
    subject = f"column {names} is" if len(empty) == 1 else f"columns {names} are"
    return check(EMPTY_CODE).result(
        "warn",
        f"{subject} empty in all {rows:,} rows; left out of the features",
        columns=empty,
        metrics=metrics,
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
    unnamed = [c for c in control_names(columns) if c not in data.drop]
    if not missing and not failing_extra and not repeated and not unnamed:
        return None
    failures = [duplicate_failure(c, data.source) for c in repeated]
    failures += [control_name_failure(c) for c in unnamed]
    failures += [column_failure(c, MISSING_CHECK) for c in missing]
    failures += [column_failure(c, EXTRA_CHECK) for c in failing_extra]
    return _failed(declared, failures, extra, read="header")


def extra_columns(declared: DeclaredSchema, columns: list[str]) -> list[str]:
    """Return the table's columns the schema does not list (none for the baseline)."""
    if not declared.lists_columns:
        return []
    return [c for c in columns if c not in declared.schema.columns]


def _failed(
    declared: DeclaredSchema,
    failures: list[SchemaFailure],
    extra: list[str],
    read: Literal["header", "rows"],
) -> CheckResult:
    columns = sorted({f.column for f in failures if f.column})
    total = sum(1 if f.count is None else f.count for f in failures)
    first = failures[0].message if failures else "schema validation failed"
    more = f" (and {len(failures) - 1} more failing checks)" if len(failures) > 1 else ""
    return check(CODE).result(
        "fail",
        f"{first}{more}",
        columns=columns,
        metrics={
            "schema": declared.schema.name,
            "source": declared.source,
            "checked": read,
            "failing_checks": len(failures),
            "failing_cases": total,
            "extra_columns": list(extra),
            "redacted": declared.redact_values,
            "failures": [f.as_json() for f in failures],
        },
    )


def validate_schema(
    frame: pd.DataFrame,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str] | None = None,
) -> SchemaOutcome:
    """Validate lazily: the (coerced) frame and a pass check, or no frame, a fail check and
    the failures.

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
        return failed_rows(declared, failures, extra)
    if label_time_failure is not None:
        return failed_rows(declared, [label_time_failure], extra)
    return SchemaOutcome(
        validated, passed_check(declared, len(validated), extra), extra=tuple(extra)
    )


def passed_check(declared: DeclaredSchema, rows: int, extra: list[str]) -> CheckResult:
    """Return the schema_invalid pass of `rows` rows, naming the extra columns ignored."""
    ignored = f"; extra columns ignored: {', '.join(extra)}" if extra else ""
    return check(CODE).result(
        "pass",
        f"{rows} rows match schema {declared.schema.name!r}{ignored}",
        metrics={
            "schema": declared.schema.name,
            "source": declared.source,
            "failing_checks": 0,
            "failing_cases": 0,
            "extra_columns": list(extra),
            # What the schema declares for later stages (known_at feeds the leakage checks).
            "roles": declared.roles.to_mapping(),
        },
    )


def failed_rows(
    declared: DeclaredSchema, failures: list[SchemaFailure], extra: list[str]
) -> SchemaOutcome:
    """Return the outcome of a schema that failed on the rows: no frame, the failures."""
    return SchemaOutcome(
        None, _failed(declared, failures, extra, read="rows"), tuple(failures), tuple(extra)
    )


def validate_frame(
    frame: pd.DataFrame,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str] | None = None,
) -> tuple[pd.DataFrame | None, CheckResult]:
    """Return validate_schema's frame and check, for callers that need only those two."""
    outcome = validate_schema(frame, declared, data, params, unusable_roles)
    return outcome.in_memory, outcome.check


def declaration_failure(error: SchemaDeclarationError) -> CheckResult:
    """Return the schema_invalid failure of a schema that is wrong before any data is read."""
    return check(CODE).result(
        "fail",
        f"schema declaration: {error}",
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


validate_schema_task = task(name="validate-schema", cache_policy=NO_CACHE, persist_result=False)(
    validate_schema
)
