"""The end of every run: the report recorded in the run history, written and published.

Both flows (flows/retrain.py) and the API's subflows (flows/api.py) conclude a run here, and
check here first that the output directory can hold what the run writes.
"""

from pathlib import Path

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.runtime import deployment, flow_run
from pydantic import JsonValue

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import CheckResult, Report
from retrain_guard.tasks.artifacts import publish_artifacts_task
from retrain_guard.tasks.history import history_path, read_last, record_run_task, run_record
from retrain_guard.tasks.publish import output_dir_problem, write_report
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.reporting import RunRecorder

OUTPUT_DIR = "output_dir_unusable"


def _run_name() -> str:
    context = FlowRunContext.get()
    if context and context.flow_run:
        return f"{context.flow_run.name}-{str(context.flow_run.id)[:8]}"
    return "local"


def conclude(recorder: RunRecorder, failed: CheckResult | None) -> Report:
    """Record the run in the history, then write, publish and return the report."""
    report = recorder.build(failed)
    output_dir = Path(recorder.params.publish.output_dir)
    report_path: Path | None = output_dir / "reports" / f"{_run_name()}.json"
    store: Path | None = history_path(output_dir)
    if failed is not None and failed.code == OUTPUT_DIR:
        # Nowhere to write: the report lives in the artifacts only, the run in no history.
        report_path = store = None
    history = _record_history(report, store)
    report = report.model_copy(
        update={
            "run": {
                **report.run,
                "report_path": str(report_path) if report_path else None,
                "history": history,
            }
        }
    )
    if report_path is not None:
        write_report(report, report_path)
    runs = read_last(store, recorder.params.history.last_n) if store and history["recorded"] else []
    publish_artifacts_task(report, str(report_path) if report_path else None, runs)
    logger = get_run_logger()
    if failed is None:
        logger.info("Passed; report %s", report_path)
    else:
        logger.error("Halted: %s; report %s", report.one_line(), report_path)
    return report


def _record_history(report: Report, store: Path | None) -> dict[str, JsonValue]:
    """Append the run to the history; return the report's note of where, or why not.

    A history that cannot be written is a note in report.run.history, not a check: the
    verdict is about the data and the model, and the run's report is never lost for it.
    """
    if store is None:
        return {"path": None, "recorded": False, "error": "the output directory is unusable"}
    run_id = str(flow_run.id) if flow_run.id else _run_name()
    record = run_record(report, run_id, deployment.name)
    error = record_run_task(str(store), record)
    return {"path": str(store), "recorded": error is None, "error": error}


def output_dir_check(params: RetrainParams) -> CheckResult | None:
    """Return the failure of an output directory where nothing could be written."""
    problem = output_dir_problem(params.publish.output_dir)
    if problem is None:
        return None
    return check(OUTPUT_DIR).result(
        "fail",
        f"publish.output_dir: {problem}; reports and models could not be written",
        metrics={"setting": "publish.output_dir", "path": params.publish.output_dir},
    )
