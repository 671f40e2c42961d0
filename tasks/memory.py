"""Refusing a table too large for the flow's memory, before a row of it is read.

Holds the estimate of a table's size in pandas (from a Parquet file's or dataset's footers,
or a CSV file's first rows; a SQL query's is not estimated), the memory the process may
still take (/proc/meminfo's MemAvailable and the cgroup's limit minus its usage), and the
`table_too_large` check: an estimate above `compute.max_memory_fraction` of the available
memory is refused with the figures and the Dask engine to use instead. With the Dask engine
the flow's process does not hold the table: the estimate is held against the free space of
compute.spill_dir, where the checked table is stored.
"""

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from retrain_guard.schemas.params import ComputeParams, DataParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.engine import SPILL_SETTING
from retrain_guard.tasks.load import parse_iso_dates
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.sources import Location, file_kind, locate, parquet_dataset

CODE = "table_too_large"
# The CSV estimate: the first MiB of the file read as the flow reads it, scaled by file size.
CSV_SAMPLE_BYTES = 1 << 20
# What pandas holds per value beyond its bytes (pandas 3): an arrow-backed string's 8-byte
# offset; a Python object's pointer plus its header (sys.getsizeof of a date, a Decimal, a
# bytes object, a list); a partition column's value.
_STRING_OFFSET = 8
_OBJECT: dict[str, int] = {"date": 40, "time": 48, "decimal": 112, "binary": 41, "nested": 120}
_PARTITION_VALUE = 16
# cgroup v1 reports "no limit" as a huge number (the page-rounded max of an int64).
_NO_V1_LIMIT = 1 << 60


@dataclass(frozen=True)
class Estimate:
    """A table's estimated size in pandas, how it was made, or why it was not."""

    bytes: int | None
    method: str

    def to_json(self) -> dict[str, JsonValue]:
        return {"bytes": self.bytes, "method": self.method}


@dataclass(frozen=True)
class Available:
    """The memory the process may still take: the smaller of the system's and its cgroup's."""

    bytes: int
    mem_available: int | None
    cgroup_free: int | None

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "bytes": self.bytes,
            "mem_available": self.mem_available,
            "cgroup_free": self.cgroup_free,
        }


@dataclass(frozen=True)
class SpillRoom:
    """Where the Dask engine stores the checked table (compute.spill_dir), and its free bytes."""

    directory: str
    # None: the free space could not be asked (a missing directory fails when written).
    free: int | None

    def to_json(self) -> dict[str, JsonValue]:
        return {"setting": SPILL_SETTING, "directory": self.directory, "free_bytes": self.free}


@dataclass(frozen=True)
class MemoryGuard:
    """The estimate against the memory available: the report's `metrics.memory`.

    With the Dask engine (`spill` set) the flow's process does not hold the table: the
    estimate is held against the free space where the table is stored instead.
    """

    estimate: Estimate
    available: Available | None
    fraction: float
    spill: SpillRoom | None = None

    @property
    def allowed(self) -> int | None:
        return None if self.available is None else int(self.available.bytes * self.fraction)

    def refusal(self, source: str) -> CheckResult | None:
        """Return the table_too_large failure when the estimate exceeds the allowed share
        of the memory (pandas engine) or the free space of compute.spill_dir (Dask)."""
        if self.spill is not None:
            return self._no_room(source, self.spill)
        allowed, size = self.allowed, self.estimate.bytes
        if allowed is None or size is None or size <= allowed or self.available is None:
            return None
        return check(CODE).result(
            "fail",
            f"{source}: the table would take about {_size(size)} in memory "
            f"({self.estimate.method}), more than compute.max_memory_fraction {self.fraction:g} "
            f"of the {_size(self.available.bytes)} available ({_size(allowed)}); nothing was "
            "read. Give the run more memory, read a smaller extract, or raise "
            "compute.max_memory_fraction; or use the Dask engine (--engine dask), which "
            "stores the checked table on the flow's disk and reads it a column at a time",
            metrics=self.to_json(),
        )

    def _no_room(self, source: str, spill: SpillRoom) -> CheckResult | None:
        size = self.estimate.bytes
        if size is None or spill.free is None or size <= spill.free:
            return None
        return check(CODE).result(
            "fail",
            f"{source}: the checked table would take about {_size(size)} on the flow's disk "
            f"({self.estimate.method}), more than the {_size(spill.free)} free in "
            f"{SPILL_SETTING} {spill.directory!r}; nothing was read. Give {SPILL_SETTING} "
            "a directory with room for it, or read a smaller extract",
            metrics={**self.to_json(), "setting": SPILL_SETTING},
        )

    def to_json(self) -> dict[str, JsonValue]:
        available: dict[str, JsonValue] | None = None
        if self.available is not None:
            size = self.estimate.bytes
            available = {
                **self.available.to_json(),
                "allowed_bytes": self.allowed,
                "share": None if size is None else size / max(self.available.bytes, 1),
            }
        described: dict[str, JsonValue] = {
            "estimate": self.estimate.to_json(),
            "available": available,
            "max_memory_fraction": self.fraction,
        }
        if self.spill is not None:
            described["spill"] = self.spill.to_json()
        return described


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# --- the estimate ----------------------------------------------------------------------


