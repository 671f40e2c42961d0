"""The command line on awkward tables: a verdict (exit 0 or 1) with a report, or exit 2.

Whole `validate` runs in this process, on a Prefect test server of this module's own.
Exit 3 (the run broke off) is a crash, whatever the table.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from prefect.testing.utilities import prefect_test_harness

from retrain_guard.flows.cli import main
from retrain_guard.flows.example_data import make_transactions, write_table
from tests.unit.fuzz_tables import FUZZ, Table, tables, write

ROLES = ["--label", "is_fraud", "--label-time", "event_time", "--id", "transaction_id"]


@pytest.fixture(scope="module", autouse=True)
def prefect_server() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=60):
        yield


def _validate(table: Table, path: Path, folder: Path) -> int:
    argv = ["validate", f"--data={path}", f"--label={table.label}"]
    if table.label_time is not None:
        argv.append(f"--label-time={table.label_time}")
    if table.id_column is not None:
        argv.append(f"--id={table.id_column}")
    report = folder / "report.json"
    code = main([*argv, f"--output-dir={folder / 'out'}", f"--report={report}"])
    assert code in (0, 1, 2), f"exit {code}: the run broke off"
    if code in (0, 1):
        written = json.loads(report.read_text())
        assert written["status"] == ("passed" if code == 0 else "failed")
        assert not written["failure"] or written["failure"]["code"] != "internal_error"
    return code


@settings(FUZZ, max_examples=15)
@given(tables(unique_names=False, min_features=1), st.booleans())
def test_validate_gives_a_verdict_or_a_usage_error(table: Table, parquet: bool) -> None:
    with TemporaryDirectory() as name:
        folder = Path(name)
        # A table pyarrow cannot hold (mixed objects) is written as CSV instead.
        path = write(table, folder, parquet) or write(table, folder, False)
        if path is not None:
            event(f"exit {_validate(table, path, folder)}")


# --- the quirks of issue 9 through the whole command line -------------------------------------


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return make_transactions(rows=1500, positive_rate=0.05, seed=5)


def _nested(base: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(base, preserve_index=False)
    n = len(base)
    table = table.append_column(
        "tags", pa.array([[i % 3, i % 5] for i in range(n)], type=pa.list_(pa.int64()))
    )
    table = table.append_column("rec", pa.array([{"a": i % 4, "b": str(i)} for i in range(n)]))
    table = table.append_column("blob", pa.array([bytes([i % 256]) for i in range(n)]))
    pq.write_table(table, path)
    return path


def _mixed_csv(base: pd.DataFrame, path: Path) -> Path:
    mixed = pd.Series([[1, "x", {"k": 2}][i % 3] for i in range(len(base))], dtype=object)
    return write_table(base.assign(mixed=mixed), path)


def _infinite(base: pd.DataFrame, path: Path) -> Path:
    frame = base.copy()
    frame.loc[[3, 10, 50], "amount"] = [np.inf, -np.inf, np.inf]
    frame.loc[[7, 70], "distance_from_home_km"] = [1e308, 1e308]
    return write_table(frame, path)


@pytest.mark.parametrize(
    ("make", "file", "code", "columns"),
    [
        (_nested, "nested.parquet", "unusable_columns", ["tags", "rec", "blob"]),
        (_mixed_csv, "mixed.csv", "unusable_columns", []),
        (_infinite, "infinite.csv", "non_finite_values", ["amount", "distance_from_home_km"]),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_quirky_tables_run_to_a_verdict(
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    base: pd.DataFrame,
    make: object,
    file: str,
    code: str,
    columns: list[str],
    command: str,
) -> None:
    assert callable(make)
    path = make(base, tmp_path / file)
    report = tmp_path / "report.json"
    argv = [command, "--data", str(path), *ROLES, "--output-dir", str(tmp_path / "out")]
    exit_code = main([*argv, "--report", str(report)])
    err = capfd.readouterr().err
    assert exit_code == 0, err
    assert "Traceback" not in err
    checks = {c["code"]: c for c in json.loads(report.read_text())["checks"]}
    assert checks[code]["status"] == ("warn" if columns else "pass")
    assert checks[code]["columns"] == columns
