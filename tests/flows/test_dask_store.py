"""The Dask engine's schema stage storing the table: workers that see the flow's disk write
their partitions themselves; a worker that does not hands its rows to the flow, which
writes them; both give the same stored table. The label's two-class check is judged on the
classes the partitions counted.

The session's cluster (tests/flows/conftest.py) runs its workers in this process, so they
see the flow's disk; a worker elsewhere is played by a store whose token they cannot find.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client

from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.tasks import dask_schema, memory, stored_table, table_files
from retrain_guard.tasks.dask_engine import read_dask
from retrain_guard.tasks.engine import SpillUnwritable
from retrain_guard.tasks.stored_table import TableWriter
from retrain_guard.tasks.table_files import PartFile, Store
from retrain_guard.tasks.validation import declare_schema
from tests.flows.test_dask_engine import write_parts

DATA = {"label": "is_fraud", "label_time": "event_time", "id_column": "transaction_id"}


@pytest.fixture
def client(dask_address: str) -> Iterator[Client]:
    with Client(dask_address) as connected:
        yield connected


def _validated(
    path: Path, schema: str | None = None, spill: Path | None = None
) -> dask_schema.ClusterSchema:
    params = DataParams(path=str(path), **DATA)
    table = read_dask(params)
    declared = declare_schema(SchemaParams(name=schema), params, [str(c) for c in table.columns])
    return dask_schema.validate_on_cluster(
        table, declared, params, SchemaParams(name=schema), spill_dir=str(spill) if spill else None
    )


def _counting(patch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the partitions the flow writes (`add`) and those it takes as written (`adopt`)."""
    calls = {"add": 0, "adopt": 0}
    for name in calls:
        real: Callable[..., None] = getattr(TableWriter, name)

        def counted(
            writer: TableWriter, *args: object, _real: Callable[..., None] = real, _n: str = name
        ) -> None:
            calls[_n] += 1
            _real(writer, *args)

        patch.setattr(TableWriter, name, counted)
    return calls


@pytest.mark.parametrize("schema", [None, "example"])
def test_workers_write_the_partitions_and_the_table_is_the_one_the_flow_would_write(
    example_frame: pd.DataFrame,
    client: Client,
    tmp_path: Path,
    schema: str | None,
) -> None:
    frame = example_frame.copy()
    if schema == "example":  # failing partitions: the table is stored again as read
        frame.loc[frame.index[::50], "amount"] = -1.0
    parts = write_parts(frame, tmp_path / "parts")
    with pytest.MonkeyPatch.context() as patch:
        by_workers = _counting(patch)
        stored = _validated(parts, schema)
    with pytest.MonkeyPatch.context() as patch:
        by_flow = _counting(patch)
        patch.setattr(Store, "visible", lambda _: False)
        pulled = _validated(parts, schema)
    assert by_workers["add"] == 0 and by_workers["adopt"] >= 4
    assert by_flow["adopt"] == 0 and by_flow["add"] == by_workers["adopt"]
    assert (stored.outcome.frame is None) is (schema == "example")
    assert stored.outcome.failures == pulled.outcome.failures
    pd.testing.assert_frame_equal(stored.frame.to_pandas(), pulled.frame.to_pandas())
    assert stored.label_counts is not None and pulled.label_counts is not None
    pd.testing.assert_series_equal(stored.label_counts, pulled.label_counts)
    if schema is None:
        pd.testing.assert_frame_equal(stored.frame.to_pandas(), frame, check_dtype=False)


def _failing_writes(patch: pytest.MonkeyPatch, workers_only: bool) -> list[str]:
    """Make writing a partition's file fail (for the workers' names only, or for all), as on
    a disk the workers mount read-only or a full one; return the names tried."""
    real = table_files.write_part
    tried: list[str] = []

    def write_part(path: Path, frame: pd.DataFrame) -> PartFile:
        tried.append(path.name)
        by_worker = path.stem.count("-") == 2  # part-NNNNNN-PPPP
        if by_worker or not workers_only:
            path.write_bytes(b"partial")  # a file begun, then the disk refuses
            if workers_only:
                raise OSError(30, "Read-only file system")
            raise OSError(28, "No space left on device")
        return real(path, frame)

    patch.setattr(table_files, "write_part", write_part)  # the workers' writes
    patch.setattr(stored_table, "write_part", write_part)  # the flow's
    return tried


def test_a_worker_that_cannot_write_hands_its_rows_to_the_flow(
    example_frame: pd.DataFrame, client: Client, tmp_path: Path
) -> None:
    parts = write_parts(example_frame, tmp_path / "parts")
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        calls = _counting(patch)
        tried = _failing_writes(patch, workers_only=True)
        stored = _validated(parts, spill=spill)
    assert calls["adopt"] == 0 and calls["add"] >= 4
    assert any(name.count("-") == 2 for name in tried)
    pd.testing.assert_frame_equal(stored.frame.to_pandas(), example_frame, check_dtype=False)
    (directory,) = spill.iterdir()
    left = [p.name for p in directory.glob("part-*") if p.stem.count("-") == 2]
    assert left == []  # what a worker began is removed


