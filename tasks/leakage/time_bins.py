"""Label-time quantile bins: the rows of each period, for the AUC within time (auc.py).

A stored table's label times are read a partition at a time, three times (their unit and
count, their floats, each row's bin): only the floats of the present times are held whole,
and the quantiles partition them in place.
"""

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from retrain_guard.tasks.dates import naive_stamps
from retrain_guard.tasks.stored_table import CHUNK_ROWS, Frame, StoredTable, column_chunks

TIME_BINS = 20


def time_bins(label_times: pd.Series, n_bins: int = TIME_BINS) -> list[np.ndarray] | None:
    """Return the row positions of each label-time quantile bin, or None without times.

    Rows without a label time share a bin of their own; each row's bin number is a byte.
    """
    return _binned(lambda: iter([label_times]), len(label_times), n_bins)


def column_time_bins(frame: Frame, column: str, n_bins: int = TIME_BINS) -> list[np.ndarray] | None:
    """`time_bins` of a frame's column; a stored table's a partition at a time."""
    if not isinstance(frame, StoredTable):
        return time_bins(frame[column], n_bins)

    return _binned(lambda: column_chunks(frame, column), len(frame), n_bins)


def _binned(
    parts: Callable[[], Iterator[pd.Series]], rows: int, n_bins: int
) -> list[np.ndarray] | None:
    # The whole column's unit (naive_stamps: microseconds when any time needs them).
    unit, n_present = "ns", 0
    for part in parts():
        stamps = naive_stamps(part)
        unit = "us" if stamps.dtype == "M8[us]" else unit
        n_present += int(np.count_nonzero(~np.isnat(stamps)))
    if n_present < 2:
        return None
    as_float = np.empty(n_present, dtype="float64")
    done = 0
    for part in parts():
        stamps = naive_stamps(part, unit)
        present = stamps[~np.isnat(stamps)]
        as_float[done : done + len(present)] = present.view("int64")
        done += len(present)
    quantiles = np.linspace(0, 1, n_bins + 1)[1:-1]
    edges = np.unique(np.quantile(as_float, quantiles, overwrite_input=True))
    del as_float
    numbers = np.empty(rows, dtype=np.min_scalar_type(len(edges) + 1))
    start = 0
    for part in parts():
        for block in range(0, len(part), CHUNK_ROWS):
            stamps = naive_stamps(part.iloc[block : block + CHUNK_ROWS], unit)
            found = np.searchsorted(edges, stamps.view("int64").astype("float64"), side="right")
            found[np.isnat(stamps)] = len(edges) + 1  # rows without a time: a bin of their own
            numbers[start : start + len(stamps)] = found
            start += len(stamps)
    # The checks hold the positions all along: 32 bits each where they fit.
    small = np.int32 if rows <= np.iinfo(np.int32).max else np.int64
    bins = (np.flatnonzero(numbers == number) for number in range(len(edges) + 2))
    return [members.astype(small) for members in bins if len(members)]
