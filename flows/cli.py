"""The `retrain-guard` command line: run, validate, infer-schema, example, history.

Exit codes: 0 passed (warnings allowed); 1 halted by a check, report written;
2 bad invocation or unreadable input, one line on stderr and no traceback (with --report,
  a failed report with the code: invalid_parameters, input_unreadable, ...);
3 the run broke off on an unexpected error (report written with code internal_error).
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from retrain_guard.flows.cli_sources import (
    ENGINE_UNAVAILABLE,
    INPUT_UNREADABLE,
    INTERNAL_ERROR,
    INVALID_PARAMETERS,
    NO_FEATURES_LEFT,
    OUTPUT_DIR_UNUSABLE,
    SCHEMA_INVALID,
    SOURCE_FLAGS,
    TABLE_TOO_LARGE,
    USAGE_STAGES,
    Parser,
    UsageError,
    add_source_options,
    source_flags,
)
from retrain_guard.schemas.params import (
    ModelName,
    PublishParams,
    RetrainParams,
    Sampler,
    describe_validation,
    load_config,
    merge,
)
from retrain_guard.schemas.report import Failure, Report, RetrainGuardHalt
from retrain_guard.tasks.heap import limit_heap_arenas
from retrain_guard.tasks.reporting import format_summary, versions

EXIT_PASSED, EXIT_HALTED, EXIT_USAGE, EXIT_CRASHED = 0, 1, 2, 3
SAMPLERS: tuple[str, ...] = Sampler.__args__  # type: ignore[attr-defined]
MODELS: tuple[str, ...] = ModelName.__args__  # type: ignore[attr-defined]


def _columns_arg(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="retrain-guard",
        description="Validate training data, train, and halt a model that predicts one class.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def role_options(p: argparse.ArgumentParser, table: str, required: bool, id_help: str) -> None:
        add_source_options(p, table)
        p.add_argument("--label", required=required, help="label column (two classes)")
        p.add_argument("--label-time", help="column with the moment a prediction is made")
        p.add_argument("--id", dest="id_column", help=f"row id column ({id_help})")

    def data_options(p: argparse.ArgumentParser) -> None:
        role_options(p, "training", False, "never a feature")
        p.add_argument("--drop", type=_columns_arg, help="columns to leave out: a,b,c")
        p.add_argument(
            "--schema",
            help="named schema in schemas/, or a YAML schema file (.yaml/.yml); "
            "default: the baseline schema",
        )
        p.add_argument("--config", help="YAML file with (part of) the parameters")
        p.add_argument("--report", help="write the JSON report here (in every case)")
        p.add_argument("--output-dir", help="directory for reports and published models")
        p.add_argument(
            "--on-leakage",
            choices=("fail", "drop", "warn"),
            help="a leakage finding halts the run (fail), drops the flagged columns, or warns",
        )
        p.add_argument(
            "--engine",
            choices=("pandas", "dask"),
            help="read and check the table in this process (pandas) or on a Dask cluster "
            "(dask: compute.dask_workers local worker threads, or compute.dask_address)",
        )

    run = sub.add_parser("run", help="validate, train, evaluate, gate and publish")
    data_options(run)
    run.add_argument("--sampler", choices=SAMPLERS, help="resampling of the training part")
    run.add_argument("--model", choices=MODELS, help="estimator")
    run.add_argument(
        "--estimator",
        help="with --model custom: the classifier class as package.module:ClassName "
        "(its arguments: model.params in --config)",
    )
    run.add_argument("--class-weight", choices=("none", "balanced"))
    run.add_argument("--threshold", type=float, help="decision threshold of the positive class")
    run.add_argument("--C", type=float, dest="C", help="logistic_regression regularisation")

    validate = sub.add_parser("validate", help="data checks only: schema, label, leakage")
    data_options(validate)

    infer = sub.add_parser("infer-schema", help="draft a YAML schema from a reference table")
    role_options(infer, "reference", True, "guessed when left out")
    infer.add_argument("--out", required=True, help="YAML file to write")
    infer.add_argument("--name", help="schema name (default: the file's stem)")
    infer.add_argument(
        "--margin", type=float, default=0.1, help="widen numeric ranges by this share of the span"
    )
    infer.add_argument(
        "--max-categories",
        type=int,
        default=20,
        help="text columns with at most this many distinct values get an isin list",
    )

    history = sub.add_parser("history", help="print the last runs of an output directory")
    history.add_argument("--output-dir", default=PublishParams().output_dir)
    history.add_argument("--last", type=int, default=20, help="how many runs (default 20)")

    example = sub.add_parser("example", help="write the bundled example dataset")
    example.add_argument("--out", required=True, help="target .csv or .parquet file")
    example.add_argument("--rows", type=int, default=20_000)
    example.add_argument("--positive-rate", type=float, default=0.008)
    example.add_argument("--signal", type=float, default=1.5)
    example.add_argument("--seed", type=int, default=7)
    example.add_argument("--leaky", action="store_true", help="add a post-label date column")
    return parser


def params_from_args(args: argparse.Namespace) -> RetrainParams:
    """Merge the YAML config and the flags (flags win) into the validated parameter model."""
    base: dict[str, Any] = {}
    if args.config:
        try:
            base = load_config(args.config)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--config {args.config}: {exc}") from exc
    flags: dict[str, Any] = {
        "data": {
            **source_flags(args),
            "label": args.label,
            "label_time": args.label_time,
            "id_column": args.id_column,
            "drop": args.drop,
        },
        "schema": {"name": args.schema},
        "publish": {"output_dir": args.output_dir},
        "leakage": {"on_leakage": args.on_leakage},
        "compute": {"engine": args.engine},
    }
    if args.command == "run":
        flags["resample"] = {"sampler": args.sampler}
        flags["model"] = {
            "name": args.model,
            "estimator": args.estimator,
            "class_weight": args.class_weight,
            "decision_threshold": args.threshold,
            "C": args.C,
        }
    merged = merge(base, _without_none(flags))
    try:
        return RetrainParams.model_validate(merged)
    except ValidationError as exc:
        raise UsageError(_describe_validation(exc)) from exc


def _without_none(tree: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            inner = _without_none(value)
            if inner:
                cleaned[key] = inner
        elif value is not None:
            cleaned[key] = value
    return cleaned


_FLAG_OF = {
    **SOURCE_FLAGS,
    "data.label": "--label",
    "data.label_time": "--label-time",
    "data.id_column": "--id",
    "model.estimator": "--estimator",
    "compute.engine": "--engine",
}


def _describe_validation(exc: ValidationError) -> str:
    return describe_validation(exc, _FLAG_OF)


def preflight(params: RetrainParams) -> RetrainParams:
    """Check what can be checked without reading the rows: file, columns, the schema.

    Returns the parameters with the roles the schema declares filled in. A schema that
    is wrong in itself is a usage error; columns it names but the file lacks are left to
    the flow, which halts with schema_invalid and a report, still before reading rows.
    """
    from retrain_guard.schemas.roles import SchemaDeclarationError
    from retrain_guard.tasks.engine import engine_problem
    from retrain_guard.tasks.load import InputError, read_columns
    from retrain_guard.tasks.publish import output_dir_problem
    from retrain_guard.tasks.validation import apply_roles, declare_schema

    problem = output_dir_problem(params.publish.output_dir)
    if problem is not None:
        raise UsageError(f"--output-dir (publish.output_dir): {problem}", OUTPUT_DIR_UNUSABLE)
    if params.model.name == "custom":
        from retrain_guard.tasks.estimator import EstimatorError, make_custom_estimator

        try:
            make_custom_estimator(params.model)
        except EstimatorError as exc:
            raise UsageError(str(exc)) from exc
    if problem := engine_problem(params.compute):
        raise UsageError(problem, ENGINE_UNAVAILABLE)
    try:
        columns = read_columns(params.data)
    except InputError as exc:
        raise UsageError(str(exc), INPUT_UNREADABLE) from exc
    try:
        declared = declare_schema(params.schema_, params.data, columns)
        data = apply_roles(params.data, declared.roles)
    except SchemaDeclarationError as exc:
        raise UsageError(f"--schema: {exc}", SCHEMA_INVALID) from exc
    given = params.data
    params = params.model_copy(update={"data": data})
    _check_roles((given.label, given.label_time, given.id_column), columns, data.source)
    unknown_drops = [c for c in data.drop if c not in columns]
    if unknown_drops:
        raise UsageError(f"--drop {','.join(unknown_drops)}: no such column in {data.source}")
    if not data.feature_columns(columns):
        raise UsageError(
            f"{data.source}: no feature columns left after label, time, id and drops",
            NO_FEATURES_LEFT,
        )
    return params


def _check_roles(roles: tuple[str | None, ...], columns: list[str], source: str) -> None:
    """Refuse a --label, --label-time or --id that names a column the table lacks."""
    for flag, column in zip(("--label", "--label-time", "--id"), roles, strict=True):
        if column and column not in columns:
            raise UsageError(
                f"{flag} {column!r}: no such column in {source}; columns: {', '.join(columns)}"
            )


# The schema's roles do not depend on the data parameters; the baseline needs none of them.
_PLACEHOLDER_DATA_ARGS = {"path": "-", "label": "-"}


def _label_from_schema(args: argparse.Namespace) -> None:
    """Take the label from the schema's roles when --label is left out."""
    from retrain_guard.schemas.params import DataParams, SchemaParams
    from retrain_guard.schemas.roles import SchemaDeclarationError
    from retrain_guard.tasks.validation import declare_schema

    if args.label is not None or not args.schema:
        return
    try:
        declared = declare_schema(
            SchemaParams(name=args.schema), DataParams(**_PLACEHOLDER_DATA_ARGS), []
        )
    except SchemaDeclarationError as exc:
        raise UsageError(f"--schema: {exc}", SCHEMA_INVALID) from exc
    args.label = declared.roles.label


