"""Training: the model's view of the split, preprocessing, the estimator, and fitting.

`split_parts` cuts the table into the training part and the holdout as the model sees them;
`build_model` chains preparing, encoding, resampling (tasks/resampling.py, training part only)
and the estimator (a built-in one, or a custom one from tasks/estimator.py); `train` fits it,
and `Trained` records what the fit did (tasks/resampling.py's ResamplingOutcome reports it).
`LabelledModel` is the published model,
answering in the table's own labels.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.pipeline import Pipeline
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OrdinalEncoder,
    StandardScaler,
)

from retrain_guard.schemas.params import DataParams, ModelParams, ResampleParams, RetrainParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.dates import to_days
from retrain_guard.tasks.estimator import (
    PARAMS_SETTING,
    EstimatorError,
    first_line,
    make_custom_estimator,
)
from retrain_guard.tasks.onehot import OneHotThenNumbers
from retrain_guard.tasks.part_map import iter_parts
from retrain_guard.tasks.profile import LabelProfile
from retrain_guard.tasks.quirks import as_finite
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.resampling import ALREADY_REACHED, InsufficientMinority, RecordingSampler
from retrain_guard.tasks.resampling import (
    MIN_TRAINING_MINORITY_ROWS as MIN_TRAINING_MINORITY_ROWS,  # tasks/split.py reads it here
)
from retrain_guard.tasks.stored_table import Frame, StoredTable, row_chunks, rows_of, take_rows
from retrain_guard.tasks.train_sample import (
    Correction,
    TrainingSample,
    draw_training_sample,
    resampled_whole,
    weight_correction,
)


@dataclass(frozen=True)
class Parts:
    """The training part and the holdout as the model sees them.

    y is 1 for the positive (minority) class, else 0; `train_times` are the training
    part's label times when the table has them.
    """

    X_train: pd.DataFrame
    y_train: np.ndarray
    # On the Dask engine a time split's holdout stays on disk, scored a partition at a time.
    X_holdout: Frame
    y_holdout: np.ndarray
    train_times: pd.Series | None
    label: str
    negative: Any
    positive: Any
    # The class-aware sample X_train holds (tasks/train_sample.py); None: not drawn.
    sample: TrainingSample | None = None

    @property
    def class_names(self) -> tuple[str, str]:
        """The table's names of the encoded classes 0 and 1, as the report writes them."""
        return str(self.negative), str(self.positive)

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.X_train.columns]


def split_parts(
    frame: Frame,
    data: DataParams,
    train: np.ndarray,
    holdout: np.ndarray,
    profile: LabelProfile,
    sample_rows: int | None = None,
    seed: int = 0,
) -> Parts:
    """Return the feature columns and 0/1 labels of the rows at `train` and `holdout`; with
    `sample_rows`, the training part is the class-aware sample of tasks/train_sample.py."""
    y = (frame[data.label] == profile.positive).to_numpy().astype("int64")
    features = data.feature_columns(frame.columns)
    sample = None
    if sample_rows is not None:
        train, sample = draw_training_sample(train, y[train], sample_rows, seed)
    return Parts(
        X_train=take_rows(frame, train, features),
        y_train=y[train],
        X_holdout=rows_of(frame, holdout, features),
        y_holdout=y[holdout],
        train_times=take_rows(frame, train, [data.label_time])[data.label_time]
        if data.label_time
        else None,
        label=data.label,
        negative=profile.negative,
        positive=profile.positive,
        sample=sample,
    )


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


# Categorical codes stay categorical through smotenc, so one-hot encoding runs after it.
RESAMPLE_BEFORE_ENCODING = ("smotenc",)


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
            ("numeric", _as_scaled_numbers(non_finite_as_missing), numeric),
            ("dates", _as_scaled_numbers(dates_to_days), dates),
        ],
        remainder="drop",
        verbose_feature_names_out=True,
    )


def _as_scaled_numbers(to_numbers: Callable[[Any], np.ndarray]) -> BaseEstimator:
    """Turn columns into numbers (missing as NaN), impute the median with a missing-value
    indicator, and scale."""
    return make_pipeline(
        FunctionTransformer(to_numbers, feature_names_out="one-to-one"),
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )


