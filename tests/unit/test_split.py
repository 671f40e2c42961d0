import numpy as np
import pandas as pd
import pytest

from retrain_guard.schemas.params import DataParams, SplitParams
from retrain_guard.tasks.split import (
    FRACTION_TOO_LARGE,
    FRACTION_TOO_SMALL,
    judge_holdout_fraction,
    judge_split,
    make_split,
    split_by_time,
)
from tests.leakage_cases import coarse_label_times

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
    assert codes == {
        "insufficient_minority": "pass",
        "holdout_fraction_off": "pass",
        "random_split_on_timed_data": "warn",
    }


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


# --- Coarse label times: rows tied at the cut ------------------------------------------------


@pytest.mark.parametrize("period", ["year", "month"])
def test_coarse_label_times_warn_that_the_holdout_is_far_from_the_fraction_asked(
    period: str,
) -> None:
    frame = coarse_label_times(3000, 0, period)
    split = make_split(frame, TIMED, SplitParams(holdout_fraction=0.2))
    times = frame["t"]
    # Rows with the same label time never fall on both sides.
    assert not set(times.iloc[split.train]) & set(times.iloc[split.holdout])
    described = split.describe()
    realised = described["holdout_fraction_realised"]
    assert isinstance(realised, float) and realised > 0.2 * FRACTION_TOO_LARGE
    assert described["holdout_fraction_asked"] == 0.2
    assert described["rows_tied_at_cut"] == len(split.holdout) == (times == times.max()).sum()
    checks = {c.code: c for c in judge_split(split, frame["y"], 1, TIMED)}
    warned = checks["holdout_fraction_off"]
    assert warned.status == "warn" and warned.stage == "split" and warned.columns == ["t"]
    assert f"{realised:.1%} of the timed rows, 20.0% asked" in warned.summary
    assert f"{described['rows_tied_at_cut']} rows share the label time" in warned.summary
    assert str(split.cut) in warned.summary and "split.holdout_fraction" in warned.summary


def test_a_tied_block_that_would_make_the_holdout_far_too_large_goes_to_training() -> None:
    # 9 months of 100 rows, then 200 and 250: the quantile falls inside month 10.
    months = pd.date_range("2024-01-01", periods=11, freq="MS")
    times = pd.Series(np.repeat(months, [100] * 9 + [200, 250]))
    split = split_by_time(times, holdout_fraction=0.2, gap_days=0)
    # Month 10 in the holdout: 450 / 1350 = 33%, above 1.5 x 20%; in training: 18.5%.
    assert split.tied_side == "training" and split.tied_rows == 200
    assert len(split.holdout) == 250 and split.cut == months[-1].isoformat()
    assert judge_holdout_fraction(split, TIMED).status == "pass"


def test_a_tied_block_stays_in_the_holdout_when_that_is_not_far_from_the_fraction() -> None:
    months = pd.date_range("2024-01-01", periods=11, freq="MS")
    times = pd.Series(np.repeat(months, [100] * 9 + [130, 250]))
    split = split_by_time(times, holdout_fraction=0.2, gap_days=0)
    # Month 10 in the holdout: 380 / 1280 = 29.7%, within 1.5 x 20%: the holdout keeps it.
    assert split.tied_side == "holdout" and split.tied_rows == 130
    assert len(split.holdout) == 380


def test_fine_label_times_realise_the_fraction_asked_and_pass() -> None:
    frame = _frame(400)
    split = make_split(frame, TIMED, SplitParams(holdout_fraction=0.25))
    check = judge_holdout_fraction(split, TIMED)
    assert check.status == "pass"
    assert check.metrics["holdout_fraction_realised"] == pytest.approx(0.25, abs=0.01)
    assert split.describe()["rows_tied_at_cut"] == 2


def test_a_holdout_far_below_the_fraction_asked_warns() -> None:
    # Four fifths of the rows share the middle day: to the holdout it would be 90% of the
    # rows, to training 10%; the closer one is still below half the 30% asked.
    days = ["2024-01-01"] * 10 + ["2024-01-02"] * 80 + ["2024-01-03"] * 10
    split = split_by_time(pd.Series(pd.to_datetime(days)), holdout_fraction=0.3, gap_days=0)
    assert split.tied_side == "training" and split.tied_rows == 80
    assert split.realised_fraction == pytest.approx(0.1)
    assert split.realised_fraction < 0.3 * FRACTION_TOO_SMALL
    check = judge_holdout_fraction(split, TIMED)
    assert check.status == "warn"
    assert "80 rows share the label time 2024-01-02T00:00:00" in check.summary
    assert "all went to the training part" in check.summary


def test_a_class_with_fewer_rows_than_a_split_needs_fails_too_few_rows() -> None:
    from retrain_guard.tasks.split import MIN_ROWS_PER_CLASS, TOO_FEW_ROWS, judge_class_rows

    failed = judge_class_rows({"0": 1, "1": 1}, "y")
    assert (failed.code, failed.status, failed.stage) == (TOO_FEW_ROWS, "fail", "profile")
    assert "1 row(s) of class 0, 1 row(s) of class 1 in 2 labelled rows" in failed.summary
    assert f"at least {MIN_ROWS_PER_CLASS} rows of each class" in failed.summary
    assert judge_class_rows({"0": 50, "1": MIN_ROWS_PER_CLASS}, "y").status == "pass"
    assert judge_class_rows({"0": 50, "1": MIN_ROWS_PER_CLASS - 1}, "y").status == "fail"
