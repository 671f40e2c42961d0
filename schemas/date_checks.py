"""The pandera checks and parsers of datetime columns: one time zone, dates read without a guess.

Added to every datetime column, whether its schema is written in YAML (schemas/declaration.py)
or in code (`with_time_zone_checks`): a column mixing zones fails by row unless it
normalises them; a coerced column is read by tasks/label_time.py (ISO 8601, year-first text,
day/month order only when a value settles it), never by pandera's guessing coercion.
"""

import pandas as pd
import pandera.pandas as pa
from pandas.api.types import is_datetime64_any_dtype
from pandera.engines import pandas_engine

from retrain_guard.tasks.label_time import read_label_time, whole_text_of

TIME_ZONE_CHECK = "single_time_zone"
PARSE_CHECK = "parses_as_datetime"
DATES_CHECK = "reads_as_dates_without_guessing"
# The parser of a coerced datetime column (tasks/dask_label_time.py finds its columns by it).
DATES_PARSER = "read_dates"
# Checks added to every datetime column, implied by its dtype: not written back to YAML.
IMPLIED_CHECKS = (TIME_ZONE_CHECK, PARSE_CHECK, DATES_CHECK)
_ZONE_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})$"


def zone_of(values: pd.Series) -> pd.Series:
    """Return each value's UTC offset text ('+01:00'), 'naive', or NaN for missing values."""
    text = values.astype("str").where(values.notna())
    zone = text.str.extract(_ZONE_SUFFIX, expand=False)
    zone = zone.str.replace("Z", "+00:00", regex=False)
    zone = zone.str.replace(r"^([+-]\d{2})(\d{2})$", r"\1:\2", regex=True)
    return zone.where(zone.notna() | values.isna(), "naive")


def single_time_zone(values: pd.Series) -> pd.Series | bool:
    """Pass values in one zone; fail the rows whose zone (or naivety) differs from most rows.

    A datetime dtype holds one zone by construction; the check matters for text or object
    columns a reader could not parse because their zones were mixed. "Most rows" are the
    whole column's when `values` are one part of it (label_time.read_as_whole).
    """
    if is_datetime64_any_dtype(values.dtype):
        return True
    zone = zone_of(values)
    present = zone.dropna()
    if present.empty:
        return True
    facts = whole_text_of(str(values.name))
    usual = facts.usual_zone if facts and facts.usual_zone else present.value_counts().idxmax()
    return (zone == usual) | values.isna()


def _parsed(values: pd.Series, time_zone: str) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce").dt.tz_convert(
        time_zone
    )


def parses_as_datetime(values: pd.Series) -> pd.Series | bool:
    """Fail the rows a normalising datetime column could not parse (bad text)."""
    if is_datetime64_any_dtype(values.dtype):
        return True
    return _parsed(values, "UTC").notna() | values.isna()


def time_zone_parser(time_zone: str, normalise: bool) -> pa.Parser:
    """Return the parser of an aware datetime column: unit to ns, zones converted if asked."""

    def parse(values: pd.Series) -> pd.Series:
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            if normalise:
                values = values.dt.tz_convert(time_zone)
            return values.dt.as_unit("ns")
        if not normalise:
            return values
        if is_datetime64_any_dtype(values.dtype):
            # Naive values in a normalising column are taken to be in its zone.
            return values.dt.tz_localize(time_zone).dt.as_unit("ns")
        parsed = _parsed(values, time_zone)
        if bool((parsed.isna() & values.notna()).any()):
            # Leave bad text for the dtype and parses_as_datetime checks to report by row.
            return values
        return parsed.dt.as_unit("ns")

    return pa.Parser(parse, name=f"time_zone({time_zone})")


def read_dates(values: pd.Series) -> pd.Series | None:
    """Return a coerced datetime column's values read by tasks/label_time.py, None if they are not.

    pandera's own coercion leaves the day/month order of '03/01/2024' to pandas and reads
    integers as nanoseconds; the rules of the label time apply instead (never a guess).
    """
    read = read_label_time(str(values.name), values, subject="column")
    if read.values is None or read.bad_rows:
        return None
    return read.values


def dates_parser() -> pa.Parser:
    """Return the parser of a coerced datetime column: dates read without a guess."""

    def parse(values: pd.Series) -> pd.Series:
        if is_datetime64_any_dtype(values.dtype):
            return values
        parsed = read_dates(values)
        # Values that cannot be read without a guess stay as they are: the dtype and
        # reads_as_dates_without_guessing checks report them.
        return values if parsed is None else parsed.dt.as_unit("ns")

    return pa.Parser(parse, name=DATES_PARSER)


def reads_as_dates(values: pd.Series) -> pd.Series | bool:
    """Fail the present values of a coerced datetime column that could not be read."""
    if is_datetime64_any_dtype(values.dtype):
        return True
    read = read_label_time(str(values.name), values, subject="column")
    if read.values is None:
        return values.isna()
    ok = pd.Series(True, index=values.index)
    ok.iloc[list(read.bad_rows)] = False
    return ok


def dates_problem(values: pd.Series) -> str | None:
    """Return in words why a column could not be read as dates (None when it could)."""
    return read_label_time(str(values.name), values, subject="column").problem


def time_checks(normalise_time_zones: bool) -> list[pa.Check]:
    """Return the zone check of a datetime column: parses when normalising, else one zone."""
    if normalise_time_zones:
        return [pa.Check(parses_as_datetime, name=PARSE_CHECK)]
    return [pa.Check(single_time_zone, name=TIME_ZONE_CHECK)]


def with_time_zone_checks(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """Add the mixed-time-zone check to every datetime column of a schema written in code.

    A coerced datetime column is read by tasks/label_time.py as in a YAML schema (dates_parser),
    not by pandera's coercion, which guesses the day/month order.
    """
    for name, column in schema.columns.items():
        dtype = column.dtype
        is_time = dtype is not None and (
            isinstance(dtype, pandas_engine.DateTime) or str(dtype).startswith("datetime64")
        )
        if not is_time or any(c.name in IMPLIED_CHECKS for c in column.checks):
            continue
        checks = [*column.checks, *time_checks(False)]
        # A zoned column keeps pandera's coercion to its zone: label_time.py reads to UTC.
        if not column.coerce or getattr(dtype, "tz", None) is not None:
            schema = schema.update_column(name, checks=checks)
            continue
        schema = schema.update_column(
            name,
            checks=[*checks, pa.Check(reads_as_dates, name=DATES_CHECK)],
            parsers=[dates_parser(), *(column.parsers or [])],
            coerce=False,
        )
    return schema
