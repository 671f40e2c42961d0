"""A table kept on local disk and read column by column: the Dask engine's checked table.

The pandas engine holds the whole table in the flow's process. The Dask engine instead
pulls the validated partitions from the cluster a few at a time and writes each to one file
here (`TableWriter`); the stages after the schema then read the `StoredTable` one column at
a time, so the flow's memory is bounded by the columns a check reads at once, not by the
table. It answers the part of pandas' DataFrame interface those stages use: `columns`,
`dtypes`, `index`, `len`, `table[column]` (a Series), `table[columns]` (a DataFrame),
`table[mask]` (the rows where a boolean mask holds), `take` (some rows of some columns),
`drop(columns=...)` and `assign(...)`, whose new columns are written to disk as well.

Each partition is one file (tasks/table_files.py: its columns one after another, written
by the flow or, where they see its disk, by the Dask workers themselves); a column is read
by concatenating it from every partition in order, as Dask concatenates partitions
(categoricals by the union of their categories).
"""

import tempfile
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar, overload

import numpy as np
import pandas as pd

from retrain_guard.tasks.engine import SPILL_SETTING, SpillUnwritable
from retrain_guard.tasks.positions import increasing, position_index
from retrain_guard.tasks.table_files import (
    Directory,
    DtypeObj,
    PartChunk,
    PartFile,
    Store,
    as_dtype,
    joined,
    read_array,
    same_dtype,
    write_part,
)


class TableWriter:
    """Collects a table's partitions, in any order, into files; `table()` reads them back.

    Raises:
        SpillUnwritable: the directory cannot be made or written (missing, read-only, full);
            what was written is removed with the writer.
    """

    def __init__(self, meta: pd.DataFrame, directory: str | None = None) -> None:
        self._meta = meta
        self._columns = [str(c) for c in meta.columns]
        self._where = directory
        try:
            self._directory = Directory(directory)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        self._parts: dict[tuple[int, int], PartFile] = {}
        self._by_flow = False  # whether the flow wrote any partition (`add`)

    def add(self, number: int, frame: pd.DataFrame, piece: int = 0) -> None:
        """Write partition `number` (its columns must be the table's, in order), or its
        `piece`-th run of rows when a partition comes in pieces."""
        if [str(c) for c in frame.columns] != self._columns:
            raise ValueError(f"partition {number} has other columns than the table")
        self._by_flow = True
        try:
            self._parts[number, piece] = write_part(self._directory.new_file("part"), frame)
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def store(self) -> Store:
        """Return where a worker seeing this directory writes partitions itself (`adopt`)."""
        try:
            return self._directory.store()
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def adopt(self, number: int, written: PartFile, piece: int = 0) -> None:
        """Take partition `number` (or its `piece`) as a worker wrote it with `Store.write`."""
        if written.path.parent != self._directory.path:
            raise ValueError(f"partition {number} was written outside the table's directory")
        if written.columns != self._columns:
            raise ValueError(f"partition {number} has other columns than the table")
        self._parts[number, piece] = written

    def put(self, number: int, part: pd.DataFrame | PartFile, piece: int = 0) -> None:
        """`add` rows the flow holds, or `adopt` a file a worker wrote."""
        if isinstance(part, pd.DataFrame):
            self.add(number, part, piece)
        else:
            self.adopt(number, part, piece)

    def _unwritable(self, exc: OSError) -> SpillUnwritable:
        where = repr(self._where) if self._where else f"(empty: {tempfile.gettempdir()!r})"
        return SpillUnwritable(
            f"{SPILL_SETTING} {where}: the checked table could not be stored there "
            f"({exc.strerror or exc}); give a directory of the flow's machine with room for "
            "about the table's size in memory"
        )

    def table(self, cluster: str | None = None) -> "StoredTable":
        """Return the table of every partition (and piece) added, in their order; the
        workers of the scheduler at `cluster` read it (tasks/part_map.py) when they wrote
        every partition themselves."""
        parts = tuple(self._parts[n] for n in sorted(self._parts))
        readers = None if self._by_flow else cluster
        base = _Base(self._directory, parts, self._meta, readers)
        return StoredTable(base, list(map(str, self._meta.columns)))


