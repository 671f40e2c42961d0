"""The in-memory size estimate (tasks/memory.py) against what pandas holds after read_table,
the memory available from /proc and cgroups, and the refusal's message."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.schemas.params import ComputeParams, DataParams
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.memory import (
    Available,
    Estimate,
    MemoryGuard,
    SpillRoom,
    available_memory,
    estimate_table,
    guard_memory,
    spill_room,
)
from tests.real_tables import CORPUS

# The estimate is within this factor of DataFrame.memory_usage(deep=True) after read_table.
LOW, HIGH = 0.5, 2.0


def _ratio(path: Path) -> float:
    estimate = estimate_table(path)
    assert estimate.bytes is not None, estimate.method
    return estimate.bytes / int(read_table(path).memory_usage(deep=True).sum())


def _tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    rows = 5000
    return {
        "example": make_transactions(),
        # Long strings, each distinct (plain pages) and one repeated (a dictionary page).
        "long_strings": pd.DataFrame(
            {
                "text": [f"{'x' * 500}{i}" for i in range(rows)],
                "repeated": ["y" * 300] * rows,
                "short_or_long": ["a", "b" * 200] * (rows // 2),
                "n": np.arange(rows),
            }
        ),
        "categorical": pd.DataFrame(
            {
                "channel": pd.Categorical(rng.choice(["web", "pos", "atm"], rows)),
                "many": pd.Categorical([f"merchant-{i % 1000}" for i in range(rows)]),
                "amount": rng.normal(size=rows),
            }
        ),
        "with_missing": pd.DataFrame(
            {
                "count": pd.array([1, None] * (rows // 2), dtype="Int64"),
                "flag": [True, None] * (rows // 2),
                "name": ["ann", None] * (rows // 2),
                "day": pd.to_datetime(pd.Series(["2024-01-01", None] * (rows // 2))),
            }
        ),
    }


@pytest.mark.parametrize("name", sorted(_tables()))
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_estimate_within_factor(name: str, suffix: str, tmp_path: Path) -> None:
    path = write_table(_tables()[name], tmp_path / f"{name}{suffix}")
    assert LOW <= _ratio(path) <= HIGH


def test_dictionary_column_written_by_arrow(tmp_path: Path) -> None:
    """An arrow dictionary column (not from pandas) is read as a categorical too."""
    values = pa.array([f"category-{i % 7}" for i in range(20_000)]).dictionary_encode()
    path = tmp_path / "dictionary.parquet"
    pq.write_table(pa.table({"c": values, "v": pa.array(range(20_000))}), path)
    assert read_table(path)["c"].dtype == "category"
    assert LOW <= _ratio(path) <= HIGH


@pytest.mark.parametrize("table", CORPUS, ids=lambda t: t.name)
def test_estimate_of_real_tables(table: object, tmp_path: Path) -> None:
    frame = table.build()  # type: ignore[attr-defined]
    assert LOW <= _ratio(write_table(frame, tmp_path / "real.parquet")) <= HIGH


def test_dataset_directory_sums_its_files(tmp_path: Path) -> None:
    frame = make_transactions(rows=6000).assign(part=lambda f: np.arange(len(f)) % 3)
    root = tmp_path / "dataset"
    pq.write_to_dataset(pa.Table.from_pandas(frame), root, partition_cols=["part"])
    (root / "_SUCCESS").write_text("")
    estimate = estimate_table(root)
    assert estimate.method == "Parquet metadata of 3 files"
    assert LOW <= _ratio(root) <= HIGH


def test_dataset_directory_without_partition_folders_is_its_files_summed(
    tmp_path: Path,
) -> None:
    # pyarrow then reports the files' own columns as the partitioning's schema: none of
    # them is a partition value.
    root = tmp_path / "flat"
    root.mkdir()
    files = [
        write_table(make_transactions(rows=3000, seed=i), root / f"part-{i}.parquet")
        for i in range(3)
    ]
    by_file = [estimate_table(f).bytes for f in files]
    assert estimate_table(root).bytes == sum(b for b in by_file if b is not None)
    assert LOW <= _ratio(root) <= 1.5


def test_fsspec_url_reads_the_footer(tmp_path: Path) -> None:
    path = write_table(make_transactions(rows=2000), tmp_path / "t.parquet")
    by_url = estimate_table(DataParams(path=f"file://{path}", label="is_fraud"))
    assert by_url.bytes == estimate_table(path).bytes


def test_sql_and_unreadable_sources_are_not_estimated(tmp_path: Path) -> None:
    sql = DataParams(sql="SELECT 1", connection="sqlite:///x.db", label="y")
    assert estimate_table(sql).bytes is None
    assert "SQL" in estimate_table(sql).method
    missing = estimate_table(tmp_path / "missing.parquet")
    assert missing.bytes is None and missing.method.startswith("not estimated")


def test_csv_larger_than_the_sample_is_scaled(tmp_path: Path) -> None:
    path = write_table(make_transactions(rows=60_000), tmp_path / "big.csv")
    assert path.stat().st_size > 2 << 20
    estimate = estimate_table(path)
    assert estimate.method.startswith("CSV: its first")
    assert 0.8 <= _ratio(path) <= 1.25


def _cgroup_v2(root: Path, limit: str, usage: int) -> None:
    group = root / "job" / "task"
    group.mkdir(parents=True)
    (root / "job" / "memory.max").write_text(limit + "\n")
    (root / "job" / "memory.current").write_text(f"{usage}\n")
    (group / "memory.max").write_text("max\n")
    (group / "memory.current").write_text(f"{usage // 2}\n")


def _proc(root: Path, available_kib: int, cgroup: str) -> Path:
    (root / "self").mkdir(parents=True)
    (root / "meminfo").write_text(
        f"MemTotal:       16000000 kB\nMemAvailable:   {available_kib} kB\n"
    )
    (root / "self" / "cgroup").write_text(cgroup)
    return root


def test_available_memory_takes_the_tightest_cgroup_v2_limit(tmp_path: Path) -> None:
    cgroups = tmp_path / "cgroup"
    _cgroup_v2(cgroups, str(3 << 30), 1 << 30)
    proc = _proc(tmp_path / "proc", 8 << 20, "0::/job/task\n")
    assert available_memory(proc, cgroups) == Available(2 << 30, 8 << 30, 2 << 30)


def test_reclaimable_page_cache_counts_as_free(tmp_path: Path) -> None:
    cgroups = tmp_path / "cgroup"
    _cgroup_v2(cgroups, str(3 << 30), 3 << 30)  # at its limit, two thirds of it inactive cache
    stat = f"anon 1\ninactive_file {2 << 30}\nactive_file 5\n"
    (cgroups / "job" / "memory.stat").write_text(stat)
    proc = _proc(tmp_path / "proc", 8 << 20, "0::/job/task\n")
    assert available_memory(proc, cgroups) == Available(2 << 30, 8 << 30, 2 << 30)


def test_available_memory_without_a_limit_is_memavailable(tmp_path: Path) -> None:
    cgroups = tmp_path / "cgroup"
    _cgroup_v2(cgroups, "max", 1 << 30)
    proc = _proc(tmp_path / "proc", 1 << 20, "0::/job/task\n")
    assert available_memory(proc, cgroups) == Available(1 << 30, 1 << 30, None)


def test_available_memory_reads_cgroup_v1(tmp_path: Path) -> None:
    group = tmp_path / "cgroup" / "memory" / "docker" / "abc"
    group.mkdir(parents=True)
    (group / "memory.limit_in_bytes").write_text(f"{4 << 30}\n")
    (group / "memory.usage_in_bytes").write_text(f"{1 << 30}\n")
    unlimited = tmp_path / "cgroup" / "memory"
    (unlimited / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (unlimited / "memory.usage_in_bytes").write_text(f"{5 << 30}\n")
    proc = _proc(tmp_path / "proc", 16 << 20, "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    assert available_memory(proc, tmp_path / "cgroup") == Available(3 << 30, 16 << 30, 3 << 30)


def test_available_memory_of_this_machine() -> None:
    available = available_memory()
    assert available is not None and available.bytes > 0


def test_refusal_states_estimate_memory_fraction_and_dask() -> None:
    guard = MemoryGuard(
        Estimate(3 << 30, "Parquet metadata"), Available(4 << 30, 4 << 30, None), 0.5
    )
    refused = guard.refusal("data/big.parquet")
    assert refused is not None and refused.code == "table_too_large" and refused.stage == "load"
    for part in ("data/big.parquet", "3.0 GiB", "4.0 GiB", "0.5", "--engine dask", "2.0 GiB"):
        assert part in refused.summary
    assert refused.metrics["estimate"] == {"bytes": 3 << 30, "method": "Parquet metadata"}
    assert MemoryGuard(guard.estimate, guard.available, 0.8).refusal("x") is None
    assert MemoryGuard(Estimate(None, "not estimated"), guard.available, 0.5).refusal("x") is None
    assert MemoryGuard(guard.estimate, None, 0.5).refusal("x") is None


def test_the_dask_engine_holds_the_estimate_against_the_spill_directory(tmp_path: Path) -> None:
    estimate, memory = Estimate(3 << 30, "Parquet metadata"), Available(1 << 30, 1 << 30, None)
    # The flow's process does not hold the table: a memory three times too small is no refusal.
    room = SpillRoom(str(tmp_path), 8 << 30)
    assert MemoryGuard(estimate, memory, 0.1, room).refusal("x") is None
    full = SpillRoom(str(tmp_path), 2 << 30)
    refused = MemoryGuard(estimate, memory, 0.1, full).refusal("data/big")
    assert refused is not None and refused.code == "table_too_large"
    for part in ("data/big", "3.0 GiB", "2.0 GiB", "compute.spill_dir", str(tmp_path)):
        assert part in refused.summary
    assert refused.metrics["setting"] == "compute.spill_dir"
    assert refused.metrics["spill"] == {
        "setting": "compute.spill_dir",
        "directory": str(tmp_path),
        "free_bytes": 2 << 30,
    }
    assert MemoryGuard(Estimate(None, "not estimated"), memory, 0.1, full).refusal("x") is None


def test_the_spill_room_is_the_directorys_free_space_or_the_temporary_directorys(
    tmp_path: Path,
) -> None:
    given = spill_room(str(tmp_path))
    assert given.directory == str(tmp_path) and given.free is not None and given.free > 0
    assert spill_room(None).directory == tempfile.gettempdir()
    # Not asked: no refusal here, however large the table against the memory; the table's
    # write fails instead, naming compute.spill_dir.
    missing = spill_room(str(tmp_path / "missing"))
    assert missing == SpillRoom(str(tmp_path / "missing"), None)
    huge, memory = Estimate(1 << 40, "Parquet metadata"), Available(1 << 30, 1 << 30, None)
    assert MemoryGuard(huge, memory, 0.1, missing).refusal("x") is None
    dask = guard_memory(DataParams(path=str(tmp_path / "t.parquet"), label="y"), _dask(tmp_path))
    assert dask.spill is not None and dask.spill.directory == str(tmp_path)
    pandas = guard_memory(DataParams(path=str(tmp_path / "t.parquet"), label="y"), ComputeParams())
    assert pandas.spill is None and "spill" not in pandas.to_json()


def _dask(tmp_path: Path) -> ComputeParams:
    return ComputeParams(engine="dask", spill_dir=str(tmp_path))
