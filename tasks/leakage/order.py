"""Id and row order (order_leakage, L2): rows stored or numbered by class.

The row order and the id column are scored like a feature (auc.py); a ranking that time
explains (the label rate drifts and ids are issued in time) is not reported.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retrain_guard.schemas.params import LeakageParams
from retrain_guard.tasks.leakage.auc import (
    FeaturePower,
    auc_with_missing,
    numeric_view,
    ranked_scores,
    screen_auc,
    stratified_auc,
)
from retrain_guard.tasks.leakage.findings import Finding, Judged, judged_from_findings
from retrain_guard.tasks.leakage.table import LeakageTable
from retrain_guard.tasks.leakage.target import MIN_ROWS_FOR_TARGET_AUC, too_few_to_rank
from retrain_guard.tasks.stored_table import Frame

ORDER = "order_leakage"


def order_scores(values: pd.Series) -> np.ndarray:
    """Return the sort rank of the values (numbers as they are, strings in text order)."""
    numbers = numeric_view(values)
    if numbers is not None:
        return numbers
    text = pa.array(values.astype("string[pyarrow]"))
    if text.null_count == 0 and len(text) > 1:
        # Ids are mostly issued in row order: one vectorised comparison of neighbours
        # proves the text sorted, and then ranks follow without sorting a million strings.
        follows = pc.greater_equal(text[1:], text[:-1])
        if pc.all(follows).as_py():
            starts = np.ones(len(text), dtype=bool)
            starts[1:] = np.asarray(pc.not_equal(text[1:], text[:-1]))
            if starts.all():
                return np.arange(1.0, len(text) + 1.0)
            # Equal texts share the rank of their first row, as tiebreaker="min" gives.
            first = np.maximum.accumulate(np.where(starts, np.arange(len(text)), 0))
            return first.astype("float64") + 1.0
    ranked = pc.rank(text, tiebreaker="min")
    rank = np.asarray(ranked.to_numpy(zero_copy_only=False), dtype="float64")
    return np.where(values.isna().to_numpy(), np.nan, rank)


def measure_order(
    frame: Frame,
    id_column: str | None,
    positive: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> list[FeaturePower]:
    """Measure how well the row order and the id rank the classes, overall and within time.

    As for features, an order that cannot reach `recheck_at` keeps its bounded AUC; the
    others are measured exactly and again within time bins.
    """
    sources = [("row order", np.arange(len(frame), dtype="float64"))]
    if id_column:
        sources.append((id_column, order_scores(frame[id_column])))
    positive_rows = np.flatnonzero(positive)
    measured = []
    for name, scores in sources:
        screened = screen_auc(scores, positive_rows, recheck_at)
        if screened is not None:
            auc, missing, error = screened
            measured.append(FeaturePower(name, "order", auc, missing, max_error=error))
            continue
        auc, missing = auc_with_missing(scores, positive)
        within = None
        if bins is not None:
            within = stratified_auc(ranked_scores(scores, missing), positive, bins)
        measured.append(FeaturePower(name, "order", auc, missing, False, within))
    return measured


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
