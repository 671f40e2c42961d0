"""Malformed tables through the command line: exit 0, 1 or 2 with a reason, never a crash."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain_guard.flows.cli import main
from retrain_guard.flows.retrain import validate_data
from retrain_guard.schemas.report import RetrainGuardHalt
from retrain_guard.tasks.engine import ENGINE_UNAVAILABLE
from tests.conftest import params_for

ROWS = 200


def _base() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=ROWS),
            "z": rng.normal(size=ROWS),
            "y": rng.integers(0, 2, ROWS),
        }
    )


_DAYS = pd.date_range("2024-01-01", periods=ROWS, freq="D")
# Every day and month 12 or less: no value settles the order.
_OPEN = sorted(pd.to_datetime([f"2024-{i % 12 + 1:02d}-{i % 12 + 1:02d}" for i in range(ROWS)]))


def _labels_partly_missing() -> pd.DataFrame:
    frame = _base().assign(t=_DAYS.strftime("%Y-%m-%d"))
    frame["y"] = frame["y"].astype("float64")
    frame.loc[::9, "y"] = np.nan
    return frame


TABLES: dict[str, Callable[[], pd.DataFrame]] = {
    "label_time_all_null": lambda: _base().assign(t=pd.Series([None] * ROWS, dtype=object)),
    "label_time_unsettled": lambda: _base().assign(t=[d.strftime("%d/%m/%Y") for d in _OPEN]),
    "label_time_day_first": lambda: _base().assign(t=_DAYS.strftime("%d/%m/%Y")),
    "labels_partly_missing": _labels_partly_missing,
    "label_time_epoch_seconds": lambda: _base().assign(
        t=_DAYS.astype("datetime64[s]").astype("int64")
    ),
    "label_time_years": lambda: _base().assign(t=[2000 + i // 20 for i in range(ROWS)]),
    "label_time_small_integers": lambda: _base().assign(t=range(ROWS)),
    "header_only": lambda: _base().head(0),
    "one_row": lambda: _base().head(1),
}


def _cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, command: str
) -> tuple[int, dict[str, Any], str, str]:
    frame = TABLES[name]()
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    report = tmp_path / f"{name}-{command}.json"
    argv = [command, "--data", str(path), "--label", "y", "--output-dir", str(tmp_path / "out")]
    if "t" in frame.columns:
        argv += ["--label-time", "t"]
    code = main([*argv, "--report", str(report)])
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    verdict = [line for line in out.splitlines() if line.startswith("retrain-guard: ")]
    assert len(verdict) == 1
    # Passed, or halted with the code and a worded one-line reason.
    assert verdict[0] == "retrain-guard: PASSED" or (
        verdict[0].startswith("retrain-guard: HALTED  ") and ": " in verdict[0][23:]
    )
    return code, json.loads(report.read_text()), out, err


def _check(report: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["code"] == code)


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_every_malformed_table_gets_a_verdict_and_a_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, command: str
) -> None:
    code, report, _, _ = _cli(capsys, tmp_path, name, command)
    assert (code == 0) == (report["status"] == "passed")
    if code:
        assert report["failure"]["summary"]


def test_an_empty_label_time_halts_the_run_at_the_split_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, report, _, _ = _cli(capsys, tmp_path, "label_time_all_null", "run")
    assert code == 1
    assert report["failure"]["code"] == "rows_without_label_time"
    assert "label time 't' is missing in all 200 row(s)" in report["failure"]["summary"]


def test_an_unsettled_label_time_halts_naming_it_and_ambiguous_dates_names_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, report, _, _ = _cli(capsys, tmp_path, "label_time_unsettled", "run")
    assert code == 1
    assert report["failure"]["code"] == "schema_invalid"
    assert "label time 't'" in report["failure"]["summary"]
    assert "ISO 8601" in report["failure"]["summary"]
    ambiguous = _check(report, "ambiguous_dates")
    assert ambiguous["status"] == "warn" and ambiguous["columns"] == ["t"]


@pytest.mark.parametrize("name", ["label_time_day_first", "label_time_epoch_seconds"])
def test_a_readable_label_time_is_read_as_the_dates_it_holds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    _, report, _, _ = _cli(capsys, tmp_path, name, "run")
    assert _check(report, "schema_invalid")["status"] == "pass"
    # 200 days from 2024-01-01, holdout 20%: the cut falls in the last 40 days.
    cut = pd.Timestamp(report["metrics"]["split"]["cut"])
    assert _DAYS[ROWS - 45] <= cut <= _DAYS[-1]


def test_rows_without_a_label_are_left_out_and_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, report, _, _ = _cli(capsys, tmp_path, "labels_partly_missing", "validate")
    assert _check(report, "schema_invalid")["status"] == "pass"
    unlabelled = _check(report, "unlabelled_rows")
    assert unlabelled["status"] == "warn" and unlabelled["metrics"]["rows"] == 23


def test_small_integers_as_label_time_halt_in_words(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, report, _, _ = _cli(capsys, tmp_path, "label_time_small_integers", "validate")
    assert code == 1
    assert "label time 't' holds numbers (0 to 199)" in report["failure"]["summary"]


def _no_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    # The dask extra not installed: importing distributed fails as it would.
    monkeypatch.setitem(sys.modules, "distributed", None)


def test_the_dask_engine_without_its_extra_is_refused_by_the_cli_with_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_dask(monkeypatch)
    path = tmp_path / "t.csv"
    _base().to_csv(path, index=False)
    config = tmp_path / "config.yaml"
    config.write_text("compute:\n  engine: dask\n")
    argv = ["validate", "--data", str(path), "--label", "y", "--config", str(config)]
    report = tmp_path / "report.json"
    assert main([*argv, "--output-dir", str(tmp_path / "out"), "--report", str(report)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "compute.engine" in err and "pip install 'retrain-guard[dask]'" in err
    assert "compute.engine to 'pandas'" in err
    failure = json.loads(report.read_text())["failure"]
    assert failure["code"] == ENGINE_UNAVAILABLE and failure["stage"] == "load"


def test_the_dask_engine_without_its_extra_fails_the_flow_before_reading_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_dask(monkeypatch)
    # No file at data.path: the engine is checked before anything is read.
    path = tmp_path / "absent.parquet"
    params = params_for(
        path,
        tmp_path / "out",
        data={"path": str(path), "label": "y", "id_column": None},
        compute={"engine": "dask"},
    )
    state = validate_data(params, return_state=True)
    assert state.is_failed()
    halt = state.result(raise_on_failure=False)
    assert isinstance(halt, RetrainGuardHalt)
    failure = halt.report.failure
    assert failure is not None and failure.code == ENGINE_UNAVAILABLE
    assert failure.stage == "load"
    assert "compute.engine" in failure.summary
    assert "pip install 'retrain-guard[dask]'" in failure.summary
    assert (state.message or "").startswith(ENGINE_UNAVAILABLE)


def test_a_config_setting_the_removed_task_runner_is_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    _base().to_csv(path, index=False)
    config = tmp_path / "config.yaml"
    config.write_text("compute:\n  task_runner: dask\n")
    argv = ["validate", "--data", str(path), "--label", "y", "--config", str(config)]
    report = tmp_path / "report.json"
    assert main([*argv, "--output-dir", str(tmp_path / "out"), "--report", str(report)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "compute.task_runner was removed" in err and "compute.engine: dask" in err
    assert "Extra inputs" not in err
    assert json.loads(report.read_text())["failure"]["code"] == "invalid_parameters"


def test_a_header_only_table_says_it_has_no_labelled_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, report, _, _ = _cli(capsys, tmp_path, "header_only", "validate")
    assert code == 1
    assert report["failure"]["code"] == "single_class_target"
    assert report["failure"]["summary"] == (
        "label 'y' has no labelled row; a classifier needs two classes"
    )


def test_a_two_row_table_halts_for_too_few_rows_not_for_leakage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "two.csv"
    pd.DataFrame(
        {
            "id": [0, 1],
            "t": ["2024-01-01T00:00:00", "2024-01-01T01:00:00"],
            "x1": [0.1, 0.5],
            "x2": [1.0, 2.0],
            "y": [0, 1],
        }
    ).to_csv(path, index=False)
    report_path = tmp_path / "r.json"
    argv = ["run", "--data", str(path), "--label", "y", "--label-time", "t", "--id", "id"]
    code = main([*argv, "--output-dir", str(tmp_path / "o"), "--report", str(report_path)])
    _, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["failure"]["code"] == "too_few_rows"
    assert (
        "1 row(s) of class 0, 1 row(s) of class 1 in 2 labelled rows"
        in (report["failure"]["summary"])
    )
    assert _check(report, "target_leakage")["status"] == "not_run"
    assert _check(report, "order_leakage")["status"] == "not_run"
    assert "function of the label" not in json.dumps(report)


@pytest.mark.parametrize(
    ("case", "code", "named"),
    [
        ("output_dir_is_a_file", "output_dir_unusable", "is a file"),
        ("empty_input", "input_unreadable", "cannot be read"),
        ("missing_column", "invalid_parameters", "--label 'nope'"),
        ("bad_choice", "invalid_parameters", "argument --sampler"),
        ("bad_setting", "invalid_parameters", "model.C"),
    ],
)
def test_a_refused_run_writes_its_failed_report_and_nothing_else(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str, code: str, named: str
) -> None:
    table, empty, a_file = tmp_path / "ok.csv", tmp_path / "empty.csv", tmp_path / "a_file"
    _base().to_csv(table, index=False)
    empty.write_text("")
    a_file.write_text("")
    out_dir = tmp_path / "out"
    argv = {
        "output_dir_is_a_file": ["--data", str(table), "--label", "y", "--output-dir", str(a_file)],
        "empty_input": ["--data", str(empty), "--label", "y", "--output-dir", str(out_dir)],
        "missing_column": ["--data", str(table), "--label", "nope", "--output-dir", str(out_dir)],
        "bad_choice": ["--data", str(table), "--label", "y", "--sampler", "zz"],
        "bad_setting": ["--data", str(table), "--label", "y", "--C", "-1"],
    }[case]
    report_path = tmp_path / "reports" / "r.json"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["run", *argv, "--report", str(report_path)]) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["status"] == "failed" and report["failure"]["code"] == code
    assert named in report["failure"]["summary"]
    # The same one line on stderr, and nothing written but the report.
    assert f"retrain-guard: error: {report['failure']['summary']}" in err.splitlines()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "reports"])
    assert [p.name for p in report_path.parent.iterdir()] == ["r.json"]


def test_a_label_failing_the_schema_still_gets_its_dates_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    frame = _base().assign(t=_DAYS.strftime("%Y-%m-%d"), y=np.arange(ROWS) % 3)
    frame["closed_at"] = (_DAYS + pd.Timedelta(days=3)).strftime("%Y-%m-%d")
    path, report_path = tmp_path / "three.csv", tmp_path / "r.json"
    frame.to_csv(path, index=False)
    argv = ["validate", "--data", str(path), "--label", "y", "--label-time", "t"]
    code = main([*argv, "--output-dir", str(tmp_path / "o"), "--report", str(report_path)])
    _, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["failure"]["code"] == "schema_invalid"
    temporal = _check(report, "temporal_leakage")
    assert temporal["status"] == "fail" and temporal["columns"] == ["closed_at"]
    assert _check(report, "ambiguous_dates")["status"] == "pass"
    assert _check(report, "target_leakage")["status"] == "not_run"
    assert "failed the schema" in _check(report, "target_leakage")["summary"]
