import numpy as np
import pandas as pd
import pytest

from schemas.params import DataParams, SplitParams
from tasks.split import judge_split, make_split, split_by_time

TIMED = DataParams(path="x", label="y", label_time="t")


def _frame(n: int = 100, positives_every: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": pd.date_range("2025-01-01", periods=n, freq="D").repeat(2)[:n],
            "y": (np.arange(n) % positives_every == 0).astype(int),
        }
    )


def test_time_split_puts_every_holdout_row_after_every_training_row() -> None:
    frame = _frame()
    split = split_by_time(frame["t"], holdout_fraction=0.2, gap_days=0)
    assert frame["t"].iloc[split.train].max() < frame["t"].iloc[split.holdout].min()
    assert len(split.train) + len(split.holdout) == len(frame)
    assert 0.15 <= len(split.holdout) / len(frame) <= 0.25


def test_gap_leaves_rows_out_of_both_parts() -> None:
    frame = _frame()
    split = split_by_time(frame["t"], holdout_fraction=0.2, gap_days=5)
    gap = frame["t"].iloc[split.holdout].min() - frame["t"].iloc[split.train].max()
    assert gap > pd.Timedelta(days=5)
    assert split.gap_rows > 0
    assert len(split.train) + len(split.holdout) + split.gap_rows == len(frame)


def test_a_part_without_the_minority_class_fails() -> None:
    frame = _frame()
    frame.loc[frame.index[-30:], "y"] = 0
    split = make_split(frame, TIMED, SplitParams())
    checks = judge_split(split, frame["y"], 1, TIMED)
    assert checks[0].code == "insufficient_minority" and checks[0].status == "fail"
    assert "the holdout part has 0 row(s) of class 1" in checks[0].summary


def test_random_split_on_timed_data_is_reported() -> None:
    frame = _frame()
    split = make_split(frame, TIMED, SplitParams(strategy="random"))
    codes = {c.code: c.status for c in judge_split(split, frame["y"], 1, TIMED)}
    assert codes == {"insufficient_minority": "pass", "random_split_on_timed_data": "warn"}


def test_auto_without_label_time_splits_at_random_and_stratifies() -> None:
    frame = _frame()
    data = DataParams(path="x", label="y")
    split = make_split(frame, data, SplitParams())
    assert split.strategy == "random"
    share = frame["y"].iloc[split.holdout].mean()
    assert share == pytest.approx(frame["y"].mean(), abs=0.02)


def test_rows_without_a_label_time_are_reported_not_hidden_in_the_gap() -> None:
    frame = _frame()
    frame.loc[[3, 50], "t"] = pd.NaT
    split = make_split(frame, TIMED, SplitParams())
    assert split.untimed_rows == 2 and split.gap_rows == 0
    assert len(split.train) + len(split.holdout) == len(frame) - 2
    checks = {c.code: c for c in judge_split(split, frame["y"], 1, TIMED)}
    assert checks["rows_without_label_time"].status == "warn"
    assert "2 row(s) without a label time" in checks["rows_without_label_time"].summary
