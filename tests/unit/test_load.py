from pathlib import Path

import pandas as pd
import pytest

from retrain_guard.tasks.load import (
    InputError,
    parse_iso_dates,
    read_columns,
    read_header,
    read_table,
)


def test_csv_iso_dates_become_datetimes_and_other_strings_stay(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "id,when,day,code,label\n"
        "1,2025-01-02T10:00:00,2025-01-01,20250101,0\n"
        "2,2025-01-03T11:30:00,,20250102,1\n"
    )
    frame = read_table(path)
    assert str(frame["when"].dtype).startswith("datetime64")
    assert str(frame["day"].dtype).startswith("datetime64")
    assert frame["day"].isna().sum() == 1
    assert not str(frame["code"].dtype).startswith("datetime64")


def test_column_that_only_looks_like_dates_on_a_sample_stays_text() -> None:
    frame = pd.DataFrame({"d": ["2025-01-01"] * 3 + ["2025-02-30"]})
    assert parse_iso_dates(frame)["d"].dtype != "datetime64[us]"


def test_parquet_round_trip_keeps_types(tmp_path: Path, example_frame: pd.DataFrame) -> None:
    path = tmp_path / "e.parquet"
    example_frame.head(50).to_parquet(path, index=False)
    frame = read_table(path)
    assert list(frame.columns) == list(example_frame.columns)
    assert str(frame["event_time"].dtype).startswith("datetime64")


def test_read_columns_reads_header_only(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,0\n")
    assert read_columns(path) == ["a", "b", "label"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("table.xlsx", b"x", "unsupported file type"),
        ("broken.parquet", b"not parquet at all", "cannot be read as parquet"),
        ("binary.csv", bytes(range(256)) * 4, "cannot be read as csv"),
        ("empty.csv", b"", "cannot be read as csv"),
    ],
)
def test_unusable_files_raise_input_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_columns(path)
    assert name in str(caught.value)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        read_columns(tmp_path)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (OSError(5, "Input/output error"), True),
        (TimeoutError("slow mount"), True),
        (FileNotFoundError("gone"), False),
        (PermissionError("denied"), False),
        (InputError("bad csv"), False),
    ],
)
def test_only_transient_io_errors_are_retried(error: Exception, retried: bool) -> None:
    from prefect.states import Failed

    from retrain_guard.tasks.load import _transient_io_error, load_task

    assert load_task.retries == 2
    assert _transient_io_error(load_task, None, Failed(data=error)) is retried


def test_a_saved_pandas_index_is_not_a_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    path = tmp_path / "indexed.parquet"
    frame[frame["x"] > 1].to_parquet(path)  # a filtered frame keeps its index
    assert read_columns(path) == ["x", "y"]
    assert list(read_table(path).columns) == ["x", "y"]


def test_a_repeated_csv_name_is_found_in_the_raw_header(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("id,amount,label,amount\n1,2.0,0,3.0\n")
    # pandas renames the repeat; the raw header still shows it.
    assert read_columns(path) == ["id", "amount", "label", "amount.1"]
    assert read_header(path).duplicates == ["amount"]
    clean = tmp_path / "clean.csv"
    clean.write_text("id,amount,label,amount.1\n1,2.0,0,3.0\n")
    assert read_header(clean).duplicates == []


def test_a_repeated_parquet_name_is_found_in_its_schema(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "twice.parquet"
    pq.write_table(
        pa.table([[1], [2.0], [0], [3.0]], names=["id", "amount", "label", "amount"]), path
    )
    assert read_header(path).duplicates == ["amount"]


def test_an_unreadable_table_is_returned_by_the_load_task_not_raised(tmp_path: Path) -> None:
    from retrain_guard.tasks.load import Unreadable, load_task

    path = tmp_path / "broken.csv"
    path.write_bytes(b"a,b\n\xff\xfe,1\n")
    outcome = load_task.fn(str(path))
    assert isinstance(outcome, Unreadable)
    assert str(path) in outcome.reason
    missing = load_task.fn(str(tmp_path / "gone.csv"))
    assert isinstance(missing, Unreadable) and "gone.csv" in missing.reason
