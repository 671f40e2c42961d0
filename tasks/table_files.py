"""The files of a stored table (tasks/stored_table.py): one per partition, and who writes them.

A partition's file holds its index and then its columns, each a pickled array (every pandas
dtype, object columns of mixed values included, comes back as it went in), and `PartFile`
says where each starts and ends (the index kept apart: a column may have any name). The
files live in a temporary directory (`Directory`) removed when the last table reading it is
gone.

The flow writes the partitions it pulls from the cluster. A Dask worker that sees the same
directory (a local cluster, or a disk the cluster shares with the flow's machine) writes its
own partitions there instead (`Store`), and only their `PartFile` travels to the flow: the
rows are not serialised, sent and written a second time by the flow's single process. A
worker knows it sees the flow's directory by a token file the flow wrote there; a worker
that does not (another machine), or cannot write there (a disk it mounts read-only, a
quota), hands its rows back to the flow, which writes them.
"""

import os
import pickle
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype
from pandas.api.types import union_categoricals

from retrain_guard.tasks.time_units import one_time_unit

_TOKEN = ".retrain-guard-store"
DtypeObj = np.dtype | ExtensionDtype


class Directory:
    """The spill directory; removed when no table reads it any more (or at exit)."""

    def __init__(self, parent: str | None) -> None:
        where = os.path.expanduser(parent) if parent else None
        # Absolute: a worker (or a later chdir) resolves it to the same directory.
        self.path = Path(tempfile.mkdtemp(prefix="retrain-guard-table-", dir=where)).resolve()
        self._count = 0
        self._lock = threading.Lock()
        self._store: Store | None = None
        weakref.finalize(self, shutil.rmtree, self.path, True)

    def new_file(self, stem: str) -> Path:
        with self._lock:
            self._count += 1
            return self.path / f"{stem}-{self._count:06d}.pkl"

    def store(self) -> "Store":
        """Return where workers may write partitions here (the token written once).

        Raises:
            OSError: the token cannot be written.
        """
        with self._lock:
            if self._store is None:
                token = secrets.token_hex(16)
                (self.path / _TOKEN).write_text(token)
                self._store = Store(str(self.path), token)
            return self._store


@dataclass(frozen=True)
class PartFile:
    """One partition's file: where its index's and each column's pickle start and end, and
    its rows."""

    path: Path
    index: tuple[int, int]
    offsets: dict[str, tuple[int, int]]
    rows: int
    # Each column's dtype as written (the schema's, which may differ from the read's).
    dtypes: dict[str, DtypeObj]

    @property
    def columns(self) -> list[str]:
        return list(self.offsets)


def write_part(path: Path, frame: pd.DataFrame) -> PartFile:
    offsets: dict[str, tuple[int, int]] = {}
    with path.open("wb") as out:
        pickle.dump(frame.index, out, protocol=pickle.HIGHEST_PROTOCOL)
        index = (0, out.tell())
        for column in frame.columns:
            start = out.tell()
            pickle.dump(frame[column].array, out, protocol=pickle.HIGHEST_PROTOCOL)
            offsets[str(column)] = (start, out.tell())
    dtypes = {str(c): t for c, t in frame.dtypes.items()}
    return PartFile(path, index, offsets, len(frame), dtypes)


def read_array(part: PartFile, name: str | None) -> Any:
    """Read a column of the partition (None: its index)."""
    start, end = part.index if name is None else part.offsets[name]
    with part.path.open("rb") as source:
        source.seek(start)
        return pickle.loads(source.read(end - start))


