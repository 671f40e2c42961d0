"""Reading the training table: CSV or Parquet, with date columns recognised."""

import csv
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import is_object_dtype, is_string_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from tasks.dates import looks_like_iso_dates, parse_iso

SUPPORTED = (".csv", ".parquet", ".pq")


class InputError(ValueError):
    """The input cannot be used as given; the message names the file, column or setting."""


@dataclass(frozen=True)
class Unreadable:
    """Why the table could not be read: the load task's answer instead of a raised error."""

    reason: str


PERMANENT_IO_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet"
        )
    return "parquet" if suffix in (".parquet", ".pq") else "csv"


@dataclass(frozen=True)
class Header:
    """A table's column names as a reader sees them, and the names its header repeats."""

    columns: list[str]
    duplicates: list[str]


def read_header(path: str | Path) -> Header:
    """Return the file's columns and repeated names, reading only its header or metadata.

    pandas silently renames a repeated CSV name (`amount`, `amount.1`), so a CSV header is
    also read raw; a Parquet file's schema lists repeated names as they are.

    Raises:
        InputError: the file is missing, not a file, of an unsupported type, or unreadable.
    """
    target = Path(path)
    if not target.exists():
        raise InputError(f"{target}: no such file")
    if not target.is_file():
        raise InputError(f"{target}: not a file")
    kind = _kind(target)
    try:
        if kind == "parquet":
            schema = pq.read_schema(target)
            names = list(schema.names)
            # pandas stores a named or non-default index as columns that read_parquet turns
            # back into the index: they are not columns of the table.
            index = (schema.pandas_metadata or {}).get("index_columns", [])
            hidden = {c for c in index if isinstance(c, str)}
            columns = [name for name in names if name not in hidden]
        else:
            with target.open(newline="", encoding="utf-8-sig") as handle:
                names = next(csv.reader(handle), [])
            columns = [str(c) for c in pd.read_csv(target, nrows=5).columns]
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{target}: cannot be read as {kind}: {_first_line(exc)}") from exc
    if not columns:
        raise InputError(f"{target}: has no columns")
    counts = Counter(names)
    return Header(columns, [name for name, n in counts.items() if n > 1 and name != ""])


def read_columns(path: str | Path) -> list[str]:
    """Return the file's column names, reading only its header or metadata.

    Raises:
        InputError: as read_header.
    """
    return read_header(path).columns


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


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; ISO date strings in CSV become datetime columns.

    Raises:
        InputError: the content cannot be parsed.
        OSError: the file could not be read (may be transient).
    """
    target = Path(path)
    kind = _kind(target)
    try:
        if kind == "parquet":
            with _arrow_allocator():
                frame = pd.read_parquet(target)
        else:
            frame = pd.read_csv(target, low_memory=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{target}: cannot be parsed as {kind}: {_first_line(exc)}") from exc
    except OSError:
        raise
    except ValueError as exc:
        raise InputError(f"{target}: cannot be parsed as {kind}: {_first_line(exc)}") from exc
    frame.columns = [str(c) for c in frame.columns]
    return parse_iso_dates(frame)


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
def load_task(path: str) -> pd.DataFrame | Unreadable:
    """Read the training table; an unusable file is returned as Unreadable, not raised.

    An unreadable input is an expected halt: raised inside a task, Prefect would log its
    traceback. Errors that may pass are still raised, so the task retries them.
    """
    try:
        return read_table(path)
    except InputError as exc:
        return Unreadable(str(exc))
    except PERMANENT_IO_ERRORS as exc:
        return Unreadable(f"{path}: cannot be read: {exc.strerror or _first_line(exc)}")
