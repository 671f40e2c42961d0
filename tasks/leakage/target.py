"""Target leakage (target_leakage, L2): one feature alone ranks the classes almost perfectly.

Each usable feature's ROC-AUC is measured with the kernels of auc.py; a column that takes
one value per class is a function of the label; a column whose power vanishes within
label-time bins only follows time and is not reported.
"""

import numpy as np

from retrain_guard.schemas.params import LeakageParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.leakage.auc import (
    FeaturePower,
    auc_with_missing,
    category_cells,
    category_codes,
    fold_of_rows,
    is_function_of_label,
    is_numeric_kind,
    numeric_column,
    out_of_fold_rates,
    ranked_scores,
    screen_auc,
    screen_cells,
    screen_column,
    stratified_auc,
)
from retrain_guard.tasks.leakage.findings import Finding, Judged, judged_from_findings
from retrain_guard.tasks.leakage.table import LeakageTable
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.stored_table import Frame, StoredTable, dtype_of

TARGET = "target_leakage"
# A single feature's (or the row order's) ROC-AUC judges nothing below this many rows in the
# smaller class: with one minority row half of all honest columns reach AUC 1.0 by chance
# (target_leakage and order_leakage are not_run).
MIN_ROWS_FOR_TARGET_AUC = 3


def measure_target_auc(
    frame: Frame,
    columns: list[str],
    positive: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> list[FeaturePower]:
    """Measure each column's single-feature ROC-AUC over all rows.

    Numbers and dates use their raw value, categories their out-of-fold positive rate;
    missing is a value of its own. An O(n) histogram bound settles columns that cannot
    reach `recheck_at` (their AUC carries its largest error); the others get the exact
    sorting-based AUC and, at or above `recheck_at`, a second measurement within time
    bins, so that a column that only follows time can be told apart.
    """
    folds = fold_of_rows(len(positive))
    positive_rows = np.flatnonzero(positive)
    prior = float(positive.mean()) if len(positive) else 0.0

    def measure(column: str) -> FeaturePower:
        numeric = is_numeric_kind(dtype_of(frame, column))
        stored = frame if isinstance(frame, StoredTable) else None
        # A stored column is screened a partition at a time: per-class histograms of its
        # values, or of a category's out-of-fold rate (per-cell counts). It is read whole
        # only when they cannot settle it, and then not screened again; past the cap of
        # categories it is screened whole.
        cells = (
            None if stored is None or numeric else category_cells(stored, column, positive, folds)
        )
        screened_apart = stored is not None and (numeric or cells is not None)
        screened = None
        if stored is not None and numeric:
            screened = screen_column(stored, column, positive_rows, recheck_at)
        elif cells is not None:
            screened = screen_cells(*cells, prior, recheck_at)
        if screened is not None:
            auc, missing, error = screened
            kind = "numeric" if numeric else "categorical"
            return FeaturePower(column, kind, auc, missing, max_error=error)
        numbers = numeric_column(frame, column) if numeric else None
        codes = None
        if numbers is not None:
            kind, scores = "numeric", numbers
        else:
            codes = category_codes(frame[column])
            kind, scores = "categorical", out_of_fold_rates(codes, positive, folds)
        if not screened_apart:
            screened = screen_auc(scores, positive_rows, recheck_at)
        if screened is not None:
            auc, missing, error = screened
            return FeaturePower(column, kind, auc, missing, max_error=error)
        auc, missing = auc_with_missing(scores, positive)
        values = scores if codes is None else codes
        function = bool(auc >= recheck_at) and is_function_of_label(values, positive)
        within = None
        if auc >= recheck_at and bins is not None and not function:
            within = stratified_auc(ranked_scores(scores, missing), positive, bins)
        return FeaturePower(column, kind, auc, missing, function, within)

    return [measure(column) for column in columns]


def too_few_to_rank(class_rows: int, label: str, code: str = TARGET) -> CheckResult:
    """Return a ranking check (target_leakage, order_leakage) not run: the smaller class has
    too few rows for a ROC-AUC to mean anything.
    """
    return check(code).result(
        "not_run",
        f"not run: the smaller class of {label!r} has {class_rows} row(s); judging a "
        f"feature's power over the label needs at least {MIN_ROWS_FOR_TARGET_AUC}",
        columns=[label],
        metrics={"smaller_class_rows": class_rows, "needed": MIN_ROWS_FOR_TARGET_AUC},
    )


def judge_target_auc(measured: list[FeaturePower], params: LeakageParams) -> Judged:
    """Fail at target_auc_fail (or a function of the label), warn at target_auc_warn.

    A column whose AUC falls below the warning level once only pairs from the same time
    bin count is explained by time (the label rate drifts) and is not reported.
    """
    fail_at, warn_at = params.target_auc_fail, params.target_auc_warn
    findings = []
    explained = []
    for m in measured:
        if not m.function_of_label and m.auc < warn_at:
            continue
        within = m.auc_within_time
        if not m.function_of_label and within is not None and within < warn_at:
            explained.append(m.column)
            continue
        failing = m.function_of_label or m.auc >= fail_at
        how = (
            "takes one value per class (a function of the label)"
            if m.function_of_label
            else f"alone ranks the classes with ROC-AUC {m.auc:.4f}"
        )
        findings.append(
            Finding(
                check=TARGET,
                status="fail" if failing else "warn",
                columns=(m.column,),
                measure="function_of_label" if m.function_of_label else "roc_auc",
                value=m.auc,
                threshold=fail_at,
                taxonomy="L2",
                detail=f"{m.column} {how} ({m.kind}"
                + (f", missing ranked {m.missing}" if m.missing != "none" else "")
                + ")",
                severity=(2.0 if m.function_of_label else 0.0)
                + (m.auc - 0.5) / max(fail_at - 0.5, 1e-9),
                evidence=m.as_json(),
            )
        )
    strongest = sorted(measured, key=lambda m: -m.auc)[:10]
    return judged_from_findings(
        TARGET,
        findings,
        f"no single feature among {len(measured)} ranks the classes at ROC-AUC >= {warn_at}"
        + (f" (explained by time: {', '.join(explained)})" if explained else ""),
        {
            "fail_auc": fail_at,
            "warn_auc": warn_at,
            "columns_checked": len(measured),
            "explained_by_time": list(explained),
            "strongest": [m.as_json() for m in strongest],
        },
    )


def run(table: LeakageTable) -> Judged:
    """target_leakage on the table (its entry in tasks/registry.py names this function).

    Not run when the smaller class is too small for a ROC-AUC to mean anything.
    """
    if table.smaller_class < MIN_ROWS_FOR_TARGET_AUC:
        return Judged(too_few_to_rank(table.smaller_class, table.data.label))
    measured = measure_target_auc(
        table.frame, table.features, table.label_positive, table.bins, table.params.target_auc_warn
    )
    return judge_target_auc(measured, table.params)
