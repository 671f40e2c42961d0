"""Every leakage check on one table, the on_leakage policy, and the Prefect tasks.

`detect_leakage` runs the whole-table checks in the order the report shows them (temporal,
missingness, target, order, resampling, ambiguous dates) and applies the policy;
`detect_label_free_leakage` runs only those that need no label. split_leakage runs after
the split (split_sharing.py), through `split_leakage_task`.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas.params import DataParams, LeakageParams
from schemas.report import CheckResult
from tasks.leakage.auc import time_bins
from tasks.leakage.findings import Finding, Judged
from tasks.leakage.missingness import judge_missingness, measure_missingness
from tasks.leakage.order import ORDER, judge_order, measure_order
from tasks.leakage.policy import apply_policy
from tasks.leakage.resampling import judge_resampling, measure_resampling
from tasks.leakage.split_sharing import check_split_leakage
from tasks.leakage.target import (
    MIN_ROWS_FOR_TARGET_AUC,
    judge_target_auc,
    measure_target_auc,
    too_few_to_rank,
)
from tasks.leakage.temporal import (
    AMBIGUOUS_DATES,
    CONFIG,
    TEMPORAL,
    DateMeasure,
    DeclarationError,
    config_failure,
    judge_ambiguous_dates,
    judge_temporal_leakage,
    measure_ambiguous_dates,
    measure_post_label_dates,
)
from tasks.quirks import column_kind, usable_columns


@dataclass(frozen=True)
class LeakageOutcome:
    """The leakage checks after the on_leakage policy, and the feature columns it dropped.

    `findings` holds each check's typed findings by code, as judged before the policy.
    """

    checks: list[CheckResult]
    dropped: list[str] = field(default_factory=list)
    on_leakage: str = "fail"
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    def describe(self) -> dict[str, JsonValue]:
        return {"on_leakage": self.on_leakage, "dropped_columns": list(self.dropped)}


def _temporal(
    frame: pd.DataFrame,
    data: DataParams,
    features: list[str],
    params: LeakageParams,
    measure_dates: DateMeasure,
) -> Judged:
    """Return temporal_leakage, or leakage_config_invalid when a declaration is wrong."""
    try:
        return judge_temporal_leakage(frame, data.label_time, features, params, measure_dates)
    except DeclarationError as exc:
        return config_failure(exc, params)


def _ambiguous(frame: pd.DataFrame, data: DataParams, features: list[str]) -> Judged:
    dated = [*features, *([data.label_time] if data.label_time else [])]
    return Judged(judge_ambiguous_dates(measure_ambiguous_dates(frame, dated)))


def _outcome(judged: list[Judged], params: LeakageParams) -> LeakageOutcome:
    """Apply the on_leakage policy, unless a declaration is wrong (nothing was judged)."""
    findings = {j.check.code: list(j.findings) for j in judged}
    if judged[0].check.code == CONFIG:
        return LeakageOutcome([j.check for j in judged], [], params.on_leakage, findings)
    checks, dropped = apply_policy(judged, params.on_leakage)
    return LeakageOutcome(checks, dropped, params.on_leakage, findings)


# The checks that look at dates only, never at the label.
LABEL_FREE_CHECKS = (TEMPORAL, AMBIGUOUS_DATES)


def detect_label_free_leakage(
    frame: pd.DataFrame,
    data: DataParams,
    params: LeakageParams,
    measure_dates: DateMeasure = measure_post_label_dates,
) -> LeakageOutcome:
    """Run only the checks that need no label (LABEL_FREE_CHECKS), with the on_leakage policy.

    For a table whose label cannot be used: its dates are still judged, so one pass shows
    every finding.
    """
    features = usable_columns(frame, data.feature_columns(frame.columns))
    judged = [
        _temporal(frame, data, features, params, measure_dates),
        _ambiguous(frame, data, features),
    ]
    return _outcome(judged, params)


def detect_leakage(
    frame: pd.DataFrame,
    data: DataParams,
    params: LeakageParams,
    positive_class: object,
    measure_dates: DateMeasure = measure_post_label_dates,
) -> LeakageOutcome:
    """Run every whole-table leakage check, then apply the on_leakage policy."""
    # Columns no check can use (lists, bytes, mixed objects) are left out of every measure.
    features = usable_columns(frame, data.feature_columns(frame.columns))
    id_column = (
        data.id_column if data.id_column and column_kind(frame[data.id_column]) is None else None
    )
    positive = (frame[data.label] == positive_class).to_numpy()
    smaller_class = int(min(np.count_nonzero(positive), np.count_nonzero(~positive)))
    bins = time_bins(frame[data.label_time]) if data.label_time else None
    rankable = smaller_class >= MIN_ROWS_FOR_TARGET_AUC
    judged = [
        _temporal(frame, data, features, params, measure_dates),
        judge_missingness(
            measure_missingness(frame, features, positive, params.min_evidence_rows), params
        ),
        judge_target_auc(
            measure_target_auc(frame, features, positive, bins, params.target_auc_warn), params
        )
        if rankable
        else Judged(too_few_to_rank(smaller_class, data.label)),
        judge_order(
            measure_order(frame, id_column, positive, bins, params.order_auc_warn),
            params,
            data.label_time,
        )
        if rankable
        else Judged(too_few_to_rank(smaller_class, data.label, ORDER)),
        judge_resampling(measure_resampling(frame, features, positive), params, data.label),
        _ambiguous(frame, data, features),
    ]
    return _outcome(judged, params)


# The tasks are the functions themselves: parameters, defaults and docstrings stay one.
detect_leakage_task = task(name="detect-leakage", cache_policy=NO_CACHE, persist_result=False)(
    detect_leakage
)
split_leakage_task = task(name="detect-split-leakage", cache_policy=NO_CACHE, persist_result=False)(
    check_split_leakage
)
