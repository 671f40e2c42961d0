"""The public API (retrain_guard): check_data and check_model on in-memory tables and a user's
own models, inside and outside a user's flow, and the project's flows as subflows."""

from pathlib import Path

import pandas as pd
import pytest
from prefect import flow
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import retrain_guard
from retrain_guard import Report, RetrainGuardHalt, RetrainParams, check_data, check_model
from retrain_guard.flows.example_data import make_transactions
from retrain_guard.tasks.publish import latest_version, load_model
from tests.conftest import params_for

NUMERIC = ["amount", "card_age_days", "txn_count_24h", "distance_from_home_km"]


def _params(output_dir: Path) -> dict[str, object]:
    return {
        "data": {"label": "is_fraud", "label_time": "event_time", "id_column": "transaction_id"},
        "publish": {"output_dir": str(output_dir)},
    }


def _pipeline(class_weight: str | None) -> Pipeline:
    return make_pipeline(
        SimpleImputer(), StandardScaler(), LogisticRegression(class_weight=class_weight)
    )


def _parts(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    ordered = frame.sort_values("event_time", kind="stable")
    cut = int(len(ordered) * 0.8)
    train, holdout = ordered.iloc[:cut], ordered.iloc[cut:]
    return train[NUMERIC], train["is_fraud"], holdout[NUMERIC], holdout["is_fraud"]


@pytest.fixture(scope="module")
def leaky_frame() -> pd.DataFrame:
    return make_transactions(rows=4_000, positive_rate=0.04, leaky=True)


def test_check_data_passes_on_a_frame_outside_a_flow(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    report = check_data(example_frame, _params(tmp_path))
    assert isinstance(report, Report) and report.status == "passed"
    assert report.run["flow"] == "check-data"
    assert report.data.rows == len(example_frame)
    assert report.check("temporal_leakage") is not None
    assert Path(str(report.run["report_path"])).exists()


def test_check_data_halts_with_the_report(leaky_frame: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(RetrainGuardHalt) as raised:
        check_data(leaky_frame, _params(tmp_path))
    report = raised.value.report
    assert raised.value.code == "temporal_leakage" == report.failure.code  # type: ignore[union-attr]
    failed = report.check("temporal_leakage")
    assert failed is not None and failed.status == "fail" and "chargeback_at" in failed.columns


def test_check_data_returns_the_failed_report_when_asked(
    leaky_frame: pd.DataFrame, tmp_path: Path
) -> None:
    params = RetrainParams.model_validate(
        {**_params(tmp_path), "data": {"path": "extract", "label": "is_fraud"}}
    )
    report = check_data(leaky_frame, params, raise_on_failure=False)
    assert report.status == "failed" and report.failure is not None
    assert report.failure.code in {"missingness_leakage", "target_leakage"}


def test_check_data_and_check_model_inside_a_user_flow(
    example_frame: pd.DataFrame, leaky_frame: pd.DataFrame, tmp_path: Path
) -> None:
    @flow
    def users_flow() -> tuple[Report, Report, str]:
        data_report = check_data(example_frame, _params(tmp_path))
        X_train, y_train, X_holdout, y_holdout = _parts(example_frame)
        model = _pipeline("balanced")
        model.fit(X_train, y_train)
        model_report = check_model(
            model, X_holdout, y_holdout, _params(tmp_path), X_train=X_train, y_train=y_train
        )
        try:
            check_data(leaky_frame, _params(tmp_path / "leaky"))
        except RetrainGuardHalt as halt:
            return data_report, model_report, halt.code
        raise AssertionError("the leaky table passed")

    data_report, model_report, code = users_flow()
    assert data_report.status == "passed" and model_report.status == "passed"
    assert code == "temporal_leakage"
    assert model_report.run["flow"] == "check-model"


def test_check_model_passes_a_user_pipeline_and_publishes_it(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    X_train, y_train, X_holdout, y_holdout = _parts(example_frame)
    model = _pipeline("balanced")
    model.fit(X_train, y_train)
    params = _params(tmp_path)
    report = check_model(model, X_holdout, y_holdout, params, X_train=X_train, y_train=y_train)
    assert report.status == "passed"
    gate = {c.code: c.status for c in report.checks if c.stage == "gate"}
    assert gate["single_class_prediction"] == "pass"
    assert "worse_than_last_good" not in gate
    threshold = report.metrics["threshold_analysis"]
    assert isinstance(threshold, dict) and threshold["threshold"] is not None
    assert "resampling" not in report.metrics

    published = retrain_guard.publish_model(model, report, params)
    assert published.published is not None
    assert latest_version(tmp_path) == published.published.version
    loaded = load_model(Path(published.published.model_path).parent)
    assert len(loaded.predict(X_holdout.head(3))) == 3


def test_check_model_halts_a_model_that_predicts_one_class(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    X_train, y_train, X_holdout, y_holdout = _parts(example_frame)
    model = _pipeline(None).fit(X_train, y_train)  # unweighted: scores below 0.5
    params = {**_params(tmp_path), "model": {"class_weight": "none"}}
    with pytest.raises(RetrainGuardHalt) as raised:
        check_model(model, X_holdout, y_holdout, params, X_train=X_train, y_train=y_train)
    report = raised.value.report
    assert report.failure is not None and report.failure.code == "single_class_prediction"
    assert report.diagnosis and report.diagnosis[0].cause == "extreme_imbalance"
    with pytest.raises(ValueError, match="nothing is published"):
        retrain_guard.publish_model(model, report, params)
    assert latest_version(tmp_path) is None


def test_check_model_without_the_training_part(example_frame: pd.DataFrame, tmp_path: Path) -> None:
    _, _, X_holdout, y_holdout = _parts(example_frame)
    model = DummyClassifier(strategy="prior").fit(X_holdout, y_holdout)
    report = check_model(model, X_holdout, y_holdout, _params(tmp_path), raise_on_failure=False)
    assert report.failure is not None and report.failure.code == "single_class_prediction"
    assert report.metrics["training_part"] == {"given": False, "stand_in": "holdout"}
    threshold = report.metrics["threshold_analysis"]
    assert isinstance(threshold, dict) and "no training part" in str(threshold["reason"])
    assert report.diagnosis


def test_check_model_reads_the_positive_class_from_the_models_classes(tmp_path: Path) -> None:
    # Text labels, the minority "fraud" first in classes_ order: its column is the first.
    y = pd.Series(["ok"] * 90 + ["fraud"] * 10, name="outcome")
    X = pd.DataFrame({"x": [0.0] * 90 + [1.0] * 10})
    model = LogisticRegression(class_weight="balanced").fit(X, y)
    assert list(model.classes_) == ["fraud", "ok"]
    params = {"publish": {"output_dir": str(tmp_path)}}
    # x alone separates the classes: the gate calls it too perfect, the counts still show.
    report = check_model(model, X, y, params, raise_on_failure=False)
    assert report.failure is not None and report.failure.code == "suspiciously_perfect"
    assert report.metrics["predicted_class_counts"] == {"ok": 90, "fraud": 10}


def test_the_flows_run_as_subflows(example_csv: Path, tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.csv"
    make_transactions(rows=4_000, positive_rate=0.04, leaky=True).to_csv(leaky, index=False)

    @flow
    def users_flow() -> tuple[object, str]:
        passed = retrain_guard.retrain(params_for(example_csv, tmp_path / "retrain"))
        try:
            retrain_guard.validate_data(params_for(leaky, tmp_path / "validate"))
        except RetrainGuardHalt as halt:
            return passed, halt.code
        raise AssertionError("the leaky table passed")

    passed, code = users_flow()
    assert isinstance(passed, Report) and passed.published is not None
    assert code == "temporal_leakage"
