"""Value quirks of the table as read: non-finite or overflowing numbers, unusable columns.

Right after the schema stage (so a user schema still sees the values as read and can forbid
them), this step measures two quirks and hands later stages a cleaned frame:
- non_finite_values: +-inf and numbers too large for float64 arithmetic, per column, with
  example rows. They become missing values: every later measure and the model treat them
  as missing (the model's own preprocessing does the same for new rows).
- unusable_columns: columns whose values no check can use (lists, structs, maps, bytes,
  mixed Python objects). They are left out of the frame, so no feature, measure or split
  hash sees them. The label, the label time or the id being such a column fails.
"""

import datetime as dt
import decimal
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import (
    infer_dtype,
    is_complex_dtype,
    is_float_dtype,
    is_object_dtype,
)
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas.params import DataParams
from schemas.report import CheckResult

NON_FINITE = "non_finite_values"
UNUSABLE = "unusable_columns"
# Magnitude above which a number is treated as missing. Squares of smaller numbers stay
# below 1e200, so sums of squares (variances, scaling, distances between rows) over up to
# 1e108 table cells cannot overflow float64 (max 1.8e308); a fixed bound, unlike one that
# shrinks with the row count, means the same value on every table. No measured quantity
# comes near it (the observable universe holds about 1e80 atoms): such values are
# sentinels or corruption. ±1e308 itself overflows as soon as two are added or one is
# squared, which is how it broke the scaler.
HUGE = 1e100
# Example rows listed per column in the report.
MAX_EXAMPLES = 5
# infer_dtype answers for object columns whose values the checks can use as they are.
_USABLE_INFERRED = frozenset(
    {
        "empty",
        "string",
        "integer",
        "floating",
        "mixed-integer-float",
        "decimal",
        "boolean",
        "date",
        "datetime",
        "datetime64",
        "time",
        "timedelta",
        "timedelta64",
        "period",
        "interval",
        "categorical",
    }
)


def is_overflowing(values: np.ndarray) -> np.ndarray:
    """Return where float values are +-inf or beyond +-HUGE (NaN is not)."""
    with np.errstate(invalid="ignore"):
        return np.abs(values) > HUGE


def as_finite(values: np.ndarray) -> np.ndarray:
    """Return float values with +-inf and overflowing magnitudes as NaN (a copy if any)."""
    if not values.size:
        return values
    # Two reductions without temporaries settle the usual case (nothing to clean) at a
    # fraction of the cost of a mask; fmax/fmin skip NaN (all NaN gives NaN: clean).
    high, low = np.fmax.reduce(values, axis=None), np.fmin.reduce(values, axis=None)
    if not (high > HUGE or low < -HUGE):
        return values
    return np.where(is_overflowing(values), np.nan, values)


# --- Non-finite and overflowing numbers ----------------------------------------------------


@dataclass(frozen=True)
class NonFinite:
    """Values of one numeric column that float64 arithmetic cannot use."""

    column: str
    rows: int
    positive_infinity: int
    negative_infinity: int
    huge: int
    examples: list[dict[str, JsonValue]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return self.positive_infinity + self.negative_infinity + self.huge

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "count": self.count,
            "share": round(self.count / self.rows, 6) if self.rows else 0.0,
            "positive_infinity": self.positive_infinity,
            "negative_infinity": self.negative_infinity,
            "beyond_bound": self.huge,
            "examples": list(self.examples),
        }

    def describe(self) -> str:
        kinds = [
            f"{n} {what}"
            for n, what in (
                (self.positive_infinity, "+inf"),
                (self.negative_infinity, "-inf"),
                (self.huge, f"beyond ±{HUGE:.0e}"),
            )
            if n
        ]
        rows = ", ".join(_row_name(e) for e in self.examples)
        more = ", ..." if self.count > len(self.examples) else ""
        return f"{self.column}: {self.count} value(s) ({', '.join(kinds)}; rows {rows}{more})"


def _row_name(example: dict[str, JsonValue]) -> str:
    name = f"{example['position']}"
    if "id" in example:
        name += f" (id {example['id']})"
    return name


