"""Text columns that hold numbers, and the rows a value-quirk check lists.

- non_numeric_values: a text feature whose present values are numbers but for a few stray
  entries (at least MIN_NUMERIC_SHARE of them, and all but at most MAX_STRAYS) is read as
  numbers; the strays become missing and are listed with example rows. Decimal features
  become float64 and durations become days (`numbers_of_other_kinds`).
- `RowExample` and `row_examples`: the first rows of a finding (position, value, id), the
  form every value-quirk check of tasks/quirks.py lists them in.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_object_dtype, is_string_dtype, is_timedelta64_dtype
from pydantic import JsonValue

from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.stored_table import Frame, column_chunks, dtype_of, take_rows

NON_NUMERIC = "non_numeric_values"
# A text column is read as numbers when at least this share of its present values, and
# all but at most MAX_STRAYS of them, parse as numbers: a few stray entries ("oops", "n/a")
# in a numeric column. More than that, and the column is text (a category or a code).
MIN_NUMERIC_SHARE = 0.99
MAX_STRAYS = 20
# Values parsed first: enough to find more than MAX_STRAYS strays in a text column at once.
PROBE = 256
# Example rows listed per column in the report.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class RowExample:
    """A listed row of a finding: its position in the frame (0-based), value and id."""

    position: int
    value: JsonValue
    id: JsonValue = None
    has_id: bool = False

    def name(self) -> str:
        return f"{self.position} (id {self.id})" if self.has_id else f"{self.position}"

    def as_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"position": self.position, "value": self.value}
        if self.has_id:
            out["id"] = self.id
        return out


def row_examples(
    frame: Frame,
    positions: Sequence[int] | np.ndarray,
    id_column: str | None,
    value_at: Callable[[int], JsonValue],
) -> list[RowExample]:
    """Return the first MAX_EXAMPLES rows at `positions`, named by id when there is one."""
    has_id = id_column is not None and id_column in frame.columns
    listed = np.asarray(positions[:MAX_EXAMPLES], dtype="int64")
    ids = take_rows(frame, listed, [id_column])[id_column] if id_column and has_id else None
    return [
        RowExample(
            position=int(at),
            value=value_at(int(at)),
            id=plain(ids.iloc[i]) if ids is not None else None,
            has_id=has_id,
        )
        for i, at in enumerate(listed)
    ]


def plain(value: object) -> JsonValue:
    """Return a cell's value as JSON: numpy scalars as Python ones, anything else as text."""
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def cell_at(values: pd.Series, position: int) -> JsonValue:
    """Return the value at a position of a column, as JSON (see plain)."""
    return plain(values.iloc[position])


def is_present(value: object) -> bool:
    """Whether a cell holds a value (lists and dicts always do; None, NaN and NaT do not)."""
    if value is None:
        return False
    if isinstance(value, float | np.floating):
        return not np.isnan(value)
    return value is not pd.NaT and value is not pd.NA


@dataclass(frozen=True)
class NonNumeric:
    """A text column whose present values are numbers except a few stray ones."""

    column: str
    present: int
    examples: list[RowExample] = field(default_factory=list)
    count: int = 0

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "count": self.count,
            "present": self.present,
            "examples": [e.as_json() for e in self.examples],
        }

    def describe(self) -> str:
        shown = ", ".join(f"{e.name()}: {e.value!r}" for e in self.examples)
        more = ", ..." if self.count > len(self.examples) else ""
        return (
            f"{self.column}: {self.count} of {self.present} present value(s) are not "
            f"numbers (row {shown}{more})"
        )


@dataclass(frozen=True)
class ReadAsNumbers:
    """A feature read as numbers from another kind: decimals as float64, durations as days."""

    column: str
    kind: str  # "decimal" or "duration"
    read_as: str  # "float64" or "days"

    def as_json(self) -> dict[str, JsonValue]:
        return {"column": self.column, "from": self.kind, "as": self.read_as}


def could_be_numbers(head: pd.Series) -> bool:
    """Whether a column's first values leave it possibly numbers but for a few strays:
    text (or no value yet) with at most MAX_STRAYS values that are not numbers. More strays
    among the first values are more in all: a text column (categories, codes, ids) is
    settled without reading, or parsing, every value."""
    if not (is_object_dtype(head.dtype) or is_string_dtype(head.dtype)):
        return False
    kind = infer_dtype(head, skipna=True)
    if kind == "empty":
        return True
    if kind != "string":
        return False
    strays = head.notna() & pd.to_numeric(head.str.strip(), errors="coerce").isna()
    return int(strays.sum()) <= MAX_STRAYS


