"""gate.approval ask in the flow, with Prefect's pause answered in place (the real pause on a
real server is tests/e2e/test_approval.py): approval goes on, rejection and timeout halt."""

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.exceptions import FlowPauseTimeout

from retrain_guard.flows.example_data import write_table
from retrain_guard.flows.retrain import retrain
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from retrain_guard.tasks.approval import Approval
from retrain_guard.tasks.publish import latest_version
from tests.conftest import params_for


def _report(state: Any) -> Report:
    result = state.result(raise_on_failure=False)
    if isinstance(result, RetrainGuardHalt):
        return result.report
    assert isinstance(result, Report), result
    return result


def _answer(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any] | None) -> list[str]:
    """Answer every pause with `answer` (None: nobody answers); return what was shown."""
    shown: list[str] = []

    def pause(wait_for_input: type[Approval], timeout: int, key: str) -> Approval:
        shown.append(f"{key}\n{wait_for_input._description}")
        if answer is None:
            raise FlowPauseTimeout("Flow run was paused and never resumed.")
        return wait_for_input(**answer)

    monkeypatch.setattr("retrain_guard.tasks.approval.pause_flow_run", pause)
    return shown


@pytest.fixture
def truncated_after_a_good_run(
    example_frame: pd.DataFrame, example_csv: Path, tmp_path: Path
) -> Path:
    """A first run publishes; the table of the next run has a tenth of its rows."""
    first = _report(retrain(params_for(example_csv, tmp_path), return_state=True))
    assert first.published is not None
    return write_table(example_frame.tail(2_000), tmp_path / "truncated.csv")


def test_an_approved_row_count_drop_trains_and_publishes(
    truncated_after_a_good_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _answer(monkeypatch, {"approve": True, "reason": "a short month", "by": "ana"})
    before = latest_version(tmp_path)
    params = params_for(truncated_after_a_good_run, tmp_path, gate={"approval": "ask"})
    state = retrain(params, return_state=True)
    report = _report(state)
    assert state.is_completed(), state.message
    assert report.published is not None and latest_version(tmp_path) != before
    assert len(shown) == 1 and shown[0].startswith("approve-data\n# Approval needed: `row_count")
    drop = report.check("row_count_drop")
    assert drop is not None and drop.status == "warn"
    assert "approved by ana" in drop.summary and drop.summary.endswith("a short month")
    [approval] = report.model_dump(mode="json")["run"]["approvals"]
    assert approval["approved"] is True and approval["reason"] == "a short month"
    assert approval["codes"] == ["row_count_drop"] and approval["by"] == "ana"


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"approve": False, "reason": "extract is broken"}, "rejected at "),
        (None, "not approved: no answer within gate.approval_timeout 5 s"),
    ],
)
def test_a_rejected_or_unanswered_row_count_drop_halts_with_its_code(
    truncated_after_a_good_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: dict[str, Any] | None,
    words: str,
) -> None:
    _answer(monkeypatch, answer)
    before = latest_version(tmp_path)
    gate = {"approval": "ask", "approval_timeout": 5}
    state = retrain(params_for(truncated_after_a_good_run, tmp_path, gate=gate), return_state=True)
    assert state.is_failed()
    assert str(state.message).startswith("row_count_drop: 2000 rows")
    assert words in str(state.message)
    assert latest_version(tmp_path) == before


def test_never_and_unapprovable_failures_do_not_ask(
    example_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _answer(monkeypatch, {"approve": True, "reason": "no"})
    # A one-class model is never approvable.
    collapsing = params_for(
        example_csv, tmp_path, model={"class_weight": "none"}, gate={"approval": "ask"}
    )
    state = retrain(collapsing, return_state=True)
    assert state.is_failed() and str(state.message).startswith("single_class_prediction: ")
    assert shown == []