def _plain(value: object) -> JsonValue:
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def measure_non_finite(
    frame: pd.DataFrame, columns: Iterable[str], id_column: str | None = None
) -> list[NonFinite]:
    """Count +-inf and values beyond +-HUGE per float column; list the first rows of each.

    Rows are named by position in the frame (0-based) and, with an id column, by id.
    """
    has_id = id_column is not None and id_column in frame.columns
    measured = []
    for column in columns:
        values = frame[column]
        if not is_float_dtype(values.dtype):
            continue
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        if as_finite(numbers) is numbers:
            continue
        bad = is_overflowing(numbers)
        positions = np.flatnonzero(bad)
        flagged = numbers[positions]
        examples: list[dict[str, JsonValue]] = []
        for position in positions[:MAX_EXAMPLES]:
            example: dict[str, JsonValue] = {
                "position": int(position),
                "value": _plain(numbers[position]) if np.isfinite(numbers[position]) else None,
            }
            if np.isinf(numbers[position]):
                example["value"] = "+inf" if numbers[position] > 0 else "-inf"
            if has_id:
                example["id"] = _plain(frame[id_column].iloc[position])
            examples.append(example)
        measured.append(
            NonFinite(
                column=str(column),
                rows=len(frame),
                positive_infinity=int(np.count_nonzero(flagged == np.inf)),
                negative_infinity=int(np.count_nonzero(flagged == -np.inf)),
                huge=int(np.count_nonzero(np.isfinite(flagged))),
                examples=examples,
            )
        )
    return measured


def judge_non_finite(measured: list[NonFinite]) -> CheckResult:
    """Warn when some numeric column holds values that are treated as missing."""
    metrics: dict[str, JsonValue] = {
        "bound": HUGE,
        "columns": [m.as_json() for m in measured],
    }
    if not measured:
        return CheckResult(
            code=NON_FINITE,
            stage="load",
            status="pass",
            summary=f"every numeric value is finite and within ±{HUGE:.0e}",
            metrics=metrics,
        )
    return CheckResult(
        code=NON_FINITE,
        stage="load",
        status="warn",
        columns=[m.column for m in measured],
        summary="; ".join(m.describe() for m in measured)
        + ": treated as missing by the checks and the model",
        metrics=metrics,
    )


def clean_non_finite(frame: pd.DataFrame, measured: list[NonFinite]) -> pd.DataFrame:
    """Return the frame with the measured columns' non-finite values set missing."""
    if not measured:
        return frame
    cleaned = {
        m.column: pd.Series(
            as_finite(frame[m.column].to_numpy(dtype="float64", na_value=np.nan)),
            index=frame.index,
            name=m.column,
        )
        for m in measured
    }
    return frame.assign(**cleaned)


# --- Columns no check can use --------------------------------------------------------------


def _value_kind(value: object) -> str:
    """Return the kind of one present value: a usable scalar group or an unusable kind."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | float | decimal.Decimal | np.number):
        return "number"
    if isinstance(value, dt.date | dt.time | dt.timedelta | np.datetime64 | np.timedelta64):
        return "time"
    if isinstance(value, bytes | bytearray | memoryview):
        return "binary"
    if isinstance(value, dict):
        return "struct"
    if isinstance(value, list | tuple | np.ndarray | set | frozenset):
        items = list(value)
        if items and all(isinstance(i, tuple) and len(i) == 2 for i in items):
            return "map"
        return "list"
    return f"object ({type(value).__name__})"


_SCALAR_KINDS = frozenset({"text", "boolean", "number", "time"})


def column_kind(values: pd.Series) -> str | None:
    """Return why a column is unusable ('list', 'struct', 'map', 'binary', 'mixed (...)',
    'complex', 'object (...)'), or None when the checks can use it."""
    dtype = values.dtype
    if is_complex_dtype(dtype):
        return "complex"
    if not is_object_dtype(dtype):
        return None
    inferred = infer_dtype(values, skipna=True)
    if inferred in _USABLE_INFERRED:
        return None
    if inferred == "bytes":
        return "binary"
    present = values[values.map(_is_present)]
    kinds = sorted({_value_kind(v) for v in present})
    unusable = [k for k in kinds if k not in _SCALAR_KINDS]
    if len(unusable) == 1 and len(kinds) == 1:
        return unusable[0]
    if len(kinds) > 1:
        return "mixed (" + ", ".join(kinds) + ")"
    return None


def _is_present(value: object) -> bool:
    """Whether a cell holds a value (lists and dicts always do; None, NaN and NaT do not)."""
    if value is None:
        return False
    if isinstance(value, float | np.floating):
        return not np.isnan(value)
    return value is not pd.NaT and value is not pd.NA


@dataclass(frozen=True)
class Unusable:
    """A column whose values no check can use, and the role it plays in the run."""

    column: str
    kind: str
    role: str  # "feature", "label", "label_time" or "id"

    def as_json(self) -> dict[str, JsonValue]:
        return {"column": self.column, "kind": self.kind, "role": self.role}


def _single_columns(frame: pd.DataFrame) -> list[object]:
    """Return the column names that occur once; a repeated name is the schema's to report."""
    return list(frame.columns[~frame.columns.duplicated(keep=False)])


