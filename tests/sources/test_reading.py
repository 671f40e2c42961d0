"""Reading the example table from every place a source can hold it, and masking secrets."""

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from retrain_guard.flows.cli import main
from retrain_guard.schemas.params import DataParams
from retrain_guard.tasks.load import read_header, read_table
from retrain_guard.tasks.masking import mask_options, mask_url, redact
from retrain_guard.tasks.sources import InputError
from tests.sources.conftest import PG_PASSWORD, TABLE
from tests.sources.services import BUCKET, PostgresService, S3Service


def _same_rows(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    ordered = frame[list(expected.columns)].sort_values("transaction_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(ordered, expected, check_dtype=False)


def test_partitioned_directory_gives_partition_columns_with_their_dtypes(
    partitioned_dir: Path, example_frame: pd.DataFrame
) -> None:
    header = read_header(str(partitioned_dir))
    frame = read_table(DataParams(path=str(partitioned_dir), label="is_fraud"))
    assert sorted(header.columns) == sorted(example_frame.columns)
    assert list(frame.columns) == header.columns
    assert frame["txn_count_24h"].dtype == "int64"
    assert pd.api.types.is_string_dtype(frame["channel"])
    assert frame["event_time"].dtype.kind == "M"
    _same_rows(frame, example_frame)


def test_directory_without_parquet_files_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a file, nor a directory of Parquet files"):
        read_header(tmp_path)


def test_file_url_reads_like_the_local_path(example_csv: Path) -> None:
    local = read_table(example_csv)
    pd.testing.assert_frame_equal(read_table(example_csv.as_uri()), local)
    assert read_header(example_csv.as_uri()) == read_header(example_csv)


@pytest.mark.parametrize("key", ["example.parquet", "example.csv", "partitioned", "partitioned/"])
def test_s3_header_and_table_with_storage_options(
    s3: S3Service, example_frame: pd.DataFrame, key: str
) -> None:
    data = DataParams(path=f"s3://{BUCKET}/{key}", label="is_fraud", storage_options=s3.options())
    header = read_header(data)
    frame = read_table(data)
    assert sorted(header.columns) == sorted(example_frame.columns)
    assert list(frame.columns) == header.columns
    _same_rows(frame, example_frame)


def test_sql_header_and_table_from_postgres_and_sqlite(
    pg: PostgresService, sqlite_db: Path, example_frame: pd.DataFrame
) -> None:
    for connection in (pg.url(), f"sqlite:///{sqlite_db}"):
        for sql in (TABLE, f"SELECT *\nFROM {TABLE}\nWHERE amount >= 0"):
            data = DataParams(sql=sql, connection=connection, label="is_fraud")
            assert read_header(data).columns == list(example_frame.columns)
            frame = read_table(data)
            assert frame["event_time"].dtype.kind == "M", connection
            _same_rows(frame, example_frame)


def test_exactly_one_source_and_its_settings() -> None:
    with pytest.raises(ValidationError, match=r"exactly one of data\.path and data\.sql"):
        DataParams(label="y")
    with pytest.raises(ValidationError, match=r"exactly one of data\.path and data\.sql"):
        DataParams(path="a.csv", sql="t", connection="sqlite://", label="y")
    with pytest.raises(ValidationError, match=r"data\.sql needs data\.connection"):
        DataParams(sql="t", label="y")
    with pytest.raises(ValidationError, match=r"for a URL in data\.path"):
        DataParams(sql="t", connection="sqlite://", storage_options={"anon": True}, label="y")


def test_secrets_are_masked_in_the_echoed_parameters() -> None:
    url = f"postgresql+psycopg://guard:{PG_PASSWORD}@db:5432/x?sslpassword=p4ss&sslmode=require"
    assert (
        mask_url(url) == "postgresql+psycopg://guard:***@db:5432/x?sslpassword=***&sslmode=require"
    )
    assert mask_url("s3://bucket/key.parquet") == "s3://bucket/key.parquet"
    assert mask_url("sqlite:///a/b.db") == "sqlite:///a/b.db"
    options = {"key": "AKIA1", "secret": "s3cr3t", "client_kwargs": {"aws_session_token": "t0k"}}
    assert mask_options(options) == {
        "key": "AKIA1",
        "secret": "***",
        "client_kwargs": {"aws_session_token": "***"},
    }
    data = DataParams(sql="t", connection=url, label="y")
    echoed = data.model_dump_json()
    assert PG_PASSWORD not in echoed and "p4ss" not in echoed
    assert PG_PASSWORD not in data.source
    assert data.connection == url, "the parameters themselves keep the secret for reading"
    assert redact(f"x {PG_PASSWORD} y", data.secrets()) == "x *** y"


def test_infer_schema_drafts_from_a_sql_table(
    sqlite_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "drafted.yaml"
    argv = ["infer-schema", "--sql", TABLE, "--connection", f"sqlite:///{sqlite_db}"]
    assert main([*argv, "--label", "is_fraud", "--out", str(out)]) == 0, capsys.readouterr().err
    assert "transaction_id" in out.read_text()


def test_a_source_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--label", "is_fraud"]) == 2
    assert "--data (or --sql) and --label are required" in capsys.readouterr().err
    assert main(["validate", "--sql", TABLE, "--label", "is_fraud"]) == 2
    assert "data.sql needs data.connection" in capsys.readouterr().err
