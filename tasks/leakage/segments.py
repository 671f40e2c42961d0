"""SMOTE's geometry: rows lying on the segment between two neighbours, and rounding grids.

SMOTE makes a row as a + u (b - a) from two minority neighbours a, b and a u in (0, 1).
`segment_share` measures how many rows lie on such a segment; chance alignment is ruled out
by the columns' rounding grids (`decimal_grid`, `column_grid`): a segment counts only when
the row is off the grid of a column in which its two neighbours differ, or the neighbours
differ in at least two columns, one of them without a grid (lattice points line up by
chance, and points tied in all but one column are collinear whatever their origin).
`continuous_columns` picks the float columns where SMOTE leaves these traces.
resampling.py compares the minority rows' share with the majority rows'.
"""

from functools import cache

import numpy as np
from pandas.api.types import is_float_dtype
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from retrain_guard.tasks.quirks import is_overflowing
from retrain_guard.tasks.stored_table import Frame

_NEIGHBOURS = 10
# Query rows of the segment test; the share is estimated on at most this many rows. The
# neighbour search, the bulk of the check's time, costs queries x indexed rows. 500 queries
# estimate a share p with standard error sqrt(p (1 - p) / 500) <= 0.022. SMOTE that adds
# only 15% synthetic rows puts about 14% of minority rows on a segment: 9 points above the
# default 5% failure level, 6 standard errors (a miss below 1 in 10^8). On continuous columns
# honest rows lie on a segment with probability 0, so the control share stays 0 whatever
# the count; more queries would only narrow a margin that is already wide.
_MAX_QUERIES = 500
# Minority rows indexed for neighbours; beyond it a seeded sample keeps the cost bounded.
_MAX_INDEXED = 50_000
# Directions count as opposite below this cosine: an angle within 1e-6 radians of 180
# degrees (1 + cos = angle^2 / 2), far above float error, far below chance alignment.
_OPPOSITE = -1.0 + 0.5e-12
# Columns with fewer distinct minority values form a lattice where points line up by chance.
_MIN_DISTINCT = 20
_MAX_MISSING = 0.2
# A column's rounding grid: the fewest decimals (at most _MAX_DECIMALS) that hold for at
# least _ON_GRID of its majority values (resampling.py samples them); past _EXACT a float
# cannot tell the grid apart.
_MAX_DECIMALS = 8
_ON_GRID = 0.99
_EXACT = 2.0**52
# The majority's grid holds for the minority when at least this share of its values are on
# it (SMOTE that adds fewer synthetic rows than there are originals leaves more than half).
_MINORITY_ON_GRID = 0.5
# Columns this correlated are one column linearly rescaled (|r| = 1 up to float error).
_LINEAR = 1.0 - 1e-9


@cache
def _thread_pools() -> ThreadpoolController:
    # Finding the loaded BLAS and OpenMP libraries scans the process's shared objects
    # (milliseconds); once is enough, they are loaded with scikit-learn.
    return ThreadpoolController()


