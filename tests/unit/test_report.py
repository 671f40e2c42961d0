import json
import pickle
from pathlib import Path

from retrain_guard.schemas.export import report_json_schema
from retrain_guard.schemas.report import CheckResult, Failure, Report, RetrainGuardHalt
from retrain_guard.tasks.artifacts import artifact_key, checks_table, render_markdown
from retrain_guard.tasks.reporting import format_summary

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


def _passing_and_failing() -> Report:
    failed = _failed_report()
    passed = CheckResult(
        code="schema_invalid",
        stage="schema",
        status="pass",
        summary="20000 rows match schema 'transactions'",
    )
    return failed.model_copy(update={"checks": [passed, *failed.checks]})


def test_summary_names_checks_by_what_they_check_and_adds_the_code_when_they_fail() -> None:
    lines = format_summary(_passing_and_failing()).splitlines()
    assert "  [   pass] schema: 20000 rows match schema 'transactions'" in lines
    assert (
        "  [   fail] dates before the label time (temporal_leakage): dates after the label "
        "time: chargeback_at" in lines
    )
    assert "retrain-guard: HALTED  temporal_leakage: " in "\n".join(lines)


def test_artifact_tables_name_checks_and_keep_the_code() -> None:
    rows = checks_table(_passing_and_failing())
    assert [r["check"] for r in rows] == [
        "schema",
        "dates before the label time (temporal_leakage)",
    ]
    markdown = render_markdown(_passing_and_failing())
    assert "| pass | schema | schema | 20000 rows match schema 'transactions' |" in markdown
    assert "(check: dates before the label time, stage: leakage)" in markdown


def test_summary_reads_the_typed_metrics() -> None:
    report = Report(
        status="passed",
        metrics={
            "resampling": {
                "before": {"0": 90, "1": 10},
                "after": {"0": 90, "1": 90},
                "sampler": "smote",
                "class_weight": "none",
                "adaptations": [],
            },
            "holdout": {"roc_auc": 0.9, "predicted_class_counts": {"0": 8, "1": 2}},
        },
        run={"timings_seconds": {"load": 0.5}},
    )
    text = format_summary(report)
    assert "stages: load 0.50s" in text
    assert "before {'0': 90, '1': 10} -> after {'0': 90, '1': 90} (sampler smote" in text
    assert "holdout: roc_auc 0.9, pr_auc None" in text
    assert "predicted classes on the holdout: {'0': 8, '1': 2} (true: None)" in text
