"""Missingness that reveals the class (missingness_leakage, L2).

A column filled (or left empty) for one class far more often than for the other tells the
model the label through whether a value is there, whatever the value.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import JsonValue

from retrain_guard.schemas.params import LeakageParams
from retrain_guard.tasks.leakage.findings import Finding, Judged, judged_from_findings
from retrain_guard.tasks.leakage.table import LeakageTable
from retrain_guard.tasks.part_map import Rows, iter_parts
from retrain_guard.tasks.stored_table import Frame

MISSINGNESS = "missingness_leakage"


@dataclass(frozen=True)
class PresenceSplit:
    """The most class-revealing side (present or absent) of one column's missingness."""

    column: str
    side: str
    in_class: str
    rows: int
    share_of_class: float
    share_of_other: float
    ratio: float

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "side": self.side,
            "class": self.in_class,
            "rows": self.rows,
            "share_of_class": round(self.share_of_class, 6),
            "share_of_other_class": round(self.share_of_other, 6),
            "ratio": round(self.ratio, 3),
        }


def measure_missingness(
    frame: Frame, columns: list[str], positive: np.ndarray, min_rows: int
) -> list[PresenceSplit]:
    """For each partly missing column, find the side and class with the largest ratio.

    The ratio is P(side | class) / P(side | other class), each share smoothed by half a row
    so that an empty cell gives a large finite ratio instead of a division by zero.
    """
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    # Gathering the positive rows' flags beats a full-length AND when positives are rare.
    positive_rows = np.flatnonzero(positive)
    measured = []
    for column in columns:
        n_present, pos_present = _present(frame, column, positive_rows)
        if n_present in (0, len(positive)):
            continue
        neg_present = n_present - pos_present
        best: PresenceSplit | None = None
        best_ratio = 0.0
        for side, pos_side, neg_side in (
            ("present", pos_present, neg_present),
            ("absent", n_pos - pos_present, n_neg - neg_present),
        ):
            for cls, mine, n_mine, other, n_other in (
                ("positive", pos_side, n_pos, neg_side, n_neg),
                ("negative", neg_side, n_neg, pos_side, n_pos),
            ):
                if mine < min_rows:
                    continue
                share_mine = (mine + 0.5) / (n_mine + 1)
                share_other = (other + 0.5) / (n_other + 1)
                ratio = share_mine / share_other
                if ratio > best_ratio:
                    best_ratio = ratio
                    best = PresenceSplit(
                        column, side, cls, mine, mine / n_mine, other / n_other, ratio
                    )
        if best is not None:
            measured.append(best)
    return measured


def _present(frame: Frame, column: str, positive_rows: np.ndarray) -> tuple[int, int]:
    """Return how many rows, and how many positive rows, have a value in the column,
    counted a partition (in memory, CHUNK_ROWS rows) at a time, on the cluster where it can
    (tasks/part_map.py)."""
    n_present = positive_present = 0
    for present, positives in iter_parts(
        frame, [column], _part_present, column, Rows(positive_rows)
    ):
        n_present, positive_present = n_present + present, positive_present + positives
    return n_present, positive_present


def _part_present(chunk: pd.DataFrame, column: str, positive: np.ndarray) -> tuple[int, int]:
    present = chunk[column].notna().to_numpy()
    return int(np.count_nonzero(present)), int(np.count_nonzero(present[positive]))


def judge_missingness(measured: list[PresenceSplit], params: LeakageParams) -> Judged:
    """Fail when presence is missingness_ratio_fail times likelier in one class; warn lower."""
    findings = []
    for m in measured:
        if m.ratio < params.missingness_ratio_warn:
            continue
        findings.append(
            Finding(
                check=MISSINGNESS,
                status="fail" if m.ratio >= params.missingness_ratio_fail else "warn",
                columns=(m.column,),
                measure="presence_ratio",
                value=m.ratio,
                threshold=params.missingness_ratio_fail,
                taxonomy="L2",
                detail=f"{m.column}: {m.side} for {m.share_of_class:.1%} of {m.in_class} rows "
                f"but {m.share_of_other:.2%} of the others ({m.ratio:.0f}x): whether it is "
                "filled reveals the class",
                severity=m.ratio / params.missingness_ratio_fail,
                evidence=m.as_json(),
            )
        )
    return judged_from_findings(
        MISSINGNESS,
        findings,
        f"the missingness of {len(measured)} partly missing column(s) does not reveal the class",
        {
            "fail_ratio": params.missingness_ratio_fail,
            "warn_ratio": params.missingness_ratio_warn,
            "columns_checked": len(measured),
        },
    )


def run(table: LeakageTable) -> Judged:
    """missingness_leakage on the table (its entry in tasks/registry.py names this function)."""
    measured = measure_missingness(
        table.frame, table.features, table.label_positive, table.params.min_evidence_rows
    )
    return judge_missingness(measured, table.params)
