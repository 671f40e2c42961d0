"""Whole rows as hashes: what split_sharing.py and resampling.py compare rows by."""

from collections.abc import Iterator

import numpy as np
import pandas as pd

from retrain_guard.tasks.part_map import iter_parts
from retrain_guard.tasks.positions import increasing
from retrain_guard.tasks.stored_table import CHUNK_ROWS, Frame, StoredTable, take_rows


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Return one 64-bit hash per row of the frame (equal rows, equal hashes).

    Values pandas cannot hash (lists, dicts, bytes) are hashed by their text; such
    columns are left out of the features before, this keeps the hash total anyway.
    """
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False)
    except (TypeError, UnicodeDecodeError):
        hashed = pd.util.hash_pandas_object(frame.map(_hashable_text), index=False)
    return np.asarray(hashed, dtype="uint64")


def _hashable_text(value: object) -> object:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    if isinstance(value, list | tuple | dict | set | bytes | bytearray):
        return repr(value)
    return value


# Repeated values looked up by binary search at most: beyond, each value's place in the
# sorted order is kept instead (searching 20M values among 5M repeated ones took 28 s).
_SEARCHED_MOST = 4096


# Above this many values, `repeated` and `distinct_count` sort an eighth of the 64-bit range
# at a time: equal values share their top bits, and the sorted copy is an eighth as large.
_BUCKETED_ABOVE = 2 * CHUNK_ROWS
_BUCKET_SHIFT = np.uint64(61)


def _buckets(values: np.ndarray) -> Iterator[np.ndarray]:
    """Yield the positions of the values in each eighth of the 64-bit range (hashes spread
    evenly over them; other values may gather in one, which is still right)."""
    top = np.empty(len(values), dtype=np.uint8)
    for start in range(0, len(values), CHUNK_ROWS):
        top[start : start + CHUNK_ROWS] = values[start : start + CHUNK_ROWS] >> _BUCKET_SHIFT
    for bucket in range(8):
        yield np.flatnonzero(top == bucket)


def repeated(values: np.ndarray) -> np.ndarray:
    """Return whether each value occurs more than once among `values` (keep=False).

    By sorting: at 20M key hashes a pandas Index's lookup table and `duplicated`'s hash
    table took about 1 GiB more than the values (benchmarks/RESULTS.md, issue 13). Without
    repeats (unique keys, the usual case) one sort settles it; a few repeated values are
    looked up by binary search, many through the sorting permutation. Many values are
    settled an eighth of the 64-bit range at a time.
    """
    if len(values) <= _BUCKETED_ABOVE or values.dtype != np.uint64:
        return _repeated_sorted(values)
    found = np.empty(len(values), dtype=bool)
    for members in _buckets(values):
        found[members] = _repeated_sorted(values[members])
    return found


def _repeated_sorted(values: np.ndarray) -> np.ndarray:
    """`repeated` by sorting all the values at once."""
    ordered = np.sort(values)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.zeros(len(values), dtype=bool)
    first = same.copy()  # the first repeat of each repeated value
    first[1:] &= ~same[:-1]
    found = np.empty(len(values), dtype=bool)
    if np.count_nonzero(first) <= _SEARCHED_MOST:
        twice = ordered[1:][first]  # each repeated value once, in order
        del ordered, same, first
        # A block of values at a time: their places among the repeated ones are not held
        # for every value (at 20M hashes, 160 MB).
        for start in range(0, len(values), CHUNK_ROWS):
            block = values[start : start + CHUNK_ROWS]
            at = np.searchsorted(twice, block)
            np.minimum(at, len(twice) - 1, out=at)
            found[start : start + CHUNK_ROWS] = twice[at] == block
        return found
    del ordered, same, first
    order = np.argsort(values)
    # Neighbours in sorted order compared a block at a time, not the sorted values whole.
    in_run = np.zeros(len(values), dtype=bool)
    for start in range(0, len(values) - 1, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(values) - 1)
        ahead = values[order[start : stop + 1]]
        same = ahead[1:] == ahead[:-1]
        in_run[start + 1 : stop + 1] |= same
        in_run[start:stop] |= same
    found[order] = in_run
    return found


def hashed_rows(frame: Frame, rows: np.ndarray, columns: list[str]) -> np.ndarray:
    """Return row_hashes of `columns` at `rows`. A stored table's rows are hashed a
    partition at a time, where the partitions are (tasks/part_map.py), each column's hashes
    folded into the row's (equal rows, equal hashes, within the table): only the hashes
    reach the flow."""
    if not isinstance(frame, StoredTable):
        return row_hashes(take_rows(frame, rows, columns))
    if not increasing(rows):  # each distinct row hashed once, in the table's order
        distinct, back = np.unique(rows, return_inverse=True)
        return hashed_rows(frame, distinct, columns)[back]
    parts = iter_parts(frame.rows_at(rows, columns), columns, _mixed_hashes, list(columns))
    return np.concatenate(list(parts))


def _mixed_hashes(chunk: pd.DataFrame, columns: list[str]) -> np.ndarray:
    combined = _unmixed(len(chunk))
    for position, column in enumerate(columns):
        _mix(combined, row_hashes(chunk[[column]]), position)
    return combined


def column_hashes(frame: Frame, column: str) -> np.ndarray:
    """Return row_hashes of one column at every row; a stored table's hashed a partition at
    a time where the partitions are."""
    if not isinstance(frame, StoredTable):
        return row_hashes(frame[[column]])
    return np.concatenate(list(iter_parts(frame, [column], _hashes_of, column)))


def _unmixed(rows: int) -> np.ndarray:
    """Row hashes before any column is folded in (`_mix`)."""
    return np.full(rows, 0x345678, dtype="uint64")


def _mix(combined: np.ndarray, hashes: np.ndarray, position: int) -> None:
    """Fold the hashes of the column at `position` into the row hashes so far, in place."""
    combined ^= hashes
    combined *= np.uint64(1000003 + 82520 * position)


def hashed_row_pair(
    frame: Frame, first: np.ndarray, second: np.ndarray, columns: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return hashed_rows of two sets of rows, reading each column of a stored table once."""
    both = hashed_rows(frame, np.concatenate([first, second]), columns)
    return both[: len(first)], both[len(first) :]


