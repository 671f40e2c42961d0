"""The retraining flow and the validation-only flow: they sequence the tasks, nothing more.

Each stage is a task in tasks/ returning typed results; the flow records their check results
and metrics on the run's RunRecorder (tasks/reporting.py), halts at the first failing check
(or pauses for a person's approval when gate.approval asks, tasks/approval.py), and writes
and publishes the report.
"""

from contextlib import ExitStack
from typing import Any

import pandas as pd
from prefect import flow
from prefect.states import Failed, State
from pydantic import JsonValue

from retrain_guard.flows.conclusion import conclude, output_dir_check
from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import CheckResult, DataSummary, Report, RetrainGuardHalt, Stage
from retrain_guard.tasks import engine
from retrain_guard.tasks.approval import settle
from retrain_guard.tasks.compare import CODE as REGRESSION
from retrain_guard.tasks.compare import NotCompared, compare_task, judge_regression
from retrain_guard.tasks.diagnosis import diagnose_task
from retrain_guard.tasks.evaluation import evaluate_task
from retrain_guard.tasks.features import check_features_task
from retrain_guard.tasks.gate import gate_task
from retrain_guard.tasks.heap import limit_heap_arenas
from retrain_guard.tasks.history import (
    fingerprint,
    history_path,
)
from retrain_guard.tasks.history_checks import check_history_task
from retrain_guard.tasks.leakage.detect import (
    LABEL_FREE_CHECKS,
    detect_label_free_leakage,
    detect_leakage_task,
    split_leakage_task,
)
from retrain_guard.tasks.load import (
    Header,
    InputError,
    Unreadable,
    load_task,
    parse_iso_dates,
    read_header,
)
from retrain_guard.tasks.memory import guard_memory_task
from retrain_guard.tasks.part_map import steps_on_cluster
from retrain_guard.tasks.profile import LabelProfile, profile_label_task
from retrain_guard.tasks.publish import (
    TRUSTED_SETTING,
    LatestMoved,
    Untrusted,
    publish_if_latest_task,
)
from retrain_guard.tasks.quirks import check_quirks_task, unusable_roles
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.reporting import DATA_CHECKS, RETRAIN_CHECKS, RunRecorder
from retrain_guard.tasks.split import judge_class_rows, split_task
from retrain_guard.tasks.stored_table import Frame
from retrain_guard.tasks.training import publishable, split_parts, train_task
from retrain_guard.tasks.unusable import explain_leakage, unusable_after_schema, without
from retrain_guard.tasks.validation import (
    DeclaredSchema,
    declare_schema_task,
    judge_empty_columns,
    measure_empty_columns,
    validate_schema_task,
)

INPUT_UNREADABLE = "input_unreadable"
NO_FEATURES = "no_features_left"
LATEST_MOVED = "latest_moved"
LEAKAGE_CHECKS = [code for code, stage in DATA_CHECKS if stage == "leakage"]


def _finish(recorder: RunRecorder, failed: CheckResult | None) -> Report | State[Any]:
    """Conclude the run; a failed check ends it Failed with its code first."""
    report = conclude(recorder, failed)
    if failed is None:
        return report
    # A returned (not raised) Failed state: the message starts with the code, no traceback.
    return Failed(message=report.one_line(), data=RetrainGuardHalt(report))


def _unreadable(recorder: RunRecorder, reason: Exception | str) -> CheckResult:
    """Record that the table could not be read, naming the file and the reason."""
    unreadable = check(INPUT_UNREADABLE).result("fail", str(reason))
    recorder.add(unreadable)
    return unreadable


