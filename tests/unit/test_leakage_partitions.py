"""The leakage checks on a table stored on disk (tasks/stored_table.py) reduce it a partition
at a time, and in memory CHUNK_ROWS rows at a time: each measures what it measures on the
whole columns, in either form."""

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_guard.tasks import part_map, part_ranks, stored_table
from retrain_guard.tasks.dates import never_dates, parse_date_like, to_days
from retrain_guard.tasks.leakage import auc, date_leads, rank_counts
from retrain_guard.tasks.leakage.auc import (
    auc_with_missing,
    category_cells,
    category_codes,
    fold_of_rows,
    numeric_column,
    numeric_view,
    out_of_fold_rates,
    ranked_scores,
    screen_auc,
    screen_cells,
    screen_column,
    stratified_auc,
)
from retrain_guard.tasks.leakage.date_leads import date_like_columns, measure_post_label_dates
from retrain_guard.tasks.leakage.missingness import measure_missingness
from retrain_guard.tasks.leakage.order import measure_order, order_scores
from retrain_guard.tasks.leakage.rank_counts import text_keys
from retrain_guard.tasks.leakage.rows import distinct_count, repeat_count
from retrain_guard.tasks.leakage.target import measure_target_auc
from retrain_guard.tasks.leakage.time_bins import column_time_bins, time_bins
from retrain_guard.tasks.stored_table import StoredTable, TableWriter
from tests.unit.test_stored_table import _quirky, _stored


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-memory tables reduced 7 rows at a time, so that chunk boundaries are crossed."""
    for module in (date_leads, part_map, stored_table):
        monkeypatch.setattr(module, "CHUNK_ROWS", 7)


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
    """Ranks in text order (ties share the lowest), missing as NaN, by pandas' own rank."""
    return values.astype(object).rank(method="min").to_numpy(dtype="float64")


@pytest.mark.usefixtures("small_chunks")
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


def _exact_order(scores: np.ndarray, positive: np.ndarray, bins: list[np.ndarray] | None) -> tuple:
    """The AUC, missing side and within-time AUC of whole-column scores, by sorting."""
    auc_value, side = auc_with_missing(scores, positive)
    within = None if bins is None else stratified_auc(ranked_scores(scores, side), positive, bins)
    return pytest.approx(auc_value, abs=1e-12), side, within and pytest.approx(within, abs=1e-12)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("seed", range(3))
def test_order_by_counting_pairs_equals_the_whole_columns_ranks(tmp_path: Path, seed: int) -> None:
    """The row order and ids scored by counting pairs (the smaller class sorted, the rest
    searched a partition at a time) give the AUC, missing side and within-time AUC that
    ranking the whole column gives: text out of order with repeats, missing values, empty
    and non-ASCII text of different lengths, numbers and dates; either class the smaller;
    with and without label-time bins (rows without a time in a bin of their own)."""
    rng = np.random.default_rng(seed)
    rows = 700
    words = np.array(["tx-9", "tx-10", "", "é", "éa", "z" * 30, "ab", None], dtype=object)
    ids = np.array([f"id-{n}" for n in rng.integers(0, 400, rows)], dtype=object)
    frame = _quirky(rows, seed).assign(
        ids=ids,
        words=words[rng.integers(0, len(words), rows)],
        holes=np.where(rng.random(rows) < 0.1, None, ids).astype(object),
        numbers=np.where(rng.random(rows) < 0.1, np.nan, rng.integers(0, 50, rows)),
        label_time=pd.Series(
            pd.date_range("2024-01-01", periods=rows, freq="D")[rng.permutation(rows)]
        ).where(rng.random(rows) > 0.05),
    )
    table = _stored(frame, 4, tmp_path)
    bins = time_bins(frame["label_time"])
    assert bins is not None and len(bins) > 5
    for rate in (0.1, 0.8):  # the smaller class: positives, then negatives
        positive = rng.random(rows) < rate
        for use_bins in (bins, None):
            expected_rows = _exact_order(np.arange(rows, dtype="float64"), positive, use_bins)
            for column in ("ids", "words", "holes", "text", "numbers", "amount", "when"):
                expected = _exact_order(order_scores(frame, column), positive, use_bins)
                for form in (frame, table):
                    row_order, by_id = measure_order(form, column, positive, use_bins, 0.55)
                    assert (row_order.auc, row_order.missing, row_order.auc_within_time) == (
                        expected_rows
                    )
                    assert (by_id.auc, by_id.missing, by_id.auc_within_time) == expected
                    assert by_id.max_error == 0.0


