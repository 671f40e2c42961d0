"""The retraining flow and the validation-only flow: they sequence the tasks, nothing more."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype
from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Failed, State
from pydantic import JsonValue

from schemas.params import DataParams, RetrainParams
from schemas.report import CheckResult, DataSummary, Report, RetrainGuardHalt, Stage
from tasks.artifacts import publish_artifacts_task
from tasks.dates import unsettled_day_month
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
from tasks.leakage.detect import (
    LABEL_FREE_CHECKS,
    detect_label_free_leakage,
    split_leakage_task,
)
from tasks.leakage.temporal import (
    AMBIGUOUS_DATES,
    AmbiguousDates,
    judge_ambiguous_dates,
    measure_ambiguous_dates,
)
from tasks.load import InputError, Unreadable, load_task, read_header
from tasks.parallel import check_task_runner, leakage_checks
from tasks.profile import LabelProfile, profile_label_task
from tasks.publish import output_dir_problem, publish_task, write_report
from tasks.quirks import check_quirks_task, unusable_roles
from tasks.reporting import DATA_CHECKS, RETRAIN_CHECKS, RunRecorder
from tasks.split import judge_class_rows, split_task
from tasks.training import (
    LabelledModel,
    named_counts,
    plain_value,
    positive_scores,
    predict_from_scores,
    resampling_check,
    train_task,
)
from tasks.validation import (
    DeclaredSchema,
    declare_schema_task,
    judge_empty_columns,
    measure_empty_columns,
    unusable_columns,
    validate_schema_task,
)

INPUT_UNREADABLE = "input_unreadable"
NO_FEATURES = "no_features_left"
OUTPUT_DIR = "output_dir_unusable"
LEAKAGE_CHECKS = [code for code, stage in DATA_CHECKS if stage == "leakage"]


def _run_name() -> str:
    context = FlowRunContext.get()
    if context and context.flow_run:
        return f"{context.flow_run.name}-{str(context.flow_run.id)[:8]}"
    return "local"


def _finish(recorder: RunRecorder, failed: CheckResult | None) -> Report | State[Any]:
    """Write and publish the report; a failed check ends the run Failed with its code first."""
    report = recorder.build(failed)
    report_path: Path | None = (
        Path(recorder.params.publish.output_dir) / "reports" / f"{_run_name()}.json"
    )
    if failed is not None and failed.code == OUTPUT_DIR:
        report_path = None  # nowhere to write it: the report lives in the artifacts only
    report = report.model_copy(
        update={"run": {**report.run, "report_path": str(report_path) if report_path else None}}
    )
    if report_path is not None:
        write_report(report, report_path)
    publish_artifacts_task(report, str(report_path) if report_path else None)
    logger = get_run_logger()
    if failed is None:
        logger.info("Passed; report %s", report_path)
        return report
    logger.error("Halted: %s; report %s", report.one_line(), report_path)
    # A returned Failed state (not a raised exception) keeps the state message starting with
    # the failure code and spares the operator a traceback; the data is persisted.
    return Failed(message=report.one_line(), data=RetrainGuardHalt(report))


def _unreadable(recorder: RunRecorder, reason: Exception | str) -> CheckResult:
    """Record that the table could not be read, naming the file and the reason."""
    check = CheckResult(code=INPUT_UNREADABLE, stage="load", status="fail", summary=str(reason))
    recorder.add(check)
    return check


def _output_dir(params: RetrainParams, recorder: RunRecorder) -> CheckResult | None:
    """Fail at the start, before any data is read, when nothing could be written."""
    problem = output_dir_problem(params.publish.output_dir)
    if problem is None:
        return None
    check = CheckResult(
        code=OUTPUT_DIR,
        stage="run",
        status="fail",
        summary=f"publish.output_dir: {problem}; reports and models could not be written",
        metrics={"setting": "publish.output_dir", "path": params.publish.output_dir},
    )
    recorder.add(check)
    return check


def _task_runner(params: RetrainParams, recorder: RunRecorder) -> CheckResult | None:
    """Fail at the start, before any data is read, when the chosen task runner is missing."""
    check = check_task_runner(params.compute)
    if check is not None:
        recorder.add(check)
    return check


def _declare(
    params: RetrainParams, recorder: RunRecorder
) -> tuple[RetrainParams, DeclaredSchema] | CheckResult:
    """Resolve the schema and its roles and check the header, before any data row is read."""
    data = params.data
    with recorder.stage("schema"):
        try:
            header = read_header(data.path)
        except InputError as exc:
            return _unreadable(recorder, exc)
        declared = declare_schema_task(data, params.schema_, header.columns, header.duplicates)
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
    """Load, validate, profile and check leakage; return the frame or the first failing check.

    A failing schema does not hide the other data checks: they run on the table as read,
    leaving out what the schema found unusable, and the run halts after this stage with
    the first failure and every finding in the report.
    """
    data = params.data
    with recorder.stage("load"):
        loaded = load_task(data.path)
    if isinstance(loaded, Unreadable):
        return _unreadable(recorder, loaded.reason)
    recorder.data = DataSummary(rows=len(loaded), columns=[str(c) for c in loaded.columns])

    # A role column no check can use fails unusable_columns first; the schema leaves it out.
    bad_roles = unusable_roles(loaded, data)
    quirks: list[CheckResult] = []
    if bad_roles:
        with recorder.stage("load"):
            loaded, quirks = check_quirks_task(loaded, data)
        recorder.add(*quirks)
    with recorder.stage("schema"):
        validated, schema_check = validate_schema_task(
            loaded, declared, data, params.schema_, bad_roles
        )
        frame = loaded if validated is None else validated
        empty = measure_empty_columns(frame, data.feature_columns(frame.columns))
    recorder.add(schema_check, judge_empty_columns(empty, len(frame)))
    frame = frame.drop(columns=empty)
    # An empty column left the table: a declaration of when it is known has nothing to judge.
    known_at = {k: v for k, v in params.leakage.known_at.items() if k not in empty}
    params = params.model_copy(
        update={"leakage": params.leakage.model_copy(update={"known_at": known_at})}
    )
    if empty and not data.feature_columns(frame.columns):
        return _no_features(recorder, empty, "schema", "every feature column is empty")
    unusable = _unusable(frame, data, schema_check, validated is None)

    # Non-finite numbers become missing, unusable columns leave the frame (tasks/quirks.py).
    if not bad_roles:
        with recorder.stage("load"):
            frame, quirks = check_quirks_task(frame, data)
        recorder.add(*quirks)
    role_problems = [
        c for q in quirks if q.status == "fail" for c in q.columns if c not in data.drop
    ]
    unusable = list(dict.fromkeys([*unusable, *role_problems]))
    if data.label in unusable:
        reason = f"label {data.label!r} " + (
            "holds values no check can use" if data.label in role_problems else "failed the schema"
        )
        recorder.skip("single_class_target", "profile", reason, [data.label])
        recorder.skip("too_few_rows", "profile", reason, [data.label])
        return _label_free_leakage(frame, params, recorder, unusable, reason)
    if not data.feature_columns(frame.columns) and recorder.first_failure():
        return _skip_leakage(recorder, "no usable feature is left")
    with recorder.stage("profile"):
        frame, profile, checks = profile_label_task(frame, data.label)
    recorder.data = recorder.data.model_copy(update={"class_counts": dict(profile.counts)})
    recorder.add(*checks)
    if profile.positive is None:
        return _skip_leakage(recorder, f"label {data.label!r} has fewer than two classes")
    # Too few rows of a class halts after the data stage; the leakage checks still run.
    recorder.add(judge_class_rows(profile.counts, data.label))

    measurable = _without(data, unusable)
    with recorder.stage("leakage"):
        leakage = leakage_checks(frame, measurable, params, profile.positive)
    described = leakage.describe()
    if unusable:
        described["left_out_after_schema"] = list[JsonValue](unusable)
    recorder.metrics["leakage"] = described
    explained = _explain_skips(leakage.checks, data, unusable)
    recorder.add(*_name_unsettled_label_time(explained, frame, data, unusable))
    if failed := recorder.first_failure():
        return failed
    frame = frame.drop(columns=leakage.dropped)
    if leakage.dropped and not data.feature_columns(frame.columns):
        return _no_features(
            recorder, leakage.dropped, "leakage", "leakage.on_leakage 'drop' removed every feature"
        )
    return frame, profile


def _no_features(recorder: RunRecorder, removed: list[str], stage: Stage, why: str) -> CheckResult:
    """Record that nothing is left to train on, naming the columns that were removed."""
    nothing_left = CheckResult(
        code=NO_FEATURES,
        stage=stage,
        status="fail",
        columns=list(removed),
        summary=f"{why} ({', '.join(removed)}): nothing is left to train on",
        metrics={"dropped_columns": list(removed)},
    )
    recorder.add(nothing_left)
    return recorder.first_failure() or nothing_left


def _unusable(
    frame: pd.DataFrame, data: DataParams, schema_check: CheckResult, failed: bool
) -> list[str]:
    """Return the columns the later data checks cannot use after a failed schema."""
    if not failed:
        return []
    unusable = unusable_columns(schema_check)
    # Unvalidated, the label time is as read; only a datetime column can be measured.
    label_time = data.label_time
    if (
        label_time
        and label_time in frame.columns
        and label_time not in unusable
        and not is_datetime64_any_dtype(frame[label_time].dtype)
    ):
        unusable.append(label_time)
    return unusable


def _without(data: DataParams, unusable: list[str]) -> DataParams:
    """Return the data roles with the unusable columns left out of the measures."""
    if not unusable:
        return data
    return data.model_copy(
        update={
            "drop": list(dict.fromkeys([*data.drop, *unusable])),
            "label_time": None if data.label_time in unusable else data.label_time,
            "id_column": None if data.id_column in unusable else data.id_column,
        }
    )


def _explain_skips(
    checks: list[CheckResult], data: DataParams, unusable: list[str]
) -> list[CheckResult]:
    """Say why a leakage check did not run when the schema made the label time unusable."""
    if data.label_time is None or data.label_time not in unusable:
        return checks
    reason = (
        f"not run: label time {data.label_time!r} failed the schema, so no date can be "
        "checked against it"
    )
    return [
        c.model_copy(update={"summary": reason, "columns": [data.label_time]})
        if c.status == "not_run" and c.code == "temporal_leakage"
        else c
        for c in checks
    ]


def _name_unsettled_label_time(
    checks: list[CheckResult], frame: pd.DataFrame, data: DataParams, unusable: list[str]
) -> list[CheckResult]:
    """Name a label time left text for its unsettled day/month order in ambiguous_dates.

    The schema failed it, so the leakage checks ran without it and could not see it.
    """
    column = data.label_time
    if not column or column not in unusable or column not in frame.columns:
        return checks
    order = unsettled_day_month(frame[column])
    if order is None:
        return checks
    already = [col for c in checks if c.code == AMBIGUOUS_DATES for col in c.columns]
    others = [col for col in already if col != column]
    found = [AmbiguousDates(column, order), *measure_ambiguous_dates(frame, others)]
    judged = judge_ambiguous_dates(found)
    return [judged if c.code == AMBIGUOUS_DATES else c for c in checks]


def _label_free_leakage(
    frame: pd.DataFrame,
    params: RetrainParams,
    recorder: RunRecorder,
    unusable: list[str],
    reason: str,
) -> CheckResult:
    """Without a usable label, run the date checks that need none; skip the rest for `reason`."""
    data = params.data
    with recorder.stage("leakage"):
        outcome = detect_label_free_leakage(frame, _without(data, unusable), params.leakage)
    recorder.metrics["leakage"] = outcome.describe()
    explained = _explain_skips(outcome.checks, data, unusable)
    recorder.add(*_name_unsettled_label_time(explained, frame, data, unusable))
    for code in LEAKAGE_CHECKS:
        if code not in LABEL_FREE_CHECKS:
            recorder.skip(code, "leakage", reason)
    failed = recorder.first_failure()
    assert failed is not None, "the leakage checks are skipped only after a failure"
    return failed


def _skip_leakage(recorder: RunRecorder, reason: str) -> CheckResult:
    """Record the leakage checks as not run for `reason`; return the first failure."""
    for code in LEAKAGE_CHECKS:
        recorder.skip(code, "leakage", reason)
    failed = recorder.first_failure()
    assert failed is not None, "the leakage checks are skipped only after a failure"
    return failed


@flow(name="validate-data", persist_result=True)
def validate_data(params: RetrainParams) -> Report | State[Any]:
    """Check a training table without training: schema, label classes and leakage.

    Ends Completed when every check passed (warnings allowed), Failed with the failure
    code first in the state message when a check halted it. The report is published as
    artifacts (retrain-guard-summary, retrain-guard-checks) and written under
    <publish.output_dir>/reports/.
    """
    recorder = RunRecorder(params, DATA_CHECKS, "validate-data")
    if unusable_output := _output_dir(params, recorder):
        return _finish(recorder, unusable_output)
    if missing_runner := _task_runner(params, recorder):
        return _finish(recorder, missing_runner)
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
    if unusable_output := _output_dir(params, recorder):
        return _finish(recorder, unusable_output)
    if missing_runner := _task_runner(params, recorder):
        return _finish(recorder, missing_runner)
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
        if len(split.train) or len(split.holdout):  # no rows placed: nothing to compare
            checks = [*checks, split_leakage_task(frame, split, data, params.leakage)]
    recorder.metrics["split"] = split.describe()
    if failed := recorder.add(*checks):
        return _finish(recorder, failed)

    features = data.feature_columns(frame.columns)
    X_train, y_train = frame.iloc[split.train][features], y[split.train]
    X_holdout, y_holdout = frame.iloc[split.holdout][features], y[split.holdout]
    train_times = frame.iloc[split.train][data.label_time] if data.label_time else None

    with recorder.stage("train"):
        trained = train_task(X_train, y_train, params.model, params.resample, data.label)
        if isinstance(trained, CheckResult):
            recorder.add(trained)
            return _finish(recorder, trained)
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
