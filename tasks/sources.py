"""Where a table file lives: local files, Parquet dataset directories and fsspec URLs.

Holds what every table reader shares (InputError, Header, the supported file kinds) and the
readers of the places beyond one local file: a directory holding a (hive-partitioned)
Parquet dataset, and s3://, gs://, file:// URLs whose credentials come from a prefect-aws
block (data.credentials_block) or from data.storage_options. Errors name the source
without its secrets (tasks/masking.py). Local single files are read by tasks/load.py.
"""

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from retrain_guard.schemas.params import DataParams, merge
from retrain_guard.tasks.masking import mask_url, option_secrets, redact

SUPPORTED = (".csv", ".parquet", ".pq")
_URL = re.compile(r"^[A-Za-z][\w+.-]*://")


class InputError(ValueError):
    """The input cannot be used as given; the message names the file, column or setting."""


@dataclass(frozen=True)
class Header:
    """A table's column names as a reader sees them, and the names its header repeats."""

    columns: list[str]
    duplicates: list[str]

    @classmethod
    def of(cls, table: pd.DataFrame) -> "Header":
        """Return an in-memory table's columns and the names it repeats."""
        repeated = table.columns[table.columns.duplicated()]
        return cls([str(c) for c in table.columns], list(dict.fromkeys(map(str, repeated))))


def file_kind(name: str, shown: object) -> str:
    """Return 'csv' or 'parquet' from a file name's suffix; `shown` names it in the error."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(
            f"{shown}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet"
        )
    return "parquet" if suffix in (".parquet", ".pq") else "csv"


def parquet_columns(schema: pa.Schema) -> tuple[list[str], list[str]]:
    """Return a Parquet schema's names, and its columns: the names but a pandas index."""
    names = list(schema.names)
    # pandas stores a named or non-default index as columns that read_parquet turns back
    # into the index: they are not columns of the table.
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    hidden = {c for c in index if isinstance(c, str)}
    return names, [name for name in names if name not in hidden]


def header_of(names: list[str], columns: list[str], shown: object) -> Header:
    """Return the Header of the names read; a table without columns is an InputError."""
    if not columns:
        raise InputError(f"{shown}: has no columns")
    repeated = {name for name in names if name != "" and names.count(name) > 1}
    return Header(columns, [name for name in dict.fromkeys(names) if name in repeated])


def is_url(path: str) -> bool:
    """Return whether a path is a URL with a scheme (s3://, gs://, file://...)."""
    return bool(_URL.match(path))


@dataclass(frozen=True)
class Location:
    """A table file or Parquet dataset on a file system, with what reading it needs."""

    fs: fsspec.AbstractFileSystem
    path: str
    name: str
    secrets: tuple[str, ...] = field(default=())


def locate(source: str | Path | DataParams) -> Path | Location:
    """Return a local file as its Path (read as before), anything else as a Location.

    Raises:
        InputError: the credentials block cannot be loaded, or the URL is not supported.
    """
    if not isinstance(source, DataParams):
        source = DataParams.model_construct(path=str(source), label="-")  # as given
    path = str(source.path)
    if not (source.credentials_block or source.storage_options or is_url(path)):
        return (
            Location(LocalFileSystem(), path, path) if path and Path(path).is_dir() else Path(path)
        )
    options: dict[str, Any] = {}
    if source.credentials_block:
        block = load_credentials_block(source.credentials_block)
        options = block.options
        if not is_url(path) and block.prefix:
            path = f"{block.prefix}/{path.lstrip('/')}"
    options = merge(options, source.storage_options)
    return _fsspec_location(path, options, (*source.secrets(), *option_secrets(options)))


def _fsspec_location(url: str, options: dict[str, Any], secrets: tuple[str, ...]) -> Location:
    name = mask_url(url)
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError, TypeError) as exc:
        raise InputError(redact(f"{name}: cannot be opened: {first_line(exc)}", secrets)) from exc
    return Location(fs, path, name, secrets)


