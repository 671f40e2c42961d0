"""table_too_large through the flows and the CLI: refused before a row is read, exit 2."""

import json
from pathlib import Path
from typing import Any

import pytest

from retrain_guard.flows.cli import main
from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.flows.retrain import retrain, validate_data
from retrain_guard.schemas.report import RetrainGuardHalt
from retrain_guard.tasks import load
from tests.conftest import params_for

TINY = {"max_memory_fraction": 1e-6}


@pytest.fixture
def no_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any read of the table's rows fail the test."""

    def refuse(*_: object) -> None:
        raise AssertionError("the table was read")

    monkeypatch.setattr(load, "read_table", refuse)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    return write_table(make_transactions(rows=3000), tmp_path / "t.parquet")


@pytest.mark.parametrize("flow", [retrain, validate_data])
def test_flow_refuses_before_reading(flow: Any, table: Path, tmp_path: Path, no_read: None) -> None:
    state = flow(params_for(table, tmp_path, compute=TINY), return_state=True)
    assert state.is_failed()
    assert str(state.message).startswith("table_too_large: ")
    result = state.result(raise_on_failure=False)
    assert isinstance(result, RetrainGuardHalt)
    report = result.report
    assert report.failure is not None and report.failure.stage == "load"
    memory = report.metrics["memory"]
    assert isinstance(memory, dict) and memory["max_memory_fraction"] == 1e-6
    assert report.data is None or report.data.rows is None


def test_cli_exit_2_with_the_figures(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_read: None
) -> None:
    config = tmp_path / "params.yaml"
    config.write_text("compute: {max_memory_fraction: 0.000001}\n")
    report_path = tmp_path / "report.json"
    argv = ["validate", "--data", str(table), "--label", "is_fraud", "--config", str(config)]
    code = main([*argv, "--output-dir", str(tmp_path / "out"), "--report", str(report_path)])
    assert code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"retrain-guard: error: {table}: the table would take about ")
    for part in (
        "Parquet metadata",
        "compute.max_memory_fraction 1e-06",
        "available",
        "--engine dask",
    ):
        assert part in line
    report = json.loads(report_path.read_text())
    assert report["failure"]["code"] == "table_too_large"
    assert report["run"]["parameters"]["compute"]["max_memory_fraction"] == 1e-6


def test_estimate_reported_on_a_passing_run(table: Path, tmp_path: Path) -> None:
    report = validate_data(params_for(table, tmp_path))
    memory = report.metrics["memory"]  # type: ignore[union-attr]
    estimate = memory["estimate"]
    assert estimate["method"] == "Parquet metadata" and estimate["bytes"] > 0
    assert 0 < memory["available"]["share"] < 0.5
