"""Pair counts of a ranking without ranking the whole column (order_leakage's scores).

A ROC-AUC counts pairs of a positive and a negative row: the positive ranked above, or tied
(half a pair). No row's rank is needed for that: the smaller class's values sorted, and
each row of the larger class searched among them a partition at a time, give the counts
that `count_pairs` makes from the whole column, overall and within each label-time bin.
The row order needs no values at all: a row's position is its score. Text is compared as
its UTF-8 bytes, as pyarrow sorts it, through fixed-width byte strings; text holding a NUL
byte (which numpy's byte strings drop at the end) is left to the whole-column rank.
"""

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.types import is_datetime64_any_dtype

from retrain_guard.tasks.dates import naive_stamps, to_days
from retrain_guard.tasks.leakage.auc import (
    PairCounts,
    folded_auc,
    numeric_view,
    placed_pairs,
    pooled_auc,
)
from retrain_guard.tasks.part_map import Aligned, iter_parts
from retrain_guard.tasks.stored_table import Frame, StoredTable, dtype_of, take_rows

# Bytes of padded text keys allowed whatever the text's own size.
_PADDED_FREE = 64 << 20


@dataclass(frozen=True)
class RankCounts:
    """The pairs of a ranking: over all rows, and within each label-time bin (or None)."""

    overall: PairCounts
    within: list[PairCounts] | None

    def auc(self) -> tuple[float, str]:
        """The folded ROC-AUC and where missing values sit, as `auc_with_missing`."""
        return folded_auc(self.overall)

    def auc_within_time(self, missing_side: str) -> float | None:
        """The folded ROC-AUC of pairs in the same bin, missing values placed at
        `missing_side` (as `stratified_auc` of `ranked_scores`)."""
        if self.within is None:
            return None
        return pooled_auc(placed_pairs(c.wins, c, missing_side) for c in self.within)


def row_order_counts(positive: np.ndarray, bins: list[np.ndarray] | None) -> RankCounts:
    """The pairs of the row order (each row scored by its position)."""
    within = None if bins is None else [_position_pairs(positive[rows]) for rows in bins]
    return RankCounts(_position_pairs(positive), within)


