import json
from pathlib import Path

import pandas as pd
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from retrain_guard.flows.cli import run_flow
from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.tasks.artifacts import LEAKAGE_KEY
from tests.conftest import params_for


def test_validate_halts_on_the_post_label_date(leaky_parquet: Path, tmp_path: Path) -> None:
    report = run_flow("validate", params_for(leaky_parquet, tmp_path))
    assert report.status == "failed" and report.failure is not None
    assert report.failure.code == "temporal_leakage"
    assert report.failure.details["columns"] == ["chargeback_at"]
    codes = {c.code: c.status for c in report.checks}
    assert codes["missingness_leakage"] == "fail" and codes["target_leakage"] == "fail"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[LEAKAGE_KEY])),
            sort=ArtifactSort.CREATED_DESC,
        )
    assert artifacts, "the leakage findings table was not published"
    rows = json.loads(str(artifacts[0].data))
    assert [r["status"] for r in rows] == ["fail", "fail", "fail"]
    assert {r["check"] for r in rows} == {
        "temporal_leakage",
        "missingness_leakage",
        "target_leakage",
    }
    assert all(r["columns"] == "chargeback_at" for r in rows)
    assert {r["name"] for r in rows} == {
        "dates before the label time",
        "missing values by class",
        "single-feature separation",
    }


def test_drop_policy_trains_without_the_flagged_column(leaky_parquet: Path, tmp_path: Path) -> None:
    params = params_for(leaky_parquet, tmp_path, leakage={"on_leakage": "drop"})
    report = run_flow("run", params)
    assert report.status == "passed", report.one_line()
    assert report.metrics["leakage"] == {
        "on_leakage": "drop",
        "dropped_columns": ["chargeback_at"],
    }
    assert "chargeback_at" not in report.metrics["features"]
    statuses = {c.code: c.status for c in report.checks}
    assert statuses["temporal_leakage"] == "warn" and statuses["split_leakage"] == "pass"


def test_dropping_every_feature_halts_with_a_clear_code(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    frame = make_transactions(leaky=True)[
        ["transaction_id", "event_time", "chargeback_at", "is_fraud"]
    ]
    path = write_table(frame, tmp_path / "only-leak.parquet")
    params = params_for(path, tmp_path, leakage={"on_leakage": "drop"})
    report = run_flow("run", params)
    assert report.failure is not None and report.failure.code == "no_features_left"
    assert report.failure.details["columns"] == ["chargeback_at"]