def checked_data(
    params: RetrainParams,
    recorder: RunRecorder,
    table: pd.DataFrame | None = None,
    cluster: ExitStack | None = None,
) -> tuple[RetrainParams, Frame, LabelProfile] | CheckResult:
    """Run what both flows (and check_data, flows/api.py) run first: the output directory
    and the engine, before any data is read; the schema; the data stages. `table` is an
    in-memory table to check instead of reading data.path. Return the resolved parameters
    and the checked frame, or the first failing check. The Dask engine's cluster closes
    when no more of these stages uses it, or, if still used, with `cluster` (the caller's:
    the split's and the scoring's steps run there too), else on return."""
    if failed := output_dir_check(params) or engine.check_engine(params.compute, table is None):
        recorder.add(failed)
        return failed
    if table is not None:
        table = parse_iso_dates(table.set_axis([str(c) for c in table.columns], axis=1))
    declared = _declare(params, recorder, table)
    if isinstance(declared, CheckResult):
        return declared
    params, schema = declared
    try:
        with ExitStack() as own:
            outcome = _data_stages(params, recorder, schema, table, cluster or own)
    except engine.EngineSettingError as exc:  # no scheduler, or no room for the table
        outcome = check("invalid_parameters").result(
            "fail", str(exc), metrics={"setting": exc.setting}, stage="load"
        )
        recorder.add(outcome)
    if isinstance(outcome, CheckResult):
        return outcome
    frame, profile = outcome
    return params, frame, profile


def _declare(
    params: RetrainParams, recorder: RunRecorder, table: pd.DataFrame | None
) -> tuple[RetrainParams, DeclaredSchema] | CheckResult:
    """Resolve the schema and its roles and check the header, before any data row is read."""
    data = params.data
    with recorder.stage("schema"):
        try:
            header = read_header(data) if table is None else Header.of(table)
        except InputError as exc:
            return _unreadable(recorder, exc)
        declared = declare_schema_task(data, params.schema_, header.columns, header.duplicates)
    if isinstance(declared, CheckResult):
        recorder.add(declared)
        return declared
    data, schema = declared
    # Schema roles fill the run's empty ones; its known-at times join the run's (which win).
    known_at = {**schema.roles.leakage_known_at(), **params.leakage.known_at}
    leakage = params.leakage.model_copy(update={"known_at": known_at})
    params = params.model_copy(update={"data": data, "leakage": leakage})
    recorder.params = params
    return params, schema


