"""Per-column checks on a chosen Prefect task runner: in turn, or spread over a Dask cluster.

The leakage stage measures every date-like column against the label time independently, so
the columns can be measured on different machines. With `compute.task_runner: dask` each
column is one Prefect task on a DaskTaskRunner (prefect-dask); only the two columns a
measurement needs travel to the worker, and every judgement runs in the flow as before, so
the report is the same as with the default runner.
"""

from functools import partial
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner

from retrain_guard.schemas.params import ComputeParams, DataParams, RetrainParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.leakage.date_leads import DateLead, measure_post_label_dates
from retrain_guard.tasks.leakage.detect import LeakageOutcome, detect_leakage, detect_leakage_task
from retrain_guard.tasks.registry import check

RUNNER_CODE = "task_runner_unavailable"
DASK_MISSING = (
    "compute.task_runner 'dask' needs prefect-dask, which is not installed: "
    "pip install 'retrain-guard[dask]', or set compute.task_runner to 'default'"
)


def _dask_task_runner() -> type[TaskRunner[Any]]:
    """Import DaskTaskRunner (an optional dependency); ImportError when it is absent."""
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner


def task_runner_problem(compute: ComputeParams) -> str | None:
    """Return why the chosen task runner cannot be used here, or None when it can."""
    if compute.task_runner != "dask":
        return None
    try:
        _dask_task_runner()
    except ImportError:
        return DASK_MISSING
    return None


def check_task_runner(compute: ComputeParams) -> CheckResult | None:
    """Fail, naming the setting, when the chosen task runner is not installed."""
    problem = task_runner_problem(compute)
    if problem is None:
        return None
    return check(RUNNER_CODE).result(
        "fail",
        problem,
        metrics={"setting": "compute.task_runner", "value": compute.task_runner},
    )


def dask_runner(compute: ComputeParams) -> TaskRunner[Any]:
    """Return a DaskTaskRunner: on the given scheduler, or on a local cluster of processes.

    Raises:
        RuntimeError: prefect-dask is not installed (check_task_runner says so first).
    """
    try:
        DaskTaskRunner: Any = _dask_task_runner()
    except ImportError as exc:  # optional dependency: the message says how to get it
        raise RuntimeError(DASK_MISSING) from exc
    if compute.dask_address:
        return DaskTaskRunner(address=compute.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": compute.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            # No dashboard: it would need a free port and bokeh, and nobody looks at it here.
            "dashboard_address": None,
        }
    )


@task(name="measure-date-lead", cache_policy=NO_CACHE, persist_result=False)
def measure_date_lead_task(pair: pd.DataFrame, label_time: str, column: str) -> list[DateLead]:
    """Measure one column against the label time (empty when it is not date-like)."""
    return measure_post_label_dates(pair, label_time, [column])


def measure_date_leads_on(
    runner: TaskRunner[Any], frame: pd.DataFrame, label_time: str, columns: list[str]
) -> list[DateLead]:
    """Measure each column as its own task on the runner; keep the columns' order."""
    with runner:
        futures = [
            runner.submit(
                measure_date_lead_task,
                parameters={
                    "pair": frame[[label_time, column]],
                    "label_time": label_time,
                    "column": column,
                },
            )
            for column in columns
        ]
        return [lead for future in futures for lead in future.result()]


def leakage_checks(
    frame: pd.DataFrame, data: DataParams, params: RetrainParams, positive_class: object
) -> LeakageOutcome:
    """Run the leakage checks, the per-column date measurements on the selected runner.

    Only how the date columns are measured changes with the runner, so the outcome is the
    same as detect_leakage_task's: a test compares the two.
    """
    if params.compute.task_runner == "default" or data.label_time is None:
        return detect_leakage_task(frame, data, params.leakage, positive_class)
    runner = dask_runner(params.compute)
    return detect_leakage(
        frame,
        data,
        params.leakage,
        positive_class,
        measure_dates=partial(measure_date_leads_on, runner),
    )
