"""Id and row order (order_leakage, L2): rows stored or numbered by class.

The row order and the id column are scored like a feature (auc.py); a ranking that time
explains (the label rate drifts and ids are issued in time) is not reported.
"""

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
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
from retrain_guard.tasks.leakage.table import LeakageTable
from retrain_guard.tasks.leakage.target import MIN_ROWS_FOR_TARGET_AUC, too_few_to_rank
from retrain_guard.tasks.stored_table import CHUNK_ROWS, Frame, row_chunks

ORDER = "order_leakage"


def order_scores(frame: Frame, column: str) -> np.ndarray:
    """Return the sort rank of the column's values (numbers as they are, strings in text
    order), read a stored partition at a time where it can be."""
    numbers = numeric_column(frame, column)
    if numbers is not None:
        return numbers
    if len(frame) > 1:
        ranks = _sorted_text_ranks(row_chunks(frame, [column], CHUNK_ROWS), len(frame))
        if ranks is not None:
            return ranks
    # One copy of the text at a time: only its missing rows are kept past the ranking, and
    # the ranks become floats in place of them (at 20M ids, 0.3 GiB less at the peak).
    text = pa.array(frame[column].astype("string[pyarrow]"))
    missing = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    ranked = pc.rank(text, tiebreaker="min")
    del text
    rank = np.asarray(ranked.to_numpy(zero_copy_only=False), dtype="float64")
    del ranked
    rank[missing] = np.nan
    return rank


def _sorted_text_ranks(chunks: Iterator[pd.DataFrame], rows: int) -> np.ndarray | None:
    """Return the ranks of text already in order and never missing, or None otherwise.

    Ids are mostly issued in row order: comparing neighbours proves the text sorted, and
    the ranks follow without sorting millions of strings; equal texts share the rank of
    their first row, as tiebreaker="min" gives. Chunk by chunk, the first text of a chunk
    compared with the last of the one before.
    """
    ranks = np.empty(rows, dtype="float64")
    done = run_start = 0
    last: pa.Scalar | None = None
    for chunk in chunks:
        text = pa.array(chunk.iloc[:, 0].astype("string[pyarrow]"))
        in_order = pc.all(pc.greater_equal(text[1:], text[:-1]), min_count=0).as_py()
        if text.null_count or not in_order:
            return None
        if not len(text):
            continue
        starts = np.ones(len(text), dtype=bool)
        starts[1:] = np.asarray(pc.not_equal(text[1:], text[:-1]))
        if last is not None:
            if pc.less(text[0], last).as_py():
                return None
            starts[0] = pc.not_equal(text[0], last).as_py()
        first = np.where(starts, np.arange(done, done + len(text)), 0)
        first[0] = first[0] if starts[0] else run_start
        np.maximum.accumulate(first, out=first)
        ranks[done : done + len(text)] = first + 1.0
        run_start, last, done = int(first[-1]), text[-1], done + len(text)
    return ranks


def measure_order(
    frame: Frame,
    id_column: str | None,
    positive: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> list[FeaturePower]:
    """Measure how well the row order and the id rank the classes, overall and within time.

    As for features, an order that cannot reach `recheck_at` keeps its bounded AUC; the
    others are measured exactly and again within time bins. Each source's scores are made
    when it is measured and let go after (at 20M rows each is 160 MB of floats).
    """
    sources: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("row order", lambda: np.arange(len(frame), dtype="float64"))
    ]
    if id_column:
        sources.append((id_column, lambda: order_scores(frame, id_column)))
    positive_rows = np.flatnonzero(positive)
    return [
        _power(name, scored(), positive, positive_rows, bins, recheck_at)
        for name, scored in sources
    ]


def _power(
    name: str,
    scores: np.ndarray,
    positive: np.ndarray,
    positive_rows: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> FeaturePower:
    screened = screen_auc(scores, positive_rows, recheck_at)
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
