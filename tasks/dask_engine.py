"""The Dask engine's cluster and reader: `compute.engine: dask`.

`dask_cluster` opens the run's client: on a LocalCluster of `compute.dask_workers` worker
threads in the flow's own process (processes with `compute.dask_processes`), or on the
scheduler at `compute.dask_address`; the flow closes it once the checked table is stored on
its disk (tasks/stored_table.py), or when the run ends otherwise, however it ends.
`read_dask` reads the table as a Dask DataFrame: a Parquet file, a (hive-partitioned) dataset
directory or an fsspec URL (credentials as tasks/sources.py resolves them), or CSV.
Every partition's index is its rows' global row numbers, as the pandas engine numbers them.
The columns are typed from every partition's summary (tasks/dask_survey.py); the schema stage
on the partitions lives in tasks/dask_schema.py. `unusable_roles_dask` judges the role columns
in every partition.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import dask
import dask.dataframe as dd
import pandas as pd
from dask.dataframe.dispatch import concat
from dask.delayed import Delayed
from distributed import Client, Future, LocalCluster, as_completed, get_client
from fsspec.implementations.local import LocalFileSystem
from pandas.api.types import is_object_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.params import ComputeParams, DataParams
from retrain_guard.tasks import dask_slices
from retrain_guard.tasks.dask_survey import (
    OBJECT_BOOLEANS,
    as_booleans,
    read_dtypes,
    role_kinds,
    survey,
    widened,
)
from retrain_guard.tasks.engine import ADDRESS_SETTING, ClusterUnreachable
from retrain_guard.tasks.load import DateDtype, Unreadable, read_iso_as
from retrain_guard.tasks.quirks import column_kind, role_columns
from retrain_guard.tasks.sources import (
    InputError,
    Location,
    file_kind,
    first_line,
    locate,
    parquet_dataset,
    said,
)
from retrain_guard.tasks.time_units import frames_in_one_time_unit

T = TypeVar("T")
CONNECT_TIMEOUT = "10s"
# Bytes of CSV text per partition (Dask's default).
CSV_BLOCKSIZE = 64 * 2**20
# Uncompressed Parquet bytes per partition, at most (a larger row group is one partition).
PARTITION_BYTES = 32 * 2**20


@contextmanager
def dask_cluster(compute: ComputeParams) -> Iterator[Client]:
    """Yield a client of the run's cluster; close it (and a local cluster) in every case.

    While it is open, the client is Dask's default scheduler: the engine's computations
    run on the cluster.

    Raises:
        ClusterUnreachable: no scheduler answers at compute.dask_address.
    """
    if compute.dask_address:
        try:
            client = Client(compute.dask_address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterUnreachable(
                f"{ADDRESS_SETTING} {compute.dask_address!r}: no Dask scheduler could be "
                f"reached ({first_line(exc)}); start one there, or leave {ADDRESS_SETTING} "
                "empty for a local cluster"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    # The local workers are threads of the flow's process unless compute.dask_processes:
    # each worker process holds its own 0.2 GiB of imports and its own heap, and at 20M
    # rows the schema stage's tree peaked at 1.74 GiB with two of them against 1.29 as
    # threads, in the same time (benchmarks/RESULTS.md, issue 13). A worker thread shares
    # the flow's memory, so Dask's per-worker memory limit (pause and spill at a share of
    # the process's memory) would judge the flow's own arrays: threads run without one.
    # No dashboard: it would need a free port and bokeh, and nobody looks at it here.
    processes = compute.dask_processes
    with (
        _quiet_closing(),
        LocalCluster(
            n_workers=compute.dask_workers,
            threads_per_worker=1,
            processes=processes,
            memory_limit="auto" if processes else 0,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextmanager
def _quiet_closing() -> Iterator[None]:
    """Keep Dask's note of a message to a worker that already closed out of the run's log.

    As a local cluster closes, the scheduler may still send to a worker that has gone: Dask
    logs it at INFO with a traceback (distributed.batched), though nothing is lost.
    """
    logger = logging.getLogger("distributed.batched")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def read_dask(source: DataParams) -> dd.DataFrame:
    """Return the table as a Dask DataFrame indexed by global row number.

    Reads only the metadata and the first partition here; the rows are read on the cluster.

    Raises:
        InputError: a SQL source (not read by the Dask engine yet), or a source that cannot
            be located or read; the message names it without secrets.
    """
    if source.sql is not None:
        raise InputError(
            "data.sql: the Dask engine reads files, dataset directories and URLs only; "
            "use compute.engine 'pandas' for a SQL source"
        )
    where = locate(source)
    location = (
        Location(LocalFileSystem(), str(where), str(where)) if isinstance(where, Path) else where
    )
    try:
        # Columns take the dtypes the pandas engine reads, not Dask's own pyarrow strings.
        with dask.config.set({"dataframe.convert-string": False}):
            frame, csv = _read(location)
            # Every column is decided once for the whole table, then alike in each partition.
            surveyed = survey(frame, csv)
            if csv:
                frame = _typed_csv(location, surveyed.csv_dtypes)
        read = partial(_as_read, dates=surveyed.dates)
        meta = read(frame.get_partition(0).head(1000, compute=True)).head(0)
        return _numbered(frame.map_partitions(read, meta=meta), surveyed.rows)
    except InputError:
        raise
    except FileNotFoundError as exc:
        raise InputError(said(location, "no such file, key or bucket", exc)) from exc
    except Exception as exc:  # pyarrow, fsspec and the file system's own errors
        raise InputError(said(location, "cannot be read", exc)) from exc


def _read(location: Location) -> tuple[dd.DataFrame, bool]:
    """Return the table as read, and whether it is a CSV read as text (dtypes not decided)."""
    fs, path = location.fs, location.path
    if fs.isdir(path) or file_kind(path, location.name) == "parquet":
        # A directory's files are the ones the pandas engine takes (tasks/sources.py), in
        # its order, with hive partitions below the directory: Dask's own listing takes
        # others (.parq names, names under "_" or ".", a _metadata file's list).
        dataset = parquet_dataset(location)
        # Partitions of whole row groups up to PARTITION_BYTES: Dask's default joins a
        # file's row groups up to 256 MiB stored, 4M rows (1 GiB in pandas) of a 27-column
        # table, and a worker takes several times its partition in the schema stage.
        frame = dd.read_parquet(
            path if dataset is None else list(dataset.files),
            filesystem=fs,
            index=False,
            split_row_groups="adaptive",
            blocksize=PARTITION_BYTES,
            **({} if dataset is None else {"dataset": {"partition_base_dir": path.rstrip("/")}}),
        )
        # A row group larger than that is read in slices (tasks/dask_slices.py).
        sliced = dask_slices.sliced_parquet(location, dataset, frame, dask_slices.SLICE_BYTES)
        return (frame if sliced is None else sliced), False
    return _csv(location, dtype=object), True


def _csv(location: Location, dtype: object) -> dd.DataFrame:
    fs = location.fs
    url = fs.unstrip_protocol(location.path)
    return dd.read_csv(
        url, storage_options=dict(fs.storage_options), dtype=dtype, blocksize=CSV_BLOCKSIZE
    )


def _typed_csv(location: Location, dtypes: dict[str, str]) -> dd.DataFrame:
    """Read the CSV again with the dtypes pandas infers for the whole file.

    dd.read_csv infers dtypes from a sample and fails on a later partition that disagrees
    (a blank after the sample in an integer column, a word in a numeric one); the dtypes
    come instead from every partition's text (tasks/dask_survey.py), so every value fits.
    """
    booleans = [c for c, d in dtypes.items() if d == OBJECT_BOOLEANS]
    frame = _csv(location, dtype=read_dtypes(dtypes))
    return frame.map_partitions(as_booleans, booleans) if booleans else frame


def _as_read(part: pd.DataFrame, dates: dict[str, DateDtype]) -> pd.DataFrame:
    """Name columns as strings, give hive partition columns their values' dtypes, and read
    the ISO date columns the survey decided as datetimes, as tasks/load.py reads them."""
    part = widened(part)
    parsed = {c: read_iso_as(part[c], dtype) for c, dtype in dates.items()}
    return part.assign(**parsed) if parsed else part


def _numbered(frame: dd.DataFrame, lengths: list[int]) -> dd.DataFrame:
    """Index every partition by its rows' global row numbers (partitions restart at 0):
    the offsets come from the partitions' lengths, counted on the cluster."""
    offsets = [sum(lengths[:i]) for i in range(len(lengths))]
    return frame.map_partitions(_renumber, offsets, meta=frame._meta, align_dataframes=False)


