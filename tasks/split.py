"""The holdout split: by label time when there is one, so the holdout is the future."""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from sklearn.model_selection import train_test_split

from retrain_guard.schemas.params import DataParams, SplitParams
from retrain_guard.schemas.report import CheckResult, Status
from retrain_guard.tasks.dates import as_naive_utc
from retrain_guard.tasks.part_map import iter_parts, map_parts
from retrain_guard.tasks.part_ranks import bounds, ranked
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.stored_table import Frame, StoredTable
from retrain_guard.tasks.training import MIN_TRAINING_MINORITY_ROWS

CODE = "insufficient_minority"
RANDOM_ON_TIMED = "random_split_on_timed_data"
UNTIMED = "rows_without_label_time"
FRACTION_OFF = "holdout_fraction_off"
TOO_FEW_ROWS = "too_few_rows"
# Fewer minority rows than this in either part leaves nothing to learn or measure.
MIN_MINORITY_ROWS = 1
# Before any split: each class needs the rows the training part needs to learn from
# (tasks/training.py MIN_TRAINING_MINORITY_ROWS) plus the holdout's to judge the model.
MIN_ROWS_PER_CLASS = MIN_TRAINING_MINORITY_ROWS + MIN_MINORITY_ROWS
# The realised holdout is "far" from split.holdout_fraction outside these multiples of it:
# half as large halves the holdout's minority rows (a noisier gate), 1.5 times as large takes
# a third of the training rows the user meant to learn from.
FRACTION_TOO_LARGE = 1.5
FRACTION_TOO_SMALL = 0.5


@dataclass(frozen=True)
class Split:
    """Row positions of the training part and the holdout, and how they were cut.

    `tied_rows` share the label time `tied_at` found at the cut's quantile (they cannot be
    divided, so all went to `tied_side`); `asked_fraction` is split.holdout_fraction.
    """

    train: np.ndarray
    holdout: np.ndarray
    strategy: str
    cut: str | None
    gap_rows: int
    untimed_rows: int = 0
    tied_rows: int = 0
    tied_side: str | None = None
    tied_at: str | None = None
    asked_fraction: float | None = None

    @property
    def realised_fraction(self) -> float:
        """Return the holdout's share of the rows the split placed (timed rows for time)."""
        placed = len(self.train) + len(self.holdout) + self.gap_rows
        return len(self.holdout) / placed if placed else 0.0

    def describe(self) -> dict[str, JsonValue]:
        return {
            "strategy": self.strategy,
            "cut": self.cut,
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "gap_rows": self.gap_rows,
            "untimed_rows": self.untimed_rows,
            "rows_tied_at_cut": self.tied_rows,
            "tied_rows_side": self.tied_side,
            "tied_label_time": self.tied_at,
            "holdout_fraction_asked": self.asked_fraction,
            "holdout_fraction_realised": round(self.realised_fraction, 6),
        }


@dataclass(frozen=True)
class Quantile:
    """Where the time split's quantile falls among the `timed` rows: the label time `at`
    of rank `cut_rank`, how many rows are before it (`first`) and up to it (`after`), and
    the next later label time (None: `at` is the latest)."""

    timed: int
    at: pd.Timestamp
    first: int
    after: int
    later: pd.Timestamp | None

    def cut(self, holdout_fraction: float) -> tuple[pd.Timestamp, bool]:
        """Return the cut (the holdout's first label time) and whether the block of rows
        at `at` goes to the training part.

        The block stays in the holdout (never smaller than asked) unless that makes the
        holdout more than FRACTION_TOO_LARGE times holdout_fraction, or leaves no training
        rows, and training is the closer side.
        """
        n = self.timed
        with_block = (n - self.first) / n
        without_block = (n - self.after) / n
        to_training = self.later is not None and (
            self.first == 0
            or (
                with_block > holdout_fraction * FRACTION_TOO_LARGE
                and abs(without_block - holdout_fraction) < abs(with_block - holdout_fraction)
            )
        )
        return (self.later if to_training and self.later is not None else self.at), to_training


def cut_rank(timed: int, holdout_fraction: float) -> int:
    """The rank (from 0) among the timed rows' sorted label times of the quantile's time."""
    return int((timed - 1) * (1.0 - holdout_fraction))


def untimed_split(rows: int, holdout_fraction: float) -> Split:
    """No label time at all: nothing to cut on; judge_split fails with
    rows_without_label_time, no traceback."""
    empty = np.array([], dtype="int64")
    return Split(empty, empty, "time", None, 0, untimed_rows=rows, asked_fraction=holdout_fraction)


