"""Leak cases with known ground truth: clean data, each leak injected, and honest look-alikes.

`clean_frame` builds honest data with dates, categories, missing values, a strong but
honest feature (ROC-AUC about 0.85), dates just before the label time, an integer column
in the range of years that is not a year, and free text. Each `LEAKS` entry injects one
leak and names the check and columns that must report it; each `LOOKALIKES` entry builds
data that resembles a leak and names the columns that must not be reported.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, RandomOverSampler

from schemas.params import DataParams, LeakageParams, SplitParams
from schemas.report import CheckResult
from tasks.leakage import detect_leakage
from tasks.leakage_rows import check_split_leakage
from tasks.split import make_split

LABEL, TIME, ID = "y", "event_time", "txn_id"
START = pd.Timestamp("2025-01-01")
SEGMENTS = ("a", "b", "c", "d", "e", "f")
NUMERIC = ["amount", "honest_score", "balance", "tenure_months"]


@dataclass(frozen=True)
class Case:
    """A frame, how to read it, and what the checks must (not) report on it."""

    name: str
    frame: pd.DataFrame
    expected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    innocent: tuple[str, ...] = ()
    leakage: LeakageParams = field(default_factory=LeakageParams)
    drop: tuple[str, ...] = ()
    # The status the expected checks must reach: subtle leaks only warn by design.
    status: str = "fail"

    @property
    def data(self) -> DataParams:
        return DataParams(path="-", label=LABEL, label_time=TIME, id_column=ID, drop=[*self.drop])


def clean_frame(
    rows: int = 4000, positive_rate: float = 0.1, seed: int = 0, drift: float = 0.0
) -> pd.DataFrame:
    """Return honest data; `drift` > 0 makes positives likelier later (rate ~ t ** drift)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1, rows))
    event_time = START + pd.to_timedelta(np.round(t * 365 * 86_400), unit="s")
    weight = (t**drift) * (drift + 1) if drift else np.ones(rows)
    y = (rng.random(rows) < np.clip(positive_rate * weight, 0, 0.95)).astype("int64")
    segment_p = np.where(y[:, None] == 1, [0.3, 0.25, 0.15, 0.1, 0.1, 0.1], [1 / 6] * 6)
    cum = segment_p.cumsum(axis=1)
    segment = np.array(SEGMENTS)[(rng.random((rows, 1)) > cum).sum(axis=1)]
    balance = rng.gamma(2.0, 500.0, rows)
    balance[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            ID: [f"tx-{i:07d}" for i in range(rows)],
            TIME: event_time,
            "amount": np.round(rng.lognormal(3.5, 0.6, rows), 2),
            # Honest and strong: shifted by 1.47 sd for positives, ROC-AUC ~ 0.85.
            "honest_score": rng.normal(0, 1, rows) + 1.47 * y,
            "segment": segment,
            "tenure_months": rng.integers(1, 121, rows),
            "balance": balance,
            "last_login_at": event_time - pd.to_timedelta(rng.uniform(60, 7200, rows), unit="s"),
            "account_opened_at": (
                event_time - pd.to_timedelta(rng.integers(30, 3000, rows), unit="D")
            ).floor("D"),
            # In the range of years but a balance: read as years it would lie after the label.
            "points_balance": rng.integers(2030, 2090, rows),
            "signup_year": event_time.year - rng.integers(0, 10, rows),
            "note": [f"n{v:x}" for v in rng.integers(0, 2**40, rows)],
            LABEL: y,
        }
    )


def _rng(frame: pd.DataFrame) -> np.random.Generator:
    return np.random.default_rng(len(frame) + 17)


def _days(rng: np.random.Generator, low: float, high: float, n: int) -> pd.TimedeltaIndex:
    return pd.to_timedelta(rng.uniform(low, high, n), unit="D")


