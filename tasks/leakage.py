"""Leakage detection: features whose values could not be known when the prediction is made.

Checks, each measured then judged against a threshold of `LeakageParams`:
- temporal_leakage (L3.1): date values, and declared known-at times, after the label time;
- missingness_leakage (L2): presence or absence of a value that reveals the class;
- target_leakage (L2): one feature alone ranks the classes almost perfectly (ROC-AUC);
- order_leakage (L2): the row order or the id ranks the classes, beyond what time explains;
- resampling_leakage (L1.2): traces of oversampling or SMOTE done before the split
  (see tasks/leakage_rows.py, which also holds split_leakage).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
)
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas.params import DataParams, LeakageParams
from schemas.report import CheckResult
from tasks.dates import (
    DateColumn,
    DayMonthOrder,
    as_naive_utc,
    has_date_hint,
    parse_date_like,
    parse_offset,
    read_label_time,
    to_days,
    unsettled_day_month,
)
from tasks.leakage_findings import UNBOUNDED, Finding, apply_policy, check_from_findings
from tasks.quirks import as_finite, column_kind, usable_columns

TEMPORAL = "temporal_leakage"
MISSINGNESS = "missingness_leakage"
TARGET = "target_leakage"
ORDER = "order_leakage"
CONFIG = "leakage_config_invalid"
AMBIGUOUS_DATES = "ambiguous_dates"

_TIME_BINS = 20
_OOF_SMOOTHING = 1.0
# Histogram bins of the O(n) AUC screen; pairs sharing a bin bound its error.
_SCREEN_BINS = 4096
# Rows binned at a time by the screen (as numpy's own histogram does).
_BLOCK = 1 << 16


def date_columns(frame: pd.DataFrame, exclude: set[str]) -> list[str]:
    """Return the datetime columns of the frame, leaving out `exclude`."""
    return [
        str(c)
        for c in frame.columns
        if c not in exclude and is_datetime64_any_dtype(frame[c].dtype)
    ]


# --- Recognising dates ---------------------------------------------------------------------


@dataclass(frozen=True)
class AmbiguousDates:
    """A text column of day-month-year dates whose day/month order the values do not settle."""

    column: str
    order: DayMonthOrder

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "order": self.order.order,
            "example": self.order.example,
            "other": self.order.other,
        }


def measure_ambiguous_dates(frame: pd.DataFrame, columns: list[str]) -> list[AmbiguousDates]:
    """Return the date-named text columns of day-month-year strings whose order is open.

    Such a column is not read as dates (parse_date_like leaves it text): reading it either
    way would be a guess.
    """
    found = []
    for column in columns:
        if has_date_hint(column) and (order := unsettled_day_month(frame[column])) is not None:
            found.append(AmbiguousDates(column, order))
    return found


def judge_ambiguous_dates(measured: list[AmbiguousDates]) -> CheckResult:
    """Warn, naming each column, when day/month order could not be settled."""
    if not measured:
        return CheckResult(
            code=AMBIGUOUS_DATES,
            stage="leakage",
            status="pass",
            summary="no date column with an unsettled day/month order",
        )
    parts = [f"{m.column!r}: {m.order.reason()}" for m in measured]
    return CheckResult(
        code=AMBIGUOUS_DATES,
        stage="leakage",
        status="warn",
        columns=[m.column for m in measured],
        summary="day/month order not settled, so these columns stay text and are not checked "
        "as dates: "
        + "; ".join(parts)
        + ". Write the dates as ISO 8601 (YYYY-MM-DD) in the extract, or fix the wrong values",
        metrics={"columns": [m.as_json() for m in measured]},
    )


def date_like_columns(frame: pd.DataFrame, columns: list[str]) -> list[DateColumn]:
    """Return the columns that read as dates (see `parse_date_like`)."""
    found = []
    for column in columns:
        parsed = parse_date_like(column, frame[column])
        if parsed is not None:
            found.append(parsed)
    return found


# --- Temporal leakage ----------------------------------------------------------------------


@dataclass(frozen=True)
class DateLead:
    """How many of a column's known-at times fall after the row's label time, and by how much."""

    column: str
    non_null: int
    after_label_time: int
    max_lead_days: float
    source: str = "datetime column"

    @property
    def declared(self) -> bool:
        """Whether the times come from a known-at declaration rather than the column itself."""
        return self.source.startswith("declared")

    @property
    def share(self) -> float:
        return self.after_label_time / self.non_null if self.non_null else 0.0

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "source": self.source,
            "non_null": self.non_null,
            "after_label_time": self.after_label_time,
            "share_after_label_time": round(self.share, 6),
            "max_lead_days": round(self.max_lead_days, 3),
        }


def whole_days(times: pd.Series) -> bool:
    """Return whether every present time is a midnight: the label time is only a date."""
    # A strided sample usually settles "no" at once; only "yes" needs every row.
    sample = times.iloc[:: max(1, len(times) // 1000)].dropna()
    if not (sample == sample.dt.floor("D")).all():
        return False
    present = times.dropna()
    return bool(len(present)) and bool((present == present.dt.floor("D")).all())


def _lead(column: str, known: pd.Series, reference: pd.Series, source: str) -> DateLead:
    known = as_naive_utc(known)
    present = known.notna() & reference.notna()
    lead = (known - reference)[present]
    after = lead > pd.Timedelta(0)
    n_after = int(after.sum())
    max_lead = lead[after].max() / pd.Timedelta(days=1) if n_after else 0.0
    return DateLead(column, int(present.sum()), n_after, float(max_lead), source)


def measure_post_label_dates(
    frame: pd.DataFrame, label_time: str, columns: list[str]
) -> list[DateLead]:
    """Measure, per date-like column, how many non-null values fall after the label time.

    A label time given as a date says nothing about the hour: a value later that same day
    may still precede the prediction, so then only later days count.
    """
    reference = as_naive_utc(frame[label_time])
    by_day = whole_days(reference)
    return [
        _lead(
            d.column, as_naive_utc(d.values).dt.floor("D") if by_day else d.values, reference, d.how
        )
        for d in date_like_columns(frame, columns)
    ]


class DeclarationError(ValueError):
    """A known-at declaration names a column that is not there or is not a time."""


def measure_declared_availability(
    frame: pd.DataFrame, label_time: str, declarations: dict[str, str | pd.Timedelta]
) -> list[DateLead]:
    """Measure, per declared feature, how often it becomes known after the row's label time.

    Args:
        frame: the table.
        label_time: column of the moment each prediction is made.
        declarations: feature column -> the column holding the time its value becomes known,
            or an offset from the label time (a Timedelta; positive = known later).
            Rows where the feature is missing are not counted.

    Raises:
        DeclarationError: a named column is missing or cannot be read as times.
    """
    reference = as_naive_utc(pd.to_datetime(frame[label_time]))
    measured = []
    for feature, when in declarations.items():
        if feature not in frame.columns:
            raise DeclarationError(f"leakage.known_at names feature {feature!r}: no such column")
        if isinstance(when, pd.Timedelta):
            known = reference + when
            source = f"declared known at label time {_signed(when)}"
        else:
            if when not in frame.columns:
                raise DeclarationError(
                    f"leakage.known_at[{feature!r}] names column {when!r}: no such column"
                )
            parsed = parse_date_like(when, frame[when]) or _forced_dates(when, frame[when])
            known = parsed.values
            source = f"declared known at column {when!r}"
        known = known.where(frame[feature].notna())
        measured.append(_lead(feature, known, reference, source))
    return measured


def _forced_dates(name: str, values: pd.Series) -> DateColumn:
    # The declaration says the column holds dates: read it like a label time, never guessing.
    read = read_label_time(name, values, subject="known-at column")
    if read.unsettled is not None:
        raise DeclarationError(
            f"leakage.known_at: column {name!r} holds day-month-year dates whose order "
            f"is not settled ({read.unsettled.reason()}); write them as ISO 8601"
        )
    if read.values is None or read.bad_rows:
        raise DeclarationError(
            "leakage.known_at: "
            + (read.problem or f"column {name!r} does not hold dates or datetimes")
        )
    return DateColumn(name, as_naive_utc(read.values), "declared")


def _signed(offset: pd.Timedelta) -> str:
    return ("+" if offset >= pd.Timedelta(0) else "-") + str(abs(offset))


def declarations_from_params(
    params: LeakageParams, columns: Iterable[str] = ()
) -> dict[str, str | pd.Timedelta]:
    """Turn leakage.known_at into declarations: texts in the offset grammar become Timedeltas.

    A text that reads as an offset ('0d', '-1d') is an offset, as in a YAML schema's roles.

    Raises:
        DeclarationError: such a text is also the name of one of `columns` (ambiguous).
    """
    present = set(columns)
    out: dict[str, str | pd.Timedelta] = {}
    for feature, when in params.known_at.items():
        offset = parse_offset(when)
        if offset is not None and when.strip() in present:
            raise DeclarationError(
                f"leakage.known_at[{feature!r}] = {when!r} reads both as an offset from the "
                f"label time and as the column {when.strip()!r}; an offset-like text is always "
                "an offset: rename the column to declare it as the known-at time"
            )
        out[feature] = when.strip() if offset is None else offset
    return out


def judge_post_label_dates(
    measured: list[DateLead], params: LeakageParams, label_time: str
) -> CheckResult:
    """Fail when a column's share after the label time exceeds the threshold; warn above 0."""
    threshold = params.max_share_after_label_time
    findings = []
    for m in measured:
        if m.share <= 0:
            continue
        findings.append(
            Finding(
                check=TEMPORAL,
                status="fail" if m.share > threshold else "warn",
                columns=(m.column,),
                measure="share_after_label_time",
                value=m.share,
                threshold=threshold,
                taxonomy="L3.1",
                detail=f"{m.column}: {m.share:.1%} of values ({m.after_label_time} of "
                f"{m.non_null}) after {label_time}, up to {m.max_lead_days:.0f} days after "
                f"({m.source})",
                severity=m.share / threshold if threshold > 0 else UNBOUNDED,
                evidence=m.as_json(),
            )
        )
    checked = check_from_findings(
        TEMPORAL,
        "leakage",
        findings,
        f"no value among {len(measured)} date or declared column(s) falls after {label_time!r}",
        {
            "threshold": threshold,
            "label_time": label_time,
            "columns_checked": len(measured),
            "measured": [m.as_json() for m in measured],
        },
    )
    undeclared = [
        c for c in checked.columns if not any(m.column == c and m.declared for m in measured)
    ]
    if not undeclared:
        return checked
    hint = declaration_hint(undeclared[0])
    return checked.model_copy(
        update={
            "summary": f"{checked.summary}. {hint}",
            "metrics": {**checked.metrics, "remedy": hint},
        }
    )


