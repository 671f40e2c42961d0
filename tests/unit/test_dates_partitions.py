"""Text and numbers read as dates a partition at a time (tasks/leakage/column_dates.py): a
stored column gives the whole column's sample, distinct values and reading, so the date
checks measure what they measure in memory without reading it whole."""

from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.tasks import stored_table
from retrain_guard.tasks.dask_label_time import joined_order, whole_texts
from retrain_guard.tasks.dates import day_month_order, parse_date_like, sample_present
from retrain_guard.tasks.label_time import text_facts
from retrain_guard.tasks.leakage import date_leads
from retrain_guard.tasks.leakage.column_dates import (
    column_reading,
    column_sample,
    unsettled_column,
)
from retrain_guard.tasks.leakage.date_leads import measure_post_label_dates
from retrain_guard.tasks.leakage.temporal import (
    measure_ambiguous_dates,
    measure_declared_availability,
)
from retrain_guard.tasks.validation import declare_schema
from tests.unit.test_leakage_partitions import _whole_reads
from tests.unit.test_stored_table import _stored

ROWS = 600


def _dated(seed: int, rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, rows), unit="D")
    known = pd.Series(label + pd.to_timedelta(rng.integers(-60, 10, rows), unit="D"))
    # Every day is 12 or less until the last partition: only it settles day first.
    settled = known.where(known.dt.day <= 12, known - pd.to_timedelta(known.dt.day - 1, "D"))
    settled.iloc[-1] = pd.Timestamp("2024-03-25")
    sparse = np.arange(rows) % 20 == 0
    ambiguous = known.dt.strftime("%d/%m/%Y").where(known.dt.day <= 12, "01/01/2024")
    contradicted = ambiguous.copy()
    contradicted.iloc[[5, 500]] = ["13/01/2024", "01/13/2024"]
    return pd.DataFrame(
        {
            "event_time": label,
            "closed_date": settled.dt.strftime("%d/%m/%Y"),
            "paid_date": known.dt.strftime("%Y/%m/%d"),
            "opened_at": known.astype("datetime64[ms]").astype("int64"),
            "report_date": known.dt.strftime("%Y%m%d").astype("int64"),
            "signup_year": pd.array(known.dt.year.where(rng.random(rows) > 0.1), "Int64"),
            "noted_date": settled.dt.strftime("%d/%m/%Y").where(
                sparse | (np.arange(rows) == rows - 1)
            ),
            "visit_date": ambiguous,
            "checked_date": contradicted,
            "city": np.array(["Oslo", "Lima", None], dtype=object)[rng.integers(0, 3, rows)],
        }
    )


@pytest.mark.parametrize("seed", range(3))
def test_text_and_numbers_read_as_dates_a_partition_at_a_time_measure_as_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Day-month-year text settled only by a row of the last partition, year-first text,
    epoch milliseconds, yyyymmdd numbers, years with gaps and a mostly empty column: the
    stored table's date leads and open day/month orders are the in-memory ones, and no
    column is read whole."""
    for module in (date_leads, stored_table):
        monkeypatch.setattr(module, "CHUNK_ROWS", 7)
    frame = _dated(seed)
    columns = [c for c in frame.columns if c != "event_time"]
    table = _stored(frame, 4, tmp_path)
    # The first partition alone would leave the order open: the decision takes them all.
    assert unsettled_column(frame.iloc[:150], "closed_date") is not None
    expected = measure_post_label_dates(frame, "event_time", columns)
    read_as_dates = ["closed_date", "paid_date", "opened_at", "report_date", "signup_year"]
    assert [lead.column for lead in expected] == [*read_as_dates, "noted_date"]
    assert "day first, settled by '25/03/2024'" in expected[0].source
    assert any(lead.after_label_time for lead in expected)
    ambiguous = measure_ambiguous_dates(frame, columns)
    assert [(a.column, a.order.order) for a in ambiguous] == [
        ("visit_date", "unsettled"),
        ("checked_date", "contradictory"),
    ]
    reads = _whole_reads(monkeypatch)
    assert measure_post_label_dates(table, "event_time", columns) == expected
    assert measure_ambiguous_dates(table, columns) == ambiguous
    assert reads == []


@pytest.mark.parametrize("rows", [ROWS, 9_000])
def test_a_stored_columns_sample_and_reading_are_the_whole_columns(
    tmp_path: Path, rows: int
) -> None:
    """The sample is the one sample_present takes of the whole column (strided, or from
    every present row when the strided look finds too few), and the reading parses a
    partition as the whole column is parsed."""
    frame = _dated(0, rows)
    table = _stored(frame, 5, tmp_path)
    for column in frame.columns:
        whole = sample_present(frame[column])
        stored = column_sample(table, column)
        assert stored.tolist() == whole.tolist(), column
        reading = column_reading(table, column)
        parsed = parse_date_like(column, frame[column])
        assert (reading is None or reading.read is None) == (parsed is None), column
        if reading is not None and reading.read is not None and parsed is not None:
            assert reading.how == parsed.how
            pieces = [reading.read(frame[column].iloc[i : i + 130]) for i in range(0, rows, 130)]
            pd.testing.assert_series_equal(pd.concat(pieces), parsed.values, check_names=False)


def _day_month_text(rng: np.random.Generator, rows: int, day_first: bool) -> list[str]:
    days, months = rng.integers(1, 29, rows), rng.integers(1, 13, rows)
    first, second = (days, months) if day_first else (months, days)
    return [f"{a:02d}/{b:02d}/2024" for a, b in zip(first, second, strict=True)]


@pytest.mark.parametrize("seed", range(30))
def test_a_columns_order_joined_from_its_parts_is_the_whole_columns(seed: int) -> None:
    """Parts that each settle nothing, settle it only in a later part, contradict each other
    across parts, use another separator or hold other text: joining the parts' orders gives
    day_month_order of the whole column, examples included."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(int(rng.integers(1, 5))):
        rows = int(rng.integers(1, 40))
        text = pd.Series(_day_month_text(rng, rows, bool(rng.random() < 0.5)), dtype=object)
        if rng.random() < 0.5:  # first fields up to 9: such a part may settle nothing
            text = text.str.replace(
                r"^(\d\d)/(\d\d)/", lambda m: f"0{int(m[1]) % 9 + 1}/{m[2]}/", regex=True
            )
        if rng.random() < 0.1:
            text.iloc[0] = text.iloc[0].replace("/", "-")
        if rng.random() < 0.05:
            text.iloc[-1] = "soon"
        if rng.random() < 0.2:
            text.iloc[: rows // 2] = None
        parts.append(text)
    whole = pd.concat(parts, ignore_index=True)
    orders = [day_month_order(p) for p in parts if p.notna().any()]
    assert joined_order(orders) == day_month_order(whole)


def _label_time_texts(rows: int, seed: int) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    times = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, rows), unit="s")
    iso = pd.Series(times.strftime("%Y-%m-%dT%H:%M:%S"), dtype=object)
    cut = np.arange(rows) >= rows // 3
    return {
        "zones_later": iso.where(~cut, iso + "+01:00"),
        "iso_mostly": iso.where(rng.random(rows) < 0.7, "n/a"),
        "text_mostly": iso.where(rng.random(rows) < 0.3, "n/a"),
        "day_month": pd.Series(times.strftime("%d/%m/%Y"), dtype=object),
        "year_first": pd.Series(times.strftime("%Y/%m/%d"), dtype=object),
        "sparse": iso.where(rng.random(rows) < 0.03),
    }