def _position_pairs(positive: np.ndarray) -> PairCounts:
    """Pairs with the positive row later, from the smaller class's positions alone: the
    i-th positive (from 0) at position p has p - i negative rows before it."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if n_pos <= n_neg:
        at = np.flatnonzero(positive)
        wins = int(at.sum(dtype="int64")) - n_pos * (n_pos - 1) // 2
    else:
        at = np.flatnonzero(~positive)
        wins = n_pos * n_neg - (int(at.sum(dtype="int64")) - n_neg * (n_neg - 1) // 2)
    return PairCounts(float(wins), n_pos, n_neg, 0, 0)


def value_rank_counts(
    frame: Frame, column: str, positive: np.ndarray, bins: list[np.ndarray] | None
) -> RankCounts | None:
    """The pairs of a column's values as scores (numbers and dates as `numeric_view` reads
    them, anything else as text), reading the smaller class's rows, then the rest a
    partition at a time; None for text holding a NUL byte."""
    n_pos = int(np.count_nonzero(positive))
    small_positive = n_pos <= len(positive) - n_pos
    small_mask = positive if small_positive else ~positive
    small_rows = np.flatnonzero(small_mask)
    unit = _one_unit(frame, column)
    if isinstance(frame, StoredTable):
        smaller = take_rows(frame, small_rows, [column])[column]
    else:  # the one column, not every column at those rows
        smaller = frame[column].iloc[small_rows]
    keyed = _keys(smaller, unit)
    del smaller
    if keyed is None:
        return None
    bin_of = None if bins is None else _bin_numbers(bins, len(positive))
    n_bins = 0 if bins is None else len(bins)
    small = _SortedClass(*keyed, None if bin_of is None else bin_of[small_rows], n_bins)
    del small_rows
    # Each partition's larger-class rows searched among the smaller class's keys (on the
    # cluster where it can, tasks/part_map.py); the flow adds the sums up.
    total = np.zeros((n_bins + 1, 4), dtype=np.int64)
    for sums in iter_parts(
        frame,
        [column],
        _part_sums,
        column,
        unit,
        small,
        Aligned(small_mask),
        None if bin_of is None else Aligned(bin_of),
    ):
        if sums is None:
            return None
        total += sums
    return _counts(total, small, small_positive)


def _part_sums(
    chunk: pd.DataFrame,
    column: str,
    unit: str | None,
    small: "_SortedClass",
    small_mask: np.ndarray,
    bin_of: np.ndarray | None,
) -> np.ndarray | None:
    """A partition's sums over its larger-class rows (`_searched`), overall and per bin;
    None for text that cannot be keyed, or whose padding to the smaller class's width would
    exceed text_keys' bound (a long value in one part only)."""
    rows = ~small_mask
    keyed = _keys(chunk[column][rows], unit)
    if keyed is None:
        return None
    keys, missing = keyed
    if keys.dtype.kind == "S":
        width = max(keys.dtype.itemsize, small.keys.dtype.itemsize)
        padded = width * (len(keys) + len(small.keys))
        if padded > 4 * (_text_bytes(keys) + small.text_bytes) + _PADDED_FREE:
            return None
        small = small.widened(width)
        keys = keys.astype(small.keys.dtype, copy=False)
    sums = np.zeros((len(small.bounds), 4), dtype=np.int64)  # row 0: overall
    sums[0] = _searched(small.keys, keys, missing)
    if bin_of is None:
        return sums
    bin_of = bin_of[rows]
    present_bins = bin_of[~missing]
    for number in np.flatnonzero(np.bincount(bin_of)):
        segment, _ = small.segment(int(number))
        sums[number + 1] = _searched(
            segment, keys[present_bins == number], missing[bin_of == number]
        )
    return sums


def _bin_numbers(bins: list[np.ndarray], rows: int) -> np.ndarray:
    """Each row's bin number (`bins` covers every row; one byte a row for up to 255 bins)."""
    numbers = np.zeros(rows, dtype=np.min_scalar_type(max(len(bins) - 1, 0)))
    for number, members in enumerate(bins):
        numbers[members] = number
    return numbers


def _one_unit(frame: Frame, column: str) -> str | None:
    """The datetime unit of the whole column's days (`to_days`): microseconds when any
    part needs them, so that equal times key alike in every part; None for other kinds."""
    if not is_datetime64_any_dtype(dtype_of(frame, column)):
        return None
    return "us" if any(iter_parts(frame, [column], _needs_micro, column)) else "ns"


def _needs_micro(chunk: pd.DataFrame, column: str) -> bool:
    return bool(naive_stamps(chunk[column]).dtype == "M8[us]")


