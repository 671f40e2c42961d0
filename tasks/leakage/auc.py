"""Single-feature ROC-AUC: how well one column alone ranks the classes.

The kernels shared by target_leakage (target.py) and order_leakage (order.py):
- exact pair counting by sorting (`count_pairs`, `auc_pairs`), with missing values ranked
  lowest or highest (`auc_with_missing`);
- an O(n) histogram bound that settles columns far from a threshold (`screen_auc`);
- the AUC within label-time bins (time_bins.py), which tells a column that only follows
  time apart (`stratified_auc`);
- a column's scores: numbers and dates as they are (`numeric_view`), categories by their
  out-of-fold positive rate (`category_codes`, `out_of_fold_rates`);
- whether a column takes one value per class (`is_function_of_label`);
- `FeaturePower`, the measurement both checks judge.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype
from pydantic import JsonValue

from retrain_guard.tasks.dates import to_days
from retrain_guard.tasks.part_map import Aligned, Rows, iter_parts, map_parts
from retrain_guard.tasks.quirks import as_finite
from retrain_guard.tasks.stored_table import DtypeObj, Frame, StoredTable

_OOF_SMOOTHING = 1.0
# Histogram bins of the O(n) AUC screen; pairs sharing a bin bound its error.
_SCREEN_BINS = 4096
# Rows binned at a time by the screen (as numpy's own histogram does).
_BLOCK = 1 << 16


@dataclass(frozen=True)
class PairCounts:
    """Pairs of a positive and a negative row, split by where the missing values are."""

    wins: float  # among rows with values: positive above negative, plus half the ties
    n_pos: int  # positives with a value
    n_neg: int
    m_pos: int  # positives without a value
    m_neg: int


def count_pairs(scores: np.ndarray, positive: np.ndarray) -> PairCounts:
    """Count positive-over-negative pairs of the scores; NaN marks a missing value.

    Sorts the larger class once (NaN last) and binary-searches the smaller one into it:
    numpy's vectorised sort of a contiguous array is several times faster than as many
    random binary searches, which matters when the larger class has a million rows.
    """
    pos, neg = scores[positive], scores[~positive]
    small, large = (neg, pos) if len(pos) > len(neg) else (pos, neg)
    small_missing = np.isnan(small)
    small = small[~small_missing] if small_missing.any() else small
    ordered = np.sort(large)
    valid = int(np.searchsorted(ordered, np.inf, "right"))
    ordered = ordered[:valid]
    below = np.searchsorted(ordered, small, "left")
    upto = np.searchsorted(ordered, small, "right")
    ties = float((upto - below).sum(dtype="int64"))
    m_small, m_large = int(small_missing.sum()), len(large) - valid
    if len(pos) > len(neg):
        # small = negatives: positives above a negative are those past `upto`.
        wins = float(valid * len(small) - upto.sum(dtype="int64")) + 0.5 * ties
        return PairCounts(wins, valid, len(small), m_large, m_small)
    wins = float(below.sum(dtype="int64")) + 0.5 * ties
    return PairCounts(wins, len(small), valid, m_small, m_large)


def auc_pairs(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Return (positive-over-negative pairs + half the ties, all pairs) of NaN-free scores."""
    counts = count_pairs(scores, positive)
    return counts.wins, float(counts.n_pos) * float(counts.n_neg)


def auc_with_missing(values: np.ndarray, positive: np.ndarray) -> tuple[float, str]:
    """Return the folded ROC-AUC with missing values ranked lowest or highest (the larger).

    Returns:
        The AUC in [0.5, 1] and where missing values sit ('low', 'high' or 'none').
    """
    return folded_auc(count_pairs(values, positive))


def folded_auc(c: PairCounts) -> tuple[float, str]:
    """`auc_with_missing` from the pairs counted."""
    if not c.m_pos and not c.m_neg:
        pairs = float(c.n_pos) * float(c.n_neg)
        auc = c.wins / pairs if pairs else 0.5
        return max(auc, 1.0 - auc), "none"
    total = float(c.n_pos + c.m_pos) * float(c.n_neg + c.m_neg)
    if not total:
        return 0.5, "none"
    base = c.wins + 0.5 * c.m_pos * c.m_neg
    low = (base + c.n_pos * c.m_neg) / total
    high = (base + c.m_pos * c.n_neg) / total
    folded_low, folded_high = max(low, 1 - low), max(high, 1 - high)
    return (folded_low, "low") if folded_low >= folded_high else (folded_high, "high")


