"""The real-table corpus: every table gets the verdict its registry entry documents.

`validate` and `run` go through the CLI entry point with default settings on each table of
tests/real_tables.py, materialised once as Parquet. A crash (exit 3), a traceback, a verdict
other than the documented one, or a failing check the entry does not expect (a false alarm)
fails the test. On the Dask engine (`--engine dask`, the table written as several files; for
`run` each file read in slices smaller than its row group) each table's report must be the
pandas engine's, but for what names the engine.
"""

import json
import logging
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from retrain_guard.flows.cli import main
from retrain_guard.schemas.params import DataParams
from retrain_guard.tasks import dask_slices, memory
from retrain_guard.tasks.dask_engine import read_dask
from tests.flows.test_dask_engine import _without_engine
from tests.flows.test_golden_reports import _mask_paths, _normalise
from tests.real_tables import CORPUS, RealTable, materialise

_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Write every corpus table as Parquet once, with connections off this machine refused."""
    directory = tmp_path_factory.mktemp("real-tables")
    original = socket.socket.connect

    def local_only(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL_HOSTS:
            raise OSError(f"the corpus must load offline; tried to reach {address!r}")
        return original(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", local_only)
        for table in CORPUS:
            materialise(table, directory)
    yield directory


@contextmanager
def prefect_console_captured() -> Iterator[None]:
    """Send what Prefect's console handlers print to the current (captured) stderr.

    They keep the stream they were made with, which belongs to whichever test ran the first
    flow; pointing them at this test's stderr lets the test see any traceback they print.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {
        id(handler): handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, PrefectConsoleHandler)
    }
    with pytest.MonkeyPatch.context() as patch:
        for handler in handlers.values():
            patch.setattr(handler, "stream", sys.stderr)
            patch.setattr(handler.console, "file", sys.stderr)
        yield


def test_the_corpus_is_large_and_its_names_unique() -> None:
    names = [table.name for table in CORPUS]
    assert len(names) >= 8
    assert len(set(names)) == len(names)
    assert any(table.label_time for table in CORPUS)


@pytest.mark.parametrize("table", CORPUS, ids=lambda t: t.name)
def test_each_table_is_a_two_class_table_with_its_roles(table: RealTable, corpus_dir: Path) -> None:
    import pandas as pd

    frame = pd.read_parquet(materialise(table, corpus_dir))
    assert frame[table.label].nunique(dropna=True) == 2
    assert int(frame[table.label].isna().sum()) == table.unlabelled_rows
    roles = [table.label_time, table.id_column, *table.drop]
    assert [c for c in roles if c and c not in frame.columns] == []
    assert frame.columns.is_unique


def _verdict(report: dict[str, Any]) -> str:
    failure = report.get("failure") or {}
    return f"{report.get('status')} {failure.get('code')}: {failure.get('summary')}"


PandasRuns = dict[tuple[str, str], tuple[int, dict[str, Any]]]


@pytest.fixture(scope="session")
def pandas_runs() -> PandasRuns:
    """Each table's pandas-engine run (exit code, report without what names the engine), as
    the documented-verdict test made it: the Dask engine's test compares with it rather
    than running the pandas engine again (it does when run alone)."""
    return {}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("table", CORPUS, ids=lambda t: t.name)
def test_real_table_gets_its_documented_verdict(
    table: RealTable,
    command: str,
    corpus_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    pandas_runs: PandasRuns,
) -> None:
    report_path = tmp_path / "report.json"
    expected = table.verdict(command)
    with caplog.at_level(logging.INFO), prefect_console_captured():
        code = main(
            table.argv(command, materialise(table, corpus_dir), tmp_path / "out", report_path)
        )
    printed = capsys.readouterr()
    assert code != 3, printed.err
    assert "Traceback" not in printed.out + printed.err
    logged = [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert logged == [], f"a traceback in the log: {logged[0][:500]}"

    report = json.loads(report_path.read_text())
    pandas_runs[table.name, command] = (code, _engine_free(report_path))
    failure = (report.get("failure") or {}).get("code")
    assert (code, failure) == (expected.exit_code, expected.failure), (
        f"{table.name} {command}: expected exit {expected.exit_code} "
        f"({expected.failure or 'passed'}) because {expected.reason}; got exit {code}, "
        f"{_verdict(report)}"
    )
    false_alarms = {
        check["code"]: check["summary"]
        for check in report["checks"]
        if check["status"] == "fail" and check["code"] not in expected.fails
    }
    assert false_alarms == {}, f"{table.name} {command}: checks that must not fail"
    unlabelled = [c for c in report["checks"] if c["code"] == "unlabelled_rows"]
    if table.unlabelled_rows:
        (check,) = unlabelled
        assert check["status"] == "warn" and check["metrics"]["rows"] == table.unlabelled_rows
    else:
        assert all(c["status"] != "warn" for c in unlabelled)


def _engine_free(report_path: Path) -> dict[str, Any]:
    """The report with what differs between runs masked and what names the engine left out."""
    report = json.loads(report_path.read_text())
    _mask_paths(report)
    normalised: dict[str, Any] = _normalise(report, str(report_path.parent))
    return _without_engine(normalised)


def _report_of(argv: list[str], report_path: Path) -> tuple[int, dict[str, Any]]:
    return main(argv), _engine_free(report_path)


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("table", CORPUS, ids=lambda t: t.name)
def test_real_table_gets_the_same_report_on_the_dask_engine(
    table: RealTable,
    command: str,
    corpus_dir: Path,
    dask_address: str,
    tmp_path: Path,
    pandas_runs: PandasRuns,
) -> None:
    import numpy as np
    import pandas as pd

    path = materialise(table, corpus_dir)
    parts = tmp_path / "parts"
    parts.mkdir()
    frame = pd.read_parquet(path)
    for number, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(parts / f"part-{number}.parquet", index=False)
    config = tmp_path / "dask.json"
    config.write_text(json.dumps({"compute": {"engine": "dask", "dask_address": dask_address}}))
    report = tmp_path / "dask" / "report.json"
    argv = table.argv(command, parts, report.parent / "out", report)
    with pytest.MonkeyPatch.context() as patch:
        if command == "run":  # each file's row group read as about three slices
            first = pq.ParquetFile(parts / "part-0.parquet").metadata
            patch.setattr(dask_slices, "SLICE_BYTES", memory.parquet_bytes(first) // 3)
            source = DataParams(path=str(parts), label=table.label)
            assert read_dask(source).npartitions > 3
        dask_code, dask_report = _report_of([*argv, "--config", str(config)], report)
    if (table.name, command) not in pandas_runs:
        report = tmp_path / "pandas" / "report.json"
        argv = table.argv(command, path, report.parent / "out", report)
        pandas_runs[table.name, command] = _report_of(argv, report)
    pandas_code, pandas_report = pandas_runs[table.name, command]
    assert (dask_code, pandas_code) == (table.verdict(command).exit_code,) * 2
    assert dask_report == pandas_report
