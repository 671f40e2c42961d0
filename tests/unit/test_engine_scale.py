"""The engine benchmark's helpers: the chunked table, the guarded run, the figures."""

import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmarks.engine_scale import (
    GIB,
    Measured,
    Result,
    chunk_sizes,
    derived,
    ensure_tables,
    flow_table,
    make_chunk,
    measure,
    pandas_need,
    verdict_of,
)
from benchmarks.validate_scale import make_wide
from retrain_guard.schemas.example import ID, LABEL_TIME
from retrain_guard.schemas.report import Failure, Report


def test_chunk_sizes_cover_the_rows() -> None:
    assert chunk_sizes(2_500, 1_000) == [1_000, 1_000, 500]
    assert chunk_sizes(1_000, 1_000) == [1_000]
    assert chunk_sizes(300, 1_000) == [300]
    with pytest.raises(ValueError):
        chunk_sizes(0, 1_000)


def test_a_table_of_one_chunk_is_make_wides_table() -> None:
    pd.testing.assert_frame_equal(make_chunk(500, 0, 1, 0), make_wide(500))


def test_chunks_continue_ids_and_time_and_keep_dates_before_the_label_time() -> None:
    sizes = chunk_sizes(1_500, 500)
    chunks, first = [], 0
    for index, size in enumerate(sizes):
        chunks.append(make_chunk(size, index, len(sizes), first))
        first += size
    table = pd.concat(chunks, ignore_index=True)
    assert table[ID].is_unique
    assert table[LABEL_TIME].is_monotonic_increasing
    assert table[LABEL_TIME].max() - table[LABEL_TIME].min() < pd.Timedelta(days=365)
    for name in ("account_opened_at", "last_login_at"):
        assert (table[name] < table[LABEL_TIME]).all(), name
    assert (table["account_opened_at"] == table["account_opened_at"].dt.floor("D")).all()
    # Each chunk draws the example's columns with its own seed.
    assert not chunks[0]["amount"].equals(chunks[1]["amount"])


def test_tables_are_written_as_file_and_dataset_and_cached(tmp_path: Path) -> None:
    tables = ensure_tables(tmp_path, 1_200, 500)
    assert pq.ParquetFile(tables.file).metadata.num_row_groups == 3
    assert len(list(tables.dataset.glob("*.parquet"))) == 3
    whole = pd.read_parquet(tables.file)
    pd.testing.assert_frame_equal(whole, pd.read_parquet(tables.dataset))
    assert len(whole) == 1_200 and whole[ID].is_unique
    written = tables.file.stat().st_mtime_ns
    assert ensure_tables(tmp_path, 1_200, 500) == tables
    assert tables.file.stat().st_mtime_ns == written


def test_a_tree_over_the_limit_is_killed(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    killed = measure(argv, 1, 60, tmp_path / "a.log")
    assert killed.stopped is not None and killed.stopped.startswith("killed at")
    assert killed.exit_code is None and killed.wall < 10
    timed_out = measure(argv, 100 * GIB, 0.3, tmp_path / "b.log")
    assert timed_out.stopped is not None and timed_out.stopped.startswith("timed out")
    done = measure([sys.executable, "-c", "raise SystemExit(1)"], 100 * GIB, 60, tmp_path / "c")
    assert (done.exit_code, done.stopped) == (1, None) and done.peak > 0


def test_the_verdict_is_the_failure_code(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    assert verdict_of(report).startswith("no report")
    report.write_text(Report(status="passed").model_dump_json())
    assert verdict_of(report) == "passed"
    failure = Failure(code="schema_invalid", stage="schema", summary="x")
    report.write_text(Report(status="failed", failure=failure).model_dump_json())
    assert verdict_of(report) == "schema_invalid"


def test_tables_and_derived_figures() -> None:
    def result(rows: int, engine: str, wall: float, peak: int) -> Result:
        m = Measured(peak, wall, 0, None)
        return Result(rows, engine, "validate", GIB * rows // 4, GIB // 2, m, "passed")

    results = [
        result(1, "pandas", 10.0, GIB),
        result(1, "dask", 25.0, GIB),
        result(4, "dask", 80.0, GIB),
        Result(4, "pandas", "validate", GIB, 0, None, "not run: would need ~3.0 GiB"),
    ]
    table = flow_table(results, "validate")
    assert len(table) == 4 + 4 and "not run: would need ~3.0 GiB" in table[-1]
    figures = "\n".join(derived(results))
    assert "dask validate: time 4 / 1 rows = 3.20" in figures
    assert "validate at 1 rows: Dask / pandas time = 2.50" in figures
    assert "validate at 4 rows, dask: peak / table = 1.00 (less baseline 0.50" in figures
    assert pandas_need(GIB, "run") == 4 * GIB
