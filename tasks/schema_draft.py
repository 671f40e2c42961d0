"""Drafting a YAML schema from a reference extract, with what a person must review marked."""

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_numeric_dtype,
    is_object_dtype,
    is_string_dtype,
)

from retrain_guard.schemas.declaration import ColumnSpec, CompareSpec, SchemaSpec, spec_to_mapping
from retrain_guard.schemas.roles import SchemaRoles
from retrain_guard.tasks.dates import (
    as_naive_utc,
    day_month_order,
    looks_like_day_month,
    sample_present,
)

Path_ = tuple[str, ...]
_TIME_NAME = re.compile(r"(event|label|prediction|score).*(time|date|at)$|^(timestamp|time|date)$")
_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|key$)")


@dataclass(frozen=True)
class Draft:
    """A drafted schema and the review notes keyed by their place in the YAML."""

    spec: SchemaSpec
    review: dict[Path_, str] = field(default_factory=dict)
    notes: dict[Path_, str] = field(default_factory=dict)
    source: str = ""
    rows: int = 0


def _dtype_name(values: pd.Series) -> tuple[str, str | None]:
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime", str(dtype.tz)
    if is_datetime64_any_dtype(dtype):
        return "datetime", None
    if isinstance(dtype, pd.CategoricalDtype):
        return "category", None
    if is_string_dtype(dtype) or is_object_dtype(dtype):
        return "str", None
    return str(dtype), None


def _round_out(low: float, high: float, integer: bool) -> tuple[float | int, float | int]:
    if integer:
        return math.floor(low), math.ceil(high)
    # Two significant decimals past the span's magnitude keep the YAML readable.
    span = high - low
    digits = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 2
    scale = 10.0**digits
    return math.floor(low * scale) / scale, math.ceil(high * scale) / scale


