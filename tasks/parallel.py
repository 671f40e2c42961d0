"""Per-column checks on a chosen Prefect task runner: in turn, or spread over a Dask cluster.

The leakage stage measures every date column against the label time independently, so the
columns can be measured on different machines. With `compute.task_runner: dask` each column
is one Prefect task on a DaskTaskRunner (prefect-dask); only the two columns a measurement
needs travel to the worker, and the judgement runs in the flow as before, so the report is
the same as with the default runner.
"""

from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner

from schemas.params import ComputeParams, RetrainParams
from schemas.report import CheckResult
from tasks.leakage import (
    DateLead,
    check_temporal_leakage,
    date_columns,
    detect_leakage_task,
    judge_post_label_dates,
    measure_post_label_dates,
)


def dask_runner(compute: ComputeParams) -> TaskRunner[Any]:
    """Return a DaskTaskRunner: on the given scheduler, or on a local cluster of processes.

    Raises:
        RuntimeError: prefect-dask is not installed.
    """
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # optional dependency: the message says how to get it
        raise RuntimeError(
            "compute.task_runner 'dask' needs prefect-dask: pip install 'retrain-guard[dask]'"
        ) from exc
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
def measure_date_lead_task(pair: pd.DataFrame, label_time: str, column: str) -> DateLead:
    """Measure one date column against the label time."""
    return measure_post_label_dates(pair, label_time, [column])[0]


def measure_date_leads_on(
    runner: TaskRunner[Any], frame: pd.DataFrame, label_time: str, columns: list[str]
) -> list[DateLead]:
    """Measure each date column as its own task on the runner; keep the columns' order."""
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
        return [future.result() for future in futures]


def leakage_checks(
    frame: pd.DataFrame, label_time: str | None, exclude: set[str], params: RetrainParams
) -> list[CheckResult]:
    """Run the leakage checks on the task runner the parameters select.

    The dask path must return what detect_leakage_task returns: a test compares the two.
    """
    if params.compute.task_runner == "default" or label_time is None:
        return detect_leakage_task(frame, label_time, exclude, params.leakage)
    columns = date_columns(frame, exclude | {label_time})
    if not columns:
        return [check_temporal_leakage(frame, label_time, exclude, params.leakage)]
    measured = measure_date_leads_on(dask_runner(params.compute), frame, label_time, columns)
    return [judge_post_label_dates(measured, params.leakage, label_time)]
