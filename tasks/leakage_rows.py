"""Row leakage: rows shared by the training part and the holdout, and traces of resampling.

- split_leakage (L1.4): holdout rows that repeat a training row (features and label, or the
  feature vector alone) more often than the table itself explains. The chance level is the
  Good-Turing estimate of how much of the feature distribution the training part has already
  seen: one minus the share of training rows whose feature vector occurs once in training.
  It holds whatever the columns' correlation (few distinct vectors: most holdout rows repeat
  one by chance; continuous columns: none do). Copies made before the split inflate it, so it
  is capped by twice the share of the later half of training repeating the earlier half, by
  label time (copies sit next to their original in time and do not reach it), or in a seeded
  random order without a label time (stored order groups related rows, as person-years
  stored by person: the later half would repeat the earlier half far less than a random
  holdout repeats training). The judgement is a one-sided binomial test of the count against
  the upper end of that rate (the rate is itself estimated from a count), so a few repeats
  in a small holdout of a table that has honest duplicates are chance, not a copy leak.
- resampling_leakage (L1.2): in the input, minority rows copied more often than chance, or
  lying on the segment between two other minority rows (as SMOTE makes them) more often than
  majority rows do. Copies are compared, in the columns that vary among minority rows, with
  the majority rows and with the minority's own columns taken as independent (the larger).
  A segment counts only when it is evidence of interpolation: the row is off the rounding grid
  of a column in which its two neighbours differ, or the two neighbours differ in at least
  two columns, one of them without a grid (lattice points line up by chance, and points tied
  in all but one column are collinear whatever their origin). Majority rows, measured the
  same way, are the control.
"""

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_float_dtype, is_numeric_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from scipy.special import betainc
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from schemas.params import DataParams, LeakageParams
from schemas.report import CheckResult
from tasks.dates import as_naive_utc
from tasks.leakage_findings import UNBOUNDED, Finding, apply_policy, check_from_findings
from tasks.quirks import is_overflowing, usable_columns
from tasks.split import Split

SPLIT = "split_leakage"
RESAMPLING = "resampling_leakage"
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
# least _ON_GRID of its majority values (a sample of at most _GRID_SAMPLE shows it); past
# _EXACT a float cannot tell the grid apart.
_MAX_DECIMALS = 8
_ON_GRID = 0.99
_GRID_SAMPLE = 20_000
_EXACT = 2.0**52
# The majority's grid holds for the minority when at least this share of its values are on
# it (SMOTE that adds fewer synthetic rows than there are originals leaves more than half).
_MINORITY_ON_GRID = 0.5
# Minority rows sampled to estimate each column's chance of repeating (and which columns
# are functions of others): enough for a share of a few percent, cheap for many columns.
_COPY_SAMPLE = 5_000
# Columns this correlated are one column linearly rescaled (|r| = 1 up to float error).
_LINEAR = 1.0 - 1e-9
# split_leakage reports shared rows when a count this unlikely under the table's own repeat
# rate (one-sided binomial tail) is seen: about a 3-sigma event, and for a continuous table
# (a chance level near 0) any exact repeat.
_SPLIT_ALPHA = 1e-3


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


@dataclass(frozen=True)
class SharedRows:
    """Holdout rows that repeat a training row, and how many the training part predicts."""

    holdout_rows: int
    shared_vectors: int
    shared_rows: int
    conflicting_labels: int
    expected_by_chance: float
    training_repeat_share: float = 0.0
    later_half_repeat_share: float = 0.0
    # The count chance explains at the upper end of the estimated rate (the rate is measured
    # on a count of repeats of its own); the test is against it. None: the point estimate.
    expected_upper: float | None = None

    @property
    def excess(self) -> float:
        return max(0.0, self.shared_vectors - self.expected_by_chance)

    @property
    def p_value(self) -> float:
        """Return P(at least shared_vectors of holdout_rows repeat) at the upper rate.

        Each holdout row repeats a training row or not: a binomial count, whose spread
        narrows as the rate nears 1 (most rows of a coded table repeat), where a Poisson
        count's would keep growing and hide a copy leak.
        """
        k, n = self.shared_vectors, self.holdout_rows
        if k <= 0 or n <= 0:
            return 1.0
        expected = self.expected_by_chance if self.expected_upper is None else self.expected_upper
        rate = min(1.0, expected / n)
        if rate <= 0.0:
            return 0.0
        # P(X >= k) for X ~ Binomial(n, rate) is the regularised incomplete beta I_rate(k, n-k+1).
        return float(betainc(k, n - k + 1, rate))

    @property
    def share(self) -> float:
        return self.excess / self.holdout_rows if self.holdout_rows else 0.0

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "holdout_rows": self.holdout_rows,
            "holdout_rows_repeating_training_features": self.shared_vectors,
            "holdout_rows_repeating_training_rows": self.shared_rows,
            "repeated_features_with_other_label": self.conflicting_labels,
            "expected_by_chance": round(self.expected_by_chance, 3),
            "expected_by_chance_upper": round(
                self.expected_by_chance if self.expected_upper is None else self.expected_upper, 3
            ),
            "p_value": float(f"{self.p_value:.3g}"),
            "training_repeat_share": round(self.training_repeat_share, 6),
            "training_later_half_repeat_share": round(self.later_half_repeat_share, 6),
            "excess_share_of_holdout": round(self.share, 6),
        }