def test_text_that_cannot_be_keyed_is_ranked_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's byte strings drop trailing NULs, so "a" would tie "a\\x00"; one long value
    among short ones would pad every key to its length. Such text is not keyed and the id
    is ranked whole instead, with the same measures."""
    assert text_keys(pd.Series(["a", "a\x00"])) is None
    keyed = text_keys(pd.Series(["b", None, "ab", "é"]))
    assert keyed is not None
    keys, missing = keyed
    assert list(keys) == [b"b", b"ab", "é".encode()] and list(missing) == [0, 1, 0, 0]
    monkeypatch.setattr(rank_counts, "_PADDED_FREE", 0)
    long_one = pd.Series([f"a{n}" for n in range(400)] + ["x" * 100])
    assert text_keys(long_one) is None
    assert text_keys(long_one[:400]) is not None
    positive = np.arange(401) % 5 == 0
    nul = pd.Series([f"a\x00{n % 7}" if n % 3 else f"a{n}" for n in range(401)])
    for ids in (nul, long_one):
        frame = pd.DataFrame({"ids": ids})
        expected = _exact_order(order_scores(frame, "ids"), positive, None)
        by_id = measure_order(frame, "ids", positive, None, 1.0)[1]
        assert (by_id.auc, by_id.missing, by_id.auc_within_time) == expected


@pytest.mark.usefixtures("small_chunks")
def test_counting_pairs_keeps_the_whole_columns_bounds_and_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long text value in one part only would pad every key of the smaller class to its
    length for that part: the id is ranked whole instead. Dates with a
    placeholder beyond 2262 in one part are keyed in one unit for every part, so equal
    times tie as in the whole column. In memory, only the id column is copied."""
    monkeypatch.setattr(rank_counts, "_PADDED_FREE", 0)
    rows = 60
    positive = np.arange(rows) % 3 == 0
    ids = pd.Series([f"id{n:03d}" for n in range(rows - 1)] + ["x" * 5_000])
    assert text_keys(ids[:-1]) is not None  # each part alone is within the bound
    dates = pd.Series(pd.to_datetime(["2024-01-01 00:00:00.000001"] * (rows - 1)).astype("M8[us]"))
    dates = pd.concat([dates, pd.Series([pd.Timestamp("9999-12-31")]).astype("M8[us]")])
    frame = pd.DataFrame({"ids": ids, "dates": dates.to_numpy()})
    frame["dates"] = frame["dates"].where(np.arange(rows) % 4 != 1)
    table = _stored(frame, 3, tmp_path)
    for form in (frame, table):
        for column in ("ids", "dates"):
            expected = _exact_order(order_scores(frame, column), positive, None)
            by_id = measure_order(form, column, positive, None, 1.0)[1]
            assert (by_id.auc, by_id.missing, by_id.auc_within_time) == expected
        assert rank_counts.value_rank_counts(form, "ids", positive, None) is None
    wide = pd.DataFrame(np.ones((20_000, 40)), columns=[f"c{i}" for i in range(40)])
    wide["ids"] = [f"id{n}" for n in range(20_000)]
    # Once before measuring: the first call's lazy imports (numpy.strings) are not copies.
    rank_counts.value_rank_counts(wide.head(10), "ids", np.arange(10) % 2 == 0, None)
    tracemalloc.start()
    rank_counts.value_rank_counts(wide, "ids", np.arange(20_000) % 2 == 0, None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.1 * wide.memory_usage().sum()


@pytest.mark.parametrize("gathered", [part_ranks.GATHER_ROWS, 5])
def test_time_bins_of_a_stored_table_equal_the_whole_columns(
    tmp_path: Path, gathered: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Label-time bins read a partition at a time are the whole column's: the same rows in
    each bin, rows without a time in a bin of their own, one unit for every partition when
    one holds a time past 2262, zoned times; None with fewer than two times. With few
    values gathered, the quantiles are narrowed down by counting over several rounds."""
    monkeypatch.setattr(part_ranks, "GATHER_ROWS", gathered)
    rng = np.random.default_rng(5)
    rows = 500
    times = pd.Series(pd.date_range("2024-01-01", periods=rows, freq="37min", tz="Europe/Berlin"))
    shuffled = times.iloc[rng.permutation(rows)].reset_index(drop=True)
    holes = shuffled.where(rng.random(rows) > 0.1)
    far = shuffled.dt.tz_localize(None).astype("M8[us]").copy()
    far.iloc[450] = pd.Timestamp("9999-12-31")
    frame = pd.DataFrame(
        {"zoned": shuffled, "holes": holes, "far": far, "one": holes.where(np.arange(rows) == 3)}
    )
    table = _stored(frame, 4, tmp_path)
    for column in ("zoned", "holes", "far", "one"):
        expected = time_bins(frame[column])
        for form in (frame, table):
            found = column_time_bins(form, column)
            if expected is None:
                assert found is None
                continue
            assert found is not None
            assert [b.tolist() for b in found] == [b.tolist() for b in expected]
    assert time_bins(frame["one"]) is None


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


def _categorical(rows: int, positive: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["red", "green", "blue", None, np.nan], dtype=object)
    frame = _quirky(rows, seed)[["text", "flag"]].assign(
        words=words[rng.integers(0, len(words), rows)],
        # Each partition's categories differ; the stored table reads their union.
        coded=pd.Categorical(rng.choice(["x", "y", "z"], rows)),
        unique=[f"u{i}" for i in range(rows)],
        rare=np.where(rng.random(rows) < 0.02, "odd", "even"),
        # Categories that follow the class: the screen cannot settle it.
        leak=np.where(positive ^ (rng.random(rows) < 0.02), "yes", "no"),
        # No value at all in the first partitions (a field added later), or anywhere.
        late=np.where(np.arange(rows) < rows // 2, None, rng.choice(["p", "q"], rows)),
        empty=np.full(rows, None, dtype=object),
    )
    return frame.astype({"unique": "str"})


def test_categories_counted_by_cell_a_partition_at_a_time_screen_as_the_whole_column(
    tmp_path: Path,
) -> None:
    """The out-of-fold rates' screen from counts by (fold, category), partition by partition,
    is the whole column's: the same bound where it settles, None where it cannot."""
    rows = 900
    positive = np.random.default_rng(5).random(rows) < 0.15
    frame = _categorical(rows, positive, 5)
    writer = TableWriter(frame.head(0), str(tmp_path))
    orders = set()
    for number, rows_of_part in enumerate(np.array_split(np.arange(rows), 5)):
        part = frame.iloc[rows_of_part]
        # Each partition's own categories, in the order its values come.
        seen = list(part["coded"].astype(str).unique())
        writer.add(number, part.assign(coded=pd.Categorical(part["coded"].astype(str), seen)))
        orders.add(tuple(seen))
    table = writer.table()
    assert len(orders) > 1
    folds = fold_of_rows(rows)
    positive_rows = np.flatnonzero(positive)
    prior = float(positive.mean())
    settled = 0
    for column in ("text", "words", "coded", "unique", "rare", "flag", "leak", "late", "empty"):
        scores = out_of_fold_rates(category_codes(table[column]), positive, folds)
        cells = category_cells(table, column, positive, folds)
        assert cells is not None
        for below in (0.55, 0.7, 0.99):
            whole = screen_auc(scores, positive_rows, below)
            assert screen_cells(*cells, prior, below) == whole, (column, below)
            settled += whole is not None
    assert settled >= 8
    leak = category_cells(table, "leak", positive, folds)
    assert leak is not None and screen_cells(*leak, prior, 0.9) is None


@pytest.mark.parametrize("cap", [1_000_000, 2])
def test_target_auc_of_a_stored_table_is_the_in_memory_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    """Every column's measure, stored or in memory; past the cap of categories a stored
    column is read whole and screened as in memory."""
    monkeypatch.setattr(auc, "MAX_SCREENED_CATEGORIES", cap)
    rows = 600
    positive = np.random.default_rng(8).random(rows) < 0.2
    frame = _categorical(rows, positive, 8).assign(amount=np.arange(rows, dtype=float))
    table = _stored(frame, 4, tmp_path)
    columns = list(frame.columns)
    for recheck_at in (0.6, 0.95):
        stored = measure_target_auc(table, columns, positive, None, recheck_at)
        in_memory = measure_target_auc(frame, columns, positive, None, recheck_at)
        assert stored == in_memory
        assert {m.kind for m in stored} == {"categorical", "numeric"}


@pytest.mark.usefixtures("small_chunks")
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


def _whole_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the columns a stored table reads whole from now on."""
    reads: list[str] = []
    real = StoredTable._column

    def counted(stored: StoredTable, column: str) -> pd.Series:
        reads.append(column)
        return real(stored, column)

    monkeypatch.setattr(StoredTable, "_column", counted)
    return reads


def test_columns_ruled_out_as_dates_are_not_read_and_are_those_parse_date_like_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored column is read whole only when it reads as dates: the others are judged by
    their dtype and name (booleans, numbers without a year or date name) or by the sample
    parse_date_like takes, read at its rows; the dates found are the same."""
    rng = np.random.default_rng(3)
    # Day and month in doubt in the sample; the last row settles the order.
    noted = np.array(["01/02/2024"] * 299 + ["13/02/2024"], dtype=object)
    frame = _quirky(300, 3).assign(
        signup_year=rng.integers(1990, 2020, 300),
        created_at=rng.integers(1_600_000_000, 1_700_000_000, 300),
        day="2024-01-02",
        noted_on=noted,
        sparse=np.where(np.arange(300) % 5 == 0, "word", None),  # too few to sample
    )
    ruled_out = [c for c in frame.columns if never_dates(c, frame[c].dtype)]
    assert ruled_out == ["amount", "count", "nullable", "flag"]
    assert all(parse_date_like(c, frame[c]) is None for c in ruled_out)
    columns = list(frame.columns)
    in_memory = [d.column for d in date_like_columns(frame, columns)]
    assert {"signup_year", "created_at", "day", "when", "noted_on"} <= set(in_memory)
    table = _stored(frame, 3, tmp_path)
    read = _whole_reads(monkeypatch)
    assert [d.column for d in date_like_columns(table, columns)] == in_memory
    assert sorted(read) == sorted(in_memory)


@pytest.mark.usefixtures("small_chunks")
def test_dates_past_the_nanosecond_range_are_measured_not_an_error(tmp_path: Path) -> None:
    """A placeholder 9999-12-31 read from text stays in microseconds: it counts as known
    after the label time (nanosecond label times), its days are right, and the label-time
    bins hold every row, in memory and stored."""
    label_times = pd.date_range("2024-01-01", periods=30, freq="D").astype("datetime64[ns]")
    closed = np.where(np.arange(30) % 10 == 0, "9999-12-31", "2023-06-01")
    frame = pd.DataFrame({"event_time": label_times, "closed_at": closed})
    parsed = parse_date_like("closed_at", frame["closed_at"])
    assert parsed is not None and str(parsed.values.dtype) == "datetime64[us]"
    for form in (frame, _stored(frame.assign(closed_at=parsed.values), 4, tmp_path)):
        (lead,) = measure_post_label_dates(form, "event_time", ["closed_at"])
        assert (lead.non_null, lead.after_label_time) == (30, 3)
        expected = (pd.Timestamp("9999-12-31") - pd.Timestamp("2024-01-01")).days
        assert lead.max_lead_days == pytest.approx(expected)
    days = to_days(parsed.values)
    assert days[0] == pytest.approx((pd.Timestamp("9999-12-31") - pd.Timestamp("1970-01-01")).days)
    assert days[1] == (pd.Timestamp("2023-06-01") - pd.Timestamp("1970-01-01")).days
    bins = time_bins(pd.Series(parsed.values))
    assert bins is not None and sorted(np.concatenate(bins).tolist()) == list(range(30))


@pytest.mark.parametrize("by_day", [False, True])
def test_date_leads_of_a_stored_table_a_partition_at_a_time_are_the_in_memory_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_day: bool
) -> None:
    """Datetime columns (naive, zoned, with gaps, past the nanosecond range), text and year
    columns compared with the label time partition by partition (the text and years parsed
    a partition at a time): the same leads as in memory, whether the label time has hours
    or only days; no column is read whole."""
    rng = np.random.default_rng(3)
    rows = 400
    start = pd.Timestamp("2024-01-01")
    label = start + pd.to_timedelta(rng.integers(0, 300, rows), unit="D")
    if not by_day:
        label = label + pd.to_timedelta(rng.integers(0, 24, rows), unit="h")
    label = pd.Series(label).where(rng.random(rows) > 0.05)  # some rows without one
    later = pd.Series(label + pd.to_timedelta(rng.integers(-40, 5, rows), unit="D"))
    frame = pd.DataFrame(
        {
            "event_time": label,
            "closed_at": later + pd.Timedelta(hours=3),
            "paid_at": later.dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"),
            "gap_at": later.where(rng.random(rows) < 0.5),
            "far_at": later.astype("datetime64[us]").where(
                np.arange(rows) % 50 != 0, pd.Timestamp("2900-01-01")
            ),
            "noted_on": later.dt.strftime("%Y-%m-%d"),
            "year": later.dt.year.astype("Int64"),
            "amount": rng.normal(size=rows),
        }
    )
    columns = [c for c in frame.columns if c != "event_time"]
    table = _stored(frame, 3, tmp_path)
    expected = measure_post_label_dates(frame, "event_time", columns)
    assert [lead.column for lead in expected] == columns[:-1]
    assert any(lead.after_label_time for lead in expected)
    reads = _whole_reads(monkeypatch)
    assert measure_post_label_dates(table, "event_time", columns) == expected
    assert reads == []
