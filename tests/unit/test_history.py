"""The run history: the store, the record, the fingerprint, the checks across runs, the command."""

import sqlite3
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from retrain_guard.flows.cli import main
from retrain_guard.schemas.params import DataParams, HistoryParams
from retrain_guard.schemas.report import DataSummary, Published, Report
from retrain_guard.tasks import stored_table
from retrain_guard.tasks.history import (
    RunRecord,
    append,
    columns_hash,
    fingerprint,
    format_history,
    history_path,
    read_last,
    read_last_good,
    record_run,
    render_history,
    run_record,
    sparkline,
)
from retrain_guard.tasks.history_checks import (
    HISTORY_CHECKS,
    check_against_history,
    judge_feature_set,
    judge_label_shift,
    judge_row_count,
    measure_against,
)
from retrain_guard.tasks.registry import check
from tests.unit.test_stored_table import _stored

PARAMS = HistoryParams()


def _record(n: int = 0, **changes: object) -> RunRecord:
    record = RunRecord(
        run_id=f"run-{n}",
        flow="retrain",
        deployment=None,
        started_at=f"2026-01-01T00:00:{n:02d}+00:00",
        finished_at=f"2026-01-01T00:01:{n:02d}+00:00",
        status="passed",
        failure_code=None,
        published_version=f"v{n}",
        rows=1000,
        columns_hash="abc",
        class_counts={"0": 900, "1": 100},
        label_time_min="2025-01-01T00:00:00",
        label_time_max="2025-06-30T00:00:00",
        features=("amount", "channel"),
        pr_auc=0.5,
        roc_auc=0.8,
        minority_recall=0.6,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def _summary(rows: int = 1000, counts: dict[str, int] | None = None, **more: object) -> DataSummary:
    return DataSummary.model_validate(
        {
            "rows": rows,
            "class_counts": counts or {"0": 900, "1": 100},
            "features": ["amount", "channel"],
            **more,
        }
    )


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    store = history_path(tmp_path)
    assert read_last(store, 5) == [], "no store: no runs"
    records = [_record(i) for i in range(3)]
    for record in records:
        append(store, record)
    assert read_last(store, 5) == records
    assert read_last(store, 2) == records[1:], "the last runs, oldest first"
    assert read_last(store, 5, flow="validate-data") == []


def test_last_good_is_the_last_published_retrain_or_the_last_passed_validation(
    tmp_path: Path,
) -> None:
    store = history_path(tmp_path)
    good = _record(1)
    append(store, good)
    append(
        store, _record(2, status="failed", failure_code="row_count_drop", published_version=None)
    )
    append(store, _record(3, flow="validate-data", published_version=None))
    append(store, _record(4, flow="validate-data", status="failed", published_version=None))
    assert read_last_good(store, "retrain") == good
    last_validation = read_last_good(store, "validate-data")
    assert last_validation is not None and last_validation.run_id == "run-3"


def _append_many(store: str, start: int) -> None:
    for i in range(start, start + 20):
        append(store, _record(i % 60, run_id=f"run-{i}"))


def test_two_processes_append_at_once_without_losing_a_record(tmp_path: Path) -> None:
    store = str(history_path(tmp_path))
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_append_many, [store, store], [0, 100]))
    ids = {r.run_id for r in read_last(store, 100)}
    assert ids == {f"run-{i}" for i in [*range(20), *range(100, 120)]}


def test_an_unwritable_store_returns_the_reason(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    problem = record_run(blocked / "history.sqlite", _record())
    assert problem is not None and problem.startswith(("FileExistsError", "NotADirectoryError"))
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"\x00" * 4096)
    assert str(record_run(garbage, _record())).startswith("DatabaseError")


def test_fingerprint_hashes_names_and_dtypes_and_takes_the_label_time_range() -> None:
    frame = pd.DataFrame(
        {
            "t": pd.to_datetime(pd.Series(["2025-03-01", "2025-01-01", None])),
            "amount": [1.0, 2.0, 3.0],
            "y": [0, 1, 0],
        }
    )
    data = DataParams(path="-", label="y", label_time="t")
    summary = fingerprint(frame, data, DataSummary(rows=3))
    assert summary.rows == 3
    assert summary.label_time_min == "2025-01-01T00:00:00"
    assert summary.label_time_max == "2025-03-01T00:00:00"
    assert summary.features == ["amount"]
    assert summary.columns_hash == columns_hash(frame)
    assert columns_hash(frame.astype({"amount": "int64"})) != columns_hash(frame), "dtypes count"
    assert columns_hash(frame.rename(columns={"amount": "a"})) != columns_hash(frame)


def test_fingerprint_of_a_stored_table_takes_the_range_a_partition_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The label-time range of a table stored in partitions (zoned times, a partition with
    none) is the whole column's, read a chunk at a time; no time at all gives no range."""
    monkeypatch.setattr(stored_table, "CHUNK_ROWS", 2)
    times = pd.Series(pd.date_range("2025-01-01", periods=8, freq="D", tz="Europe/Berlin"))
    frame = pd.DataFrame(
        {"t": times.iloc[[3, 1, 7, 0, 5, 2, 6, 4]].to_numpy(), "none": pd.NaT, "y": [0, 1] * 4}
    )
    frame.loc[[2, 3], "t"] = pd.NaT  # the second partition has no time
    frame["none"] = frame["none"].astype("M8[ns]")
    table = _stored(frame, 4, tmp_path)
    for column in ("t", "none"):
        data = DataParams(path="-", label="y", label_time=column)
        whole = fingerprint(frame, data, DataSummary(rows=8))
        stored = fingerprint(table, data, DataSummary(rows=8))
        assert (stored.label_time_min, stored.label_time_max) == (
            whole.label_time_min,
            whole.label_time_max,
        )
    assert whole.label_time_min is None
    data = DataParams(path="-", label="y", label_time="t")
    assert (
        fingerprint(table, data, DataSummary(rows=8)).label_time_min == "2025-01-02T00:00:00+01:00"
    )


