"""The public API for users' own Prefect flows (re-exported by the retrain_guard package).

`check_data` runs the flows' data stages (flows/retrain.py `checked_data`) on an in-memory
table; `check_model` runs the evaluation, the gate, the diagnosis and the threshold analysis
(tasks/evaluation.py, tasks/gate.py, tasks/diagnosis.py, tasks/threshold.py) on a fitted
model of the user's own; `publish_model` publishes a model whose report passed
(tasks/publish.py). The checks are subflows: they return the report, or raise
RetrainGuardHalt carrying it when a check failed (`raise_on_failure=False` returns it).
"""

from collections.abc import Mapping
from typing import Any, Generic, NamedTuple, TypeVar, cast

import numpy as np
import pandas as pd
from prefect import flow
from prefect.states import Failed, State
from pydantic import ValidationError
from sklearn.base import clone

from retrain_guard.flows.conclusion import conclude, output_dir_check
from retrain_guard.flows.retrain import checked_data
from retrain_guard.schemas.params import RetrainParams, describe_validation
from retrain_guard.schemas.report import CheckResult, Report, RetrainGuardHalt, Stage
from retrain_guard.tasks.compare import CODE as REGRESSION
from retrain_guard.tasks.diagnosis import diagnose_task
from retrain_guard.tasks.evaluation import evaluate_task
from retrain_guard.tasks.features import (
    FeatureChecks,
    judge_constant_features,
    measure_constant_features,
    measure_separation,
)
from retrain_guard.tasks.gate import gate_task
from retrain_guard.tasks.profile import LabelProfile, judge_label, measure_label
from retrain_guard.tasks.publish import publish_task
from retrain_guard.tasks.reporting import DATA_CHECKS, RETRAIN_CHECKS, RunRecorder
from retrain_guard.tasks.threshold import NoRefit, Refit
from retrain_guard.tasks.training import Parts, Trained

T = TypeVar("T")
# What params.data.path says when the table was handed over in memory.
IN_MEMORY = "<in-memory table>"
CONSTANT = "constant_features"
# check_model's checks: the gate's (but the comparison with a published model of the flow's
# own) and the constant features of the training part.
MODEL_CHECKS: tuple[tuple[str, Stage], ...] = tuple(
    (code, stage)
    for code, stage in RETRAIN_CHECKS
    if (stage == "gate" and code != REGRESSION) or code == CONSTANT
)

ParamsLike = RetrainParams | Mapping[str, Any]


class Handed(Generic[T]):
    """A value handed to a subflow as it is.

    Prefect records a subflow's parameters in the API, and a parameter it cannot encode as
    its type name; a DataFrame it first tries to encode cell by cell (seconds per 20,000
    rows, only to give up). Without __dict__ this wrapper is refused at once.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class ModelInputs(NamedTuple):
    """The user's fitted model and rows that check_model judges it on."""

    model: Any
    X_holdout: pd.DataFrame
    y_holdout: pd.Series
    X_train: pd.DataFrame | None
    y_train: pd.Series | None


def as_params(params: ParamsLike, label: str | None = None) -> RetrainParams:
    """Validate parameters given as a mapping the way the flows do (RetrainParams).

    A mapping may leave out data.path (the table is in memory) and, for check_model,
    data.label (`label`: the name of the labels given).
    """
    if isinstance(params, RetrainParams):
        return params
    data = {"path": IN_MEMORY, **({"label": label} if label else {}), **params.get("data", {})}
    try:
        return RetrainParams.model_validate({**params, "data": data})
    except ValidationError as exc:
        # Named by setting and rule only: pydantic's text quotes values, passwords included.
        raise ValueError(describe_validation(exc)) from None


def _ended(report: Report) -> Report | State[Any]:
    """Return the report, or for a failed one the subflow's Failed state carrying it: its
    message starts with the failure code and no traceback is logged, as for the flows."""
    if report.failure is None:
        return report
    return Failed(message=report.one_line(), data=RetrainGuardHalt(report))


