"""The reported near-collapse (issue 9): a lending-like table, an unweighted model."""

from pathlib import Path

import pytest

from retrain_guard.flows.example_data import write_table
from retrain_guard.flows.retrain import retrain
from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from retrain_guard.tasks.publish import latest_version
from tests.near_collapse_cases import LABEL, LABEL_TIME, make_loans


@pytest.fixture(scope="module")
def loans_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(make_loans(seed=0), tmp_path_factory.mktemp("loans") / "loans.csv")


def loan_params(path: Path, output_dir: Path, class_weight: str) -> RetrainParams:
    return RetrainParams.model_validate(
        {
            "data": {"path": str(path), "label": LABEL, "label_time": LABEL_TIME},
            "model": {"class_weight": class_weight},
            "publish": {"output_dir": str(output_dir)},
        }
    )


def run(params: RetrainParams) -> tuple[Report, bool]:
    """Return the report and whether the flow run ended Failed."""
    state = retrain(params, return_state=True)
    result = state.result(raise_on_failure=False)
    report = result.report if isinstance(result, RetrainGuardHalt) else result
    assert isinstance(report, Report), result
    return report, state.is_failed()


def test_an_unweighted_model_on_rare_bad_loans_halts_as_near_collapse(
    loans_csv: Path, tmp_path: Path
) -> None:
    report, failed = run(loan_params(loans_csv, tmp_path, "none"))
    assert failed and report.status == "failed"
    assert report.failure is not None
    assert report.failure.code == "near_single_class_prediction"
    details = report.failure.details
    assert details["predicted"] == 1 and details["true"] == 43
    # Both classes were predicted, so the old all-or-nothing check passed.
    single = report.check("single_class_prediction")
    assert single is not None and single.status == "pass"
    assert report.diagnosis[0].cause in ("extreme_imbalance", "decision_threshold")
    assert {"extreme_imbalance", "decision_threshold"} <= {c.cause for c in report.diagnosis}
    assert report.published is None and latest_version(tmp_path) is None
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_the_same_loans_with_balanced_weights_pass_and_publish(
    loans_csv: Path, tmp_path: Path
) -> None:
    report, failed = run(loan_params(loans_csv, tmp_path, "balanced"))
    assert not failed and report.status == "passed", report.one_line()
    near = report.check("near_single_class_prediction")
    assert near is not None and near.status == "pass"
    assert report.published is not None