def _data_stages(
    params: RetrainParams,
    recorder: RunRecorder,
    declared: DeclaredSchema,
    table: pd.DataFrame | None,
    cluster: ExitStack,
) -> tuple[Frame, LabelProfile] | CheckResult:
    """Load, validate, profile and check leakage; return the frame or the first failing check.

    A failing schema does not hide the other data checks: they run on the table as read,
    leaving out what the schema found unusable, and the run halts after this stage with
    the first failure and every finding in the report.
    """
    data = params.data
    # The pandas engine holds the table for the later stages, the Dask engine its columns.
    if table is None and (refused := _guard_memory(params, recorder)):
        return refused
    on_cluster = params.compute.engine == "dask" and table is None
    if on_cluster:  # Dask is an optional extra: imported only for its engine
        from retrain_guard.tasks.dask_engine import (
            collect,
            dask_cluster,
            read_dask_task,
            unusable_roles_dask,
        )
        from retrain_guard.tasks.dask_schema import needs_whole_table, validate_on_cluster_task

        cluster.enter_context(dask_cluster(params.compute))
    with recorder.stage("load"):
        loaded = table if table is not None else (read_dask_task if on_cluster else load_task)(data)
    if isinstance(loaded, Unreadable):
        return _unreadable(recorder, loaded.reason)
    recorder.data = DataSummary(rows=len(loaded), columns=[str(c) for c in loaded.columns])

    # A role column no check can use fails unusable_columns first; the schema leaves it out.
    if engine.is_dask_frame(loaded):
        bad_roles = unusable_roles_dask(loaded, data)
        # The quirks' measures, and uniqueness over several columns, need the table here.
        if bad_roles or needs_whole_table(declared):
            loaded = collect(loaded)
    else:
        bad_roles = unusable_roles(loaded, data)
    if on_cluster:  # what runs where; the leakage steps are added once the table is stored
        recorder.metrics["engine"] = engine.engine_metrics(recorder.flow, loaded)
    counts: pd.Series | None = None
    quirks: list[CheckResult] = []
    if bad_roles and isinstance(loaded, pd.DataFrame):
        with recorder.stage("load"):
            loaded, quirks = check_quirks_task(loaded, data)
        recorder.add(*quirks)
    with recorder.stage("schema"):
        read: Frame  # as read, for the checks when the schema failed (Dask: on disk)
        if engine.is_dask_frame(loaded):
            staged = validate_on_cluster_task(
                loaded, declared, data, params.schema_, bad_roles, params.compute.spill_dir
            )
            validation, read, counts = staged.outcome, staged.frame, staged.label_counts
        else:
            validation = validate_schema_task(loaded, declared, data, params.schema_, bad_roles)
            read = loaded
        frame = read if validation.frame is None else validation.frame
        if not steps_on_cluster(frame):  # the table is stored: the workers' memory goes back
            cluster.close()
        elif on_cluster:  # open for the leakage checks' steps (tasks/part_map.py)
            recorder.metrics["engine"] = engine.engine_metrics(recorder.flow, loaded, True)
        empty = measure_empty_columns(frame, data.feature_columns(frame.columns))
    recorder.add(validation.check, judge_empty_columns(empty, len(frame)))
    frame = frame.drop(columns=empty)
    # An empty column left the table: a declaration of when it is known has nothing to judge.
    known_at = {k: v for k, v in params.leakage.known_at.items() if k not in empty}
    leakage_params = params.leakage.model_copy(update={"known_at": known_at})
    params = params.model_copy(update={"leakage": leakage_params})
    if empty and not data.feature_columns(frame.columns):
        return _no_features(recorder, empty, "schema", "every feature column is empty")
    unusable = unusable_after_schema(frame, data, validation)

    # Non-finite numbers become missing, unusable columns leave the frame (tasks/quirks.py).
    if not bad_roles:
        with recorder.stage("load"):
            frame, quirks = check_quirks_task(frame, data)
        recorder.add(*quirks)
    failing = [c for q in quirks if q.status == "fail" for c in q.columns]
    role_problems = [c for c in failing if c not in data.drop]
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
        frame, profile, checks = profile_label_task(frame, data.label, counts)
    recorder.data = recorder.data.model_copy(update={"class_counts": dict(profile.counts)})
    recorder.data = fingerprint(frame, data, recorder.data)
    recorder.add(*checks)
    if profile.positive is None:
        return _skip_leakage(recorder, f"label {data.label!r} has fewer than two classes")
    # Too few rows of a class halts after the data stage; the leakage checks still run.
    recorder.add(judge_class_rows(profile.counts, data.label))
    # Against the last good run, before any training; a failure halts after the leakage checks.
    with recorder.stage("profile"):
        store = history_path(params.publish.output_dir)
        recorder.add(*check_history_task(store, recorder.flow, recorder.data, params.history))

    measurable = without(data, unusable)
    with recorder.stage("leakage"):
        leakage = detect_leakage_task(frame, measurable, params.leakage, profile.positive)
    described = leakage.describe()
    if unusable:
        described["left_out_after_schema"] = list[JsonValue](unusable)
    recorder.metrics["leakage"] = described
    recorder.add(*explain_leakage(leakage.checks, frame, data, unusable))
    # A person may approve a failure across runs (row_count_drop); the run then goes on.
    if failed := settle(recorder, params.gate, "approve-data"):
        return failed
    frame = frame.drop(columns=leakage.dropped)
    if leakage.dropped and not data.feature_columns(frame.columns):
        return _no_features(
            recorder, leakage.dropped, "leakage", "leakage.on_leakage 'drop' removed every feature"
        )
    return frame, profile


def _guard_memory(params: RetrainParams, recorder: RunRecorder) -> CheckResult | None:
    """Estimate the table's size before reading it; refuse it when it would not fit."""
    with recorder.stage("load"):
        guard = guard_memory_task(params.data, params.compute)
    recorder.metrics["memory"] = guard.to_json()
    refused = guard.refusal(params.data.source)
    if refused is not None:
        recorder.add(refused)
    return refused


def _no_features(recorder: RunRecorder, removed: list[str], stage: Stage, why: str) -> CheckResult:
    """Record that nothing is left to train on, naming the columns that were removed."""
    nothing_left = check(NO_FEATURES).result(
        "fail",
        f"{why} ({', '.join(removed)}): nothing is left to train on",
        columns=removed,
        metrics={"dropped_columns": list(removed)},
        stage=stage,
    )
    recorder.add(nothing_left)
    return recorder.first_failure() or nothing_left


