"""The retrain flow end to end: every sampler, the gate's halts and their diagnosis."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.flows.retrain import retrain
from retrain_guard.schemas.params import RetrainParams, Sampler
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from retrain_guard.tasks.publish import latest_version, load_model
from tests.conftest import params_for

SAMPLERS: tuple[str, ...] = Sampler.__args__  # type: ignore[attr-defined]


def few_positives(tmp_path: Path, training_positions: list[int]) -> Path:
    """600 time-ordered rows: positives at these early positions and three in the holdout."""
    frame = make_transactions(rows=600, positive_rate=0.03, seed=4)
    label = np.zeros(len(frame), dtype="int64")
    label[[*training_positions, 550, 570, 590]] = 1
    frame["is_fraud"] = label
    return write_table(frame, tmp_path / "few.csv")


def run(params: RetrainParams) -> Report:
    state = retrain(params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, RetrainGuardHalt):
        assert state.is_failed() and state.message
        assert state.message.startswith(result.report.failure.code)  # type: ignore[union-attr]
        return result.report
    assert isinstance(result, Report), result
    return result


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_a_run_with_each_sampler_on_the_example_completes(
    example_csv: Path, tmp_path: Path, sampler: str
) -> None:
    report = run(params_for(example_csv, tmp_path, resample={"sampler": sampler}))
    assert report.status == "passed", report.one_line()
    resampling = report.metrics["resampling"]
    assert isinstance(resampling, dict)
    before, after = resampling["before"], resampling["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    split = report.check("insufficient_minority")
    assert split is not None
    # The training part's counts before resampling are exactly those of the split.
    assert before == split.metrics["class_counts"]["train"]
    holdout = report.metrics["holdout"]
    assert isinstance(holdout, dict)
    # The holdout keeps the split's rows and classes whatever the sampler did.
    assert holdout["true_class_counts"] == split.metrics["class_counts"]["holdout"]
    if sampler != "none":
        assert after != before
    for key in ("geometric_mean", "score_distribution"):
        assert key in holdout
    assert report.metrics["baseline"] and report.metrics["threshold_analysis"]
    assert report.published is not None
    assert load_model(Path(report.published.model_path).parent) is not None


def test_unweighted_example_halts_ranks_imbalance_first_and_keeps_the_last_good_model(
    example_csv: Path, tmp_path: Path
) -> None:
    good = run(params_for(example_csv, tmp_path))
    assert good.published is not None
    models_before = sorted(p.name for p in (tmp_path / "models").iterdir())

    report = run(params_for(example_csv, tmp_path, model={"class_weight": "none"}))
    assert report.failure is not None and report.failure.code == "single_class_prediction"
    assert report.diagnosis[0].cause == "extreme_imbalance"
    assert report.diagnosis[0].remedy_params == {"model.class_weight": "balanced"}
    causes = [c.cause for c in report.diagnosis]
    assert "decision_threshold" in causes
    assert latest_version(tmp_path) == good.published.version
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == models_before


def test_a_threshold_above_every_score_ranks_the_threshold_first(
    example_csv: Path, tmp_path: Path
) -> None:
    report = run(params_for(example_csv, tmp_path, model={"decision_threshold": 0.999}))
    assert report.failure is not None and report.failure.code == "single_class_prediction"
    first = report.diagnosis[0]
    assert first.cause == "decision_threshold"
    suggested = first.remedy_params["model.decision_threshold"]
    assert isinstance(suggested, float) and suggested < 0.999


def test_leaky_data_halts_as_suspiciously_perfect_and_names_the_leak(
    leaky_parquet: Path, tmp_path: Path
) -> None:
    # Let the leakage stage only warn, so the leak reaches the model and the gate.
    params = params_for(leaky_parquet, tmp_path, leakage={"on_leakage": "warn"})
    report = run(params)
    assert report.failure is not None and report.failure.code == "suspiciously_perfect"
    assert "chargeback_at" in report.failure.summary
    assert report.diagnosis[0].cause == "leakage"
    assert report.diagnosis[0].remedy_params == {"data.drop": ["chargeback_at"]}
    assert report.published is None and latest_version(tmp_path) is None


def test_overfitting_forest_halts_on_near_collapse_and_ranks_overfitting_first(
    example_csv: Path, tmp_path: Path
) -> None:
    # At the default gate: the forest memorises and predicts fraud for a handful of rows.
    params = params_for(example_csv, tmp_path, model={"name": "random_forest", "n_estimators": 50})
    report = run(params)
    assert report.failure is not None
    assert report.failure.code == "near_single_class_prediction"
    assert report.diagnosis[0].cause == "overfitting"


def test_a_single_training_minority_row_halts_smote_with_the_count(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = few_positives(tmp_path, [10])
    report = run(params_for(path, tmp_path, resample={"sampler": "smote"}))
    # An expected halt inside the train task: the code and summary, never a traceback.
    captured = capfd.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "Traceback" not in logged and "exception" not in logged
    assert "insufficient_minority: resample.sampler 'smote' needs at least 2" in logged
    assert report.failure is not None and report.failure.code == "insufficient_minority"
    assert report.failure.details["columns"] == ["is_fraud"]
    assert report.failure.stage == "resample"
    assert report.failure.details["minority_rows"] == 1
    assert "needs at least 2 minority rows in the training part; it has 1" in (
        report.failure.summary
    )


def test_few_training_minority_rows_adapt_k_neighbors_and_record_it(tmp_path: Path) -> None:
    path = few_positives(tmp_path, [10, 100, 200])
    report = run(params_for(path, tmp_path, resample={"sampler": "smote"}))
    check = report.check("sampler_adapted")
    assert check is not None and check.status == "warn"
    assert "k_neighbors lowered from 5 to 2" in check.summary
    resampling: Any = report.metrics["resampling"]
    majority = resampling["before"]["0"]
    assert resampling["before"]["1"] == 3
    assert resampling["after"] == {"0": majority, "1": majority}
    assert resampling["change"] == {"0": 0, "1": majority - 3}
    assert any("k_neighbors lowered" in note for note in resampling["adaptations"])


@pytest.mark.parametrize("sampler", ["random_under", "random_over", "none"])
def test_a_single_training_minority_row_halts_every_sampler_and_publishes_nothing(
    tmp_path: Path, sampler: str
) -> None:
    path = few_positives(tmp_path, [100])
    report = run(params_for(path, tmp_path, resample={"sampler": sampler}))
    assert report.failure is not None and report.failure.code == "insufficient_minority"
    assert report.failure.details["sampler"] == sampler
    # random_under at target_ratio 1.0 also needs enough rows to keep 10 majority rows.
    need = 10 if sampler == "random_under" else 2
    assert (report.failure.details["minority_rows"], report.failure.details["needed"]) == (1, need)
    assert f"resample.sampler {sampler!r} needs at least {need} minority rows" in (
        report.failure.summary
    )
    assert report.published is None and latest_version(tmp_path) is None


def test_random_under_halts_when_it_would_keep_a_handful_of_majority_rows(
    tmp_path: Path,
) -> None:
    path = few_positives(tmp_path, [100, 200, 300, 400])
    report = run(params_for(path, tmp_path, resample={"sampler": "random_under"}))
    assert report.failure is not None and report.failure.code == "insufficient_minority"
    assert (report.failure.details["minority_rows"], report.failure.details["needed"]) == (4, 10)
    assert "it would keep 4 of" in report.failure.summary
    assert report.published is None