def test_a_disk_neither_can_write_is_the_spill_settings_error(
    example_frame: pd.DataFrame, client: Client, tmp_path: Path
) -> None:
    parts = write_parts(example_frame, tmp_path / "parts")
    with pytest.MonkeyPatch.context() as patch:
        _failing_writes(patch, workers_only=False)
        with pytest.raises(SpillUnwritable, match=r"compute\.spill_dir.*No space left"):
            _validated(parts)


def test_a_part_written_elsewhere_or_with_other_columns_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    writer = TableWriter(frame.head(0), str(tmp_path))
    another = TableWriter(frame.head(0), str(tmp_path))
    elsewhere = another.store().write(0, [frame])
    assert elsewhere is not None
    with pytest.raises(ValueError, match="outside"):
        writer.adopt(0, elsewhere[0])
    other = writer.store().write(0, [frame[["b", "a"]]])
    assert other is not None
    with pytest.raises(ValueError, match="other columns"):
        writer.adopt(0, other[0])
    pieces = writer.store().write(0, [frame.iloc[:1], frame.iloc[1:]])
    assert pieces is not None
    for piece, written in enumerate(pieces):
        writer.adopt(0, written, piece)
    pd.testing.assert_frame_equal(writer.table().to_pandas(), frame)


def test_a_column_may_be_named_as_anything_the_index_is_kept_apart(tmp_path: Path) -> None:
    frame = pd.DataFrame({"__index__": [5, 6], "": ["x", "y"]}, index=[10, 11])
    writer = TableWriter(frame.head(0), str(tmp_path))
    writer.add(0, frame)
    written = writer.store().write(1, [frame.set_axis([12, 13])])
    assert written is not None
    writer.adopt(1, written[0])
    table = writer.table()
    assert list(table.index) == [10, 11, 12, 13]
    assert list(table["__index__"]) == [5, 6, 5, 6]


def test_a_store_is_visible_only_with_its_own_token(tmp_path: Path) -> None:
    writer = TableWriter(pd.DataFrame({"a": [1]}), str(tmp_path))
    store = writer.store()
    assert store.visible()
    assert not Store(store.path, "another").visible()
    assert Store(store.path, "another").write(0, [pd.DataFrame({"a": [1]})]) is None
    assert not list(Path(store.path).glob("part-*"))  # nothing written unseen
    assert not Store(str(tmp_path / "nowhere"), store.token).visible()


@pytest.mark.parametrize("labels", [[0, 1, 2], ["no", "yes", "maybe"]])
def test_a_third_class_in_one_partition_fails_the_baseline_label_check(
    example_frame: pd.DataFrame, client: Client, tmp_path: Path, labels: list[object]
) -> None:
    frame = example_frame.copy()
    frame["is_fraud"] = frame["is_fraud"].map(dict(enumerate(labels[:2]))).astype(object)
    frame.loc[frame.index[-3:], "is_fraud"] = labels[2]  # only in the last partition
    found = _validated(write_parts(frame, tmp_path / "parts"))
    checks = [(f.column, f.check) for f in found.outcome.failures]
    assert checks == [("is_fraud", "at_most_two_classes")]


def test_an_unused_category_of_the_label_is_no_third_class(
    example_frame: pd.DataFrame, client: Client, tmp_path: Path
) -> None:
    frame = example_frame.copy()
    frame["is_fraud"] = pd.Categorical(frame["is_fraud"], categories=[0, 1, 2])
    found = _validated(write_parts(frame, tmp_path / "parts"))
    assert found.outcome.failures == ()
    assert found.label_counts is not None
    assert sorted(found.label_counts[found.label_counts > 0].index) == [0, 1]


def test_a_relative_spill_directory_is_found_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("spill").mkdir()
    writer = TableWriter(pd.DataFrame({"a": [1]}), "spill")
    store = writer.store()
    assert Path(store.path).is_absolute()
    monkeypatch.chdir("/")  # a worker started elsewhere
    assert store.visible()
    written = store.write(0, [pd.DataFrame({"a": [1, 2]})])
    assert written is not None
    writer.adopt(0, written[0])
    assert list(writer.table()["a"]) == [1, 2]


def test_a_spill_directory_under_home_is_the_users_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "spill").mkdir()
    writer = TableWriter(pd.DataFrame({"a": [1]}), "~/spill")
    assert Path(writer.store().path).parent == (tmp_path / "spill").resolve()
    room = memory.spill_room("~/spill")
    assert room.directory == str(tmp_path / "spill") and room.free is not None
