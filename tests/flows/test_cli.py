import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrain_guard.flows.cli import main
from tests.conftest import REPO

BASE = ["--label", "is_fraud", "--label-time", "event_time", "--id", "transaction_id"]


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _usage_error(capsys, ["run", "--data", str(tmp_path / "nope.csv"), *BASE])
    assert line.endswith("nope.csv: no such file")


def test_missing_label_column_exits_2(
    capsys: pytest.CaptureFixture[str], example_csv: Path
) -> None:
    line = _usage_error(capsys, ["run", "--data", str(example_csv), "--label", "churned"])
    assert "--label 'churned': no such column" in line


def test_unreadable_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"\x00garbage")
    line = _usage_error(capsys, ["validate", "--data", str(path), *BASE])
    assert "broken.parquet: cannot be read as parquet" in line


def test_out_of_bounds_setting_names_the_field(
    capsys: pytest.CaptureFixture[str], example_csv: Path
) -> None:
    line = _usage_error(capsys, ["run", "--data", str(example_csv), *BASE, "--threshold", "1.5"])
    assert "model.decision_threshold" in line


def test_config_file_and_flags_merge(
    capsys: pytest.CaptureFixture[str], example_csv: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data:\n  path: {example_csv}\n  label: is_fraud\n  label_time: event_time\n"
        "model:\n  class_weight: none\n"
    )
    report = tmp_path / "report.json"
    code = main(
        [
            "run",
            "--config",
            str(config),
            "--class-weight",
            "balanced",
            "--output-dir",
            str(tmp_path),
            "--report",
            str(report),
        ]
    )
    assert code == 0, capsys.readouterr().err
    written = json.loads(report.read_text())
    assert written["status"] == "passed"
    assert written["run"]["parameters"]["model"]["class_weight"] == "balanced"
    out = capsys.readouterr().out
    assert "retrain-guard: PASSED" in out and "model: " in out and f"report: {report}" in out


def test_halt_prints_one_line_and_diagnosis_without_traceback(
    prefect_server: str, example_csv: Path, tmp_path: Path
) -> None:
    report = tmp_path / "halt.json"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "retrain_guard.flows.cli",
            "run",
            "--data",
            str(example_csv),
            *BASE,
            "--class-weight",
            "none",
            "--output-dir",
            str(tmp_path),
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "retrain-guard: HALTED  single_class_prediction: " in done.stdout
    assert "diagnosis (most likely first):" in done.stdout
    assert f"report: {report}" in done.stdout
    written = json.loads(report.read_text())
    assert written["status"] == "failed"
    assert written["failure"]["code"] == "single_class_prediction"
    assert written["diagnosis"][0]["cause"] == "extreme_imbalance"
    assert not (tmp_path / "models").exists()


def test_an_unexpected_error_is_one_line_exit_3_and_a_report(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    example_csv: Path,
    tmp_path: Path,
) -> None:
    import retrain_guard.tasks.training

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(retrain_guard.tasks.training, "fit_model", broken)
    report = tmp_path / "crash.json"
    code = main(["run", "--data", str(example_csv), *BASE, "--output-dir", str(tmp_path),
                 "--report", str(report)])  # fmt: skip
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["retrain-guard: error: internal_error: the run broke off: "
                   "RuntimeError: disk on fire"]  # fmt: skip
    written = json.loads(report.read_text())
    assert written["status"] == "failed"
    assert written["failure"]["code"] == "internal_error"
    assert not (tmp_path / "models").exists()


def test_an_unwritable_report_path_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], example_csv: Path, tmp_path: Path
) -> None:
    line = _usage_error(
        capsys, ["validate", "--data", str(example_csv), *BASE, "--report", str(tmp_path)]
    )
    assert "not a writable file path" in line