def _neighbours(space: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Return the k nearest other rows of each query row in this space."""
    index = NearestNeighbors(n_neighbors=k + 1).fit(space)
    # One thread: on a shared machine OpenMP threads waiting for busy cores made the
    # search three times slower than a single thread.
    with _thread_pools().limit(limits=1):
        _, found = index.kneighbors(space[queries])
    # Drop the query itself (a duplicate may take its place at distance 0; keep k others).
    is_self = found == queries[:, None]
    keep = np.where(is_self.any(axis=1, keepdims=True), ~is_self, np.arange(k + 1) < k)
    return np.asarray(found[keep].reshape(len(queries), k))


def decimal_grid(values: np.ndarray) -> int | None:
    """Return the fewest decimals d that put nearly all values on multiples of 10**-d.

    Whole-year ages and incomes in hundreds give 0, coordinates with 4 or 5 decimals give
    5, measured values give None (no grid up to _MAX_DECIMALS). SMOTE's output a + u (b - a)
    is off such a grid wherever a and b differ, honest rows are on it.
    """
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    largest = float(np.abs(values).max())
    # A few hundred values rule most decimals out before the whole sample is tested.
    head = values[:: max(1, len(values) // 500)]
    for decimals in range(_MAX_DECIMALS + 1):
        if largest * 10.0**decimals > _EXACT:
            return None
        if np.mean(_on_grid(head, decimals)) < _ON_GRID - 0.05:
            continue
        if np.mean(_on_grid(values, decimals)) >= _ON_GRID:
            return decimals
    return None


def column_grid(majority: np.ndarray, minority: np.ndarray) -> int | None:
    """Return the rounding grid of a column the minority rows are judged against.

    The majority's grid first: SMOTE only adds minority rows, so it never moves the majority
    off the grid the data was recorded on, while light SMOTE leaves most minority rows on it.
    When most minority values are off that grid, the minority is recorded more finely (cents
    where the majority has whole amounts) or is mostly synthetic: its own grid decides, and
    a mostly synthetic minority has none (segments then need two differing columns).
    """
    grid = decimal_grid(majority)
    minority = minority[np.isfinite(minority)]
    if grid is None or not len(minority) or np.mean(_on_grid(minority, grid)) >= _MINORITY_ON_GRID:
        return grid
    return decimal_grid(minority)


def _on_grid(values: np.ndarray, decimals: int) -> np.ndarray:
    """Return whether each value is a multiple of 10**-decimals, up to float rounding."""
    scaled = values * 10.0**decimals
    return np.asarray(np.abs(scaled - np.round(scaled)) <= 1e-9 + np.abs(scaled) * 1e-13)


def _off_grid(raw: np.ndarray, grids: list[int | None]) -> np.ndarray:
    """Return, per row and column, whether a gridded column's value is off its grid."""
    off = np.zeros(raw.shape, dtype=bool)
    for j, decimals in enumerate(grids):
        if decimals is not None:
            off[:, j] = ~_on_grid(raw[:, j], decimals)
    return off


def _on_segment(
    points: np.ndarray,
    queries: np.ndarray,
    neighbours: np.ndarray,
    off_grid: np.ndarray,
    gridded: np.ndarray,
) -> np.ndarray:
    """Return, per query, whether it lies inside a segment between two neighbours as SMOTE's do.

    The query s is strictly between a and b exactly when the directions s->a and s->b are
    opposite: the cosine of the angle between them is -1. One batched Gram matrix of the
    unit directions to all neighbours tests every pair at once. An opposite pair is a trace
    only when chance does not explain it: s is off the grid of a column where a and b differ
    (SMOTE's u is continuous), or a and b differ in two or more columns, one without a grid
    (three rows tied in all columns but one are collinear, and lattice points line up).
    """
    s = points[queries][:, None, :]
    towards = points[neighbours] - s
    length = np.sqrt(np.einsum("qkj,qkj->qk", towards, towards))
    # A neighbour at the query's own position (a copy) has no direction.
    unit = np.divide(
        towards, length[..., None], out=np.zeros_like(towards), where=length[..., None] > 1e-12
    )
    cosine = np.matmul(unit, unit.transpose(0, 2, 1))
    query, first, second = np.nonzero(np.triu(cosine <= _OPPOSITE, k=1))
    differ = points[neighbours[query, first]] != points[neighbours[query, second]]
    off = (differ & off_grid[queries[query]]).any(axis=1)
    free = (differ.sum(axis=1) >= 2) & (differ & ~gridded).any(axis=1)
    traced = np.zeros(len(queries), dtype=bool)
    traced[query[off | free]] = True
    return traced


def segment_share(
    points: np.ndarray, rng: np.random.Generator, grids: list[int | None] | None = None
) -> float:
    """Return the share of (sampled) points on a segment between two of their neighbours.

    SMOTE makes a row as a + u (b - a) with a, b minority rows and u in (0, 1): it lies
    on the segment between two rows that are among its nearest neighbours. Which rows
    are neighbours depends on the scaling SMOTE saw, unknown here; neighbours are taken
    both in the raw units and in standardised units. Lying on a segment does not depend
    on the scaling, and is tested in standardised units. `grids` gives each column's
    rounding (decimals, None for none), which decides what chance alignment is.
    """
    n = len(points)
    if n < 3:
        return 0.0
    if grids is None:
        grids = [None] * points.shape[1]
    if n > _MAX_INDEXED:
        points = points[rng.choice(n, _MAX_INDEXED, replace=False)]
        n = _MAX_INDEXED
    spread = points.std(axis=0)
    spread[spread == 0] = 1.0
    scaled = (points - points.mean(axis=0)) / spread
    k = min(_NEIGHBOURS, n - 1)
    queries = rng.choice(n, min(n, _MAX_QUERIES), replace=False)
    neighbours = np.concatenate(
        [_neighbours(points, queries, k), _neighbours(scaled, queries, k)], axis=1
    )
    gridded = np.array([g is not None for g in grids], dtype=bool)
    traced = _on_segment(scaled, queries, neighbours, _off_grid(points, grids), gridded)
    return float(traced.mean())


def continuous_columns(frame: Frame, features: list[str]) -> list[str]:
    """Return the float columns with many distinct values: where SMOTE leaves its traces.

    SMOTE's output is fractional, so a column still of integer type was not interpolated;
    leaving integers out also avoids lattices on which points line up by chance. A float
    column whose values are all whole numbers (ages, codes, counts stored as float64, as
    statsmodels ships them) stays in, but is judged by its values: its grid is 0 decimals
    (column_grid), so its lattice points are never evidence, and a value shared by many rows
    (a point mass such as a population of 0) cannot be: a row between two neighbours shares
    a column's value with one of them only when it shares it with both, and columns in which
    the neighbours agree are not counted. A column that is an exact linear function of an
    earlier one (a fee at a fixed rate) is left out: it would make every segment in the
    other one look two-dimensional.
    """
    chosen: list[str] = []
    for column in features:
        if not is_float_dtype(frame[column].dtype):
            continue
        # SMOTE cannot interpolate missing values; a mostly empty column would only
        # remove rows from the test.
        if frame[column].isna().mean() > _MAX_MISSING:
            continue
        if frame[column].nunique() >= min(_MIN_DISTINCT, max(3, len(frame) // 2)):
            chosen.append(column)
    if len(chosen) < 2:
        return chosen
    # An exact linear relation holds on any rows: a sample shows it.
    sample = frame[chosen].iloc[:: max(1, len(frame) // 2000)]
    values = sample.to_numpy(dtype="float64", na_value=np.nan)
    values = values[~np.isnan(values).any(axis=1)]
    if len(values) < 3:
        return chosen
    with np.errstate(invalid="ignore", divide="ignore"), _thread_pools().limit(limits=1):
        correlation = np.abs(np.corrcoef(values, rowvar=False))
    kept: list[int] = []
    for j in range(len(chosen)):
        if not any(correlation[i, j] >= _LINEAR for i in kept):
            kept.append(j)
    return [chosen[j] for j in kept]


def complete_rows(frame: Frame, columns: list[str]) -> np.ndarray:
    """Return the rows of `columns` as floats, leaving out rows with a missing value."""
    values = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
    # Infinite or overflowing numbers count as missing (see tasks/quirks.py).
    return values[~(np.isnan(values) | is_overflowing(values)).any(axis=1)]