@dataclass(frozen=True, eq=False)
class _Base:
    """The rows as written: the partitions' files, the dtypes, and the global row index."""

    directory: Directory
    parts: tuple[PartFile, ...]
    meta: pd.DataFrame
    # The scheduler whose workers see the files (they wrote them), else None.
    cluster: str | None = None
    _index: list[pd.Index] = field(default_factory=list)
    # Each column's dtype as a whole read returns it, once learnt: the same for every table
    # of these rows, whichever rows it keeps.
    dtypes: dict[str, DtypeObj] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def written_dtype(self, column: str) -> DtypeObj | None:
        """The dtype every partition wrote the column with; None when they differ (or none)."""
        written = {p.dtypes.get(column) for p in self.parts}
        return next(iter(written)) if len(written) == 1 else None

    def read(self, column: str) -> pd.Series:
        same = self.written_dtype(column)
        if len(self.parts) > 1 and isinstance(same, np.dtype):
            return self._filled(column, same)
        dtype = self.meta[column].dtype if column in self.meta.columns else object
        return joined([read_array(p, column) for p in self.parts], dtype)

    def read_at(self, column: str, positions: np.ndarray) -> pd.Series:
        """`read` at increasing `positions` only, a partition at a time."""
        arrays, start, done = [], 0, 0
        for part in self.parts:
            stop = start + part.rows
            ahead = position_index(positions, stop) - done
            if ahead:
                arrays.append(read_array(part, column)[positions[done : done + ahead] - start])
            start, done = stop, done + ahead
        return joined(arrays, self.meta[column].dtype if column in self.meta.columns else object)

    def _filled(self, column: str, dtype: np.dtype) -> pd.Series:
        """Join a column whose partitions share one numpy dtype into one array filled a
        partition at a time: the column is held once, not its partitions and their join."""
        values = np.empty(self.rows, dtype=dtype)
        start = 0
        for part in self.parts:
            values[start : start + part.rows] = np.asarray(read_array(part, column))
            start += part.rows
        return pd.Series(values, dtype=dtype, copy=False)

    @property
    def index(self) -> pd.Index:
        """The rows' labels: their global row numbers, a RangeIndex when contiguous."""
        if not self._index:
            indexes = [read_array(p, None) for p in self.parts]
            self._index.append(_joined_index(indexes))
        return self._index[0]


def _joined_index(indexes: list[pd.Index]) -> pd.Index:
    start = 0
    for index in indexes:
        if not (isinstance(index, pd.RangeIndex) and index.start == start and index.step == 1):
            return indexes[0].append(indexes[1:]) if indexes else pd.RangeIndex(0)
        start = index.stop
    return pd.RangeIndex(0, start)


@dataclass(frozen=True)
class _Added:
    """A column `assign` wrote: its file, and the base rows it holds values for."""

    path: Path
    positions: np.ndarray | None


