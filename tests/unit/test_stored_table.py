"""The table on disk (tasks/stored_table.py) reads back what was written, as pandas holds it."""

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from retrain_guard.tasks.dates import never_dates, parse_date_like
from retrain_guard.tasks.leakage.auc import numeric_column, numeric_view, screen_auc, screen_column
from retrain_guard.tasks.leakage.missingness import measure_missingness
from retrain_guard.tasks.leakage.order import order_scores
from retrain_guard.tasks.leakage.rows import (
    distinct_count,
    hashed_row_pair,
    hashed_rows,
    repeat_count,
    row_hashes,
)
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


@pytest.mark.parametrize("seed", range(4))
def test_repeat_count_counts_rows_that_repeat_an_earlier_one_in_either_form(
    tmp_path: Path, seed: int
) -> None:
    """Hashing a column at a time and keeping only rows still repeating counts the same
    repeats as pandas' duplicated over the whole rows (missing equal to missing), for any
    subset of rows, in memory and stored."""
    rng = np.random.default_rng(seed)
    frame = _quirky(600, seed).drop(columns=["mixed"])
    frame["count"] = rng.integers(0, 2, len(frame))  # few values: repeats a column alone
    copied = rng.choice(600, 80, replace=False)
    frame.iloc[copied] = frame.iloc[rng.choice(600, 80)].to_numpy()
    table = _stored(frame, 4, tmp_path)
    subset = rng.choice(600, 300, replace=False)
    for rows in (np.arange(600), np.sort(subset), subset, np.arange(0)):
        for columns in (list(frame.columns), ["count", "flag"], ["amount"]):
            expected = int(frame.iloc[rows][columns].duplicated().sum())
            assert repeat_count(frame, rows, columns) == expected
            assert repeat_count(table, rows, columns) == expected
    assert repeat_count(frame, np.arange(5), []) == 4  # no column: every row alike
    assert distinct_count(np.array([3, 1, 3, 2, 1], dtype="uint64")) == 3


def _text_ranks(values: pd.Series) -> np.ndarray:
    """Ranks as pyarrow's rank gives them (ties share the lowest), missing as NaN."""
    ranked = pc.rank(pa.array(values.astype("string[pyarrow]")), tiebreaker="min")
    rank = np.asarray(ranked.to_numpy(zero_copy_only=False), dtype="float64")
    return np.where(values.isna().to_numpy(), np.nan, rank)


def test_order_scores_and_numbers_read_a_partition_at_a_time_equal_the_whole_columns(
    tmp_path: Path,
) -> None:
    """Ids in order (runs of equal ids across partitions included), out of order, or with a
    missing one, and every numeric dtype, score as the whole column does, in either form."""
    rng = np.random.default_rng(7)
    rows = 600
    ids = np.sort(rng.choice([f"t{n:04d}" for n in range(300)], rows))  # runs of repeats
    ids[150:152] = ids[149]  # a run across the first partitions' boundary (150 rows each)
    frame = _quirky(rows, 7).assign(
        unique=[f"u{n:05d}" for n in range(rows)],
        repeated=ids,
        shuffled=ids[rng.permutation(rows)],
        one_missing=np.where(np.arange(rows) == 450, None, ids).astype(object),
        cut=np.where(np.arange(rows) < 150, "b", "a"),  # out of order at a partition's start
    )
    table = _stored(frame, 4, tmp_path)
    for column in ("unique", "repeated", "shuffled", "one_missing", "cut", "text"):
        expected = _text_ranks(frame[column])
        for form in (frame, table):
            np.testing.assert_array_equal(order_scores(form, column), expected)
    for column in ("amount", "count", "nullable", "flag", "when"):
        expected = numeric_view(frame[column])
        for form in (frame, table):
            np.testing.assert_array_equal(numeric_column(form, column), expected)
    assert numeric_column(table, "text") is None


def test_the_auc_screen_a_partition_at_a_time_equals_the_whole_columns(tmp_path: Path) -> None:
    """Per-class histograms added up over partitions give the whole column's screen: the
    same bound where it settles a column, None where it cannot (all missing, constant, a
    column that separates the classes)."""
    rng = np.random.default_rng(11)
    rows = 900
    positive = rng.random(rows) < 0.1
    frame = _quirky(rows, 11).assign(
        holes=np.where(rng.random(rows) < 0.2, np.nan, rng.normal(size=rows)),
        none=np.full(rows, np.nan),
        constant=np.ones(rows),
        leak=positive * 10.0 + rng.normal(size=rows),
    )
    table = _stored(frame, 5, tmp_path)
    positive_rows = np.flatnonzero(positive)
    settled = 0
    for column in ("amount", "count", "nullable", "flag", "when", "holes", "none", "constant"):
        numbers = numeric_view(frame[column])
        assert numbers is not None
        for below in (0.55, 0.7, 0.99):
            whole = screen_auc(numbers, positive_rows, below)
            assert screen_column(table, column, positive_rows, below) == whole
            settled += whole is not None
    assert settled >= 10
    assert screen_column(table, "leak", positive_rows, 0.99) is None


def test_missingness_counted_a_partition_at_a_time_is_measured_as_in_memory(
    tmp_path: Path,
) -> None:
    """Presence counts added up over partitions give the in-memory measurement, a column
    filled only for positive rows included."""
    rng = np.random.default_rng(5)
    rows = 800
    positive = rng.random(rows) < 0.2
    frame = _quirky(rows, 5).assign(
        only_positive=np.where(positive, rng.normal(size=rows), np.nan),
        none=np.full(rows, np.nan),
    )
    table = _stored(frame, 3, tmp_path)
    columns = ["nullable", "text", "only_positive", "none", "amount"]
    in_memory = measure_missingness(frame, columns, positive, min_rows=5)
    assert [m.column for m in in_memory] == ["text", "only_positive"]  # nullable: no NA
    assert max(in_memory, key=lambda m: m.ratio).column == "only_positive"
    assert measure_missingness(table, columns, positive, min_rows=5) == in_memory


def test_columns_ruled_out_as_dates_unread_are_those_parse_date_like_rejects() -> None:
    """A stored column is skipped unread only where parsing its values could not make
    dates: booleans and numbers without a year or date name."""
    rng = np.random.default_rng(3)
    frame = _quirky(300, 3).assign(
        signup_year=rng.integers(1990, 2020, 300),
        created_at=rng.integers(1_600_000_000, 1_700_000_000, 300),
        day="2024-01-02",
    )
    ruled_out = [c for c in frame.columns if never_dates(c, frame[c].dtype)]
    assert ruled_out == ["amount", "count", "nullable", "flag"]
    assert all(parse_date_like(c, frame[c]) is None for c in ruled_out)
    assert {"signup_year", "created_at", "day", "when"} <= {
        c for c in frame.columns if parse_date_like(c, frame[c]) is not None
    }
