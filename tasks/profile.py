"""Label profile: which classes there are, how many of each, which one is the minority."""

from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.report import CheckResult, JsonDict, Status
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.stored_table import Frame, SameFrame

CODE = "single_class_target"
UNLABELLED = "unlabelled_rows"
# Below this minority share a model without resampling or class weights very often
# collapses to the majority class; warn so the diagnosis can point to it.
EXTREME_IMBALANCE_SHARE = 0.01


@dataclass(frozen=True)
class LabelProfile:
    """Classes of the label as found in the data; the minority is the positive class."""

    counts: dict[str, int]
    values: tuple[object, ...]
    positive: object | None
    negative: object | None

    @property
    def minority_share(self) -> float:
        total = sum(self.counts.values())
        return min(self.counts.values()) / total if total and len(self.counts) > 1 else 0.0


def measure_label(frame: Frame, label: str) -> LabelProfile:
    """Count the label's classes; the rarer class (ties: the larger value) is the positive."""
    return profile_of_counts(frame[label].value_counts(dropna=True))


def profile_of_counts(counts: pd.Series) -> LabelProfile:
    """Return the profile of the label's class counts (value -> rows, missing left out);
    the Dask engine counts them on the cluster."""
    # A categorical label lists its unused categories with a count of 0: they are no class.
    counts = counts[counts > 0]
    values = sorted(counts.index.tolist(), key=str)
    if len(values) < 2:
        return LabelProfile(
            counts={str(v): int(counts[v]) for v in values},
            values=tuple(values),
            positive=None,
            negative=values[0] if values else None,
        )
    ordered = sorted(values, key=lambda v: (int(counts[v]), str(v)))
    positive = ordered[0] if counts[ordered[0]] != counts[ordered[1]] else ordered[1]
    negative = next(v for v in values if v != positive)
    return LabelProfile(
        counts={str(v): int(counts[v]) for v in values},
        values=tuple(values),
        positive=positive,
        negative=negative,
    )


def drop_unlabelled(frame: SameFrame, label: str) -> tuple[SameFrame, CheckResult | None]:
    """Leave out rows without a label (a schema may allow them); say how many."""
    missing = frame[label].isna()
    count = int(missing.sum())
    if not count:
        return frame, None
    return frame[~missing], check(UNLABELLED).result(
        "warn",
        f"{count} row(s) without a label in {label!r} were left out",
        columns=[label],
        metrics={"rows": count, "share": round(count / len(frame), 6)},
    )


def judge_label(profile: LabelProfile, label: str) -> CheckResult:
    """Fail on fewer than two classes; warn on extreme imbalance."""
    metrics: JsonDict = {
        "class_counts": {k: v for k, v in profile.counts.items()},
        "positive_class": None if profile.positive is None else str(profile.positive),
        "minority_share": round(profile.minority_share, 6),
    }
    status: Status
    if profile.positive is None:
        only = next(iter(profile.counts), None)
        found = f"one class ({only})" if only is not None else "no labelled row"
        status, summary = "fail", f"label {label!r} has {found}; a classifier needs two classes"
    else:
        share = profile.minority_share
        status = "warn" if share < EXTREME_IMBALANCE_SHARE else "pass"
        summary = f"label {label!r}: minority class {profile.positive!s} is {share:.2%} of rows"
        summary += " (extreme imbalance)" if status == "warn" else ""
    return check(CODE).result(status, summary, columns=[label], metrics=metrics)


@task(name="profile-label", cache_policy=NO_CACHE, persist_result=False)
def profile_label_task(
    frame: SameFrame, label: str, counts: pd.Series | None = None
) -> tuple[SameFrame, LabelProfile, list[CheckResult]]:
    """Leave out unlabelled rows, then measure the label and judge it; `counts` are the
    class counts when the Dask engine counted them on the cluster."""
    labelled, unlabelled = drop_unlabelled(frame, label)
    profile = measure_label(labelled, label) if counts is None else profile_of_counts(counts)
    checks: list[CheckResult] = [] if unlabelled is None else [unlabelled]
    return labelled, profile, [*checks, judge_label(profile, label)]