@pytest.mark.parametrize("rows", [700, 12_000])
def test_a_text_label_times_facts_joined_from_partitions_are_the_whole_columns(
    rows: int,
) -> None:
    """whole_texts on a Dask table of several partitions finds what text_facts finds
    on the whole column: the same sample (a stride of the rows, or of the present values
    when the column is mostly empty), ISO or not, the ISO value without a zone, and the
    day/month order the whole column settles."""
    for seed, (name, text) in enumerate(_label_time_texts(rows, 3).items()):
        frame = pd.DataFrame({"event_time": text, "y": np.arange(rows) % 2})
        data = DataParams(path="unused.parquet", label="y", label_time="event_time")
        declared = declare_schema(SchemaParams(), data, list(frame.columns))
        table = dd.from_pandas(frame, npartitions=3 + seed % 3)
        with dask.config.set(scheduler="synchronous"):
            found = whole_texts(table, declared, data, [])["event_time"]
        expected = text_facts(frame["event_time"])
        assert found.sample.tolist() == expected.sample.tolist(), name
        assert (found.iso, found.naive_example) == (expected.iso, expected.naive_example), name
        if not found.iso:
            assert found.order == day_month_order(frame["event_time"]), name


@pytest.mark.parametrize("zoned", [False, True])
def test_known_at_declarations_of_a_stored_table_are_measured_a_partition_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zoned: bool
) -> None:
    """An offset from the label time, a datetime column, day-month-year text and epoch
    numbers declared as known-at times: the same leads as in memory, with no column read
    whole; a column read only by force (year-first text without a date name) is read
    whole, and measured alike."""
    for module in (date_leads, stored_table):
        monkeypatch.setattr(module, "CHUNK_ROWS", 7)
    rng = np.random.default_rng(4)
    label = pd.Series(
        pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, ROWS), unit="s")
    )
    if zoned:
        label = label.dt.tz_localize("Europe/Paris", ambiguous="NaT", nonexistent="NaT")
    known = pd.Series(
        pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, ROWS), unit="s")
    )
    frame = pd.DataFrame(
        {
            "event_time": label,
            "amount": rng.normal(size=ROWS),
            "balance": np.where(rng.random(ROWS) < 0.2, np.nan, rng.normal(size=ROWS)),
            "score": rng.normal(size=ROWS),
            "rating": rng.normal(size=ROWS),
            "grade": rng.normal(size=ROWS),
            "reviewed_at": known,
            "settled_date": known.dt.strftime("%d/%m/%Y"),
            "approved_at": known.astype("datetime64[s]").astype("int64"),
            "approval": known.dt.strftime("%Y/%m/%d"),
        }
    )
    declarations: dict[str, str | pd.Timedelta] = {
        "amount": pd.Timedelta(0),
        "balance": pd.Timedelta(hours=-6),
        "score": "reviewed_at",
        "rating": "settled_date",
        "grade": "approved_at",
        "approval_only": "approval",
    }
    frame["approval_only"] = rng.normal(size=ROWS)
    expected = measure_declared_availability(frame, "event_time", declarations)
    assert any(lead.after_label_time for lead in expected)
    table = _stored(frame, 4, tmp_path)
    reads = _whole_reads(monkeypatch)
    assert measure_declared_availability(table, "event_time", declarations) == expected
    assert set(reads) == {"approval", "approval_only", "event_time"}  # the forced one's
