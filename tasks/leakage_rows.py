"""Row leakage: rows shared by the training part and the holdout, and traces of resampling.

- split_leakage (L1.4): holdout rows that repeat a training row (features and label, or the
  feature vector alone) more often than columns of that many distinct values explain.
- resampling_leakage (L1.2): in the input, minority rows copied more often than majority
  rows of the same count are, or lying on the segment between two other minority rows (as
  SMOTE makes them) more often than majority rows do. Majority rows are the control: they
  share the columns' granularity but were not resampled (all of them for copies, as many
  as the minority rows for segments, since neighbour density grows with the count).
"""

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_float_dtype
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from schemas.params import DataParams, LeakageParams
from schemas.report import CheckResult
from tasks.leakage import as_naive_utc
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


def collision_probability(values: pd.Series) -> float:
    """Return the chance that two random rows share this column's value."""
    shares = values.value_counts(normalize=True, dropna=False).to_numpy()
    return float(np.sum(shares * shares))


@dataclass(frozen=True)
class SharedRows:
    """Holdout rows that repeat a training row, and how many chance would give."""

    holdout_rows: int
    shared_vectors: int
    shared_rows: int
    conflicting_labels: int
    expected_by_chance: float

    @property
    def excess(self) -> float:
        return max(0.0, self.shared_vectors - self.expected_by_chance)

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
    frame: pd.DataFrame, features: list[str], label: str, train: np.ndarray, holdout: np.ndarray
) -> SharedRows:
    """Count holdout rows whose feature vector (and whole row with label) is in training.

    Rows equal in every feature are equal in the most varied one, so that column alone
    picks the candidates before whole rows are hashed.
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
    rows_h = row_hashes(frame.iloc[candidates_h][[*features, label]])
    rows_t = row_hashes(frame.iloc[candidates_t][[*features, label]])
    shared_vectors = int(pd.Index(vectors_h).isin(vectors_t).sum())
    shared_rows = int(pd.Index(rows_h).isin(rows_t).sum())
    # Under independent columns two rows share a vector with probability prod_j c_j.
    chance = 1.0
    for column in features:
        chance *= collision_probability(frame[column])
        if chance < 1e-300:
            break
    expected = len(holdout) * (1.0 - (1.0 - chance) ** len(train))
    return SharedRows(
        len(holdout), shared_vectors, shared_rows, shared_vectors - shared_rows, expected
    )


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
    noise = 3.0 * float(np.sqrt(measured.expected_by_chance)) + 1.0
    if measured.excess >= noise:
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
                f"label; {measured.expected_by_chance:.1f} expected by chance): the holdout "
                "measures memory, not generalisation",
                severity=measured.share / threshold if threshold > 0 else UNBOUNDED,
                evidence=measured.as_json(),
            )
        )
    return check_from_findings(
        SPLIT,
        "split",
        findings,
        f"{measured.shared_vectors} holdout row(s) repeat a training row's features, "
        f"{measured.expected_by_chance:.1f} expected by chance",
        {"threshold": threshold, **measured.as_json()},
    )


def check_split_leakage(
    frame: pd.DataFrame, split: Split, data: DataParams, params: LeakageParams
) -> CheckResult:
    """Measure and judge rows shared by the training part and the holdout, after the policy."""
    features = usable_columns(frame, data.feature_columns(frame.columns))
    measured = measure_split_sharing(frame, features, data.label, split.train, split.holdout)
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
    """A share of minority rows that looks resampled, against the same share among majority rows."""

    kind: Literal["copies", "segments"]
    minority_rows: int
    minority_share: float
    control_share: float
    columns: tuple[str, ...]

    @property
    def excess(self) -> float:
        return max(0.0, self.minority_share - self.control_share)

    @property
    def excess_rows(self) -> float:
        return self.excess * self.minority_rows

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "minority_rows": self.minority_rows,
            "minority_share": round(self.minority_share, 6),
            "majority_control_share": round(self.control_share, 6),
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


def _on_segment(points: np.ndarray, queries: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Return, per query, whether it lies inside the segment between two of its neighbours.

    The query s is strictly between a and b exactly when the directions s->a and s->b are
    opposite: the cosine of the angle between them is -1. One batched Gram matrix of the
    unit directions to all neighbours tests every pair at once.
    """
    s = points[queries][:, None, :]
    towards = points[neighbours] - s
    length = np.sqrt(np.einsum("qkj,qkj->qk", towards, towards))
    # A neighbour at the query's own position (a copy) has no direction.
    unit = np.divide(
        towards, length[..., None], out=np.zeros_like(towards), where=length[..., None] > 1e-12
    )
    cosine = np.matmul(unit, unit.transpose(0, 2, 1))
    return np.asarray((cosine <= _OPPOSITE).any(axis=(1, 2)))


def segment_share(points: np.ndarray, rng: np.random.Generator) -> float:
    """Return the share of (sampled) points on a segment between two of their neighbours.

    SMOTE makes a row as a + u (b - a) with a, b minority rows and u in (0, 1): it lies
    on the segment between two rows that are among its nearest neighbours. Which rows
    are neighbours depends on the scaling SMOTE saw, unknown here; neighbours are taken
    both in the raw units and in standardised units. Lying on a segment does not depend
    on the scaling, and is tested in standardised units.
    """
    n = len(points)
    if n < 3:
        return 0.0
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
    return float(_on_segment(scaled, queries, neighbours).mean())


def _continuous_columns(frame: pd.DataFrame, features: list[str]) -> list[str]:
    """Return the float columns with many distinct values: where SMOTE leaves its traces.

    SMOTE's output is fractional, so a column still of integer type was not interpolated;
    leaving integers out also avoids lattices on which points line up by chance.
    """
    chosen = []
    for column in features:
        if not is_float_dtype(frame[column].dtype):
            continue
        # SMOTE cannot interpolate missing values; a mostly empty column would only
        # remove rows from the test.
        if frame[column].isna().mean() > _MAX_MISSING:
            continue
        if frame[column].nunique() >= min(_MIN_DISTINCT, max(3, len(frame) // 2)):
            chosen.append(column)
    return chosen


def _complete_rows(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    values = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
    # Infinite or overflowing numbers count as missing (see tasks/quirks.py).
    return values[~(np.isnan(values) | is_overflowing(values)).any(axis=1)]


def measure_resampling(
    frame: pd.DataFrame, features: list[str], positive: np.ndarray
) -> list[ResamplingTrace]:
    """Measure copies and SMOTE segments among minority rows, against a majority control."""
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
    # Copies are compared with all majority rows: uniform copying gives both classes the
    # same share, while chance repeats of few distinct values only grow with more rows.
    key_hash = row_hashes(frame[[_key_column(frame, features, minority_rows)]])
    traces = [
        ResamplingTrace(
            "copies",
            len(minority_rows),
            copy_share(frame, minority_rows, features, key_hash),
            copy_share(frame, majority_rows, features, key_hash),
            (),
        )
    ]
    columns = _continuous_columns(minority, floats)
    if len(columns) >= 2:
        control = frame[columns].iloc[control_rows]
        traces.append(
            ResamplingTrace(
                "segments",
                len(minority_rows),
                segment_share(_complete_rows(minority, columns), np.random.default_rng(1)),
                segment_share(_complete_rows(control, columns), np.random.default_rng(1)),
                tuple(columns),
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
                f"against {m.control_share:.1%} of majority rows: the input looks "
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
