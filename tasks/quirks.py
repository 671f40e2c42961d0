"""Value quirks of the table as read: non-finite or overflowing numbers, unusable columns,
stray text in numeric columns.

Right after the schema stage (so a user schema still sees the values as read and can forbid
them), this step measures three quirks and hands later stages a cleaned frame:
- non_finite_values: +-inf and numbers too large for float64 arithmetic, per column, with
  example rows. They become missing values: every later measure and the model treat them
  as missing (the model's own preprocessing does the same for new rows).
- unusable_columns: columns whose values no check can use (lists, structs, maps, bytes,
  mixed Python objects). They are left out of the frame, so no feature, measure or split
  hash sees them. The label, the label time or the id being such a column fails.
- non_numeric_values: a text feature that is numbers but for a few stray entries is read as
  numbers (measured in tasks/stray_text.py); decimals become float64 and durations days.

This module holds the non-finite measure, the unusable-column kinds and the step that runs
the three checks (`check_quirks`); `as_finite` and `usable_columns` serve later stages too.
"""

import datetime as dt
import decimal
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_complex_dtype, is_float_dtype, is_object_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from retrain_guard.schemas.params import DataParams
from retrain_guard.schemas.report import CheckResult, Status
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.stored_table import Frame, SameFrame, column_chunks, dtype_of
from retrain_guard.tasks.stray_text import (
    NON_NUMERIC,
    RowExample,
    is_present,
    judge_non_numeric,
    measure_non_numeric,
    numbers_of_other_kinds,
    plain,
    row_examples,
)

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
    examples: list[RowExample] = field(default_factory=list)

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
            "examples": [e.as_json() for e in self.examples],
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
        rows = ", ".join(e.name() for e in self.examples)
        more = ", ..." if self.count > len(self.examples) else ""
        return f"{self.column}: {self.count} value(s) ({', '.join(kinds)}; rows {rows}{more})"


def _number_text(numbers: np.ndarray, position: int) -> JsonValue:
    """A non-finite value as the report shows it: '+inf', '-inf' or the huge number."""
    number = numbers[position]
    if np.isinf(number):
        return "+inf" if number > 0 else "-inf"
    return plain(number)


def _all_finite(frame: Frame, column: str) -> bool:
    """Whether a float column holds no +-inf or huge value; a chunk at a time (only a
    column that does is read whole, for its rows)."""
    for part in column_chunks(frame, column):
        numbers = part.to_numpy(dtype="float64", na_value=np.nan)
        if as_finite(numbers) is not numbers:
            return False
    return True


def measure_non_finite(
    frame: Frame, columns: Iterable[str], id_column: str | None = None
) -> list[NonFinite]:
    """Count +-inf and values beyond +-HUGE per float column; list the first rows of each.

    Rows are named by position in the frame (0-based) and, with an id column, by id.
    """
    measured = []
    for column in columns:
        if not is_float_dtype(dtype_of(frame, column)) or _all_finite(frame, column):
            continue
        values = frame[column]
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        bad = is_overflowing(numbers)
        positions = np.flatnonzero(bad)
        flagged = numbers[positions]
        examples = row_examples(frame, positions, id_column, partial(_number_text, numbers))
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
        return check(NON_FINITE).result(
            "pass",
            f"every numeric value is finite and within ±{HUGE:.0e}",
            metrics=metrics,
        )
    return check(NON_FINITE).result(
        "warn",
        "; ".join(m.describe() for m in measured)
        + ": treated as missing by the checks and the model",
        columns=[m.column for m in measured],
        metrics=metrics,
    )


def clean_non_finite(frame: SameFrame, measured: list[NonFinite]) -> SameFrame:
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
    return _kinds_verdict(_present_kinds(values))


def kind_of(frame: Frame, column: str) -> str | None:
    """column_kind of a frame's column; a stored table's values are read only when the
    column's dtype cannot say (object), not for a number or a date."""
    dtype = dtype_of(frame, column)
    if not (is_complex_dtype(dtype) or is_object_dtype(dtype)):
        return None
    return column_kind(frame[column])


def _present_kinds(values: pd.Series) -> frozenset[str]:
    return frozenset(_value_kind(v) for v in values[values.map(is_present)])


def _kinds_verdict(found: frozenset[str]) -> str | None:
    """Return why values of these kinds cannot be used together, or None when they can."""
    kinds = sorted(found)
    unusable = [k for k in kinds if k not in _SCALAR_KINDS]
    if len(unusable) == 1 and len(kinds) == 1:
        return unusable[0]
    if len(kinds) > 1:
        return "mixed (" + ", ".join(kinds) + ")"
    return None


# The kinds of the values of a part whose inferred type says them without a look at each.
_KINDS_OF_INFERRED = {
    "empty": frozenset(),
    "string": frozenset({"text"}),
    "integer": frozenset({"number"}),
    "floating": frozenset({"number"}),
    "mixed-integer-float": frozenset({"number"}),
    "decimal": frozenset({"number"}),
    "boolean": frozenset({"boolean"}),
}


@dataclass(frozen=True)
class PartKinds:
    """One part of an object column (a partition): its inferred type and its values' kinds."""

    inferred: str
    kinds: frozenset[str]


def part_kinds(values: pd.Series) -> PartKinds:
    """Return what one part of an object column holds, for combined_kind."""
    inferred = infer_dtype(values, skipna=True)
    kinds = _KINDS_OF_INFERRED.get(inferred)
    return PartKinds(inferred, _present_kinds(values) if kinds is None else kinds)


