"""Whole rows as hashes: what split_sharing.py and resampling.py compare rows by."""

import numpy as np
import pandas as pd

from retrain_guard.tasks.stored_table import Frame, StoredTable, take_rows


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


def repeated(values: np.ndarray) -> np.ndarray:
    """Return whether each value occurs more than once among `values` (keep=False).

    By sorting: at 20M key hashes a pandas Index's lookup table and `duplicated`'s hash
    table took about 1 GiB more than the values (benchmarks/RESULTS.md, issue 13). Without
    repeats (unique keys, the usual case) one sort settles it; a few repeated values are
    looked up by binary search, many through the sorting permutation.
    """
    ordered = np.sort(values)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.zeros(len(values), dtype=bool)
    first = same.copy()  # the first repeat of each repeated value
    first[1:] &= ~same[:-1]
    if np.count_nonzero(first) <= _SEARCHED_MOST:
        twice = ordered[1:][first]  # each repeated value once, in order
        at = np.searchsorted(twice, values)
        np.minimum(at, len(twice) - 1, out=at)
        return np.asarray(twice[at] == values)
    del ordered, same, first
    order = np.argsort(values)
    ordered = values[order]
    same = ordered[1:] == ordered[:-1]
    del ordered
    in_run = np.zeros(len(values), dtype=bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    found = np.empty(len(values), dtype=bool)
    found[order] = in_run
    return found


def hashed_rows(frame: Frame, rows: np.ndarray, columns: list[str]) -> np.ndarray:
    """Return row_hashes of `columns` at `rows`. A stored table is hashed one column at a
    time and the columns' hashes combined (equal rows, equal hashes, within the table)."""
    if not isinstance(frame, StoredTable):
        return row_hashes(take_rows(frame, rows, columns))
    combined = _unmixed(len(rows))
    for position, values in enumerate(frame.columns_at(rows, columns)):
        _mix(combined, row_hashes(values.to_frame()), position)
    return combined


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
        _mix(combined, column_hashes(frame, rows, column), position)
        still = repeated(combined)
        if not still.any():
            return 0
        if not still.all():
            rows, combined = rows[still], combined[still]
    return len(combined) - distinct_count(combined)


def column_hashes(frame: Frame, rows: np.ndarray, column: str) -> np.ndarray:
    """Return row_hashes of one column at `rows`; a stored table's, at increasing rows, are
    hashed a partition at a time, without taking the column's values at all the rows first."""
    if not isinstance(frame, StoredTable):
        return row_hashes(frame[column].iloc[rows].to_frame())
    if np.any(np.diff(rows) <= 0):
        return row_hashes(frame.take(rows, [column]))
    hashes = np.empty(len(rows), dtype="uint64")
    start = 0
    for chunk in frame.rows_at(rows, [column]).chunks([column]):
        hashes[start : start + len(chunk)] = row_hashes(chunk)
        start += len(chunk)
    return hashes


def distinct_count(values: np.ndarray) -> int:
    """Return how many distinct values there are, by sorting (at 20M hashes numpy's hashing
    `unique` took several times a sort's time)."""
    if not len(values):
        return 0
    ordered = np.sort(values)
    return 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))
