"""Real-table quirks in the flow: empty and repeated columns, failing schemas, unusable output."""

import asyncio
import decimal
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

import retrain_guard.tasks.load
from retrain_guard.flows.cli import main
from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.flows.retrain import retrain, validate_data
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from retrain_guard.tasks.history_checks import HISTORY_CHECKS
from tests.conftest import params_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_YAML = REPO / "schemas" / "examples" / "transactions.yaml"
BASE = ["--label", "is_fraud", "--label-time", "event_time", "--id", "transaction_id"]


def _report(state) -> Report:  # type: ignore[no-untyped-def]
    result = state.result(raise_on_failure=False)
    if isinstance(result, RetrainGuardHalt):
        assert state.is_failed()
        return result.report
    assert isinstance(result, Report), result
    return result


def _statuses(report: Report) -> dict[str, str]:
    return {c.code: c.status for c in report.checks}


@pytest.fixture(scope="module")
def leaky_with_empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with a post-label date column and one column empty in every row."""
    frame = make_transactions(rows=3_000, positive_rate=0.05, seed=3, leaky=True)
    frame["violent_recid"] = float("nan")
    return write_table(frame, tmp_path_factory.mktemp("quirks") / "leaky-empty.csv")


def test_an_empty_column_warns_and_the_dates_after_the_label_time_are_still_found(
    leaky_with_empty: Path, tmp_path: Path
) -> None:
    report = _report(validate_data(params_for(leaky_with_empty, tmp_path), return_state=True))
    statuses = _statuses(report)
    assert statuses["schema_invalid"] == "pass"
    assert statuses["empty_columns"] == "warn"
    empty = report.check("empty_columns")
    assert empty is not None and empty.columns == ["violent_recid"]
    assert (
        empty.summary
        == "column 'violent_recid' is empty in all 3,000 rows; left out of the features"
    )
    assert report.failure is not None and report.failure.code == "temporal_leakage"
    assert report.check("temporal_leakage").columns == ["chargeback_at"]  # type: ignore[union-attr]


def test_a_dropped_empty_column_draws_no_complaint(leaky_with_empty: Path, tmp_path: Path) -> None:
    params = params_for(
        leaky_with_empty, tmp_path, data={"drop": ["violent_recid", "chargeback_at"]}
    )
    report = _report(validate_data(params, return_state=True))
    assert report.status == "passed", report.one_line()
    assert _statuses(report)["empty_columns"] == "pass"
    assert all("violent_recid" not in c.columns for c in report.checks)


def test_the_empty_column_is_left_out_of_the_features_of_a_run(
    leaky_with_empty: Path, tmp_path: Path
) -> None:
    params = params_for(leaky_with_empty, tmp_path, data={"drop": ["chargeback_at"]})
    report = _report(retrain(params, return_state=True))
    features = report.metrics["features"]
    assert isinstance(features, list) and features and "violent_recid" not in features


def test_a_failing_schema_no_longer_hides_the_leakage_checks(tmp_path: Path) -> None:
    frame = make_transactions(rows=3_000, positive_rate=0.05, seed=3, leaky=True)
    frame.loc[[5, 6], "amount"] = -1.0
    frame["card_age_days"] = frame["card_age_days"].astype(str) + " days"
    path = write_table(frame, tmp_path / "broken.csv")
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        EXAMPLE_YAML.read_text().replace("extra_columns: fail", "extra_columns: ignore")
    )
    params = params_for(path, tmp_path, schema={"name": str(schema)})
    report = _report(validate_data(params, return_state=True))
    # The first failure is the schema's; every other finding is there too.
    assert report.failure is not None and report.failure.code == "schema_invalid"
    assert set(report.failure.details["columns"]) == {"amount", "card_age_days"}  # type: ignore[arg-type]
    statuses = _statuses(report)
    assert statuses["single_class_target"] == "pass"
    assert statuses["temporal_leakage"] == "fail"
    assert report.check("temporal_leakage").columns == ["chargeback_at"]  # type: ignore[union-attr]
    # A fresh output directory has no history to check against.
    skipped = {"order_leakage", *HISTORY_CHECKS}
    assert all(s != "not_run" for code, s in statuses.items() if code not in skipped), statuses
    # The column that failed its type is left out of the leakage measures, and it says so.
    assert report.metrics["leakage"]["left_out_after_schema"] == ["card_age_days"]
    assert all("card_age_days" not in c.columns for c in report.checks if c.stage == "leakage")


def test_a_label_that_fails_the_schema_skips_the_later_checks_with_the_reason(
    tmp_path: Path,
) -> None:
    frame = make_transactions(rows=500, positive_rate=0.05, seed=3)
    frame.loc[[1, 2], "is_fraud"] = 2
    path = write_table(frame, tmp_path / "three.csv")
    report = _report(validate_data(params_for(path, tmp_path), return_state=True))
    assert report.failure is not None and report.failure.code == "schema_invalid"
    profile = report.check("single_class_target")
    assert profile is not None and profile.status == "not_run"
    assert profile.summary == "not run: label 'is_fraud' failed the schema"
    leakage = report.check("target_leakage")
    assert leakage is not None and leakage.status == "not_run"
    assert "label 'is_fraud' failed the schema" in leakage.summary


def test_a_user_schema_forbidding_nulls_still_fails_in_words(tmp_path: Path) -> None:
    frame = make_transactions(rows=500, positive_rate=0.05, seed=3)
    frame["amount"] = float("nan")
    path = write_table(frame, tmp_path / "no-amount.csv")
    params = params_for(path, tmp_path, schema={"name": str(EXAMPLE_YAML)})
    report = _report(validate_data(params, return_state=True))
    assert report.failure is not None and report.failure.code == "schema_invalid"
    assert report.failure.summary.startswith(
        "column 'amount' has missing values in 500 row(s); the schema forbids them"
    )
    assert "got False" not in json.dumps(report.model_dump(mode="json"))


def _twice_csv(tmp_path: Path) -> Path:
    frame = make_transactions(rows=200, positive_rate=0.05, seed=3)
    path = write_table(frame, tmp_path / "twice.csv")
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header.replace("channel", "amount") + "\n" + rest)
    return path


def _twice_parquet(tmp_path: Path) -> Path:
    frame = make_transactions(rows=200, positive_rate=0.05, seed=3)
    names = ["amount" if c == "channel" else c for c in frame.columns]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = tmp_path / "twice.parquet"
    pq.write_table(table.rename_columns(names), path)
    return path


@pytest.mark.parametrize("make", [_twice_csv, _twice_parquet])
def test_a_repeated_column_name_is_schema_invalid_before_any_row_is_read(
    make: Callable[[Path], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make(tmp_path)

    def no_rows(path: object) -> None:
        raise AssertionError("data rows were read")

    monkeypatch.setattr(retrain_guard.tasks.load, "read_table", no_rows)
    report_path = tmp_path / "report.json"
    code = main(["validate", "--data", str(path), *BASE, "--report", str(report_path),
                 "--output-dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    written = json.loads(report_path.read_text())
    assert written["failure"]["code"] == "schema_invalid"
    assert written["failure"]["details"]["columns"] == ["amount"]
    assert written["failure"]["summary"].startswith(
        "column name 'amount' appears more than once in the header"
    )
    # The remedy speaks of the file's own format.
    is_csv = path.suffix == ".csv"
    assert ("CSV reader" in written["failure"]["summary"]) is is_csv
    assert ("Parquet" in written["failure"]["summary"]) is not is_csv


def test_an_output_dir_that_is_a_file_exits_2_naming_it_before_reading(
    example_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    taken = tmp_path / "taken"
    taken.write_text("not a directory\n")

    def nothing_read(path: object) -> None:
        raise AssertionError("the table was read")

    monkeypatch.setattr(retrain_guard.tasks.load, "read_header", nothing_read)
    monkeypatch.setattr(retrain_guard.tasks.load, "read_table", nothing_read)
    before = sorted(tmp_path.iterdir())
    assert main(["run", "--data", str(example_csv), *BASE, "--output-dir", str(taken)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip() == (
        f"retrain-guard: error: --output-dir (publish.output_dir): {taken} is a file, "
        "not a directory"
    )
    # A --report whose directory is a file is refused the same way.
    report = taken / "report.json"
    assert main(["validate", "--data", str(example_csv), *BASE, "--report", str(report)]) == 2
    assert f"--report {report}: its directory {taken} is a file" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == before and taken.read_text() == "not a directory\n"


def test_the_flow_itself_fails_on_an_unusable_output_dir_before_reading(
    example_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")

    def nothing_read(path: object) -> None:
        raise AssertionError("the table was read")

    monkeypatch.setattr("retrain_guard.flows.retrain.read_header", nothing_read)
    monkeypatch.setattr("retrain_guard.flows.retrain.load_task", nothing_read)
    state = retrain(params_for(example_csv, taken / "nested"), return_state=True)
    report = _report(state)
    assert report.failure is not None and report.failure.code == "output_dir_unusable"
    assert report.failure.summary.startswith(
        f"publish.output_dir: {taken / 'nested'} cannot be created: {taken} is a file"
    )
    assert report.failure.details["setting"] == "publish.output_dir"
    assert state.message.startswith("output_dir_unusable: ")  # type: ignore[union-attr]
    assert report.run["report_path"] is None
    artifacts = asyncio.run(_artifact_keys(state.state_details.flow_run_id))
    assert "retrain-guard-summary" in artifacts and "retrain-guard-report" not in artifacts


async def _artifact_keys(flow_run_id: UUID | None) -> set[str]:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key for a in found if a.key}


def test_infer_schema_refuses_a_repeated_column_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _twice_csv(tmp_path)
    out = tmp_path / "draft.yaml"
    code = main(["infer-schema", "--data", str(path), "--label", "is_fraud", "--out", str(out)])
    assert code == 2
    assert "the header repeats column name(s) 'amount'" in capsys.readouterr().err
    assert not out.exists()


def test_rows_that_cannot_be_read_end_as_input_unreadable_without_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    frame = make_transactions(rows=300, positive_rate=0.05, seed=3)
    path = write_table(frame, tmp_path / "bad-rows.csv")
    # The header reads; a row further down is not UTF-8.
    path.write_bytes(path.read_bytes() + b"tx-bad,\xff\xfe,1,2,3\n")
    code = main(["validate", "--data", str(path), *BASE, "--output-dir", str(tmp_path / "out")])
    captured = capfd.readouterr()
    assert code == 2
    logged = captured.out + captured.err + caplog.text
    # An expected halt: no traceback, and no task run failing on an exception in the log.
    assert "Traceback" not in logged and "exception" not in logged
    assert "input_unreadable" in captured.out
    assert f"retrain-guard: error: {path}: cannot be parsed as csv" in captured.err


def test_an_output_dir_only_the_flow_finds_unusable_is_still_exit_2_with_a_report(
    example_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip

    taken = tmp_path / "taken"
    taken.write_text("")
    # The directory turns into a file between the CLI's check and the run.
    monkeypatch.setattr(retrain_guard.tasks.publish, "output_dir_problem", lambda path: None)
    report = tmp_path / "report.json"
    code = main(["validate", "--data", str(example_csv), *BASE, "--output-dir", str(taken),
                 "--report", str(report)])  # fmt: skip
    assert code == 2
    written = json.loads(report.read_text())
    assert written["failure"]["code"] == "output_dir_unusable"
    assert written["data"]["rows"] is None, "no data was read"
    assert f"report: {report}" in capsys.readouterr().out


def test_an_empty_column_a_user_schema_allows_warns_and_its_declaration_is_not_a_failure(
    tmp_path: Path,
) -> None:
    frame = make_transactions(rows=2_000, positive_rate=0.05, seed=3)
    frame["distance_from_home_km"] = float("nan")  # nullable and known_at 0d in the schema
    path = write_table(frame, tmp_path / "no-distance.parquet")
    params = params_for(path, tmp_path, schema={"name": str(EXAMPLE_YAML)})
    report = _report(validate_data(params, return_state=True))
    assert report.status == "passed", report.one_line()
    empty = report.check("empty_columns")
    assert empty is not None and empty.status == "warn"
    assert empty.columns == ["distance_from_home_km"]


N_ROWS = 1000
ROLES = ["--label", "y", "--label-time", "t", "--id", "id"]


def _roles_frame(seed: int = 12) -> tuple[np.random.Generator, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    times = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(N_ROWS), unit="h")
    labels = (rng.random(N_ROWS) < 0.1).astype(int)
    return rng, pd.DataFrame({"id": np.arange(N_ROWS), "t": times, "y": labels})


def _run(path: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    report_path = tmp_path / "report.json"
    code = main(["run", "--data", str(path), *ROLES, "--report", str(report_path),
                 "--output-dir", str(tmp_path / "out")])  # fmt: skip
    return code, json.loads(report_path.read_text())


def test_a_stray_text_value_in_a_numeric_csv_column_is_reported_not_one_hot(
    tmp_path: Path,
) -> None:
    rng, frame = _roles_frame()
    frame["x1"] = (rng.normal(size=N_ROWS) + frame["y"]).astype(object)
    frame.loc[9, "x1"] = "oops"
    path = tmp_path / "mixednum.csv"
    frame.to_csv(path, index=False)
    code, report = _run(path, tmp_path)
    checks = {c["code"]: c for c in report["checks"]}
    assert code == 0, report["failure"]
    assert checks["non_numeric_values"]["status"] == "warn"
    assert checks["non_numeric_values"]["columns"] == ["x1"]
    assert "row 9 (id 9): 'oops'" in checks["non_numeric_values"]["summary"]
    assert checks["high_cardinality_features"]["status"] == "pass"


def test_parquet_decimals_and_durations_are_numbers_for_the_checks_and_the_model(
    tmp_path: Path,
) -> None:
    rng, frame = _roles_frame()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    decimals = [decimal.Decimal(f"{v:.2f}") for v in rng.normal(100, 10, N_ROWS)]
    table = table.append_column("dec", pa.array(decimals, type=pa.decimal128(10, 2)))
    days = pd.to_timedelta(rng.integers(0, 100, N_ROWS), unit="D")
    table = table.append_column("dur", pa.array(days))
    path = tmp_path / "exotic.parquet"
    pq.write_table(table, path)
    code, report = _run(path, tmp_path)
    checks = {c["code"]: c for c in report["checks"]}
    assert code == 0, report["failure"]
    assert checks["high_cardinality_features"]["status"] == "pass"
    assert (
        "read as numbers: dec (decimal as float64), dur (duration as days)"
        in (checks["non_numeric_values"]["summary"])
    )
    strongest = checks["target_leakage"]["metrics"]["strongest"]
    assert {s["column"]: s["kind"] for s in strongest} == {"dec": "numeric", "dur": "numeric"}


@pytest.mark.parametrize(
    ("column", "values", "named"),
    [
        ("y", lambda y: pa.array([[int(v)] for v in y], type=pa.list_(pa.int64())), "label"),
        ("t", lambda y: pa.array([{"at": i} for i in range(len(y))]), "label time"),
    ],
)
def test_an_unusable_role_column_is_the_failure_and_the_schema_gives_no_other_reason(
    column: str, values: Callable[[np.ndarray], pa.Array], named: str, tmp_path: Path
) -> None:
    rng, frame = _roles_frame()
    frame["x"] = rng.normal(size=N_ROWS)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    replaced = values(frame["y"].to_numpy())
    table = table.set_column(table.schema.get_field_index(column), column, replaced)
    path = tmp_path / "role.parquet"
    pq.write_table(table, path)
    code, report = _run(path, tmp_path)
    assert code == 1
    assert report["failure"]["code"] == "unusable_columns"
    assert report["failure"]["summary"].startswith(f"the {named} column {column!r}")
    checks = {c["code"]: c for c in report["checks"]}
    assert checks["schema_invalid"]["status"] == "pass"


def test_an_unusable_label_leaves_the_unusable_features_out_and_the_dates_still_checked(
    tmp_path: Path,
) -> None:
    rng, frame = _roles_frame()
    frame["x"] = rng.normal(size=N_ROWS)
    # Known only after the label time in every row: temporal leakage needs no label.
    frame["closed_at"] = frame["t"] + pd.Timedelta(days=3)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    labels = pa.array([[int(v)] for v in frame["y"]], type=pa.list_(pa.int64()))
    table = table.set_column(table.schema.get_field_index("y"), "y", labels)
    tags = pa.array([[int(i % 3)] for i in range(N_ROWS)], type=pa.list_(pa.int64()))
    table = table.append_column("tags", tags)
    path = tmp_path / "list-label.parquet"
    pq.write_table(table, path)
    code, report = _run(path, tmp_path)
    checks = {c["code"]: c for c in report["checks"]}
    assert code == 1
    assert report["failure"]["code"] == "unusable_columns"
    assert set(checks["unusable_columns"]["columns"]) == {"y"}
    assert checks["temporal_leakage"]["status"] == "fail"
    assert checks["temporal_leakage"]["columns"] == ["closed_at"]
