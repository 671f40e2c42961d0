"""The table on disk (tasks/stored_table.py) reads back what was written, as pandas holds it."""

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_guard.tasks.leakage.rows import hashed_row_pair, hashed_rows, row_hashes
from retrain_guard.tasks.quirks import kind_of
from retrain_guard.tasks.stored_table import (
    StoredTable,
    TableWriter,
    dtype_of,
    row_chunks,
    rows_of,
    take_rows,
)


def _quirky(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mixed = np.array([1, "two", 3.5, None, b"x", [1, 2]], dtype=object)
    return pd.DataFrame(
        {
            "amount": rng.normal(size=rows),
            "count": rng.integers(0, 5, rows),
            "nullable": pd.array(rng.integers(0, 3, rows), dtype="Int64"),
            "flag": rng.random(rows) < 0.3,
            "text": np.array(["a", "b", None], dtype=object)[rng.integers(0, 3, rows)],
            "mixed": mixed[rng.integers(0, len(mixed), rows)],
            "when": pd.date_range("2025-01-01", periods=rows, freq="h", tz="Europe/Berlin"),
        }
    )


def _stored(
    frame: pd.DataFrame, parts: int, tmp: Path, order: list[int] | None = None
) -> StoredTable:
    """Write `frame` as `parts` partitions (in `order`), each indexed by global row number."""
    writer = TableWriter(frame.head(0), str(tmp))
    pieces = np.array_split(np.arange(len(frame)), parts)
    for number in order or range(parts):
        writer.add(number, frame.iloc[pieces[number]])
    return writer.table()


def test_columns_read_back_as_written_whatever_the_order_partitions_arrive(tmp_path: Path) -> None:
    frame = _quirky(1000, 0)
    table = _stored(frame, 4, tmp_path, order=[2, 0, 3, 1])
    assert len(table) == 1000 and table.shape == (1000, 7)
    assert list(table.columns) == list(frame.columns)
    assert table.index.equals(pd.RangeIndex(1000))
    for column in frame.columns:
        pd.testing.assert_series_equal(table[column], frame[column])
    pd.testing.assert_frame_equal(table.to_pandas(), frame)
    assert dict(table.dtypes) == dict(frame.dtypes)


def test_pieces_of_a_partition_are_read_in_their_order(tmp_path: Path) -> None:
    """A partition validated in chunks is written as pieces, in any order, read in order."""
    frame = _quirky(300, 1)
    writer = TableWriter(frame.head(0), str(tmp_path))
    for number, piece, rows in [(1, 1, slice(250, 300)), (0, 1, slice(100, 200))]:
        writer.add(number, frame.iloc[rows], piece)
    for number, piece, rows in [(1, 0, slice(200, 250)), (0, 0, slice(0, 100))]:
        writer.add(number, frame.iloc[rows], piece)
    pd.testing.assert_frame_equal(writer.table().to_pandas(), frame)


def test_categoricals_of_different_partitions_join_by_their_union(tmp_path: Path) -> None:
    writer = TableWriter(pd.DataFrame({"c": pd.Categorical([])}), str(tmp_path))
    writer.add(0, pd.DataFrame({"c": pd.Categorical(["a", "b"])}))
    writer.add(1, pd.DataFrame({"c": pd.Categorical(["c", "a"])}, index=[2, 3]))
    table = writer.table()
    assert table["c"].dtype == "category"
    assert list(table["c"].astype(str)) == ["a", "b", "c", "a"]
    assert set(table.dtypes["c"].categories) == {"a", "b", "c"}


def test_dtypes_are_the_written_partitions_not_the_template(tmp_path: Path) -> None:
    writer = TableWriter(pd.DataFrame({"t": pd.Series([], dtype=object)}), str(tmp_path))
    writer.add(0, pd.DataFrame({"t": pd.to_datetime(["2025-01-01", "2025-01-02"])}))
    writer.add(1, pd.DataFrame({"t": pd.to_datetime(["2025-01-03"])}, index=[2]))
    table = writer.table()
    assert table.dtypes["t"] == table["t"].dtype == "datetime64[us]"


@pytest.mark.parametrize("zone", [None, "UTC"])
def test_datetime_partitions_in_different_units_join_in_the_finest_unit_that_holds_them(
    tmp_path: Path, zone: str | None
) -> None:
    # A dataset whose files were written by different tools: one in ms with a date past
    # 2262 (out of nanoseconds' range), one in ns with a sub-microsecond time.
    late = pd.Series(np.array(["2300-01-01", "2024-05-01"], dtype="datetime64[ms]"))
    fine = pd.Series(pd.to_datetime(["2024-05-02 00:00:00.000123456"])).dt.as_unit("ns")
    if zone:
        late, fine = late.dt.tz_localize(zone), fine.dt.tz_localize(zone)
    # Microseconds hold both (the nanoseconds lost); without the late date, nanoseconds.
    for parts, unit in (([late, fine], "us"), ([late.iloc[1:], fine], "ns")):
        where = tmp_path / f"{unit}{zone}"
        where.mkdir()
        writer = TableWriter(pd.DataFrame({"t": parts[0].iloc[:0]}), str(where))
        start = 0
        for number, values in enumerate(parts):
            rows = range(start, start + len(values))
            writer.add(number, values.to_frame("t").set_axis(rows))
            start += len(values)
        table = writer.table()
        joined = table["t"]
        assert joined.dt.unit == unit and table.dtype("t") == joined.dtype
        assert str(joined.iloc[0])[:10] == ("2300-01-01" if unit == "us" else "2024-05-01")
        assert joined.iloc[-1].microsecond == 123
        assert joined.iloc[-1].nanosecond == (456 if unit == "ns" else 0)
        chunked = pd.concat([c["t"] for c in table.chunks(["t"])])
        pd.testing.assert_series_equal(chunked, joined, check_index=False)


def test_an_object_column_of_text_stays_object(tmp_path: Path) -> None:
    frame = pd.DataFrame({"t": pd.Series(["a", None, "b", "c"], dtype=object)})
    for parts in (1, 2):
        table = _stored(frame, parts, tmp_path)
        assert table["t"].dtype == "object" and str(table.dtypes["t"]) == "object"
        pd.testing.assert_series_equal(table["t"], frame["t"])


def test_rows_masks_drops_and_assigned_columns_compose_as_in_pandas(tmp_path: Path) -> None:
    frame = _quirky(600, 1)
    table = _stored(frame, 3, tmp_path)
    doubled = frame["amount"] * 2
    assigned = table.assign(amount=doubled, extra=frame["count"] + 1)
    expected = frame.assign(amount=doubled, extra=frame["count"] + 1)
    mask = (frame["count"] > 1).to_numpy()
    kept = assigned[mask].drop(columns=["text"])
    expected = expected[mask].drop(columns=["text"])
    assert list(kept.columns) == list(expected.columns)
    assert kept.index.equals(expected.index)
    for column in expected.columns:
        pd.testing.assert_series_equal(kept[column], expected[column])
    # A column assigned after the rows were thinned, then thinned again.
    later = kept.assign(late=expected["amount"] + 1)
    second = (expected["count"] > 2).to_numpy()
    pd.testing.assert_series_equal(
        later[second]["late"], (expected["amount"] + 1)[second].rename("late")
    )
    rows = np.array([5, 0, 17, 3])
    pd.testing.assert_frame_equal(
        take_rows(kept, rows, ["amount", "mixed"]), expected.iloc[rows][["amount", "mixed"]]
    )


def test_rows_read_a_partition_at_a_time_are_the_rows_pandas_takes(tmp_path: Path) -> None:
    """A holdout kept on disk (rows_of) and read in chunks (row_chunks) gives the rows, in
    order, with an assigned column, and each column in the dtype a whole read gives: the
    union of the partitions' categories, float64 where one partition's integers were."""
    frame = _quirky(1000, 3).assign(kind=np.where(np.arange(1000) < 600, "a", "b"))
    writer = TableWriter(frame.head(0).astype({"kind": "category"}), str(tmp_path))
    for number, rows in enumerate(np.array_split(np.arange(1000), 4)):
        part = frame.iloc[rows].astype({"kind": "category"})  # categories of this part only
        writer.add(number, part.astype({"count": "float64"}) if number == 2 else part)
    table = writer.table()
    kinds = table.dtype("kind")
    assert isinstance(kinds, pd.CategoricalDtype) and len(kinds.categories) == 2
    assert table.dtype("count") == "float64"
    where = np.arange(1000) % 3 == 0
    flagged = table[where].assign(score=pd.Series(np.arange(int(where.sum())) * 0.5))
    rows = np.flatnonzero(np.arange(len(flagged)) >= 100)  # rows past the first partition
    columns = ["score", "kind", "count", "amount", "mixed"]
    kept = rows_of(flagged, rows, columns)
    assert isinstance(kept, StoredTable) and list(kept.columns) == columns
    chunks = list(row_chunks(kept, columns, 70))
    assert max(len(c) for c in chunks) == 70 and len(chunks) > 4
    whole = kept.to_pandas()
    assert whole["kind"].dtype == table.dtype("kind")
    assert all(dict(chunk.dtypes) == dict(whole.dtypes) for chunk in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks), whole)
    expected = frame[where].assign(score=np.arange(int(where.sum())) * 0.5).iloc[rows]
    assert whole["kind"].astype(str).tolist() == expected["kind"].tolist()
    pd.testing.assert_series_equal(whole["amount"], expected["amount"])
    in_memory = list(row_chunks(whole, None, 70))
    pd.testing.assert_frame_equal(pd.concat(in_memory), whole)
    shuffled = rows[::-1]  # not increasing: taken into memory, in the order asked
    taken = rows_of(flagged, shuffled, columns)
    assert isinstance(taken, pd.DataFrame)
    pd.testing.assert_frame_equal(taken, whole.iloc[::-1])
    (empty,) = row_chunks(rows_of(flagged, rows[:0], columns), columns, 70)
    assert len(empty) == 0 and list(empty.columns) == columns
    with pytest.raises(ValueError, match="increasing"):
        table.rows_at(shuffled, columns)


