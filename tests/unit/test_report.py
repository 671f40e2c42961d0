import json
import pickle
from pathlib import Path

from schemas.export import report_json_schema
from schemas.report import CheckResult, Failure, Report, RetrainGuardHalt
from tasks.artifacts import artifact_key, checks_table, render_markdown

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "report.schema.json"


def _failed_report() -> Report:
    check = CheckResult(
        code="temporal_leakage",
        stage="leakage",
        status="fail",
        columns=["chargeback_at"],
        summary="dates after the label time: chargeback_at",
        metrics={"threshold": 0.01},
    )
    return Report(
        status="failed",
        failure=Failure(code=check.code, stage=check.stage, summary=check.summary),
        checks=[check],
    )


def test_halt_pickles_and_round_trips_its_report() -> None:
    halt = RetrainGuardHalt(_failed_report())
    again = pickle.loads(pickle.dumps(halt))
    assert isinstance(again, RetrainGuardHalt)
    assert again.report == halt.report
    assert str(again).startswith("temporal_leakage: ")


def test_report_json_round_trips() -> None:
    report = _failed_report()
    assert Report.model_validate_json(report.model_dump_json()) == report


def test_committed_json_schema_matches_the_model() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(report_json_schema()), (
        "run `make report-schema` and commit schemas/report.schema.json"
    )


def test_markdown_puts_the_failure_code_first() -> None:
    markdown = render_markdown(_failed_report(), "out/reports/x.json")
    assert markdown.splitlines()[0] == "# Halted: `temporal_leakage`"
    assert "out/reports/x.json" in markdown
    assert checks_table(_failed_report())[0]["status"] == "fail"


def test_artifact_keys_are_checked() -> None:
    assert artifact_key("retrain-guard-summary") == "retrain-guard-summary"
    for bad in ("Retrain", "a_b", "a b"):
        try:
            artifact_key(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_a_passed_validation_does_not_claim_a_published_model() -> None:
    markdown = render_markdown(Report(status="passed"))
    assert markdown.startswith("# Passed") and "nothing was trained" in markdown