def placed_pairs(wins: float, c: PairCounts, side: str) -> tuple[float, float]:
    """Return (wins, pairs) over all rows for given wins among valued rows, missing values
    placed at `side` ('low', 'high'; ties among them count half)."""
    total = float(c.n_pos + c.m_pos) * float(c.n_neg + c.m_neg)
    base = wins + 0.5 * c.m_pos * c.m_neg
    if side == "low":
        base += c.n_pos * c.m_neg
    elif side == "high":
        base += c.m_pos * c.n_neg
    return base, total


def _bin_index(values: np.ndarray, low: float, scale: float, n_bins: int) -> np.ndarray:
    """Return each value's histogram bin; missing values go to the extra bin `n_bins`."""
    index = np.subtract(values, low)
    index *= scale
    np.copyto(index, n_bins, where=np.isnan(index))
    # Bin numbers fit 32 bits, and numpy casts floats to int32 several times faster than
    # to int64; bincount widens them cheaply.
    return index.astype(np.int32)


def screen_auc(
    values: np.ndarray, positive: np.ndarray, below: float, n_bins: int = _SCREEN_BINS
) -> tuple[float, str, float] | None:
    """Bound the folded ROC-AUC in O(n) with a histogram; None when it may reach `below`.

    Pairs in different bins are ordered exactly; only pairs sharing a bin are uncertain,
    so the AUC lies between counting them all as losses and all as wins. When even the
    upper bound stays under `below`, the exact (sorting) AUC cannot change the verdict.

    Args:
        values: the scores, NaN for missing.
        positive: the positive rows, as a boolean mask or as row positions (positions spare
            a pass over every row when positives are few).
        below: the AUC that the upper bound must stay under.
        n_bins: histogram bins.

    Returns:
        (midpoint of the bounds, where missing values sit, largest error) or None.
    """
    # fmin/fmax skip NaN in one pass (nanmin copies the array when it holds NaN); they
    # return NaN only when every value is missing.
    low, high = float(np.fmin.reduce(values)), float(np.fmax.reduce(values))
    scale = _screen_scale(low, high, n_bins)
    if scale is None:
        return None
    rows, hits = _histograms(values, positive, low, scale, n_bins)
    return _screened(rows, hits, below, n_bins)


def screen_column(
    frame: StoredTable, column: str, positive_rows: np.ndarray, below: float
) -> tuple[float, str, float] | None:
    """`screen_auc` of a stored numeric or date column, read a partition at a time (on the
    cluster where it can, tasks/part_map.py): its range first, then the per-class histograms
    of each partition, added up. The result is the whole column's (the same bins, the same
    counts); only a column it cannot settle needs reading whole, for the exact AUC."""
    ranges = np.array(map_parts(frame, [column], _value_range, column), dtype="float64")
    low, high = float(np.fmin.reduce(ranges[:, 0])), float(np.fmax.reduce(ranges[:, 1]))
    scale = _screen_scale(low, high, _SCREEN_BINS)
    if scale is None:
        return None
    rows = np.zeros(_SCREEN_BINS + 1, dtype=np.intp)
    hits = np.zeros(_SCREEN_BINS + 1, dtype=np.intp)
    steps = (_part_histograms, column, Rows(positive_rows), low, scale)
    for part_rows, part_hits in iter_parts(frame, [column], *steps):
        rows += part_rows
        hits += part_hits
    return _screened(rows, hits, below, _SCREEN_BINS)


def _value_range(chunk: pd.DataFrame, column: str) -> tuple[float, float]:
    values = _numbers(chunk[column])
    if not len(values):
        return np.inf, -np.inf
    return float(np.fmin.reduce(values)), float(np.fmax.reduce(values))