def test_wrong_masks_columns_and_partitions_are_refused(tmp_path: Path) -> None:
    frame = _quirky(50, 2)
    table = _stored(frame, 2, tmp_path)
    with pytest.raises(ValueError, match="a mask of 3 rows"):
        table[np.array([True, False, True])]
    with pytest.raises(KeyError):
        table["nope"]
    with pytest.raises(KeyError, match="nope"):
        table.drop(columns=["nope"])
    with pytest.raises(ValueError, match="has 2 rows"):
        table.assign(short=pd.Series([1, 2]))
    writer = TableWriter(frame.head(0), str(tmp_path))
    with pytest.raises(ValueError, match="partition 0 has other columns"):
        writer.add(0, frame[["amount"]])


def test_row_hashes_column_by_column_tell_equal_rows_apart_from_others(tmp_path: Path) -> None:
    frame = _quirky(400, 3).drop(columns=["mixed"])
    frame.iloc[300:] = frame.iloc[:100].to_numpy()  # rows 300+ repeat rows 0-99
    table = _stored(frame, 3, tmp_path)
    columns = list(frame.columns)
    rows = np.arange(400)
    stored = hashed_rows(table, rows, columns)
    in_memory = row_hashes(frame[columns])
    # Equal rows hash alike either way, and the two groupings of the rows are the same.
    assert (stored[300:] == stored[:100]).all()
    assert len(set(stored)) == len(set(in_memory))
    assert (pd.factorize(stored)[0] == pd.factorize(in_memory)[0]).all()
    # Two sets of rows hashed in one pass are each hashed as alone, in either form.
    first, second = rows[:150], rows[150:]
    for form in (table, frame):
        pair = hashed_row_pair(form, first, second, columns)
        assert (pair[0] == hashed_rows(form, first, columns)).all()
        assert (pair[1] == hashed_rows(form, second, columns)).all()


