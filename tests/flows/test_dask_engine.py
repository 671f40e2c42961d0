"""compute.engine 'dask': the table read as a Dask DataFrame, the schema and the label profile
on a LocalCluster, the same report as the pandas engine.

One in-process cluster serves the session (tests/flows/conftest.py). Tables are written as
several Parquet files, so every table has several partitions; schema failures are spread over
them. Every case of tests/leakage_cases.py
runs through the retrain flow on the Dask engine and is compared with its golden report, the
pandas engine's: equal but for the parameters' echo of the engine and the engine's note in the
metrics (floats to 6 significant digits, as the golden test compares them).
"""

import gc
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, default_client
from fsspec.implementations.local import LocalFileSystem

from retrain_guard.flows import retrain
from retrain_guard.flows.cli import main, run_flow
from retrain_guard.schemas.params import ComputeParams, DataParams, SchemaParams
from retrain_guard.schemas.report import Report
from retrain_guard.tasks import dask_engine, dask_schema, dask_slices, memory, part_map, training
from retrain_guard.tasks.dask_engine import collect, read_dask, unusable_roles_dask
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.quirks import unusable_roles
from retrain_guard.tasks.stored_table import StoredTable, TableWriter
from retrain_guard.tasks.validation import declare_schema
from tests.conftest import REPO, params_for
from tests.flows.test_golden_reports import GOLDEN, masked
from tests.leakage_cases import ID, LABEL, LEAKS, LOOKALIKES, Case, leak_case

PARTS = 4


def write_parts(frame: pd.DataFrame, directory: Path, parts: int = PARTS) -> Path:
    """Write the frame as a directory of `parts` Parquet files, in row order."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[chunk].to_parquet(directory / f"part-{number:02d}.parquet", index=False)
    return directory


def _dask(address: str, **compute: Any) -> dict[str, Any]:
    return {"engine": "dask", "dask_address": address, **compute}


def _schema_failures(report: Report) -> list[dict[str, Any]]:
    schema = next(c for c in report.checks if c.code == "schema_invalid")
    failures: Any = schema.metrics.get("failures", [])
    return list(failures)


def _without_engine(report: dict[str, Any]) -> dict[str, Any]:
    """Return the masked report without what names the engine: the parameters' echo, the
    metrics' note of what ran on the cluster, and the memory estimate (the Dask tables here are
    written as several Parquet files, whose footers add up to another estimate)."""
    report["run"]["parameters"]["compute"].pop("engine", None)
    report["run"]["parameters"]["compute"].pop("dask_address", None)
    report["metrics"].pop("engine", None)
    report["metrics"].pop("memory", None)
    return report


@pytest.fixture(scope="module")
def example_with_failures(example_frame: pd.DataFrame) -> pd.DataFrame:
    """The example with out-of-range amounts and a bad channel in every partition."""
    frame = example_frame.copy()
    step = len(frame) // 37
    frame.loc[frame.index[5::step], "amount"] = -1.0
    frame["channel"] = frame["channel"].astype(object)
    frame.loc[frame.index[11 :: step * 2], "channel"] = "fax"
    return frame


def test_example_schema_failures_match_the_pandas_engine(
    example_with_failures: pd.DataFrame, dask_address: str, tmp_path: Path
) -> None:
    frame = example_with_failures
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    parts = write_parts(frame, tmp_path / "parts")
    schema = {"name": "example", "max_failure_cases": 5}
    pandas_report = run_flow(
        "validate", params_for(tmp_path / "one.parquet", tmp_path / "p", schema=schema)
    )
    dask_report = run_flow(
        "validate",
        params_for(parts, tmp_path / "d", schema=schema, compute=_dask(dask_address)),
    )
    expected, found = _schema_failures(pandas_report), _schema_failures(dask_report)
    assert [(f["column"], f["check"], f["count"]) for f in found] == [
        (f["column"], f["check"], f["count"]) for f in expected
    ]
    assert {f["column"] for f in found} >= {"amount", "channel"}
    assert sum(f["count"] for f in found) > PARTS  # failures in every partition are counted
    for failure in found:
        assert 0 < len(failure["rows"]) <= 5
        for row in failure["rows"]:
            # A real failing row, named by its global row number and its id.
            original = frame.iloc[row["index"]]
            assert original[failure["column"]] == row["value"]
            assert original["transaction_id"] == row["id"]
    assert found == expected
    assert dask_report.checks == pandas_report.checks
    assert dask_report.metrics["engine"] == {
        "name": "dask",
        "on_cluster": ["load", "schema", "profile"],
        "stored_for": ["leakage"],
        "collected_for": [],
    }


def _stored(part: "dask_schema._Part") -> pd.DataFrame:
    """The partition's validated pieces as the flow stores and reads them back."""
    writer = TableWriter(part.frames[0].head(0))
    for piece, frame in enumerate(part.frames):
        writer.add(0, frame, piece)
    return writer.table().to_pandas()