def _infer_schema(args: argparse.Namespace) -> int:
    from retrain_guard.schemas.params import DataParams
    from retrain_guard.tasks.load import InputError, read_header, read_table
    from retrain_guard.tasks.schema_draft import draft_schema, render_draft

    try:
        source = DataParams.model_validate(
            {**_without_none(source_flags(args)), "label": args.label}
        )
    except ValidationError as exc:
        raise UsageError(_describe_validation(exc)) from exc
    try:
        header = read_header(source)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    columns, repeated = header.columns, header.duplicates
    if repeated:
        raise UsageError(
            f"{source.source}: the header repeats column name(s) {', '.join(map(repr, repeated))}; "
            "give each column its own name before drafting a schema"
        )
    _check_roles((args.label, args.label_time, args.id_column), columns, source.source)
    try:
        frame = read_table(source)
        draft = draft_schema(
            frame,
            label=args.label,
            label_time=args.label_time,
            id_column=args.id_column,
            name=args.name or Path(args.out).stem,
            margin=args.margin,
            max_categories=args.max_categories,
            source=source.source,
        )
    except (InputError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_draft(draft), encoding="utf-8")
    print(
        f"wrote a draft schema of {len(draft.spec.columns)} columns to {out}; "
        f"review the {len(draft.review)} place(s) marked REVIEW"
    )
    return EXIT_PASSED