def test_dtypes_are_known_without_reading_numeric_columns(tmp_path: Path) -> None:
    frame = _quirky(300, 5)
    table = _stored(frame, 3, tmp_path)
    reads: list[str] = []
    read = type(table._base).read

    def counted(base: object, column: str) -> pd.Series:
        reads.append(column)
        return read(base, column)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(table._base), "read", counted)
        _check_kinds(table, frame)
    assert reads == ["mixed"]


def _check_kinds(table: StoredTable, frame: pd.DataFrame) -> None:
    for column in ("amount", "count", "flag", "when", "nullable"):
        assert dtype_of(table, column) == frame[column].dtype
        assert kind_of(table, column) is None
    assert kind_of(table, "mixed") == kind_of(frame, "mixed") is not None


def test_the_files_are_removed_with_the_last_table_reading_them(tmp_path: Path) -> None:
    table = _stored(_quirky(100, 4), 2, tmp_path)
    kept = table.drop(columns=["text"])
    (directory,) = list(tmp_path.iterdir())
    del table
    gc.collect()
    assert directory.exists()  # `kept` still reads them
    assert len(kept["amount"]) == 100
    del kept
    gc.collect()
    assert not directory.exists()


def test_rows_taken_by_a_slice_do_not_keep_the_whole_column(tmp_path: Path) -> None:
    """A strided sample of a stored column holds the sampled rows only: a view of the column
    read whole would keep every sampled column alive at once."""
    frame = pd.DataFrame({"x": np.arange(10_000, dtype="float64"), "y": np.arange(10_000)})
    table = _stored(frame, 3, tmp_path)
    taken = table.take(slice(None, None, 100), ["x", "y"])
    pd.testing.assert_frame_equal(taken, frame.iloc[::100])
    for column in ("x", "y"):
        values = taken[column].to_numpy()
        while isinstance(values.base, np.ndarray):
            values = values.base
        assert values.size <= len(taken) * 2