def declaration_hint(column: str) -> str:
    """Return how to declare a date column whose future values are known in advance."""
    return (
        f"If such a value is known before the label time (a scheduled due date, an expiry), "
        f"declare when it becomes known: leakage.known_at: {{{column}: '0d'}} (known at the "
        f"label time; '-1d' a day before) or {{{column}: COLUMN}} (the column holding that "
        f"time); otherwise drop the column"
    )


# How the undeclared date-like columns are measured: in this process by default, or spread
# over a task runner (tasks/parallel.py); either way the same DateLeads come back.
DateMeasure = Callable[[pd.DataFrame, str, list[str]], list[DateLead]]


def check_temporal_leakage(
    frame: pd.DataFrame,
    label_time: str | None,
    features: list[str],
    params: LeakageParams,
    measure: DateMeasure = measure_post_label_dates,
) -> CheckResult:
    """Measure and judge every date-like column and every declaration against the label time.

    A declared column is judged by its declaration only: a date that lies in the future
    but is known in advance (a scheduled due date) is declared with offset '0d' (known at
    the label time) or a negative one (known that long before).
    """
    if label_time is None:
        return CheckResult(
            code=TEMPORAL,
            stage="leakage",
            status="not_run",
            summary="no label time given (data.label_time), so dates cannot be checked",
        )
    undeclared = [c for c in features if c not in params.known_at]
    measured = measure(frame, label_time, undeclared)
    if params.known_at:
        measured += measure_declared_availability(
            frame, label_time, declarations_from_params(params, map(str, frame.columns))
        )
    return judge_post_label_dates(measured, params, label_time)


