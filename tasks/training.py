"""Training: preprocessing, resampling of the training part only, and the estimator."""

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from imblearn.combine import SMOTEENN, SMOTETomek
from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.over_sampling import (
    ADASYN,
    SMOTE,
    SMOTEN,
    SMOTENC,
    BorderlineSMOTE,
    RandomOverSampler,
)
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from schemas.params import ModelParams, ResampleParams
from schemas.report import CheckResult
from tasks.dates import to_days
from tasks.quirks import as_finite


def dates_to_days(frame: pd.DataFrame) -> np.ndarray:
    """Turn datetime columns into days since 1970 (NaN stays NaN)."""
    out = np.empty(frame.shape, dtype="float64")
    for i, column in enumerate(frame.columns):
        out[:, i] = to_days(frame[column])
    return out


def non_finite_as_missing(values: Any) -> np.ndarray:
    """Return numbers as float64 with +-inf and overflowing magnitudes as NaN.

    Part of the fitted model, so new rows with such values are imputed like missing
    ones instead of breaking the scaler (see tasks/quirks.py for the bound).
    """
    if isinstance(values, pd.DataFrame):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    else:
        numbers = np.asarray(values, dtype="float64")
    return as_finite(numbers)


def split_feature_kinds(frame: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """Return the numeric, categorical and datetime feature columns."""
    numeric, categorical, dates = [], [], []
    for column in frame.columns:
        dtype = frame[column].dtype
        if is_datetime64_any_dtype(dtype):
            dates.append(str(column))
        elif is_numeric_dtype(dtype) and not is_bool_dtype(dtype):
            numeric.append(str(column))
        else:
            categorical.append(str(column))
    return numeric, categorical, dates


# Samplers that interpolate between minority neighbours: they need k_neighbors + 1 minority rows.
NEIGHBOUR_SAMPLERS = ("smote", "smotenc", "adasyn", "borderline_smote", "smote_tomek", "smote_enn")
# Categorical codes stay categorical through smotenc, so one-hot encoding runs after it.
RESAMPLE_BEFORE_ENCODING = ("smotenc",)
# imblearn's default neighbourhood for borderline_smote's danger test.
BORDERLINE_M_NEIGHBORS = 10


def build_preparer(features: pd.DataFrame, params: ModelParams) -> ColumnTransformer:
    """Impute and scale numbers, code strings as integers (rare ones pooled), dates as days.

    The categorical codes come first, one column per input column, so later steps
    (smotenc, the one-hot encoder) find them at fixed positions 0..k-1.
    """
    numeric, categorical, dates = split_feature_kinds(features)
    to_str = FunctionTransformer(_as_object_strings, feature_names_out="one-to-one")
    return ColumnTransformer(
        [
            (
                "categorical",
                make_pipeline(
                    to_str,
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=-1,
                        max_categories=params.max_categories,
                    ),
                ),
                categorical,
            ),
            (
                "numeric",
                make_pipeline(
                    FunctionTransformer(non_finite_as_missing, feature_names_out="one-to-one"),
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            ),
            (
                "dates",
                make_pipeline(
                    FunctionTransformer(dates_to_days, feature_names_out="one-to-one"),
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                dates,
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=True,
    )


def build_encoder(n_categorical: int) -> ColumnTransformer:
    """One-hot the leading categorical codes; unseen codes (-1) become all zeros."""
    return ColumnTransformer(
        [
            (
                "onehot",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(range(n_categorical)),
            )
        ],
        remainder="passthrough",
    )


def _as_object_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Make every categorical value a Python string or None, whatever its dtype."""
    return (
        frame.astype(object).where(frame.notna(), None).map(lambda v: None if v is None else str(v))
    )


class InsufficientMinority(ValueError):
    """The training part has too few minority rows for the chosen sampler."""

    def __init__(self, have: int, need: int, sampler: str, detail: str | None = None) -> None:
        super().__init__(
            detail
            or f"resample.sampler {sampler!r} needs at least {need} minority rows in the "
            f"training part; it has {have}"
        )
        self.have, self.need, self.sampler = have, need, sampler


# A training part with fewer minority rows teaches the model one point, not a class: with a
# single positive row any sampler (or none) only copies, interpolates toward or keeps that row,
# and the holdout measures noise. Every sampler, and training without one, needs this many.
MIN_TRAINING_MINORITY_ROWS = 2
# random_under keeps minority / target_ratio majority rows; fewer than this many majority rows
# describe the majority class no better than the minority's handful.
MIN_KEPT_MAJORITY_ROWS = 10


def minority_rows_needed(name: str, ratio: float) -> int:
    """Return the fewest minority rows in the training part that sampler `name` may work with.

    random_under also needs enough minority rows to keep MIN_KEPT_MAJORITY_ROWS majority rows
    at the target ratio (ratio * MIN_KEPT_MAJORITY_ROWS, rounded up).
    """
    if name == "random_under":
        return max(MIN_TRAINING_MINORITY_ROWS, math.ceil(ratio * MIN_KEPT_MAJORITY_ROWS - 1e-9))
    return MIN_TRAINING_MINORITY_ROWS


def make_sampler(
    name: str,
    ratio: float,
    k_neighbors: int,
    seed: int,
    counts: dict[Any, int],
    n_categorical: int = 0,
    n_columns: int = 0,
) -> tuple[Any, list[str]]:
    """Return the imblearn sampler for these class counts and the adaptations made to it.

    Adaptations keep imblearn's own errors from reaching the user: a target ratio the
    data already meets resamples nothing, k_neighbors shrinks to the minority rows
    available, smotenc without numeric or categorical columns runs as smoten or smote.

    Raises:
        InsufficientMinority: fewer minority rows than MIN_TRAINING_MINORITY_ROWS (any
            sampler, "none" too), or too few for random_under to keep
            MIN_KEPT_MAJORITY_ROWS majority rows.
    """
    if len(counts) < 2:
        return None, []
    minority, majority = min(counts.values()), max(counts.values())
    current = minority / majority
    if minority < MIN_TRAINING_MINORITY_ROWS:
        # Name all the sampler needs, not only the first minimum it misses.
        resamples = name != "none" and current < ratio
        need = minority_rows_needed(name, ratio) if resamples else MIN_TRAINING_MINORITY_ROWS
        raise InsufficientMinority(minority, need, name)
    if name == "none":
        return None, []
    if current >= ratio:
        return None, [
            f"the training part's minority/majority ratio {current:.4f} already reaches "
            f"resample.target_ratio {ratio}: {name} resampled nothing"
        ]
    if name == "random_over":
        return RandomOverSampler(sampling_strategy=ratio, random_state=seed), []
    if name == "random_under":
        need = minority_rows_needed(name, ratio)
        if minority < need:
            kept = math.floor(minority / ratio + 1e-9)
            raise InsufficientMinority(
                minority,
                need,
                name,
                f"resample.sampler 'random_under' needs at least {need} minority rows in the "
                f"training part; it has {minority}: at resample.target_ratio {ratio} it would "
                f"keep {kept} of {majority} majority rows (at least {MIN_KEPT_MAJORITY_ROWS} "
                "needed); use an over-sampler (e.g. smote) or class_weight balanced",
            )
        return RandomUnderSampler(sampling_strategy=ratio, random_state=seed), []
    if name not in NEIGHBOUR_SAMPLERS:
        raise ValueError(f"resample.sampler {name!r} is not supported")
    adaptations: list[str] = []
    k = k_neighbors
    if minority < k + 1:
        k = minority - 1
        adaptations.append(
            f"resample.k_neighbors lowered from {k_neighbors} to {k}: the training part has "
            f"{minority} minority rows and {name} needs k_neighbors + 1 of them"
        )
    smote = SMOTE(sampling_strategy=ratio, k_neighbors=k, random_state=seed)
    if name == "smote":
        return smote, adaptations
    if name == "smotenc":
        if n_categorical == 0:
            adaptations.append("smotenc found no categorical feature and ran as smote")
            return smote, adaptations
        if n_categorical >= n_columns:
            adaptations.append("smotenc found only categorical features and ran as smoten")
            return SMOTEN(sampling_strategy=ratio, k_neighbors=k, random_state=seed), adaptations
        return SMOTENC(
            categorical_features=list(range(n_categorical)),
            sampling_strategy=ratio,
            k_neighbors=k,
            random_state=seed,
        ), adaptations
    if name == "adasyn":
        return ADASYN(sampling_strategy=ratio, n_neighbors=k, random_state=seed), adaptations
    if name == "borderline_smote":
        # The danger test looks at m neighbours among all rows, so it needs m + 1 rows.
        rows = sum(counts.values())
        m = min(BORDERLINE_M_NEIGHBORS, rows - 1)
        if m < BORDERLINE_M_NEIGHBORS:
            adaptations.append(
                f"borderline_smote's m_neighbors lowered from {BORDERLINE_M_NEIGHBORS} to {m}: "
                f"the training part has {rows} rows"
            )
        return BorderlineSMOTE(
            sampling_strategy=ratio, k_neighbors=k, m_neighbors=m, random_state=seed
        ), adaptations
    if name == "smote_tomek":
        return SMOTETomek(smote=smote, random_state=seed), adaptations
    return SMOTEENN(smote=smote, random_state=seed), adaptations


class RecordingSampler(BaseEstimator):
    """Build the named imblearn sampler at fit time and remember what it did.

    imblearn's Pipeline calls `fit_resample` during fit only, so the sampler touches the
    training rows and never the rows a fitted pipeline predicts on. The sampler is built
    from the class counts it actually receives, so any refit (e.g. on a validation split)
    adapts to its own data. Only plain numbers and strings are kept after fitting, which
    keeps the persisted model small and its types trusted.
    """

    def __init__(
        self,
        sampler: str = "none",
        target_ratio: float = 1.0,
        k_neighbors: int = 5,
        seed: int = 0,
        n_categorical: int = 0,
    ) -> None:
        self.sampler = sampler
        self.target_ratio = target_ratio
        self.k_neighbors = k_neighbors
        self.seed = seed
        self.n_categorical = n_categorical

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        before = Counter(np.asarray(y).tolist())
        self.counts_before_ = {int(k): int(v) for k, v in before.items()}
        sampler, adaptations = make_sampler(
            self.sampler,
            self.target_ratio,
            self.k_neighbors,
            self.seed,
            self.counts_before_,
            self.n_categorical,
            int(np.shape(X)[1]),
        )
        X_out, y_out = X, y
        if sampler is not None:
            try:
                X_out, y_out = sampler.fit_resample(X, y)
            except RuntimeError as exc:
                # ADASYN cannot weight rows when no minority row has a majority neighbour.
                if self.sampler != "adasyn":
                    raise
                adaptations.append(f"adasyn could not run ({exc}); smote was used instead")
                X_out, y_out = SMOTE(
                    sampling_strategy=self.target_ratio,
                    k_neighbors=sampler.n_neighbors,
                    random_state=self.seed,
                ).fit_resample(X, y)
            except ValueError as exc:
                if "No samples will be generated" not in str(exc):
                    raise
                adaptations.append(f"{self.sampler} generated no rows ({exc})")
        after = Counter(np.asarray(y_out).tolist())
        self.counts_after_ = {int(k): int(after.get(k, 0)) for k in self.counts_before_}
        if sampler is not None and self.counts_after_ == self.counts_before_:
            adaptations.append(
                f"{self.sampler} left the class counts unchanged (e.g. no minority row was "
                "near the class border)"
            )
        emptied = [k for k, n in self.counts_after_.items() if n == 0]
        if emptied:
            raise InsufficientMinority(
                self.counts_before_[emptied[0]],
                2,
                self.sampler,
                f"resample.sampler {self.sampler!r} removed every training row of class "
                f"{emptied[0]}; choose another sampler (e.g. smote)",
            )
        self.adaptations_ = adaptations
        return X_out, y_out


def make_estimator(params: ModelParams) -> Any:
    """Return the estimator named by the parameters, seeded and single-threaded."""
    weight = "balanced" if params.class_weight == "balanced" else None
    max_features = None if params.max_features == "all" else params.max_features
    if params.name == "logistic_regression":
        return LogisticRegression(
            C=params.C, max_iter=params.max_iter, class_weight=weight, random_state=params.seed
        )
    if params.name == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(
            max_iter=params.n_estimators,
            learning_rate=params.learning_rate,
            max_depth=params.max_depth,
            max_leaf_nodes=params.max_leaf_nodes,
            min_samples_leaf=params.min_samples_leaf,
            class_weight=weight,
            random_state=params.seed,
        )
    if params.name == "random_forest":
        return RandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            min_samples_leaf=params.forest_min_samples_leaf,
            max_features=max_features,
            class_weight=weight,
            random_state=params.seed,
            n_jobs=1,
        )
    if params.name == "balanced_random_forest":
        # Each tree sees a bootstrap under-sampled to balance; the explicit arguments are
        # imblearn's current defaults, spelled out so a change of defaults cannot go unseen.
        return BalancedRandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            min_samples_leaf=params.forest_min_samples_leaf,
            max_features=max_features,
            class_weight=weight,
            sampling_strategy="all",
            replacement=True,
            bootstrap=False,
            random_state=params.seed,
            n_jobs=1,
        )
    raise ValueError(f"model.name {params.name!r} is not supported")


def build_model(
    features: pd.DataFrame, model: ModelParams, resample: ResampleParams
) -> FixedThresholdClassifier:
    """Return the unfitted model: prepare -> encode/resample (fit only) -> estimator.

    smotenc resamples the categorical codes before one-hot encoding; every other
    sampler resamples the encoded matrix.
    """
    n_categorical = len(split_feature_kinds(features)[1])
    sampler = RecordingSampler(
        resample.sampler, resample.target_ratio, resample.k_neighbors, resample.seed, n_categorical
    )
    encode = ("encode", build_encoder(n_categorical))
    resample_step = ("resample", sampler)
    middle = (
        [resample_step, encode]
        if resample.sampler in RESAMPLE_BEFORE_ENCODING
        else [encode, resample_step]
    )
    pipeline = Pipeline(
        [
            ("prepare", build_preparer(features, model)),
            *middle,
            ("estimator", make_estimator(model)),
        ]
    )
    return FixedThresholdClassifier(
        pipeline, threshold=model.decision_threshold, response_method="predict_proba"
    )


@dataclass(frozen=True)
class Trained:
    """A fitted model and what resampling did to the training part."""

    model: FixedThresholdClassifier
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    features: list[str]
    adaptations: list[str] = field(default_factory=list)


def fit_model(
    X_train: pd.DataFrame, y_train: np.ndarray, model: ModelParams, resample: ResampleParams
) -> Trained:
    """Fit on the training part; y is 1 for the positive (minority) class, else 0.

    Raises:
        InsufficientMinority: the sampler cannot work with this few minority rows.
    """
    fitted = build_model(X_train, model, resample)
    fitted.fit(X_train, y_train)
    sampler: RecordingSampler = fitted.estimator_.named_steps["resample"]
    return Trained(
        model=fitted,
        counts_before={str(k): int(v) for k, v in sorted(sampler.counts_before_.items())},
        counts_after={str(k): int(v) for k, v in sorted(sampler.counts_after_.items())},
        features=list(X_train.columns),
        adaptations=list(sampler.adaptations_),
    )


ADAPTED = "sampler_adapted"


def named_counts(
    trained: Trained, class_names: tuple[str, str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Return the class counts before and after resampling under the table's class names."""
    named = dict(zip(("0", "1"), class_names, strict=True))
    before = {named[k]: v for k, v in trained.counts_before.items()}
    after = {named[k]: v for k, v in trained.counts_after.items()}
    return before, after


def resampling_check(
    trained: Trained, params: ResampleParams, class_names: tuple[str, str] = ("0", "1")
) -> CheckResult:
    """Report the class counts around resampling; warn when the sampler had to be adapted.

    Args:
        class_names: the table's names of the encoded classes 0 and 1, used in the report.
    """
    before, after = named_counts(trained, class_names)
    metrics: dict[str, JsonValue] = {
        "sampler": params.sampler,
        "before": dict(before),
        "after": dict(after),
        "adaptations": list(trained.adaptations),
    }
    counts = f"class counts {before} -> {after}"
    if trained.adaptations:
        return CheckResult(
            code=ADAPTED,
            stage="resample",
            status="warn",
            summary=f"{params.sampler} adapted to the training part: "
            + "; ".join(trained.adaptations)
            + f" ({counts})",
            metrics=metrics,
        )
    return CheckResult(
        code=ADAPTED,
        stage="resample",
        status="pass",
        summary=f"{params.sampler} ran as configured ({counts})",
        metrics=metrics,
    )


def plain_value(value: Any) -> Any:
    """Return a numpy scalar as the Python value (a skops file then holds plain values)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


class LabelledModel(BaseEstimator, ClassifierMixin):
    """A fitted model that answers in the table's own labels.

    Training works on 1 for the positive (minority) class and 0 for the other; the
    published model maps its predictions back, so `predict` returns the label column's
    values and `predict_proba` has one column per class in the order of `classes_`
    (negative first, positive second).
    """

    def __init__(self, model: Any = None, negative: Any = 0, positive: Any = 1) -> None:
        self.model = model
        self.negative = negative
        self.positive = positive

    @property
    def classes_(self) -> np.ndarray:
        return np.array([self.negative, self.positive], dtype=object)

    def fit(self, X: Any, y: Any) -> "LabelledModel":
        encoded = (np.asarray(y, dtype=object) == self.positive).astype("int64")
        self.model.fit(X, encoded)
        return self

    def predict(self, X: Any) -> np.ndarray:
        encoded = np.asarray(self.model.predict(X))
        return np.where(encoded == 1, self.positive, self.negative)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X))


def positive_scores(model: FixedThresholdClassifier, X: pd.DataFrame) -> np.ndarray:
    """Return the model's score of the positive class for each row."""
    return np.asarray(model.predict_proba(X))[:, 1]


def predict_from_scores(model: FixedThresholdClassifier, scores: np.ndarray) -> np.ndarray:
    """Return the 0/1 predictions the model gives for these positive-class scores.

    The same rule as the model's predict (score >= threshold), without running the
    pipeline over the rows a second time.
    """
    return (scores >= model.threshold).astype("int64")


def insufficient_minority_check(exc: InsufficientMinority, label: str | None) -> CheckResult:
    """Return the insufficient_minority failure of a sampler that had too few minority rows."""
    return CheckResult(
        code="insufficient_minority",
        stage="resample",
        status="fail",
        columns=[label] if label else [],
        summary=str(exc),
        metrics={"minority_rows": exc.have, "needed": exc.need, "sampler": exc.sampler},
    )


@task(name="train-model", cache_policy=NO_CACHE, persist_result=False)
def train_task(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    model: ModelParams,
    resample: ResampleParams,
    label: str | None = None,
) -> Trained | CheckResult:
    """Resample the training part inside the pipeline and fit the estimator.

    Too few minority rows for the sampler is an expected halt: it is returned as the
    failing check, not raised, so no traceback reaches the log.
    """
    try:
        return fit_model(X_train, y_train, model, resample)
    except InsufficientMinority as exc:
        return insufficient_minority_check(exc, label)