def date_after_all(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    out = frame.assign(settled_at=frame[TIME] + _days(rng, 0.05, 60, len(frame)))
    return Case("date after label time (all rows)", out, {"temporal_leakage": ("settled_at",)})


def _late_share(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    rng = _rng(frame)
    lead = _days(rng, -30, -1, len(frame)).to_numpy().copy()
    late = np.zeros(len(frame), dtype=bool)
    late[rng.choice(len(frame), max(1, round(share * len(frame))), replace=False)] = True
    lead[late] = -lead[late]
    return frame.assign(updated_at=frame[TIME] + lead)


def date_after_share(frame: pd.DataFrame) -> Case:
    return Case(
        "date after label time (5% of rows)",
        _late_share(frame, 0.05),
        {"temporal_leakage": ("updated_at",)},
    )


def date_after_few(frame: pd.DataFrame) -> Case:
    return Case(
        "date after label time (0.5% of rows: warns)",
        _late_share(frame, 0.005),
        {"temporal_leakage": ("updated_at",)},
        status="warn",
    )


def date_only_positives(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    flagged = frame[TIME] - _days(rng, 0.001, 1, len(frame))
    filled = (frame[LABEL] == 1) & (rng.random(len(frame)) < 0.7)
    out = frame.assign(flagged_at=flagged.where(filled))
    return Case(
        "date present only for positives (before label time)",
        out,
        {"missingness_leakage": ("flagged_at",)},
        innocent=(),
    )


def partial_presence(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    filled = (frame[LABEL] == 1) & (rng.random(len(frame)) < 0.2)
    out = frame.assign(refund_amount=rng.gamma(2.0, 20.0, len(frame))).assign(
        refund_amount=lambda f: f["refund_amount"].where(filled)
    )
    return Case(
        "value present for 20% of positives only",
        out,
        {"missingness_leakage": ("refund_amount",)},
    )


def noisier_label_copy(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    # Noise sd 0.4: ROC-AUC about 0.96, between the warning and the failure level.
    out = frame.assign(review_score=frame[LABEL] + rng.normal(0, 0.4, len(frame)))
    return Case(
        "noisier copy of the label (AUC ~0.96: warns)",
        out,
        {"target_leakage": ("review_score",)},
        status="warn",
    )


def noisy_label_copy(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    out = frame.assign(review_score=frame[LABEL] + rng.normal(0, 0.25, len(frame)))
    return Case("noisy copy of the label", out, {"target_leakage": ("review_score",)})


def label_function(frame: pd.DataFrame) -> Case:
    out = frame.assign(outcome_code=np.where(frame[LABEL] == 1, "R", "A"))
    return Case("deterministic function of the label", out, {"target_leakage": ("outcome_code",)})


def year_after(frame: pd.DataFrame) -> Case:
    out = frame.assign(renewal_year=frame[TIME].dt.year + 1)
    return Case("year after label time (integers)", out, {"temporal_leakage": ("renewal_year",)})


def string_dates_after(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    closed = (frame[TIME] + _days(rng, 1, 30, len(frame))).dt.strftime("%d/%m/%Y")
    out = frame.assign(closed_on=closed.astype("str"))
    return Case("date strings after label time", out, {"temporal_leakage": ("closed_on",)})


def declared_column(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    out = frame.assign(
        bureau_score=rng.normal(600, 50, len(frame)),
        bureau_score_at=frame[TIME] + _days(rng, 1, 10, len(frame)),
    )
    return Case(
        "declared known-at column after label time",
        out,
        {"temporal_leakage": ("bureau_score",)},
        leakage=LeakageParams(known_at={"bureau_score": "bureau_score_at"}),
        drop=("bureau_score_at",),
    )


def declared_offset(frame: pd.DataFrame) -> Case:
    rng = _rng(frame)
    out = frame.assign(settled_amount=rng.gamma(2.0, 30.0, len(frame)))
    return Case(
        "declared known-at offset after label time",
        out,
        {"temporal_leakage": ("settled_amount",)},
        leakage=LeakageParams(known_at={"settled_amount": "+30d"}),
    )


def rows_by_class(frame: pd.DataFrame) -> Case:
    out = frame.sort_values(LABEL, kind="stable").reset_index(drop=True)
    return Case("rows ordered by class", out, {"order_leakage": ()}, status="warn")


def _shared(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    """Copy rows of the training period into the holdout period (the last 20 days)."""
    rng = _rng(frame)
    early = frame.iloc[: int(len(frame) * 0.7)]
    copies = early.sample(max(1, int(len(frame) * share)), random_state=1).copy()
    last = frame[TIME].max()
    copies[TIME] = last - _days(rng, 0, 20, len(copies))
    return _renumbered(pd.concat([frame, copies], ignore_index=True))


def shared_rows(frame: pd.DataFrame) -> Case:
    return Case(
        "rows shared across the split (5% of rows)", _shared(frame, 0.05), {"split_leakage": ()}
    )


def few_shared_rows(frame: pd.DataFrame) -> Case:
    return Case(
        "rows shared across the split (0.1% of rows: warns)",
        _shared(frame, 0.001),
        {"split_leakage": ()},
        status="warn",
    )


def _resampled(frame: pd.DataFrame, sampler: object, name: str) -> Case:
    """Resample the whole table before any split, as in a leaky notebook."""
    numeric = frame[NUMERIC].fillna(frame[NUMERIC].median())
    X, y = sampler.fit_resample(numeric.to_numpy(), frame[LABEL].to_numpy())  # type: ignore[attr-defined]
    extra = len(y) - len(frame)
    copied = getattr(sampler, "sample_indices_", None)
    if copied is not None:
        # Random oversampling copies whole rows.
        donors = frame.iloc[copied[len(frame) :]]
    else:
        # SMOTE interpolates the numbers; the other columns come from a minority row.
        donors = frame[frame[LABEL] == 1].sample(extra, replace=True, random_state=2)
    synthetic = donors.copy()
    synthetic[NUMERIC] = X[len(frame) :]
    base = frame.copy()
    base[NUMERIC] = numeric
    out = pd.concat([base, synthetic], ignore_index=True)
    return Case(name, _renumbered(out), {"resampling_leakage": ()})


def _renumbered(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by time and issue ids in time order, as a table built after the fact would."""
    out = frame.sort_values(TIME, kind="stable").reset_index(drop=True)
    out[ID] = [f"tx-{i:07d}" for i in range(len(out))]
    return out


def smote_before_split(frame: pd.DataFrame) -> Case:
    return _resampled(
        frame, SMOTE(sampling_strategy=0.3, random_state=0), "SMOTE applied before the split"
    )


def light_smote_before_split(frame: pd.DataFrame) -> Case:
    """Minority/majority from about 0.11 to 0.13: about 15% of minority rows synthetic."""
    ratio = float((frame[LABEL] == 1).mean() / (frame[LABEL] == 0).mean())
    return _resampled(
        frame,
        SMOTE(sampling_strategy=ratio * 1.18, random_state=0),
        "light SMOTE before the split (15% synthetic)",
    )


def oversampled_before_split(frame: pd.DataFrame) -> Case:
    return _resampled(
        frame,
        RandomOverSampler(sampling_strategy=0.3, random_state=0),
        "random oversampling before the split",
    )


LEAKS: dict[str, Callable[[pd.DataFrame], Case]] = {
    "date_after_all": date_after_all,
    "date_after_share": date_after_share,
    "date_after_few": date_after_few,
    "date_only_positives": date_only_positives,
    "partial_presence": partial_presence,
    "noisy_label_copy": noisy_label_copy,
    "noisier_label_copy": noisier_label_copy,
    "label_function": label_function,
    "year_after": year_after,
    "string_dates_after": string_dates_after,
    "declared_column": declared_column,
    "declared_offset": declared_offset,
    "rows_by_class": rows_by_class,
    "shared_rows": shared_rows,
    "few_shared_rows": few_shared_rows,
    "smote_before_split": smote_before_split,
    "light_smote_before_split": light_smote_before_split,
    "oversampled_before_split": oversampled_before_split,
}


def clean(rows: int, seed: int) -> Case:
    return Case(
        "clean data (dates, categories, missing values, free text)",
        clean_frame(rows, seed=seed),
        innocent=(
            "last_login_at",
            "account_opened_at",
            "honest_score",
            "points_balance",
            "signup_year",
            "note",
            "balance",
            "row order",
            ID,
        ),
    )


def drifting_id(rows: int, seed: int) -> Case:
    """Positives grow likelier over time; the id, issued in time order, follows the label."""
    return Case(
        "label-correlated id ordered by time",
        clean_frame(rows, seed=seed, drift=4.0),
        innocent=(ID, "row order"),
    )


def low_cardinality(rows: int, seed: int) -> Case:
    """Few distinct feature vectors: rows repeat across the split by chance, not by copying."""
    rng = np.random.default_rng(seed)
    base = clean_frame(rows, seed=seed)
    frame = base[[ID, TIME, LABEL]].assign(
        channel=rng.choice(["pos", "web", "atm"], rows),
        weekday=rng.integers(0, 7, rows),
        has_card=rng.random(rows) < 0.5,
    )
    return Case("few distinct feature vectors", frame, innocent=("channel", "weekday", "has_card"))


def shifted_feature(rows: int, seed: int) -> Case:
    """A date that follows the label time closely but always before it."""
    base = clean_frame(rows, seed=seed)
    frame = base.assign(prev_event_at=base[TIME] - pd.Timedelta(seconds=1))
    return Case("dates one second before the label time", frame, innocent=("prev_event_at",))


LOOKALIKES: dict[str, Callable[[int, int], Case]] = {
    "clean": clean,
    "drifting_id": drifting_id,
    "low_cardinality": low_cardinality,
    "dates_just_before": shifted_feature,
}


def leak_case(name: str, rows: int = 4000, seed: int = 0) -> Case:
    """Return clean data with the named leak injected."""
    return LEAKS[name](clean_frame(rows, seed=seed))


def run_checks(case: Case) -> list[CheckResult]:
    """Run the leakage stage, then the time split and the split check, as the flow does."""
    outcome = detect_leakage(case.frame, case.data, case.leakage, 1)
    split = make_split(case.frame, case.data, SplitParams())
    return [*outcome.checks, check_split_leakage(case.frame, split, case.data, case.leakage)]


def rows_of(check: CheckResult, key: str) -> list[dict[str, Any]]:
    """Return the list of mappings stored under `key` in the check's metrics."""
    rows = check.metrics.get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def flagged(checks: list[CheckResult]) -> dict[str, set[str]]:
    """Return, per check code with findings, the columns named (row order as 'row order')."""
    found: dict[str, set[str]] = {}
    for check in checks:
        for finding in rows_of(check, "findings"):
            columns = set(finding["columns"]) or {"row order"}
            found.setdefault(check.code, set()).update(columns)
    return found


def detected(case: Case, checks: list[CheckResult]) -> bool:
    """Return whether every expected check reported the expected columns."""
    found = flagged(checks)
    return all(
        code in found and set(columns) <= found[code] for code, columns in case.expected.items()
    )


def false_alarms(case: Case, checks: list[CheckResult]) -> set[str]:
    """Return the innocent columns that some check named."""
    named = set().union(*flagged(checks).values()) if flagged(checks) else set()
    return named & set(case.innocent)