def combined_kind(parts: list[PartKinds]) -> str | None:
    """Return column_kind of the object column these parts make up, from the parts alone."""
    held = [p for p in parts if p.inferred != "empty"]
    inferred = {p.inferred for p in held}
    kinds = frozenset().union(*(p.kinds for p in held))
    if inferred <= _USABLE_INFERRED and (len(inferred) <= 1 or len(kinds) <= 1):
        return None  # one usable type throughout, or usable types of one kind (int, float)
    return _kinds_verdict(kinds)


@dataclass(frozen=True)
class Unusable:
    """A column whose values no check can use, and the role it plays in the run."""

    column: str
    kind: str
    role: str  # "feature", "label", "label_time" or "id"

    def as_json(self) -> dict[str, JsonValue]:
        return {"column": self.column, "kind": self.kind, "role": self.role}


def _single_columns(frame: Frame) -> list[object]:
    """Return the column names that occur once; a repeated name is the schema's to report."""
    return list(frame.columns[~frame.columns.duplicated(keep=False)])


def measure_unusable(frame: Frame, data: DataParams) -> list[Unusable]:
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
        kind = kind_of(frame, name)
        if kind is not None:
            found.append(Unusable(name, kind, roles.get(name, "feature")))
    return found


def unusable_roles(frame: Frame, data: DataParams) -> list[str]:
    """Return the role columns (label, label time, id) whose values no check can use.

    Measured before the schema, so that unusable_columns, not a schema message about the
    same column, is the run's failure.
    """
    return [c for c in role_columns(frame, data) if kind_of(frame, c) is not None]


def role_columns(frame: Frame, data: DataParams) -> list[str]:
    """Return the role columns (label, label time, id) kept and named once in the frame."""
    roles = [c for c in (data.label, data.label_time, data.id_column) if c and c not in data.drop]
    single = {str(c) for c in _single_columns(frame)}
    return [c for c in dict.fromkeys(roles) if c in single]


def judge_unusable(measured: list[Unusable], features_left: int) -> CheckResult:
    """Warn on unusable feature columns (left out); fail when a role column is one, or
    when no usable feature is left."""
    metrics: dict[str, JsonValue] = {
        "columns": [m.as_json() for m in measured],
        "usable_features": features_left,
    }
    if not measured:
        return check(UNUSABLE).result(
            "pass",
            "every column holds values the checks can use",
            metrics=metrics,
        )
    named = "; ".join(f"{m.column} ({m.kind})" for m in measured)
    roles = [m for m in measured if m.role != "feature"]
    columns = [m.column for m in roles or measured]
    status: Status
    if roles:
        role = roles[0]
        flag = {"label": "--label", "label_time": "--label-time", "id": "--id"}[role.role]
        status, summary = (
            "fail",
            (
                f"the {role.role.replace('_', ' ')} column {role.column!r} ({flag}) holds "
                f"{role.kind} values, which cannot be compared or counted; choose another column"
            ),
        )
    elif not features_left:
        status, summary = (
            "fail",
            (
                "no usable feature is left: every feature column holds values the checks and "
                f"the model cannot use: {named}"
            ),
        )
    else:
        status = "warn"
        summary = f"left out of the features and every check (values no check can use): {named}"
    return check(UNUSABLE).result(status, summary, columns=columns, metrics=metrics)


def usable_columns(frame: Frame, columns: Iterable[str]) -> list[str]:
    """Return the given columns whose values the checks can use, in order."""
    return [c for c in columns if kind_of(frame, c) is None]


# --- The step ------------------------------------------------------------------------------


def check_quirks(frame: SameFrame, data: DataParams) -> tuple[SameFrame, list[CheckResult]]:
    """Measure and judge the value quirks; return the cleaned frame and the three checks.

    The cleaned frame lacks the unusable columns, holds text columns that are numbers but
    for a few stray values as numbers (the strays missing), decimals as float64 and
    durations as days, and holds NaN where a number was non-finite or overflowing. When a
    role column is unusable the values are left as they came, but the unusable features
    still leave the frame: the other data checks go on after a failure.
    """
    unusable = measure_unusable(frame, data)
    left_out = [m.column for m in unusable if m.role == "feature"]
    kept = frame.drop(columns=left_out) if left_out else frame
    features = data.feature_columns(kept.columns)
    unusable_check = judge_unusable(unusable, len(features))
    if unusable_check.status == "fail":
        not_run = [
            check(code).result("not_run", "not run: unusable columns halted the run first")
            for code in (NON_FINITE, NON_NUMERIC)
        ]
        return kept, [not_run[0], unusable_check, not_run[1]]
    single = {str(c) for c in _single_columns(kept)}
    # Only features are read as numbers: the roles are the schema's and the profile's.
    candidates = [c for c in features if c in single]
    kinds, as_numbers = numbers_of_other_kinds(kept, candidates)
    strays, parsed = measure_non_numeric(kept, candidates, data.id_column)
    converted = {**as_numbers, **parsed}
    kept = kept.assign(**converted) if converted else kept
    numeric = [str(c) for c in _single_columns(kept) if str(c) not in set(data.drop)]
    non_finite = measure_non_finite(kept, numeric, data.id_column)
    return clean_non_finite(kept, non_finite), [
        judge_non_finite(non_finite),
        unusable_check,
        judge_non_numeric(strays, kinds),
    ]


check_quirks_task = task(name="check-value-quirks", cache_policy=NO_CACHE, persist_result=False)(
    check_quirks
)