def _prefect_env() -> None:
    # Offline machines: telemetry would try DNS and log errors on every run.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def run_flow(command: str, params: RetrainParams) -> Report:
    """Run the flow locally and return the report, whether it passed or halted."""
    _prefect_env()
    from retrain_guard.flows.retrain import retrain, validate_data
    from retrain_guard.tasks.approval import where_a_person_answers

    params, note = where_a_person_answers(params)
    if note:
        print(f"note: {note}", file=sys.stderr)
    chosen = retrain if command == "run" else validate_data
    state = chosen(params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, RetrainGuardHalt):
        return result.report
    if isinstance(result, Report):
        return result
    if isinstance(result, BaseException):
        raise result
    raise RuntimeError(f"flow ended {state.type.value} without a report: {state.message}")


def _history(args: argparse.Namespace) -> int:
    from retrain_guard.tasks.history import history_text

    try:
        print(history_text(args.output_dir, args.last))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return EXIT_PASSED


def _example(args: argparse.Namespace) -> int:
    from retrain_guard.flows.example_data import make_transactions, write_table

    try:
        frame = make_transactions(args.rows, args.positive_rate, args.signal, args.seed, args.leaky)
        path = write_table(frame, args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {len(frame)} rows ({int(frame['is_fraud'].sum())} positive) to {path}")
    return EXIT_PASSED


def main(argv: Sequence[str] | None = None) -> int:
    limit_heap_arenas()  # before Prefect's and Dask's threads first allocate (tasks/heap.py)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # argparse's own complaint: an unknown flag, a bad choice or number
        return usage_failure(exc, _report_flag(argv), None, None)
    params: RetrainParams | None = None
    try:
        if args.command == "example":
            return _example(args)
        if args.command == "infer-schema":
            return _infer_schema(args)
        if args.command == "history":
            return _history(args)
        _label_from_schema(args)
        if not args.config and ((args.data is None and args.sql is None) or args.label is None):
            raise UsageError(
                "--data (or --sql) and --label are required (or give them in --config, or "
                "declare roles.label in the --schema)"
            )
        params = params_from_args(args)
        # Where the results go is checked first: nothing is read when they could not be written.
        if args.report:
            check_writable(Path(args.report))
        params = preflight(params)
    except UsageError as exc:
        return usage_failure(exc, getattr(args, "report", None), args.command, params)
    from retrain_guard.tasks.publish import write_report

    try:
        report = run_flow(args.command, params)
    except Exception as exc:
        # A bug or a broken environment, not a verdict on the data: one line here, the
        # traceback stays in Prefect's log above, and the report says the run broke off.
        crashed = crash_report(params, exc)
        if args.report:
            write_report(crashed, args.report)
        print(f"retrain-guard: error: {crashed.one_line()}", file=sys.stderr)
        return EXIT_CRASHED
    written = report.run.get("report_path")
    report_path = Path(args.report) if args.report else Path(str(written)) if written else None
    if args.report:
        write_report(report, args.report)
    print(format_summary(report))
    print(f"report: {report_path or '(not written: the output directory is unusable)'}")
    # Input or output that cannot be used is exit 2, also when only the flow found it.
    # So is a table too large for memory, a custom estimator that fails to fit, or a model
    # publish.trusted_types does not cover.
    unusable = (
        INPUT_UNREADABLE,
        TABLE_TOO_LARGE,
        OUTPUT_DIR_UNUSABLE,
        ENGINE_UNAVAILABLE,
        INVALID_PARAMETERS,
    )
    if report.failure and report.failure.code in unusable:
        print(f"retrain-guard: error: {report.failure.summary}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_PASSED if report.status == "passed" else EXIT_HALTED


def _report_flag(argv: Sequence[str] | None) -> str | None:
    """Return the --report path of arguments argparse refused, if one can be told."""
    lenient = argparse.ArgumentParser(add_help=False)
    lenient.add_argument("--report")
    try:
        known, _ = lenient.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit:  # "--report" without a value
        return None
    report: str | None = known.report
    return report


def usage_failure(
    exc: UsageError, report: str | None, command: str | None, params: RetrainParams | None
) -> int:
    """Print the one line of a usage error; write the failed report when --report can be."""
    print(f"retrain-guard: error: {exc}", file=sys.stderr)
    if report:
        try:
            check_writable(Path(report))
        except UsageError:
            return EXIT_USAGE  # the report itself is what cannot be written
        from retrain_guard.tasks.publish import write_report

        try:
            write_report(usage_report(exc, command, params), report)
        except OSError as error:  # a race on the directory: the one line above still stands
            print(f"retrain-guard: error: --report {report}: {error}", file=sys.stderr)
    return EXIT_USAGE


def usage_report(exc: UsageError, command: str | None, params: RetrainParams | None) -> Report:
    """Return the failed report of a run refused before it started (exit 2)."""
    run: dict[str, Any] = {"command": command, "exit_code": EXIT_USAGE, "versions": versions()}
    if params is not None:
        run["parameters"] = params.to_json_dict()
    failure = Failure(code=exc.code, stage=USAGE_STAGES.get(exc.code, "run"), summary=str(exc))
    return Report(status="failed", failure=failure, run=run)


def check_writable(path: Path) -> None:
    """Fail before the run when the report could not be written where asked."""
    from retrain_guard.tasks.publish import output_dir_problem

    problem = output_dir_problem(path.parent)
    if problem is not None:
        raise UsageError(f"--report {path}: its directory {problem}")
    if path.is_dir():
        raise UsageError(f"--report {path}: not a writable file path")


def crash_report(params: RetrainParams, exc: BaseException) -> Report:
    """Return the failed report of a run that broke off on an unexpected error."""
    message = (str(exc).strip().splitlines() or [""])[0]
    failure = Failure(
        code=INTERNAL_ERROR,
        stage="run",
        summary=f"the run broke off: {type(exc).__name__}: {message}",
        details={"exception": type(exc).__name__},
    )
    run = {"parameters": params.to_json_dict(), "versions": versions()}
    return Report(status="failed", failure=failure, run=run)


if __name__ == "__main__":
    sys.exit(main())
