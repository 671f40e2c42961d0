"""A reduction's per-partition step, run where the table's partitions are: `map_parts`.

A check that reduces a column partition by partition (histograms, counts, sums of ranks,
row hashes) hands its per-partition step to `map_parts` (or `iter_parts`), which returns the
step's result for each partition in order; the check combines them. On a table the Dask
engine stored where the workers of a scheduler at `compute.dask_address` wrote it
(tasks/stored_table.py: a spill directory on a disk they share with the flow's machine), the
steps run on that cluster while it is open, each worker reading its partition's file
itself: only the results travel to the flow. Anywhere else they run in the flow's process,
one after another, with the same results: the pandas engine's table in memory, a table the
flow wrote for workers that do not see its disk, the cluster already closed, and a local
cluster started for the run, or an in-process scheduler, whose workers share the flow's
cores: on one 2-core machine at 20M rows, steps on its worker threads took the leakage
checks from 30 s to 57 s, on its worker processes to 88 s and the process tree's peak from
1.59 GiB to 2.11 GiB (benchmarks/RESULTS.md, "Dask engine: leakage steps on the cluster").

A step is a module-level function (a remote worker unpickles it by name) called as
`step(chunk, *arguments)`; an argument wrapped in `Rows` (increasing row positions of the
table) reaches it as the positions among the chunk's rows, one wrapped in `Aligned` (an
array of one value per row) as the chunk's slice of it, any other argument as it is (on a
cluster, scattered to the workers once unless a plain scalar).
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from retrain_guard.tasks.positions import position_index
from retrain_guard.tasks.stored_table import CHUNK_ROWS, Frame, StoredTable, row_chunks
from retrain_guard.tasks.table_files import PartChunk

T = TypeVar("T")


@dataclass(frozen=True)
class Rows:
    """Increasing row positions of the table; a step gets those within its chunk, from 0."""

    positions: np.ndarray


@dataclass(frozen=True)
class Aligned:
    """One value per row of the table; a step gets its chunk's slice."""

    values: np.ndarray


def _of_rows(argument: object, start: int, stop: int) -> object:
    if isinstance(argument, Rows):
        positions = argument.positions
        lo, hi = position_index(positions, start), position_index(positions, stop)
        return positions[lo:hi] - start
    if isinstance(argument, Aligned):
        return argument.values[start:stop]
    return argument


def map_parts(
    frame: Frame, columns: Sequence[str], step: Callable[..., T], *arguments: object
) -> list[T]:
    """Return `step(chunk, *arguments)` for each partition's chunk of `columns`, in order
    (see the module docstring); a table of no rows gives one step, of its empty chunk."""
    return list(iter_parts(frame, columns, step, *arguments))


def iter_parts(
    frame: Frame, columns: Sequence[str], step: Callable[..., T], *arguments: object
) -> Iterator[T]:
    """`map_parts`, its results yielded in order as they come: on the cluster, a few per
    worker are computed ahead of the one taken (tasks/dask_engine.py PULL_AHEAD), so that
    results as large as a partition's rows pass through the flow a few at a time."""
    if not isinstance(frame, StoredTable):
        start = 0
        for chunk in row_chunks(frame, list(columns), CHUNK_ROWS):
            stop = start + len(chunk)
            yield step(chunk, *(_of_rows(a, start, stop) for a in arguments))
            start = stop
        return
    pieces = frame.part_chunks(columns)
    if not pieces:
        yield step(frame.take(None, list(columns)), *(_of_rows(a, 0, 0) for a in arguments))
        return
    client = _client(frame)
    if client is None or len(pieces) == 1:
        for piece in pieces:
            yield step(piece.read(), *(_of_rows(a, piece.start, piece.stop) for a in arguments))
        return
    yield from _on_cluster(client, pieces, step, arguments)


def steps_on_cluster(frame: Frame) -> bool:
    """Whether steps over this table run on its cluster (while that is open): a table
    stored by the workers of a scheduler given by address, not one of this process."""
    address = frame.cluster if isinstance(frame, StoredTable) else None
    return address is not None and not address.startswith("inproc://")


def _client(frame: StoredTable) -> Any:
    """The open client of the cluster whose workers wrote the table, or None."""
    if not steps_on_cluster(frame):
        return None
    try:
        from distributed import get_client  # the Dask engine's extra: present with its table
    except ImportError:
        return None
    try:
        client = get_client()
    except ValueError:  # no client: the run's cluster is closed
        return None
    if client.status != "running" or getattr(client.scheduler, "address", None) != frame.cluster:
        return None
    return client


def _on_cluster(
    client: Any, pieces: list[PartChunk], step: Callable[..., T], arguments: tuple[object, ...]
) -> Iterator[T]:
    """Run the steps on the cluster: the shared arguments scattered once, each partition's
    own arguments with its task; yield the results in order, as `dask_engine.pulled` takes
    them (a few per worker ahead). A worker that cannot read its partition's file (one
    that joined the cluster after the table was written, elsewhere) leaves that step to
    the flow, which reads the file on its own disk. An argument the workers cannot unpickle
    (its class's module installed only where the flow runs: a custom estimator), or a step
    that fails on a worker, leaves that step and every later one to the flow, where a
    failure of the step itself raises as it would without a cluster."""
    from distributed import Future

    from retrain_guard.tasks.dask_engine import PULL_AHEAD

    def in_flow(piece: PartChunk) -> T:
        return step(piece.read(), *(_of_rows(a, piece.start, piece.stop) for a in arguments))

    try:
        shared = [
            client.scatter(a, broadcast=True, hash=False) if _shared(a) else a for a in arguments
        ]
    except Exception:  # a worker could not unpickle an argument: the flow runs the steps
        yield from map(in_flow, pieces)
        return
    window = PULL_AHEAD * max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    futures: list[Any] = []

    def submit(piece: PartChunk) -> None:
        own = (_of_rows(a, piece.start, piece.stop) for a in shared)
        futures.append(client.submit(_read_and_step, piece, step, *own, pure=False))

    failed = False  # a step failed on a worker: the flow runs the rest
    try:
        for piece in pieces[:window]:
            submit(piece)
        for number, piece in enumerate(pieces):
            future = futures[number] if number < len(futures) else None
            result: T | _Unread = _Unread("a step failed on a worker")
            if future is not None and not failed:
                try:
                    result = future.result()
                except Exception:  # rerun in the flow, where the step's own error raises
                    failed = True
                    client.cancel([f for f in futures if isinstance(f, Future)])
            if future is not None:
                future.release()
                futures[number] = None
            if not failed and number + window < len(pieces):
                submit(pieces[number + window])
            yield in_flow(piece) if isinstance(result, _Unread) else result
    finally:
        client.cancel([f for f in [*futures, *shared] if isinstance(f, Future)])


def _shared(argument: object) -> bool:
    """Whether an argument goes to the workers once (scattered) rather than with each
    task: anything but a partition's own (`Rows`, `Aligned`) and a plain scalar."""
    plain = str | bytes | int | float | bool | np.generic | pd.Timedelta | pd.Timestamp
    return not (argument is None or isinstance(argument, Rows | Aligned | plain))


@dataclass(frozen=True)
class _Unread:
    """A worker could not read the partition's file: the flow runs that step."""

    error: str


def _read_and_step(piece: PartChunk, step: Callable[..., T], *arguments: object) -> T | _Unread:
    try:
        chunk: pd.DataFrame = piece.read()
    except OSError as exc:  # the file is not on this worker's disk
        return _Unread(str(exc))
    return step(chunk, *arguments)
