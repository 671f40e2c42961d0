"""Schema validation with pandera: every failure collected, each with its rows."""

from typing import Any

import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas import SCHEMAS
from schemas.params import DataParams, SchemaParams
from schemas.report import CheckResult

CODE = "schema_invalid"


def baseline_schema(columns: list[str], data: DataParams) -> pa.DataFrameSchema:
    """Return the schema used when none is named.

    The label is present, has no missing values and at most two classes (one class is
    the profile stage's `single_class_target`); the label time, if given, parses as a
    datetime; no column is entirely null.
    """
    not_empty = pa.Check(lambda s: bool(s.notna().any()), name="not_entirely_null")
    spec: dict[str, pa.Column] = {
        column: pa.Column(nullable=True, checks=[not_empty], required=True) for column in columns
    }
    spec[data.label] = pa.Column(
        nullable=False,
        checks=[pa.Check(lambda s: s.nunique() <= 2, name="at_most_two_classes")],
    )
    if data.label_time:
        spec[data.label_time] = pa.Column(pa.DateTime, coerce=True, nullable=False)
    return pa.DataFrameSchema(spec, name="baseline", strict=False)


def resolve_schema(
    params: SchemaParams, data: DataParams, columns: list[str]
) -> pa.DataFrameSchema:
    """Return the named schema, or the baseline schema when none is named.

    Raises:
        ValueError: no schema has that name.
    """
    if params.name is None:
        return baseline_schema(columns, data)
    model = SCHEMAS.get(params.name)
    if model is None:
        known = ", ".join(sorted(SCHEMAS)) or "(none)"
        raise ValueError(f"schema.name {params.name!r} is not a known schema; known: {known}")
    schema: pa.DataFrameSchema = model.to_schema()
    if data.label_time and data.label_time in schema.columns:
        # Date strings from CSV are parsed before validation whatever the schema says.
        column = schema.columns[data.label_time]
        schema = schema.update_column(data.label_time, dtype=column.dtype, coerce=True)
    return schema


def summarise_failures(
    failure_cases: pd.DataFrame,
    frame: pd.DataFrame,
    id_column: str | None,
    max_cases: int,
) -> list[dict[str, JsonValue]]:
    """Group pandera's failure cases per (column, check) with exact counts and capped rows."""
    cases = failure_cases.copy()
    cases["column"] = cases["column"].where(cases["column"].notna(), None)
    # pandera reports a failed coercion twice (coerce_dtype and dtype): keep one.
    cases["check"] = cases["check"].astype(str)
    is_dtype_echo = cases["check"].str.startswith("dtype(") & cases.duplicated(
        subset=["column", "index"], keep=False
    )
    cases = cases[~is_dtype_echo]
    summary: list[dict[str, JsonValue]] = []
    grouped = cases.groupby(["schema_context", "column", "check"], dropna=False, sort=False)
    for (context, column, check), group in grouped:
        if context == "DataFrameSchema" and check == "column_in_dataframe":
            for missing in group["failure_case"].astype(str):
                summary.append(
                    {
                        "column": missing,
                        "check": "column_in_dataframe",
                        "count": None,
                        "rows": [],
                        "message": f"column {missing!r} is missing",
                    }
                )
            continue
        rows: list[JsonValue] = []
        with_index = group[group["index"].notna()]
        for _, case in with_index.head(max_cases).iterrows():
            row: dict[str, JsonValue] = {"index": _jsonable(case["index"])}
            row["value"] = _jsonable(case["failure_case"])
            if id_column and id_column in frame.columns and case["index"] in frame.index:
                row["id"] = _jsonable(frame.at[case["index"], id_column])
            rows.append(row)
        label = None if column is None or column != column else str(column)
        count = len(with_index) if len(with_index) else None
        entry: dict[str, JsonValue] = {
            "column": label,
            "check": str(check),
            "count": count,
            "rows": rows,
        }
        if not len(with_index):
            entry["value"] = _jsonable(group["failure_case"].iloc[0])
        entry["message"] = _describe(label, str(check), count)
        summary.append(entry)
    return summary


def _describe(column: str | None, check: str, count: int | None) -> str:
    where = f"column {column!r}" if column else "the table"
    if count is None:
        return f"{where} fails {check}"
    return f"{where} fails {check} on {count} row(s)"


def _jsonable(value: Any) -> JsonValue:
    if value is None:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):
        item = value.item()
        if isinstance(item, bool | int | float | str):
            return item
    return str(value)


def validate_frame(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, data: DataParams, params: SchemaParams
) -> tuple[pd.DataFrame | None, CheckResult]:
    """Validate lazily; return the (coerced) frame and a pass check, or None and a fail check."""
    try:
        validated = schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        failures = summarise_failures(
            err.failure_cases, frame, data.id_column, params.max_failure_cases
        )
        columns = sorted({str(f["column"]) for f in failures if f.get("column")})
        total = sum(int(f["count"]) if isinstance(f["count"], int) else 1 for f in failures)
        first = failures[0]["message"] if failures else "schema validation failed"
        more = f" (and {len(failures) - 1} more failing checks)" if len(failures) > 1 else ""
        return None, CheckResult(
            code=CODE,
            stage="schema",
            status="fail",
            columns=columns,
            summary=f"{first}{more}",
            metrics={
                "schema": schema.name,
                "failing_checks": len(failures),
                "failing_cases": total,
                "failures": list(failures),
            },
        )
    return validated, CheckResult(
        code=CODE,
        stage="schema",
        status="pass",
        columns=[],
        summary=f"{len(validated)} rows match schema {schema.name!r}",
        metrics={"schema": schema.name, "failing_checks": 0, "failing_cases": 0},
    )


@task(name="validate-schema", cache_policy=NO_CACHE, persist_result=False)
def validate_schema_task(
    frame: pd.DataFrame, data: DataParams, params: SchemaParams
) -> tuple[pd.DataFrame | None, CheckResult]:
    """Validate the table against the named or baseline schema, collecting every failure."""
    schema = resolve_schema(params, data, [str(c) for c in frame.columns])
    return validate_frame(frame, schema, data, params)
