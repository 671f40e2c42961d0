"""Rows shared by the training part and the holdout (split_leakage, L1.4).

Holdout rows that repeat a training row (features and label, or the feature vector alone)
more often than the table itself explains. The chance level is the Good-Turing estimate of
how much of the feature distribution the training part has already seen: one minus the share
of training rows whose feature vector occurs once in training. It holds whatever the
columns' correlation (few distinct vectors: most holdout rows repeat one by chance;
continuous columns: none do). Copies made before the split inflate it, so it is capped by
twice the share of the later half of training repeating the earlier half, by label time
(copies sit next to their original in time and do not reach it), or in a seeded random order
without a label time (stored order groups related rows, as person-years stored by person:
the later half would repeat the earlier half far less than a random holdout repeats
training). The judgement is a one-sided binomial test of the count against the upper end of
that rate (the rate is itself estimated from a count), so a few repeats in a small holdout of
a table that has honest duplicates are chance, not a copy leak. With a time split, a holdout
row not after every training row fails too.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype
from pydantic import JsonValue
from scipy.special import betainc

from retrain_guard.schemas.params import DataParams, LeakageParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.dates import as_naive_utc
from retrain_guard.tasks.heap import release_freed_memory
from retrain_guard.tasks.leakage.findings import UNBOUNDED, Finding, Judged, judged_from_findings
from retrain_guard.tasks.leakage.policy import apply_policy
from retrain_guard.tasks.leakage.rows import (
    column_hashes,
    hashed_row_pair,
    hashed_rows,
    key_column,
    repeated,
    row_hashes,
)
from retrain_guard.tasks.quirks import usable_columns
from retrain_guard.tasks.split import Split
from retrain_guard.tasks.stored_table import Frame, StoredTable, take_rows

SPLIT = "split_leakage"
# Rows above which collision_probability counts values by sorting them (or their hashes).
_COUNT_BY_HASH_ROWS = 2_000_000
# split_leakage reports shared rows when a count this unlikely under the table's own repeat
# rate (one-sided binomial tail) is seen: about a 3-sigma event, and for a continuous table
# (a chance level near 0) any exact repeat.
_SPLIT_ALPHA = 1e-3
# Rows expected to repeat by chance at most this many: reported as 0.0 (expected_by_chance
# is rounded to 3 decimals; holdout rows x training rows x chance bounds it from above).
_NEGLIGIBLE = 1e-4


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


def measure_split_sharing(
    frame: Frame,
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
    key = key_column(frame, features)
    key_hash = column_hashes(frame, key)
    # The lookup table is built from the smaller side (`isin` hashes its argument): the
    # training rows whose key occurs in the holdout first, then the holdout rows whose key
    # occurs among those. Both sets are the same as looking the holdout up in training.
    candidates_t = train[pd.Index(key_hash[train]).isin(key_hash[holdout])]
    if not len(candidates_t):
        return SharedRows(len(holdout), 0, 0, 0, 0.0)
    candidates_h = holdout[pd.Index(key_hash[holdout]).isin(key_hash[candidates_t])]
    vectors_h, vectors_t = hashed_row_pair(frame, candidates_h, candidates_t, features)
    shared_vectors = int(pd.Index(vectors_h).isin(vectors_t).sum())
    # A shared row repeats the features and the label: pairs of (vector hash, label), the
    # label read once, at the candidates only (at 20M rows the whole label is 160 MB).
    both = np.concatenate([candidates_h, candidates_t])
    labels = take_rows(frame, both, [label])[label].to_numpy()
    labels_h, labels_t = labels[: len(candidates_h)], labels[len(candidates_h) :]
    shared_rows = int(
        pd.MultiIndex.from_arrays([vectors_h, labels_h])
        .isin(pd.MultiIndex.from_arrays([vectors_t, labels_t]))
        .sum()
    )
    del vectors_h, vectors_t, labels, labels_h, labels_t
    n_train = len(train)
    repeated = repeated_rows(frame, features, train, key_hash)
    seen = repeated / n_train
    timed = order is not None and (is_datetime64_any_dtype(order) or is_numeric_dtype(order))
    if order is not None and timed:
        times = as_naive_utc(order).reset_index(drop=True).iloc[train].to_numpy()
        train = train[np.argsort(times, kind="stable")]
        del times
    else:
        # Without a label time the stored order is no evidence: tables are often stored
        # grouped (by person, by plan, sorted by a code), which puts a person's repeated
        # rows in one half. A random order measures what a random holdout sees.
        train = np.random.default_rng(0).permutation(train)
    repeats, later_rows = later_half_repeats(frame, features, train, key_hash)
    del key_hash, train  # the reordered training rows, and the key's hashes, as the label
    later = repeats / later_rows if later_rows else 0.0
    # The seen mass is concave in the number of rows, so twice the later half's share (at
    # its upper two-sigma bound) bounds what the whole training part explains.
    bound = 2.0 * _upper(repeats, later_rows) / max(1, later_rows)
    # The Good-Turing share is itself a count (rows in repeated vectors): a training part
    # with a handful of honest duplicates measures its rate loosely, and the test allows it.
    seen_upper = min(1.0, _upper(repeated, n_train) / n_train)
    if seen <= 0:
        # No repeat in training: no measurable rate. The columns' value frequencies taken as
        # independent give the chance, so a chance repeat of a few-valued vector is not read
        # as a copy.
        chance = 1.0
        for column in features:
            chance *= collision_probability(frame[column])
            # Without a shared vector, what chance expects is only reported, to 3 decimals:
            # once far below that, a further column (a factor of at most 1) changes nothing
            # reported, and each reads its column whole (19 s of 45 at 20M rows).
            negligible = not shared_vectors and len(holdout) * n_train * chance < _NEGLIGIBLE
            if chance < 1e-300 or negligible:
                break
        rate = upper_rate = 1.0 - (1.0 - chance) ** n_train
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


def collision_probability(values: pd.Series) -> float:
    """Return the chance that two random rows share this column's value (missing values
    share theirs).

    Above _COUNT_BY_HASH_ROWS rows, without value_counts' hash table of every distinct
    value and its result (about 1 GiB for 20M distinct numbers): numbers and times of numpy
    dtypes by the runs of their sorted values (equal as value_counts has them, 0.0 and -0.0
    one value), other numbers and times by their sorted 64-bit hashes' runs (a collision of
    two hashes changes the sum by 2 / n**2 at most), text and categories by their factorized
    codes, counted (hashing text made a Python string of every value). There every missing
    value is one value; value_counts counts None and NaN of an object column apart.
    """
    n = len(values)
    if n <= _COUNT_BY_HASH_ROWS:
        shares = values.value_counts(normalize=True, dropna=False).to_numpy()
        return float(np.sum(shares * shares))
    missing = values.isna().to_numpy()
    present = values[~missing] if missing.any() else values
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biufmM":
        # Sorted as they are: hashing took two more arrays of the column's size, and their
        # temporaries set the split stage's peak at 20M rows.
        squares = squared_runs(np.sort(present.to_numpy()))
    elif is_numeric_dtype(dtype) or is_datetime64_any_dtype(dtype):
        hashes = np.sort(row_hashes(present.to_frame()))  # sorted copy: the hashes may be a view
        squares = squared_runs(hashes)
    else:
        codes, _ = pd.factorize(present, use_na_sentinel=True)
        squares = float(np.sum(np.bincount(codes).astype("float64") ** 2))
    squares += float(np.count_nonzero(missing)) ** 2
    return squares / (float(n) * float(n))


def squared_runs(ordered: np.ndarray) -> float:
    """Return the sum of the squared lengths of the runs of equal values in a sorted array.

    With arrays of the runs' size, not the values': the ends of runs where most values
    differ from the next, the repeats where most repeat it.
    """
    if not len(ordered):
        return 0.0
    same = ordered[1:] == ordered[:-1]
    if np.count_nonzero(same) * 2 >= len(same):
        ends = np.flatnonzero(~same) + 1
        lengths = np.diff(np.concatenate(([0], ends, [len(ordered)])))
        return float(np.sum(lengths.astype("float64") ** 2))
    # Few repeats: r consecutive positions of `same` are one value r + 1 times.
    repeats = np.flatnonzero(same)
    starts = np.flatnonzero(np.diff(repeats, prepend=-2) != 1)
    counts = (np.diff(np.append(starts, len(repeats))) + 1).astype("float64")
    singles = len(ordered) - float(counts.sum())
    return float(np.sum(counts**2)) + singles


def _upper(count: int, rows: int) -> float:
    """Return an upper two-sigma bound of a count of `rows` trials (binomial, plus one).

    For a rare event it is the Poisson bound count + 2 sqrt(count) + 1; as the share nears
    1 the spread narrows with it.
    """
    share = count / rows if rows else 0.0
    return float(count + 2.0 * np.sqrt(count * max(0.0, 1.0 - share)) + 1.0)


def later_half_repeats(
    frame: Frame, features: list[str], ordered: np.ndarray, key_hash: np.ndarray
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
    vectors_l, vectors_e = hashed_row_pair(frame, candidates_l, candidates_e, features)
    return int(pd.Index(vectors_l).isin(vectors_e).sum()), len(late)


def repeated_rows(frame: Frame, features: list[str], rows: np.ndarray, key_hash: np.ndarray) -> int:
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
    repeated_key = rows[repeated(key_hash[rows])]
    singletons = len(rows) - len(repeated_key)
    if len(repeated_key):
        vectors = pd.Series(hashed_rows(frame, repeated_key, features))
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
) -> Judged:
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
    return judged_from_findings(
        SPLIT,
        findings,
        f"{measured.shared_vectors} holdout row(s) repeat a training row's features, "
        f"{measured.expected_by_chance:.1f} expected by chance (up to "
        f"{measured.expected_upper or measured.expected_by_chance:.1f})",
        {"threshold": threshold, **measured.as_json()},
    )


def check_split_leakage(
    frame: Frame, split: Split, data: DataParams, params: LeakageParams
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
    if isinstance(frame, StoredTable):
        release_freed_memory()
    return judged[0]