def test_run_record_takes_verdict_metrics_and_version_from_the_report() -> None:
    report = Report(
        status="passed",
        data=_summary(columns_hash="h"),
        metrics={
            "holdout": {"pr_auc": 0.4, "roc_auc": 0.9, "per_class": {"1": {"recall": 0.7}}},
        },
        checks=[check("single_class_target").result("pass", "", metrics={"positive_class": "1"})],
        run={"flow": "retrain", "started_at": "s", "finished_at": "f"},
        published=Published(version="v9", model_path="m", report_path="r", sha256="x"),
    )
    record = run_record(report, "id-1", "nightly")
    assert (record.flow, record.deployment, record.status) == ("retrain", "nightly", "passed")
    assert (record.pr_auc, record.roc_auc, record.minority_recall) == (0.4, 0.9, 0.7)
    assert record.published_version == "v9" and record.columns_hash == "h"
    assert record.minority_share == pytest.approx(0.1)
    halted = run_record(Report(status="failed", run={"flow": "validate-data"}), "id-2", None)
    assert halted.pr_auc is None and halted.published_version is None and halted.rows is None


def test_row_count_drop_fails_under_the_ratio() -> None:
    last = _record()
    assert judge_row_count(measure_against(_summary(rows=100), last), PARAMS).status == "fail"
    assert judge_row_count(measure_against(_summary(rows=500), last), PARAMS).status == "pass"
    grown = judge_row_count(measure_against(_summary(rows=5000), last), PARAMS)
    assert grown.status == "pass" and grown.metrics["ratio"] == 5.0


def test_label_shift_warns_beyond_the_factor_either_way() -> None:
    last = _record()  # minority share 0.1

    def status(counts: dict[str, int]) -> str:
        return judge_label_shift(measure_against(_summary(counts=counts), last), PARAMS).status

    assert status({"0": 750, "1": 250}) == "warn", "2.5x up"
    assert status({"0": 960, "1": 40}) == "warn", "2.5x down"
    assert status({"0": 850, "1": 150}) == "pass"
    assert status({"0": 800, "1": 200}) == "pass", "exactly the factor does not warn"


def test_feature_set_changed_names_added_and_removed_columns() -> None:
    summary = _summary().model_copy(update={"features": ["amount", "new_one"]})
    result = judge_feature_set(measure_against(summary, _record()))
    assert result.status == "warn"
    assert result.columns == ["new_one", "channel"]
    assert result.metrics["added"] == ["new_one"] and result.metrics["removed"] == ["channel"]
    assert judge_feature_set(measure_against(_summary(), _record())).status == "pass"


def test_checks_are_not_run_without_history_or_with_a_broken_store(tmp_path: Path) -> None:
    store = history_path(tmp_path)
    results = check_against_history(store, "retrain", _summary(), PARAMS)
    assert [r.code for r in results] == list(HISTORY_CHECKS)
    assert all(r.status == "not_run" and "no earlier retrain run" in r.summary for r in results)
    store.write_bytes(b"\x00" * 4096)
    broken = check_against_history(store, "retrain", _summary(), PARAMS)
    assert all(r.status == "not_run" and "cannot be read" in r.summary for r in broken)


def test_checks_judge_against_the_last_good_run(tmp_path: Path) -> None:
    store = history_path(tmp_path)
    append(store, _record(1))
    truncated = check_against_history(store, "retrain", _summary(rows=100), PARAMS)
    assert [r.status for r in truncated] == ["fail", "pass", "pass"]


def test_outputs_show_rows_share_pr_auc_and_verdict() -> None:
    records = [_record(1), _record(2, status="failed", failure_code="label_shift", pr_auc=None)]
    text = format_history(records)
    assert "failed: label_shift" in text and "10.0000%" in text and "0.5000" in text
    markdown = render_history(records)
    assert markdown.startswith("# Last 2 runs")
    assert "| finished (UTC) |" in markdown and "failed: label_shift" in markdown
    assert "- PR-AUC: `▁ ` (0.5000 to 0.5000, oldest first)" in markdown
    assert sparkline([1.0, 2.0, None, 3.0]) == "▁▅ █"
    assert sparkline([None]) == ""


def test_history_command_prints_the_last_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for i in range(3):
        append(history_path(tmp_path), _record(i))
    assert main(["history", "--output-dir", str(tmp_path), "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert "last 2 run(s)" in out and "v2" in out and "v1" in out and "v0" not in out


def test_history_command_without_history_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["history", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("no run history (" + str(tmp_path / "history.sqlite") + " does not exist)")
    assert main(["history", "--output-dir", str(tmp_path), "--last", "0"]) == 2


def test_store_is_plain_sqlite_with_wal(tmp_path: Path) -> None:
    store = history_path(tmp_path)
    append(store, _record())
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT run_id, rows FROM runs").fetchall() == [("run-0", 1000)]
