"""What the Dask engine learns from every partition before it gives the table its dtypes.

pandas types a column by all of its values; a Dask partition sees only its own. Each
partition is summarised on the cluster (a few facts per column, never its rows) and the
summaries are combined into one decision per column, the one the pandas engine takes on the
whole table, which every partition then follows:
- CSV columns: the dtype pd.read_csv infers for the whole column (`csv_kind` per partition,
  `csv_dtype` for the column): int64, float64 as soon as a value is missing or a decimal,
  bool (object when a value is missing), text as soon as one value is not a number;
- ISO date text: datetimes in every partition or text in every partition, in UTC when the
  offsets differ between partitions (tasks/dates.py `iso_reading`, `iso_column_dtype`);
- role columns (label, label time, id): values no check can use in any partition
  (tasks/quirks.py `part_kinds`, `combined_kind`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype
from pandas.api.types import is_object_dtype, is_string_dtype

from retrain_guard.tasks.load import DateDtype, IsoReading, iso_column_dtype, iso_reading
from retrain_guard.tasks.quirks import PartKinds, combined_kind, part_kinds

CsvKind = Literal["empty", "bool", "int", "uint", "float", "text"]
# The words pandas' CSV parser reads as booleans.
BOOLEAN_TEXT = {"True": True, "TRUE": True, "true": True,
                "False": False, "FALSE": False, "false": False}  # fmt: skip
# A CSV column of booleans with a missing value: pandas holds it as objects.
OBJECT_BOOLEANS = "object-bool"

T = TypeVar("T")


def on_partitions(frame: dd.DataFrame, summarise: Callable[[pd.DataFrame], T]) -> list[T]:
    """Return `summarise` of every partition, computed on the cluster, in partition order."""
    parts = frame.to_delayed(optimize_graph=True)
    return list(dask.compute(*[dask.delayed(summarise)(part) for part in parts]))


def widened(part: pd.DataFrame) -> pd.DataFrame:
    """Name columns as strings and give hive partition columns their values' dtypes."""
    part = part.set_axis([str(c) for c in part.columns], axis=1)
    plain = {
        str(c): _uncategorised(part[c])
        for c in part.columns
        if isinstance(part[c].dtype, pd.CategoricalDtype)
    }
    return part.assign(**plain) if plain else part


def _uncategorised(values: pd.Series) -> pd.Series:
    categories = values.cat.categories
    if pd.api.types.is_integer_dtype(categories.dtype):
        return values.astype("int64")
    return values.astype(categories.dtype)


def is_text(dtype: np.dtype | ExtensionDtype) -> bool:
    """Whether a column of this dtype may hold text (hive partition values included)."""
    return (
        is_object_dtype(dtype) or is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
    )


# --- One pass over the partitions -----------------------------------------------------------


@dataclass(frozen=True)
class PartSurvey:
    """One partition's summary: its rows, its text columns' ISO readings, and for CSV text
    each column's kind and the columns with a missing value."""

    rows: int
    dates: dict[str, IsoReading]
    csv: dict[str, CsvKind]
    gaps: frozenset[str]


@dataclass(frozen=True)
class Survey:
    """The whole table's decisions: partition lengths, ISO date columns' dtypes and, for a
    CSV read as text, every column's dtype as pandas infers it for the whole file."""

    rows: list[int]
    dates: dict[str, DateDtype]
    csv_dtypes: dict[str, str]


def survey(frame: dd.DataFrame, csv: bool) -> Survey:
    """Summarise every partition on the cluster and decide each column once for all.

    `frame` is the table as read: a CSV read as text (`csv`), or Parquet, of which only
    the columns that may hold text are read.
    """
    columns = [str(c) for c, dtype in frame.dtypes.items() if csv or is_text(dtype)]
    looked = frame[columns] if columns else frame[frame.columns[:1]]
    parts = on_partitions(looked, lambda part: _survey_part(part, csv))
    rows = sum(p.rows for p in parts)
    csv_dtypes = {
        c: csv_dtype({p.csv[c] for p in parts}, any(c in p.gaps for p in parts), rows)
        for c in (columns if csv else [])
    }
    text = [c for c in columns if not csv or csv_dtypes[c] == "str"]
    dates = {c: iso_column_dtype([p.dates[c] for p in parts if c in p.dates]) for c in text}
    return Survey(
        [p.rows for p in parts], {c: d for c, d in dates.items() if d is not None}, csv_dtypes
    )


def _survey_part(part: pd.DataFrame, csv: bool) -> PartSurvey:
    part = widened(part)
    text = [c for c in part.columns if is_object_dtype(part[c]) or is_string_dtype(part[c])]
    gaps = frozenset(str(c) for c in text if csv and bool(part[c].isna().any()))
    return PartSurvey(
        rows=len(part),
        dates={str(c): iso_reading(part[c]) for c in text},
        csv={str(c): csv_kind(part[c]) for c in text} if csv else {},
        gaps=gaps,
    )


# --- CSV dtypes -----------------------------------------------------------------------------


def csv_kind(values: pd.Series) -> CsvKind:
    """Return what pd.read_csv infers for one partition of a CSV column read as text."""
    present = values.dropna()
    if present.empty:
        return "empty"
    if bool(present.isin(BOOLEAN_TEXT).all()):
        return "bool"
    numbers = pd.to_numeric(present, errors="coerce")
    if bool(numbers.isna().any()):
        return "text"
    kind = numbers.dtype.kind
    return "int" if kind == "i" else "uint" if kind == "u" else "float"


def csv_dtype(kinds: set[CsvKind], gaps: bool, rows: int) -> str:
    """Return the dtype pandas infers for a whole CSV column from its partitions' kinds.

    `gaps`: a value is missing somewhere (an integer column then reads as float64).
    """
    held = kinds - {"empty"}
    if not held:
        return "float64" if rows else "str"
    if "text" in held or ("bool" in held and len(held) > 1):
        return "str"
    if held == {"bool"}:
        return OBJECT_BOOLEANS if gaps else "bool"
    if held <= {"int", "uint"} and not gaps:
        return "uint64" if "uint" in held else "int64"
    return "float64"


def read_dtypes(dtypes: dict[str, str]) -> dict[str, str]:
    """Return the dtypes to read a CSV's columns with (booleans with gaps: as text)."""
    return {c: "object" if d == OBJECT_BOOLEANS else d for c, d in dtypes.items()}


def as_booleans(part: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Return the partition with boolean text columns as objects True, False and NaN."""
    if not columns:
        return part
    return part.assign(**{c: part[c].map(BOOLEAN_TEXT).astype(object) for c in columns})


# --- Role columns ---------------------------------------------------------------------------


def role_kinds(frame: dd.DataFrame, columns: list[str]) -> dict[str, str | None]:
    """Return column_kind of each object column over all partitions (None: usable)."""
    if not columns:
        return {}
    parts = on_partitions(frame[columns], lambda part: _part_kinds(part, columns))
    return {c: combined_kind([p[c] for p in parts]) for c in columns}


def _part_kinds(part: pd.DataFrame, columns: list[str]) -> dict[str, PartKinds]:
    return {c: part_kinds(part[c]) for c in columns}
