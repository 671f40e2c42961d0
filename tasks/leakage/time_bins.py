"""Label-time quantile bins: the rows of each period, for the AUC within time (auc.py).

A stored table's label times are read a partition at a time by steps that run where the
partitions are (tasks/part_map.py): their unit, their quantiles (counted, tasks/part_ranks.py,
the same edges as `np.quantile` of the whole column) and each row's bin. The flow holds the
bin numbers (a byte a row) and the bins' positions, never the label times.
"""

import numpy as np
import pandas as pd

from retrain_guard.tasks.dates import naive_stamps
from retrain_guard.tasks.part_map import iter_parts
from retrain_guard.tasks.part_ranks import bounds, quantiles
from retrain_guard.tasks.stored_table import CHUNK_ROWS, Frame, StoredTable

TIME_BINS = 20


def time_bins(label_times: pd.Series, n_bins: int = TIME_BINS) -> list[np.ndarray] | None:
    """Return the row positions of each label-time quantile bin, or None without times.

    Rows without a label time share a bin of their own; each row's bin number is a byte.
    """
    return _binned(label_times, n_bins)


def column_time_bins(frame: Frame, column: str, n_bins: int = TIME_BINS) -> list[np.ndarray] | None:
    """`time_bins` of a frame's column; a stored table's a partition at a time."""
    if not isinstance(frame, StoredTable):
        return time_bins(frame[column], n_bins)
    # The whole column's unit (naive_stamps: microseconds when any time needs them).
    unit = "us" if any(iter_parts(frame, [column], _needs_micro, column)) else "ns"
    arguments = (column, unit)
    found = bounds(frame, [column], _present_values, arguments)
    if found[0] < 2:
        return None
    q = np.linspace(0, 1, n_bins + 1)[1:-1]
    edges = np.unique(quantiles(frame, [column], _present_values, arguments, q, found))
    parts = iter_parts(frame, [column], _bin_numbers, column, unit, edges)
    return _members(np.concatenate(list(parts)), len(edges))


def _needs_micro(chunk: pd.DataFrame, column: str) -> bool:
    return bool(naive_stamps(chunk[column]).dtype == "M8[us]")


def _present_values(chunk: pd.DataFrame, column: str, unit: str) -> np.ndarray:
    stamps = naive_stamps(chunk[column], unit)
    return stamps[~np.isnat(stamps)].view("int64")


def _bin_numbers(chunk: pd.DataFrame, column: str, unit: str, edges: np.ndarray) -> np.ndarray:
    numbers = np.empty(len(chunk), dtype=np.min_scalar_type(len(edges) + 1))
    for block in range(0, len(chunk), CHUNK_ROWS):
        stamps = naive_stamps(chunk[column].iloc[block : block + CHUNK_ROWS], unit)
        found = np.searchsorted(edges, stamps.view("int64").astype("float64"), side="right")
        found[np.isnat(stamps)] = len(edges) + 1  # rows without a time: a bin of their own
        numbers[block : block + len(stamps)] = found
    return numbers


def _binned(label_times: pd.Series, n_bins: int) -> list[np.ndarray] | None:
    stamps = naive_stamps(label_times)  # its unit: microseconds when any time needs them
    present = stamps[~np.isnat(stamps)]
    if len(present) < 2:
        return None
    unit = "us" if stamps.dtype == "M8[us]" else "ns"
    as_float = present.view("int64").astype("float64")
    del stamps, present
    quantiles = np.linspace(0, 1, n_bins + 1)[1:-1]
    edges = np.unique(np.quantile(as_float, quantiles, overwrite_input=True))
    del as_float
    return _members(_bin_numbers(label_times.to_frame("t"), "t", unit, edges), len(edges))


def _members(numbers: np.ndarray, edges: int) -> list[np.ndarray]:
    """The positions of each bin's rows (bins without rows left out); the checks hold them
    all along: 32 bits each where they fit."""
    small = np.int32 if len(numbers) <= np.iinfo(np.int32).max else np.int64
    bins = (np.flatnonzero(numbers == number) for number in range(edges + 2))
    return [members.astype(small) for members in bins if len(members)]
