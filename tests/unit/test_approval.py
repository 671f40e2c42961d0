"""Approval of a borderline run: which failures a person may approve, the form, the verdict."""

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import ValidationError

from retrain_guard.schemas.params import GateParams
from retrain_guard.schemas.report import CheckResult, Report
from retrain_guard.tasks.approval import (
    NO_PERSON,
    Approval,
    Decision,
    approvable_failures,
    decided,
    evidence,
    where_a_person_answers,
)
from retrain_guard.tasks.registry import APPROVABLE, check
from tests.conftest import params_for


def _fail(code: str) -> CheckResult:
    return check(code).result("fail", f"{code} failed")


def _decision(approved: bool, timed_out: bool = False) -> Decision:
    return Decision(
        approved=approved,
        reason="fraud wave confirmed by the team",
        by="ana",
        codes=("row_count_drop",),
        decided_at="2026-01-01T00:00:00+00:00",
        timed_out=timed_out,
    )


def test_the_approvable_checks_are_the_four_the_registry_marks() -> None:
    assert {
        "worse_than_last_good",
        "row_count_drop",
        "label_shift",
        "near_single_class_prediction",
    } == APPROVABLE


def test_only_a_run_failing_on_approvable_checks_alone_may_be_approved() -> None:
    passing = check("temporal_leakage").result("pass", "fine")
    approvable = [passing, _fail("row_count_drop"), _fail("near_single_class_prediction")]
    assert [c.code for c in approvable_failures(approvable)] == [
        "row_count_drop",
        "near_single_class_prediction",
    ]
    # Leakage, schema and one-class halts are never approvable, not even beside one that is.
    for never in ("temporal_leakage", "schema_invalid", "single_class_prediction"):
        assert approvable_failures([_fail("worse_than_last_good"), _fail(never)]) == []
    assert approvable_failures([passing]) == []


def test_the_form_needs_a_reason_and_defaults_to_not_approving() -> None:
    assert Approval(reason="looks right").approve is False
    with pytest.raises(ValidationError):
        Approval(approve=True, reason="")
    with pytest.raises(ValidationError):
        Approval.model_validate({"approve": True})
    schema = Approval.model_json_schema()
    assert {"approve", "reason", "by"} <= set(schema["properties"])
    assert schema["required"] == ["reason"]


def test_an_approval_turns_the_failure_into_a_warning_naming_it() -> None:
    result = decided(_fail("row_count_drop"), _decision(True))
    assert result.status == "warn"
    assert result.summary.startswith("row_count_drop failed; approved by ana at 2026-01-01")
    assert result.summary.endswith("(gate.approval): fraud wave confirmed by the team")
    approval = result.metrics["approval"]
    assert isinstance(approval, dict) and approval["approved"] is True and approval["by"] == "ana"


def test_a_rejection_or_a_timeout_keeps_the_failure() -> None:
    rejected = decided(_fail("row_count_drop"), _decision(False))
    assert rejected.status == "fail" and "; rejected by ana" in rejected.summary
    timed_out = Decision(False, "no answer within gate.approval_timeout 5 s", "", ("x",), "t", True)
    late = decided(_fail("row_count_drop"), timed_out)
    assert late.status == "fail"
    assert late.summary.endswith("not approved: no answer within gate.approval_timeout 5 s")


def test_the_evidence_names_the_checks_and_carries_the_report() -> None:
    failing = [_fail("worse_than_last_good")]
    report = Report(status="failed", checks=failing)
    text = evidence(report, failing, 60)
    assert text.startswith("# Approval needed: `worse_than_last_good`")
    assert "within 60 s (gate.approval_timeout)" in text
    assert "## Checks" in text


def test_gate_approval_defaults_and_bounds() -> None:
    gate = GateParams()
    assert gate.approval == "never" and gate.approval_timeout == 3600
    for bad in ({"approval": "maybe"}, {"approval_timeout": 0}, {"approval_timeout": 10**9}):
        with pytest.raises(ValidationError):
            GateParams.model_validate(bad)


def test_a_local_run_without_a_server_does_not_ask(tmp_path: object) -> None:
    params = params_for("t.csv", "out", gate={"approval": "ask"})
    with temporary_settings(updates={PREFECT_API_URL: None}):
        local, note = where_a_person_answers(params)
    assert local.gate.approval == "never" and note == NO_PERSON
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        served, note = where_a_person_answers(params)
    assert served.gate.approval == "ask" and note is None
