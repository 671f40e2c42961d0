"""Exact order statistics of a stored column, found a partition at a time: `ranked`.

A rank's value (the k-th smallest, from 0) is found by counting the column's values in
RANGES equal ranges between the lowest and the highest, partition by partition, and
narrowing to the range that holds the rank, until at most GATHER_ROWS values (or one
value) are left in it: those are gathered and sorted. The counts are steps that run where
the partitions are (tasks/part_map.py); the flow holds counts and the few values gathered,
never the column. The time split's cut (tasks/split.py) and the label-time bins
(tasks/leakage/time_bins.py) take their quantiles from here. `quantiles` gives what
`np.quantile` (linear) gives of the whole column, from the two order statistics around
each quantile.

The values are int64, as a step `values(chunk, *arguments)` returns them for a partition
(a datetime column's present values in one unit, viewed as int64).
"""

from collections.abc import Callable, Sequence

import numpy as np

from retrain_guard.tasks.part_map import map_parts
from retrain_guard.tasks.stored_table import Frame

RANGES = 4096
GATHER_ROWS = 200_000

Values = Callable[..., np.ndarray]


def bounds(
    frame: Frame, columns: Sequence[str], values: Values, arguments: tuple[object, ...]
) -> tuple[int, int, int]:
    """Return how many values there are, the lowest and the highest (0 and 0 without any)."""
    found = [b for b in map_parts(frame, columns, _bounds, values, arguments) if b[0]]
    if not found:
        return 0, 0, 0
    return sum(b[0] for b in found), min(b[1] for b in found), max(b[2] for b in found)


def _bounds(chunk: object, values: Values, arguments: tuple[object, ...]) -> tuple[int, int, int]:
    held = values(chunk, *arguments)
    return (len(held), int(held.min()), int(held.max())) if len(held) else (0, 0, 0)


def ranked(
    frame: Frame,
    columns: Sequence[str],
    values: Values,
    arguments: tuple[object, ...],
    ranks: Sequence[int],
    found: tuple[int, int, int],
) -> list[int]:
    """Return the value of each rank (from 0) among the `values` of every partition;
    `found` is their `bounds`."""
    count, lowest, highest = found
    rank = [int(r) for r in ranks]
    lo, hi, inside = [lowest] * len(rank), [highest] * len(rank), [count] * len(rank)
    while narrow := [i for i in range(len(rank)) if inside[i] > GATHER_ROWS and hi[i] > lo[i]]:
        # Ranks in the same range (all of them at first) share its counts.
        widths = {(lo[i], hi[i]): -(-(hi[i] - lo[i] + 1) // RANGES) for i in narrow}
        ranges = [(low, high, width) for (low, high), width in widths.items()]
        counts = np.sum(map_parts(frame, columns, _range_counts, values, arguments, ranges), axis=0)
        counted = dict(zip(widths, counts, strict=True))
        for i in narrow:
            width, counts_i = widths[lo[i], hi[i]], counted[lo[i], hi[i]]
            ends = np.cumsum(counts_i)
            number = int(np.searchsorted(ends, rank[i], side="right"))
            rank[i] -= int(ends[number - 1]) if number else 0
            lo[i], hi[i] = lo[i] + number * width, min(hi[i], lo[i] + (number + 1) * width - 1)
            inside[i] = int(counts_i[number])
    result = list(lo)
    gather = list(dict.fromkeys((lo[i], hi[i]) for i in range(len(rank)) if hi[i] > lo[i]))
    if gather:
        parts = map_parts(frame, columns, _within, values, arguments, gather)
        held = {
            ends: np.sort(np.concatenate([part[number] for part in parts]))
            for number, ends in enumerate(gather)
        }
        for i in range(len(rank)):
            if hi[i] > lo[i]:
                result[i] = int(held[lo[i], hi[i]][rank[i]])
    return result


def _range_counts(
    chunk: object, values: Values, arguments: tuple[object, ...], ranges: list[tuple[int, int, int]]
) -> np.ndarray:
    """Count the chunk's values in each of RANGES ranges of `width` from `lo` (to `hi`),
    for each (lo, hi, width)."""
    held = values(chunk, *arguments)
    counts = np.zeros((len(ranges), RANGES), dtype=np.int64)
    for row, (lo, hi, width) in enumerate(ranges):
        inside = held[(held >= lo) & (held <= hi)]
        # As unsigned offsets: hi - lo may exceed the int64 range (dates 1677 to 2262 in ns).
        offsets = (inside - np.int64(lo)).view("uint64") // np.uint64(width)
        counts[row] = np.bincount(offsets.astype(np.intp), minlength=RANGES)
    return counts


def _within(
    chunk: object, values: Values, arguments: tuple[object, ...], ranges: list[tuple[int, int]]
) -> list[np.ndarray]:
    held = values(chunk, *arguments)
    return [held[(held >= lo) & (held <= hi)] for lo, hi in ranges]


def quantiles(
    frame: Frame,
    columns: Sequence[str],
    values: Values,
    arguments: tuple[object, ...],
    q: np.ndarray,
    found: tuple[int, int, int],
) -> np.ndarray:
    """Return `np.quantile` (linear) of the values as float64, at `q`, bit for bit: the
    same virtual index, the same two order statistics around it, the same interpolation."""
    n = found[0]
    virtual = (n - 1) * q  # numpy's virtual index for "linear"
    previous = np.floor(virtual)
    following = previous + 1
    above, below = virtual >= n - 1, virtual < 0
    previous[above] = following[above] = -1
    previous[below] = following[below] = 0
    gamma = virtual - previous
    lower = np.where(previous < 0, n - 1, previous).astype(np.int64)
    upper = np.where(following < 0, n - 1, following).astype(np.int64)
    needed = sorted(set(lower.tolist()) | set(upper.tolist()))
    at = dict(zip(needed, ranked(frame, columns, values, arguments, needed, found), strict=True))
    a = np.array([at[i] for i in lower.tolist()], dtype=np.int64).astype(np.float64)
    b = np.array([at[i] for i in upper.tolist()], dtype=np.int64).astype(np.float64)
    diff = b - a
    result = a + diff * gamma
    np.subtract(b, diff * (1 - gamma), out=result, where=gamma >= 0.5)
    return result