# --- Missingness that reveals the class ----------------------------------------------------


@dataclass(frozen=True)
class PresenceSplit:
    """The most class-revealing side (present or absent) of one column's missingness."""

    column: str
    side: str
    in_class: str
    rows: int
    share_of_class: float
    share_of_other: float
    ratio: float

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "column": self.column,
            "side": self.side,
            "class": self.in_class,
            "rows": self.rows,
            "share_of_class": round(self.share_of_class, 6),
            "share_of_other_class": round(self.share_of_other, 6),
            "ratio": round(self.ratio, 3),
        }


def measure_missingness(
    frame: pd.DataFrame, columns: list[str], positive: np.ndarray, min_rows: int
) -> list[PresenceSplit]:
    """For each partly missing column, find the side and class with the largest ratio.

    The ratio is P(side | class) / P(side | other class), each share smoothed by half a row
    so that an empty cell gives a large finite ratio instead of a division by zero.
    """
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    # Gathering the positive rows' flags beats a full-length AND when positives are rare.
    positive_rows = np.flatnonzero(positive)
    measured = []
    for column in columns:
        present = frame[column].notna().to_numpy()
        n_present = int(np.count_nonzero(present))
        if n_present in (0, len(present)):
            continue
        pos_present = int(np.count_nonzero(present[positive_rows]))
        neg_present = n_present - pos_present
        best: PresenceSplit | None = None
        best_ratio = 0.0
        for side, pos_side, neg_side in (
            ("present", pos_present, neg_present),
            ("absent", n_pos - pos_present, n_neg - neg_present),
        ):
            for cls, mine, n_mine, other, n_other in (
                ("positive", pos_side, n_pos, neg_side, n_neg),
                ("negative", neg_side, n_neg, pos_side, n_pos),
            ):
                if mine < min_rows:
                    continue
                share_mine = (mine + 0.5) / (n_mine + 1)
                share_other = (other + 0.5) / (n_other + 1)
                ratio = share_mine / share_other
                if ratio > best_ratio:
                    best_ratio = ratio
                    best = PresenceSplit(
                        column, side, cls, mine, mine / n_mine, other / n_other, ratio
                    )
        if best is not None:
            measured.append(best)
    return measured


