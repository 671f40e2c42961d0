"""Row positions held by the checks: found, searched and compared without whole-array
temporaries, in 32 bits where they fit (at 20M rows each 64-bit temporary is 160 MB)."""

import numpy as np

# Positions handled at a time.
BLOCK = 1_000_000


def position_index(positions: np.ndarray, value: int) -> int:
    """`np.searchsorted(positions, value)` with the value in the positions' own integer
    type: numpy converts the whole array to a Python int's int64 first (at 20M 32-bit
    positions, 32 ms and 160 MB a call)."""
    if value > np.iinfo(positions.dtype).max:
        return len(positions)
    return int(np.searchsorted(positions, positions.dtype.type(max(value, 0))))


def increasing(rows: np.ndarray) -> bool:
    """Whether the positions strictly increase; compared a million at a time, without a
    difference of every pair (at 20M majority rows, 160 MB and a mask)."""
    last = len(rows) - 1
    for start in range(0, max(last, 0), BLOCK):
        stop = min(start + BLOCK, last)
        if not np.all(rows[start + 1 : stop + 1] > rows[start:stop]):
            return False
    return True


def row_positions(mask: np.ndarray) -> np.ndarray:
    """Return `np.flatnonzero(mask)`, as 32-bit positions where they fit (half the bytes:
    at 20M majority rows, 80 MB less), found a block of the mask at a time."""
    if len(mask) > np.iinfo(np.int32).max:
        return np.flatnonzero(mask)
    positions = np.empty(int(np.count_nonzero(mask)), dtype=np.int32)
    done = 0
    for start in range(0, len(mask), BLOCK):
        found = np.flatnonzero(mask[start : start + BLOCK]) + start
        positions[done : done + len(found)] = found
        done += len(found)
    return positions
