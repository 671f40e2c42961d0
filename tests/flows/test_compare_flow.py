"""The retrain flow against the last good model: worse_than_last_good and its override."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_guard.flows.example_data import write_table
from retrain_guard.flows.retrain import retrain
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from retrain_guard.tasks.publish import latest_version
from tests.conftest import params_for

REGRESSION = "worse_than_last_good"


def _halted(state) -> Report:  # type: ignore[no-untyped-def]
    assert state.is_failed(), state
    result = state.result(raise_on_failure=False)
    assert isinstance(result, RetrainGuardHalt)
    return result.report


def _shuffled_training_labels(frame: pd.DataFrame, share: float = 0.85) -> pd.DataFrame:
    """Permute the labels of `share` of the earliest 75% of rows by time (the training part
    takes the earliest 80%; the holdout stays untouched)."""
    shuffled = frame.sort_values("event_time").reset_index(drop=True)
    training = np.arange(int(len(shuffled) * 0.75))
    rng = np.random.default_rng(3)
    chosen = rng.choice(training, size=int(len(training) * share), replace=False)
    labels = shuffled["is_fraud"].to_numpy().copy()
    labels[chosen] = rng.permutation(labels[chosen])
    shuffled["is_fraud"] = labels
    return shuffled


@pytest.fixture(scope="module")
def worse_csv(data_dir: Path, example_frame: pd.DataFrame) -> Path:
    return write_table(_shuffled_training_labels(example_frame), data_dir / "worse.csv")


@pytest.fixture()
def published(example_csv: Path, tmp_path: Path) -> str:
    first = retrain(params_for(example_csv, tmp_path))
    assert isinstance(first, Report) and first.published is not None
    regression = first.check(REGRESSION)
    assert regression is not None and regression.status == "not_run"
    assert "first run" in regression.summary
    assert "comparison" not in first.metrics
    return first.published.version


def test_a_clearly_worse_model_halts_and_keeps_latest(
    published: str, worse_csv: Path, tmp_path: Path
) -> None:
    state = retrain(params_for(worse_csv, tmp_path), return_state=True)
    report = _halted(state)
    assert str(state.message).startswith(f"{REGRESSION}: "), state.message
    assert report.failure is not None and report.failure.code == REGRESSION
    comparison = report.metrics["comparison"]
    assert isinstance(comparison, dict) and comparison["last_good_version"] == published
    assert latest_version(tmp_path) == published, "a halted run leaves latest alone"


def test_an_accepted_regression_publishes_with_its_reason(
    published: str, worse_csv: Path, tmp_path: Path
) -> None:
    reason = "the old model was trained before the fraud pattern changed"
    params = params_for(
        worse_csv, tmp_path, gate={"accept_regression": True, "accept_reason": reason}
    )
    report = retrain(params)
    assert isinstance(report, Report) and report.published is not None
    regression = report.check(REGRESSION)
    assert regression is not None and regression.status == "warn"
    assert "gate.accept_regression" in regression.summary and reason in regression.summary
    assert latest_version(tmp_path) == report.published.version != published
    saved = Report.model_validate_json(Path(report.published.report_path).read_text())
    assert saved.metrics["comparison"] == report.metrics["comparison"]
    comparison = saved.metrics["comparison"]
    assert isinstance(comparison, dict)
    assert comparison["accepted_regression"] == {"reason": reason}


def test_the_same_data_again_passes(published: str, example_csv: Path, tmp_path: Path) -> None:
    report = retrain(params_for(example_csv, tmp_path))
    assert isinstance(report, Report)
    regression = report.check(REGRESSION)
    assert regression is not None and regression.status == "pass", regression
    comparison = report.metrics["comparison"]
    assert isinstance(comparison, dict)
    metrics = comparison["metrics"]
    assert isinstance(metrics, dict) and set(metrics) == {"pr_auc", "roc_auc", "minority_recall"}


def test_a_last_good_model_whose_features_are_gone_is_not_run(
    published: str, example_frame: pd.DataFrame, data_dir: Path, tmp_path: Path
) -> None:
    fewer = write_table(example_frame.drop(columns=["amount"]), tmp_path / "fewer.csv")
    report = retrain(params_for(fewer, tmp_path))
    assert isinstance(report, Report)
    regression = report.check(REGRESSION)
    assert regression is not None and regression.status == "not_run"
    assert "missing from the new table: amount" in regression.summary
