"""The retraining flow and the validation-only flow: they sequence the tasks, nothing more."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Failed, State

from schemas.params import RetrainParams
from schemas.report import CheckResult, DataSummary, Report, RetrainGuardHalt
from tasks.artifacts import publish_artifacts_task
from tasks.diagnosis import diagnose, evidence_from_run
from tasks.evaluation import (
    evaluate_task,
    measure_baseline,
    measure_training_part,
    threshold_for_share,
    threshold_task,
)
from tasks.features import check_features_task
from tasks.gate import gate_holdout_task
from tasks.leakage_rows import split_leakage_task
from tasks.load import InputError, load_task, read_columns
from tasks.parallel import leakage_checks
from tasks.profile import LabelProfile, profile_label_task
from tasks.publish import publish_task, write_report
from tasks.quirks import check_quirks_task
from tasks.reporting import DATA_CHECKS, RETRAIN_CHECKS, RunRecorder
from tasks.split import split_task
from tasks.training import (
    InsufficientMinority,
    LabelledModel,
    named_counts,
    plain_value,
    positive_scores,
    predict_from_scores,
    resampling_check,
    train_task,
)
from tasks.validation import DeclaredSchema, declare_schema_task, validate_schema_task

INPUT_UNREADABLE = "input_unreadable"
NO_FEATURES = "no_features_left"


def _run_name() -> str:
    context = FlowRunContext.get()
    if context and context.flow_run:
        return f"{context.flow_run.name}-{str(context.flow_run.id)[:8]}"
    return "local"


def _finish(recorder: RunRecorder, failed: CheckResult | None) -> Report | State[Any]:
    """Write and publish the report; a failed check ends the run Failed with its code first."""
    report = recorder.build(failed)
    report_path = Path(recorder.params.publish.output_dir) / "reports" / f"{_run_name()}.json"
    report = report.model_copy(update={"run": {**report.run, "report_path": str(report_path)}})
    write_report(report, report_path)
    publish_artifacts_task(report, str(report_path))
    logger = get_run_logger()
    if failed is None:
        logger.info("Passed; report %s", report_path)
        return report
    logger.error("Halted: %s; report %s", report.one_line(), report_path)
    # A returned Failed state (not a raised exception) keeps the state message starting with
    # the failure code and spares the operator a traceback; the data is persisted.
    return Failed(message=report.one_line(), data=RetrainGuardHalt(report))


def _unreadable(recorder: RunRecorder, exc: Exception) -> CheckResult:
    """Record that the table could not be read, naming the file and the reason."""
    check = CheckResult(code=INPUT_UNREADABLE, stage="load", status="fail", summary=str(exc))
    recorder.add(check)
    return check


def _declare(
    params: RetrainParams, recorder: RunRecorder
) -> tuple[RetrainParams, DeclaredSchema] | CheckResult:
    """Resolve the schema and its roles and check the header, before any data row is read."""
    data = params.data
    with recorder.stage("schema"):
        try:
            columns = read_columns(data.path)
        except InputError as exc:
            return _unreadable(recorder, exc)
        declared = declare_schema_task(data, params.schema_, columns)
    if isinstance(declared, CheckResult):
        recorder.add(declared)
        return declared
    data, schema = declared
    # Roles the schema declares fill the ones the run left empty, and its known-at times
    # join the leakage declarations (the run's own win); later stages see them.
    known_at = {**schema.roles.leakage_known_at(), **params.leakage.known_at}
    leakage = params.leakage.model_copy(update={"known_at": known_at})
    params = params.model_copy(update={"data": data, "leakage": leakage})
    recorder.params = params
    return params, schema


def _data_stages(
    params: RetrainParams, recorder: RunRecorder, declared: DeclaredSchema
) -> tuple[pd.DataFrame, LabelProfile] | CheckResult:
    """Load, validate, profile and check leakage; return the frame or the failing check."""
    data = params.data
    with recorder.stage("load"):
        try:
            frame = load_task(data.path)
        except (InputError, OSError) as exc:
            return _unreadable(recorder, exc)
    recorder.data = DataSummary(rows=len(frame), columns=[str(c) for c in frame.columns])

    with recorder.stage("schema"):
        validated, check = validate_schema_task(frame, declared, data, params.schema_)
    if (failed := recorder.add(check)) or validated is None:
        return failed or check
    frame = validated

    # Non-finite numbers become missing, unusable columns leave the frame (tasks/quirks.py).
    with recorder.stage("load"):
        frame, quirks = check_quirks_task(frame, data)
    if failed := recorder.add(*quirks):
        return failed

    with recorder.stage("profile"):
        frame, profile, checks = profile_label_task(frame, data.label)
    recorder.data = recorder.data.model_copy(update={"class_counts": dict(profile.counts)})
    if failed := recorder.add(*checks):
        return failed

    with recorder.stage("leakage"):
        leakage = leakage_checks(frame, data, params, profile.positive)
    recorder.metrics["leakage"] = leakage.describe()
    if failed := recorder.add(*leakage.checks):
        return failed
    frame = frame.drop(columns=leakage.dropped)
    if leakage.dropped and not data.feature_columns(frame.columns):
        nothing_left = CheckResult(
            code=NO_FEATURES,
            stage="leakage",
            status="fail",
            columns=list(leakage.dropped),
            summary="leakage.on_leakage 'drop' removed every feature ("
            + ", ".join(leakage.dropped)
            + "): nothing is left to train on",
            metrics={"dropped_columns": list(leakage.dropped)},
        )
        recorder.add(nothing_left)
        return nothing_left
    return frame, profile


@flow(name="validate-data", persist_result=True)
def validate_data(params: RetrainParams) -> Report | State[Any]:
    """Check a training table without training: schema, label classes and leakage.

    Ends Completed when every check passed (warnings allowed), Failed with the failure
    code first in the state message when a check halted it. The report is published as
    artifacts (retrain-guard-summary, retrain-guard-checks) and written under
    <publish.output_dir>/reports/.
    """
    recorder = RunRecorder(params, DATA_CHECKS, "validate-data")
    declared = _declare(params, recorder)
    if isinstance(declared, CheckResult):
        return _finish(recorder, declared)
    params, schema = declared
    outcome = _data_stages(params, recorder, schema)
    return _finish(recorder, outcome if isinstance(outcome, CheckResult) else None)


@flow(name="retrain", persist_result=True)
def retrain(params: RetrainParams) -> Report | State[Any]:
    """Retrain a binary classifier and halt before publishing a model that predicts one class.

    Stages: load, schema validation (pandera), label profile, temporal leakage, time split,
    resampling of the training part only, training, evaluation on the untouched holdout,
    the gate, and publishing. A failing check ends the run Failed with the failure code
    first in the state message; the report (with a ranked diagnosis when the gate fires)
    is published as artifacts and written under <publish.output_dir>/reports/. A model
    is published to <publish.output_dir>/models/ only when every gate passed.
    """
    recorder = RunRecorder(params, RETRAIN_CHECKS, "retrain")
    declared = _declare(params, recorder)
    if isinstance(declared, CheckResult):
        return _finish(recorder, declared)
    params, schema = declared
    outcome = _data_stages(params, recorder, schema)
    if isinstance(outcome, CheckResult):
        return _finish(recorder, outcome)
    frame, profile = outcome
    data = params.data
    y = (frame[data.label] == profile.positive).to_numpy().astype("int64")
    class_names = (str(profile.negative), str(profile.positive))

    with recorder.stage("split"):
        split, checks = split_task(frame, data, params.split, profile.positive)
        checks = [*checks, split_leakage_task(frame, split, data, params.leakage)]
    recorder.metrics["split"] = split.describe()
    if failed := recorder.add(*checks):
        return _finish(recorder, failed)

    features = data.feature_columns(frame.columns)
    X_train, y_train = frame.iloc[split.train][features], y[split.train]
    X_holdout, y_holdout = frame.iloc[split.holdout][features], y[split.holdout]
    train_times = frame.iloc[split.train][data.label_time] if data.label_time else None

    with recorder.stage("train"):
        try:
            trained = train_task(X_train, y_train, params.model, params.resample)
        except InsufficientMinority as exc:
            too_few = CheckResult(
                code="insufficient_minority",
                stage="resample",
                status="fail",
                columns=[data.label],
                summary=str(exc),
                metrics={"minority_rows": exc.have, "needed": exc.need, "sampler": exc.sampler},
            )
            recorder.add(too_few)
            return _finish(recorder, too_few)
        feature_checks, separation = check_features_task(trained, X_train, y_train, params.model)
    recorder.add(resampling_check(trained, params.resample, class_names))
    before, after = named_counts(trained, class_names)
    recorder.metrics["resampling"] = {
        "sampler": params.resample.sampler,
        "class_weight": params.model.class_weight,
        "target_ratio": params.resample.target_ratio,
        "before": dict(before),
        "after": dict(after),
        "change": {k: after[k] - v for k, v in before.items()},
        "adaptations": list(trained.adaptations),
    }
    recorder.metrics["features"] = list(features)
    recorder.add(*feature_checks)

    with recorder.stage("evaluate"):
        holdout_scores = positive_scores(trained.model, X_holdout)
        holdout_pred = predict_from_scores(trained.model, holdout_scores)
        holdout = evaluate_task(y_holdout, holdout_pred, holdout_scores, class_names)
        train_scores = positive_scores(trained.model, X_train)
        train_pred = predict_from_scores(trained.model, train_scores)
        on_train = measure_training_part(y_train, train_pred, train_scores, class_names)
        majority = int(np.mean(y_train) > 0.5)
        baseline = measure_baseline(y_holdout, holdout_pred, majority, class_names)
        threshold = threshold_task(
            X_train, y_train, train_times, params, holdout_scores, y_holdout, class_names
        )
    recorder.metrics["holdout"] = holdout
    recorder.metrics["baseline"] = baseline
    recorder.metrics["threshold_analysis"] = threshold
    recorder.metrics["training_part"] = on_train
    recorder.metrics["single_feature_roc_auc"] = dict(separation)
    recorder.metrics["predicted_class_counts"] = holdout["predicted_class_counts"]

    leakage_findings = [c for c in recorder.checks if c.stage == "leakage"]
    with recorder.stage("gate"):
        verdicts = gate_holdout_task(
            holdout, params.gate, class_names[1], leakage_findings, separation
        )
    if failed := recorder.add(*verdicts):
        evidence = evidence_from_run(
            params,
            int(y_train.sum()),
            len(y_train),
            holdout,
            on_train,
            threshold,
            threshold_for_share(train_scores, float(y_train.mean())),
            failed.code,
            feature_checks,
            separation,
            leakage_findings,
        )
        recorder.diagnosis = diagnose(evidence, params)
        return _finish(recorder, failed)

    with recorder.stage("publish"):
        report = recorder.build(None)
        # The published model answers in the table's labels, not the 0/1 used in training.
        labelled = LabelledModel(
            trained.model, plain_value(profile.negative), plain_value(profile.positive)
        )
        publication = publish_task(labelled, report, params.publish.output_dir)
    recorder.published = publication.report.published
    return _finish(recorder, None)
