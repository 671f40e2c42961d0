"""Reading the training table, with date columns recognised: the entry points.

read_header, read_columns, read_table and the load task take a local path, or the data
parameters, which may point at a Parquet dataset directory or a URL (tasks/sources.py) or a
SQL query (tasks/sql_source.py). A local CSV or Parquet file is read here.
"""

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import is_object_dtype, is_string_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from retrain_guard.schemas.params import DataParams
from retrain_guard.tasks.dates import looks_like_iso_dates, parse_iso
from retrain_guard.tasks.sources import (
    SUPPORTED,
    Header,
    InputError,
    file_kind,
    first_line,
    header_of,
    index_columns,
    locate,
    located_header,
    parquet_columns,
    read_located,
)
from retrain_guard.tasks.sql_source import read_sql, sql_header

__all__ = [
    "SUPPORTED",
    "Header",
    "InputError",
    "Unreadable",
    "load_task",
    "parse_iso_dates",
    "read_columns",
    "read_header",
    "read_table",
]

Source = str | Path | DataParams


@dataclass(frozen=True)
class Unreadable:
    """Why the table could not be read: the load task's answer instead of a raised error."""

    reason: str


PERMANENT_IO_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def read_header(source: Source) -> Header:
    """Return the table's columns and repeated names, reading only its header or metadata.

    pandas silently renames a repeated CSV name (`amount`, `amount.1`), so a CSV header is
    also read raw; a Parquet file's schema lists repeated names as they are.

    Raises:
        InputError: the source is missing, not a file, of an unsupported type, unreachable,
            refused or unreadable; the message names it without secrets.
    """
    if isinstance(source, DataParams) and source.sql is not None:
        return sql_header(source)
    where = locate(source)
    if isinstance(where, Path):
        return _file_header(where)
    return located_header(where)


def _file_header(target: Path) -> Header:
    """Return the header of a local CSV or Parquet file."""
    if not target.exists():
        raise InputError(f"{target}: no such file")
    if not target.is_file():
        raise InputError(f"{target}: not a file")
    kind = file_kind(target.name, target)
    try:
        if kind == "parquet":
            names, columns = parquet_columns(pq.read_schema(target))
        else:
            with target.open(newline="", encoding="utf-8-sig") as handle:
                names = next(csv.reader(handle), [])
            columns = [str(c) for c in pd.read_csv(target, nrows=5).columns]
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{target}: cannot be read as {kind}: {first_line(exc)}") from exc
    return header_of(names, columns, target)


def read_columns(source: Source) -> list[str]:
    """Return the table's column names, reading only its header or metadata.

    Raises:
        InputError: as read_header.
    """
    return read_header(source).columns


@contextmanager
def _arrow_allocator() -> Iterator[None]:
    """Let pyarrow allocate with the system allocator while it reads, unless the user chose.

    Inside a flow run, a large Parquet read with pyarrow's default pool (mimalloc) took 2-3x
    as long as with the system allocator, which a fresh process does not show
    (benchmarks/RESULTS.md, "Validation at scale"). ARROW_DEFAULT_MEMORY_POOL, when set,
    is pyarrow's own way to choose a pool, and is left alone.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def read_table(source: Source) -> pd.DataFrame:
    """Read the table; ISO date strings become datetime columns.

    Raises:
        InputError: the content cannot be parsed, or a URL, dataset or database cannot be
            read (named without secrets).
        OSError: a local file could not be read (may be transient).
    """
    if isinstance(source, DataParams) and source.sql is not None:
        frame = read_sql(source)
    else:
        where = locate(source)
        frame = _read_file(where) if isinstance(where, Path) else read_located(where)
    frame.columns = [str(c) for c in frame.columns]
    return parse_iso_dates(frame)


def _read_file(target: Path) -> pd.DataFrame:
    """Read a local CSV or Parquet file."""
    kind = file_kind(target.name, target)
    try:
        if kind == "parquet":
            with _arrow_allocator():
                return read_parquet_by_column(target)
        return pd.read_csv(target, low_memory=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{target}: cannot be parsed as {kind}: {first_line(exc)}") from exc
    except OSError:
        raise
    except ValueError as exc:
        raise InputError(f"{target}: cannot be parsed as {kind}: {first_line(exc)}") from exc


def read_parquet_by_column(path: Path) -> pd.DataFrame:
    """Read a Parquet file as pandas.read_parquet does, one column at a time.

    pandas' own read holds the whole Arrow table and the frame at once: at 10M rows x 27
    columns it peaked at 1.8x the frame, and so set the peak of a whole `validate` run
    (benchmarks/RESULTS.md, "Both engines at scale"). Column by column, each read by
    pandas.read_parquet itself (the same dtypes, the index the file's pandas metadata
    restores), the peak is the frame and one column. Repeated column names cannot be read
    by name: such a file is read whole, and the schema stage names the repeat.
    """
    schema = pq.ParquetFile(path).schema_arrow
    index = index_columns(schema)  # read with every column
    columns = [n for n in schema.names if n not in index]
    if len(set(columns)) < len(columns) or len(columns) < 2:
        return pd.read_parquet(path)
    parts = [pd.read_parquet(path, columns=[name]) for name in columns]
    rows = pd.RangeIndex(len(parts[0]))
    # Aligned by position: a restored index may repeat values, which concat would align on.
    frame = pd.concat([part.set_axis(rows) for part in parts], axis=1).set_axis(parts[0].index)
    return frame


def parse_iso_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Convert string columns whose values are all ISO dates into datetime columns.

    Values whose UTC offsets differ (a daylight saving change) become UTC datetimes. A
    column that looks like dates on a sample but fails to parse whole, or mixes values with
    and without a zone, stays a string column; the schema stage reports it.
    """
    converted = {}
    for column in frame.columns:
        values = frame[column]
        if not (is_object_dtype(values.dtype) or is_string_dtype(values.dtype)):
            continue
        if not looks_like_iso_dates(values):
            continue
        parsed = parse_iso(values)
        if parsed is not None:
            converted[column] = parsed
    if not converted:
        return frame
    return frame.assign(**converted)


