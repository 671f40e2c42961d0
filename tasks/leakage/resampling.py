"""Traces of resampling before the split (resampling_leakage, L1.2).

In the input, minority rows copied more often than chance, or lying on the segment between
two other minority rows (as SMOTE makes them, see segments.py) more often than majority rows
do. Copies are compared, in the columns that vary among minority rows, with the majority
rows and with the minority's own columns taken as independent (the larger). Majority rows,
measured the same way, are the control for segments.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_float_dtype
from pydantic import JsonValue

from retrain_guard.schemas.params import LeakageParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.leakage.findings import UNBOUNDED, Finding, Judged, judged_from_findings
from retrain_guard.tasks.leakage.rows import by_distinct, repeat_count, row_hashes
from retrain_guard.tasks.leakage.segments import (
    column_grid,
    complete_rows,
    continuous_columns,
    segment_share,
)
from retrain_guard.tasks.leakage.table import LeakageTable
from retrain_guard.tasks.positions import row_positions
from retrain_guard.tasks.stored_table import Frame, dtype_of, take_rows

RESAMPLING = "resampling_leakage"
# Majority rows sampled to find each column's rounding grid (segments.py column_grid).
_GRID_SAMPLE = 20_000
# Minority rows sampled to estimate each column's chance of repeating (and which columns
# are functions of others): enough for a share of a few percent, cheap for many columns.
_COPY_SAMPLE = 5_000


@dataclass(frozen=True)
class ResamplingTrace:
    """A share of minority rows that looks resampled, against the share chance explains.

    `control_share` is the larger of the majority rows' share (measured the same way) and,
    for copies, the share the minority's own column values give when drawn independently.
    """

    kind: Literal["copies", "segments"]
    minority_rows: int
    minority_share: float
    control_share: float
    columns: tuple[str, ...]
    majority_share: float = 0.0
    independent_share: float = 0.0

    @property
    def excess(self) -> float:
        return max(0.0, self.minority_share - self.control_share)

    @property
    def excess_rows(self) -> float:
        return self.excess * self.minority_rows

    def as_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "kind": self.kind,
            "minority_rows": self.minority_rows,
            "minority_share": round(self.minority_share, 6),
            "majority_control_share": round(self.majority_share, 6),
        }
        if self.kind == "copies":
            out["independent_columns_share"] = round(self.independent_share, 6)
        return {
            **out,
            "chance_share": round(self.control_share, 6),
            "excess_share": round(self.excess, 6),
            "columns": list(self.columns),
        }


def copy_share(frame: Frame, rows: np.ndarray, features: list[str]) -> float:
    """Return the share of `rows` whose features repeat an earlier one of `rows`."""
    return repeat_count(frame, rows, features) / len(rows) if len(rows) else 0.0


def independent_copy_share(frame: Frame, rows: np.ndarray, features: list[str]) -> float:
    """Return the expected share of `rows` repeating an earlier one if columns were independent.

    The minority's own values set the chance: a class that lives on a few rounded values
    (whole-year ages, incomes in hundreds) repeats itself. A column that is a function of
    another (a ratio with a numerator constant in the class is a function of its
    denominator) adds no chance factor: it repeats whenever that column does. A column that
    identifies every distinct row trivially determines all others, so it is never used to
    discard one (copies would otherwise make every column look derived from it). With
    c = prod_j P(two rows share column j) taken as K = 1/c equally likely vectors, n rows
    show K (1 - (1 - 1/K)^n) distinct vectors in expectation. Each P is estimated from a
    sample of at most _COPY_SAMPLE rows (unbiased: a column of distinct values gives 0).
    """
    n = len(rows)
    part = take_rows(frame, rows[:: max(1, n // _COPY_SAMPLE)], features)
    m = len(part)
    if m < 2 or not features:
        return 0.0
    codes = {c: pd.factorize(part[c], use_na_sentinel=False)[0] for c in features}
    distinct = {c: int(v.max()) + 1 for c, v in codes.items()}
    rows_distinct = len(np.unique(row_hashes(part)))
    chance = 1.0
    kept: list[str] = []
    for column in sorted(features, key=lambda c: -distinct[c]):
        derived = any(
            distinct[a] < rows_distinct
            and len(np.unique(codes[a].astype("int64") * distinct[column] + codes[column]))
            == distinct[a]
            for a in kept
        )
        if derived:
            continue
        kept.append(column)
        # Unbiased from a sample: pairs of sampled rows sharing the value, over all pairs.
        counts = np.bincount(codes[column]).astype("float64")
        chance *= float(np.sum(counts * (counts - 1.0)) / (m * (m - 1.0)))
        if chance * n < 1e-9:
            return 0.0
    distinct_expected = -np.expm1(n * np.log1p(-chance)) / chance if chance < 1.0 else 1.0
    return float(max(0.0, 1.0 - distinct_expected / n))


def _varying_columns(frame: Frame, rows: np.ndarray, features: list[str]) -> list[str]:
    """Return the features with more than one value among `rows` (missing counts as a value).

    A column constant within the minority (a spend that is 0 for every refused applicant)
    tells nothing about whether minority rows were copied; comparing the classes in it
    would make the class where it varies look less repetitive.
    """
    part = take_rows(frame, rows[:: max(1, len(rows) // 50_000)], features)
    return [c for c in features if part[c].nunique(dropna=False) > 1]


def measure_resampling(
    frame: Frame, features: list[str], positive: np.ndarray
) -> list[ResamplingTrace]:
    """Measure copies and SMOTE segments among minority rows, against what chance explains."""
    minority_mask = positive if positive.sum() * 2 <= len(positive) else ~positive
    minority_rows = np.flatnonzero(minority_mask)
    majority_rows = row_positions(~minority_mask)
    if len(minority_rows) < 3 or not features:
        return []
    rng = np.random.default_rng(0)
    control_rows = np.sort(rng.choice(majority_rows, len(minority_rows), replace=False))
    # Row by row only the float columns are needed (SMOTE traces); taking every column of
    # the minority rows would copy text columns for nothing.
    floats = [c for c in features if is_float_dtype(dtype_of(frame, c))]
    minority = take_rows(frame, minority_rows, floats)
    traces = []
    varying = _varying_columns(frame, minority_rows, features)
    if varying:
        # Copies are compared with all majority rows: uniform copying gives both classes
        # the same share, while chance repeats of few distinct values only grow with more
        # rows; and with the minority's own values as independent columns.
        # Columns most distinct among the minority first: a row unique on them is dropped
        # before the other columns are read (one sample for both classes).
        ordered = by_distinct(frame, varying, minority_rows)
        majority = copy_share(frame, majority_rows, ordered)
        independent = independent_copy_share(frame, minority_rows, varying)
        traces.append(
            ResamplingTrace(
                "copies",
                len(minority_rows),
                copy_share(frame, minority_rows, ordered),
                max(majority, independent),
                (),
                majority,
                independent,
            )
        )
    columns = continuous_columns(minority, floats)
    if len(columns) >= 2:
        control = take_rows(frame, control_rows, columns)
        sample = majority_rows[:: max(1, len(majority_rows) // _GRID_SAMPLE)]
        # The sampled rows alone, not each whole column (a stored table: a partition at a time).
        sampled = take_rows(frame, sample, columns)
        grids = [
            column_grid(
                sampled[c].to_numpy(dtype="float64", na_value=np.nan),
                minority[c].to_numpy(dtype="float64", na_value=np.nan),
            )
            for c in columns
        ]
        del sampled
        minority_share = segment_share(
            complete_rows(minority, columns), np.random.default_rng(1), grids
        )
        majority_share = segment_share(
            complete_rows(control, columns), np.random.default_rng(1), grids
        )
        traces.append(
            ResamplingTrace(
                "segments",
                len(minority_rows),
                minority_share,
                majority_share,
                tuple(columns),
                majority_share,
            )
        )
    return traces


def judge_resampling(measured: list[ResamplingTrace], params: LeakageParams, label: str) -> Judged:
    """Fail above max_resampled_share of minority rows in excess; warn on a smaller excess."""
    threshold = params.max_resampled_share
    findings = []
    for m in measured:
        # Four standard deviations of a count with the control's rate: repeats that are
        # spread over both classes by chance (a re-ingested batch) stay below it.
        noise = 4.0 * float(np.sqrt(m.control_share * m.minority_rows))
        if m.excess <= 0 or m.excess_rows < max(params.min_evidence_rows, noise):
            continue
        chance = (
            f"majority rows {m.majority_share:.1%}, the minority's columns taken as "
            f"independent {m.independent_share:.1%}"
            if m.kind == "copies"
            else "majority rows measured the same way"
        )
        what = (
            "repeat another minority row"
            if m.kind == "copies"
            else f"lie on a segment between two other minority rows ({', '.join(m.columns)})"
        )
        findings.append(
            Finding(
                check=RESAMPLING,
                status="fail" if m.excess > threshold else "warn",
                columns=m.columns,
                measure=f"excess_share_{m.kind}",
                value=m.excess,
                threshold=threshold,
                taxonomy="L1.2",
                detail=f"{m.minority_share:.1%} of the {m.minority_rows} minority rows "
                f"({label}) {what}, "
                f"against {m.control_share:.1%} expected by chance ({chance}): the input looks "
                f"{'oversampled' if m.kind == 'copies' else 'SMOTE-resampled'} before the "
                "split, so synthetic rows reach the holdout",
                severity=m.excess / threshold if threshold > 0 else UNBOUNDED,
                evidence={"label": label, **m.as_json()},
            )
        )
    return judged_from_findings(
        RESAMPLING,
        findings,
        "no trace of resampling before the split among the minority rows",
        {"threshold": threshold, "measured": [m.as_json() for m in measured]},
    )


def check_resampling_leakage(
    frame: Frame,
    features: list[str],
    positive: np.ndarray,
    params: LeakageParams,
    label: str,
) -> CheckResult:
    """Measure and judge resampling traces among the minority rows."""
    return judge_resampling(measure_resampling(frame, features, positive), params, label).check


def run(table: LeakageTable) -> Judged:
    """resampling_leakage on the table (its entry in tasks/registry.py names this function)."""
    measured = measure_resampling(table.frame, table.features, table.label_positive)
    return judge_resampling(measured, table.params, table.data.label)
