"""compute.task_runner 'dask': per-column checks on a local Dask cluster, same report."""

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.flows.retrain import validate_data
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from tests.conftest import params_for


@pytest.fixture(scope="module")
def many_dates(data_dir: Path) -> Path:
    """The example with several date columns: two leak (after the label time), three do not."""
    frame = make_transactions(rows=4000, seed=5)
    label_time = pd.to_datetime(frame["event_time"])
    for days in (1, 3, 10):
        frame[f"known_{days}d_before"] = label_time - pd.Timedelta(days=days)
    frame["settled_at"] = label_time + pd.Timedelta(days=2)
    leaked = label_time.copy()
    leaked.iloc[::50] = leaked.iloc[::50] + pd.Timedelta(days=30)
    frame["reviewed_at"] = leaked
    return write_table(frame, data_dir / "many-dates.parquet")


def _report(path: Path, out: Path, runner: str) -> Report:
    params = params_for(path, out, compute={"task_runner": runner, "dask_workers": 2})
    state = validate_data(params, return_state=True)
    result: Any = state.result(raise_on_failure=False)
    return result.report if isinstance(result, RetrainGuardHalt) else result


def _comparable(report: Report) -> list[dict[str, Any]]:
    return [c.model_dump() for c in report.checks]


@pytest.fixture(scope="module")
def many_dates_reports(many_dates: Path, data_dir: Path) -> dict[str, Report]:
    return {
        runner: _report(many_dates, data_dir / f"many-dates-{runner}", runner)
        for runner in ("default", "dask")
    }


def test_dask_runner_gives_the_default_runners_report_on_leaking_dates(
    many_dates_reports: dict[str, Report],
) -> None:
    default, dask = many_dates_reports["default"], many_dates_reports["dask"]
    assert _comparable(dask) == _comparable(default)
    assert dask.failure == default.failure


def test_dask_runner_gives_the_default_runners_report_on_the_example(
    example_csv: Path, tmp_path: Path
) -> None:
    default = _report(example_csv, tmp_path / "default", "default")
    dask = _report(example_csv, tmp_path / "dask", "dask")
    assert default.status == dask.status == "passed"
    assert _comparable(dask) == _comparable(default)


def test_dask_runner_finds_the_leaking_columns(many_dates_reports: dict[str, Report]) -> None:
    report = many_dates_reports["dask"]
    assert report.failure is not None and report.failure.code == "temporal_leakage"
    check = report.check("temporal_leakage")
    assert check is not None
    assert check.columns == ["settled_at", "reviewed_at"]
    # account_opened_at (a legitimate earlier date of the example) and the five added here.
    assert check.metrics["columns_checked"] == 6