# --- ISO dates decided over parts of a column (the Dask engine's partitions) ---

DateDtype = np.dtype | pd.DatetimeTZDtype


@dataclass(frozen=True)
class IsoReading:
    """What one part of a text column says about reading the column as ISO dates.

    `dtype` is what parse_iso gives the part (None: the part is not ISO dates, so the whole
    column stays text); a part without a present value says nothing (`present` false).
    """

    present: bool
    dtype: DateDtype | None = None


def iso_reading(values: pd.Series) -> IsoReading:
    """Return how one part of a text column reads as ISO dates (see iso_column_dtype)."""
    if not bool(values.notna().any()):
        return IsoReading(present=False)
    if not looks_like_iso_dates(values):
        return IsoReading(present=True)
    parsed = parse_iso(values)
    dtype = None if parsed is None else parsed.dtype
    return IsoReading(True, dtype if isinstance(dtype, np.dtype | pd.DatetimeTZDtype) else None)


TimeUnit = Literal["s", "ms", "us", "ns"]
_UNITS: tuple[TimeUnit, ...] = ("s", "ms", "us", "ns")


def _unit(dtype: DateDtype) -> TimeUnit:
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]
    return _UNITS[_UNITS.index(unit)]


def iso_column_dtype(readings: list[IsoReading]) -> DateDtype | None:
    """Return the dtype the parts' column reads as, decided as parse_iso decides on all of it.

    None (the column stays text) when no part holds a value, a part is not ISO dates, or
    parts with and without a zone meet; otherwise the finest unit of the parts, in their
    one zone, or in UTC when their offsets differ (a daylight saving change between files).
    """
    dtypes = [r.dtype for r in readings if r.present]
    if not dtypes or any(d is None for d in dtypes):
        return None
    parsed = [d for d in dtypes if d is not None]
    unit = max((_unit(d) for d in parsed), key=_UNITS.index)
    aware = [d for d in parsed if isinstance(d, pd.DatetimeTZDtype)]
    if not aware:
        return np.dtype(f"datetime64[{unit}]")
    if len(aware) < len(parsed):
        return None
    zones = {str(d.tz) for d in aware}
    return pd.DatetimeTZDtype(unit, aware[0].tz if len(zones) == 1 else "UTC")


def read_iso_as(values: pd.Series, dtype: DateDtype) -> pd.Series:
    """Parse one part of an ISO date column into the column's dtype (iso_column_dtype)."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        aware = pd.to_datetime(values, format="ISO8601", utc=True)
        return aware.dt.tz_convert(dtype.tz).dt.as_unit(dtype.unit)
    return pd.to_datetime(values, format="ISO8601").astype(dtype)


def _transient_io_error(task: object, task_run: object, state: State[Any]) -> bool:
    """Retry on I/O errors that may pass (network file systems), not on missing files."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:
        return False
    return isinstance(exc, OSError) and not isinstance(exc, PERMANENT_IO_ERRORS)


@task(
    name="load-data",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_transient_io_error,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def load_task(source: Source) -> pd.DataFrame | Unreadable:
    """Read the training table; an unusable file is returned as Unreadable, not raised.

    An unreadable input is an expected halt: raised inside a task, Prefect would log its
    traceback. Errors that may pass are still raised, so the task retries them.
    """
    try:
        return read_table(source)
    except InputError as exc:
        return Unreadable(str(exc))
    except PERMANENT_IO_ERRORS as exc:
        shown = source.source if isinstance(source, DataParams) else source
        return Unreadable(f"{shown}: cannot be read: {exc.strerror or first_line(exc)}")
