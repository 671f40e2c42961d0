"""Dates through the validate flow: the warning, the time zones and the declaration hint."""

from pathlib import Path

import pandas as pd

from retrain_guard.flows.cli import run_flow
from retrain_guard.flows.example_data import write_table
from tests.conftest import REPO, params_for


def _statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.code: c.status for c in report.checks}


def test_unsettled_day_month_order_is_a_warning_in_the_report(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    frame = example_frame.assign(due_date=["03/01/2024", "04/02/2024"] * (len(example_frame) // 2))
    path = write_table(frame, tmp_path / "ambiguous.csv")
    report = run_flow("validate", params_for(path, tmp_path))
    assert report.status == "passed", report.one_line()
    check = next(c for c in report.checks if c.code == "ambiguous_dates")
    assert check.status == "warn" and check.columns == ["due_date"]
    assert "03/01/2024" in check.summary


def test_iso_times_across_a_daylight_saving_change_validate_as_utc(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    # Local times with their offsets, as an extract spanning a DST change writes them.
    dated = {}
    for column in ("event_time", "account_opened_at"):
        local = example_frame[column].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
        assert local.dt.strftime("%z").nunique() == 2, "the example must span a DST change"
        dated[column] = local.map(lambda t: t.isoformat())
    path = write_table(example_frame.assign(**dated), tmp_path / "dst.csv")
    text = (REPO / "schemas" / "examples" / "transactions.yaml").read_text()
    for column in ("event_time", "account_opened_at"):
        declared = f"  {column}:\n    dtype: datetime\n"
        assert declared in text
        text = text.replace(declared, f"{declared}    time_zone: UTC\n")
    schema = tmp_path / "utc.yaml"
    schema.write_text(text)
    report = run_flow("validate", params_for(path, tmp_path, schema={"name": str(schema)}))
    assert report.status == "passed", report.one_line()
    assert _statuses(report)["schema_invalid"] == "pass"
    assert _statuses(report)["temporal_leakage"] == "pass"


def test_a_future_date_known_in_advance_is_declared_as_the_hint_says(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    frame = example_frame.assign(due_date=example_frame["event_time"] + pd.Timedelta(days=30))
    path = write_table(frame, tmp_path / "due.parquet")
    halted = run_flow("validate", params_for(path, tmp_path))
    assert halted.failure is not None and halted.failure.code == "temporal_leakage"
    assert "leakage.known_at: {due_date: '0d'}" in halted.failure.summary
    declared = params_for(path, tmp_path, leakage={"known_at": {"due_date": "0d"}})
    report = run_flow("validate", declared)
    assert report.status == "passed", report.one_line()