def timed_split(
    train: np.ndarray, holdout: np.ndarray, rows: int, quantile: Quantile, holdout_fraction: float
) -> Split:
    """The Split of a time cut: `train` and `holdout` the positions it placed of `rows`."""
    cut, to_training = quantile.cut(holdout_fraction)
    untimed = rows - quantile.timed
    return Split(
        train=train,
        holdout=holdout,
        strategy="time",
        cut=cut.isoformat(),
        gap_rows=rows - len(train) - len(holdout) - untimed,
        untimed_rows=untimed,
        tied_rows=quantile.after - quantile.first,
        tied_side="training" if to_training else "holdout",
        tied_at=quantile.at.isoformat(),
        asked_fraction=holdout_fraction,
    )


def split_by_time(label_times: pd.Series, holdout_fraction: float, gap_days: float) -> Split:
    """Cut where (1 - holdout_fraction) of the timed rows fall before; the rest is the holdout.

    Rows with the same label time never fall on both sides: the rows at the quantile's label
    time go to the holdout with all later ones, unless (monthly or yearly label times) that
    makes the holdout more than FRACTION_TOO_LARGE times holdout_fraction and putting them in
    the training part brings it closer (`Quantile.cut`); both parts keep rows when the times
    allow it. Training rows end `gap_days` before the cut. A stored table's label time is
    cut a partition at a time instead (`split_stored_by_time`), with the same result.
    """
    times = label_times.reset_index(drop=True)
    ordered = np.sort(times.dropna().to_numpy())
    if not len(ordered):
        return untimed_split(len(times), holdout_fraction)
    n = len(ordered)
    at = ordered[cut_rank(n, holdout_fraction)]
    first = int(np.searchsorted(ordered, at, side="left"))
    after = int(np.searchsorted(ordered, at, side="right"))
    later = pd.Timestamp(ordered[after]) if after < n else None
    quantile = Quantile(n, pd.Timestamp(at), first, after, later)
    cut, _ = quantile.cut(holdout_fraction)
    holdout_mask = (times >= cut).to_numpy()
    train_mask = (times < cut - pd.Timedelta(days=gap_days)).to_numpy()
    positions = np.arange(len(times))
    return timed_split(
        positions[train_mask], positions[holdout_mask], len(times), quantile, holdout_fraction
    )


def split_stored_by_time(
    frame: StoredTable, column: str, holdout_fraction: float, gap_days: float
) -> Split:
    """`split_by_time` of a stored table's label time `column`, read a partition at a time
    by steps that run where the partitions are (tasks/part_map.py): the quantile's label
    time found by counting (tasks/part_ranks.py), then the rows around it and each side.
    The flow never holds the column, only counts, a few label times and the positions.
    """
    rows = len(frame)
    found = bounds(frame, [column], _stamp_values, (column,))
    if not found[0]:
        return untimed_split(rows, holdout_fraction)
    rank = cut_rank(found[0], holdout_fraction)
    (value,) = ranked(frame, [column], _stamp_values, (column,), [rank], found)
    at = np.int64(value).view(_naive(frame.dtype(column)))
    around = map_parts(frame, [column], _around, column, at)
    first = sum(a[0] for a in around)
    later = [a[2] for a in around if a[2] is not None]
    quantile = Quantile(
        found[0],
        pd.Timestamp(at),
        first,
        first + sum(a[1] for a in around),
        pd.Timestamp(min(later)) if later else None,
    )
    cut, _ = quantile.cut(holdout_fraction)
    train_end = (cut - pd.Timedelta(days=gap_days)).to_datetime64()
    train, holdout, start = [], [], 0
    for size, part_train, part_holdout in iter_parts(
        frame, [column], _sides, column, cut.to_datetime64(), train_end
    ):
        train.append(part_train + start)
        holdout.append(part_holdout + start)
        start += size
    return timed_split(
        np.concatenate(train), np.concatenate(holdout), rows, quantile, holdout_fraction
    )


def _naive(dtype: object) -> np.dtype:
    """The numpy dtype of a datetime column's values as naive UTC (`as_naive_utc`)."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        return np.dtype(f"M8[{dtype.unit}]")
    assert isinstance(dtype, np.dtype)
    return dtype


def _stamps(chunk: pd.DataFrame, column: str) -> np.ndarray:
    """The chunk's label times as naive UTC numpy datetimes (NaT where missing)."""
    return as_naive_utc(chunk[column]).to_numpy()


def _stamp_values(chunk: pd.DataFrame, column: str) -> np.ndarray:
    """The chunk's present label times as int64 (tasks/part_ranks.py)."""
    stamps = _stamps(chunk, column)
    return stamps[~np.isnat(stamps)].view("int64")