def _as_object_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Make every categorical value a Python string and every missing one NaN, whatever its
    dtype, in object columns.

    Object columns, not pandas' string dtype: the imputer and the encoder after it turn a
    string column into Python objects again at each step, one new object per value (at a
    million training rows of 7 text columns, 1 GiB held at once).
    """
    columns = {}
    for column in frame.columns:
        values = frame[column]
        strings = _to_str(values.to_numpy(dtype=object))
        strings[values.isna().to_numpy()] = np.nan
        columns[column] = pd.Series(strings, index=frame.index, dtype=object, copy=False)
    return pd.DataFrame(columns, index=frame.index, columns=frame.columns, copy=False)


_to_str = np.frompyfunc(str, 1, 1)


def make_estimator(params: ModelParams) -> Any:
    """Return the estimator named by the parameters, seeded and single-threaded.

    Raises:
        EstimatorError: a custom estimator cannot be built (tasks/estimator.py).
    """
    if params.name == "custom":
        return make_custom_estimator(params)
    weight = "balanced" if params.class_weight == "balanced" else None
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
    forest: dict[str, Any] = {
        "n_estimators": params.n_estimators,
        "max_depth": params.max_depth,
        "min_samples_leaf": params.forest_min_samples_leaf,
        "max_features": None if params.max_features == "all" else params.max_features,
        "class_weight": weight,
        "random_state": params.seed,
        "n_jobs": 1,
    }
    if params.name == "random_forest":
        return RandomForestClassifier(**forest)
    if params.name == "balanced_random_forest":
        # Each tree sees a bootstrap under-sampled to balance; the explicit arguments are
        # imblearn's current defaults, spelled out so a change of defaults cannot go unseen.
        return BalancedRandomForestClassifier(
            **forest, sampling_strategy="all", replacement=True, bootstrap=False
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
    encode = ("encode", OneHotThenNumbers(n_categorical))
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
    # The class weight the estimator was given: balanced, none, or a custom estimator's own.
    class_weight: str = "balanced"
    # The class-aware sample fitted on, and how the fit restored the whole part's shares.
    sample: TrainingSample | None = None
    correction: Correction | None = None


def fit_model(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    model: ModelParams,
    resample: ResampleParams,
    sample: TrainingSample | None = None,
) -> Trained:
    """Fit on the training part; y is 1 for the positive (minority) class, else 0. When the
    rows are a class-aware `sample`, class weights restore the whole part's class shares.

    Raises:
        InsufficientMinority: the sampler cannot work with this few minority rows.
        EstimatorError: a custom estimator cannot be built, or fails to fit.
    """
    fitted = build_model(X_train, model, resample)
    correction = None
    if sample is not None:
        given = given_class_weight(fitted.estimator.named_steps["estimator"])
        correction = weight_correction(sample, model, resample, given)
        if (weight := correction.class_weight()) is not None:
            fitted.set_params(estimator__estimator__class_weight=weight)
        if correction.leaf is not None:
            fitted.set_params(estimator__estimator__min_samples_leaf=correction.leaf[1])
    try:
        fitted.fit(X_train, y_train)
    except InsufficientMinority:
        raise
    except Exception as exc:
        if model.name != "custom":
            raise
        # Its parameters are often checked only by fit (scikit-learn's own convention).
        raise EstimatorError(
            PARAMS_SETTING,
            f"{model.estimator} failed to fit: {type(exc).__name__}: {first_line(exc)}",
        ) from exc
    sampler: RecordingSampler = fitted.estimator_.named_steps["resample"]
    fitted_weight = class_weight_of(fitted.estimator_.named_steps["estimator"])
    adaptations = list(sampler.adaptations_)
    if sample is not None and resampled_whole(sample, resample):
        # The sample alone reaches the target ratio; the class weights stand in for the sampler.
        adaptations = [a for a in adaptations if ALREADY_REACHED not in a]
    return Trained(
        model=fitted,
        counts_before={str(k): int(v) for k, v in sorted(sampler.counts_before_.items())},
        counts_after={str(k): int(v) for k, v in sorted(sampler.counts_after_.items())},
        features=list(X_train.columns),
        adaptations=adaptations,
        # The weight asked for ("none" when corrected); the correction is the sample's.
        class_weight="none" if correction and correction.weights else fitted_weight,
        sample=sample,
        correction=correction,
    )


def given_class_weight(estimator: Any) -> str | None:
    """Return the class weight an unfitted estimator has ("none" when unset), None when it
    takes none."""
    given = estimator.get_params(deep=False)
    return None if "class_weight" not in given else class_weight_of(estimator)


def class_weight_of(estimator: Any) -> str:
    """Return the class weight an estimator was given, as the report writes it."""
    weight = estimator.get_params(deep=False).get("class_weight")
    return "none" if weight is None else str(weight)


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


class Scorer(Protocol):
    """A fitted classifier of pandas rows (ours, or a last good model)."""

    def predict_proba(self, X: pd.DataFrame) -> Any: ...


def positive_scores(model: Scorer, X: Frame, columns: list[str] | None = None) -> np.ndarray:
    """Return the model's score of the positive class for each row of `columns` (default:
    all), SCORE_ROWS at a time: the prepared and encoded rows of a large holdout are never
    all in memory at once, nor its rows when it is stored on disk: those are scored a
    partition at a time where the partitions are (tasks/part_map.py), the model sent to
    the cluster's workers once."""
    if isinstance(X, StoredTable):
        scored = list(X.columns) if columns is None else columns
        return np.concatenate(list(iter_parts(X, scored, _scores_of, model)))
    return _scores_of(X, model, columns)


