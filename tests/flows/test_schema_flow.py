"""The flow checks the schema against the file's header before reading any data row."""

import json
from pathlib import Path

import pandas as pd
import pytest

import retrain_guard.tasks.load
from retrain_guard.flows.cli import main, run_flow
from retrain_guard.flows.example_data import write_table
from tests.conftest import params_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_YAML = REPO / "schemas" / "examples" / "transactions.yaml"


def test_schema_naming_an_absent_column_halts_before_rows_are_read(
    example_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = tmp_path / "wants-more.yaml"
    schema.write_text(
        EXAMPLE_YAML.read_text().replace(
            "columns:\n", "columns:\n  merchant_country:\n    dtype: str\n", 1
        )
    )

    def no_rows(path: object) -> None:
        raise AssertionError("data rows were read")

    monkeypatch.setattr(retrain_guard.tasks.load, "read_table", no_rows)
    report = tmp_path / "report.json"
    # No --label: the schema's roles supply label, label time and id.
    code = main(["validate", "--data", str(example_csv), "--schema", str(schema), "--report",
                 str(report), "--output-dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    written = json.loads(report.read_text())
    assert written["failure"]["code"] == "schema_invalid"
    assert written["failure"]["details"]["columns"] == ["merchant_country"]
    assert written["failure"]["details"]["checked"] == "header"
    assert written["failure"]["summary"].startswith("column 'merchant_country' is missing")
    data = written["run"]["parameters"]["data"]
    assert (data["label"], data["label_time"], data["id_column"]) == (
        "is_fraud",
        "event_time",
        "transaction_id",
    )
    assert written["data"]["rows"] is None


def test_declaration_error_is_a_usage_error_before_the_flow(
    example_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = tmp_path / "late.yaml"
    schema.write_text(EXAMPLE_YAML.read_text().replace("    amount: 0d\n", "    amount: +30d\n"))
    code = main(["validate", "--data", str(example_csv), "--schema", str(schema)])
    assert code == 2
    err = capsys.readouterr().err
    assert "roles.known_at.amount: known at label time +30d, after the label time" in err


def test_known_at_declared_in_the_schema_reaches_the_leakage_checks(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    # A due date lies after the label time but is set when the transaction happens.
    frame = example_frame.assign(due_at=example_frame["event_time"] + pd.Timedelta(days=30))
    path = write_table(frame, tmp_path / "due.parquet")
    text = EXAMPLE_YAML.read_text().replace(
        "columns:\n", "columns:\n  due_at:\n    dtype: datetime\n", 1
    )
    undeclared = tmp_path / "undeclared.yaml"
    undeclared.write_text(text)
    declared = tmp_path / "declared.yaml"
    declared.write_text(text.replace("  known_at:\n", "  known_at:\n    due_at: -0d\n", 1))

    def temporal(schema: Path) -> str:
        report = run_flow("validate", params_for(path, tmp_path, schema={"name": str(schema)}))
        check = report.check("temporal_leakage")
        assert check is not None
        return str(check.status)

    assert temporal(undeclared) == "fail"
    assert temporal(declared) == "pass"