Stamp = np.datetime64 | None


def _around(chunk: pd.DataFrame, column: str, at: np.datetime64) -> tuple[int, int, Stamp]:
    """Rows before `at`, at it, and the earliest later label time (None: none)."""
    stamps = _stamps(chunk, column)
    later = stamps[stamps > at]
    return int((stamps < at).sum()), int((stamps == at).sum()), later.min() if len(later) else None


def _sides(
    chunk: pd.DataFrame, column: str, cut: np.datetime64, train_end: np.datetime64
) -> tuple[int, np.ndarray, np.ndarray]:
    """The chunk's rows, and the positions in it of its training rows and holdout rows."""
    stamps = _stamps(chunk, column)
    return len(stamps), np.flatnonzero(stamps < train_end), np.flatnonzero(stamps >= cut)


def split_at_random(y: pd.Series, holdout_fraction: float, seed: int) -> Split:
    """Stratified random split; only sound when rows carry no time order."""
    positions = np.arange(len(y))
    counts = y.value_counts()
    # Stratifying needs two rows per class and room for every class in both parts; a
    # tiny table splits unstratified and judge_split reports a part without a class.
    n_holdout = math.ceil(len(y) * holdout_fraction)
    room = min(n_holdout, len(y) - n_holdout) >= len(counts)
    stratify = y.to_numpy() if counts.min() >= 2 and room else None
    train, holdout = train_test_split(
        positions, test_size=holdout_fraction, random_state=seed, stratify=stratify
    )
    return Split(
        np.sort(train), np.sort(holdout), "random", None, 0, asked_fraction=holdout_fraction
    )


def make_split(frame: Frame, data: DataParams, params: SplitParams) -> Split:
    """Split by time when asked (or 'auto' with a label time), else at random."""
    use_time = params.strategy == "time" or (
        params.strategy == "auto" and data.label_time is not None
    )
    if use_time:
        if data.label_time is None:
            raise ValueError("split.strategy 'time' needs data.label_time")
        if isinstance(frame, StoredTable) and is_datetime64_any_dtype(
            frame.dtypes[data.label_time]
        ):
            return split_stored_by_time(
                frame, data.label_time, params.holdout_fraction, params.gap_days
            )
        return split_by_time(
            as_naive_utc(frame[data.label_time]), params.holdout_fraction, params.gap_days
        )
    return split_at_random(frame[data.label], params.holdout_fraction, params.seed)


def judge_class_rows(counts: dict[str, int], label: str) -> CheckResult:
    """Fail when a class has fewer rows than a split needs to train on and judge it."""
    short = {cls: n for cls, n in counts.items() if n < MIN_ROWS_PER_CLASS}
    metrics: dict[str, JsonValue] = {
        "class_counts": dict[str, JsonValue](counts),
        "needed_per_class": MIN_ROWS_PER_CLASS,
    }
    status: Status
    if not short:
        status, summary = "pass", f"every class of {label!r} has at least {MIN_ROWS_PER_CLASS} rows"
    else:
        had = ", ".join(f"{n} row(s) of class {cls}" for cls, n in short.items())
        status, summary = (
            "fail",
            f"label {label!r} has {had} in {sum(counts.values())} labelled rows; training "
            f"and judging need at least {MIN_ROWS_PER_CLASS} rows of each class "
            f"({MIN_TRAINING_MINORITY_ROWS} to learn from, {MIN_MINORITY_ROWS} in the holdout)",
        )
    return check(TOO_FEW_ROWS).result(status, summary, columns=[label], metrics=metrics)


