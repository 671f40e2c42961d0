"""A reduction's per-partition steps (tasks/part_map.py) run on the cluster whose workers
wrote the stored table, while its client is open, and in the flow otherwise; either way each
step sees the same chunk and arguments, so the checks' results are the same.

The cluster here (tests/flows/conftest.py, tcp_dask_address) reaches its workers over TCP:
every step, argument and result is serialised as for a worker on another machine.
"""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from distributed import Client, get_worker

from retrain_guard.tasks import part_map, table_files
from retrain_guard.tasks.leakage.auc import category_cells, fold_of_rows, screen_column
from retrain_guard.tasks.leakage.date_leads import measure_post_label_dates
from retrain_guard.tasks.leakage.missingness import measure_missingness
from retrain_guard.tasks.leakage.rank_counts import value_rank_counts
from retrain_guard.tasks.leakage.rows import column_hashes, hashed_rows, row_hashes
from retrain_guard.tasks.leakage.temporal import measure_declared_availability
from retrain_guard.tasks.leakage.time_bins import column_time_bins
from retrain_guard.tasks.part_map import Aligned, Rows, map_parts
from retrain_guard.tasks.split import split_stored_by_time
from retrain_guard.tasks.stored_table import StoredTable, TableWriter
from tests.unit.test_stored_table import _quirky


@pytest.fixture
def client(tcp_dask_address: str) -> Iterator[Client]:
    with Client(tcp_dask_address) as connected:
        yield connected


def _by_workers(frame: pd.DataFrame, parts: int, tmp: Path, client: Client) -> TableWriter:
    """Have the cluster's workers write `frame` as `parts` partitions, as the schema stage
    does where they see the flow's disk."""
    tmp.mkdir(exist_ok=True)
    writer = TableWriter(frame.head(0), str(tmp))
    store = writer.store()
    pieces = np.array_split(np.arange(len(frame)), parts)
    for number, rows in enumerate(pieces):
        files = client.submit(store.write, number, [frame.iloc[rows]], pure=False).result()
        assert files is not None, "the workers see the flow's disk"
        writer.adopt(number, files[0])
    return writer


def _step(
    chunk: pd.DataFrame, column: str, rows: np.ndarray, aligned: np.ndarray, shared: np.ndarray
) -> tuple[bool, int, list[object], float, float, int]:
    """What a step saw: whether on a worker, its rows, their labels, the column at the
    positions given, the aligned slice, and the shared array."""
    try:
        get_worker()
        on_worker = True
    except ValueError:
        on_worker = False
    picked = float(chunk[column].iloc[rows].sum())
    return on_worker, len(chunk), list(chunk.index[:3]), picked, float(aligned.sum()), len(shared)


Seen = tuple[bool, int, list[object], float, float, int]


def _address(client: Client) -> str:
    return str(client.scheduler_info()["address"])


