"""Dates and time zones, read one way for every stage.

A leaf module: it imports nothing else of the project, so load, leakage, training, the
schema draft and the schema and parameter models can all share it without a cycle.

- ISO 8601 text is recognised by pattern; offsets that differ between rows (a daylight
  saving change) are converted to UTC.
- Day/month order is never guessed: a value that settles it (a first field above 12 means
  day first, a second field above 12 means month first) decides for the whole column;
  without one, or with values that contradict each other, the column stays text.
- A text or integer column counts as dates by its values and a hint in its name
  (`parse_date_like`): years, epochs and yyyymmdd numbers need a date or year name.
- The offset grammar of known-at declarations lives in tasks/offsets.py.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_float_dtype,
    is_numeric_dtype,
    is_object_dtype,
    is_string_dtype,
)
from pandas.errors import OutOfBoundsDatetime

# An ISO-looking date at the start of a string: cheap to test on a sample, and it keeps
# ids such as "20250101" or free text from being read as dates.
ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)
ZONE_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"
# Formats whose field order is fixed by the year coming first: never ambiguous.
YEAR_FIRST_FORMATS = ("%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")
# Day and month in either order, then a four-digit year; one separator throughout.
_DAY_MONTH = re.compile(r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4})\s*$")
SAMPLE = 200
NS_PER_DAY = 86_400 * 10**9
US_PER_DAY = 86_400 * 10**6


# --- ISO text -------------------------------------------------------------------------------


def sample_present(values: pd.Series, size: int = SAMPLE) -> pd.Series:
    """Return up to `size` present values spread over the column."""
    # A strided slice first: dropping missing values of a million rows costs more.
    present = values.iloc[:: sample_stride(len(values), size)].dropna()
    if len(present) < size:
        present = values.dropna()
    return spread_sample(present, size)


def sample_stride(rows: int, size: int = SAMPLE) -> int:
    """The stride of `sample_present`'s first look at a column of `rows` rows."""
    return max(1, rows // (size * 10))


def spread_sample(present: pd.Series, size: int = SAMPLE) -> pd.Series:
    """Up to `size` of the present values, spread over them (`sample_present`)."""
    return present.iloc[:: max(1, len(present) // size)][:size]


def looks_like_iso_dates(values: pd.Series) -> bool:
    """Return whether every sampled present value is an ISO date or datetime string."""
    sample = sample_present(values)
    if sample.empty:
        return False
    # Only text can be dates here: bytes, lists or dicts as text would fail or mislead.
    if infer_dtype(sample, skipna=True) != "string":
        return False
    return bool(sample.astype(str).str.match(ISO_DATE).all())


def parse_iso(values: pd.Series) -> pd.Series | None:
    """Parse ISO date strings; None when a value does not parse or zones cannot be reconciled.

    Values in one zone keep it. Values whose UTC offsets differ (a daylight saving change,
    several sources) are converted to UTC and stay aware, so a schema that declares the
    zone, or asks to normalise to another one, sees the true instants. Naive and aware
    values mixed in one column stay text: which zone the naive ones are in is unknown.
    """
    try:
        return pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError):
        pass
    text = values.dropna().astype(str)
    if text.empty or not bool(text.str.contains(ZONE_SUFFIX, regex=True).all()):
        return None
    try:
        return pd.to_datetime(values, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        return None


def as_naive_utc(values: pd.Series) -> pd.Series:
    """Return datetimes comparable with each other: aware values in UTC without zone."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values


def naive_stamps(values: pd.Series, unit: str | None = None) -> np.ndarray:
    """Return datetimes as numpy datetime64 in UTC without zone: in nanoseconds, or in
    microseconds when one lies outside the nanosecond range (1677-2262: a placeholder
    9999-12-31 read from text is kept in microseconds); in `unit` when given (a column
    read in parts takes the unit its whole would)."""
    naive = as_naive_utc(values)
    if unit is not None:
        return naive.astype(np.dtype(f"datetime64[{unit}]")).to_numpy()
    try:
        return naive.astype("datetime64[ns]").to_numpy()
    except (OutOfBoundsDatetime, OverflowError):
        return naive.astype("datetime64[us]").to_numpy()


def to_days(values: pd.Series, unit: str | None = None) -> np.ndarray:
    """Return datetimes as float days since 1970-01-01 UTC (`naive_stamps`' unit, or
    `unit`); missing values are NaN."""
    stamps = naive_stamps(values, unit)
    days = stamps.view("int64") / (NS_PER_DAY if stamps.dtype == "M8[ns]" else US_PER_DAY)
    days[np.isnat(stamps)] = np.nan
    return days


# --- Day/month order ------------------------------------------------------------------------

Order = Literal["day_first", "month_first", "unsettled", "contradictory"]


@dataclass(frozen=True)
class DayMonthOrder:
    """What a column of dd/mm/yyyy or mm/dd/yyyy strings says about its field order."""

    order: Order
    separator: str
    example: str
    other: str | None = None

    @property
    def format(self) -> str | None:
        """Return the strptime format the order settles, or None when it is not settled."""
        s = self.separator
        if self.order == "day_first":
            return f"%d{s}%m{s}%Y"
        if self.order == "month_first":
            return f"%m{s}%d{s}%Y"
        return None

    def reason(self) -> str:
        """Return why the order was chosen or left open, with example values."""
        if self.order == "day_first":
            return f"day first, settled by {self.example!r}"
        if self.order == "month_first":
            return f"month first, settled by {self.example!r}"
        if self.order == "contradictory":
            return (
                f"values contradict each other: {self.example!r} can only be day first, "
                f"{self.other!r} only month first"
            )
        return (
            f"no value settles day/month order (every day and month is 12 or less, e.g. "
            f"{self.example!r})"
        )


def day_month_order(values: pd.Series) -> DayMonthOrder | None:
    """Settle the day/month order of a column of day-month-year strings from all its values.

    Returns None when a present value is not of the form nn/nn/yyyy (or with '.' or '-').
    """
    distinct = pd.Series(pd.unique(values.dropna().astype(str)))
    if distinct.empty:
        return None
    parts = distinct.str.extract(_DAY_MONTH)
    if bool(parts[0].isna().any()) or parts[1].nunique() != 1:
        return None
    first = parts[0].astype("int64")
    second = parts[2].astype("int64")
    day_first = first > 12
    month_first = second > 12
    separator = str(parts[1].iloc[0])
    if bool(day_first.any()) and bool(month_first.any()):
        return DayMonthOrder(
            "contradictory",
            separator,
            str(distinct[day_first].iloc[0]),
            str(distinct[month_first].iloc[0]),
        )
    if bool(day_first.any()):
        return DayMonthOrder("day_first", separator, str(distinct[day_first].iloc[0]))
    if bool(month_first.any()):
        return DayMonthOrder("month_first", separator, str(distinct[month_first].iloc[0]))
    return DayMonthOrder("unsettled", separator, str(distinct.iloc[0]))


def looks_like_day_month(sample: pd.Series) -> bool:
    """Return whether every sampled value is a day-month-year string."""
    return bool(len(sample)) and bool(sample.astype(str).str.match(_DAY_MONTH).all())


def unsettled_order(sample: pd.Series, distinct: Callable[[], pd.Series]) -> DayMonthOrder | None:
    """The open day/month order of a text column of day-month-year dates, None if not such:
    from its present `sample`, and its values (or only its distinct ones, in order of
    appearance) asked for only when the sample is day-month-year."""
    if not looks_like_day_month(sample):
        return None
    order = day_month_order(distinct())
    return order if order is not None and order.format is None else None


@dataclass(frozen=True)
class DateReading:
    """How a column reads as dates, decided before its rows are parsed: from its dtype, a
    sample of its present values and, for day-month-year text, its distinct values.

    `read` parses any run of the column's rows as it parses the whole, value by value, so a
    column can be read a partition at a time; it is None for day-month-year text whose
    order no value settles (`unsettled`).
    """

    how: str
    read: Callable[[pd.Series], pd.Series] | None
    unsettled: DayMonthOrder | None = None


def text_reading(
    sample: pd.Series,
    formats: bool,
    distinct: Callable[[], pd.Series],
    order: DayMonthOrder | None = None,
) -> DateReading | None:
    """How a text column reads as dates: ISO always, other formats only when `formats` is
    true (a name hints at dates); None when it does not.

    `sample` holds present values of it (see sample_present) that decide whether to try;
    `distinct` gives the column's values (or only its distinct ones, in order of
    appearance), asked for only for day-month-year text; `order`, when given, is that
    text's order as the whole column settles it (a part of it read alone).
    """
    kind = text_dates_kind(sample, formats)
    if kind is None:
        return None
    if kind == ISO_KIND:
        return DateReading("ISO date strings", iso_dates)
    if kind != DAY_MONTH_KIND:
        return DateReading(f"date strings ({kind}, name hint)", partial(_formatted, kind))
    order = order or day_month_order(distinct())
    if order is None:
        return None
    if order.format is None:
        return DateReading("day-month-year strings, order not settled", None, order)
    return DateReading(
        f"date strings ({order.format}, {order.reason()})", partial(_formatted, order.format)
    )


def iso_dates(values: pd.Series) -> pd.Series:
    """ISO date strings as naive UTC datetimes (parse_iso; values it cannot take coerced)."""
    parsed = parse_iso(values)
    if parsed is None:
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    return as_naive_utc(parsed)


def _formatted(date_format: str, values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format=date_format, errors="coerce")


ISO_KIND, DAY_MONTH_KIND = "ISO", "day-month"


def text_dates_kind(sample: pd.Series, formats: bool) -> str | None:
    """What a text column's sample says it may be, before the column itself is read: ISO
    dates, a year-first format, day-month-year strings, or None (not dates)."""
    text = sample.astype(str)
    if text.empty:
        return None
    if text.str.match(ISO_DATE).all():
        return ISO_KIND
    if not formats:
        return None
    for fmt in YEAR_FIRST_FORMATS:
        if pd.to_datetime(text, format=fmt, errors="coerce").notna().all():
            return fmt
    return DAY_MONTH_KIND if looks_like_day_month(text) else None


# --- Recognising a column as dates -----------------------------------------------------------

# Names that make a string or integer column a date or year candidate. Integers need a
# name hint: amounts or counts between 1900 and 2100 are common and are not years.
DATE_HINT = re.compile(
    r"(date|time|stamp|(^|_)(ts|dt|at|on|day|when)$|^(ts|dt)_|[a-z](At|On|Date|Time)$)"
)
_YEAR_HINT = re.compile(r"(year|(^|_)yr($|_)|Year)")
_YEARS = (1900, 2100)
_EPOCH_SECONDS = (946_684_800, 4_102_444_800)  # 2000-01-01 .. 2100-01-01


def has_date_hint(name: str) -> bool:
    """Return whether a column name hints at a date ('due_date', 'created_at', 'ts')."""
    return bool(DATE_HINT.search(name))


@dataclass(frozen=True)
class DateColumn:
    """A column read as dates, and how it was recognised."""

    column: str
    values: pd.Series
    how: str


def never_dates(name: str, dtype: np.dtype | ExtensionDtype) -> bool:
    """Whether `parse_date_like` rejects a column of this dtype and name whatever its values:
    booleans, and numbers without a year or date hint in the name."""
    if is_bool_dtype(dtype):
        return True
    numeric = is_numeric_dtype(dtype) and not is_datetime64_any_dtype(dtype)
    return bool(numeric and not (_YEAR_HINT.search(name) or DATE_HINT.search(name)))


def parse_date_like(name: str, values: pd.Series) -> DateColumn | None:
    """Read a column as dates when its type, a cheap parse of a sample, and its name agree.

    Datetime columns always count. Strings count when the sample is all ISO dates, or when
    the name hints at a date and the sample parses with one common format; day-month-year
    strings count only when a value settles the order (see day_month_order), otherwise they
    stay text (tasks/leakage/temporal.py `measure_ambiguous_dates` reports them). Integers count
    only with a name hint and a plausible range: years 1900-2100 ('year', 'yr'), or
    epoch seconds / milliseconds and yyyymmdd numbers (a date hint such as '_at', 'date').
    """
    dtype = values.dtype
    if is_datetime64_any_dtype(dtype):
        return DateColumn(name, as_naive_utc(values), "datetime column")
    if never_dates(name, dtype):
        return None
    sample = sample_present(values)
    if sample.empty:
        return None
    reading = date_reading(name, dtype, sample, lambda: values)
    if reading is None or reading.read is None:
        return None
    return DateColumn(name, reading.read(values), reading.how)


def date_reading(
    name: str,
    dtype: np.dtype | ExtensionDtype,
    sample: pd.Series,
    distinct: Callable[[], pd.Series],
) -> DateReading | None:
    """`parse_date_like`'s decision for a column that is not datetime, before its rows are
    parsed: from its name, dtype and present `sample` (`distinct` as in `text_reading`).
    None when the column does not read as dates, or is text whose order is left open."""
    date_hint = bool(DATE_HINT.search(name))
    if is_object_dtype(dtype) or is_string_dtype(dtype):
        read = text_reading(sample, formats=date_hint, distinct=distinct)
        return None if read is None or read.read is None else read
    if not is_numeric_dtype(dtype) or not (_YEAR_HINT.search(name) or date_hint):
        return None
    numbers = sample.to_numpy(dtype="float64")
    if is_float_dtype(dtype) and not np.all(numbers == np.round(numbers)):
        return None
    low, high = float(numbers.min()), float(numbers.max())
    if _YEAR_HINT.search(name) and _YEARS[0] <= low and high <= _YEARS[1]:
        return DateReading("years (integers with a year name)", partial(_numbers_as, "%Y"))
    if not date_hint:
        return None
    if _EPOCH_SECONDS[0] <= low and high <= _EPOCH_SECONDS[1]:
        return DateReading("epoch seconds", partial(_epoch, "s"))
    if _EPOCH_SECONDS[0] * 1000 <= low and high <= _EPOCH_SECONDS[1] * 1000:
        return DateReading("epoch ms", partial(_epoch, "ms"))
    if low >= 19_000_101 and high <= 21_001_231 and _numbers_as("%Y%m%d", sample).notna().all():
        return DateReading("yyyymmdd numbers", partial(_numbers_as, "%Y%m%d"))
    return None


def _numbers_as(date_format: str, values: pd.Series) -> pd.Series:
    """Whole numbers read as text in `date_format` (years, yyyymmdd); others missing."""
    numbers = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
    numbers = numbers.where(numbers == np.round(numbers))  # 2019.5 is no year: missing
    return pd.to_datetime(
        numbers.astype("Int64").astype("string"), format=date_format, errors="coerce"
    )


def _epoch(unit: Literal["s", "ms"], values: pd.Series) -> pd.Series:
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    return pd.Series(pd.to_datetime(numbers, unit=unit), index=values.index)
