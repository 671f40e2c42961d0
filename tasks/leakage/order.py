"""Id and row order (order_leakage, L2): rows stored or numbered by class.

The row order and the id column are scored like a feature (auc.py); a ranking that time
explains (the label rate drifts and ids are issued in time) is not reported.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retrain_guard.schemas.params import LeakageParams
from retrain_guard.tasks.leakage.auc import (
    FeaturePower,
    auc_with_missing,
    numeric_column,
    ranked_scores,
    screen_auc,
    stratified_auc,
)
from retrain_guard.tasks.leakage.findings import Finding, Judged, judged_from_findings
from retrain_guard.tasks.leakage.rank_counts import RankCounts, row_order_counts, value_rank_counts
from retrain_guard.tasks.leakage.table import LeakageTable
from retrain_guard.tasks.leakage.target import MIN_ROWS_FOR_TARGET_AUC, too_few_to_rank
from retrain_guard.tasks.stored_table import Frame

ORDER = "order_leakage"


def order_scores(frame: Frame, column: str) -> np.ndarray:
    """Return the sort rank of the column's values (numbers as they are, strings in text
    order), the whole column at once: for text `value_rank_counts` cannot key (a NUL byte).
    One copy of the text at a time: only its missing rows are kept past the ranking, and
    the ranks become floats in place of them."""
    numbers = numeric_column(frame, column)
    if numbers is not None:
        return numbers
    text = pa.array(frame[column].astype("string[pyarrow]"))
    missing = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    ranked = pc.rank(text, tiebreaker="min")
    del text
    rank = np.asarray(ranked.to_numpy(zero_copy_only=False), dtype="float64")
    del ranked
    rank[missing] = np.nan
    return rank


def measure_order(
    frame: Frame,
    id_column: str | None,
    positive: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> list[FeaturePower]:
    """Measure how well the row order and the id rank the classes, overall and within time.

    Exactly, by counting pairs (rank_counts.py): neither the rows' ranks nor the whole id
    column are held (at 20M rows each would be 160 MB of floats, and text ids several times
    that to rank). Only text with a NUL byte is ranked whole; as for features, it keeps the
    screen's bounded AUC when it cannot reach `recheck_at`.
    """
    measured = [_counted("row order", row_order_counts(positive, bins))]
    if id_column:
        counts = value_rank_counts(frame, id_column, positive, bins)
        if counts is not None:
            measured.append(_counted(id_column, counts))
        else:
            scores = order_scores(frame, id_column)
            measured.append(_power(id_column, scores, positive, bins, recheck_at))
    return measured


def _counted(name: str, counts: RankCounts) -> FeaturePower:
    auc, missing = counts.auc()
    return FeaturePower(name, "order", auc, missing, False, counts.auc_within_time(missing))


def _power(
    name: str,
    scores: np.ndarray,
    positive: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> FeaturePower:
    screened = screen_auc(scores, np.flatnonzero(positive), recheck_at)
    if screened is not None:
        auc, missing, error = screened
        return FeaturePower(name, "order", auc, missing, max_error=error)
    auc, missing = auc_with_missing(scores, positive)
    within = None
    if bins is not None:
        within = stratified_auc(ranked_scores(scores, missing), positive, bins)
    return FeaturePower(name, "order", auc, missing, False, within)


def judge_order(
    measured: list[FeaturePower], params: LeakageParams, label_time: str | None
) -> Judged:
    """Warn when the row order or id ranks the classes and time does not explain it."""
    warn_at = params.order_auc_warn
    findings = []
    explained = []
    for m in measured:
        if m.auc < warn_at:
            continue
        if m.auc_within_time is not None and m.auc_within_time < warn_at:
            explained.append(m.column)
            continue
        why = (
            f"and still {m.auc_within_time:.3f} among rows of the same {label_time} period"
            if m.auc_within_time is not None
            else "and no data.label_time is given that could explain it"
        )
        findings.append(
            Finding(
                check=ORDER,
                status="warn",
                columns=(m.column,) if m.column != "row order" else (),
                measure="roc_auc",
                value=m.auc,
                threshold=warn_at,
                taxonomy="L2",
                detail=f"{m.column} ranks the classes with ROC-AUC {m.auc:.3f} {why}: rows "
                "were ordered or numbered by class",
                severity=(m.auc - 0.5) / max(warn_at - 0.5, 1e-9),
                evidence=m.as_json(),
            )
        )
    return judged_from_findings(
        ORDER,
        findings,
        "neither the row order nor the id ranks the classes"
        + (f" beyond what time explains ({', '.join(explained)})" if explained else ""),
        {
            "warn_auc": warn_at,
            "explained_by_time": list(explained),
            "measured": [m.as_json() for m in measured],
        },
    )


def run(table: LeakageTable) -> Judged:
    """order_leakage on the table (its entry in tasks/registry.py names this function).

    Not run, like target_leakage, when the smaller class is too small to rank.
    """
    if table.smaller_class < MIN_ROWS_FOR_TARGET_AUC:
        return Judged(too_few_to_rank(table.smaller_class, table.data.label, ORDER))
    measured = measure_order(
        table.frame, table.id_column, table.label_positive, table.bins, table.params.order_auc_warn
    )
    return judge_order(measured, table.params, table.data.label_time)