def _key_column(frame: pd.DataFrame, features: list[str], rows: np.ndarray | None = None) -> str:
    """Return the feature with the most distinct values in a sample: the cheapest filter.

    With `rows`, the sample is taken from those rows of the frame only.
    """
    if rows is None:
        head = frame[features].iloc[:: max(1, len(frame) // 1000)]
    else:
        head = frame[features].iloc[rows[:: max(1, len(rows) // 1000)]]
    return str(max(features, key=lambda c: head[c].nunique(dropna=False)))


def measure_split_sharing(
    frame: pd.DataFrame,
    features: list[str],
    label: str,
    train: np.ndarray,
    holdout: np.ndarray,
    order: pd.Series | None = None,
) -> SharedRows:
    """Count holdout rows whose feature vector (and whole row with label) is in training.

    Rows equal in every feature are equal in the most varied one, so that column alone
    picks the candidates before whole rows are hashed. `order` (the label time) orders the
    training rows for the copy-free bound of the chance level (a seeded random order
    without it).
    """
    if not len(holdout) or not len(train) or not features:
        return SharedRows(len(holdout), 0, 0, 0, 0.0)
    key = _key_column(frame, features)
    key_hash = row_hashes(frame[[key]])
    # The lookup table is built from the smaller side (`isin` hashes its argument): the
    # training rows whose key occurs in the holdout first, then the holdout rows whose key
    # occurs among those. Both sets are the same as looking the holdout up in training.
    candidates_t = train[pd.Index(key_hash[train]).isin(key_hash[holdout])]
    if not len(candidates_t):
        return SharedRows(len(holdout), 0, 0, 0, 0.0)
    candidates_h = holdout[pd.Index(key_hash[holdout]).isin(key_hash[candidates_t])]
    vectors_h = row_hashes(frame.iloc[candidates_h][features])
    vectors_t = row_hashes(frame.iloc[candidates_t][features])
    labels = frame[label].to_numpy()
    shared_vectors = int(pd.Index(vectors_h).isin(vectors_t).sum())
    # A shared row repeats the features and the label: pairs of (vector hash, label).
    shared_rows = int(
        pd.MultiIndex.from_arrays([vectors_h, labels[candidates_h]])
        .isin(pd.MultiIndex.from_arrays([vectors_t, labels[candidates_t]]))
        .sum()
    )
    repeated = repeated_rows(frame, features, train, key_hash)
    seen = repeated / len(train)
    timed = order is not None and (is_datetime64_any_dtype(order) or is_numeric_dtype(order))
    if order is not None and timed:
        times = as_naive_utc(order).reset_index(drop=True).iloc[train].to_numpy()
        train = train[np.argsort(times, kind="stable")]
    else:
        # Without a label time the stored order is no evidence: tables are often stored
        # grouped (by person, by plan, sorted by a code), which puts a person's repeated
        # rows in one half. A random order measures what a random holdout sees.
        train = np.random.default_rng(0).permutation(train)
    repeats, later_rows = later_half_repeats(frame, features, train, key_hash)
    later = repeats / later_rows if later_rows else 0.0
    # The seen mass is concave in the number of rows, so twice the later half's share (at
    # its upper two-sigma bound) bounds what the whole training part explains.
    bound = 2.0 * _upper(repeats, later_rows) / max(1, later_rows)
    # The Good-Turing share is itself a count (rows in repeated vectors): a training part
    # with a handful of honest duplicates measures its rate loosely, and the test allows it.
    seen_upper = min(1.0, _upper(repeated, len(train)) / len(train))
    if seen <= 0:
        # No repeat in training: no measurable rate. The columns' value frequencies taken as
        # independent give the chance, so a chance repeat of a few-valued vector is not read
        # as a copy.
        chance = 1.0
        for column in features:
            chance *= collision_probability(frame[column])
            if chance < 1e-300:
                break
        rate = upper_rate = 1.0 - (1.0 - chance) ** len(train)
    elif timed:
        # Oversampling before the split copies rows whole, label time included: copies sit
        # next to their original in time and inflate the Good-Turing estimate, not the
        # later half's repeats of the earlier half, which caps it.
        rate, upper_rate = min(seen, bound), min(seen_upper, bound)
    else:
        # In random order copies and honest repeats look alike: the later half is a second
        # measure of the same rate, and a small count of it (a few duplicates falling in
        # one half) must not narrow what chance allows.
        rate, upper_rate = seen, min(1.0, max(seen_upper, bound))
    expected = len(holdout) * rate
    return SharedRows(
        len(holdout),
        shared_vectors,
        shared_rows,
        shared_vectors - shared_rows,
        expected,
        seen,
        later,
        len(holdout) * max(rate, upper_rate),
    )


def _upper(count: int, rows: int) -> float:
    """Return an upper two-sigma bound of a count of `rows` trials (binomial, plus one).

    For a rare event it is the Poisson bound count + 2 sqrt(count) + 1; as the share nears
    1 the spread narrows with it.
    """
    share = count / rows if rows else 0.0
    return float(count + 2.0 * np.sqrt(count * max(0.0, 1.0 - share)) + 1.0)


def later_half_repeats(
    frame: pd.DataFrame, features: list[str], ordered: np.ndarray, key_hash: np.ndarray
) -> tuple[int, int]:
    """Return how many of the later half of `ordered` rows repeat an earlier half's vector,
    and how many rows the later half has."""
    half = len(ordered) // 2
    early, late = ordered[:half], ordered[half:]
    if not len(early) or not len(late):
        return 0, len(late)
    candidates_e = early[pd.Index(key_hash[early]).isin(key_hash[late])]
    if not len(candidates_e):
        return 0, len(late)
    candidates_l = late[pd.Index(key_hash[late]).isin(key_hash[candidates_e])]
    vectors_l = row_hashes(frame.iloc[candidates_l][features])
    vectors_e = row_hashes(frame.iloc[candidates_e][features])
    return int(pd.Index(vectors_l).isin(vectors_e).sum()), len(late)


def repeated_rows(
    frame: pd.DataFrame, features: list[str], rows: np.ndarray, key_hash: np.ndarray
) -> int:
    """Return how many of `rows` share their feature vector with another of `rows`.

    Over len(rows) it is the chance that a new row from the same source repeats a vector
    among `rows` (Good-Turing: the probability of a vector not seen in n rows is estimated
    by N1 / n, N1 the number of vectors seen exactly once). It takes the columns' joint
    distribution from the rows themselves, so correlated columns of few values are as likely
    to repeat as they are. A row whose key value is unique is a singleton without hashing
    its whole vector.
    """
    if not len(rows):
        return 0
    repeated_key = rows[np.asarray(pd.Index(key_hash[rows]).duplicated(keep=False))]
    singletons = len(rows) - len(repeated_key)
    if len(repeated_key):
        vectors = pd.Series(row_hashes(frame.iloc[repeated_key][features]))
        singletons += int((vectors.value_counts() == 1).sum())
    return len(rows) - singletons


def holdout_before_training_end(
    label_times: pd.Series, train: np.ndarray, holdout: np.ndarray
) -> int:
    """Count holdout rows whose label time is not after every training row's label time."""
    times = as_naive_utc(label_times).reset_index(drop=True)
    if not len(train) or not len(holdout):
        return 0
    latest = times.iloc[train].max()
    return int((times.iloc[holdout] <= latest).sum())


def judge_split_sharing(
    measured: SharedRows,
    params: LeakageParams,
    features: list[str],
    time_overlap: tuple[str, int] | None = None,
) -> CheckResult:
    """Fail above max_shared_row_share of the holdout; warn on fewer rows beyond chance.

    With a time split, `time_overlap` (label time column, holdout rows not after the
    training part) fails when any holdout row is not in the training part's future.
    """
    threshold = params.max_shared_row_share
    findings = []
    if time_overlap is not None and time_overlap[1] > 0:
        column, count = time_overlap
        share = count / measured.holdout_rows if measured.holdout_rows else 0.0
        findings.append(
            Finding(
                check=SPLIT,
                status="fail",
                columns=(column,),
                measure="holdout_rows_not_after_training",
                value=count,
                threshold=0,
                taxonomy="L3.1",
                detail=f"{count} holdout rows ({share:.1%}) have a {column} no later than the "
                "latest training row: the holdout is not the training part's future",
                severity=UNBOUNDED,
                evidence={"holdout_rows_not_after_training": count},
            )
        )
    # A one-sided binomial test at the upper end of the table's own repeat rate, not a
    # fixed margin: in a holdout of 168 rows, 2 repeats where the training part's duplicates
    # predict 1 are chance, while a copy leak of tens of percent is far beyond any margin.
    if measured.excess > 0 and measured.p_value < _SPLIT_ALPHA:
        findings.append(
            Finding(
                check=SPLIT,
                status="fail" if measured.share > threshold else "warn",
                columns=tuple(features),
                measure="excess_share_of_holdout",
                value=measured.share,
                threshold=threshold,
                taxonomy="L1.4",
                detail=f"{measured.shared_vectors} of {measured.holdout_rows} holdout rows "
                f"repeat a training row's features ({measured.shared_rows} with the same "
                f"label; {measured.expected_by_chance:.1f} expected by chance, at most "
                f"{measured.expected_upper or measured.expected_by_chance:.1f} within the "
                f"table's own repeat rate, p = {measured.p_value:.2g}): the holdout measures "
                "memory, not generalisation",
                severity=measured.share / threshold if threshold > 0 else UNBOUNDED,
                evidence=measured.as_json(),
            )
        )
    return check_from_findings(
        SPLIT,
        "split",
        findings,
        f"{measured.shared_vectors} holdout row(s) repeat a training row's features, "
        f"{measured.expected_by_chance:.1f} expected by chance (up to "
        f"{measured.expected_upper or measured.expected_by_chance:.1f})",
        {"threshold": threshold, **measured.as_json()},
    )


def check_split_leakage(
    frame: pd.DataFrame, split: Split, data: DataParams, params: LeakageParams
) -> CheckResult:
    """Measure and judge rows shared by the training part and the holdout, after the policy."""
    features = usable_columns(frame, data.feature_columns(frame.columns))
    order = frame[data.label_time] if data.label_time else None
    measured = measure_split_sharing(frame, features, data.label, split.train, split.holdout, order)
    overlap = None
    if split.strategy == "time" and data.label_time:
        count = holdout_before_training_end(frame[data.label_time], split.train, split.holdout)
        overlap = (data.label_time, count)
    judged, _ = apply_policy(
        [judge_split_sharing(measured, params, features, overlap)], params.on_leakage
    )
    return judged[0]


# --- Resampling traces ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResamplingTrace:
    """A share of minority rows that looks resampled, against the share chance explains.

    `control_share` is the larger of the majority rows' share (measured the same way) and,
    for copies, the share the minority's own column values give when drawn independently.
    """

    kind: Literal["copies", "segments"]
    minority_rows: int
    minority_share: float
    control_share: float
    columns: tuple[str, ...]
    majority_share: float = 0.0
    independent_share: float = 0.0

    @property
    def excess(self) -> float:
        return max(0.0, self.minority_share - self.control_share)

    @property
    def excess_rows(self) -> float:
        return self.excess * self.minority_rows

    def as_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "kind": self.kind,
            "minority_rows": self.minority_rows,
            "minority_share": round(self.minority_share, 6),
            "majority_control_share": round(self.majority_share, 6),
        }
        if self.kind == "copies":
            out["independent_columns_share"] = round(self.independent_share, 6)
        return {
            **out,
            "chance_share": round(self.control_share, 6),
            "excess_share": round(self.excess, 6),
            "columns": list(self.columns),
        }


def copy_share(
    frame: pd.DataFrame, rows: np.ndarray, features: list[str], key_hash: np.ndarray
) -> float:
    """Return the share of `rows` whose features repeat an earlier one of `rows`.

    Only rows whose key value repeats can repeat whole, so only those are hashed whole.
    `key_hash` holds the key column's hash for every row of the frame.
    """
    if not len(rows):
        return 0.0
    # An Index answers "all unique?" from its lookup table first, several times faster
    # than `duplicated` on a million values, and most key columns are unique.
    candidates = rows[np.asarray(pd.Index(key_hash[rows]).duplicated(keep=False))]
    if not len(candidates):
        return 0.0
    hashes = row_hashes(frame.iloc[candidates][features])
    return (len(hashes) - len(np.unique(hashes))) / len(rows)


def collision_probability(values: pd.Series) -> float:
    """Return the chance that two random rows share this column's value."""
    shares = values.value_counts(normalize=True, dropna=False).to_numpy()
    return float(np.sum(shares * shares))


def independent_copy_share(frame: pd.DataFrame, rows: np.ndarray, features: list[str]) -> float:
    """Return the expected share of `rows` repeating an earlier one if columns were independent.

    The minority's own values set the chance: a class that lives on a few rounded values
    (whole-year ages, incomes in hundreds) repeats itself. A column that is a function of
    another (a ratio with a numerator constant in the class is a function of its
    denominator) adds no chance factor: it repeats whenever that column does. A column that
    identifies every distinct row trivially determines all others, so it is never used to
    discard one (copies would otherwise make every column look derived from it). With
    c = prod_j P(two rows share column j) taken as K = 1/c equally likely vectors, n rows
    show K (1 - (1 - 1/K)^n) distinct vectors in expectation. Each P is estimated from a
    sample of at most _COPY_SAMPLE rows (unbiased: a column of distinct values gives 0).
    """
    n = len(rows)
    part = frame[features].iloc[rows[:: max(1, n // _COPY_SAMPLE)]]
    m = len(part)
    if m < 2 or not features:
        return 0.0
    codes = {c: pd.factorize(part[c], use_na_sentinel=False)[0] for c in features}
    distinct = {c: int(v.max()) + 1 for c, v in codes.items()}
    rows_distinct = len(np.unique(row_hashes(part)))
    chance = 1.0
    kept: list[str] = []
    for column in sorted(features, key=lambda c: -distinct[c]):
        derived = any(
            distinct[a] < rows_distinct
            and len(np.unique(codes[a].astype("int64") * distinct[column] + codes[column]))
            == distinct[a]
            for a in kept
        )
        if derived:
            continue
        kept.append(column)
        # Unbiased from a sample: pairs of sampled rows sharing the value, over all pairs.
        counts = np.bincount(codes[column]).astype("float64")
        chance *= float(np.sum(counts * (counts - 1.0)) / (m * (m - 1.0)))
        if chance * n < 1e-9:
            return 0.0
    distinct_expected = -np.expm1(n * np.log1p(-chance)) / chance if chance < 1.0 else 1.0
    return float(max(0.0, 1.0 - distinct_expected / n))


def _varying_columns(frame: pd.DataFrame, rows: np.ndarray, features: list[str]) -> list[str]:
    """Return the features with more than one value among `rows` (missing counts as a value).

    A column constant within the minority (a spend that is 0 for every refused applicant)
    tells nothing about whether minority rows were copied; comparing the classes in it
    would make the class where it varies look less repetitive.
    """
    part = frame.iloc[rows[:: max(1, len(rows) // 50_000)]]
    return [c for c in features if part[c].nunique(dropna=False) > 1]


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


def _continuous_columns(frame: pd.DataFrame, features: list[str]) -> list[str]:
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


def _complete_rows(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    values = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
    # Infinite or overflowing numbers count as missing (see tasks/quirks.py).
    return values[~(np.isnan(values) | is_overflowing(values)).any(axis=1)]


def measure_resampling(
    frame: pd.DataFrame, features: list[str], positive: np.ndarray
) -> list[ResamplingTrace]:
    """Measure copies and SMOTE segments among minority rows, against what chance explains."""
    minority_mask = positive if positive.sum() * 2 <= len(positive) else ~positive
    minority_rows = np.flatnonzero(minority_mask)
    majority_rows = np.flatnonzero(~minority_mask)
    if len(minority_rows) < 3 or not features:
        return []
    rng = np.random.default_rng(0)
    control_rows = np.sort(rng.choice(majority_rows, len(minority_rows), replace=False))
    # Row by row only the float columns are needed (SMOTE traces); taking every column of
    # the minority rows would copy text columns for nothing.
    floats = [c for c in features if is_float_dtype(frame[c].dtype)]
    minority = frame[floats].iloc[minority_rows]
    traces = []
    varying = _varying_columns(frame, minority_rows, features)
    if varying:
        # Copies are compared with all majority rows: uniform copying gives both classes
        # the same share, while chance repeats of few distinct values only grow with more
        # rows; and with the minority's own values as independent columns.
        key_hash = row_hashes(frame[[_key_column(frame, varying, minority_rows)]])
        majority = copy_share(frame, majority_rows, varying, key_hash)
        independent = independent_copy_share(frame, minority_rows, varying)
        traces.append(
            ResamplingTrace(
                "copies",
                len(minority_rows),
                copy_share(frame, minority_rows, varying, key_hash),
                max(majority, independent),
                (),
                majority,
                independent,
            )
        )
    columns = _continuous_columns(minority, floats)
    if len(columns) >= 2:
        control = frame[columns].iloc[control_rows]
        sample = majority_rows[:: max(1, len(majority_rows) // _GRID_SAMPLE)]
        grids = [
            column_grid(
                frame[c].iloc[sample].to_numpy(dtype="float64", na_value=np.nan),
                minority[c].to_numpy(dtype="float64", na_value=np.nan),
            )
            for c in columns
        ]
        minority_share = segment_share(
            _complete_rows(minority, columns), np.random.default_rng(1), grids
        )
        majority_share = segment_share(
            _complete_rows(control, columns), np.random.default_rng(1), grids
        )
        traces.append(
            ResamplingTrace(
                "segments",
                len(minority_rows),
                minority_share,
                majority_share,
                tuple(columns),
                majority_share,
            )
        )
    return traces


def judge_resampling(
    measured: list[ResamplingTrace], params: LeakageParams, label: str
) -> CheckResult:
    """Fail above max_resampled_share of minority rows in excess; warn on a smaller excess."""
    threshold = params.max_resampled_share
    findings = []
    for m in measured:
        # Four standard deviations of a count with the control's rate: repeats that are
        # spread over both classes by chance (a re-ingested batch) stay below it.
        noise = 4.0 * float(np.sqrt(m.control_share * m.minority_rows))
        if m.excess <= 0 or m.excess_rows < max(params.min_evidence_rows, noise):
            continue
        chance = (
            f"majority rows {m.majority_share:.1%}, the minority's columns taken as "
            f"independent {m.independent_share:.1%}"
            if m.kind == "copies"
            else "majority rows measured the same way"
        )
        what = (
            "repeat another minority row"
            if m.kind == "copies"
            else f"lie on a segment between two other minority rows ({', '.join(m.columns)})"
        )
        findings.append(
            Finding(
                check=RESAMPLING,
                status="fail" if m.excess > threshold else "warn",
                columns=m.columns,
                measure=f"excess_share_{m.kind}",
                value=m.excess,
                threshold=threshold,
                taxonomy="L1.2",
                detail=f"{m.minority_share:.1%} of the {m.minority_rows} minority rows "
                f"({label}) {what}, "
                f"against {m.control_share:.1%} expected by chance ({chance}): the input looks "
                f"{'oversampled' if m.kind == 'copies' else 'SMOTE-resampled'} before the "
                "split, so synthetic rows reach the holdout",
                severity=m.excess / threshold if threshold > 0 else UNBOUNDED,
                evidence={"label": label, **m.as_json()},
            )
        )
    return check_from_findings(
        RESAMPLING,
        "leakage",
        findings,
        "no trace of resampling before the split among the minority rows",
        {"threshold": threshold, "measured": [m.as_json() for m in measured]},
    )


def check_resampling_leakage(
    frame: pd.DataFrame,
    features: list[str],
    positive: np.ndarray,
    params: LeakageParams,
    label: str,
) -> CheckResult:
    """Measure and judge resampling traces among the minority rows."""
    return judge_resampling(measure_resampling(frame, features, positive), params, label)


@task(name="detect-split-leakage", cache_policy=NO_CACHE, persist_result=False)
def split_leakage_task(
    frame: pd.DataFrame, split: Split, data: DataParams, params: LeakageParams
) -> CheckResult:
    """Check that the training part and the holdout share no rows beyond chance."""
    return check_split_leakage(frame, split, data, params)