def test_a_partition_is_validated_a_chunk_of_rows_at_a_time(
    example_with_failures: pd.DataFrame, example_frame: pd.DataFrame
) -> None:
    data = DataParams(
        path="x", label="is_fraud", label_time="event_time", id_column="transaction_id"
    )
    params = SchemaParams(name="example", max_failure_cases=5)
    for frame, passes in ((example_with_failures, False), (example_frame, True)):
        declared = declare_schema(params, data, [str(c) for c in frame.columns])
        whole = dask_schema._validate_part(frame, declared, data, params, [], len(frame))
        chunked = dask_schema._validate_part(frame, declared, data, params, [], 97)
        assert whole.passed is chunked.passed is passes
        assert bool(whole.failures) is not passes
        merged = dask_schema.merge_failures([chunked.failures], 5)
        assert merged == dask_schema.merge_failures([whole.failures], 5)
        assert chunked.label_counts is not None and whole.label_counts is not None
        pd.testing.assert_series_equal(chunked.label_counts, whole.label_counts, check_names=False)
        pd.testing.assert_frame_equal(_stored(chunked), _stored(whole))


def test_chunks_keep_a_declared_category_and_dates_read_as_text_are_not_chunked(
    tmp_path: Path,
) -> None:
    yaml = tmp_path / "schema.yaml"
    yaml.write_text(
        "name: coded\ncolumns:\n  y:\n    dtype: int64\n"
        "  region:\n    dtype: category\n    coerce: true\n  t:\n    dtype: datetime\n"
    )
    frame = pd.DataFrame({"y": [0, 1] * 100, "region": [1] * 100 + [2] * 100})
    frame["t"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(range(200), unit="D")
    data = DataParams(path="x", label="y", label_time="t")
    params = SchemaParams(name=str(yaml))
    declared = declare_schema(params, data, [str(c) for c in frame.columns])
    chunked = dask_schema._validate_part(frame, declared, data, params, [], 50)
    assert chunked.passed and _stored(chunked)["region"].dtype == "category"
    assert list(_stored(chunked)["region"]) == [1] * 100 + [2] * 100
    # The baseline reads text label times; the second half alone (01/02/2025) cannot tell
    # the day from the month, so a partition of text dates is validated whole.
    text = frame.assign(t=[f"{d % 12 + 1:02d}/13/2025" for d in range(100)] + ["01/02/2025"] * 100)
    params = SchemaParams(name=None)
    declared = declare_schema(params, data, [str(c) for c in text.columns])
    whole = dask_schema._validate_part(text, declared, data, params, [], len(text))
    chunked = dask_schema._validate_part(text, declared, data, params, [], 50)
    assert whole.passed and chunked.passed
    pd.testing.assert_frame_equal(_stored(chunked), _stored(whole))


def test_a_files_row_groups_are_partitions_of_bounded_size(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path
) -> None:
    path = tmp_path / "one.parquet"
    example_frame.to_parquet(path, index=False, row_group_size=len(example_frame) // 4 + 1)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    source = DataParams(path=str(path), label="is_fraud")
    # Small row groups are joined up to PARTITION_BYTES; above it, each is a partition.
    assert read_dask(source).npartitions == 1
    pandas_report = run_flow("validate", params_for(path, tmp_path / "p"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dask_engine, "PARTITION_BYTES", 1)
        assert read_dask(source).npartitions == 4
        dask_report = run_flow(
            "validate", params_for(path, tmp_path / "d", compute=_dask(dask_address))
        )
    assert dask_report.checks == pandas_report.checks


def test_row_groups_are_cut_into_slices_and_small_ones_joined(tmp_path: Path) -> None:
    """Every row once, in order; a row group above the budget in equal slices, consecutive
    small ones joined up to it."""
    frame = pd.DataFrame({"x": np.arange(32, dtype="float64"), "y": np.arange(32) % 2})
    path = tmp_path / "groups.parquet"
    writer = pq.ParquetWriter(path, pa.Table.from_pandas(frame, preserve_index=False).schema)
    for start, stop in ((0, 10), (10, 13), (13, 16), (16, 19), (19, 32)):
        writer.write_table(pa.Table.from_pandas(frame.iloc[start:stop], preserve_index=False))
    writer.close()
    metadata = pq.ParquetFile(path).metadata
    per_row = memory.parquet_bytes(metadata) / metadata.num_rows
    plan = dask_slices.plan_slices(str(path), metadata, int(per_row * 6.5))
    pieces = [[(p.group, p.start, p.stop) for p in s.pieces] for s in plan]
    assert pieces == [
        [(0, 0, 5)],
        [(0, 5, 10)],
        [(1, 0, 3), (2, 0, 3)],
        [(3, 0, 3)],
        [(4, 0, 4)],
        [(4, 4, 8)],
        [(4, 8, 13)],
    ]
    read = pd.concat(
        [dask_slices.read_slice(s, LocalFileSystem(), ["x", "y"]) for s in plan],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(read, frame)


def test_a_row_group_larger_than_a_partition_is_read_in_slices(
    example_with_failures: pd.DataFrame, dask_address: str, tmp_path: Path
) -> None:
    """One row group is read as several partitions, and the table, the schema failures' row
    numbers and the report are the pandas engine's."""
    path = tmp_path / "one.parquet"
    example_with_failures.to_parquet(path, index=False)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    source = DataParams(path=str(path), label="is_fraud")
    assert read_dask(source).npartitions == 1
    schema = {"name": "example", "max_failure_cases": 5}
    pandas_report = run_flow("validate", params_for(path, tmp_path / "p", schema=schema))
    estimate = memory.parquet_bytes(pq.ParquetFile(path).metadata)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dask_slices, "SLICE_BYTES", estimate // 5)
        read = read_dask(source)
        assert read.npartitions >= 5
        pd.testing.assert_frame_equal(collect(read), read_table(path))
        dask_report = run_flow(
            "validate",
            params_for(path, tmp_path / "d", schema=schema, compute=_dask(dask_address)),
        )
    failures = _schema_failures(dask_report)
    assert {f["column"] for f in failures} >= {"amount", "channel"}
    assert failures == _schema_failures(pandas_report)
    assert dask_report.checks == pandas_report.checks


def test_tables_the_slices_would_read_otherwise_keep_dasks_partitions(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """Whatever the budget, Dask's reader is kept for a column Dask reads as a categorical,
    which a slice read by pyarrow would not be; Spark's _SUCCESS marker, which neither
    engine reads, does not stop the slicing."""
    frame = example_frame.head(2000)
    coded = tmp_path / "coded.parquet"
    frame.assign(channel=frame["channel"].astype("category")).to_parquet(coded, index=False)
    spark = write_parts(frame, tmp_path / "spark", 2)
    (spark / "_SUCCESS").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dask_slices, "SLICE_BYTES", 1)
        assert read_dask(DataParams(path=str(spark), label="is_fraud")).npartitions == 2000
        source = DataParams(path=str(coded), label="is_fraud")
        with dask.config.set({"dataframe.convert-string": False}):
            whole = dd.read_parquet(coded, index=False, split_row_groups="adaptive")
        assert read_dask(source).npartitions == whole.npartitions


def test_a_directory_is_read_as_the_files_the_pandas_engine_takes(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path
) -> None:
    """Dask's own listing would also read a .parq file and names under "_" or ".", or only
    the files a _metadata file lists: the Dask engine reads the files the pandas engine
    reads, in its order, whole row groups or sliced."""
    frame = example_frame.head(4000)
    odd = write_parts(frame, tmp_path / "odd", 4)
    (odd / "part-00.parquet").rename(odd / "part-00.parq")
    for hidden in ("_part-01.parquet", ".part-01.parquet", "_tmp/part-09.parquet"):
        (odd / hidden).parent.mkdir(exist_ok=True)
        shutil.copy(odd / "part-01.parquet", odd / hidden)
    listed = pq.read_metadata(odd / "part-03.parquet")
    listed.set_file_path("part-03.parquet")
    listed.write_metadata_file(str(odd / "_metadata"))
    source = DataParams(path=str(odd), label="is_fraud")
    expected = read_table(source)
    assert len(expected) == 3000
    for budget in (dask_slices.SLICE_BYTES, 1):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(dask_slices, "SLICE_BYTES", budget)
            pd.testing.assert_frame_equal(collect(read_dask(source)), expected)


@pytest.mark.parametrize("missing", [False, True], ids=["values", "values_and_missing"])
def test_ids_repeated_across_partitions_fail_as_with_pandas(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path, missing: bool
) -> None:
    """A unique column's duplicates in different partitions: no partition sees them alone.
    Missing ids in two partitions are judged as the pandas engine judges them."""
    frame = example_frame.copy()
    ids = frame["transaction_id"].to_numpy(copy=True)
    last = len(frame) - 1
    ids[last], ids[last - 1] = ids[0], ids[1]  # partition 0's ids again in the last partition
    if missing:
        ids[5] = ids[last - 5] = None
    frame["transaction_id"] = ids
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    parts = write_parts(frame, tmp_path / "parts")
    schema = {"name": "example"}
    pandas_report = run_flow(
        "validate", params_for(tmp_path / "one.parquet", tmp_path / "p", schema=schema)
    )
    dask_report = run_flow(
        "validate",
        params_for(parts, tmp_path / "d", schema=schema, compute=_dask(dask_address)),
    )
    expected = _schema_failures(pandas_report)
    found = [(f["column"], f["count"]) for f in expected]
    assert ("transaction_id", 4) in found and (missing or found == [("transaction_id", 4)])
    assert _schema_failures(dask_report) == expected
    assert dask_report.checks == pandas_report.checks
    assert dask_report.metrics["engine"]["on_cluster"] == ["load", "schema", "profile"]


def test_clean_example_matches_the_pandas_engine(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path
) -> None:
    example_frame.to_parquet(tmp_path / "one.parquet", index=False)
    parts = write_parts(example_frame, tmp_path / "parts")
    pandas_report = run_flow("validate", params_for(tmp_path / "one.parquet", tmp_path / "p"))
    dask_report = run_flow(
        "validate", params_for(parts, tmp_path / "d", compute=_dask(dask_address))
    )
    assert dask_report.status == "passed"
    assert dask_report.checks == pandas_report.checks
    assert dask_report.data == pandas_report.data


def _case_report(
    case: Case, address: str, tmp: Path, name: str, where: tuple[str, ...] = ()
) -> None:
    path = write_parts(case.frame, tmp / "case")
    data = {"label": LABEL, "label_time": case.label_time, "id_column": ID, "drop": [*case.drop]}
    params = params_for(
        path,
        tmp,
        data=data,
        leakage=case.leakage.model_dump(mode="json"),
        compute=_dask(address),
    )
    report = masked(run_flow("run", params), tmp)
    on_cluster = ["load", "schema", "profile", *where]
    assert report["metrics"]["engine"]["on_cluster"] == on_cluster
    expected = _without_engine(json.loads((GOLDEN / f"{name}.json").read_text()))
    found = _without_engine(report)
    assert [(c["code"], c["status"], c["columns"]) for c in found["checks"]] == [
        (c["code"], c["status"], c["columns"]) for c in expected["checks"]
    ]
    assert found == expected


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_leak_case_matches_the_pandas_engine(name: str, dask_address: str, tmp_path: Path) -> None:
    _case_report(leak_case(name), dask_address, tmp_path, f"leak_{name}")


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_leak_case_with_the_leakage_steps_on_the_cluster_matches_the_pandas_engine(
    name: str, tcp_dask_address: str, tmp_path: Path
) -> None:
    """A scheduler given by address whose workers wrote the table runs the leakage checks',
    the time split's and the holdout scoring's per-partition steps (tasks/part_map.py): the
    report is the same."""
    case = leak_case(name)
    where = ("leakage", "split", "evaluate")
    _case_report(case, tcp_dask_address, tmp_path, f"leak_{name}", where=where)


@pytest.mark.parametrize("name", sorted(LOOKALIKES))
def test_lookalike_case_matches_the_pandas_engine(
    name: str, dask_address: str, tmp_path: Path
) -> None:
    _case_report(LOOKALIKES[name](4000, 0), dask_address, tmp_path, f"lookalike_{name}")


def test_cli_runs_the_example_on_the_dask_engine(
    example_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    args = ["run", "--data", str(example_csv), "--label", "is_fraud"]
    args += ["--label-time", "event_time", "--id", "transaction_id", "--schema", "example"]
    args += ["--engine", "dask", "--output-dir", str(tmp_path), "--report", str(report)]
    assert main(args) == 0
    written = json.loads(report.read_text())
    assert written["run"]["parameters"]["compute"]["engine"] == "dask"
    stored = ["leakage", "split", "train", "evaluate"]
    assert written["metrics"]["engine"]["stored_for"] == stored
    assert written["metrics"]["engine"]["collected_for"] == []


def test_unreachable_scheduler_is_a_usage_error_naming_the_setting(
    example_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("compute:\n  engine: dask\n  dask_address: tcp://127.0.0.1:9\n")
    args = ["validate", "--data", str(example_csv), "--label", "is_fraud"]
    args += ["--config", str(config), "--output-dir", str(tmp_path)]
    assert main(args) == 2
    assert "compute.dask_address" in capsys.readouterr().err


def test_a_spill_directory_that_cannot_hold_the_table_is_a_usage_error_naming_it(
    example_frame: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dask_address: str,
) -> None:
    parts = write_parts(example_frame, tmp_path / "parts")
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("x")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"compute:\n  engine: dask\n  dask_address: {dask_address}\n"
        f"  spill_dir: {not_a_directory}\n"
    )
    report = tmp_path / "report.json"
    args = ["validate", "--data", str(parts), "--label", "is_fraud", "--config", str(config)]
    args += ["--output-dir", str(tmp_path / "out"), "--report", str(report)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "compute.spill_dir" in err and str(not_a_directory) in err
    assert "Traceback" not in err
    failed = json.loads(report.read_text())["checks"]
    refusal = next(c for c in failed if c["status"] == "fail")
    assert refusal["code"] == "invalid_parameters"
    assert refusal["metrics"]["setting"] == "compute.spill_dir"


def test_a_table_larger_than_the_spill_directorys_free_space_is_refused_before_reading(
    example_frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = write_parts(example_frame, tmp_path / "parts")
    config = tmp_path / "config.yaml"
    config.write_text(f"compute:\n  engine: dask\n  spill_dir: {tmp_path}\n")
    report = tmp_path / "report.json"
    args = ["validate", "--data", str(parts), "--label", "is_fraud", "--config", str(config)]
    args += ["--output-dir", str(tmp_path / "out"), "--report", str(report)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(9, 9, 1000))
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "compute.spill_dir" in err and "nothing was read" in err
    refused = json.loads(report.read_text())["checks"][0]
    assert refused["code"] == "table_too_large"
    assert refused["metrics"]["spill"]["free_bytes"] == 1000
    assert "engine" not in json.loads(report.read_text())["metrics"]  # no cluster was started


def test_the_stored_table_lives_in_the_spill_directory_and_is_removed_after_the_run(
    example_frame: pd.DataFrame, tmp_path: Path, dask_address: str
) -> None:
    parts = write_parts(example_frame, tmp_path / "parts")
    spill = tmp_path / "spill"
    spill.mkdir()
    seen: list[list[str]] = []
    real_table = TableWriter.table

    def watched(writer: TableWriter, cluster: str | None = None) -> StoredTable:
        seen.append([p.name for p in spill.iterdir()])
        return real_table(writer, cluster)

    compute = _dask(dask_address, spill_dir=str(spill))
    params = params_for(parts, tmp_path / "out", compute=compute)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TableWriter, "table", watched)
        report = run_flow("validate", params)
    assert report.status == "passed"
    assert seen and seen[0][0].startswith("retrain-guard-table-")
    gc.collect()
    assert list(spill.iterdir()) == []


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_local_clusters_workers_and_its_closing_notes(processes: bool) -> None:
    """The local workers run in the flow's process unless compute.dask_processes. A message
    to a worker already gone, as the cluster closes, is logged by Dask at INFO with a
    traceback: the run's own cluster keeps that logger at WARNING, then restores it."""
    logger = logging.getLogger("distributed.batched")
    before = logger.level
    compute = ComputeParams(engine="dask", dask_workers=1, dask_processes=processes)
    with dask_engine.dask_cluster(compute) as client:
        assert (client.submit(os.getpid).result() != os.getpid()) is processes
        assert not logger.isEnabledFor(logging.INFO)
    assert logger.level == before


def test_files_with_datetimes_in_different_units_are_collected_in_one(tmp_path: Path) -> None:
    """One file in ms holding a date past 2262, one in ns: the whole table (a multi-column
    uniqueness, unusable role columns) is joined in microseconds, which hold both."""
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name, unit, day in (("a", "ms", "2300-01-01"), ("b", "ns", "2024-01-02")):
        opened = pa.array(np.array([day, "2024-01-01"], dtype=f"datetime64[{unit}]"))
        table = pa.table({"y": [0, 1], "opened": opened})
        pq.write_table(table, mixed / f"{name}.parquet")
    collected = collect(read_dask(DataParams(path=str(mixed), label="y")))
    assert collected["opened"].dt.unit == "us"
    assert [str(d)[:10] for d in collected["opened"]] == [
        "2300-01-01",
        "2024-01-01",
        "2024-01-02",
        "2024-01-01",
    ]
    assert list(collected.index) == [0, 1, 2, 3]


_RELEASE = threading.Event()


def _pulled_task(number: int) -> int:
    if number == 0:
        raise ValueError("partition 0 is broken")
    _RELEASE.wait(30)
    return number


def test_a_failed_pull_cancels_the_tasks_not_finished(dask_address: str) -> None:
    """The first partition fails while the others wait on the workers or in the queue:
    the error goes on and the scheduler is left with none of them."""
    _RELEASE.clear()
    with Client(dask_address) as client:
        tasks = [dask.delayed(_pulled_task)(n) for n in range(8)]
        with pytest.raises(ValueError, match="partition 0") as failed:
            dask_engine.pulled(tasks, lambda number, result: result)

        def left() -> list[str]:
            return sorted(
                client.run_on_scheduler(
                    lambda dask_scheduler: [
                        t.state for t in dask_scheduler.tasks.values() if t.state != "erred"
                    ]
                )
            )

        # The scheduler forgets cancelled tasks as its messages arrive: wait for it a while.
        try:
            deadline = time.monotonic() + 10
            while left() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            _RELEASE.set()
        # Raised through pulled, whose frame (and any future it held) the traceback keeps.
        assert any(entry.name == "pulled" for entry in failed.traceback)
        assert left() == []


def test_the_local_cluster_is_closed_once_the_table_is_stored(
    example_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """The default local cluster's workers are threads of the flow's process: the leakage
    checks' steps run in the flow (tasks/part_map.py), and the cluster is closed, its
    memory handed back, once the table is stored."""
    parts = write_parts(example_frame, tmp_path / "parts")
    clients: list[object] = []
    measure = retrain.measure_empty_columns

    def after_the_schema(frame: Any, columns: list[str]) -> list[str]:
        try:
            clients.append(default_client())
        except ValueError:  # no client: the cluster is closed
            clients.append(None)
        return measure(frame, columns)

    params = params_for(parts, tmp_path / "out", compute={"engine": "dask", "dask_workers": 1})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retrain, "measure_empty_columns", after_the_schema)
        report = run_flow("validate", params)
    assert report.status == "passed"
    assert report.metrics["engine"]["stored_for"] == ["leakage"]
    assert report.metrics["engine"]["on_cluster"] == ["load", "schema", "profile"]
    assert clients == [None]


def test_the_cluster_is_open_for_the_steps_to_the_scoring_and_closed_before_the_gate(
    example_frame: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tcp_dask_address: str,
    dask_address: str,
) -> None:
    """The leakage checks', the time split's and the holdout scoring's per-partition steps
    run on the cluster whose workers stored the table (tasks/part_map.py; workers reached
    over TCP, as on other machines); the gate runs with the run's client closed."""
    # Ten partitions: the holdout (the latest fifth of the rows) spans more than one.
    parts = write_parts(example_frame, tmp_path / "parts", 10)
    clients: dict[str, object] = {}
    steps: list[str] = []

    def seen(stage: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any, **kwargs: Any) -> Any:
            try:
                clients[stage] = default_client()
            except ValueError:  # no client: the cluster is closed
                clients[stage] = None
            return real(*args, **kwargs)

        return watched

    on_cluster = part_map._on_cluster

    def counted(client: Any, pieces: Any, step: Any, arguments: Any) -> Any:
        steps.append(step.__name__)
        return on_cluster(client, pieces, step, arguments)

    monkeypatch.setattr(part_map, "_on_cluster", counted)
    leakage = seen("leakage", retrain.detect_leakage_task)
    monkeypatch.setattr(retrain, "detect_leakage_task", leakage)
    for stage, task in (
        ("split", "split_task"),
        ("evaluate", "evaluate_task"),
        ("gate", "gate_task"),
    ):
        monkeypatch.setattr(retrain, task, seen(stage, getattr(retrain, task)))
    compute = {"engine": "dask", "dask_address": tcp_dask_address}
    report = run_flow("run", params_for(parts, tmp_path / "out", compute=compute))
    assert report.status == "passed"
    assert report.metrics["engine"]["stored_for"] == ["leakage", "split", "train", "evaluate"]
    assert None not in (clients["leakage"], clients["split"], clients["evaluate"])
    assert clients["gate"] is None
    assert report.metrics["engine"]["on_cluster"] == [
        *("load", "schema", "profile"),
        *("leakage", "split", "evaluate"),
    ]
    assert {"_part_histograms", "_part_present", "_bounds", "_sides", "_scores_of"} <= set(steps)
    # The same run with the steps in the flow: the same report apart from where they ran.
    in_process = {"engine": "dask", "dask_address": dask_address}
    local = run_flow("run", params_for(parts, tmp_path / "flow", compute=in_process))
    # (the output directories differ, and with them the summaries naming them)
    assert [(c.code, c.status, c.columns, c.metrics) for c in local.checks] == [
        (c.code, c.status, c.columns, c.metrics) for c in report.checks
    ]
    assert local.metrics["split"] == report.metrics["split"]
    assert local.metrics["holdout"] == report.metrics["holdout"]


def test_sql_source_is_refused_by_the_dask_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dask_address: str
) -> None:
    database = tmp_path / "t.db"
    with sqlite3.connect(database) as connection:
        connection.execute("create table t (x int, y int)")
        connection.executemany("insert into t values (?, ?)", [(i, i % 2) for i in range(20)])
    args = ["validate", "--sql", "t", "--connection", f"sqlite:///{database}", "--label", "y"]
    args += ["--engine", "dask", "--output-dir", str(tmp_path)]
    config = tmp_path / "config.yaml"
    config.write_text(f"compute:\n  dask_address: {dask_address}\n")
    assert main([*args, "--config", str(config)]) == 2
    assert "data.sql" in capsys.readouterr().err


# --- Columns decided once for the whole table, not per partition ------------------------------


def _same_checks(found: Report, expected: Report) -> None:
    assert [(c.code, c.status, c.columns) for c in found.checks] == [
        (c.code, c.status, c.columns) for c in expected.checks
    ]
    assert found.checks == expected.checks
    assert found.data == expected.data


def _read_alike(path: Path, parts: Path) -> pd.DataFrame:
    """Read `parts` with the Dask engine and `path` with the pandas engine: the same table."""
    expected = read_table(path)
    found = collect(read_dask(DataParams(path=str(parts), label=LABEL)))
    pd.testing.assert_frame_equal(found, expected)
    return found


def test_iso_dates_are_decided_for_the_whole_column(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path
) -> None:
    """Offsets that change between files read as UTC datetimes; a stray 'n/a' in one file
    keeps the whole column text, as the pandas engine reads them."""
    frame = example_frame.copy()
    half = len(frame) // 2
    opened = pd.Timestamp("2024-03-01") + pd.to_timedelta(np.arange(len(frame)), unit="min")
    offsets = np.where(np.arange(len(frame)) < half, "+01:00", "+02:00")
    frame["opened_at"] = opened.strftime("%Y-%m-%dT%H:%M:%S") + offsets
    closed = pd.Series(opened.strftime("%Y-%m-%d"), dtype=object)
    closed.iloc[-3] = "n/a"  # in the last partition only
    frame["closed_on"] = closed.to_numpy()
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    parts = write_parts(frame, tmp_path / "parts")
    read = _read_alike(tmp_path / "one.parquet", parts)
    assert str(read["opened_at"].dtype) == "datetime64[us, UTC]"
    assert read["closed_on"].map(lambda v: isinstance(v, str)).all()
    data = {"drop": ["opened_at", "closed_on"]}
    pandas_report = run_flow(
        "validate", params_for(tmp_path / "one.parquet", tmp_path / "p", data=data)
    )
    dask_report = run_flow(
        "validate", params_for(parts, tmp_path / "d", data=data, compute=_dask(dask_address))
    )
    _same_checks(dask_report, pandas_report)


def _text_label_times(frame: pd.DataFrame, variant: str) -> pd.Series:
    """The example's label times as text (or numbers) one partition alone reads otherwise."""
    times = pd.to_datetime(frame["event_time"])
    rows = np.arange(len(frame))
    first = rows < len(frame) // PARTS
    if variant in ("settled_late", "contradicted"):
        # dd/mm/yyyy, days up to 12 in the first partition: the later ones settle day first.
        days = np.where(first, (times.dt.day - 1) % 12 + 1, times.dt.day)
        text = pd.Series([f"{d:02d}/{t:%m/%Y}" for d, t in zip(days, times, strict=True)])
        if variant == "contradicted":  # month first, in the partition that settles nothing
            text.iloc[0] = "01/13/2024"
        return text.astype(object)
    if variant == "years_stray":  # years; a stray 1 sampled by its partition alone
        years = times.dt.year.astype("int64")
        years.iloc[24] = 1
        return years
    if variant == "separators_by_file":  # dd/mm/yyyy, then dd-mm-yyyy: not one format
        text = times.dt.strftime("%d/%m/%Y").astype(object)
        return text.where(rows < len(frame) // 2, times.dt.strftime("%d-%m-%Y"))
    text = times.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    if variant == "zones_by_file":  # the later files write an offset, the first ones none
        return text.where(rows < len(frame) // 2, text + "+01:00")
    # ISO dates, but most of the first partition's values are 'n/a': half the column or
    # more is ISO, so the 'n/a' are bad rows, not a column of other text.
    return text.where(~first | (rows % 5 == 0), "n/a")


@pytest.mark.parametrize(
    ("variant", "verdict"),
    [
        ("settled_late", "pass"),
        ("contradicted", "'01/13/2024' only month first"),
        ("zones_by_file", "mixes values with and without a time zone"),
        ("iso_with_text", "value(s) do not parse"),
        ("separators_by_file", "holds text that does not read as dates"),
        ("years_stray", "1 value(s) do not parse"),
    ],
)
def test_a_text_label_time_is_read_as_the_whole_column_says(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path, variant: str, verdict: str
) -> None:
    """A label time in text is read by what the whole column settles, as the pandas engine
    reads it: the day/month order (settled only by later partitions, or contradicted by a
    value of the first), ISO values without a zone in the early files and with one in the
    later ones (refused, not read as UTC), ISO dates with a partition of mostly other text
    (its bad rows counted), day-month-year text with one separator in the early files and
    another in the later ones (no format), integer years with a stray 1 that only its
    partition's sample holds (a bad row, not a column of other numbers). Each partition
    deciding alone failed the first case, passed the second, third and fifth, and said
    the fourth and sixth were no dates at all."""
    frame = example_frame.assign(event_time=_text_label_times(example_frame, variant).to_numpy())
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    parts = write_parts(frame, tmp_path / "parts")
    pandas_report = run_flow("validate", params_for(tmp_path / "one.parquet", tmp_path / "p"))
    dask_report = run_flow(
        "validate", params_for(parts, tmp_path / "d", compute=_dask(dask_address))
    )
    _same_checks(dask_report, pandas_report)
    schema = next(c for c in pandas_report.checks if c.code == "schema_invalid")
    if verdict == "pass":
        assert schema.status == "pass"
    else:
        assert schema.status == "fail"
        assert verdict in json.dumps(schema.model_dump(mode="json"))


@pytest.mark.parametrize("variant", ["settled_late", "contradicted", "zones_by_file"])
def test_a_schemas_datetime_column_in_text_is_read_as_the_whole_column_says(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path, variant: str
) -> None:
    """A schema's coerced datetime column is read by the label time's rules
    (schemas/date_checks.py): in the Dask engine by what the whole column settles, not by
    each partition or chunk alone, and its zones are checked against the whole column's
    usual one, so both engines give the same report. (Read by each chunk alone, the first
    case failed and the other two passed.)"""
    frame = example_frame.assign(event_time=_text_label_times(example_frame, variant).to_numpy())
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    parts = write_parts(frame, tmp_path / "parts")
    text = (REPO / "schemas" / "examples" / "transactions.yaml").read_text()
    declared = "  event_time:\n    dtype: datetime\n"
    assert declared in text
    schema = tmp_path / "coerced.yaml"
    schema.write_text(text.replace(declared, f"{declared}    coerce: true\n"))
    named = {"name": str(schema)}
    pandas_report = run_flow(
        "validate", params_for(tmp_path / "one.parquet", tmp_path / "p", schema=named)
    )
    dask_report = run_flow(
        "validate",
        params_for(parts, tmp_path / "d", schema=named, compute=_dask(dask_address)),
    )
    _same_checks(dask_report, pandas_report)
    statuses = {c.code: c.status for c in pandas_report.checks}
    assert statuses["schema_invalid"] == ("pass" if variant == "settled_late" else "fail")


def test_csv_dtypes_come_from_every_partition(
    example_frame: pd.DataFrame,
    dask_address: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An integer column with a blank after row 10,000 reads as float64, a numeric column
    with a word late as text, and no read fails, as with the pandas engine."""
    frame = example_frame.copy()
    assert len(frame) > 12_000
    frame["visits"] = pd.array(np.arange(len(frame)) % 7, dtype="Int64")
    frame.loc[frame.index[-5], "visits"] = pd.NA
    frame["score"] = (np.arange(len(frame)) % 13 / 4).astype(object)
    frame.loc[frame.index[-9], "score"] = "unknown"
    frame["flag"] = np.arange(len(frame)) % 2 == 0
    csv = tmp_path / "table.csv"
    frame.to_csv(csv, index=False)
    monkeypatch.setattr(dask_engine, "CSV_BLOCKSIZE", csv.stat().st_size // (PARTS + 1))
    assert read_dask(DataParams(path=str(csv), label=LABEL)).npartitions >= PARTS
    read = _read_alike(csv, csv)
    assert str(read["visits"].dtype) == "float64"
    assert read["score"].dtype != "float64"
    assert str(read["flag"].dtype) == "bool"
    pandas_report = run_flow("validate", params_for(csv, tmp_path / "p"))
    dask_report = run_flow("validate", params_for(csv, tmp_path / "d", compute=_dask(dask_address)))
    _same_checks(dask_report, pandas_report)


@pytest.mark.parametrize(
    "late",
    [["a", "list"], b"bytes", 7],
    ids=["list", "binary", "mixed"],
)
def test_role_columns_are_judged_in_every_partition(late: object) -> None:
    """A role column's unusable values only in the last partition are seen, as pandas sees
    them in the whole column."""
    rows = 400
    ids = pd.Series([f"t{i}" for i in range(rows)], dtype=object)
    ids.iloc[rows - 2] = late
    frame = pd.DataFrame(
        {"transaction_id": ids, LABEL: np.arange(rows) % 2, "amount": np.arange(rows) * 1.5}
    )
    data = DataParams(path="unused.csv", label=LABEL, id_column="transaction_id")
    with dask.config.set({"dataframe.convert-string": False}):  # as the engine reads
        table = dd.from_pandas(frame, npartitions=PARTS, sort=False)
        clean = dd.from_pandas(frame.assign(transaction_id=frame.index.astype(str)), PARTS)
    expected = unusable_roles(frame, data)
    assert expected == ["transaction_id"]
    assert unusable_roles(table.get_partition(0).compute(), data) == []
    assert unusable_roles_dask(table, data) == expected
    assert unusable_roles_dask(clean, data) == []


def test_a_hive_dataset_is_read_in_the_same_row_order_by_both_engines(
    example_frame: pd.DataFrame, dask_address: str, tmp_path: Path
) -> None:
    """Partition directories are taken in natural order (region=2 before region=10), as Dask
    takes them, so a row has the same number, and a failure names the same row, on both."""
    frame = example_frame.head(3000).assign(region=np.arange(3000) % 12)
    root = tmp_path / "dataset"
    for region, part in frame.groupby("region"):
        (root / f"region={region}").mkdir(parents=True)
        part.drop(columns="region").to_parquet(
            root / f"region={region}" / "part.parquet", index=False
        )
    read = _read_alike(root, root)
    assert read["region"].drop_duplicates().tolist() == list(range(12))
    ids = frame["transaction_id"].where(frame["region"] != 10, "repeated")
    broken = frame.assign(transaction_id=ids)
    shutil.rmtree(root)
    for region, part in broken.groupby("region"):
        (root / f"region={region}").mkdir(parents=True)
        part.drop(columns="region").to_parquet(
            root / f"region={region}" / "part.parquet", index=False
        )
    schema = {"name": "example"}
    pandas_report = run_flow("validate", params_for(root, tmp_path / "p", schema=schema))
    dask_report = run_flow(
        "validate",
        params_for(root, tmp_path / "d", schema=schema, compute=_dask(dask_address)),
    )
    assert [(f["column"], f["count"]) for f in _schema_failures(pandas_report)] == [
        ("transaction_id", 250)
    ]
    _same_checks(dask_report, pandas_report)


def test_the_holdout_is_scored_from_disk_and_compared_as_with_pandas(
    example_frame: pd.DataFrame,
    dask_address: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second run scores the holdout with the new and the last good model; on the Dask
    engine the holdout is read from the stored table a partition at a time (never taken
    into memory whole), with the same scores, comparison and report as with pandas."""
    example_frame.to_parquet(tmp_path / "one.parquet", index=False)
    parts = write_parts(example_frame, tmp_path / "parts", parts=8)  # the holdout spans two
    read: list[int] = []
    parts_of = training.iter_parts

    def counted(frame: Any, *args: Any) -> Any:
        assert isinstance(frame, StoredTable)  # the holdout (training rows are in memory)
        for scores in parts_of(frame, *args):
            read.append(len(scores))
            yield scores

    monkeypatch.setattr(training, "iter_parts", counted)
    reports = {}
    for engine, path, compute in (
        ("pandas", tmp_path / "one.parquet", {}),
        ("dask", parts, _dask(dask_address)),
    ):
        params = params_for(path, tmp_path / engine, compute=compute)
        first = run_flow("run", params)
        assert first.published is not None
        second = run_flow("run", params)
        assert "comparison" in second.metrics
        # The last good model's version and run differ between the engines' runs.
        text = json.dumps(_without_engine(masked(second, tmp_path / engine)))
        text = re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "<version>", text)
        reports[engine] = json.loads(
            re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", "<id>", text)
        )
    holdout_rows = reports["dask"]["metrics"]["split"]["holdout_rows"]
    # Two runs, each scoring the holdout with the new model, the second with the old too:
    # every score a partition at a time (the partitions that hold holdout rows).
    assert sum(read) == 3 * holdout_rows and max(read) < holdout_rows
    assert reports["dask"] == reports["pandas"]


def test_a_unique_number_repeated_in_files_of_other_dtypes_fails_as_with_pandas(
    dask_address: str, tmp_path: Path
) -> None:
    """An integer column with a null in one file reads as float64 there and int64 in the
    others: 5 and 5.0 are the same value repeated, on both engines."""
    yaml = tmp_path / "schema.yaml"
    yaml.write_text(
        "name: numbered\ncolumns:\n  y:\n    dtype: int64\n"
        "  n:\n    dtype: float64\n    nullable: true\n    unique: true\n    coerce: true\n"
    )
    parts = tmp_path / "parts"
    parts.mkdir()
    files = [
        pd.DataFrame({"y": [0, 1, 0], "n": pd.array([1, 2, 5], dtype="int64")}),
        pd.DataFrame({"y": [1, 0, 1], "n": [5.0, np.nan, 7.0]}),
        pd.DataFrame({"y": [0, 1, 0], "n": pd.array([8, 9, 10], dtype="int64")}),
    ]
    for number, part in enumerate(files):
        part.to_parquet(parts / f"part-{number}.parquet", index=False)
    whole = tmp_path / "whole.parquet"
    pd.concat(files, ignore_index=True).to_parquet(whole, index=False)
    data = {"label": "y", "label_time": None, "id_column": None}
    schema = {"name": str(yaml)}
    pandas_report = run_flow(
        "validate", params_for(whole, tmp_path / "p", data=data, schema=schema)
    )
    dask_report = run_flow(
        "validate",
        params_for(parts, tmp_path / "d", data=data, schema=schema, compute=_dask(dask_address)),
    )
    expected = _schema_failures(pandas_report)
    assert [(f["column"], f["count"]) for f in expected] == [("n", 2)]
    assert _schema_failures(dask_report) == expected