def estimate_table(source: str | Path | DataParams) -> Estimate:
    """Estimate the table's size once read into pandas, reading only footers or a sample.

    A Parquet file or dataset: from its footers (row counts, column types, null counts,
    string sizes). A CSV file: its first MiB read as the flow reads it, scaled by the file's
    size. A SQL query: not estimated. A source that cannot be opened is not estimated here:
    reading it reports why (input_unreadable).
    """
    if isinstance(source, DataParams) and source.sql is not None:
        return Estimate(None, "not estimated: a SQL query's result size is unknown before it runs")
    try:
        where = locate(source)
        if isinstance(where, Path):
            where = Location(LocalFileSystem(), str(where), str(where))
        return _estimate_located(where)
    except Exception as exc:  # the read that follows names the problem
        return Estimate(None, f"not estimated: {type(exc).__name__}")


def _estimate_located(location: Location) -> Estimate:
    dataset = parquet_dataset(location)
    if dataset is not None:
        files = [f.path for f in dataset.get_fragments()]
        # Without partition folders, the discovered partitioning's schema is the files' own:
        # only a field the files do not store is a partition value.
        fields = getattr(dataset.partitioning, "schema", pa.schema([])).names
        total = 0
        for path in files:
            with location.fs.open(path, "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata
            stored = set(metadata.schema.to_arrow_schema().names)
            partitions = sum(1 for name in fields if name not in stored)
            total += parquet_bytes(metadata) + metadata.num_rows * partitions * _PARTITION_VALUE
        return Estimate(total, f"Parquet metadata of {len(files)} files")
    is_parquet = file_kind(location.path, location.name) == "parquet"
    with location.fs.open(location.path, "rb") as handle:
        if is_parquet:
            return Estimate(parquet_bytes(pq.ParquetFile(handle).metadata), "Parquet metadata")
        size, sample = _csv_sample(handle)
    return Estimate(size, f"CSV: its first {_size(sample)} read, scaled by the file's size")


def _csv_sample(handle: IO[bytes]) -> tuple[int, int]:
    """Return the CSV's estimated size in pandas and the bytes of the sample measured."""
    head = handle.read(CSV_SAMPLE_BYTES + 1)
    rest = 0
    if len(head) > CSV_SAMPLE_BYTES:
        rest = _remaining(handle)
        cut = head.rfind(b"\n", 0, CSV_SAMPLE_BYTES) + 1
        rest += len(head) - cut
        head = head[:cut]
    frame = parse_iso_dates(pd.read_csv(io.BytesIO(head), low_memory=False))
    measured = int(frame.memory_usage(deep=True).sum())
    return int(measured * (len(head) + rest) / max(len(head), 1)), len(head)


def _remaining(handle: IO[bytes]) -> int:
    """Return the bytes after the handle's position, without reading them."""
    here = handle.tell()
    end = handle.seek(0, io.SEEK_END)
    handle.seek(here)
    return int(end - here)


def parquet_bytes(metadata: pq.FileMetaData) -> int:
    """Estimate the bytes pandas (3.x, pyarrow strings) holds for a Parquet file's rows."""
    schema = metadata.schema.to_arrow_schema()
    rows = metadata.num_rows
    chunks = _chunks_by_column(metadata)
    total = 0
    for column in schema:
        total += _column_bytes(column.type, rows, chunks.get(column.name, []))
    return total


def _chunks_by_column(metadata: pq.FileMetaData) -> dict[str, list[Any]]:
    """Return every column chunk's metadata by its top-level column's name."""
    chunks: dict[str, list[Any]] = {}
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            chunks.setdefault(chunk.path_in_schema.split(".")[0], []).append(chunk)
    return chunks


def _column_bytes(kind: pa.DataType, rows: int, chunks: list[Any]) -> int:
    nulls = _null_count(chunks)
    stored = sum(int(c.total_uncompressed_size) for c in chunks)
    if pa.types.is_dictionary(kind):  # a pandas categorical: codes and its categories
        pages = _dictionary_bytes(chunks)
        return rows * (1 if pages < 128 * 5 else 2 if pages < 32768 * 5 else 4) + 2 * pages
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return rows * _STRING_OFFSET + rows // 8 + _string_bytes(chunks, stored)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return rows * _OBJECT["binary"] + _string_bytes(chunks, stored)
    if pa.types.is_boolean(kind):
        return rows * (1 if nulls == 0 else 8 + 28)
    if pa.types.is_integer(kind):  # with missing values pandas holds float64
        return rows * (kind.bit_width // 8 if nulls == 0 else 8)
    if pa.types.is_floating(kind) or pa.types.is_timestamp(kind) or pa.types.is_duration(kind):
        return rows * max(kind.bit_width // 8, 4)
    for name, test in (
        ("date", pa.types.is_date),
        ("time", pa.types.is_time),
        ("decimal", pa.types.is_decimal),
    ):
        if test(kind):  # Python objects, one per value
            return rows * _OBJECT[name]
    if pa.types.is_null(kind):
        return rows * (8 + 16)
    return rows * _OBJECT["nested"] + stored  # lists, structs, maps: Python objects


def _null_count(chunks: list[Any]) -> int | None:
    """Return the column's nulls from the chunks' statistics; None when one has none."""
    total = 0
    for chunk in chunks:
        stats = chunk.statistics
        if stats is None or not stats.has_null_count:
            return None
        total += int(stats.null_count)
    return total


def _string_bytes(chunks: list[Any], stored: int) -> int:
    """Return the bytes of a string column's values.

    A dictionary-encoded chunk (Parquet's default) stores each distinct value once, so its
    uncompressed size says little of the values pandas holds one by one: the mean of the
    lengths of its minimum and maximum (statistics) times its values is taken when larger.
    """
    by_length = 0
    for chunk in chunks:
        stats = chunk.statistics
        if stats is None or not stats.has_min_max:
            continue
        lengths = [len(_as_bytes(v)) for v in (stats.min, stats.max)]
        present = int(chunk.num_values) - (int(stats.null_count) if stats.has_null_count else 0)
        by_length += present * sum(lengths) // 2
    return max(stored, by_length)


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _dictionary_bytes(chunks: list[Any]) -> int:
    """Return a dictionary-encoded column's largest dictionary page (compressed bytes):
    pandas holds the categories once; at 5 bytes or more an entry (a 4-byte length and a
    character), it bounds their number, and so the width of the codes."""
    return max(
        (
            int(c.data_page_offset) - int(c.dictionary_page_offset)
            for c in chunks
            if c.has_dictionary_page and c.dictionary_page_offset is not None
        ),
        default=0,
    )


# --- the memory available --------------------------------------------------------------


def available_memory(
    proc: Path = Path("/proc"), cgroups: Path = Path("/sys/fs/cgroup")
) -> Available | None:
    """Return the memory the process may still take, or None when /proc says nothing.

    The smaller of /proc/meminfo's MemAvailable and, when the process's cgroup sets a limit,
    that limit minus the cgroup's usage (v2: memory.max and memory.current, the tightest of
    the cgroup and its parents; v1: memory.limit_in_bytes and memory.usage_in_bytes).
    """
    system = _mem_available(proc / "meminfo")
    group = _cgroup_free(proc / "self" / "cgroup", cgroups)
    known = [v for v in (system, group) if v is not None]
    if not known:
        return None
    return Available(min(known), system, group)


def _mem_available(meminfo: Path) -> int | None:
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _inactive_file(group: Path) -> int:
    """Return the cgroup's inactive page cache (v2 inactive_file, v1 total_inactive_file)."""
    try:
        lines = (group / "memory.stat").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        name, _, value = line.partition(" ")
        if name in ("inactive_file", "total_inactive_file") and value.strip().isdigit():
            return int(value)
    return 0


def _cgroup_free(membership: Path, root: Path) -> int | None:
    """Return the cgroup's limit minus its usage less reclaimable cache (the tightest up the
    tree), None when unlimited."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    free: list[int] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: the unified hierarchy
            base, limit_name, usage_name = root, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            base = root / "memory"
            limit_name, usage_name = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        group = base / path.lstrip("/")
        while True:
            limit, usage = _read_int(group / limit_name), _read_int(group / usage_name)
            if limit is not None and limit < _NO_V1_LIMIT and usage is not None:
                # Usage counts the page cache; its inactive part is reclaimed before the kernel
                # kills anything (the "working set" of Kubernetes): a worker that has read files
                # is not full.
                free.append(max(limit - (usage - _inactive_file(group)), 0))
            if group == base or base not in group.parents:
                break
            group = group.parent
    return min(free) if free else None


# --- the check -------------------------------------------------------------------------


def guard_memory(data: DataParams, compute: ComputeParams) -> MemoryGuard:
    """Estimate the table and the memory available (and, with the Dask engine, the free space
    where the table is stored); the caller refuses a table too large."""
    spill = spill_room(compute.spill_dir) if compute.engine == "dask" else None
    return MemoryGuard(estimate_table(data), available_memory(), compute.max_memory_fraction, spill)


def spill_room(directory: str | None) -> SpillRoom:
    """Return the free space of compute.spill_dir (empty: the system's temporary directory);
    its free space is None when it cannot be asked (a missing directory fails, naming the
    setting, when the table is written)."""
    where = os.path.expanduser(directory) if directory else tempfile.gettempdir()
    try:
        return SpillRoom(where, shutil.disk_usage(where).free)
    except OSError:
        return SpillRoom(where, None)


guard_memory_task = task(name="estimate-memory", cache_policy=NO_CACHE, persist_result=False)(
    guard_memory
)
