"""The label time read as dates, never guessing: `read_label_time`.

It follows tasks/dates.py's rules for a column read as dates, with the role as the hint: a
label time in text reads as ISO 8601 when half its present values or more are ISO dates
(the others are reported by row), else in a year-first format, or as day-month-year text
whose order a value settles; in numbers as years, epochs or yyyymmdd. What decides, for
text, is a fact of the whole column (`WholeText`): the pandas engine takes it from the
column, the Dask engine joins it from every partition (tasks/dask_schema.py) and gives it to
each partition's reading. A schema's datetime columns are read the same way
(schemas/date_checks.py).
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
    is_object_dtype,
    is_string_dtype,
)

from retrain_guard.tasks.dates import (
    ISO_DATE,
    ZONE_SUFFIX,
    DateColumn,
    DateReading,
    DayMonthOrder,
    date_reading,
    iso_dates,
    parse_date_like,
    sample_present,
    text_reading,
)

ISO_REMEDY = "write it as ISO 8601 (YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS) in the extract"


@dataclass(frozen=True)
class LabelTime:
    """The label time read as dates, or why it cannot be used.

    `values` is None when the column cannot be read as dates without a guess: `problem`
    says why in words, `unsettled` holds the day/month order a text column left open.
    `bad_rows` are the positions of present values that did not parse.
    """

    values: pd.Series | None
    how: str
    problem: str | None = None
    unsettled: DayMonthOrder | None = None
    bad_rows: tuple[int, ...] = ()


@dataclass(frozen=True)
class WholeText:
    """What a text or number column settles as a whole, for reading any part of it alike.

    `sample` is sample_present of the column, which decides how text other than ISO reads;
    `iso` whether half its present values or more are ISO dates; `naive_example` the first
    ISO value without a zone when others have one (then it is not read); `order` the
    day/month order of day-month-year text, with `settled` the whole column's (None: the
    text is not all day-month-year); without `settled`, found from the values read;
    `usual_zone` the zone most of its present values have, 'naive' or an offset
    (schemas/date_checks.py single_time_zone; None: found from the values checked), and
    `zones` its present values per zone, most first (the time_zones_seen of a failure).
    A column of numbers has its sample and `span`, its smallest and largest value.
    """

    sample: pd.Series
    iso: bool
    naive_example: str | None = None
    order: DayMonthOrder | None = None
    usual_zone: str | None = None
    settled: bool = False
    zones: dict[str, int] | None = None
    span: tuple[object, object] = (None, None)


# The facts of the columns whose parts are being read (read_as_whole), by column name.
_WHOLE: ContextVar[Mapping[str, WholeText] | None] = ContextVar("whole_texts", default=None)


@contextmanager
def read_as_whole(facts: Mapping[str, WholeText]) -> Iterator[None]:
    """Within it, read_label_time reads a column named in `facts` by them: the values it is
    given are one part of that column (a Dask partition, validated by pandera, whose
    datetime parsers and checks call read_label_time with the part alone)."""
    token = _WHOLE.set(facts)
    try:
        yield
    finally:
        _WHOLE.reset(token)


def whole_text_of(name: str) -> WholeText | None:
    """The facts `read_as_whole` gives for column `name`, if it is reading a part of it."""
    return (_WHOLE.get() or {}).get(name)


def iso_counts(values: pd.Series) -> tuple[int, int, int, str | None]:
    """A text column's present values, its ISO dates, those with a zone, and its first ISO
    date without one: what decides ISO and a mix of zones (summed over a column's parts)."""
    present = values.dropna().astype(str)
    iso = present.str.match(ISO_DATE)
    zoned = present[iso].str.contains(ZONE_SUFFIX, regex=True)
    naive = present[iso][~zoned]
    first = str(naive.iloc[0]) if len(naive) else None
    return len(present), int(iso.sum()), int(zoned.sum()), first


def iso_decided(present: int, iso: int, zoned: int, naive: str | None) -> tuple[bool, str | None]:
    """Whether a column of these `iso_counts` reads as ISO (half its present values or
    more), and the ISO value without a zone that refuses it when zoned ones meet it."""
    if not (iso and iso / present >= 0.5):
        return False, None
    return True, naive if 0 < zoned < iso else None


def text_facts(values: pd.Series) -> WholeText:
    """The `WholeText` of a whole text column in memory."""
    is_iso, naive = iso_decided(*iso_counts(values))
    return WholeText(sample_present(values), is_iso, naive)


def read_label_time(name: str, values: pd.Series, subject: str = "label time") -> LabelTime:
    """Read the label time column as dates by the rules of parse_date_like, never guessing.

    The role itself says the column holds dates, so a date-like name is not needed: text in
    ISO 8601 or a year-first format, day-month-year text whose order a value settles,
    integer years (1900-2100), epoch seconds or milliseconds, or yyyymmdd numbers. A
    column without any value reads as missing dates (the time split reports it). A column a
    schema declares as datetime is read the same way (`subject` 'column' in messages).
    Text is read by the facts of the whole column (`text_facts` of it), those `read_as_whole`
    gives when `values` are one part of it (a Dask partition): a part alone may hold no
    value that settles the day/month order, or only values without a zone where others
    have one.
    """
    dtype = values.dtype
    if is_datetime64_any_dtype(dtype):
        return LabelTime(values, "datetime column")
    if not bool(values.notna().any()):
        return LabelTime(pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]"), "empty")
    where = f"{subject} {name!r}"
    if is_bool_dtype(dtype):
        return LabelTime(None, "booleans", f"{where} holds true/false values, not dates")
    read: DateReading | DateColumn | None
    if is_object_dtype(dtype) or is_string_dtype(dtype):
        facts = whole_text_of(name) or text_facts(values)
        sample = facts.sample
        if facts.naive_example is not None:
            return LabelTime(
                None,
                "ISO date strings",
                f"{where} mixes values with and without a time zone (e.g. "
                f"{facts.naive_example!r} has none), so the instant those without one mean is "
                f"unknown; {ISO_REMEDY} with a zone on every value",
            )
        # A few bad values among ISO dates are reported by row, not a reason to give up.
        iso = DateReading("ISO date strings", iso_dates)
        # Settled facts leave nothing to the part's own values: no order is no order.
        distinct = (lambda: values.iloc[:0]) if facts.settled else (lambda: values)
        read = iso if facts.iso else text_reading(sample, True, distinct, facts.order)
        if read is not None and read.unsettled is not None:
            return LabelTime(
                None,
                read.how,
                f"{where} holds day/month/year text and {read.unsettled.reason()}; it is "
                f"not read by guessing: {ISO_REMEDY}",
                unsettled=read.unsettled,
            )
        if read is None or read.read is None:
            example = str(sample.iloc[0])
            problem = f"{where} holds text that does not read as dates (e.g. {example!r}); "
            return LabelTime(None, "text", problem + ISO_REMEDY)
        read = DateColumn(name, read.read(values), read.how)
    elif is_numeric_dtype(dtype):
        # The role is the hint: read the numbers as if the name said 'year' and 'date'.
        whole = whole_text_of(name)
        if whole is None:
            read = parse_date_like("label_time_year_date", values)
            low, high = values.min(), values.max()
        else:  # one part of the column: decided by the whole column's sample
            reading = date_reading("label_time_year_date", dtype, whole.sample, lambda: values)
            read = None
            if reading is not None and reading.read is not None:
                read = DateColumn(name, reading.read(values), reading.how)
            low, high = whole.span
        if read is None:
            problem = (
                f"{where} holds numbers ({low} to {high}) that are neither "
                "years 1900-2100, epoch seconds or milliseconds (2000-2100), nor yyyymmdd "
                "dates; "
            )
            return LabelTime(None, "numbers", problem + ISO_REMEDY)
    else:
        return LabelTime(None, str(dtype), f"{where} of type {dtype} does not read as dates")
    parsed = read.values
    assert parsed is not None  # unparsed text returned above
    bad = (parsed.isna() & values.notna()).to_numpy()
    return LabelTime(parsed, read.how, bad_rows=tuple(int(i) for i in np.flatnonzero(bad)))