def _renumber(
    part: pd.DataFrame, offsets: list[int], partition_info: dict[str, int] | None = None
) -> pd.DataFrame:
    offset = offsets[partition_info["number"]] if partition_info else 0
    return part.set_axis(pd.RangeIndex(offset, offset + len(part)))


# Partitions computed ahead of the one being written, per worker: enough to keep the
# workers busy, few enough that their results do not pile up in the workers' memory.
PULL_AHEAD = 2


def cluster_address() -> str | None:
    """The address of the scheduler at compute.dask_address, whose workers may read the
    table they stored (tasks/part_map.py); None for a local cluster started for the run,
    whose workers share the flow's machine: the leakage checks' steps run faster in the
    flow there (benchmarks/RESULTS.md, "Dask engine: leakage steps on the cluster")."""
    client = get_client()
    address = getattr(client.scheduler, "address", None)
    return None if client.cluster is not None or address is None else str(address)


def pulled(tasks: Sequence[Delayed], take: Callable[[int, Any], T]) -> list[T]:
    """Compute `tasks` on the cluster a few at a time; hand each result to `take` with its
    number as it arrives; return what `take` returned, in the tasks' order.

    At most PULL_AHEAD results per worker are computed and not yet taken, so a table's
    partitions pass through this process one by one instead of all at once. When a task or
    `take` fails, the tasks not finished are cancelled before the error goes on (a task
    already running on a worker thread still ends on its own; its result is dropped).
    """
    client = get_client()
    window = PULL_AHEAD * max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    results: dict[int, T] = {}
    pending = iter(enumerate(tasks))
    numbers: dict[Future, int] = {}
    running = as_completed()
    try:
        for number, delayed in islice(pending, window):
            future = client.compute(delayed)
            numbers[future] = number
            running.add(future)
        for future in running:
            number = numbers.pop(future)
            result = future.result()
            future.release()
            results[number] = take(number, result)
            del result
            for following, delayed in islice(pending, 1):
                started = client.compute(delayed)
                numbers[started] = following
                running.add(started)
    except BaseException:
        client.cancel(list(numbers))
        raise
    return [results[n] for n in sorted(results)]


