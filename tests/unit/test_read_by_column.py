"""A Parquet file read one column at a time is the frame pandas.read_parquet gives."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from retrain_guard.flows.example_data import make_transactions
from retrain_guard.tasks.load import read_parquet_by_column
from retrain_guard.tasks.sources import Location, _partitions_widened, parquet_dataset, read_located
from tests.real_tables import CORPUS


def _same_as_pandas(path: Path) -> None:
    pd.testing.assert_frame_equal(read_parquet_by_column(path), pd.read_parquet(path))


def test_the_example_and_its_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "example.parquet"
    make_transactions(rows=3000).to_parquet(path)
    _same_as_pandas(path)


@pytest.mark.parametrize("table", CORPUS, ids=lambda t: t.name)
def test_every_real_table(table: object, tmp_path: Path) -> None:
    path = tmp_path / "real.parquet"
    table.build().to_parquet(path)  # type: ignore[attr-defined]
    _same_as_pandas(path)


def test_extension_dtypes_a_zone_and_a_repeating_named_index(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
            "b": pd.array([True, None, False, True], dtype="boolean"),
            "c": pd.Categorical(["x", "y", "x", None]),
            "t": pd.date_range("2026-03-28", periods=4, freq="D", tz="Europe/Berlin"),
            "s": ["a", None, "c", "d"],
            "f": [1.5, np.nan, np.inf, -2.0],
            "o": [[1], [2, 3], None, []],
        },
        index=pd.Index([7, 7, 3, 1], name="row"),
    )
    path = tmp_path / "kinds.parquet"
    frame.to_parquet(path)
    _same_as_pandas(path)
    assert list(read_parquet_by_column(path).index) == [7, 7, 3, 1]


def test_a_repeated_column_name_is_read_whole_as_pandas_reads_it(tmp_path: Path) -> None:
    # The header check names the repeat before any row is read; a direct read fails alike.
    path = tmp_path / "repeated.parquet"
    table = pa.table([pa.array([1, 2]), pa.array([3, 4]), pa.array([5, 6])], names=["a", "a", "b"])
    pq.write_table(table, path)
    with pytest.raises(pa.ArrowInvalid):
        pd.read_parquet(path)
    with pytest.raises(pa.ArrowInvalid):
        read_parquet_by_column(path)


def test_a_single_column_and_an_empty_table(tmp_path: Path) -> None:
    one = tmp_path / "one.parquet"
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(one)
    _same_as_pandas(one)
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"x": pd.Series([], dtype="float64"), "y": pd.Series([], dtype="str")}).to_parquet(
        empty
    )
    _same_as_pandas(empty)


@pytest.mark.parametrize("hive", [True, False])
def test_a_dataset_directory_reads_as_its_whole_table(tmp_path: Path, hive: bool) -> None:
    frame = make_transactions(rows=3000).assign(part=lambda f: np.arange(len(f)) % 3)
    root = tmp_path / "dataset"
    if hive:
        pq.write_to_dataset(pa.Table.from_pandas(frame), root, partition_cols=["part"])
    else:
        root.mkdir()
        for i in range(3):
            frame.iloc[i * 1000 : (i + 1) * 1000].to_parquet(root / f"part-{i}.parquet")
    location = Location(LocalFileSystem(), str(root), str(root))
    dataset = parquet_dataset(location)
    assert dataset is not None
    by_column = read_located(location)
    whole = _partitions_widened(dataset.to_table().to_pandas(), dataset)
    pd.testing.assert_frame_equal(by_column, whole)