def _settled(state: State[Any], raise_on_failure: bool) -> Report:
    """Return the subflow's report, or raise the halt carrying it (`raise_on_failure`).

    An unexpected error of the subflow is raised as it is.
    """
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, RetrainGuardHalt):
        if raise_on_failure:
            raise outcome
        return outcome.report
    if isinstance(outcome, BaseException):
        raise outcome
    return cast(Report, outcome)


@flow(name="check-data", persist_result=False, validate_parameters=False)
def check_data_flow(frame: Handed[pd.DataFrame], params: ParamsLike) -> Report | State[Any]:
    """Check a training table in memory: schema, label classes and leakage."""
    checked = as_params(params)
    recorder = RunRecorder(checked, DATA_CHECKS, "check-data")
    outcome = checked_data(checked, recorder, frame.value)
    return _ended(conclude(recorder, outcome if isinstance(outcome, CheckResult) else None))


def check_data(frame: pd.DataFrame, params: ParamsLike, *, raise_on_failure: bool = True) -> Report:
    """Check a training table in memory: schema, label classes and leakage.

    The same stages as the validate-data flow, on `frame` instead of data.path, run as the
    subflow check-data. Returns the report; a failing check raises RetrainGuardHalt
    carrying it, or, with raise_on_failure=False, the failed report is returned.
    """
    # Validated here, so the subflow's stored parameters are the model, secrets masked.
    checked = as_params(params)
    return _settled(check_data_flow(Handed(frame), checked, return_state=True), raise_on_failure)


class ScoredModel:
    """A user's fitted classifier seen as the flows see theirs: predict_proba columns
    (negative, positive) of the 0/1 encoding, and the decision threshold."""

    def __init__(self, model: Any, positive: Any, threshold: float) -> None:
        self.model = model
        self.threshold = threshold
        classes = getattr(model, "classes_", None)
        known = [] if classes is None else list(np.asarray(classes).tolist())
        # Without classes_ the second column is taken as the positive class's, as sklearn orders.
        self.column = known.index(positive) if positive in known else 1

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        positive = np.asarray(self.model.predict_proba(X))[:, self.column].astype("float64")
        return np.column_stack([1.0 - positive, positive])


def _refit_like(model: Any, parts: Parts, threshold: float) -> Refit:
    """Return how the threshold analysis fits a model like `model`: a clone, on its labels."""

    def refit(X: pd.DataFrame, y: np.ndarray) -> ScoredModel:
        try:
            fresh = clone(model)
        except (TypeError, RuntimeError) as exc:
            raise NoRefit(f"the model cannot be cloned to fit again: {exc}") from exc
        fresh.fit(X, np.where(y == 1, parts.positive, parts.negative))
        return ScoredModel(fresh, parts.positive, threshold)

    return refit


def _no_refit(X: pd.DataFrame, y: np.ndarray) -> ScoredModel:
    raise NoRefit("no training part was given (X_train, y_train)")


def _parts(
    profile: LabelProfile,
    label: str,
    holdout: tuple[pd.DataFrame, pd.Series],
    train: tuple[pd.DataFrame, pd.Series],
) -> Parts:
    """Return the user's rows as the flows' Parts: 1 for the positive class, else 0."""

    def encoded(y: pd.Series) -> np.ndarray:
        return (np.asarray(y, dtype=object) == profile.positive).astype("int64")

    return Parts(
        X_train=train[0],
        y_train=encoded(train[1]),
        X_holdout=holdout[0],
        y_holdout=encoded(holdout[1]),
        train_times=None,
        label=label,
        negative=profile.negative,
        positive=profile.positive,
    )


def _feature_checks(parts: Parts, params: RetrainParams) -> FeatureChecks:
    """Constant features and single-feature separation of the training part, on its columns
    as given (the user's model prepares them itself)."""
    as_prepared = parts.X_train.set_axis([f"input__{c}" for c in parts.X_train.columns], axis=1)
    constant = measure_constant_features(as_prepared, parts.X_train)
    separation = measure_separation(parts.X_train, parts.y_train, params.leakage.target_auc_fail)
    return FeatureChecks([judge_constant_features(constant)], constant, separation)


