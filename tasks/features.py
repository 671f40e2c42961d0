"""Feature checks of the training part: high-cardinality strings, constant or empty features,
and columns that alone separate the classes (a leakage sign)."""

import numpy as np
import pandas as pd
from pandas.api.types import is_float_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from sklearn.metrics import roc_auc_score

from schemas.params import ModelParams
from schemas.report import CheckResult
from tasks.quirks import as_finite
from tasks.training import Trained, split_feature_kinds

HIGH_CARDINALITY = "high_cardinality_features"
CONSTANT = "constant_features"
# Distinct values per row above which a string column looks like an identifier.
ID_LIKE_SHARE = 0.9
# ROC-AUC of one column alone from which it separates the classes almost perfectly.
SEPARATES_AUC = 0.99


def measure_cardinality(X_train: pd.DataFrame, params: ModelParams) -> list[dict[str, JsonValue]]:
    """Measure each string column: distinct values, rows pooled as infrequent, id-likeness."""
    _, categorical, _ = split_feature_kinds(X_train)
    rows = len(X_train)
    measured: list[dict[str, JsonValue]] = []
    for column in categorical:
        counts = X_train[column].astype(object).value_counts(dropna=True)
        kept = params.max_categories - 1
        pooled = int(counts.iloc[kept:].sum()) if len(counts) > params.max_categories else 0
        measured.append(
            {
                "column": column,
                "distinct": len(counts),
                "rows": rows,
                "pooled_rows": pooled,
                "pooled_share": round(pooled / rows, 6) if rows else 0.0,
                "id_like": bool(rows and len(counts) / rows > ID_LIKE_SHARE),
            }
        )
    return measured


def judge_cardinality(measured: list[dict[str, JsonValue]], params: ModelParams) -> CheckResult:
    """Warn on string columns with more distinct values than model.high_cardinality."""
    limit = params.high_cardinality
    flagged = [m for m in measured if isinstance(m["distinct"], int) and m["distinct"] > limit]
    metrics: dict[str, JsonValue] = {
        "threshold": limit,
        "max_categories": params.max_categories,
        "columns": measured,  # type: ignore[dict-item]
    }
    if not flagged:
        return CheckResult(
            code=HIGH_CARDINALITY,
            stage="train",
            status="pass",
            summary=f"no string feature has more than {limit} distinct values",
            metrics=metrics,
        )
    parts = [
        f"{m['column']} ({m['distinct']} distinct"
        + (", looks like an identifier: consider data.drop" if m["id_like"] else "")
        + f"; {m['pooled_share']:.1%} of rows pooled as infrequent)"
        for m in flagged
    ]
    return CheckResult(
        code=HIGH_CARDINALITY,
        stage="train",
        status="warn",
        columns=[str(m["column"]) for m in flagged],
        summary=f"high-cardinality string features, one-hot capped at model.max_categories="
        f"{params.max_categories}: " + "; ".join(parts),
        metrics=metrics,
    )


def _input_column(name: str) -> str:
    """Map a prepared column name (e.g. numeric__missingindicator_x) to its input column."""
    return name.partition("__")[2].removeprefix("missingindicator_")


def prepared_training_part(trained: Trained, X_train: pd.DataFrame) -> pd.DataFrame:
    """Return the training part as the fitted preparer sees it (before any resampling)."""
    preparer = trained.model.estimator_.named_steps["prepare"]
    values = np.asarray(preparer.transform(X_train), dtype="float64")
    return pd.DataFrame(values, columns=[str(n) for n in preparer.get_feature_names_out()])


def _all_missing(values: pd.Series) -> bool:
    """Whether no value is usable: all missing, or (numbers) all infinite or overflowing."""
    if is_float_dtype(values.dtype):
        return bool(np.isnan(as_finite(values.to_numpy(dtype="float64", na_value=np.nan))).all())
    return bool(values.isna().all())


def measure_constant_features(
    prepared: pd.DataFrame, X_train: pd.DataFrame
) -> dict[str, JsonValue]:
    """Name the input features that are empty, or constant once preprocessed."""
    empty: list[JsonValue] = [str(c) for c in X_train.columns if _all_missing(X_train[c])]
    # A column counts as constant only if its values and its missing-value indicator
    # are both constant: a column present only for one class is information, not noise.
    varies: dict[str, bool] = {}
    for name in prepared.columns:
        column = _input_column(name)
        varies[column] = varies.get(column, False) or prepared[name].nunique(dropna=False) > 1
    constant = [c for c, v in varies.items() if not v]
    return {
        "features": len(X_train.columns),
        "empty": empty,
        "constant": [c for c in constant if c not in empty],
        "unusable_share": round(len(set(constant) | set(empty)) / len(X_train.columns), 6)
        if len(X_train.columns)
        else 1.0,
    }


def judge_constant_features(measured: dict[str, JsonValue]) -> CheckResult:
    """Warn when some features carry no information after preprocessing."""
    empty = measured["empty"]
    constant = measured["constant"]
    assert isinstance(empty, list) and isinstance(constant, list)
    named = [str(c) for c in [*empty, *constant]]
    if not named:
        return CheckResult(
            code=CONSTANT,
            stage="train",
            status="pass",
            summary=f"each of the {measured['features']} features varies in the training part",
            metrics=measured,
        )
    parts = []
    if empty:
        parts.append(f"empty (all values missing): {', '.join(str(c) for c in empty)}")
    if constant:
        parts.append(f"constant after preprocessing: {', '.join(str(c) for c in constant)}")
    return CheckResult(
        code=CONSTANT,
        stage="train",
        status="warn",
        columns=named,
        summary=f"{len(named)} of {measured['features']} features carry no information: "
        + "; ".join(parts),
        metrics=measured,
    )


def measure_separation(prepared: pd.DataFrame, y_train: np.ndarray) -> dict[str, float]:
    """Return, per input column, how well it alone ranks the classes (ROC-AUC folded >= 0.5).

    Numbers, dates and their missing-value indicators count; categorical codes are
    arbitrary integers and are left out. Constant columns are left out.
    """
    if len(np.unique(y_train)) < 2:
        return {}
    best: dict[str, float] = {}
    for name in prepared.columns:
        if name.startswith("categorical__"):
            continue
        values = prepared[name].to_numpy()
        if np.unique(values).size < 2:
            continue
        auc = float(roc_auc_score(y_train, values))
        column = _input_column(name)
        best[column] = max(best.get(column, 0.0), round(max(auc, 1.0 - auc), 6))
    return dict(sorted(best.items(), key=lambda kv: -kv[1]))


@task(name="check-features", cache_policy=NO_CACHE, persist_result=False)
def check_features_task(
    trained: Trained, X_train: pd.DataFrame, y_train: np.ndarray, params: ModelParams
) -> tuple[list[CheckResult], dict[str, float]]:
    """Check cardinality and constant features; measure single-column separation."""
    prepared = prepared_training_part(trained, X_train)
    checks = [
        judge_cardinality(measure_cardinality(X_train, params), params),
        judge_constant_features(measure_constant_features(prepared, X_train)),
    ]
    return checks, measure_separation(prepared, y_train)
