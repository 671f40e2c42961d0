"""Fixtures of the source tests: the example table in every shape a source can hold it,
served by moto's S3 server, PostgreSQL and SQLite, plus the Prefect test server (for blocks
and flow runs). Services start once per session and stop after."""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.flows.conftest import prefect_server  # noqa: F401 (the session's Prefect server)
from tests.sources.services import PostgresService, S3Service, moto_s3, postgres

# Distinctive secret values: the tests grep everything written for them.
S3_BAD_SECRET = "BadSecretValue-9f3a1c7e"
PG_PASSWORD = "pg-Secret-7d41b2"
PG_BAD_PASSWORD = "pg-Wrong-5e90aa"
TABLE = "transactions"


@pytest.fixture(scope="session")
def example_parquet(data_dir: Path, example_frame: pd.DataFrame) -> Path:
    path = data_dir / "example.parquet"
    example_frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def partitioned_dir(data_dir: Path, example_frame: pd.DataFrame) -> Path:
    """The example table as a hive-partitioned Parquet dataset (channel=.../part-0.parquet)
    and a second level of an integer partition (txn_count_24h)."""
    root = data_dir / "partitioned"
    table = pa.Table.from_pandas(example_frame, preserve_index=False)
    pq.write_to_dataset(table, root, partition_cols=["channel", "txn_count_24h"])
    return root


@pytest.fixture(scope="session")
def s3(example_csv: Path, example_parquet: Path, partitioned_dir: Path) -> Iterator[S3Service]:
    files = {"example.csv": example_csv, "example.parquet": example_parquet}
    for part in partitioned_dir.rglob("*.parquet"):
        files[f"partitioned/{part.relative_to(partitioned_dir).as_posix()}"] = part
    with moto_s3(files) as service:
        yield service


@pytest.fixture(scope="session")
def pg(example_frame: pd.DataFrame) -> Iterator[PostgresService]:
    with postgres(PG_PASSWORD) as service:
        engine = sa.create_engine(service.url())
        with engine.begin() as connection:
            example_frame.to_sql(TABLE, connection, index=False, chunksize=5000, method="multi")
        engine.dispose()
        yield service


@pytest.fixture(scope="session")
def sqlite_db(data_dir: Path, example_frame: pd.DataFrame) -> Path:
    path = data_dir / "example.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        example_frame.to_sql(TABLE, connection, index=False)
    engine.dispose()
    return path