@flow(name="check-model", persist_result=False, validate_parameters=False)
def check_model_flow(inputs: Handed[ModelInputs], params: ParamsLike) -> Report | State[Any]:
    """Judge a fitted model on its holdout: the gate, the diagnosis, the threshold analysis."""
    model, X_holdout, y_holdout, X_train, y_train = inputs.value
    checked = as_params(params, label="label")
    recorder = RunRecorder(checked, MODEL_CHECKS, "check-model")
    train = (X_train, y_train) if X_train is not None and y_train is not None else None
    label = checked.data.label
    # The positive class is the rarer one of every row given, as the flows profile the table.
    labels = pd.concat([y_holdout, *([train[1]] if train else [])], ignore_index=True)
    profile = measure_label(labels.rename(label).to_frame(), label)
    failed = output_dir_check(checked) or judge_label(profile, label)
    if recorder.add(failed):
        return _ended(conclude(recorder, failed))
    parts = _parts(profile, label, (X_holdout, y_holdout), train or (X_holdout, y_holdout))
    threshold = checked.model.decision_threshold
    counts = {str(k): int(v) for k, v in enumerate(np.bincount(parts.y_train, minlength=2))}
    # The diagnosis reads how the model was weighted from what the user declares.
    trained = Trained(
        ScoredModel(model, parts.positive, threshold),
        counts,
        counts,
        parts.features,
        class_weight=checked.model.class_weight,
    )
    refit = _refit_like(model, parts, threshold) if train else _no_refit
    with recorder.stage("evaluate"):
        evaluation = evaluate_task(trained, parts, checked, refit)
        features = _feature_checks(parts, checked)
    recorder.add(*features.checks)
    metrics = evaluation.to_json(features)
    # Resampling, if any, is inside the user's model: nothing the guard saw to report.
    del metrics["resampling"]
    if train is None:
        metrics["training_part"] = {"given": False, "stand_in": "holdout"}
    recorder.metrics.update(metrics)
    with recorder.stage("gate"):
        verdicts = gate_task(evaluation.holdout, checked.gate, [], features.separation)
    collapsed = recorder.add(*verdicts)
    if collapsed:
        recorder.diagnosis = diagnose_task(checked, evaluation, features, collapsed.code, [])
    return _ended(conclude(recorder, collapsed))


def check_model(
    model: Any,
    X_holdout: pd.DataFrame,
    y_holdout: pd.Series,
    params: ParamsLike,
    *,
    X_train: pd.DataFrame | None = None,
    y_train: pd.Series | None = None,
    raise_on_failure: bool = True,
) -> Report:
    """Judge a fitted model of your own (anything with predict_proba) on its holdout.

    The gate, the diagnosis of a collapse and the threshold analysis, as the retrain flow
    runs them, in the subflow check-model; the decision threshold is
    params.model.decision_threshold, and params.model.class_weight and
    params.resample.sampler tell the diagnosis how the model was trained. With the training
    part (X_train, y_train) the diagnosis reads the model's fit on it and the threshold
    analysis fits a clone of the model on a slice of it; without it the holdout stands in
    for the training part's measures and no threshold is analysed. Returns the report; a
    failing check raises RetrainGuardHalt carrying it (raise_on_failure=False returns it).
    """
    inputs = ModelInputs(model, X_holdout, y_holdout, X_train, y_train)
    # Validated here, so the subflow's stored parameters are the model, secrets masked.
    checked = as_params(params, label=str(y_holdout.name) if y_holdout.name else "label")
    state = check_model_flow(Handed(inputs), checked, return_state=True)
    return _settled(state, raise_on_failure)


def publish_model(model: Any, report: Report, params: ParamsLike) -> Report:
    """Publish a model whose report passed under <publish.output_dir>/models/<version>/ and
    point `latest` at it; return the report with its `published` section.

    The model may hold only the built-in models' types and those params.publish.trusted_types
    lists (a LightGBM model: see examples/lightgbm_flow.py).

    Raises:
        ValueError: the report did not pass; nothing is published.
        ModelIntegrityError: the model holds a type that is not trusted; nothing is written.
    """
    if report.status != "passed":
        raise ValueError(f"the report did not pass ({report.one_line()}): nothing is published")
    publish = as_params(params, label="label").publish
    return publish_task(
        model, report, publish.output_dir, trusted_types=publish.trusted_types
    ).report