@dataclass(frozen=True)
class BlockOptions:
    """fsspec storage options from a credentials block; `prefix` is an S3Bucket's bucket."""

    options: dict[str, Any]
    prefix: str | None = None


def load_credentials_block(name: str) -> BlockOptions:
    """Return the storage options of a prefect-aws AwsCredentials, MinIOCredentials or
    S3Bucket block, named 'aws-credentials/NAME', 's3-bucket/NAME' or a bare NAME.

    Raises:
        InputError: prefect-aws is not installed, or no such block can be loaded.
    """
    try:
        from prefect_aws import AwsCredentials, S3Bucket
    except ImportError as exc:
        raise InputError(
            "data.credentials_block needs prefect-aws (pip install 'retrain-guard[s3]')"
        ) from exc
    kinds: dict[str, Any] = {"aws-credentials": AwsCredentials, "s3-bucket": S3Bucket}
    kind, _, bare = name.rpartition("/")
    if kind and kind not in kinds:
        raise InputError(
            f"data.credentials_block {name!r}: expected an aws-credentials/ or s3-bucket/ block"
        )
    for block_type in [kinds[kind]] if kind else list(kinds.values()):
        try:
            block = block_type.load(bare)
        except Exception:  # a missing block or an unreachable Prefect API: try the next type
            continue
        if isinstance(block, S3Bucket):
            prefix = "/".join(p.strip("/") for p in (block.bucket_name, block.bucket_folder) if p)
            return BlockOptions(_credential_options(block.credentials), f"s3://{prefix}")
        return BlockOptions(_credential_options(block))
    raise InputError(
        f"data.credentials_block {name!r}: no such AwsCredentials or S3Bucket block could be "
        "loaded from the Prefect API"
    )


def _credential_options(credentials: Any) -> dict[str, Any]:
    """Return s3fs storage options of an AwsCredentials or MinIOCredentials block."""
    if credentials is None:
        return {}
    key = getattr(credentials, "aws_access_key_id", None) or getattr(
        credentials, "minio_root_user", None
    )
    secret = getattr(credentials, "aws_secret_access_key", None) or getattr(
        credentials, "minio_root_password", None
    )
    options: dict[str, Any] = {}
    if key:
        options["key"] = key
    if secret is not None:
        options["secret"] = secret.get_secret_value()
    if getattr(credentials, "aws_session_token", None):
        options["token"] = credentials.aws_session_token
    if getattr(credentials, "profile_name", None):
        options["profile"] = credentials.profile_name
    client: dict[str, Any] = {}
    if credentials.region_name:
        client["region_name"] = credentials.region_name
    parameters = credentials.aws_client_parameters
    if parameters.endpoint_url:
        client["endpoint_url"] = parameters.endpoint_url
    if parameters.verify is False:
        client["verify"] = False
    if client:
        options["client_kwargs"] = client
    return options


def first_line(exc: BaseException) -> str:
    """Return an exception's message's first line (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextmanager
def _failures(location: Location) -> Iterator[None]:
    """Turn any failure to reach or read a located table into an InputError naming it.

    A URL's reader can fail in as many ways as its file system and network have (s3fs,
    botocore, gcsfs errors, ...): each is about the input, not the program.
    """
    try:
        yield
    except InputError:
        raise
    except FileNotFoundError as exc:
        raise InputError(said(location, "no such file, key or bucket", exc)) from exc
    except PermissionError as exc:
        raise InputError(said(location, "access denied (check the credentials)", exc)) from exc
    except Exception as exc:
        # botocore's EndpointConnectionError, aiohttp's ClientConnectorError, OS refusals...
        unreachable = isinstance(exc, ConnectionError) or "connect" in type(exc).__name__.lower()
        what = "cannot be reached" if unreachable else "cannot be read"
        raise InputError(said(location, what, exc)) from exc


def said(location: Location, what: str, exc: BaseException) -> str:
    """Return "<source>: <what>: <the error's first line>", with the source's secrets masked."""
    detail = first_line(exc)
    text = f"{location.name}: {what}" + (f": {detail}" if detail not in what else "")
    return redact(text, location.secrets)


