"""The Dask engine's label time in text or numbers, read as the whole column settles it.

The pandas engine reads a label time in text or numbers (tasks/label_time.py) by facts of
the whole column: whether half its values or more are ISO dates, whether ISO values with
and without a zone meet, the day/month order its values settle, the sample that decides
other formats and numbers, the usual zone. A partition alone may say otherwise: hold only
days up to 12, miss the value that contradicts the order, hold only values without a zone,
mostly other text, or a stray number its own sample catches. So the facts are found on the
cluster, from the column alone (`column_text`), and every partition is read by them
(tasks/dask_schema.py). The same holds for a schema's datetime columns, read and
zone-checked by the same rules (schemas/date_checks.py).
"""

from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype, is_object_dtype, is_string_dtype

from retrain_guard.schemas.date_checks import DATES_PARSER, TIME_ZONE_CHECK, zone_of
from retrain_guard.schemas.params import DataParams
from retrain_guard.tasks.dates import (
    SAMPLE,
    DayMonthOrder,
    day_month_order,
    sample_stride,
    spread_sample,
)
from retrain_guard.tasks.label_time import WholeText, iso_counts, iso_decided
from retrain_guard.tasks.table_files import DtypeObj
from retrain_guard.tasks.validation import DeclaredSchema


def whole_texts(
    table: dd.DataFrame, declared: DeclaredSchema, data: DataParams, unusable_roles: list[str]
) -> dict[str, WholeText]:
    """The facts of every text or number column the schema reads as dates with
    tasks/label_time.py, for each partition to read it by (label_time.read_as_whole): the
    baseline's label time, or a schema's datetime columns read or zone-checked by
    schemas/date_checks.py (those with its `read_dates` parser or its single_time_zone
    check)."""
    if declared.lists_columns:
        read = [
            name
            for name, column in declared.schema.columns.items()
            if any(getattr(p, "name", None) == DATES_PARSER for p in column.parsers or [])
            or any(c.name == TIME_ZONE_CHECK for c in column.checks)
        ]
    else:
        read = [data.label_time] if data.label_time else []
    return {
        column: column_text(table, column)
        for column in read
        if column in table.columns
        and column not in unusable_roles
        and _readable(table[column].dtype)
    }


def column_text(table: dd.DataFrame, column: str) -> WholeText:
    """What a text column settles as a whole (tasks/label_time.py WholeText), as the pandas
    engine finds it on every row: a partition alone may hold no value that settles the
    day/month order, miss the one that contradicts it, hold only ISO values without a zone
    where others have one, or be mostly text that is not ISO.

    Two passes over the column alone on the cluster: each partition's counts (present, ISO,
    ISO with a zone), first ISO value without a zone and day/month order; then its values
    in sample_present's sample of the whole column (the rows a stride of the table takes,
    or, when they hold too few values, a stride of the present values).
    """
    times = table[[column]].to_delayed()
    counted: list[_TextPart] = list(dask.compute(*[dask.delayed(_text_part)(p) for p in times]))
    present = sum(c.present for c in counted)
    offsets = [sum(c.present for c in counted[:n]) for n in range(len(counted))]
    stride, every = sample_stride(sum(c.rows for c in counted)), max(1, present // SAMPLE)
    sampled = dask.compute(
        *[dask.delayed(_sampled)(p, stride, o, every) for p, o in zip(times, offsets, strict=True)]
    )
    strided = _joined([s for s, _ in sampled])
    if len(strided) >= SAMPLE:
        sample = spread_sample(strided)
    else:
        sample = _joined([f for _, f in sampled]).iloc[:SAMPLE]
    zones = _joined([c.zones for c in counted]).groupby(level=0, sort=False).sum()
    # As value_counts orders the whole column's zones (by count; few: a stable sort).
    ordered = zones.sort_values(ascending=False)
    usual = str(ordered.idxmax()) if len(zones) else None
    seen = {str(zone): int(n) for zone, n in ordered.items()}
    naive = next((c.naive for c in counted if c.naive is not None), None)
    iso = sum(c.iso for c in counted)
    is_iso, naive = iso_decided(present, iso, sum(c.zoned for c in counted), naive)
    order = None if is_iso else joined_order([c.order for c in counted if c.present])
    return WholeText(sample, is_iso, naive, order, usual, True, seen, _span(counted))


@dataclass(frozen=True)
class _TextPart:
    """One partition's share of column_text's first pass."""

    rows: int
    present: int
    iso: int
    zoned: int
    naive: str | None  # its first ISO value without a zone
    span: tuple[object, object]  # its smallest and largest value (numbers)
    order: DayMonthOrder | None
    zones: pd.Series  # its present values per zone, in order of first appearance


def _text_part(part: pd.DataFrame) -> _TextPart:
    values = part.iloc[:, 0]
    if is_numeric_dtype(values.dtype):  # no text to look at: its count and span
        present = int(values.notna().sum())
        span = (values.min(), values.max()) if present else (None, None)
        return _TextPart(len(values), present, 0, 0, None, span, None, pd.Series(dtype="int64"))
    present, iso, zoned, first = iso_counts(values)
    # An ISO value is no day-month-year text: day_month_order would find none.
    order = day_month_order(values) if present and not iso else None
    zones = zone_of(values).dropna().value_counts(sort=False)
    return _TextPart(len(values), present, iso, zoned, first, (None, None), order, zones)


def _span(counted: list[_TextPart]) -> tuple[object, object]:
    spans = [c.span for c in counted if c.span[0] is not None]
    if not spans:
        return (None, None)
    return (min(low for low, _ in spans), max(high for _, high in spans))  # type: ignore[type-var]


def _sampled(
    part: pd.DataFrame, stride: int, offset: int, every: int
) -> tuple[pd.Series, pd.Series]:
    """The partition's present values at the table's strided rows (its index holds the
    global row numbers), and every `every`-th present value of the table among its own,
    `offset` present values coming before the partition."""
    values = part.iloc[:, 0]
    strided = values[part.index.to_numpy() % stride == 0].dropna()
    present = values.dropna()
    picked = present[(offset + np.arange(len(present))) % every == 0]
    return strided, picked.iloc[:SAMPLE]


def _joined(pieces: list[pd.Series]) -> pd.Series:
    return pd.concat(pieces) if pieces else pd.Series([], dtype=object)


def _readable(dtype: DtypeObj) -> bool:
    """Text or numbers (not booleans): what read_label_time reads by whole-column facts."""
    if is_bool_dtype(dtype):
        return False
    return bool(is_object_dtype(dtype) or is_string_dtype(dtype) or is_numeric_dtype(dtype))


def joined_order(orders: list[DayMonthOrder | None]) -> DayMonthOrder | None:
    """`day_month_order` of a column from its parts' orders, in row order (None for a part
    not all day-month-year text): the same order, separator and example values, since the
    first example of each kind lies in the first part that has one."""
    if not orders or any(o is None for o in orders):
        return None
    known = [o for o in orders if o is not None]
    separator = known[0].separator
    if any(o.separator != separator for o in known):
        return None
    day = next((o.example for o in known if o.order in ("day_first", "contradictory")), None)
    either = ("month_first", "contradictory")
    month = next(
        (o.other if o.order == "contradictory" else o.example for o in known if o.order in either),
        None,
    )
    if day is not None and month is not None:
        return DayMonthOrder("contradictory", separator, day, month)
    if day is not None:
        return DayMonthOrder("day_first", separator, day)
    if month is not None:
        return DayMonthOrder("month_first", separator, month)
    return DayMonthOrder("unsettled", separator, known[0].example)