def _label_free_leakage(
    frame: Frame,
    params: RetrainParams,
    recorder: RunRecorder,
    unusable: list[str],
    reason: str,
) -> CheckResult:
    """Without a usable label, run the date checks that need none; skip the rest for `reason`."""
    data = params.data
    with recorder.stage("leakage"):
        outcome = detect_label_free_leakage(frame, without(data, unusable), params.leakage)
    recorder.metrics["leakage"] = outcome.describe()
    recorder.add(*explain_leakage(outcome.checks, frame, data, unusable))
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
    limit_heap_arenas()  # before the stages' threads first allocate (tasks/heap.py)
    recorder = RunRecorder(params, DATA_CHECKS, "validate-data", owns_process=True)
    outcome = checked_data(params, recorder)
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
    limit_heap_arenas()
    recorder = RunRecorder(params, RETRAIN_CHECKS, "retrain", owns_process=True)
    with ExitStack() as cluster:  # open to the scoring when the steps run on it
        outcome = checked_data(params, recorder, cluster=cluster)
        if isinstance(outcome, CheckResult):
            return _finish(recorder, outcome)
        return _retrained(recorder, cluster, *outcome)


def _retrained(
    recorder: RunRecorder,
    cluster: ExitStack,
    params: RetrainParams,
    frame: Frame,
    profile: LabelProfile,
) -> Report | State[Any]:
    """Split, train, evaluate, gate and publish; `cluster` closes after the scoring."""
    data = params.data

    with recorder.stage("split"):
        split, checks = split_task(frame, data, params.split, profile.positive)
        if len(split.train) or len(split.holdout):  # no rows placed: nothing to compare
            checks = [*checks, split_leakage_task(frame, split, data, params.leakage)]
    recorder.metrics["split"] = split.describe()
    if failed := recorder.add(*checks):
        return _finish(recorder, failed)
    sampled = (params.compute.train_sample_rows, params.split.seed)
    parts = split_parts(frame, data, split.train, split.holdout, profile, *sampled)

    with recorder.stage("train"):
        trained = train_task(parts, params)
        if isinstance(trained, CheckResult):
            recorder.add(trained)
            return _finish(recorder, trained)
        checked = check_features_task(trained, parts, params)
    with recorder.stage("evaluate"):
        evaluation = evaluate_task(trained, parts, params)
        comparison = compare_task(trained, parts, params, evaluation.holdout_scores)
    cluster.close()
    recorder.add(evaluation.resampling.check(), *checked.checks)
    recorder.metrics.update(evaluation.to_json(checked))
    if not isinstance(comparison, NotCompared):
        recorder.metrics["comparison"] = comparison.to_json(params.gate)

    leakage_findings = [c for c in recorder.checks if c.stage == "leakage"]
    with recorder.stage("gate"):
        verdicts = gate_task(evaluation.holdout, params.gate, leakage_findings, checked.separation)
        verdicts = [*verdicts, judge_regression(comparison, params.gate)]
    if failed := recorder.add(*verdicts):
        # The diagnosis explains a collapse; a regression's evidence is the comparison.
        if failed.code != REGRESSION:
            recorder.diagnosis = diagnose_task(
                params, evaluation, checked, failed.code, leakage_findings
            )
        # With gate.approval ask, a person may approve a borderline model (tasks/approval.py).
        if failed := settle(recorder, params.gate, "approve-gate"):
            return _finish(recorder, failed)

    with recorder.stage("publish"):
        model = publishable(trained, parts)
        # Published only if `latest` is still the model this run was compared with.
        publication = publish_if_latest_task(
            model,
            recorder.build(None),
            params.publish.output_dir,
            comparison.version,
            trusted_types=params.publish.trusted_types,
        )
    if isinstance(publication, Untrusted):
        untrusted = check("invalid_parameters").result(
            "fail",
            f"{TRUSTED_SETTING}: {publication.summary()}",
            metrics={"setting": TRUSTED_SETTING, "untrusted_types": list(publication.types)},
            stage="publish",
        )
        recorder.add(untrusted)
        return _finish(recorder, untrusted)
    if isinstance(publication, LatestMoved):
        moved = check(LATEST_MOVED).result(
            "fail",
            publication.summary(),
            metrics={"compared_with": publication.expected, "latest": publication.found},
        )
        recorder.add(moved)
        return _finish(recorder, moved)
    recorder.published = publication.report.published
    return _finish(recorder, None)
