"""Training: preprocessing, resampling of the training part only, and the estimator."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from schemas.params import DataParams, ModelParams, ResampleParams

NANOSECONDS_PER_DAY = 86_400 * 10**9


def feature_columns(columns: list[str], data: DataParams) -> list[str]:
    """Return the columns used as features: all but the label, label time, id and drops."""
    excluded = {data.label, data.label_time, data.id_column, *data.drop}
    return [c for c in columns if c not in excluded]


def dates_to_days(frame: pd.DataFrame) -> np.ndarray:
    """Turn datetime columns into days since 1970 (NaN stays NaN)."""
    out = np.empty(frame.shape, dtype="float64")
    for i, column in enumerate(frame.columns):
        values = frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        as_ns = values.astype("datetime64[ns]")
        out[:, i] = np.where(as_ns.isna(), np.nan, as_ns.astype("int64") / NANOSECONDS_PER_DAY)
    return out


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


def build_preprocessor(features: pd.DataFrame, params: ModelParams) -> ColumnTransformer:
    """Impute and scale numbers, one-hot strings (rare ones pooled), turn dates into days."""
    numeric, categorical, dates = split_feature_kinds(features)
    to_str = FunctionTransformer(_as_object_strings, feature_names_out="one-to-one")
    return ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    to_str,
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=params.max_categories,
                        sparse_output=False,
                    ),
                ),
                categorical,
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


def _as_object_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Make every categorical value a Python string or None, whatever its dtype."""
    return (
        frame.astype(object).where(frame.notna(), None).map(lambda v: None if v is None else str(v))
    )


class RecordingSampler(BaseEstimator):
    """Wrap an imblearn sampler and remember the class counts it produced.

    imblearn's Pipeline calls `fit_resample` during fit only, so the wrapped sampler
    touches the training rows and never the rows a fitted pipeline predicts on.
    """

    def __init__(self, sampler: Any = None) -> None:
        self.sampler = sampler

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        self.counts_before_ = dict(Counter(np.asarray(y).tolist()))
        if self.sampler is None:
            X_out, y_out = X, y
        else:
            X_out, y_out = self.sampler.fit_resample(X, y)
        self.counts_after_ = dict(Counter(np.asarray(y_out).tolist()))
        return X_out, y_out


def make_sampler(params: ResampleParams, minority_count: int) -> Any:
    """Return the imblearn sampler named by the parameters, or None for 'none'.

    Raises:
        ValueError: the minority class is too small for the sampler.
    """
    ratio = params.target_ratio
    if params.sampler == "none":
        return None
    if params.sampler == "random_over":
        return RandomOverSampler(sampling_strategy=ratio, random_state=params.seed)
    if params.sampler == "random_under":
        return RandomUnderSampler(sampling_strategy=ratio, random_state=params.seed)
    if params.sampler == "smote":
        if minority_count < 2:
            raise InsufficientMinority(minority_count, 2, "smote")
        k = min(params.k_neighbors, minority_count - 1)
        return SMOTE(sampling_strategy=ratio, k_neighbors=k, random_state=params.seed)
    raise ValueError(f"resample.sampler {params.sampler!r} is not supported")


class InsufficientMinority(ValueError):
    """The training part has too few minority rows for the chosen sampler."""

    def __init__(self, have: int, need: int, sampler: str) -> None:
        super().__init__(
            f"resample.sampler {sampler!r} needs at least {need} minority rows in the training "
            f"part; it has {have}"
        )
        self.have, self.need, self.sampler = have, need, sampler


def make_estimator(params: ModelParams) -> Any:
    """Return the scikit-learn estimator named by the parameters."""
    weight = "balanced" if params.class_weight == "balanced" else None
    if params.name == "logistic_regression":
        return LogisticRegression(
            C=params.C, max_iter=params.max_iter, class_weight=weight, random_state=params.seed
        )
    if params.name == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(
            learning_rate=params.learning_rate,
            max_depth=params.max_depth,
            max_leaf_nodes=params.max_leaf_nodes,
            min_samples_leaf=params.min_samples_leaf,
            class_weight=weight,
            random_state=params.seed,
        )
    raise ValueError(f"model.name {params.name!r} is not supported")


def build_model(
    features: pd.DataFrame, model: ModelParams, resample: ResampleParams, minority_count: int
) -> FixedThresholdClassifier:
    """Return the unfitted model: preprocess -> resample (fit only) -> estimator, thresholded."""
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor(features, model)),
            ("resample", RecordingSampler(make_sampler(resample, minority_count))),
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


def fit_model(
    X_train: pd.DataFrame, y_train: np.ndarray, model: ModelParams, resample: ResampleParams
) -> Trained:
    """Fit on the training part; y is 1 for the positive (minority) class, else 0."""
    minority = int(np.sum(y_train == 1))
    fitted = build_model(X_train, model, resample, minority)
    fitted.fit(X_train, y_train)
    sampler: RecordingSampler = fitted.estimator_.named_steps["resample"]
    return Trained(
        model=fitted,
        counts_before={str(k): int(v) for k, v in sorted(sampler.counts_before_.items())},
        counts_after={str(k): int(v) for k, v in sorted(sampler.counts_after_.items())},
        features=list(X_train.columns),
    )


def positive_scores(model: FixedThresholdClassifier, X: pd.DataFrame) -> np.ndarray:
    """Return the model's score of the positive class for each row."""
    return np.asarray(model.predict_proba(X))[:, 1]


@task(name="train-model", cache_policy=NO_CACHE, persist_result=False)
def train_task(
    X_train: pd.DataFrame, y_train: np.ndarray, model: ModelParams, resample: ResampleParams
) -> Trained:
    """Resample the training part inside the pipeline and fit the estimator."""
    return fit_model(X_train, y_train, model, resample)