class StoredTable:
    """The table on disk, as the stages after the schema read it (see the module docstring).

    `positions` are the base rows this table keeps (None: all of them, in order); `added`
    are the columns `assign` wrote, which replace or extend the base columns.
    """

    def __init__(
        self,
        base: _Base,
        columns: list[str],
        positions: np.ndarray | None = None,
        added: dict[str, _Added] | None = None,
    ) -> None:
        self._base = base
        self._columns = columns
        self._positions = positions
        self._added = dict(added or {})
        self._dtypes: dict[str, DtypeObj] = {}

    # --- shape ---------------------------------------------------------------------------

    @property
    def columns(self) -> pd.Index:
        return pd.Index(self._columns, dtype=object)

    def __len__(self) -> int:
        return self._base.rows if self._positions is None else len(self._positions)

    @property
    def cluster(self) -> str | None:
        """The address of the Dask scheduler whose workers can read this table's files."""
        return self._base.cluster

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), len(self._columns)

    @cached_property
    def index(self) -> pd.Index:
        index = self._base.index
        return index if self._positions is None else index[self._positions]

    def _index_of(self, start: int, stop: int) -> pd.Index:
        """The labels of rows [start, stop), without labelling a whole subset (160 MB at 20M)."""
        if self._positions is None or "index" in self.__dict__:
            return self.index[start:stop]
        return self._base.index[self._positions[start:stop]]

    @property
    def dtypes(self) -> pd.Series:
        """Each column's dtype as a read of it returns (a categorical's after the union)."""
        return pd.Series({c: self.dtype(c) for c in self._columns}, dtype=object)

    def dtype(self, column: str) -> DtypeObj:
        """The column's dtype as a read of it returns, read only when the partitions' written
        dtypes cannot say (an assigned column, dtypes that differ, categories to unite)."""
        known = self._dtypes if column in self._added else self._base.dtypes
        if column not in known:
            dtype = self._base.written_dtype(column)
            united = isinstance(dtype, pd.CategoricalDtype) and len(self._base.parts) > 1
            if column in self._added or dtype is None or united:
                dtype = self[column].dtype
            known[column] = dtype
        return known[column]

    # --- reads -----------------------------------------------------------------------------

    @overload
    def __getitem__(self, key: str) -> pd.Series: ...

    @overload
    def __getitem__(self, key: list[str]) -> pd.DataFrame: ...

    @overload
    def __getitem__(self, key: pd.Series | np.ndarray) -> "StoredTable": ...

    def __getitem__(
        self, key: str | list[str] | pd.Series | np.ndarray
    ) -> "pd.Series | pd.DataFrame | StoredTable":
        if isinstance(key, str):
            return self._column(key)
        if isinstance(key, list):
            return self.take(None, key)
        return self._where(np.asarray(key, dtype=bool))

    def __contains__(self, column: Hashable) -> bool:
        return column in self._columns

    def _column(self, column: str) -> pd.Series:
        if column not in self._columns:
            raise KeyError(column)
        added = self._added.get(column)
        if added is None:
            values = self._base.read(column)
            if self._positions is not None:
                values = values.iloc[self._positions]
        else:
            values = pd.read_pickle(added.path)
            if added.positions is not self._positions:
                values = values.iloc[self._relative(added.positions)]
        return values.set_axis(self.index).rename(column)

    def _gathered(self, column: str) -> pd.Series:
        """The column at this table's rows, each partition's taken and joined once."""
        assert self._positions is not None
        values = self._base.read_at(column, self._positions)
        if not same_dtype(values.dtype, wanted := self.dtype(column)):
            values = as_dtype(values, wanted)
        return values.set_axis(self._index_of(0, len(self))).rename(column)

    def _relative(self, held: np.ndarray | None) -> np.ndarray | slice:
        """Where this table's rows are among `held` base rows (a superset, both in order)."""
        if self._positions is None:
            return slice(None)
        if held is None:
            return self._positions
        return np.searchsorted(held, self._positions)

    def take(self, rows: np.ndarray | slice | None, columns: Sequence[str]) -> pd.DataFrame:
        """Return `columns` at `rows` (positions in this table; None: every row), read one
        column at a time so that only the rows taken are held."""
        taken = dict(zip(columns, self.columns_at(rows, columns), strict=True))
        if not taken:
            index = self.index if rows is None else self.index[rows]
            return pd.DataFrame(index=index)
        return pd.DataFrame(taken, copy=False)

    def columns_at(
        self, rows: np.ndarray | slice | None, columns: Sequence[str]
    ) -> Iterator[pd.Series]:
        """Yield each of `columns` at `rows` (as `take`), one column read at a time.

        Positions (in any order) are read a partition at a time: only the rows taken are
        held, never the whole column; their order and range are worked out once.
        Positions iloc takes otherwise (from the end, out of range, a row twice, not signed
        integers) read each column whole, with iloc's answer.
        """
        if missing := [c for c in columns if c not in self._columns]:
            raise KeyError(missing[0])
        stored = back = None
        if isinstance(rows, np.ndarray) and any(c not in self._added for c in columns):
            inside = rows.dtype.kind == "i" and len(rows) > 0
            if inside and rows.min() >= 0 and rows.max() < len(self):
                order = None if increasing(rows) else np.argsort(rows, kind="stable")
                ordered = rows if order is None else rows[order]
                if increasing(ordered):
                    stored = self.rows_at(ordered, self._columns)
                    back = None if order is None else np.argsort(order)
        for column in columns:
            if stored is not None and column not in self._added:
                values = stored._gathered(column)
                yield values if back is None else values.iloc[back]
                continue
            values = self._column(column)
            if isinstance(rows, slice):
                # A slice is a view that would keep the whole column alive: every column
                # read whole at once (a strided sample of 24 columns of 20M rows: 3.6 GiB).
                yield values.iloc[rows].copy()
            else:
                yield values if rows is None else values.iloc[rows]

    def to_pandas(self) -> pd.DataFrame:
        """Return the whole table in this process."""
        return self.take(None, self._columns)

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        """Yield `columns` of this table's rows a stored partition at a time, in order.

        Only one partition's rows of these columns are read at once (an assigned column is
        read whole, once); a categorical keeps the table's dtype (the union of the
        partitions' categories), so every chunk encodes alike. A table of no rows yields one
        empty frame.
        """
        pieces = self.part_chunks(columns)
        for piece in pieces:
            yield piece.read()
        if not pieces:
            yield self.take(None, list(columns))

    def part_chunks(self, columns: Sequence[str]) -> list[PartChunk]:
        """What `chunks` reads: each partition holding rows of this table, as a `PartChunk`
        (assigned columns read whole, once, and sliced)."""
        dtypes = {c: self.dtype(c) for c in columns}
        added = {c: self._column(c) for c in columns if c in self._added}
        pieces = []
        start = done = 0
        for part in self._base.parts:
            stop = start + part.rows
            if self._positions is None:
                local: np.ndarray | slice = slice(None)
                ahead = part.rows
            else:
                ahead = position_index(self._positions, stop) - done
                local = self._positions[done : done + ahead] - start
            if ahead:
                values = {c: a.iloc[done : done + ahead] for c, a in added.items()}
                pieces.append(PartChunk(part, local, dtypes, values, done, done + ahead))
            start, done = stop, done + ahead
        return pieces

    def rows_at(self, rows: np.ndarray, columns: Sequence[str]) -> "StoredTable":
        """Return `columns` of the rows at increasing positions `rows`, still on disk."""
        if not increasing(rows):
            raise ValueError("rows_at takes increasing positions")
        positions = rows if self._positions is None else self._positions[rows]
        kept = [c for c in columns if c in self._columns]
        if len(kept) < len(columns):
            raise KeyError(f"{sorted(set(columns) - set(kept))} not in the table")
        return StoredTable(self._base, list(columns), np.asarray(positions), self._added)

    # --- derived tables --------------------------------------------------------------------

    def _where(self, mask: np.ndarray) -> "StoredTable":
        if len(mask) != len(self):
            raise ValueError(f"a mask of {len(mask)} rows for a table of {len(self)}")
        kept = np.flatnonzero(mask)
        positions = kept if self._positions is None else self._positions[kept]
        return StoredTable(self._base, self._columns, positions, self._added)

    def drop(self, columns: Sequence[str]) -> "StoredTable":
        gone = set(columns)
        missing = gone - set(self._columns)
        if missing:
            raise KeyError(f"{sorted(missing)} not in the table")
        kept = [c for c in self._columns if c not in gone]
        added = {c: a for c, a in self._added.items() if c not in gone}
        return StoredTable(self._base, kept, self._positions, added)

    def assign(self, **columns: pd.Series) -> "StoredTable":
        """Return the table with these columns (of this table's rows) written to disk."""
        added = dict(self._added)
        for name, values in columns.items():
            if len(values) != len(self):
                raise ValueError(f"column {name!r} has {len(values)} rows, the table {len(self)}")
            path = self._base.directory.new_file("column")
            pd.Series(values, copy=False).reset_index(drop=True).to_pickle(path)
            added[name] = _Added(path, self._positions)
        order = self._columns + [c for c in columns if c not in self._columns]
        return StoredTable(self._base, order, self._positions, added)