def judge_missingness(measured: list[PresenceSplit], params: LeakageParams) -> CheckResult:
    """Fail when presence is missingness_ratio_fail times likelier in one class; warn lower."""
    findings = []
    for m in measured:
        if m.ratio < params.missingness_ratio_warn:
            continue
        findings.append(
            Finding(
                check=MISSINGNESS,
                status="fail" if m.ratio >= params.missingness_ratio_fail else "warn",
                columns=(m.column,),
                measure="presence_ratio",
                value=m.ratio,
                threshold=params.missingness_ratio_fail,
                taxonomy="L2",
                detail=f"{m.column}: {m.side} for {m.share_of_class:.1%} of {m.in_class} rows "
                f"but {m.share_of_other:.2%} of the others ({m.ratio:.0f}x): whether it is "
                "filled reveals the class",
                severity=m.ratio / params.missingness_ratio_fail,
                evidence=m.as_json(),
            )
        )
    return check_from_findings(
        MISSINGNESS,
        "leakage",
        findings,
        f"the missingness of {len(measured)} partly missing column(s) does not reveal the class",
        {
            "fail_ratio": params.missingness_ratio_fail,
            "warn_ratio": params.missingness_ratio_warn,
            "columns_checked": len(measured),
        },
    )


# --- Single-feature ROC-AUC ----------------------------------------------------------------


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
    c = count_pairs(values, positive)
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


def _placed_auc(wins: float, c: PairCounts, side: str) -> float:
    """Return the (unfolded) AUC for given wins among valued rows and a missing placement."""
    total = float(c.n_pos + c.m_pos) * float(c.n_neg + c.m_neg)
    if not total:
        return 0.5
    base = wins + 0.5 * c.m_pos * c.m_neg
    if side == "low":
        base += c.n_pos * c.m_neg
    elif side == "high":
        base += c.m_pos * c.n_neg
    return base / total


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
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return None
    scale = (n_bins - 1) / (high - low)
    # Binned a block of rows at a time: temporaries of a block stay in the CPU cache, while
    # each fresh million-row temporary costs more in page faults than in arithmetic.
    rows = np.zeros(n_bins + 1, dtype=np.intp)
    for start in range(0, len(values), _BLOCK):
        block = _bin_index(values[start : start + _BLOCK], low, scale, n_bins)
        rows += np.bincount(block, minlength=n_bins + 1)
    hits = np.bincount(_bin_index(values[positive], low, scale, n_bins), minlength=n_bins + 1)
    rows, hits = rows.astype("float64"), hits.astype("float64")
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
        lowest = _placed_auc(wins_apart, counts, side)
        highest = _placed_auc(wins_apart + shared, counts, side)
        if max(highest, 1.0 - lowest) >= below:
            return None
        middle = (lowest + highest) / 2
        folded = max(middle, 1.0 - middle)
        if best is None or folded > best[0]:
            best = (folded, side, (highest - lowest) / 2)
    return best