def _keys(values: pd.Series, unit: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the values' sort keys with missing values left out, and the missing mask."""
    numbers = numeric_view(values) if unit is None else to_days(values, unit)
    if numbers is not None:
        missing = np.isnan(numbers)
        return (numbers[~missing] if missing.any() else numbers), missing
    return text_keys(values)


def text_keys(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the present values' UTF-8 bytes as fixed-width byte strings (sorting as
    pyarrow sorts the text) and the missing mask. None when a value holds a NUL byte, or
    when padding every value to the longest would take more than four times the text's
    bytes (and _PADDED_FREE beyond): one long value among short ones."""
    text = pa.array(values.astype("string[pyarrow]"))
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    missing = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    present = text.drop_null().cast(pa.large_string())
    offsets = np.frombuffer(present.buffers()[1], dtype=np.int64)
    offsets = offsets[present.offset : present.offset + len(present) + 1]
    data_buffer = present.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0)
    data = data[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    shortest, width = int(lengths.min(initial=0)), max(int(lengths.max(initial=0)), 1)
    if np.any(data == 0) or width * len(present) > 4 * len(data) + _PADDED_FREE:
        return None
    starts = offsets[:-1] - offsets[0]
    keys = np.zeros((len(present), width), dtype=np.uint8)
    # One byte position at a time: every value holds the first `shortest` of them.
    for position in range(width):
        if position < shortest:
            keys[:, position] = data[starts + position]
        else:
            longer = np.flatnonzero(lengths > position)
            keys[longer, position] = data[starts[longer] + position]
    return keys.view(f"S{width}").ravel(), missing


class _SortedClass:
    """The smaller class's present keys sorted, overall and by (bin, key)."""

    def __init__(
        self, keys: np.ndarray, missing: np.ndarray, bin_of: np.ndarray | None, n_bins: int
    ) -> None:
        self.text_bytes = _text_bytes(keys)
        self.keys = np.sort(keys)
        self.missing = int(np.count_nonzero(missing))
        self.by_bin: np.ndarray | None = None
        self.bounds = np.zeros(n_bins + 1, dtype=np.intp)
        self.missing_by_bin = np.zeros(n_bins, dtype=np.intp)
        if bin_of is not None:
            present_bins = bin_of[~missing]
            order = np.lexsort((keys, present_bins))
            self.by_bin = keys[order]
            self.bounds = np.searchsorted(present_bins[order], np.arange(n_bins + 1))
            self.missing_by_bin = np.bincount(bin_of[missing], minlength=n_bins)

    def widened(self, width: int) -> "_SortedClass":
        """These keys at least `width` bytes wide (text longer than any so far): a copy when
        they are narrower, else these."""
        if self.keys.dtype.kind != "S" or self.keys.dtype.itemsize >= width:
            return self
        wide = copy.copy(self)
        wide.keys = self.keys.astype(f"S{width}")
        if self.by_bin is not None:
            wide.by_bin = self.by_bin.astype(f"S{width}")
        return wide

    def segment(self, number: int) -> tuple[np.ndarray, int]:
        """Bin `number`'s sorted keys and its missing count."""
        ordered = self.keys[:0] if self.by_bin is None else self.by_bin
        lo, hi = self.bounds[number], self.bounds[number + 1]
        return ordered[lo:hi], int(self.missing_by_bin[number])


def _counts(sums: np.ndarray, small: _SortedClass, small_positive: bool) -> RankCounts:
    """The pair counts from the larger class's summed `_searched` sums (row 0 overall, then
    a row per bin) against the smaller class."""
    overall = _pairs(sums[0], len(small.keys), small.missing, small_positive)
    if small.by_bin is None:
        return RankCounts(overall, None)
    within = []
    for number in range(len(sums) - 1):
        segment, missing = small.segment(number)
        within.append(_pairs(sums[number + 1], len(segment), missing, small_positive))
    return RankCounts(overall, within)


def _text_bytes(keys: np.ndarray) -> int:
    """The UTF-8 bytes of text keys (their lengths: no key holds a NUL); 0 for numbers."""
    return int(np.strings.str_len(keys).sum()) if keys.dtype.kind == "S" else 0


def _searched(ordered: np.ndarray, keys: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """[keys of `ordered` below each key summed, at most each key summed, keys, missing]."""
    below = np.searchsorted(ordered, keys, "left").sum(dtype="int64")
    upto = np.searchsorted(ordered, keys, "right").sum(dtype="int64")
    return np.array([below, upto, len(keys), np.count_nonzero(missing)], dtype=np.int64)


def _pairs(
    sums: np.ndarray, small_present: int, small_missing: int, small_positive: bool
) -> PairCounts:
    """`count_pairs`' counts from the larger class's sums against the smaller class."""
    below, upto, large_present, large_missing = (int(v) for v in sums)
    ties = 0.5 * (upto - below)
    if small_positive:
        # Positives above a negative: those past the negative's `upto`.
        wins = float(small_present * large_present - upto) + ties
        return PairCounts(wins, small_present, large_present, small_missing, large_missing)
    wins = float(below) + ties
    return PairCounts(wins, large_present, small_present, large_missing, small_missing)
