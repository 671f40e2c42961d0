"""Order statistics of a stored column counted a partition at a time (tasks/part_ranks.py):
each rank's value is the sorted column's, and the quantiles are `np.quantile`'s, bit for bit."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_guard.tasks import part_ranks
from retrain_guard.tasks.part_ranks import bounds, quantiles, ranked
from tests.unit.test_stored_table import _stored


def _values(chunk: pd.DataFrame, column: str) -> np.ndarray:
    held = chunk[column].dropna()
    return held.to_numpy(dtype=np.int64)


def _columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    extreme = np.iinfo(np.int64)
    return {
        "spread": rng.integers(-(10**17), 10**17, n),
        "ties": rng.integers(0, 5, n) * 10**12,
        "wide": rng.integers(extreme.min + 1, extreme.max, n, dtype=np.int64),
        "one": np.full(n, 42),
    }


@pytest.mark.parametrize("gathered", [part_ranks.GATHER_ROWS, 9])
def test_ranks_and_quantiles_equal_the_whole_columns(
    tmp_path: Path, gathered: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(part_ranks, "GATHER_ROWS", gathered)
    monkeypatch.setattr(part_ranks, "RANGES", 8)
    rng = np.random.default_rng(gathered)
    n = 1000
    frame = pd.DataFrame(_columns(rng, n)).astype("Int64")
    frame = frame.mask(rng.random(frame.shape) < 0.1)  # missing values are not counted
    table = _stored(frame, 6, tmp_path)
    q = np.linspace(0, 1, 21)[1:-1]
    for column in frame.columns:
        whole = np.sort(frame[column].dropna().to_numpy(dtype=np.int64))
        found = bounds(table, [column], _values, (column,))
        assert found == (len(whole), int(whole[0]), int(whole[-1]))
        ranks = [0, 1, len(whole) // 3, len(whole) - 2, len(whole) - 1]
        assert ranked(table, [column], _values, (column,), ranks, found) == whole[ranks].tolist()
        expected = np.quantile(whole.astype(np.float64), q)
        got = quantiles(table, [column], _values, (column,), q, found)
        assert got.tobytes() == expected.tobytes(), column


def test_quantiles_of_few_values_equal_numpys(tmp_path: Path) -> None:
    for n in (2, 3, 7):
        frame = pd.DataFrame({"v": np.arange(n, dtype=np.int64)[::-1] * 3})
        where = tmp_path / str(n)
        where.mkdir()
        table = _stored(frame, 2, where)
        q = np.array([0.0, 0.05, 0.5, 0.95, 1.0])
        found = bounds(table, ["v"], _values, ("v",))
        got = quantiles(table, ["v"], _values, ("v",), q, found)
        assert got.tobytes() == np.quantile(frame["v"].to_numpy(np.float64), q).tobytes()