def key_column(frame: Frame, features: list[str], rows: np.ndarray | None = None) -> str:
    """Return the feature with the most distinct values in a sample: the cheapest filter.

    With `rows`, the sample is taken from those rows of the frame only.
    """
    return by_distinct(frame, features, rows)[0]


def by_distinct(frame: Frame, features: list[str], rows: np.ndarray | None = None) -> list[str]:
    """Return the features, most distinct values in a sample of about 1,000 rows first (of
    `rows` only, when given); ties keep their order."""
    if rows is None:
        head = take_rows(frame, slice(None, None, max(1, len(frame) // 1000)), features)
    else:
        head = take_rows(frame, rows[:: max(1, len(rows) // 1000)], features)
    distinct = {c: head[c].nunique(dropna=False) for c in features}
    return sorted(features, key=lambda c: -distinct[c])


def repeat_count(frame: Frame, rows: np.ndarray, columns: list[str]) -> int:
    """Return how many of `rows` repeat an earlier one of `rows` in `columns` (the rows less
    the distinct rows; a missing value equals a missing value).

    The rows are hashed a column at a time, in the order given (most distinct first, as
    `by_distinct` orders them, narrows fastest). A row whose hash so far is unique among
    them cannot repeat whole, so only the rows still repeating are read for the next column:
    at 20M rows the majority rows whose most distinct value repeats were nearly all of
    them, and hashing every column of them took most of the resampling check's 41 s.
    """
    if not len(rows):
        return 0
    if not columns:
        return len(rows) - 1
    combined = _unmixed(len(rows))
    for position, column in enumerate(columns):
        mix_column(frame, rows, column, combined, position)
        still = repeated(combined)
        if not still.any():
            return 0
        if not still.all():
            # The caller's rows copied once; the hashes (the check's own) kept in place.
            rows, combined = rows[still], _compact(combined, still)
    return len(combined) - distinct_count(combined)


def _compact(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Return values[keep], written over the front of `values` a block at a time (at 20M
    row hashes, no second array of 160 MB)."""
    done = 0
    for start in range(0, len(values), CHUNK_ROWS):
        kept = values[start : start + CHUNK_ROWS][keep[start : start + CHUNK_ROWS]]
        values[done : done + len(kept)] = kept
        done += len(kept)
    return values[:done]


def mix_column(
    frame: Frame, rows: np.ndarray, column: str, combined: np.ndarray, position: int
) -> None:
    """Fold row_hashes of one column at `rows` into `combined` (`_mix`, in place). A stored
    table's, at increasing rows, are hashed and folded a partition at a time: neither the
    column's values nor its hashes are held at all the rows."""
    if not isinstance(frame, StoredTable):
        _mix(combined, row_hashes(frame[column].iloc[rows].to_frame()), position)
        return
    if not increasing(rows):
        _mix(combined, row_hashes(frame.take(rows, [column])), position)
        return
    start = 0  # hashed where the partitions are (tasks/part_map.py), folded here in order
    for hashes in iter_parts(frame.rows_at(rows, [column]), [column], _hashes_of, column):
        _mix(combined[start : start + len(hashes)], hashes, position)
        start += len(hashes)


def _hashes_of(chunk: pd.DataFrame, column: str) -> np.ndarray:
    return row_hashes(chunk[[column]])


def distinct_count(values: np.ndarray) -> int:
    """Return how many distinct values there are, by sorting (at 20M hashes numpy's hashing
    `unique` took several times a sort's time); many, an eighth of the range at a time."""
    if len(values) > _BUCKETED_ABOVE and values.dtype == np.uint64:
        return sum(_distinct_sorted(values[members]) for members in _buckets(values))
    return _distinct_sorted(values)


def _distinct_sorted(values: np.ndarray) -> int:
    if not len(values):
        return 0
    ordered = np.sort(values)
    return 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))