def first_values(frame: Frame, column: str) -> pd.Series:
    """The column's first PROBE values (of a stored table, its first partition read)."""
    return next(column_chunks(frame, column, PROBE))


def numbers_in_text(values: pd.Series) -> pd.Series | None:
    """Return a text column's values as float64 when they are numbers but for a few stray
    entries (which become NaN), else None. Columns without a stray entry are left as they
    are: a text column of numbers only is the file's own choice (codes, zip codes)."""
    if not could_be_numbers(values.iloc[:PROBE]) or infer_dtype(values, skipna=True) != "string":
        return None
    present = values.notna()
    total = int(present.sum())
    if not total:
        return None
    parsed = pd.to_numeric(values.where(present).str.strip(), errors="coerce")
    strays = total - int(parsed.notna().sum())
    if not 0 < strays <= MAX_STRAYS or strays > (1 - MIN_NUMERIC_SHARE) * total:
        return None
    return parsed.astype("float64")


def measure_non_numeric(
    frame: Frame, columns: Iterable[str], id_column: str | None = None
) -> tuple[list[NonNumeric], dict[str, pd.Series]]:
    """Find text columns that are numbers but for a few stray values; return what was
    found (count, example rows by position and id, the values) and the columns as numbers."""
    measured: list[NonNumeric] = []
    converted: dict[str, pd.Series] = {}
    for column in columns:
        if not could_be_numbers(first_values(frame, column)):
            continue
        values = frame[column]
        parsed = numbers_in_text(values)
        if parsed is None:
            continue
        stray = values.notna().to_numpy() & parsed.isna().to_numpy()
        positions = np.flatnonzero(stray)
        measured.append(
            NonNumeric(
                column=str(column),
                present=int(values.notna().sum()),
                examples=row_examples(frame, positions, id_column, partial(cell_at, values)),
                count=len(positions),
            )
        )
        converted[str(column)] = parsed
    return measured, converted


def judge_non_numeric(
    measured: list[NonNumeric], converted_kinds: list[ReadAsNumbers] | None = None
) -> CheckResult:
    """Warn when a numeric column held stray text values, which are treated as missing.

    `converted_kinds` lists columns read as numbers from another kind (decimals,
    durations); they are named in the metrics and the summary, never a warning.
    """
    kinds = list(converted_kinds or [])
    metrics: dict[str, JsonValue] = {
        "min_numeric_share": MIN_NUMERIC_SHARE,
        "max_strays": MAX_STRAYS,
        "columns": [m.as_json() for m in measured],
        "read_as_numbers": [k.as_json() for k in kinds],
    }
    noted = ""
    if kinds:
        noted = "; read as numbers: " + ", ".join(
            f"{k.column} ({k.kind} as {k.read_as})" for k in kinds
        )
    if not measured:
        return check(NON_NUMERIC).result(
            "pass", f"no numeric column holds stray text values{noted}", metrics=metrics
        )
    return check(NON_NUMERIC).result(
        "warn",
        "; ".join(m.describe() for m in measured)
        + f": the column is read as numbers and these values as missing{noted}",
        columns=[m.column for m in measured],
        metrics=metrics,
    )


def numbers_of_other_kinds(
    frame: Frame, columns: Iterable[str]
) -> tuple[list[ReadAsNumbers], dict[str, pd.Series]]:
    """Return decimal columns as float64 and durations as days (float64), with a note each.

    Parquet decimals arrive as Python Decimal objects and durations as timedelta64: both
    are quantities, not categories, for every measure and the model.
    """
    notes: list[ReadAsNumbers] = []
    converted: dict[str, pd.Series] = {}
    for column in columns:
        # Only a duration, or decimals among the first values, is read whole.
        dtype = dtype_of(frame, column)
        if not is_timedelta64_dtype(dtype) and not (
            is_object_dtype(dtype)
            and infer_dtype(first_values(frame, column), skipna=True) in ("decimal", "empty")
        ):
            continue
        values = frame[column]
        name = str(column)
        if is_timedelta64_dtype(values.dtype):
            converted[name] = (values.dt.total_seconds() / 86_400).astype("float64")
            notes.append(ReadAsNumbers(name, "duration", "days"))
        elif is_object_dtype(values.dtype) and infer_dtype(values, skipna=True) == "decimal":
            present = values.map(is_present).to_numpy()
            numbers = np.full(len(values), np.nan)
            numbers[present] = [float(v) for v in values[present]]
            converted[name] = pd.Series(numbers, index=values.index, name=name)
            notes.append(ReadAsNumbers(name, "decimal", "float64"))
    return notes, converted
