import asyncio
from pathlib import Path
from uuid import UUID

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.flows.retrain import retrain, validate_data
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from retrain_guard.tasks.artifacts import CHECKS_KEY, SUMMARY_KEY
from retrain_guard.tasks.publish import latest_version, load_model
from tests.conftest import params_for


def _halted(state) -> Report:  # type: ignore[no-untyped-def]
    assert state.is_failed(), state
    result = state.result(raise_on_failure=False)
    assert isinstance(result, RetrainGuardHalt)
    return result.report


async def _artifacts(flow_run_id: UUID) -> dict[str, object]:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found if a.key}


def test_example_passes_and_publishes_a_loadable_model(example_csv: Path, tmp_path: Path) -> None:
    report = retrain(params_for(example_csv, tmp_path))
    assert isinstance(report, Report)
    assert report.status == "passed" and report.failure is None
    assert report.published is not None
    assert latest_version(tmp_path) == report.published.version
    model = load_model(Path(report.published.model_path).parent)
    sample = pd.read_csv(example_csv, parse_dates=["event_time", "account_opened_at"]).head(5)
    assert len(model.predict(sample)) == 5
    counts = report.metrics["predicted_class_counts"]
    assert isinstance(counts, dict) and all(n > 0 for n in counts.values())
    assert Path(str(report.run["report_path"])).exists()
    assert not [c for c in report.checks if c.status == "fail"]
    not_run = {c.code for c in report.checks if c.status == "not_run"}
    # minority_recall is off by default; a first run has no history and no last good model.
    assert not_run == {
        "minority_recall",
        "row_count_drop",
        "label_shift",
        "feature_set_changed",
        "worse_than_last_good",
    }
    near = report.check("near_single_class_prediction")
    assert near is not None and near.status == "pass", "the example passes the near-collapse gate"


def test_realistic_collapse_halts_with_imbalance_diagnosed_first(
    collapse_csv: Path, tmp_path: Path
) -> None:
    params = params_for(
        collapse_csv, tmp_path, model={"class_weight": "none"}, resample={"sampler": "none"}
    )
    state = retrain(params, return_state=True)
    report = _halted(state)
    assert str(state.message).startswith("single_class_prediction: ")
    assert report.failure is not None and report.failure.code == "single_class_prediction"
    holdout = report.metrics["holdout"]
    assert isinstance(holdout, dict)
    assert report.metrics["predicted_class_counts"] == {"0": holdout["rows"], "1": 0}
    assert report.diagnosis[0].cause == "extreme_imbalance"
    assert report.diagnosis[0].remedy_params == {"model.class_weight": "balanced"}
    assert latest_version(tmp_path) is None, "a halted run publishes no model"

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    artifacts = asyncio.run(_artifacts(flow_run_id))
    assert str(artifacts[SUMMARY_KEY]).startswith("# Halted: `single_class_prediction`")
    assert "single_class_prediction" in str(artifacts[CHECKS_KEY])


@pytest.mark.parametrize(
    "overrides",
    [{"resample": {"sampler": "smote"}}, {"model": {"class_weight": "balanced"}}],
    ids=["smote", "class-weight-balanced"],
)
def test_the_same_data_with_resampling_or_weights_predicts_both_classes(
    collapse_csv: Path, tmp_path: Path, overrides: dict[str, dict[str, str]]
) -> None:
    base = {"model": {"class_weight": "none"}, "resample": {"sampler": "none"}}
    merged = {k: {**base[k], **overrides.get(k, {})} for k in base}
    report = retrain(params_for(collapse_csv, tmp_path, **merged))
    assert isinstance(report, Report)
    counts = report.metrics["predicted_class_counts"]
    assert isinstance(counts, dict) and all(isinstance(n, int) and n > 0 for n in counts.values())


def test_date_after_label_time_halts_naming_the_column(leaky_parquet: Path, tmp_path: Path) -> None:
    state = validate_data(params_for(leaky_parquet, tmp_path), return_state=True)
    report = _halted(state)
    assert str(state.message).startswith("temporal_leakage: ")
    check = report.check("temporal_leakage")
    assert check is not None and check.columns == ["chargeback_at"], "earlier dates not flagged"
    assert "100.0%" in check.summary
    findings = check.metrics["findings"]
    assert isinstance(findings, list) and len(findings) == 1


def test_one_class_data_halts_before_training(tmp_path: Path) -> None:
    frame = make_transactions(rows=500).assign(is_fraud=0)
    path = write_table(frame, tmp_path / "one.csv")
    report = _halted(retrain(params_for(path, tmp_path), return_state=True))
    assert report.failure is not None and report.failure.code == "single_class_target"
    not_run = {c.code for c in report.checks if c.status == "not_run"}
    assert {"temporal_leakage", "insufficient_minority", "single_class_prediction"} <= not_run


def test_a_direct_call_raises_the_halt(tmp_path: Path) -> None:
    frame = make_transactions(rows=500).assign(is_fraud=1)
    path = write_table(frame, tmp_path / "one.csv")
    with pytest.raises(RetrainGuardHalt) as caught:
        retrain(params_for(path, tmp_path))
    assert caught.value.code == "single_class_target"


@pytest.mark.parametrize("sampler", ["random_over", "random_under", "smote"])
def test_resampling_changes_the_training_part_and_never_the_holdout(
    example_frame: pd.DataFrame, example_csv: Path, tmp_path: Path, sampler: str
) -> None:
    report = retrain(params_for(example_csv, tmp_path, resample={"sampler": sampler}))
    assert isinstance(report, Report)
    times = example_frame["event_time"]
    ordered = np.sort(times.to_numpy())
    cut = ordered[int((len(ordered) - 1) * 0.8)]
    expected_holdout = example_frame.loc[times >= cut, "is_fraud"].value_counts()
    holdout = report.metrics["holdout"]
    assert isinstance(holdout, dict)
    assert holdout["rows"] == int((times >= cut).sum())
    assert holdout["true_class_counts"] == {str(k): int(v) for k, v in expected_holdout.items()}
    resampling = report.metrics["resampling"]
    assert isinstance(resampling, dict)
    assert resampling["before"] != resampling["after"]
    before, after = resampling["before"], resampling["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["0"] == after["1"], "target ratio 1.0 balances the training part"


@pytest.mark.parametrize(
    ("majority", "minority"), [(1, 0), ("legit", "fraud")], ids=["one-is-majority", "strings"]
)
def test_published_model_answers_in_the_tables_own_labels(
    example_frame: pd.DataFrame, tmp_path: Path, majority: object, minority: object
) -> None:
    frame = example_frame.assign(
        is_fraud=np.where(example_frame["is_fraud"] == 1, minority, majority)
    )
    path = write_table(frame, tmp_path / "labels.parquet")
    report = retrain(params_for(path, tmp_path))
    assert isinstance(report, Report) and report.published is not None
    model = load_model(Path(report.published.model_path).parent)
    predicted = model.predict(frame)
    assert set(predicted.tolist()) == {majority, minority}
    assert list(model.classes_) == [majority, minority]
    is_minority = (frame["is_fraud"] == minority).to_numpy()
    # The model ranks: rows of the minority class are predicted as such far more often.
    assert (predicted[is_minority] == minority).mean() > 2 * (
        predicted[~is_minority] == minority
    ).mean()
    assert model.predict_proba(frame).shape == (len(frame), 2)
    resampled = report.check("sampler_adapted")
    assert resampled is not None
    before = resampled.metrics["before"]
    assert isinstance(before, dict) and set(before) == {str(majority), str(minority)}