def collect(frame: dd.DataFrame) -> pd.DataFrame:
    """Return the whole table in this process (what the stages not moved yet need).

    Joined as Dask joins partitions (categoricals by union), after a datetime column
    whose files were written in different units is put in one (tasks/time_units.py):
    pandas would join them in the finest, which a date past 2262 in a coarser file does
    not fit.
    """
    parts = dask.compute(*frame.to_delayed())
    collected: pd.DataFrame = concat(frames_in_one_time_unit(list(parts)))
    return collected


def unusable_roles_dask(frame: dd.DataFrame, data: DataParams) -> list[str]:
    """Return the role columns whose values no check can use in any partition (quirks.py
    unusable_roles on the whole table; object columns judged partition by partition)."""
    meta = frame._meta
    roles = role_columns(meta, data)
    kinds = {c: column_kind(meta[c]) for c in roles}
    kinds.update(role_kinds(frame, [c for c in roles if is_object_dtype(meta[c].dtype)]))
    return [c for c in roles if kinds[c] is not None]


def _read_or_unreadable(source: DataParams) -> dd.DataFrame | Unreadable:
    """Read the table as a Dask DataFrame; an unusable source is returned as Unreadable."""
    try:
        return read_dask(source)
    except InputError as exc:
        return Unreadable(str(exc))


read_dask_task = task(name="load-data-dask", cache_policy=NO_CACHE, persist_result=False)(
    _read_or_unreadable
)
