"""A column read as dates without reading it whole: its sample, its distinct text, its reading.

tasks/dates.py decides how a column reads as dates from its dtype, a sample of its present
values and, for day-month-year text, its distinct values (`date_reading`); the reading then
parses any run of rows. Here those come from either kind of frame: a pandas column gives
them directly, a stored table (tasks/stored_table.py) a partition at a time, the sample
read at its rows. So a stored text or number column is parsed as dates a partition at a
time, and gives what the whole column would: the same sample, the same distinct values in
the same order, the same decision.
"""

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_object_dtype, is_string_dtype

from retrain_guard.tasks.dates import (
    SAMPLE,
    DateReading,
    DayMonthOrder,
    as_naive_utc,
    date_reading,
    never_dates,
    sample_present,
    sample_stride,
    spread_sample,
    unsettled_order,
)
from retrain_guard.tasks.stored_table import Frame, StoredTable, column_chunks, dtype_of


def column_sample(frame: Frame, column: str) -> pd.Series:
    """`sample_present` of a column: on a stored table the same values, read at their rows
    (a strided look first; when it finds too few, every present row's position)."""
    if not isinstance(frame, StoredTable):
        return sample_present(frame[column])
    rows = len(frame)
    strided = frame.take(np.arange(0, rows, sample_stride(rows)), [column])[column]
    present = strided.dropna()
    if len(present) >= SAMPLE:
        return spread_sample(present)
    positions = _present_positions(frame, column)
    chosen = positions[:: max(1, len(positions) // SAMPLE)][:SAMPLE]
    return frame.take(chosen, [column])[column]


def _present_positions(frame: StoredTable, column: str) -> np.ndarray:
    found, start = [], 0
    for chunk in column_chunks(frame, column):
        found.append(np.flatnonzero(chunk.notna().to_numpy()) + start)
        start += len(chunk)
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def day_month_values(frame: Frame, column: str) -> pd.Series:
    """What `day_month_order` needs of a text column: its values; of a stored one only its
    distinct present values as text, in order of first appearance, gathered a partition at
    a time (the distinct values `day_month_order` finds in the whole, in the same order)."""
    if not isinstance(frame, StoredTable):
        return frame[column]
    seen = [
        np.asarray(chunk.dropna().astype(str).unique(), dtype=object)
        for chunk in column_chunks(frame, column)
    ]
    joined = np.concatenate(seen) if seen else np.empty(0, dtype=object)
    return pd.Series(pd.unique(joined), dtype=object)


def column_reading(frame: Frame, column: str) -> DateReading | None:
    """How a column reads as dates (`parse_date_like`'s decision), without reading it whole;
    None when it does not (day-month-year text whose order is open included)."""
    dtype = dtype_of(frame, column)
    if is_datetime64_any_dtype(dtype):
        return DateReading("datetime column", as_naive_utc)
    if never_dates(column, dtype):
        return None
    sample = column_sample(frame, column)
    if sample.empty:
        return None
    return date_reading(column, dtype, sample, lambda: day_month_values(frame, column))


def unsettled_column(frame: Frame, column: str) -> DayMonthOrder | None:
    """`unsettled_order` of a text column, without reading a stored one whole."""
    dtype = dtype_of(frame, column)
    if not (is_object_dtype(dtype) or is_string_dtype(dtype)):
        return None
    return unsettled_order(column_sample(frame, column), lambda: day_month_values(frame, column))