def _saw(table: StoredTable | pd.DataFrame, n: int) -> list[Seen]:
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(n, n // 3, replace=False))
    aligned = rng.random(n)
    shared = np.zeros(300_000)  # 2.4 MB: sent to the workers once
    return map_parts(table, ["amount"], _step, "amount", Rows(rows), Aligned(aligned), shared)


def test_steps_run_on_the_workers_that_wrote_the_table_with_the_flows_chunks(
    client: Client, tmp_path: Path
) -> None:
    frame = _quirky(1000, 3)
    writer = _by_workers(frame, 4, tmp_path, client)
    address = _address(client)
    on_cluster, in_flow = writer.table(address), writer.table()
    assert on_cluster.cluster == address and in_flow.cluster is None
    seen = _saw(on_cluster, len(frame))
    assert len(seen) == 4 and all(s[0] for s in seen)  # each on a worker
    local = _saw(in_flow, len(frame))
    assert not any(s[0] for s in local)
    assert [s[1:] for s in seen] == [s[1:] for s in local]
    (whole,) = _saw(frame, len(frame))  # in memory: one chunk of CHUNK_ROWS rows
    assert whole[1] == sum(s[1] for s in local)
    assert whole[3:5] == pytest.approx((sum(s[3] for s in local), sum(s[4] for s in local)))
    # A subset of rows, and a column the flow assigned, read alike on the workers.
    kept = np.sort(np.random.default_rng(1).choice(1000, 400, replace=False))
    subset = on_cluster.rows_at(kept, ["amount"]).assign(doubled=frame["amount"].iloc[kept] * 2)

    def doubled(table: StoredTable) -> list[tuple[int, float, float]]:
        return map_parts(table, ["amount", "doubled"], _sums)

    assert doubled(subset) == doubled(
        in_flow.rows_at(kept, ["amount"]).assign(doubled=frame["amount"].iloc[kept] * 2)
    )


def _sums(chunk: pd.DataFrame) -> tuple[int, float, float]:
    labels = int(np.asarray(chunk.index).sum())
    return labels, float(chunk["amount"].sum()), float(chunk["doubled"].sum())


def test_without_the_writers_client_the_steps_run_in_the_flow(
    client: Client, tmp_path: Path
) -> None:
    """Another scheduler's table, or partitions the flow wrote itself (workers that do not
    see its disk): the flow runs the steps."""
    frame = _quirky(600, 4)
    writer = _by_workers(frame, 3, tmp_path / "a", client)
    assert not any(s[0] for s in _saw(writer.table("tcp://elsewhere:8786"), len(frame)))
    mixed = _by_workers(frame.iloc[:400], 2, tmp_path / "b", client)
    mixed.add(2, frame.iloc[400:])
    assert mixed.table(_address(client)).cluster is None


def test_an_in_process_or_closed_cluster_leaves_the_steps_to_the_flow(
    tmp_path: Path, dask_address: str, tcp_dask_address: str
) -> None:
    """An in-process scheduler's workers are the flow's own threads; a closed client has
    no workers: the flow runs the steps."""
    frame = _quirky(600, 4)
    with Client(dask_address) as threads:
        own = _by_workers(frame, 3, tmp_path / "own", threads).table(_address(threads))
        assert dask_address.startswith("inproc://") and own.cluster == dask_address
        assert not any(s[0] for s in _saw(own, len(frame)))
    with Client(tcp_dask_address) as connected:
        gone = _by_workers(frame, 3, tmp_path / "gone", connected).table(tcp_dask_address)
        assert all(s[0] for s in _saw(gone, len(frame)))
    assert not any(s[0] for s in _saw(gone, len(frame)))


def test_the_checks_reductions_on_the_cluster_equal_the_flows(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The AUC screen's histograms and category cells, missingness by class and the dates
    after the label time, measured on the workers, are the flow's."""
    real = part_map._on_cluster
    calls: list[str] = []

    def counted(*args: Any) -> Any:
        calls.append(args[2].__name__)
        return real(*args)

    monkeypatch.setattr(part_map, "_on_cluster", counted)
    rng = np.random.default_rng(5)
    n = 3000
    positive = rng.random(n) < 0.1
    frame = pd.DataFrame(
        {
            "score": np.where(positive, rng.normal(1, 1, n), rng.normal(0, 1, n)),
            "kind": pd.Series(rng.choice(np.array(["a", "b", "c", None], dtype=object), n)),
            "sparse": np.where(rng.random(n) < np.where(positive, 0.9, 0.2), 1.0, np.nan),
            "is_fraud": positive.astype(int),
            "event_time": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
        }
    )
    late = pd.to_timedelta(np.where(positive, 30, -2), unit="D")
    frame["closed"] = (frame["event_time"] + late).where(rng.random(n) < 0.8)
    writer = _by_workers(frame, 5, tmp_path, client)
    on_cluster, in_flow = writer.table(_address(client)), writer.table()
    rows = np.flatnonzero(positive)
    folds = fold_of_rows(n)
    for table in (on_cluster, in_flow):
        assert screen_column(table, "score", rows, 0.99) is not None
    assert screen_column(on_cluster, "score", rows, 0.99) == screen_column(
        in_flow, "score", rows, 0.99
    )
    cluster_cells = category_cells(on_cluster, "kind", positive, folds)
    flow_cells = category_cells(in_flow, "kind", positive, folds)
    assert cluster_cells is not None and flow_cells is not None
    for got, expected in zip(cluster_cells, flow_cells, strict=True):
        np.testing.assert_array_equal(got, expected)
    missing = measure_missingness(on_cluster, ["sparse"], positive, min_rows=5)
    assert missing and missing == measure_missingness(in_flow, ["sparse"], positive, min_rows=5)
    leads = measure_post_label_dates(on_cluster, "event_time", ["closed"])
    assert leads and leads[0].after_label_time > 0
    assert leads == measure_post_label_dates(in_flow, "event_time", ["closed"])
    for column in ("score", "kind"):  # numbers, and text keyed as bytes
        ranked = value_rank_counts(on_cluster, column, positive, None)
        assert ranked is not None and ranked == value_rank_counts(in_flow, column, positive, None)
    # Label-time bins: their unit, quantiles and each row's bin (tasks/leakage/time_bins.py).
    cluster_bins = column_time_bins(on_cluster, "event_time")
    flow_bins = column_time_bins(in_flow, "event_time")
    assert cluster_bins is not None and flow_bins is not None
    assert [b.tolist() for b in cluster_bins] == [b.tolist() for b in flow_bins]
    # Known-at declarations: an offset from the label time, and a column of times.
    declared: dict[str, str | pd.Timedelta] = {"score": pd.Timedelta(hours=-5), "sparse": "closed"}
    known = measure_declared_availability(on_cluster, "event_time", declared)
    assert [k.after_label_time > 0 for k in known] == [False, True]
    assert known == measure_declared_availability(in_flow, "event_time", declared)
    # Rows hashed whole, at rows in any order, and one column's hashes (split_sharing.py).
    rows = np.random.default_rng(6).permutation(n)[: n // 2]
    features = ["score", "kind", "sparse", "closed"]
    np.testing.assert_array_equal(
        hashed_rows(on_cluster, rows, features), hashed_rows(in_flow, rows, features)
    )
    np.testing.assert_array_equal(column_hashes(on_cluster, "kind"), row_hashes(frame[["kind"]]))
    # The time split's quantile, tied block and sides (tasks/split.py).
    cluster_split = split_stored_by_time(on_cluster, "event_time", 0.2, 3.0)
    flow_split = split_stored_by_time(in_flow, "event_time", 0.2, 3.0)
    assert cluster_split.describe() == flow_split.describe()
    for got, expected in (
        (cluster_split.train, flow_split.train),
        (cluster_split.holdout, flow_split.holdout),
    ):
        np.testing.assert_array_equal(got, expected)
    steps = {"_value_range", "_part_histograms", "_part_cells", "_part_present", "_part_leads"}
    steps |= {"_whole_days_part", "_part_sums", "_bounds", "_around", "_sides"}
    steps |= {"_mixed_hashes", "_hashes_of", "_part_known"}
    assert steps | {"_needs_micro", "_within", "_bin_numbers"} <= set(calls)


def test_a_worker_that_cannot_read_a_partition_leaves_its_step_to_the_flow(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that joined after the table was written, on another disk, finds no file:
    the flow runs that partition's step on its own disk, and the result is the same."""
    frame = _quirky(900, 6)
    writer = _by_workers(frame, 3, tmp_path, client)
    expected = _saw(writer.table(), len(frame))
    real = table_files.read_array

    def elsewhere(part: table_files.PartFile, name: str | None) -> object:
        try:
            get_worker()
        except ValueError:  # the flow
            return real(part, name)
        if part.path.name.startswith("part-000001"):
            raise FileNotFoundError(2, "No such file or directory", str(part.path))
        return real(part, name)

    monkeypatch.setattr(table_files, "read_array", elsewhere)
    seen = _saw(writer.table(_address(client)), len(frame))
    assert [s[0] for s in seen] == [True, False, True]
    assert [s[1:] for s in seen] == [s[1:] for s in expected]


def _rebuilt() -> "_OnlyInTheFlow":
    # The workers are threads of this process: they unpickle off the main thread.
    if threading.current_thread() is threading.main_thread():
        return _OnlyInTheFlow()
    raise ModuleNotFoundError("No module named 'users_own_estimators'")


class _OnlyInTheFlow:
    """An argument whose class the workers cannot import (a custom estimator's module
    installed only where the flow runs)."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _rebuilt, ()


def _sum_with(chunk: pd.DataFrame, argument: object) -> float:
    if not isinstance(argument, _OnlyInTheFlow):
        raise TypeError(f"unexpected {argument!r}")
    return float(chunk["amount"].sum())


def _sum_in_the_flow(chunk: pd.DataFrame) -> float:
    if threading.current_thread() is not threading.main_thread():
        raise ModuleNotFoundError("No module named 'users_own_estimators'")
    return float(chunk["amount"].sum())


def _fails(chunk: pd.DataFrame) -> float:
    raise ArithmeticError(f"a step's own failure at {len(chunk)} rows")


def test_a_step_that_fails_on_the_workers_runs_in_the_flow(client: Client, tmp_path: Path) -> None:
    """An argument the workers cannot unpickle, or a step that fails on them: the steps
    run in the flow, with the same results; a step's own error raises in the flow as it
    would without a cluster."""
    frame = _quirky(900, 7)
    writer = _by_workers(frame, 3, tmp_path, client)
    on_cluster, in_flow = writer.table(_address(client)), writer.table()
    sums = map_parts(on_cluster, ["amount"], _sum_with, _OnlyInTheFlow())
    assert sums == map_parts(in_flow, ["amount"], _sum_with, _OnlyInTheFlow())
    assert len(sums) == 3
    assert map_parts(on_cluster, ["amount"], _sum_in_the_flow) == sums
    with pytest.raises(ArithmeticError, match="a step's own failure at 300 rows"):
        map_parts(on_cluster, ["amount"], _fails)