def fold_of_rows(n: int) -> np.ndarray:
    """Return a fixed pseudo-random half split of the rows (0 or 1 each)."""
    return np.random.default_rng(0).integers(0, 2, size=n, dtype="int64")


def out_of_fold_rates(codes: np.ndarray, positive: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Score each row by its category's positive rate in the other half of the rows.

    Rates from the other half (smoothed towards the overall rate) keep a column of
    unique values, such as free text, from scoring perfectly on its own rows.
    """
    k = int(codes.max()) + 1 if len(codes) else 1
    cell = folds * k + codes
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
    dtype = values.dtype
    if is_datetime64_any_dtype(dtype):
        return to_days(values)
    if is_bool_dtype(dtype) or is_numeric_dtype(dtype):
        # Infinite or overflowing numbers count as missing (see tasks/quirks.py).
        return as_finite(values.to_numpy(dtype="float64", na_value=np.nan))
    return None


def category_codes(values: pd.Series) -> np.ndarray:
    """Return integer codes of the values, missing as a category of its own."""
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(codes, dtype="int64")


# "One value per class" is evidence of a function of the label only when each class has at
# least this many rows: with one row per class every column with two distinct values is one.
MIN_ROWS_FOR_FUNCTION = 10
# A single feature's (or the row order's) ROC-AUC judges nothing below this many rows in the
# smaller class: with one minority row half of all honest columns reach AUC 1.0 by chance
# (target_leakage and order_leakage are not_run).
MIN_ROWS_FOR_TARGET_AUC = 3


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


def time_bins(label_times: pd.Series, n_bins: int = _TIME_BINS) -> list[np.ndarray] | None:
    """Return the row positions of each label-time quantile bin, or None without times."""
    stamps = as_naive_utc(label_times).astype("datetime64[ns]").to_numpy()
    present = ~np.isnat(stamps)
    n_present = int(np.count_nonzero(present))
    if n_present < 2:
        return None
    # Each million-row temporary costs page faults: view rather than convert, and mask
    # only when some label times are missing.
    as_int = stamps.view("int64").astype("float64")
    complete = n_present == len(present)
    quantiles = np.linspace(0, 1, n_bins + 1)[1:-1]
    edges = np.unique(np.quantile(as_int if complete else as_int[present], quantiles))
    bins = np.searchsorted(edges, as_int, side="right")
    # Rows without a label time share a bin of their own. Bin numbers that fit a byte are
    # sorted by radix sort, in linear time.
    if not complete:
        bins[~present] = len(edges) + 1
    small = np.uint8 if len(edges) + 1 <= np.iinfo(np.uint8).max else np.int64
    bins = bins.astype(small)
    order = np.argsort(bins, kind="stable")
    # Bin sizes by counting, not by sorting the bin numbers once more.
    ends = np.cumsum(np.bincount(bins))
    starts = np.append(0, ends[:-1])
    return [order[start:end] for start, end in zip(starts, ends, strict=True) if end > start]


def stratified_auc(
    scores: np.ndarray, positive: np.ndarray, bins: list[np.ndarray]
) -> float | None:
    """Return the folded ROC-AUC counting only pairs of rows in the same time bin.

    A score that merely follows time (an id issued in order, a date) ranks classes only
    as much as the label rate drifts; inside a narrow time bin that drift is gone.
    """
    wins = pairs = 0.0
    for rows in bins:
        w, p = auc_pairs(scores[rows], positive[rows])
        wins += w
        pairs += p
    if not pairs:
        return None
    auc = wins / pairs
    return max(auc, 1.0 - auc)


def _ranked_scores(values: np.ndarray, missing_side: str) -> np.ndarray:
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


def measure_target_auc(
    frame: pd.DataFrame,
    columns: list[str],
    positive: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> list[FeaturePower]:
    """Measure each column's single-feature ROC-AUC over all rows.

    Numbers and dates use their raw value, categories their out-of-fold positive rate;
    missing is a value of its own. An O(n) histogram bound settles columns that cannot
    reach `recheck_at` (their AUC carries its largest error); the others get the exact
    sorting-based AUC and, at or above `recheck_at`, a second measurement within time
    bins, so that a column that only follows time can be told apart.
    """
    folds = fold_of_rows(len(positive))
    positive_rows = np.flatnonzero(positive)

    def measure(column: str) -> FeaturePower:
        numbers = numeric_view(frame[column])
        codes = None
        if numbers is not None:
            kind, scores = "numeric", numbers
        else:
            codes = category_codes(frame[column])
            kind, scores = "categorical", out_of_fold_rates(codes, positive, folds)
        screened = screen_auc(scores, positive_rows, recheck_at)
        if screened is not None:
            auc, missing, error = screened
            return FeaturePower(column, kind, auc, missing, max_error=error)
        auc, missing = auc_with_missing(scores, positive)
        values = scores if codes is None else codes
        function = bool(auc >= recheck_at) and is_function_of_label(values, positive)
        within = None
        if auc >= recheck_at and bins is not None and not function:
            within = stratified_auc(_ranked_scores(scores, missing), positive, bins)
        return FeaturePower(column, kind, auc, missing, function, within)

    return [measure(column) for column in columns]


def too_few_to_rank(class_rows: int, label: str, code: str = TARGET) -> CheckResult:
    """Return a ranking check (target_leakage, order_leakage) not run: the smaller class has
    too few rows for a ROC-AUC to mean anything.
    """
    return CheckResult(
        code=code,
        stage="leakage",
        status="not_run",
        columns=[label],
        summary=f"not run: the smaller class of {label!r} has {class_rows} row(s); judging a "
        f"feature's power over the label needs at least {MIN_ROWS_FOR_TARGET_AUC}",
        metrics={"smaller_class_rows": class_rows, "needed": MIN_ROWS_FOR_TARGET_AUC},
    )


def judge_target_auc(measured: list[FeaturePower], params: LeakageParams) -> CheckResult:
    """Fail at target_auc_fail (or a function of the label), warn at target_auc_warn.

    A column whose AUC falls below the warning level once only pairs from the same time
    bin count is explained by time (the label rate drifts) and is not reported.
    """
    fail_at, warn_at = params.target_auc_fail, params.target_auc_warn
    findings = []
    explained = []
    for m in measured:
        if not m.function_of_label and m.auc < warn_at:
            continue
        within = m.auc_within_time
        if not m.function_of_label and within is not None and within < warn_at:
            explained.append(m.column)
            continue
        failing = m.function_of_label or m.auc >= fail_at
        how = (
            "takes one value per class (a function of the label)"
            if m.function_of_label
            else f"alone ranks the classes with ROC-AUC {m.auc:.4f}"
        )
        findings.append(
            Finding(
                check=TARGET,
                status="fail" if failing else "warn",
                columns=(m.column,),
                measure="function_of_label" if m.function_of_label else "roc_auc",
                value=m.auc,
                threshold=fail_at,
                taxonomy="L2",
                detail=f"{m.column} {how} ({m.kind}"
                + (f", missing ranked {m.missing}" if m.missing != "none" else "")
                + ")",
                severity=(2.0 if m.function_of_label else 0.0)
                + (m.auc - 0.5) / max(fail_at - 0.5, 1e-9),
                evidence=m.as_json(),
            )
        )
    strongest = sorted(measured, key=lambda m: -m.auc)[:10]
    return check_from_findings(
        TARGET,
        "leakage",
        findings,
        f"no single feature among {len(measured)} ranks the classes at ROC-AUC >= {warn_at}"
        + (f" (explained by time: {', '.join(explained)})" if explained else ""),
        {
            "fail_auc": fail_at,
            "warn_auc": warn_at,
            "columns_checked": len(measured),
            "explained_by_time": list(explained),
            "strongest": [m.as_json() for m in strongest],
        },
    )


# --- Id and row order ----------------------------------------------------------------------


def order_scores(values: pd.Series) -> np.ndarray:
    """Return the sort rank of the values (numbers as they are, strings in text order)."""
    numbers = numeric_view(values)
    if numbers is not None:
        return numbers
    text = pa.array(values.astype("string[pyarrow]"))
    if text.null_count == 0 and len(text) > 1:
        # Ids are mostly issued in row order: one vectorised comparison of neighbours
        # proves the text sorted, and then ranks follow without sorting a million strings.
        follows = pc.greater_equal(text[1:], text[:-1])
        if pc.all(follows).as_py():
            starts = np.ones(len(text), dtype=bool)
            starts[1:] = np.asarray(pc.not_equal(text[1:], text[:-1]))
            if starts.all():
                return np.arange(1.0, len(text) + 1.0)
            # Equal texts share the rank of their first row, as tiebreaker="min" gives.
            first = np.maximum.accumulate(np.where(starts, np.arange(len(text)), 0))
            return first.astype("float64") + 1.0
    ranked = pc.rank(text, tiebreaker="min")
    rank = np.asarray(ranked.to_numpy(zero_copy_only=False), dtype="float64")
    return np.where(values.isna().to_numpy(), np.nan, rank)


def measure_order(
    frame: pd.DataFrame,
    id_column: str | None,
    positive: np.ndarray,
    bins: list[np.ndarray] | None,
    recheck_at: float,
) -> list[FeaturePower]:
    """Measure how well the row order and the id rank the classes, overall and within time.

    As for features, an order that cannot reach `recheck_at` keeps its bounded AUC; the
    others are measured exactly and again within time bins.
    """
    sources = [("row order", np.arange(len(frame), dtype="float64"))]
    if id_column:
        sources.append((id_column, order_scores(frame[id_column])))
    positive_rows = np.flatnonzero(positive)
    measured = []
    for name, scores in sources:
        screened = screen_auc(scores, positive_rows, recheck_at)
        if screened is not None:
            auc, missing, error = screened
            measured.append(FeaturePower(name, "order", auc, missing, max_error=error))
            continue
        auc, missing = auc_with_missing(scores, positive)
        within = None
        if bins is not None:
            within = stratified_auc(_ranked_scores(scores, missing), positive, bins)
        measured.append(FeaturePower(name, "order", auc, missing, False, within))
    return measured


def judge_order(
    measured: list[FeaturePower], params: LeakageParams, label_time: str | None
) -> CheckResult:
    """Warn when the row order or id ranks the classes and time does not explain it."""
    warn_at = params.order_auc_warn
    findings = []
    explained = []
    for m in measured:
        if m.auc < warn_at:
            continue
        if m.auc_within_time is not None and m.auc_within_time < warn_at:
            explained.append(m.column)
            continue
        why = (
            f"and still {m.auc_within_time:.3f} among rows of the same {label_time} period"
            if m.auc_within_time is not None
            else "and no data.label_time is given that could explain it"
        )
        findings.append(
            Finding(
                check=ORDER,
                status="warn",
                columns=(m.column,) if m.column != "row order" else (),
                measure="roc_auc",
                value=m.auc,
                threshold=warn_at,
                taxonomy="L2",
                detail=f"{m.column} ranks the classes with ROC-AUC {m.auc:.3f} {why}: rows "
                "were ordered or numbered by class",
                severity=(m.auc - 0.5) / max(warn_at - 0.5, 1e-9),
                evidence=m.as_json(),
            )
        )
    return check_from_findings(
        ORDER,
        "leakage",
        findings,
        "neither the row order nor the id ranks the classes"
        + (f" beyond what time explains ({', '.join(explained)})" if explained else ""),
        {
            "warn_auc": warn_at,
            "explained_by_time": list(explained),
            "measured": [m.as_json() for m in measured],
        },
    )


# --- All checks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LeakageOutcome:
    """The leakage checks after the on_leakage policy, and the feature columns it dropped."""

    checks: list[CheckResult]
    dropped: list[str] = field(default_factory=list)
    on_leakage: str = "fail"

    def describe(self) -> dict[str, JsonValue]:
        return {"on_leakage": self.on_leakage, "dropped_columns": list(self.dropped)}


def _temporal(
    frame: pd.DataFrame,
    data: DataParams,
    features: list[str],
    params: LeakageParams,
    measure_dates: DateMeasure,
) -> CheckResult:
    """Return temporal_leakage, or leakage_config_invalid when a declaration is wrong."""
    try:
        return check_temporal_leakage(frame, data.label_time, features, params, measure_dates)
    except DeclarationError as exc:
        return CheckResult(
            code=CONFIG,
            stage="leakage",
            status="fail",
            columns=sorted(params.known_at),
            summary=str(exc),
            metrics={"known_at": dict(params.known_at)},
        )


def _ambiguous(frame: pd.DataFrame, data: DataParams, features: list[str]) -> CheckResult:
    dated = [*features, *([data.label_time] if data.label_time else [])]
    return judge_ambiguous_dates(measure_ambiguous_dates(frame, dated))


# The checks that look at dates only, never at the label.
LABEL_FREE_CHECKS = (TEMPORAL, AMBIGUOUS_DATES)


def detect_label_free_leakage(
    frame: pd.DataFrame,
    data: DataParams,
    params: LeakageParams,
    measure_dates: DateMeasure = measure_post_label_dates,
) -> LeakageOutcome:
    """Run only the checks that need no label (LABEL_FREE_CHECKS), with the on_leakage policy.

    For a table whose label cannot be used: its dates are still judged, so one pass shows
    every finding.
    """
    features = usable_columns(frame, data.feature_columns(frame.columns))
    checks = [
        _temporal(frame, data, features, params, measure_dates),
        _ambiguous(frame, data, features),
    ]
    if checks[0].code == CONFIG:
        return LeakageOutcome(checks, [], params.on_leakage)
    judged, dropped = apply_policy(checks, params.on_leakage)
    return LeakageOutcome(judged, dropped, params.on_leakage)


def detect_leakage(
    frame: pd.DataFrame,
    data: DataParams,
    params: LeakageParams,
    positive_class: object,
    measure_dates: DateMeasure = measure_post_label_dates,
) -> LeakageOutcome:
    """Run every whole-table leakage check, then apply the on_leakage policy."""
    from tasks.leakage_rows import check_resampling_leakage

    # Columns no check can use (lists, bytes, mixed objects) are left out of every measure.
    features = usable_columns(frame, data.feature_columns(frame.columns))
    id_column = (
        data.id_column if data.id_column and column_kind(frame[data.id_column]) is None else None
    )
    positive = (frame[data.label] == positive_class).to_numpy()
    smaller_class = int(min(np.count_nonzero(positive), np.count_nonzero(~positive)))
    bins = time_bins(frame[data.label_time]) if data.label_time else None
    checks = [
        _temporal(frame, data, features, params, measure_dates),
        judge_missingness(
            measure_missingness(frame, features, positive, params.min_evidence_rows), params
        ),
        judge_target_auc(
            measure_target_auc(frame, features, positive, bins, params.target_auc_warn), params
        )
        if smaller_class >= MIN_ROWS_FOR_TARGET_AUC
        else too_few_to_rank(smaller_class, data.label),
        judge_order(
            measure_order(frame, id_column, positive, bins, params.order_auc_warn),
            params,
            data.label_time,
        )
        if smaller_class >= MIN_ROWS_FOR_TARGET_AUC
        else too_few_to_rank(smaller_class, data.label, ORDER),
        check_resampling_leakage(frame, features, positive, params, data.label),
        _ambiguous(frame, data, features),
    ]
    if checks[0].code == CONFIG:
        return LeakageOutcome(checks, [], params.on_leakage)
    judged, dropped = apply_policy(checks, params.on_leakage)
    return LeakageOutcome(judged, dropped, params.on_leakage)


@task(name="detect-leakage", cache_policy=NO_CACHE, persist_result=False)
def detect_leakage_task(
    frame: pd.DataFrame, data: DataParams, params: LeakageParams, positive_class: object
) -> LeakageOutcome:
    """Run every leakage check on the whole table and apply the on_leakage policy."""
    return detect_leakage(frame, data, params, positive_class)