def _range(values: pd.Series, margin: float) -> tuple[float | int, float | int] | None:
    present = values.dropna()
    if present.empty or is_bool_dtype(values.dtype):
        return None
    low, high = float(present.min()), float(present.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    pad = (high - low) * margin if high > low else abs(high) * margin
    lower, upper = low - pad, high + pad
    # A quantity never negative in the reference is taken to be non-negative by nature.
    if low >= 0 > lower:
        lower = 0.0
    return _round_out(lower, upper, is_integer_dtype(values.dtype))


def _guess_label_time(frame: pd.DataFrame, label: str) -> str | None:
    dated = [str(c) for c in frame.columns if is_datetime64_any_dtype(frame[c].dtype)]
    named = [c for c in dated if _TIME_NAME.search(c.lower())]
    return named[0] if len(named) == 1 else None


def _guess_id(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    for column in frame.columns:
        name = str(column)
        values = frame[column]
        if name in exclude or is_float_dtype(values.dtype) or is_datetime64_any_dtype(values.dtype):
            continue
        if _ID_NAME.search(name.lower()) and values.notna().all() and values.is_unique:
            return name
    return None


def draft_schema(
    frame: pd.DataFrame,
    label: str,
    label_time: str | None = None,
    id_column: str | None = None,
    name: str = "draft",
    margin: float = 0.1,
    max_categories: int = 20,
    source: str = "",
) -> Draft:
    """Draft a schema from a reference table: dtypes, nulls, ranges, categories, roles.

    Args:
        frame: the reference extract (as read by tasks.load.read_table).
        label: the label column.
        label_time: the label-time column; guessed from datetime column names when None.
        id_column: the id column; guessed (unique, id-like name) when None.
        name: the schema's name.
        margin: numeric ranges are widened by this share of the observed span.
        max_categories: text columns with at most this many values get an isin list.
        source: where the reference came from, for the header comment.

    Raises:
        ValueError: a named column is absent, or the margin/limits are out of range.
    """
    for role, column in (("label", label), ("label_time", label_time), ("id", id_column)):
        if column is not None and column not in frame.columns:
            raise ValueError(f"{role} column {column!r} is not in the table")
    if not 0 <= margin <= 10:
        raise ValueError("margin must be between 0 and 10")
    if max_categories < 1:
        raise ValueError("max_categories must be at least 1")
    review: dict[Path_, str] = {}
    notes: dict[Path_, str] = {}
    rows = len(frame)
    if label_time is None:
        label_time = _guess_label_time(frame, label)
        if label_time:
            review[("roles", "label_time")] = (
                "guessed from the column name; confirm it is the moment a prediction is made"
            )
    if id_column is None:
        id_column = _guess_id(frame, {label, label_time or ""})
        if id_column:
            review[("roles", "id")] = "guessed: unique in the reference and named like an id"

    columns: dict[str, ColumnSpec] = {}
    for column in frame.columns:
        key = str(column)
        values = frame[column]
        dtype, zone = _dtype_name(values)
        fields: dict[str, Any] = {"dtype": dtype, "nullable": bool(values.isna().any())}
        if zone:
            fields["time_zone"] = zone
        if key == id_column:
            fields["unique"] = True
        if fields["nullable"]:
            share = float(values.isna().mean())
            notes[("columns", key)] = f"{share:.1%} missing in the reference"
        if key == label:
            fields["isin"] = sorted(values.dropna().unique().tolist())
        elif dtype == "str" and key != id_column:
            distinct = values.dropna().unique()
            if 0 < len(distinct) <= max_categories and len(distinct) <= max(1, rows // 2):
                fields["isin"] = sorted(str(v) for v in distinct)
                review[("columns", key)] = (
                    f"the {len(distinct)} categories seen in {rows} rows; add valid ones not seen"
                )
            dated = looks_like_day_month(sample_present(values))
            order = day_month_order(values) if dated else None
            if order is not None:
                review[("columns", key)] = (
                    f"day-month-year text ({order.reason()}); written as ISO 8601 (YYYY-MM-DD) "
                    "it would be read as datetimes"
                )
        elif is_numeric_dtype(values.dtype) and key != id_column:
            bounds = _range(values, margin)
            if bounds is not None:
                fields["ge"], fields["le"] = bounds
                review[("columns", key)] = (
                    f"range seen [{_short(values.min())}, {_short(values.max())}] widened by "
                    f"{margin:.0%}; set the real bounds"
                )
        columns[key] = ColumnSpec.model_validate(fields)

    checks: list[CompareSpec] = []
    known_at: dict[str, str] = {}
    if label_time:
        reference = as_naive_utc(frame[label_time])
        for column in frame.columns:
            key = str(column)
            if key in (label, label_time, id_column):
                continue
            values = frame[column]
            if is_datetime64_any_dtype(values.dtype):
                lead = as_naive_utc(values) > reference
                after = int(lead.sum())
                if after == 0:
                    known_at[key] = key
                    checks.append(CompareSpec(left=key, op="<=", right=label_time))
                else:
                    review[("roles", "known_at")] = (
                        f"{key!r} is after {label_time!r} in {after} rows: it may be known only "
                        "after the prediction (date leakage); declare its known-at time or drop it"
                    )
            else:
                known_at[key] = "0d"
        if known_at and ("roles", "known_at") not in review:
            review[("roles", "known_at")] = (
                "every non-date feature is assumed known at the label time (0d); give a "
                "negative offset such as -1d for features computed from older data"
            )
        if checks:
            review[("checks",)] = "date columns never after the label time in the reference"
    roles = SchemaRoles(label=label, label_time=label_time, id=id_column)
    raw_roles = roles.to_mapping()
    if known_at:
        raw_roles["known_at"] = known_at
    spec = SchemaSpec(
        name=name,
        description=f"Drafted from {source or 'a reference table'} ({rows} rows); reviewed: no",
        extra_columns="fail",
        roles=raw_roles,
        columns=columns,
        checks=checks,
    )
    return Draft(spec=spec, review=review, notes=notes, source=source, rows=rows)


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float | np.floating) else str(value)


_KEY_LINE = re.compile(r"^(\s*)(['\"]?)([^'\"#:\n]+)\2:(\s|$)")


def render_draft(draft: Draft) -> str:
    """Return the draft as YAML, with REVIEW comments where a person must decide."""
    text = yaml.safe_dump(spec_to_mapping(draft.spec), sort_keys=False, allow_unicode=True)
    lines = [
        "# Draft schema written by `retrain-guard infer-schema`"
        + (f" from {draft.source}" if draft.source else "")
        + f" ({draft.rows} rows).",
        "# Lines marked REVIEW are guesses from one extract: confirm or correct each one,",
        "# then set 'reviewed: yes' in the description. Format: schemas/declaration.py.",
    ]
    stack: list[str] = []
    for line in text.splitlines():
        match = _KEY_LINE.match(line)
        if match and not line.lstrip().startswith("- "):
            depth = len(match.group(1)) // 2
            stack = [*stack[:depth], match.group(3)]
            path = tuple(stack)
            if path in draft.review:
                line += f"  # REVIEW: {draft.review[path]}"
            elif path in draft.notes:
                line += f"  # {draft.notes[path]}"
            elif path == ("extra_columns",):
                line += "  # columns not listed fail the run; 'ignore' only reports them"
        lines.append(line)
    return "\n".join(lines) + "\n"