def parquet_dataset(location: Location) -> ds.Dataset | None:
    """Return the Parquet dataset of a directory (its .parquet files at any depth, hive
    partition directories giving columns), None for a file.

    Files are taken in natural order (region=2 before region=10, part-9 before part-10), the
    order the Dask engine reads them in, so a row has the same number on both engines.
    """
    fs, root = location.fs, location.path.rstrip("/")
    if not fs.isdir(root):
        return None
    files = [
        path
        for path in sorted(fs.find(root), key=natural_order)
        if Path(path).suffix.lower() in (".parquet", ".pq")
        and not any(part.startswith(("_", ".")) for part in path[len(root) :].split("/"))
    ]
    if not files:
        raise InputError(
            f"{location.name}: not a file, nor a directory of Parquet files (a dataset)"
        )
    return ds.dataset(
        files,
        filesystem=fs,
        format="parquet",
        partitioning=ds.partitioning(flavor="hive"),
        partition_base_dir=root,
    )


def natural_order(path: str) -> list[int | str]:
    """Sort key of a path with its runs of digits compared as numbers; the key Dask sorts a
    dataset's files by (dask.utils.natural_sort_key)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def located_header(location: Location) -> Header:
    """Return the columns of a located file or dataset, reading only its header or metadata.

    Raises:
        InputError: the source is missing, unreachable, refused, of an unsupported type or
            unreadable; the message names it without secrets.
    """
    with _failures(location):
        dataset = parquet_dataset(location)
        if dataset is not None:
            return header_of(*parquet_columns(dataset.schema), location.name)
        kind = file_kind(location.path, location.name)
        if kind == "parquet":
            with location.fs.open(location.path, "rb") as handle:
                return header_of(*parquet_columns(pq.read_schema(handle)), location.name)
        with location.fs.open(location.path, "rb") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
            names = next(csv.reader(text), [])
        with location.fs.open(location.path, "rb") as handle:
            columns = [str(c) for c in pd.read_csv(handle, nrows=5).columns]
        return header_of(names, columns, location.name)


def read_located(location: Location) -> pd.DataFrame:
    """Read a located file or dataset; partition columns come back with their own dtypes.

    Raises:
        InputError: as located_header.
    """
    with _failures(location):
        dataset = parquet_dataset(location)
        if dataset is not None:
            return _partitions_widened(_dataset_by_column(dataset), dataset)
        kind = file_kind(location.path, location.name)
        with location.fs.open(location.path, "rb") as handle:
            if kind == "parquet":
                return pd.read_parquet(handle)
            return pd.read_csv(handle, low_memory=False)


def index_columns(schema: pa.Schema) -> set[str]:
    """The columns a Parquet schema's pandas metadata stores an index in."""
    metadata = schema.pandas_metadata or {}
    return {c for c in metadata.get("index_columns", []) if isinstance(c, str)}


def _dataset_by_column(dataset: ds.Dataset) -> pd.DataFrame:
    """Read a dataset as `dataset.to_table().to_pandas()` does, one column at a time, so
    that the whole Arrow table and the frame are never held at once (tasks/load.py
    read_parquet_by_column measures it). A dataset whose pandas metadata stores an index,
    or repeats a name, is read whole."""
    names = dataset.schema.names
    if index_columns(dataset.schema) or len(set(names)) < len(names) or len(names) < 2:
        return dataset.to_table().to_pandas()
    parts = [dataset.to_table(columns=[name]).to_pandas() for name in names]
    return pd.concat(parts, axis=1)


def _partitions_widened(frame: pd.DataFrame, dataset: ds.Dataset) -> pd.DataFrame:
    """Give integer partition columns (hive infers int32) pandas' usual int64."""
    partitioning = getattr(dataset, "partitioning", None)
    fields = partitioning.schema if partitioning is not None else pa.schema([])
    widened = {
        f.name: frame[f.name].astype("int64")
        for f in fields
        if pa.types.is_integer(f.type) and f.name in frame.columns
    }
    return frame.assign(**widened) if widened else frame