def test_rows_taken_by_position_are_read_a_partition_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows taken by position, in any order, are pandas' rows with the whole read's dtypes
    (the union of the partitions' categories, float64 where one partition's integers were),
    and no column is read whole to take them."""
    frame = _quirky(1000, 5).assign(kind=np.where(np.arange(1000) < 600, "a", "b"))
    writer = TableWriter(frame.head(0).astype({"kind": "category"}), str(tmp_path))
    for number, rows in enumerate(np.array_split(np.arange(1000), 4)):
        part = frame.iloc[rows].astype({"kind": "category"})
        writer.add(number, part.astype({"count": "float64"}) if number == 2 else part)
    table = writer.table()
    whole = table.to_pandas()
    columns = ["amount", "count", "nullable", "text", "mixed", "when", "kind"]
    for dtype_of_column in columns:
        table.dtype(dtype_of_column)  # learnt once, as the flow's stages do before taking
    rng = np.random.default_rng(0)
    asked = [
        np.sort(rng.choice(1000, 300, replace=False)),
        rng.choice(1000, 300, replace=False),
        np.array([999, 0, 500]),
    ]
    monkeypatch.setattr(
        type(table._base), "read", lambda *_: pytest.fail("a column was read whole")
    )
    for rows in asked:
        taken = table.take(rows, columns)
        pd.testing.assert_frame_equal(taken, whole.iloc[rows][columns])
    monkeypatch.undo()
    twice = np.array([3, 3, 10])  # a row taken twice: read whole, the same rows
    pd.testing.assert_frame_equal(table.take(twice, columns), whole.iloc[twice][columns])


def test_categories_in_another_order_in_a_partition_read_as_the_whole_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition whose categories come in another order (Parquet dictionaries in the order
    of appearance) reads, in chunks and by position, with the whole column's categories;
    derived tables reuse the dtypes learnt, and positions iloc would refuse are refused."""
    kinds = ["a", "a", "a", "b", "a", "b"]
    frame = pd.DataFrame({"kind": kinds, "amount": np.arange(6.0)})
    writer = TableWriter(frame.head(0).astype({"kind": "category"}), str(tmp_path))
    first = frame.iloc[:3].astype({"kind": pd.CategoricalDtype(["a"])})
    second = frame.iloc[3:].astype({"kind": pd.CategoricalDtype(["b", "a"])})
    writer.add(0, first)
    writer.add(1, second)
    table = writer.table()
    whole = table.to_pandas()
    assert list(whole["kind"].cat.categories) == ["a", "b"]  # the union, as Dask joins
    table.dtype("kind")
    derived = table[np.array([True] * 5 + [False])].drop(columns=["amount"])
    monkeypatch.setattr(
        type(table._base), "read", lambda *_: pytest.fail("a column was read whole")
    )
    pd.testing.assert_frame_equal(pd.concat(table.chunks(["kind"])), whole[["kind"]])
    rows = np.array([4, 3])  # rows of the second partition only
    pd.testing.assert_frame_equal(table.take(rows, ["kind"]), whole.iloc[rows][["kind"]])
    pd.testing.assert_frame_equal(derived.take(rows, ["kind"]), whole.iloc[rows][["kind"]])
    monkeypatch.undo()
    from_end = np.array([-1, 0])
    pd.testing.assert_frame_equal(table.take(from_end, ["kind"]), whole.iloc[from_end][["kind"]])
    with pytest.raises(IndexError):
        table.take(np.array([0, 9]), ["kind"])