@dataclass(frozen=True)
class Store:
    """A stored table's directory as a worker addresses it, with the flow's token."""

    path: str
    token: str

    def visible(self) -> bool:
        """Whether this process sees the flow's directory (its token file, same token)."""
        try:
            return (Path(self.path) / _TOKEN).read_text() == self.token
        except OSError:
            return False

    def write(self, number: int, frames: Sequence[pd.DataFrame]) -> tuple[PartFile, ...] | None:
        """Write partition `number`'s frames (its pieces, in order); None when this process
        does not see the flow's directory or cannot write there (what it wrote is removed):
        the flow then writes them."""
        if not self.visible():
            return None
        written: list[PartFile] = []
        try:
            for piece, frame in enumerate(frames):
                path = Path(self.path) / f"part-{number:06d}-{piece:04d}.pkl"
                written.append(write_part(path, frame))
        except OSError:
            for part in written:
                part.path.unlink(missing_ok=True)
            Path(self.path, f"part-{number:06d}-{len(written):04d}.pkl").unlink(missing_ok=True)
            return None
        return tuple(written)


def joined(arrays: list[Any], dtype: object) -> pd.Series:
    """Join one column's partitions as Dask joins them (categoricals by union)."""
    if not arrays:
        return pd.Series([], dtype=dtype)  # type: ignore[call-overload]
    if all(isinstance(a, pd.Categorical) for a in arrays) and len(arrays) > 1:
        return pd.Series(union_categoricals(arrays), copy=False)
    # Each array keeps its own dtype: pandas would read an object array of text as `str`.
    parts = [pd.Series(a, dtype=a.dtype, copy=False) for a in arrays]
    if len(parts) == 1:
        return parts[0]
    return pd.concat(one_time_unit(parts), ignore_index=True)


def same_dtype(dtype: DtypeObj, wanted: DtypeObj) -> bool:
    """Whether values of `dtype` are already of `wanted`: for categoricals, the same
    categories in the same order (pandas calls two unordered categoricals of the same
    categories equal in any order, but their codes differ)."""
    if isinstance(dtype, pd.CategoricalDtype) and isinstance(wanted, pd.CategoricalDtype):
        return dtype.ordered == wanted.ordered and dtype.categories.equals(wanted.categories)
    return bool(dtype == wanted)


def as_dtype(values: pd.Series, wanted: DtypeObj) -> pd.Series:
    """Return the values in `wanted`; categories recoded into its order (astype leaves a
    categorical whose dtype pandas calls equal as it is)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and isinstance(wanted, pd.CategoricalDtype):
        return values.cat.set_categories(wanted.categories, ordered=wanted.ordered)
    return values.astype(wanted)


@dataclass(frozen=True, eq=False)
class PartChunk:
    """One stored partition's rows of some columns, as `StoredTable.chunks` yields them,
    readable in any process that sees the table's files (a Dask worker of the flow's disk).

    `rows` are the partition's rows kept (positions in its file: their labels are its
    index's at those positions), `dtypes` the table's dtype of each column (a categorical:
    every partition's categories), `added` the values of columns the flow assigned, already
    at these rows; `start` and `stop` are the rows' positions in the table.
    """

    part: PartFile
    rows: np.ndarray | slice
    dtypes: dict[str, DtypeObj]
    added: dict[str, pd.Series]
    start: int
    stop: int

    def __getstate__(self) -> dict[str, Any]:
        """Rows kept travel as one bit per row of the partition: a subset of most of a
        partition's rows is an eighth of a byte a row, not the 8 of its positions."""
        state = dict(self.__dict__)
        if isinstance(self.rows, np.ndarray):
            kept = np.zeros(self.part.rows, dtype=bool)
            kept[self.rows] = True
            state["rows"] = np.packbits(kept)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["rows"], np.ndarray):
            bits = np.unpackbits(state["rows"], count=state["part"].rows).view(bool)
            state["rows"] = np.flatnonzero(bits)
        self.__dict__.update(state)

    def read(self) -> pd.DataFrame:
        index = read_array(self.part, None)[self.rows]
        taken = {}
        for column, dtype in self.dtypes.items():
            if column in self.added:
                values = self.added[column]
            else:
                values = joined([read_array(self.part, column)], dtype).iloc[self.rows]
            if not same_dtype(values.dtype, dtype):
                values = as_dtype(values, dtype)  # a partition's own dtype
            taken[column] = values.set_axis(index)
        return pd.DataFrame(taken, index=index, copy=False)