def _part_histograms(
    chunk: pd.DataFrame, column: str, positive: np.ndarray, low: float, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    return _histograms(_numbers(chunk[column]), positive, low, scale, _SCREEN_BINS)


# Distinct values past which a stored categorical column is read whole instead (its
# partition-wise screen would hold a table of them as large as the column).
MAX_SCREENED_CATEGORIES = 1_000_000


def category_cells(
    frame: StoredTable, column: str, positive: np.ndarray, folds: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Count a stored categorical column's rows and positive rows by cell (fold, category),
    a partition at a time (on the cluster where it can): two (fold, category) arrays, or
    None past MAX_SCREENED_CATEGORIES.

    The categories are coded across partitions as one factorize of the whole column codes
    them (missing values one category of their own): each partition counts by its own
    codes, and the flow joins its distinct values in order.
    """
    known: pd.Index = pd.Index([], dtype=object)
    missing_code = -1
    by_cell = np.zeros((0, 4), dtype=np.intp)  # rows by category, then (fold, positive)
    parts = iter_parts(frame, [column], _part_cells, column, Aligned(positive), Aligned(folds))
    for uniques, has_missing, counts in parts:
        where = known.get_indexer(uniques)
        new = where < 0
        where[new] = np.arange(len(known), len(known) + int(new.sum()))
        known = known.append(uniques[new])
        if has_missing and missing_code < 0:
            missing_code = len(known)
            known = known.append(pd.Index([None], dtype=object))
        if len(known) > MAX_SCREENED_CATEGORIES:
            return None
        if len(by_cell) < len(known):
            by_cell = np.concatenate([by_cell, np.zeros((len(known) - len(by_cell), 4), np.intp)])
        by_cell[where] += counts[:-1]  # distinct categories: each row of by_cell once
        if has_missing:
            by_cell[missing_code] += counts[-1]
    cells = by_cell.reshape(len(known), 2, 2)  # category, fold, positive
    hits = cells[:, :, 1].T.astype("float64")
    return hits + cells[:, :, 0].T, hits


def _part_cells(
    chunk: pd.DataFrame, column: str, positive: np.ndarray, folds: np.ndarray
) -> tuple[pd.Index, bool, np.ndarray]:
    """A partition's distinct values (in order of appearance), whether it has missing
    values, and its rows by (its own category code, fold, positive); missing values last."""
    local, distinct = pd.factorize(chunk[column], use_na_sentinel=True)
    uniques = pd.Index(distinct).astype(object)  # the values boxed alike in every chunk
    codes = np.where(local < 0, len(uniques), local)
    cell = 4 * codes + 2 * folds + positive
    counts = np.bincount(cell, minlength=4 * (len(uniques) + 1)).reshape(-1, 4)
    return uniques, bool((local < 0).any()), counts


def screen_cells(
    rows: np.ndarray, hits: np.ndarray, prior: float, below: float
) -> tuple[float, str, float] | None:
    """`screen_auc` of the out-of-fold rates (`out_of_fold_rates`) from the counts by cell.

    A row's score is its category's positive rate in the other fold, so it depends on the
    row's cell alone: every score and the score histograms follow from the cells' counts,
    with no per-row array, and give the whole column's result.
    """
    rate = (hits + _OOF_SMOOTHING * prior) / (rows + _OOF_SMOOTHING)
    scores = rate[::-1]  # a cell's score: its category's rate in the other fold
    held = rows > 0  # only cells that hold rows have a score the column takes
    if not held.any():
        return None
    low, high = float(scores[held].min()), float(scores[held].max())
    scale = _screen_scale(low, high, _SCREEN_BINS)
    if scale is None:
        return None
    bins = _bin_index(scores[held], low, scale, _SCREEN_BINS)
    binned_rows = np.bincount(bins, weights=rows[held], minlength=_SCREEN_BINS + 1)
    binned_hits = np.bincount(bins, weights=hits[held], minlength=_SCREEN_BINS + 1)
    return _screened(binned_rows, binned_hits, below, _SCREEN_BINS)


def _numbers(values: pd.Series) -> np.ndarray:
    numbers = numeric_view(values)
    if numbers is None:
        raise TypeError(f"{values.name!r} is not a numeric or date column")
    return numbers


def _screen_scale(low: float, high: float, n_bins: int) -> float | None:
    """Bins per unit of the values' range; None when the range cannot be binned."""
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return None
    scale = (n_bins - 1) / (high - low)
    if not np.isfinite(scale):  # a range of subnormal width: the exact AUC decides
        return None
    return scale


def _histograms(
    values: np.ndarray, positive: np.ndarray, low: float, scale: float, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows and the positive rows in each bin (the last: missing values)."""
    # Binned a block of rows at a time: temporaries of a block stay in the CPU cache, while
    # each fresh million-row temporary costs more in page faults than in arithmetic.
    rows = np.zeros(n_bins + 1, dtype=np.intp)
    for start in range(0, len(values), _BLOCK):
        block = _bin_index(values[start : start + _BLOCK], low, scale, n_bins)
        rows += np.bincount(block, minlength=n_bins + 1)
    hits = np.bincount(_bin_index(values[positive], low, scale, n_bins), minlength=n_bins + 1)
    return rows, hits


def _screened(
    rows_binned: np.ndarray, hits_binned: np.ndarray, below: float, n_bins: int
) -> tuple[float, str, float] | None:
    """The screen's verdict from the histograms (see `screen_auc`)."""
    rows, hits = rows_binned.astype("float64"), hits_binned.astype("float64")
    has_missing = bool(rows[n_bins])
    pos, neg = hits[:n_bins], rows[:n_bins] - hits[:n_bins]
    neg_below = np.cumsum(neg) - neg
    wins_apart = float(np.dot(pos, neg_below))
    shared = float(np.dot(pos, neg))
    counts = PairCounts(
        wins_apart,
        int(pos.sum()),
        int(neg.sum()),
        int(hits[n_bins]),
        int(rows[n_bins] - hits[n_bins]),
    )
    best: tuple[float, str, float] | None = None
    for side in ("low", "high") if has_missing else ("none",):
        (fewest, total), (most, _) = (
            placed_pairs(w, counts, side) for w in (wins_apart, wins_apart + shared)
        )
        lowest, highest = (fewest / total, most / total) if total else (0.5, 0.5)
        if max(highest, 1.0 - lowest) >= below:
            return None
        middle = (lowest + highest) / 2
        folded = max(middle, 1.0 - middle)
        if best is None or folded > best[0]:
            best = (folded, side, (highest - lowest) / 2)
    return best


def fold_of_rows(n: int) -> np.ndarray:
    """Return a fixed pseudo-random half split of the rows (False or True each).

    Drawn a block at a time as 64-bit integers (the same draws as one call) and kept as one
    byte a row: at 20M rows the draws alone would take 160 MB.
    """
    rng = np.random.default_rng(0)
    folds = np.empty(n, dtype=bool)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        folds[start:stop] = rng.integers(0, 2, size=stop - start, dtype="int64")
    return folds


def out_of_fold_rates(codes: np.ndarray, positive: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Score each row by its category's positive rate in the other half of the rows.

    Rates from the other half (smoothed towards the overall rate) keep a column of
    unique values, such as free text, from scoring perfectly on its own rows.
    """
    k = int(codes.max()) + 1 if len(codes) else 1
    cell = folds * k  # int64: the folds are booleans
    cell += codes
    rows = np.bincount(cell, minlength=2 * k).reshape(2, k).astype("float64")
    # Counting the positive rows' cells is exact and far cheaper than a bincount weighted
    # by a million booleans.
    hits = np.bincount(cell[positive], minlength=2 * k).reshape(2, k).astype("float64")
    prior = float(positive.mean()) if len(positive) else 0.0
    rate = (hits + _OOF_SMOOTHING * prior) / (rows + _OOF_SMOOTHING)
    # The other fold's rate of a row's cell: with the folds' rows swapped, a flat lookup
    # by the row's own cell, instead of two-dimensional fancy indexing.
    return rate[::-1].ravel()[cell]


def numeric_view(values: pd.Series) -> np.ndarray | None:
    """Return the column as float64 (dates as days, missing as NaN), or None if categorical."""
    if is_datetime64_any_dtype(values.dtype):
        return to_days(values)
    if is_numeric_kind(values.dtype):
        # Infinite or overflowing numbers count as missing (see tasks/quirks.py).
        return as_finite(values.to_numpy(dtype="float64", na_value=np.nan))
    return None


def is_numeric_kind(dtype: DtypeObj) -> bool:
    """Whether `numeric_view` reads values of this dtype as numbers (dates as days)."""
    return bool(is_datetime64_any_dtype(dtype) or is_bool_dtype(dtype) or is_numeric_dtype(dtype))


def numeric_column(frame: Frame, column: str) -> np.ndarray | None:
    """Return `numeric_view` of the frame's column. A stored table's is filled a partition
    at a time: the column's values and their float view are never both held whole."""
    if not isinstance(frame, StoredTable):
        return numeric_view(frame[column])
    if not is_numeric_kind(frame.dtype(column)):
        return None
    numbers = np.empty(len(frame), dtype="float64")
    start = 0
    for chunk in frame.chunks([column]):  # each chunk in the table's dtype
        view = _numbers(chunk[column])
        numbers[start : start + len(view)] = view
        start += len(view)
    return numbers


def category_codes(values: pd.Series) -> np.ndarray:
    """Return integer codes of the values, missing as a category of its own."""
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(codes, dtype="int64")


# "One value per class" is evidence of a function of the label only when each class has at
# least this many rows: with one row per class every column with two distinct values is one.
MIN_ROWS_FOR_FUNCTION = 10


def is_function_of_label(codes_or_values: np.ndarray, positive: np.ndarray) -> bool:
    """Return whether each class has one single value and the two values differ.

    Each class needs MIN_ROWS_FOR_FUNCTION rows before one value per class counts.
    """
    pos, neg = codes_or_values[positive], codes_or_values[~positive]
    if min(len(pos), len(neg)) < MIN_ROWS_FOR_FUNCTION:
        return False
    if pos.dtype.kind == "f":
        pos_nan, neg_nan = np.isnan(pos), np.isnan(neg)
        if pos_nan.all() and neg_nan.all():
            return False
        if pos_nan.all() or neg_nan.all():
            other = neg if pos_nan.all() else pos
            return not np.isnan(other).any() and bool(np.nanmin(other) == np.nanmax(other))
        if pos_nan.any() or neg_nan.any():
            return False
    return bool(pos.min() == pos.max() and neg.min() == neg.max() and pos[0] != neg[0])


def stratified_auc(
    scores: np.ndarray, positive: np.ndarray, bins: list[np.ndarray]
) -> float | None:
    """Return the folded ROC-AUC counting only pairs of rows in the same time bin.

    A score that merely follows time (an id issued in order, a date) ranks classes only
    as much as the label rate drifts; inside a narrow time bin that drift is gone.
    """
    return pooled_auc(auc_pairs(scores[rows], positive[rows]) for rows in bins)


def pooled_auc(groups: Iterable[tuple[float, float]]) -> float | None:
    """The folded ROC-AUC of (wins, pairs) added up over groups; None without a pair."""
    wins = pairs = 0.0
    for w, p in groups:
        wins += w
        pairs += p
    if not pairs:
        return None
    auc = wins / pairs
    return max(auc, 1.0 - auc)


def ranked_scores(values: np.ndarray, missing_side: str) -> np.ndarray:
    """Return the scores with missing values placed lowest or highest ('none': as they are)."""
    if missing_side == "none":
        return values
    fill = -np.inf if missing_side == "low" else np.inf
    return np.where(np.isnan(values), fill, values)


@dataclass(frozen=True)
class FeaturePower:
    """How well one column alone ranks the classes."""

    column: str
    kind: str
    auc: float
    missing: str = "none"
    function_of_label: bool = False
    auc_within_time: float | None = None
    max_error: float = 0.0

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "kind": self.kind,
            "roc_auc": round(self.auc, 6),
            "missing_ranked": self.missing,
            "function_of_label": self.function_of_label,
            "roc_auc_max_error": round(self.max_error, 6),
            "roc_auc_within_time": None
            if self.auc_within_time is None
            else round(self.auc_within_time, 6),
        }
