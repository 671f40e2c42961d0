"""When each date column is known: how many of its values fall after the row's label time.

The measure of temporal_leakage (temporal.py judges it). It reads columns as dates through
tasks/dates.py, a stored table's without reading them whole (column_dates.py).
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype
from pydantic import JsonValue

from retrain_guard.tasks.dates import DateColumn, as_naive_utc, naive_stamps
from retrain_guard.tasks.leakage.column_dates import column_reading
from retrain_guard.tasks.part_map import iter_parts
from retrain_guard.tasks.stored_table import CHUNK_ROWS, Frame, StoredTable


def date_like_columns(frame: Frame, columns: list[str]) -> Iterator[DateColumn]:
    """Yield the columns that read as dates (see `parse_date_like`), one at a time: a
    stored table's columns are read as they are asked for, never all held at once, and only
    once their dtype, name and sample say they read as dates."""
    for column in columns:
        reading = column_reading(frame, column)
        if reading is not None and reading.read is not None:
            yield DateColumn(column, reading.read(frame[column]), reading.how)


# --- Temporal leakage ----------------------------------------------------------------------


@dataclass(frozen=True)
class DateLead:
    """How many of a column's known-at times fall after the row's label time, and by how much."""

    column: str
    non_null: int
    after_label_time: int
    max_lead_days: float
    source: str = "datetime column"

    @property
    def declared(self) -> bool:
        """Whether the times come from a known-at declaration rather than the column itself."""
        return self.source.startswith("declared")

    @property
    def share(self) -> float:
        return self.after_label_time / self.non_null if self.non_null else 0.0

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "source": self.source,
            "non_null": self.non_null,
            "after_label_time": self.after_label_time,
            "share_after_label_time": round(self.share, 6),
            "max_lead_days": round(self.max_lead_days, 3),
        }


def whole_days(times: pd.Series) -> bool:
    """Return whether every present time is a midnight: the label time is only a date."""
    # A strided sample usually settles "no" at once; only "yes" needs every row.
    sample = times.iloc[:: max(1, len(times) // 1000)].dropna()
    if not (sample == sample.dt.floor("D")).all():
        return False
    present = times.dropna()
    return bool(len(present)) and bool((present == present.dt.floor("D")).all())


def lead_of(column: str, known: pd.Series, reference: pd.Series, source: str) -> DateLead:
    """Count the rows with both times, those known after the reference, and the largest
    lead; CHUNK_ROWS rows at a time, so that the leads' temporaries stay a slice's size.
    Times outside the nanosecond range (a placeholder 9999-12-31) compare in microseconds."""
    pairs = (
        (known.iloc[start : start + CHUNK_ROWS], reference.iloc[start : start + CHUNK_ROWS])
        for start in range(0, len(known), CHUNK_ROWS)
    )
    return counted_leads(column, pairs, source)


def counted_leads(
    column: str, pairs: Iterable[tuple[pd.Series, pd.Series]], source: str
) -> DateLead:
    """`lead_of` over runs of rows: each run's known-at times and reference times."""
    return summed_leads(
        column, [lead_counts(known, reference) for known, reference in pairs], source
    )


def lead_counts(known: pd.Series, reference: pd.Series) -> tuple[int, int, pd.Timedelta]:
    """One run of rows' present known-at times, those after the reference time, and the
    largest lead among them (0 without any)."""
    times, label_times = naive_stamps(known), naive_stamps(reference)
    if times.dtype != label_times.dtype:  # one outside the nanosecond range
        times, label_times = (
            times.astype("datetime64[us]"),
            label_times.astype("datetime64[us]"),
        )
    lead = times - label_times
    present = ~np.isnat(lead)
    after = lead[present & (lead > np.timedelta64(0))]
    largest = pd.Timedelta(after.max()) if len(after) else pd.Timedelta(0)
    return int(np.count_nonzero(present)), len(after), largest


def summed_leads(
    column: str, counts: Iterable[tuple[int, int, pd.Timedelta]], source: str
) -> DateLead:
    """The `DateLead` of runs' `lead_counts`."""
    n_present = n_after = 0
    max_lead = pd.Timedelta(0)
    for present, after, largest in counts:
        n_present += present
        if after:
            n_after += after
            max_lead = max(max_lead, largest)
    days = max_lead / pd.Timedelta(days=1) if n_after else 0.0
    return DateLead(column, n_present, n_after, float(days), source)


def measure_post_label_dates(frame: Frame, label_time: str, columns: list[str]) -> list[DateLead]:
    """Measure, per date-like column, how many non-null values fall after the label time.

    A label time given as a date says nothing about the hour: a value later that same day
    may still precede the prediction, so then only later days count. On a stored table with
    a datetime label time every column is compared a partition at a time: one read as dates
    from text or numbers is parsed a partition at a time too, by the reading its sample and
    distinct values decide (tasks/leakage/column_dates.py).
    """
    if isinstance(frame, StoredTable) and is_datetime64_any_dtype(frame.dtype(label_time)):
        return _stored_leads(frame, label_time, columns)
    reference = as_naive_utc(frame[label_time])
    by_day = whole_days(reference)
    return [
        lead_of(
            d.column, as_naive_utc(d.values).dt.floor("D") if by_day else d.values, reference, d.how
        )
        for d in date_like_columns(frame, columns)
    ]


def _stored_leads(frame: StoredTable, label_time: str, columns: list[str]) -> list[DateLead]:
    """Each partition's leads counted where it is (on the cluster where it can,
    tasks/part_map.py), by the reading of the whole column."""
    by_day = _whole_days_stored(frame, label_time)
    leads: list[DateLead] = []
    for column in columns:
        reading = column_reading(frame, column)
        if reading is None or reading.read is None:
            continue
        read = list(dict.fromkeys([column, label_time]))
        counts = iter_parts(frame, read, _part_leads, column, label_time, reading.read, by_day)
        leads.append(summed_leads(column, counts, reading.how))
    return leads


def _part_leads(
    chunk: pd.DataFrame,
    column: str,
    label_time: str,
    read: Callable[[pd.Series], pd.Series],
    by_day: bool,
) -> tuple[int, int, pd.Timedelta]:
    return lead_counts(_as_known(read(chunk[column]), by_day), chunk[label_time])


def _as_known(values: pd.Series, by_day: bool) -> pd.Series:
    return as_naive_utc(values).dt.floor("D") if by_day else values


def _whole_days_stored(frame: StoredTable, label_time: str) -> bool:
    """`whole_days` of a stored label time, a partition at a time."""
    seen = False
    for whole, held in iter_parts(frame, [label_time], _whole_days_part, label_time):
        if not whole:  # the rest need not be read
            return False
        seen = seen or held
    return seen


def _whole_days_part(chunk: pd.DataFrame, label_time: str) -> tuple[bool, bool]:
    """Whether the partition's label times are whole days, and whether it holds any."""
    present = as_naive_utc(chunk[label_time]).dropna()
    return bool((present == present.dt.floor("D")).all()), bool(len(present))