def measure_unusable(frame: pd.DataFrame, data: DataParams) -> list[Unusable]:
    """Return the columns the checks cannot use, each with its kind and its role."""
    roles = {data.label: "label", data.id_column: "id"}
    if data.label_time:
        roles[data.label_time] = "label_time"
    dropped = set(data.drop)
    found = []
    for column in _single_columns(frame):
        name = str(column)
        if name in dropped:
            continue
        kind = column_kind(frame[column])
        if kind is not None:
            found.append(Unusable(name, kind, roles.get(name, "feature")))
    return found


def judge_unusable(measured: list[Unusable], features_left: int) -> CheckResult:
    """Warn on unusable feature columns (left out); fail when a role column is one, or
    when no usable feature is left."""
    metrics: dict[str, JsonValue] = {
        "columns": [m.as_json() for m in measured],
        "usable_features": features_left,
    }
    if not measured:
        return CheckResult(
            code=UNUSABLE,
            stage="load",
            status="pass",
            summary="every column holds values the checks can use",
            metrics=metrics,
        )
    named = "; ".join(f"{m.column} ({m.kind})" for m in measured)
    roles = [m for m in measured if m.role != "feature"]
    if roles:
        role = roles[0]
        flag = {"label": "--label", "label_time": "--label-time", "id": "--id"}[role.role]
        return CheckResult(
            code=UNUSABLE,
            stage="load",
            status="fail",
            columns=[m.column for m in roles],
            summary=f"the {role.role.replace('_', ' ')} column {role.column!r} ({flag}) holds "
            f"{role.kind} values, which cannot be compared or counted; choose another column",
            metrics=metrics,
        )
    if not features_left:
        return CheckResult(
            code=UNUSABLE,
            stage="load",
            status="fail",
            columns=[m.column for m in measured],
            summary=f"no usable feature is left: every feature column holds values the "
            f"checks and the model cannot use: {named}",
            metrics=metrics,
        )
    return CheckResult(
        code=UNUSABLE,
        stage="load",
        status="warn",
        columns=[m.column for m in measured],
        summary=f"left out of the features and every check (values no check can use): {named}",
        metrics=metrics,
    )


def usable_columns(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Return the given columns whose values the checks can use, in order."""
    return [c for c in columns if column_kind(frame[c]) is None]


# --- The step ------------------------------------------------------------------------------


def check_quirks(frame: pd.DataFrame, data: DataParams) -> tuple[pd.DataFrame, list[CheckResult]]:
    """Measure and judge the value quirks; return the cleaned frame and the two checks.

    The cleaned frame lacks the unusable columns and holds NaN where a number was
    non-finite or overflowing. A failing check leaves the frame as it came.
    """
    unusable = measure_unusable(frame, data)
    left_out = [m.column for m in unusable if m.role == "feature"]
    features = [c for c in data.feature_columns(frame.columns) if c not in set(left_out)]
    unusable_check = judge_unusable(unusable, len(features))
    if unusable_check.status == "fail":
        not_run = CheckResult(
            code=NON_FINITE,
            stage="load",
            status="not_run",
            summary="not run: unusable columns halted the run first",
        )
        return frame, [not_run, unusable_check]
    kept = frame.drop(columns=left_out) if left_out else frame
    numeric = [str(c) for c in _single_columns(kept) if str(c) not in set(data.drop)]
    non_finite = measure_non_finite(kept, numeric, data.id_column)
    return clean_non_finite(kept, non_finite), [judge_non_finite(non_finite), unusable_check]


@task(name="check-value-quirks", cache_policy=NO_CACHE, persist_result=False)
def check_quirks_task(
    frame: pd.DataFrame, data: DataParams
) -> tuple[pd.DataFrame, list[CheckResult]]:
    """Report non-finite numbers and unusable columns; hand on the cleaned frame."""
    return check_quirks(frame, data)
