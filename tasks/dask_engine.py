"""The Dask engine's cluster and reader: `compute.engine: dask`.

`dask_cluster` opens the run's client: on a LocalCluster of `compute.dask_workers` processes,
or on the scheduler at `compute.dask_address`; it is closed when the run ends, however it
ends. `read_dask` reads the table as a Dask DataFrame: a Parquet file, a (hive-partitioned)
dataset directory or an fsspec URL (credentials as tasks/sources.py resolves them), or CSV.
Every partition's index is its rows' global row numbers, as the pandas engine numbers them.
The schema stage on the partitions lives in tasks/dask_schema.py.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster
from fsspec.implementations.local import LocalFileSystem
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.params import ComputeParams, DataParams
from retrain_guard.tasks.engine import ADDRESS_SETTING, ClusterUnreachable
from retrain_guard.tasks.load import Unreadable, parse_iso_dates
from retrain_guard.tasks.sources import InputError, Location, file_kind, first_line, locate, said

CONNECT_TIMEOUT = "10s"


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
    # No dashboard: it would need a free port and bokeh, and nobody looks at it here.
    with (
        LocalCluster(
            n_workers=compute.dask_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


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
            frame = _read(location)
        # The first rows give the dtypes the partitions take (ISO date strings: datetimes).
        meta = _as_read(frame.get_partition(0).head(1000, compute=True)).head(0)
        return _numbered(frame.map_partitions(_as_read, meta=meta))
    except InputError:
        raise
    except FileNotFoundError as exc:
        raise InputError(said(location, "no such file, key or bucket", exc)) from exc
    except Exception as exc:  # pyarrow, fsspec and the file system's own errors
        raise InputError(said(location, "cannot be read", exc)) from exc


def _read(location: Location) -> dd.DataFrame:
    fs, path = location.fs, location.path
    if fs.isdir(path):
        return dd.read_parquet(path, filesystem=fs, index=False)
    kind = file_kind(path, location.name)
    if kind == "parquet":
        return dd.read_parquet(path, filesystem=fs, index=False)
    url = fs.unstrip_protocol(path)
    return dd.read_csv(url, storage_options=dict(fs.storage_options), dtype=object).pipe(
        _typed_csv, url, fs
    )


def _typed_csv(frame: dd.DataFrame, url: str, fs: object) -> dd.DataFrame:
    """Give the CSV's columns the dtypes pandas infers from the whole file's first block.

    dd.read_csv infers dtypes from a sample and fails on a later partition that disagrees;
    read as text first, each column then takes the dtype pandas gives the sampled rows,
    converted per partition (a value that does not fit becomes missing... not silently:
    pandas raises, and the read fails naming the file).
    """
    sample = pd.read_csv(fs.open(url), nrows=10_000, low_memory=False)  # type: ignore[attr-defined]
    dtypes = {str(c): sample[c].dtype for c in sample.columns}
    return frame.map_partitions(_retyped, dtypes, meta=sample.head(0))


def _retyped(part: pd.DataFrame, dtypes: dict[str, object]) -> pd.DataFrame:
    return part.astype(dtypes)  # type: ignore[arg-type]


def _as_read(part: pd.DataFrame) -> pd.DataFrame:
    """Name columns as strings, give hive partition columns their values' dtypes, and read
    ISO date strings as datetimes, as tasks/load.py does for the pandas engine."""
    part = part.set_axis([str(c) for c in part.columns], axis=1)
    widened = {
        str(c): _uncategorised(part[c])
        for c in part.columns
        if isinstance(part[c].dtype, pd.CategoricalDtype)
    }
    part = part.assign(**widened) if widened else part
    return parse_iso_dates(part)


def _uncategorised(values: pd.Series) -> pd.Series:
    categories = values.cat.categories
    if pd.api.types.is_integer_dtype(categories.dtype):
        return values.astype("int64")
    return values.astype(categories.dtype)


def _numbered(frame: dd.DataFrame) -> dd.DataFrame:
    """Index every partition by its rows' global row numbers (partitions restart at 0):
    the offsets come from the partitions' lengths, counted on the cluster."""
    lengths = [int(n) for n in frame.map_partitions(len).compute()]
    offsets = [sum(lengths[:i]) for i in range(len(lengths))]
    return frame.map_partitions(_renumber, offsets, meta=frame._meta, align_dataframes=False)


def _renumber(
    part: pd.DataFrame, offsets: list[int], partition_info: dict[str, int] | None = None
) -> pd.DataFrame:
    offset = offsets[partition_info["number"]] if partition_info else 0
    return part.set_axis(pd.RangeIndex(offset, offset + len(part)))


def collect(frame: dd.DataFrame) -> pd.DataFrame:
    """Return the whole table in this process (what the stages not moved yet need)."""
    collected: pd.DataFrame = frame.compute()
    return collected


def first_rows(frame: dd.DataFrame, rows: int = 10_000) -> pd.DataFrame:
    """Return the first rows of the first partition (what is measured before the schema)."""
    return frame.get_partition(0).head(rows, compute=True)


def _read_or_unreadable(source: DataParams) -> dd.DataFrame | Unreadable:
    """Read the table as a Dask DataFrame; an unusable source is returned as Unreadable."""
    try:
        return read_dask(source)
    except InputError as exc:
        return Unreadable(str(exc))


read_dask_task = task(name="load-data-dask", cache_policy=NO_CACHE, persist_result=False)(
    _read_or_unreadable
)