def judge_split(
    split: Split, y: pd.Series, positive: object, data: DataParams
) -> list[CheckResult]:
    """Fail when a part lacks a class or no row has a label time; warn when a random split
    ignores a label time.
    """
    if split.strategy == "time" and split.untimed_rows and split.untimed_rows == len(y):
        return [judge_no_label_times(split, data)]
    y_values = y.to_numpy()
    counts: dict[str, dict[str, int]] = {}
    for part, rows in (("train", split.train), ("holdout", split.holdout)):
        values, n = np.unique(y_values[rows], return_counts=True)
        counts[part] = {str(v): int(c) for v, c in zip(values, n, strict=True)}
    metrics: dict[str, JsonValue] = {**split.describe(), "class_counts": counts}  # type: ignore[dict-item]
    classes = {str(v) for v in np.unique(y_values)}
    short = [
        (part, cls, counts[part].get(cls, 0))
        for part in ("train", "holdout")
        for cls in sorted(classes)
        if counts[part].get(cls, 0) < MIN_MINORITY_ROWS
    ]
    status: Status = "pass"
    summary = (
        f"{split.strategy} split: {len(split.train)} training rows "
        f"({counts['train'].get(str(positive), 0)} of class {positive!s}), "
        f"{len(split.holdout)} holdout rows "
        f"({counts['holdout'].get(str(positive), 0)} of class {positive!s})"
    )
    if short:
        detail = "; ".join(f"the {p} part has {n} row(s) of class {c}" for p, c, n in short)
        status = "fail"
        summary = (
            f"{detail}: both parts need both classes; use more data, another "
            "split.holdout_fraction, or a longer time range"
        )
    checks = [check(CODE).result(status, summary, columns=[data.label], metrics=metrics)]
    if split.untimed_rows:
        checks.append(
            check(UNTIMED).result(
                "warn",
                f"{split.untimed_rows} row(s) without a label time belong to neither "
                "part of the time split and were left out",
                columns=[str(data.label_time)],
                metrics={"rows": split.untimed_rows},
            )
        )
    checks.append(judge_holdout_fraction(split, data))
    if split.strategy == "random" and data.label_time is not None:
        checks.append(
            check(RANDOM_ON_TIMED).result(
                "warn",
                f"a random split was requested although {data.label_time!r} orders "
                "the rows in time: the holdout mixes past and future and overstates quality",
                columns=[data.label_time],
                metrics={"label_time": data.label_time},
            )
        )
    return checks


def judge_no_label_times(split: Split, data: DataParams) -> CheckResult:
    """Fail a time split without a single label time: there is no past and future to cut."""
    return check(UNTIMED).result(
        "fail",
        f"label time {data.label_time!r} is missing in all {split.untimed_rows} "
        "row(s), so the time split has nothing to cut on; fill in the label time, name "
        "another column with --label-time (data.label_time), or set split.strategy to "
        "'random' if the rows carry no time order",
        columns=[str(data.label_time)],
        metrics={"rows": split.untimed_rows, "timed_rows": 0},
    )


def judge_holdout_fraction(split: Split, data: DataParams) -> CheckResult:
    """Warn when the realised holdout is far from split.holdout_fraction (tied label times)."""
    asked = split.asked_fraction
    realised = split.realised_fraction
    metrics: dict[str, JsonValue] = {
        "cut": split.cut,
        "rows_tied_at_cut": split.tied_rows,
        "tied_rows_side": split.tied_side,
        "tied_label_time": split.tied_at,
        "holdout_fraction_asked": asked,
        "holdout_fraction_realised": round(realised, 6),
        "too_large_above": FRACTION_TOO_LARGE,
        "too_small_below": FRACTION_TOO_SMALL,
    }
    columns = [data.label_time] if split.strategy == "time" and data.label_time else []
    if asked is None:
        return check(FRACTION_OFF).result(
            "not_run",
            "not run: the split does not record the holdout fraction asked for",
            columns=columns,
            metrics=metrics,
        )
    placed = "timed rows" if split.strategy == "time" else "rows"
    far = realised > asked * FRACTION_TOO_LARGE or realised < asked * FRACTION_TOO_SMALL
    if not far:
        return check(FRACTION_OFF).result(
            "pass",
            f"the holdout is {realised:.1%} of the {placed}, {asked:.1%} asked",
            columns=columns,
            metrics=metrics,
        )
    if split.tied_rows > 1:
        side = "holdout" if split.tied_side == "holdout" else "training part"
        cause = (
            f"{split.tied_rows} rows share the label time {split.tied_at} at the cut and "
            f"cannot be divided, so all went to the {side}; give {data.label_time!r} a finer "
            "resolution (the day rather than the month or year), or set "
            f"split.holdout_fraction to about {realised:.2f}"
        )
    else:
        cause = (
            f"too few rows to cut at that fraction; set split.holdout_fraction to about "
            f"{realised:.2f} or use more data"
        )
    return check(FRACTION_OFF).result(
        "warn",
        f"the holdout (from {split.cut}) is {realised:.1%} of the timed rows, "
        f"{asked:.1%} asked: {cause}",
        columns=columns,
        metrics=metrics,
    )


@task(name="split-by-time", cache_policy=NO_CACHE, persist_result=False)
def split_task(
    frame: Frame, data: DataParams, params: SplitParams, positive: object
) -> tuple[Split, list[CheckResult]]:
    """Cut the holdout and check both parts have both classes."""
    split = make_split(frame, data, params)
    return split, judge_split(split, frame[data.label], positive, data)
