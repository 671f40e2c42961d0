"""Feature checks of the training part: high-cardinality strings, constant or empty features,
and the features that alone separate the classes (a leakage sign for the gate and diagnosis).

Single-feature separation is target_leakage's measure (tasks/leakage.py) on the training part,
judged at the same setting, leakage.target_auc_fail.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_float_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.params import ModelParams, RetrainParams
from retrain_guard.schemas.report import CheckResult, JsonDict
from retrain_guard.tasks.leakage.auc import auc_with_missing, numeric_view
from retrain_guard.tasks.quirks import as_finite
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.training import Parts, Trained, split_feature_kinds

HIGH_CARDINALITY = "high_cardinality_features"
CONSTANT = "constant_features"
# Distinct values per row above which a string column looks like an identifier.
ID_LIKE_SHARE = 0.9
# Training rows prepared at once to find constant features: the prepared part is dense
# float64 with a column per one-hot category, and the training sample of a 20M-row table
# (1.3M rows) prepared whole set the run's peak on the Dask engine.
PREPARE_ROWS = 100_000


@dataclass(frozen=True)
class Cardinality:
    """A string column's distinct values, and the rows one-hot encoding pools as infrequent."""

    column: str
    distinct: int
    rows: int
    pooled_rows: int

    @property
    def pooled_share(self) -> float:
        return round(self.pooled_rows / self.rows, 6) if self.rows else 0.0

    @property
    def id_like(self) -> bool:
        return bool(self.rows and self.distinct / self.rows > ID_LIKE_SHARE)

    def to_json(self) -> JsonDict:
        return {
            "column": self.column,
            "distinct": self.distinct,
            "rows": self.rows,
            "pooled_rows": self.pooled_rows,
            "pooled_share": self.pooled_share,
            "id_like": self.id_like,
        }


def measure_cardinality(X_train: pd.DataFrame, params: ModelParams) -> list[Cardinality]:
    """Measure each string column: distinct values, rows pooled as infrequent, id-likeness."""
    _, categorical, _ = split_feature_kinds(X_train)
    measured = []
    for column in categorical:
        counts = X_train[column].astype(object).value_counts(dropna=True)
        kept = params.max_categories - 1
        pooled = int(counts.iloc[kept:].sum()) if len(counts) > params.max_categories else 0
        measured.append(Cardinality(column, len(counts), len(X_train), pooled))
    return measured


