"""Run history across runs: records of both flows, the checks against the last good run."""

import asyncio
from pathlib import Path

import pandas as pd

from retrain_guard.flows.example_data import write_table
from retrain_guard.flows.retrain import retrain, validate_data
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from retrain_guard.tasks.artifacts import HISTORY_KEY
from retrain_guard.tasks.history import history_path, read_last
from retrain_guard.tasks.history_checks import HISTORY_CHECKS
from retrain_guard.tasks.publish import latest_version
from tests.conftest import params_for
from tests.flows.test_retrain_flow import _artifacts


def _report(state) -> Report:  # type: ignore[no-untyped-def]
    result = state.result(raise_on_failure=False)
    if isinstance(result, RetrainGuardHalt):
        return result.report
    assert isinstance(result, Report), result
    return result


def test_two_runs_append_two_records_and_the_second_is_checked(
    example_csv: Path, tmp_path: Path
) -> None:
    params = params_for(example_csv, tmp_path)
    first = _report(retrain(params, return_state=True))
    assert first.status == "passed" and first.published is not None
    for code in HISTORY_CHECKS:
        result = first.check(code)
        assert result is not None and result.status == "not_run"
        assert "no earlier retrain run" in result.summary
    assert first.run["history"] == {
        "path": str(history_path(tmp_path)),
        "recorded": True,
        "error": None,
    }

    state = retrain(params, return_state=True)
    second = _report(state)
    assert second.status == "passed"
    assert {c.code: c.status for c in second.checks if c.code in HISTORY_CHECKS} == {
        "row_count_drop": "pass",
        "label_shift": "pass",
        "feature_set_changed": "pass",
    }
    records = read_last(history_path(tmp_path), 10)
    assert [r.published_version for r in records] == [
        first.published.version,
        second.published and second.published.version,
    ]
    record = records[0]
    assert record.flow == "retrain" and record.deployment is None and record.status == "passed"
    assert record.rows == 20_000 and record.class_counts == first.data.class_counts
    assert record.pr_auc is not None and record.minority_recall is not None
    assert record.label_time_min and record.columns_hash and "amount" in record.features

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None and records[1].run_id == str(flow_run_id)
    history = str(asyncio.run(_artifacts(flow_run_id))[HISTORY_KEY])
    assert history.startswith("# Last 2 runs") and history.count("| retrain | passed |") == 2


def test_a_truncated_table_after_a_good_run_halts_with_row_count_drop(
    example_frame: pd.DataFrame, example_csv: Path, tmp_path: Path
) -> None:
    good = _report(retrain(params_for(example_csv, tmp_path), return_state=True))
    assert good.published is not None
    truncated = write_table(example_frame.tail(2_000), tmp_path / "truncated.csv")
    state = retrain(params_for(truncated, tmp_path), return_state=True)
    assert state.is_failed()
    assert str(state.message).startswith("row_count_drop: 2000 rows, 0.10x the 20000")
    report = _report(state)
    assert report.failure is not None and report.failure.stage == "profile"
    assert report.metrics.get("holdout") is None, "halted before training"
    assert latest_version(tmp_path) == good.published.version
    records = read_last(history_path(tmp_path), 10)
    assert [(r.status, r.failure_code, r.rows) for r in records] == [
        ("passed", None, 20_000),
        ("failed", "row_count_drop", 2_000),
    ]


def test_validation_runs_are_checked_against_the_last_passed_validation(
    example_frame: pd.DataFrame, example_csv: Path, tmp_path: Path
) -> None:
    # A retraining run's record is no baseline for validate-data: its checks stay not_run.
    _report(retrain(params_for(example_csv, tmp_path), return_state=True))
    first = _report(validate_data(params_for(example_csv, tmp_path), return_state=True))
    assert all(first.check(c).status == "not_run" for c in HISTORY_CHECKS)  # type: ignore[union-attr]
    fewer = example_frame.drop(columns=["channel"])
    # Every positive, 6000 negatives: 0.30x the rows, minority share 2.6% against 0.8%.
    fewer = pd.concat([fewer[fewer["is_fraud"] == 1], fewer[fewer["is_fraud"] == 0].head(6_000)])
    path = write_table(fewer, tmp_path / "changed.csv")
    params = params_for(path, tmp_path, history={"min_row_ratio": 0.25})
    second = _report(validate_data(params, return_state=True))
    assert second.status == "passed", "label_shift and feature_set_changed only warn"
    rows, shift = second.check("row_count_drop"), second.check("label_shift")
    assert rows is not None and rows.status == "pass", "0.31x is above history.min_row_ratio"
    assert shift is not None and shift.status == "warn" and shift.metrics["factor"] > 3
    features = second.check("feature_set_changed")
    assert features is not None and features.status == "warn" and features.columns == ["channel"]
    flows = [r.flow for r in read_last(history_path(tmp_path), 10)]
    assert flows == ["retrain", "validate-data", "validate-data"]


def test_a_history_that_cannot_be_written_leaves_the_report_and_says_why(
    example_csv: Path, tmp_path: Path
) -> None:
    history_path(tmp_path).mkdir()  # a directory where the store should be
    state = validate_data(params_for(example_csv, tmp_path), return_state=True)
    assert state.is_completed(), "the history is bookkeeping: it never changes the verdict"
    report = _report(state)
    assert report.status == "passed"
    history = report.run["history"]
    assert isinstance(history, dict) and history["recorded"] is False
    assert str(history["error"]).startswith("OperationalError")
    assert Path(str(report.run["report_path"])).is_file(), "the report is written all the same"