def _scores_of(rows: pd.DataFrame, model: Scorer, columns: list[str] | None = None) -> np.ndarray:
    """The model's positive-class scores of `columns` of `rows`, SCORE_ROWS at a time."""
    chunks = row_chunks(rows, columns, SCORE_ROWS)
    return np.concatenate([np.asarray(model.predict_proba(chunk))[:, 1] for chunk in chunks])


# Rows scored at once: the encoded matrix of 200,000 rows of a few dozen columns is tens of MB.
SCORE_ROWS = 200_000


def predict_from_scores(model: FixedThresholdClassifier, scores: np.ndarray) -> np.ndarray:
    """Return the 0/1 predictions the model gives for these positive-class scores.

    The same rule as the model's predict (score >= threshold), without running the
    pipeline over the rows a second time.
    """
    return (scores >= model.threshold).astype("int64")


def insufficient_minority_check(exc: InsufficientMinority, label: str | None) -> CheckResult:
    """Return the insufficient_minority failure of a sampler that had too few minority rows."""
    return check("insufficient_minority").result(
        "fail",
        str(exc),
        columns=[label] if label else [],
        metrics={"minority_rows": exc.have, "needed": exc.need, "sampler": exc.sampler},
        stage="resample",
    )


def publishable(trained: Trained, parts: Parts) -> LabelledModel:
    """Return the fitted model answering in the table's labels, not the 0/1 of training."""
    return LabelledModel(trained.model, plain_value(parts.negative), plain_value(parts.positive))


def train(parts: Parts, params: RetrainParams) -> Trained | CheckResult:
    """Resample the training part inside the pipeline and fit the estimator.

    Too few minority rows for the sampler is an expected halt: it is returned as the
    failing check, not raised, so no traceback reaches the log.
    """
    try:
        return fit_model(parts.X_train, parts.y_train, params.model, params.resample, parts.sample)
    except InsufficientMinority as exc:
        return insufficient_minority_check(exc, parts.label)
    except EstimatorError as exc:
        return estimator_check(exc)


def estimator_check(exc: EstimatorError) -> CheckResult:
    """Return the invalid_parameters failure of a custom estimator that cannot be used."""
    return check("invalid_parameters").result(
        "fail", str(exc), metrics={"setting": exc.setting}, stage="train"
    )


train_task = task(name="train-model", cache_policy=NO_CACHE, persist_result=False)(train)