def judge_cardinality(measured: list[Cardinality], params: ModelParams) -> CheckResult:
    """Warn on string columns with more distinct values than model.high_cardinality."""
    limit = params.high_cardinality
    flagged = [m for m in measured if m.distinct > limit]
    metrics: JsonDict = {
        "threshold": limit,
        "max_categories": params.max_categories,
        "columns": [m.to_json() for m in measured],
    }
    if not flagged:
        summary = f"no string feature has more than {limit} distinct values"
        return check(HIGH_CARDINALITY).result("pass", summary, metrics=metrics)
    parts = [
        f"{m.column} ({m.distinct} distinct"
        + (", looks like an identifier: consider data.drop" if m.id_like else "")
        + f"; {m.pooled_share:.1%} of rows pooled as infrequent)"
        for m in flagged
    ]
    return check(HIGH_CARDINALITY).result(
        "warn",
        f"high-cardinality string features, one-hot capped at model.max_categories="
        f"{params.max_categories}: " + "; ".join(parts),
        columns=[m.column for m in flagged],
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


def prepared_chunks(
    trained: Trained, X_train: pd.DataFrame, rows: int = PREPARE_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the prepared training part PREPARE_ROWS rows at a time."""
    for start in range(0, len(X_train), rows):
        yield prepared_training_part(trained, X_train.iloc[start : start + rows])


def _varying(chunks: Iterable[pd.DataFrame]) -> dict[str, bool]:
    """Whether each column takes more than one value over all chunks (missing is a value):
    `nunique(dropna=False) > 1` of the whole column, a chunk at a time."""
    varies: dict[str, bool] = {}
    first: dict[str, object] = {}  # the one value so far of a column that has not varied
    for chunk in chunks:
        for name in map(str, chunk.columns):
            values = chunk[name]
            if varies.get(name) or not len(values):
                varies.setdefault(name, False)
                continue
            if values.nunique(dropna=False) > 1:
                varies[name] = True
                continue
            value = values.iloc[0]
            varies[name] = not _same_value(first.setdefault(name, value), value)
    return varies


def _same_value(a: object, b: object) -> bool:
    """Equal as nunique counts values: missing values are one value, 0.0 is -0.0."""
    missing = pd.isna(np.array([a, b], dtype=object))
    if missing.any():
        return bool(missing.all())
    return bool(a == b)


def _all_missing(values: pd.Series) -> bool:
    """Whether no value is usable: all missing, or (numbers) all infinite or overflowing."""
    if is_float_dtype(values.dtype):
        return bool(np.isnan(as_finite(values.to_numpy(dtype="float64", na_value=np.nan))).all())
    return bool(values.isna().all())


@dataclass(frozen=True)
class ConstantFeatures:
    """The input features that are empty, or constant once preprocessed, out of `features`."""

    features: int
    empty: list[str]
    constant: list[str]

    @property
    def named(self) -> list[str]:
        return [*self.empty, *self.constant]

    def to_json(self) -> JsonDict:
        unusable = len(set(self.named))
        return {
            "features": self.features,
            "empty": list(self.empty),
            "constant": list(self.constant),
            "unusable_share": round(unusable / self.features, 6) if self.features else 1.0,
        }


def measure_constant_features(
    prepared: pd.DataFrame | Iterable[pd.DataFrame], X_train: pd.DataFrame
) -> ConstantFeatures:
    """Name the input features that are empty, or constant once preprocessed (`prepared`:
    the prepared training part, whole or in chunks of rows)."""
    empty = [str(c) for c in X_train.columns if _all_missing(X_train[c])]
    # A column counts as constant only if its values and its missing-value indicator
    # are both constant: a column present only for one class is information, not noise.
    varies: dict[str, bool] = {}
    chunks = [prepared] if isinstance(prepared, pd.DataFrame) else prepared
    for name, varying in _varying(chunks).items():
        column = _input_column(name)
        varies[column] = varies.get(column, False) or varying
    constant = [c for c, v in varies.items() if not v and c not in empty]
    return ConstantFeatures(len(X_train.columns), empty, constant)


def judge_constant_features(measured: ConstantFeatures) -> CheckResult:
    """Warn when some features carry no information after preprocessing."""
    named, metrics = measured.named, measured.to_json()
    if not named:
        summary = f"each of the {measured.features} features varies in the training part"
        return check(CONSTANT).result("pass", summary, metrics=metrics)
    parts = []
    if measured.empty:
        parts.append(f"empty (all values missing): {', '.join(measured.empty)}")
    if measured.constant:
        parts.append(f"constant after preprocessing: {', '.join(measured.constant)}")
    return check(CONSTANT).result(
        "warn",
        f"{len(named)} of {measured.features} features carry no information: " + "; ".join(parts),
        columns=named,
        metrics=metrics,
    )


@dataclass(frozen=True)
class Separation:
    """How well each numeric or date feature alone ranks the classes of the training part.

    `roc_auc` is folded to >= 0.5, strongest first; a feature at or above `separates_at`
    (leakage.target_auc_fail) separates the classes.
    """

    roc_auc: dict[str, float]
    separates_at: float

    @property
    def separating(self) -> dict[str, float]:
        return {c: auc for c, auc in self.roc_auc.items() if auc >= self.separates_at}

    def to_json(self) -> JsonDict:
        return dict(self.roc_auc)


def measure_separation(
    X_train: pd.DataFrame, y_train: np.ndarray, separates_at: float
) -> Separation:
    """Measure each feature alone as target_leakage does: its folded ROC-AUC, with missing
    values ranked lowest or highest, whichever ranks better.

    Numbers, dates and booleans count; categorical values have no order and are left
    out, as are constant columns.
    """
    positive = y_train == 1
    best: dict[str, float] = {}
    if positive.all() or not positive.any():
        return Separation(best, separates_at)
    for column in X_train.columns:
        values = numeric_view(X_train[column])
        if values is None or pd.Series(values).nunique(dropna=False) < 2:
            continue
        auc, _ = auc_with_missing(values, positive)
        best[str(column)] = round(auc, 6)
    return Separation(dict(sorted(best.items(), key=lambda kv: -kv[1])), separates_at)


@dataclass(frozen=True)
class FeatureChecks:
    """The feature checks' results, and the measures the gate and the diagnosis read."""

    checks: list[CheckResult]
    constant: ConstantFeatures
    separation: Separation


def check_features(trained: Trained, parts: Parts, params: RetrainParams) -> FeatureChecks:
    """Check cardinality and constant features; measure single-feature separation."""
    constant = measure_constant_features(prepared_chunks(trained, parts.X_train), parts.X_train)
    return FeatureChecks(
        checks=[
            judge_cardinality(measure_cardinality(parts.X_train, params.model), params.model),
            judge_constant_features(constant),
        ],
        constant=constant,
        separation=measure_separation(parts.X_train, parts.y_train, params.leakage.target_auc_fail),
    )


check_features_task = task(name="check-features", cache_policy=NO_CACHE, persist_result=False)(
    check_features
)
