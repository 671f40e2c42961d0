from pathlib import Path

import pandas as pd
import pytest

from tasks.load import InputError, parse_iso_dates, read_columns, read_table


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

    from tasks.load import _transient_io_error, load_task

    assert load_task.retries == 2
    assert _transient_io_error(load_task, None, Failed(data=error)) is retried


def test_a_saved_pandas_index_is_not_a_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    path = tmp_path / "indexed.parquet"
    frame[frame["x"] > 1].to_parquet(path)  # a filtered frame keeps its index
    assert read_columns(path) == ["x", "y"]
    assert list(read_table(path).columns) == ["x", "y"]
