"""The time split of a stored table (tasks/split.py `split_stored_by_time`), cut a partition
at a time, is the whole column's (`split_by_time`): the same quantile, tied block, gap and
positions, whatever the label times' spread, ties, zone, missing values and partitions."""

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_guard.schemas.params import DataParams, SplitParams
from retrain_guard.tasks import part_ranks
from retrain_guard.tasks import split as split_module
from retrain_guard.tasks.dates import as_naive_utc
from retrain_guard.tasks.split import make_split, split_by_time, split_stored_by_time
from retrain_guard.tasks.stored_table import StoredTable
from tests.unit.test_stored_table import _stored


def _same(stored: StoredTable, frame: pd.DataFrame, fraction: float, gap: float) -> None:
    got = split_stored_by_time(stored, "t", fraction, gap)
    expected = split_by_time(as_naive_utc(frame["t"]), fraction, gap)
    for field, value in asdict(expected).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(got, field), value, err_msg=field)
        else:
            assert getattr(got, field) == value, field


def _times(kind: str, n: int, rng: np.random.Generator) -> pd.Series:
    start = pd.Timestamp("2020-01-01")
    if kind == "fine":  # distinct to the nanosecond, unsorted
        return pd.Series(start + pd.to_timedelta(rng.integers(0, 10**17, n), unit="ns"))
    if kind == "monthly":  # few label times, large tied blocks
        months = pd.date_range(start, periods=7, freq="MS")
        return pd.Series(months[np.sort(rng.integers(0, 7, n))])
    if kind == "one":
        return pd.Series([start] * n)
    if kind == "wide":  # 1700 to 2250: the nanosecond range's both ends
        low, high = pd.Timestamp("1700-01-01").value, pd.Timestamp("2250-01-01").value
        return pd.Series(pd.to_datetime(rng.integers(low, high, n, dtype=np.int64)))
    hours = pd.date_range(start, periods=n, freq="h", tz="America/New_York")
    return pd.Series(hours).sample(frac=1.0, random_state=int(rng.integers(99)))


@pytest.mark.parametrize("kind", ["fine", "monthly", "one", "wide", "zoned"])
def test_the_stored_cut_is_the_whole_columns(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few rows gathered and few ranges: the narrowing runs several rounds even here.
    monkeypatch.setattr(part_ranks, "GATHER_ROWS", 7)
    monkeypatch.setattr(part_ranks, "RANGES", 4)
    rng = np.random.default_rng(len(kind))
    times = _times(kind, 900, rng)
    frame = pd.DataFrame({"t": times.where(rng.random(900) > 0.1).reset_index(drop=True)})
    stored = _stored(frame, 5, tmp_path)
    for fraction in (0.05, 0.2, 0.5, 0.9):
        for gap in (0.0, 40.0):
            _same(stored, frame, fraction, gap)
    # A subset of the rows (the profile's labelled rows), still on disk.
    kept = np.sort(rng.choice(900, 500, replace=False))
    subset = stored.rows_at(kept, ["t"])
    _same(subset, frame.iloc[kept].reset_index(drop=True), 0.2, 0.0)


def test_no_label_time_at_all_and_no_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame({"t": pd.Series([pd.NaT] * 30, dtype="datetime64[ns]")})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _same(_stored(frame, 3, tmp_path / "a"), frame, 0.2, 0.0)
    _same(_stored(frame.iloc[:0], 1, tmp_path / "b"), frame.iloc[:0], 0.2, 0.0)


def test_make_split_cuts_a_stored_label_time_by_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"t": _times("monthly", 400, rng), "y": rng.integers(0, 2, 400)})
    stored = _stored(frame, 4, tmp_path)
    data = DataParams(path="x", label="y", label_time="t")
    whole = make_split(frame, data, SplitParams())
    calls: list[int] = []
    real = split_module.split_stored_by_time

    def counted(*args: object) -> object:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(split_module, "split_stored_by_time", counted)
    parts = make_split(stored, data, SplitParams())
    assert calls == [1]
    assert parts.describe() == whole.describe()
    np.testing.assert_array_equal(parts.holdout, whole.holdout)