Frame = pd.DataFrame | StoredTable
"""What the stages after the schema read: the table in memory, or stored on disk."""
CHUNK_ROWS = 1_000_000
"""Rows of an in-memory table a check reduces at a time (a stored one: a partition)."""
SameFrame = TypeVar("SameFrame", pd.DataFrame, StoredTable)
"""A stage that returns the table it was given returns it in the same form."""


def dtype_of(frame: Frame, column: str) -> DtypeObj:
    """Return a column's dtype without reading a stored table's values where it can."""
    return frame.dtype(column) if isinstance(frame, StoredTable) else frame[column].dtype


def take_rows(frame: Frame, rows: np.ndarray | slice, columns: list[str]) -> pd.DataFrame:
    """Return `columns` of the frame's `rows` (positions).

    In memory, rows first: selecting the columns first makes pandas consolidate (copy)
    every value of those columns before taking the rows, which costs more than the rows at
    a million rows. On disk, column by column.
    """
    if isinstance(frame, StoredTable):
        return frame.take(rows, columns)
    return frame.iloc[rows][columns]


def row_chunks(frame: Frame, columns: list[str] | None, rows: int) -> Iterator[pd.DataFrame]:
    """Yield `columns` (None: every column, as labelled) of the frame's rows in order, at
    most `rows` rows at a time in memory, a stored partition at a time on disk (one frame
    for a table of no rows)."""
    if isinstance(frame, StoredTable):
        for chunk in frame.chunks(list(frame.columns) if columns is None else columns):
            for start in range(0, max(len(chunk), 1), rows):
                yield chunk.iloc[start : start + rows]
        return
    for start in range(0, max(len(frame), 1), rows):
        chunk = frame.iloc[start : start + rows]
        yield chunk if columns is None else chunk[columns]


def column_chunks(frame: Frame, column: str, rows: int | None = None) -> Iterator[pd.Series]:
    """`row_chunks` of one column (CHUNK_ROWS rows at a time unless `rows`), as values."""
    return (c[column] for c in row_chunks(frame, [column], CHUNK_ROWS if rows is None else rows))


def rows_of(frame: Frame, rows: np.ndarray, columns: list[str]) -> Frame:
    """Return `columns` of the frame's rows (positions): in memory, as `take_rows`; on disk,
    a table still on disk when the positions increase (a time split's holdout), so that it is
    read a partition at a time (`row_chunks`)."""
    if isinstance(frame, StoredTable) and increasing(rows):
        return frame.rows_at(rows, columns)
    return take_rows(frame, rows, columns)
