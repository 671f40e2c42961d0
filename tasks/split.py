"""The holdout split: by label time when there is one, so the holdout is the future."""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from sklearn.model_selection import train_test_split

from schemas.params import DataParams, SplitParams
from schemas.report import CheckResult
from tasks.leakage import as_naive_utc

CODE = "insufficient_minority"
RANDOM_ON_TIMED = "random_split_on_timed_data"
UNTIMED = "rows_without_label_time"
# Fewer minority rows than this in either part leaves nothing to learn or measure.
MIN_MINORITY_ROWS = 1


@dataclass(frozen=True)
class Split:
    """Row positions of the training part and the holdout, and how they were cut."""

    train: np.ndarray
    holdout: np.ndarray
    strategy: str
    cut: str | None
    gap_rows: int
    untimed_rows: int = 0

    def describe(self) -> dict[str, JsonValue]:
        return {
            "strategy": self.strategy,
            "cut": self.cut,
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "gap_rows": self.gap_rows,
            "untimed_rows": self.untimed_rows,
        }


def split_by_time(label_times: pd.Series, holdout_fraction: float, gap_days: float) -> Split:
    """Cut at the label time below which (1 - holdout_fraction) of rows fall.

    Rows at or after the cut form the holdout; training rows end `gap_days` before the
    cut; rows with the same label time never fall on both sides.
    """
    times = label_times.reset_index(drop=True)
    ordered = np.sort(times.dropna().to_numpy())
    if not len(ordered):
        raise ValueError("label time has no values to split on")
    cut = pd.Timestamp(ordered[int((len(ordered) - 1) * (1.0 - holdout_fraction))])
    holdout_mask = (times >= cut).to_numpy()
    train_mask = (times < cut - pd.Timedelta(days=gap_days)).to_numpy()
    untimed = int(times.isna().sum())
    positions = np.arange(len(times))
    return Split(
        train=positions[train_mask],
        holdout=positions[holdout_mask],
        strategy="time",
        cut=cut.isoformat(),
        gap_rows=int(len(times) - train_mask.sum() - holdout_mask.sum()) - untimed,
        untimed_rows=untimed,
    )


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
    return Split(np.sort(train), np.sort(holdout), "random", None, 0)


def make_split(frame: pd.DataFrame, data: DataParams, params: SplitParams) -> Split:
    """Split by time when asked (or 'auto' with a label time), else at random."""
    use_time = params.strategy == "time" or (
        params.strategy == "auto" and data.label_time is not None
    )
    if use_time:
        if data.label_time is None:
            raise ValueError("split.strategy 'time' needs data.label_time")
        return split_by_time(
            as_naive_utc(frame[data.label_time]), params.holdout_fraction, params.gap_days
        )
    return split_at_random(frame[data.label], params.holdout_fraction, params.seed)


def judge_split(
    split: Split, y: pd.Series, positive: object, data: DataParams
) -> list[CheckResult]:
    """Fail when a part lacks a class; warn when a random split ignores a label time."""
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
    checks = []
    if short:
        detail = "; ".join(f"the {p} part has {n} row(s) of class {c}" for p, c, n in short)
        checks.append(
            CheckResult(
                code=CODE,
                stage="split",
                status="fail",
                columns=[data.label],
                summary=f"{detail}: both parts need both classes; use more data, another "
                "split.holdout_fraction, or a longer time range",
                metrics=metrics,
            )
        )
    else:
        checks.append(
            CheckResult(
                code=CODE,
                stage="split",
                status="pass",
                columns=[data.label],
                summary=f"{split.strategy} split: {len(split.train)} training rows "
                f"({counts['train'].get(str(positive), 0)} of class {positive!s}), "
                f"{len(split.holdout)} holdout rows "
                f"({counts['holdout'].get(str(positive), 0)} of class {positive!s})",
                metrics=metrics,
            )
        )
    if split.untimed_rows:
        checks.append(
            CheckResult(
                code=UNTIMED,
                stage="split",
                status="warn",
                columns=[str(data.label_time)],
                summary=f"{split.untimed_rows} row(s) without a label time belong to neither "
                "part of the time split and were left out",
                metrics={"rows": split.untimed_rows},
            )
        )
    if split.strategy == "random" and data.label_time is not None:
        checks.append(
            CheckResult(
                code=RANDOM_ON_TIMED,
                stage="split",
                status="warn",
                columns=[data.label_time],
                summary=f"a random split was requested although {data.label_time!r} orders "
                "the rows in time: the holdout mixes past and future and overstates quality",
                metrics={"label_time": data.label_time},
            )
        )
    return checks


@task(name="split-by-time", cache_policy=NO_CACHE, persist_result=False)
def split_task(
    frame: pd.DataFrame, data: DataParams, params: SplitParams, positive: object
) -> tuple[Split, list[CheckResult]]:
    """Cut the holdout and check both parts have both classes."""
    split = make_split(frame, data, params)
    return split, judge_split(split, frame[data.label], positive, data)
