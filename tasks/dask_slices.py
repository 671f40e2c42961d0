"""Partitions smaller than a Parquet row group, for the Dask engine's reader.

Dask reads a Parquet row group whole as one partition. Files written by pandas or pyarrow
usually hold a million rows a row group, and a worker holds about twice its partition while
reading it (pyarrow's table and the frame), plus the partitions it has computed and the flow
has not pulled yet: at a million rows of 27 columns one worker reached 2 GiB in the schema
stage (benchmarks/RESULTS.md). `sliced_parquet` cuts such row groups into slices of about
SLICE_BYTES in pandas (estimated from the footers as tasks/memory.py estimates a table),
read on the workers with pyarrow's batch reader, and joins small consecutive row groups of a
file up to the same size.

The slices are read as Dask's own reader reads the file (the same columns, dtypes and row
order), which `sliced_parquet` checks on the metadata before it is used; a table Dask types
differently from pyarrow's plain conversion (hive partition columns and dictionary columns
come back as categoricals) keeps Dask's reader.
"""

from dataclasses import dataclass
from itertools import pairwise

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from retrain_guard.tasks.memory import parquet_bytes
from retrain_guard.tasks.sources import Location, index_columns

# Estimated pandas bytes per partition: a worker holds a few of them at once. At 20M rows
# (5 GiB in pandas) 64 MiB slices put the schema stage at 1.29-1.34 GiB of tree, 32 MiB at
# 1.13-1.19, for about 9 s more (benchmarks/RESULTS.md, issue 13).
SLICE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Piece:
    """Rows [start, stop) of one row group."""

    group: int
    start: int
    stop: int


@dataclass(frozen=True)
class Slice:
    """One partition: pieces of row groups of one file, in order."""

    path: str
    pieces: tuple[Piece, ...]

    @property
    def rows(self) -> int:
        return sum(p.stop - p.start for p in self.pieces)


def plan_slices(path: str, metadata: pq.FileMetaData, budget: int) -> list[Slice]:
    """Cut a file's row groups into partitions of about `budget` estimated pandas bytes:
    a larger row group into equal slices, consecutive smaller ones joined."""
    rows = metadata.num_rows
    if rows == 0:
        return [Slice(path, ())]
    per_row = max(1.0, parquet_bytes(metadata) / rows)
    most = max(1, int(budget // per_row))
    slices: list[Slice] = []
    joined: list[Piece] = []
    for group in range(metadata.num_row_groups):
        n = metadata.row_group(group).num_rows
        if n > most:
            if joined:
                slices.append(Slice(path, tuple(joined)))
                joined = []
            count = -(-n // most)
            bounds = [n * i // count for i in range(count + 1)]
            slices += [Slice(path, (Piece(group, a, b),)) for a, b in pairwise(bounds)]
            continue
        if joined and sum(p.stop - p.start for p in joined) + n > most:
            slices.append(Slice(path, tuple(joined)))
            joined = []
        joined.append(Piece(group, 0, n))
    if joined:
        slices.append(Slice(path, tuple(joined)))
    return slices


def read_slice(part: Slice, fs: AbstractFileSystem, columns: list[str]) -> pd.DataFrame:
    """Read one partition's rows as Dask's reader converts a file (tasks/dask_engine.py)."""
    with fs.open(part.path, "rb") as handle:
        file = pq.ParquetFile(handle)
        tables = [_piece(file, piece, columns) for piece in part.pieces]
        schema = file.schema_arrow
    table = pa.concat_tables(tables) if tables else schema.empty_table().select(columns)
    frame = table.to_pandas(use_threads=False, ignore_metadata=False)
    return frame.set_axis(pd.RangeIndex(len(frame)))[columns]


def _piece(file: pq.ParquetFile, piece: Piece, columns: list[str]) -> pa.Table:
    whole = file.metadata.row_group(piece.group).num_rows
    if piece.start == 0 and piece.stop == whole:
        return file.read_row_group(piece.group, columns=columns, use_threads=False)
    # Batches of the slice's size: the batches before it are decoded and let go of, one
    # at a time; the row group is never converted whole. Its stored (compressed) column
    # chunks are read for each slice: k slices read the group's bytes k times.
    batches: list[pa.RecordBatch] = []
    seen = 0
    for batch in file.iter_batches(
        batch_size=piece.stop - piece.start,
        row_groups=[piece.group],
        columns=columns,
        use_threads=False,
    ):
        end = seen + batch.num_rows
        first, last = max(piece.start, seen), min(piece.stop, end)
        if last > first:
            batches.append(batch.slice(first - seen, last - first))
        seen = end
        if seen >= piece.stop:
            break
    schema = file.schema_arrow
    chosen = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
    return pa.Table.from_batches(batches, schema=chosen)


def sliced_parquet(
    location: Location, dataset: ds.Dataset | None, read: dd.DataFrame, budget: int
) -> dd.DataFrame | None:
    """Return the table as partitions of about `budget` bytes, or None when Dask's own
    partitions `read` (of the file, or the directory's `dataset` files) are kept: no row
    group is larger than a partition, or the table is one sliced reading would type
    differently (a categorical column)."""
    meta = read._meta
    if any(isinstance(dtype, pd.CategoricalDtype) for dtype in meta.dtypes):
        return None
    paths = [location.path] if dataset is None else list(dataset.files)
    wanted = [str(c) for c in meta.columns]
    plans: list[Slice] = []
    cut = False
    for path in paths:
        with location.fs.open(path, "rb") as handle:
            file = pq.ParquetFile(handle)
            metadata, schema = file.metadata, file.schema_arrow
        # A column the file lacks, or an index its pandas metadata restores: Dask's reader.
        if not set(wanted) <= set(schema.names) or index_columns(schema):
            return None
        planned = plan_slices(path, metadata, budget)
        cut = cut or any(
            p.stop - p.start < metadata.row_group(p.group).num_rows
            for s in planned
            for p in s.pieces
        )
        plans += planned
    if not cut:
        return None
    sliced: dd.DataFrame = dd.from_map(
        read_slice,
        plans,
        fs=location.fs,
        columns=wanted,
        meta=meta,
        divisions=None,
        label="read-parquet-slices",
        enforce_metadata=False,
    )
    return sliced
