"""Leak cases with known ground truth: clean data, each leak injected, and honest look-alikes.

`clean_frame` builds honest data with dates, categories, missing values, a strong but
honest feature (ROC-AUC about 0.85), dates just before the label time, an integer column
in the range of years that is not a year, and free text. Each `LEAKS` entry injects one
leak and names the check and columns that must report it; each `LOOKALIKES` entry builds
data that resembles a leak and names the columns that must not be reported: among them
the quirks of real tables (derived ratios, columns constant within a class, rounded and
gridded values, coordinates, correlated categories). `coarse_label_times` builds label
times of a month or a year, for the split.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, RandomOverSampler
from pydantic import TypeAdapter

from retrain_guard.schemas.params import DataParams, LeakageParams, SplitParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.leakage.detect import detect_leakage
from retrain_guard.tasks.leakage.split_sharing import check_split_leakage
from retrain_guard.tasks.split import make_split

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
    # None: the table has no label time (a random split, as most public tables).
    label_time: str | None = TIME

    @property
    def data(self) -> DataParams:
        return DataParams(
            path="-", label=LABEL, label_time=self.label_time, id_column=ID, drop=[*self.drop]
        )


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


def _base(
    rows: int, seed: int, positive_rate: float = 0.2
) -> tuple[np.random.Generator, pd.DataFrame]:
    """Return a generator and the id, label time and label of clean data (no features)."""
    base = clean_frame(rows, positive_rate=positive_rate, seed=seed)
    return np.random.default_rng(seed + 1000), base[[ID, TIME, LABEL]].copy()


def _some_missing(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Blank a share of the values, as a CSV export does; the column reads as float."""
    out = values.astype("float64")
    out[rng.random(len(out)) < share] = np.nan
    return out


def credit_card(rows: int, seed: int) -> Case:
    """Card applications: whole-year ages, incomes in hundreds, share = expenditure / income.

    Refused applicants (the minority) spend nothing, so `expenditure` and `share` are 0 in
    every minority row, and, younger and poorer, their rounded (age, income) points crowd a
    smaller lattice than the majority's: they repeat each other far more often.
    """
    rng, frame = _base(rows, seed)
    refused = frame[LABEL].to_numpy() == 1
    n = len(frame)
    age = np.where(refused, rng.normal(29, 6, n), rng.normal(42, 11, n)).clip(18, 85).round()
    income = np.where(refused, rng.lognormal(7.6, 0.25, n), rng.lognormal(8.1, 0.5, n))
    income = (income / 100).round() * 100
    # Most card holders spend something; a refused applicant never does.
    expenditure = np.where(~refused & (rng.random(n) < 0.6), rng.gamma(1.5, 120, n), 0.0)
    expenditure = expenditure.round(2)
    return Case(
        "credit card: whole-year ages, incomes in 100s, share = expenditure / income "
        "(0 for every minority row)",
        frame.assign(
            age=_some_missing(rng, age, 0.01),
            income=_some_missing(rng, income, 0.01),
            expenditure=expenditure,
            share=expenditure / income,
            dependents=rng.integers(0, 4, n),
            owner=rng.random(n) < 0.45,
        ),
        innocent=("age", "income", "expenditure", "share", "dependents", "owner"),
    )


def derived_ratio(rows: int, seed: int) -> Case:
    """A ratio whose numerator is constant in the minority: a function of the denominator.

    Ages in months (as years with 5 decimals), incomes in hundreds, and payment_share =
    minimum payment / income, where the minimum payment is 25 for every minority row: in the
    minority the ratio takes as few values as the income and repeats with it.
    """
    rng, frame = _base(rows, seed)
    refused = frame[LABEL].to_numpy() == 1
    n = len(frame)
    months = np.where(refused, rng.normal(29, 6, n), rng.normal(42, 11, n)).clip(18, 85) * 12
    income = np.where(refused, rng.lognormal(7.6, 0.25, n), rng.lognormal(8.1, 0.5, n))
    income = (income / 100).round() * 100
    payment = np.where(refused, 25.0, rng.gamma(2.0, 60.0, n).round(2) + 25.0)
    return Case(
        "derived ratio: payment / income with a payment constant in the minority, ages in months",
        frame.assign(
            age=np.round(np.round(months) / 12, 5), income=income, payment_share=payment / income
        ),
        innocent=("age", "income", "payment_share"),
    )


def street_coordinates(rows: int, seed: int) -> Case:
    """Incident locations on a city grid: latitude/longitude with 4 or 5 decimals.

    Addresses lie on east-west streets (constant latitude) or north-south avenues (constant
    longitude) of a grid, in four districts; the minority clusters in two hot spots, so its
    points line up along streets more densely than the majority's.
    """
    rng, frame = _base(rows, seed)
    n = len(frame)
    hot = frame[LABEL].to_numpy() == 1
    districts = np.array([[41.8781, -87.6298], [41.8500, -87.6500], [41.9000, -87.7000]])
    districts = np.vstack([districts, [[41.8200, -87.6100]]])
    which = np.where(hot, rng.integers(0, 2, n), rng.integers(0, 4, n))
    spread = np.where(hot, 0.006, 0.02)
    lat = districts[which, 0] + rng.normal(0, 1, n) * spread
    lon = districts[which, 1] + rng.normal(0, 1, n) * spread
    street = rng.random(n) < 0.5
    lat = np.where(street, np.round(lat / 0.0009) * 0.0009, lat)
    lon = np.where(street, lon, np.round(lon / 0.0012) * 0.0012)
    five = rng.random(n) < 0.5
    return Case(
        "street coordinates: city grid, 4-5 decimals, clustered minority",
        frame.assign(
            latitude=np.where(five, lat.round(5), lat.round(4)),
            longitude=np.where(five, lon.round(5), lon.round(4)),
            beat=rng.integers(100, 140, n),
        ),
        innocent=("latitude", "longitude", "beat"),
    )


def day_counts(rows: int, seed: int) -> Case:
    """Whole numbers of days (read as float: some are missing), shorter for the minority."""
    rng, frame = _base(rows, seed)
    n = len(frame)
    late = frame[LABEL].to_numpy() == 1
    employed = np.where(late, rng.gamma(2.0, 60.0, n), rng.gamma(2.0, 400.0, n)).round()
    since = np.where(late, rng.gamma(1.5, 10.0, n), rng.gamma(1.5, 40.0, n)).round()
    to_due = np.where(late, rng.integers(0, 40, n), rng.integers(0, 90, n))
    return Case(
        "integer day counts (float columns with missing values)",
        frame.assign(
            days_employed=_some_missing(rng, employed, 0.02),
            days_since_last_payment=_some_missing(rng, since, 0.02),
            days_to_due=_some_missing(rng, to_due, 0.02),
        ),
        innocent=("days_employed", "days_since_last_payment", "days_to_due"),
    )


def constant_in_class(rows: int, seed: int) -> Case:
    """An amount that is 0 in every minority row, with few-valued columns besides."""
    rng, frame = _base(rows, seed)
    n = len(frame)
    defaulted = frame[LABEL].to_numpy() == 1
    recovered = np.where(defaulted | (rng.random(n) < 0.5), 0.0, rng.gamma(2.0, 50.0, n))
    return Case(
        "column constant within the minority, few-valued columns besides",
        frame.assign(
            recovered_amount=recovered.round(2),
            products=rng.integers(1, 4, n),
            region=rng.choice(["north", "south", "east", "west"], n),
            tenure_years=rng.integers(0, 6, n),
            has_card=rng.random(n) < 0.5,
        ),
        innocent=("recovered_amount", "products", "region", "tenure_years", "has_card"),
    )


def correlated_categories(rows: int, seed: int) -> Case:
    """Store, city, region, channel and size: low-cardinality columns that follow each other."""
    rng, frame = _base(rows, seed)
    n = len(frame)
    store = rng.integers(0, 40, n)
    return Case(
        "correlated low-cardinality columns (store, city, region, channel, size)",
        frame.assign(
            store=[f"s{v:02d}" for v in store],
            city=store // 4,
            region=store // 12,
            channel=np.where(store % 2 == 0, "web", "shop"),
            size=store % 5,
            weekend=rng.random(n) < 0.3,
        ),
        innocent=("store", "city", "region", "channel", "size", "weekend"),
    )


def coded_survey_years(rows: int, seed: int) -> Case:
    """Person-years of coded survey answers, stored person by person, with no label time.

    As in a health-insurance panel: each person answers once (plan, age band, income band,
    sex, chronic conditions, limitation codes) and appears for 2 to 5 years with the same
    codes, so most rows repeat another row's features. A random holdout repeats training
    rows at the rate training rows repeat each other; the stored order puts a person's
    years together, so halves of it in stored order share almost no person.
    """
    rng = np.random.default_rng(seed + 2000)
    years = rng.integers(2, 6, rows)
    person = np.repeat(np.arange(rows), years)[:rows]
    people = int(person.max()) + 1
    codes = {
        "plan": rng.integers(0, 6, people),
        "age_band": rng.integers(0, 7, people),
        "income_band": rng.integers(0, 10, people),
        "female": rng.integers(0, 2, people),
        "chronic": rng.poisson(1.2, people).clip(0, 6),
        "limited": (rng.random(people) < 0.2).astype("int64"),
    }
    frailty = 0.8 * codes["chronic"] + 1.2 * codes["limited"] + rng.normal(0, 1, people)
    heavy = rng.random(rows) < 1 / (1 + np.exp(-(frailty[person] - 4.0)))
    frame = pd.DataFrame({name: values[person] for name, values in codes.items()})
    frame.insert(0, ID, [f"p{p:06d}-{i}" for i, p in enumerate(person)])
    frame[LABEL] = heavy.astype("int64")
    return Case(
        "coded survey answers per person-year (most rows repeat; no label time)",
        frame,
        innocent=tuple(codes),
        label_time=None,
    )


def tiny_holdout_duplicates(rows: int, seed: int) -> Case:
    """A small long-format table (840 rows, holdout of 168) with a few honest duplicates.

    210 travellers x 4 modes, with whole-minute times, whole-dollar costs, income and party
    size; 5 travellers faced the same options as another one (a standard fare sheet), so
    20 of the 840 rows repeat another row. No label time: a random split. The table is stored
    sorted by income, which puts the twins next to each other. `rows` is not used: the
    pattern is the small holdout.
    """
    rng = np.random.default_rng(seed + 3000)
    travellers, modes = 210, np.array(["air", "train", "bus", "car"])
    base_time = np.array([60, 300, 360, 330])
    base_cost = np.array([90, 50, 40, 25])
    invt = rng.integers(-40, 41, (travellers, 4)) + base_time
    invc = rng.integers(-15, 16, (travellers, 4)) + base_cost
    wait = np.column_stack([rng.integers(10, 90, (travellers, 3)), np.zeros(travellers, int)])
    income = rng.integers(2, 72, travellers)
    party = rng.integers(1, 4, travellers)
    twins = rng.choice(travellers, 10, replace=False)
    for a, b in twins.reshape(-1, 2):
        for values in (invt, invc, wait, income, party):
            values[b] = values[a]
    utility = -0.01 * invt - 0.03 * invc - 0.02 * wait + rng.gumbel(0, 1, (travellers, 4))
    chosen = utility.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "traveller": np.repeat(np.arange(travellers), 4),
            "mode": np.tile(modes, travellers),
            "wait_minutes": wait.ravel(),
            "vehicle_minutes": invt.ravel(),
            "cost": invc.ravel(),
            "income": np.repeat(income, 4),
            "party_size": np.repeat(party, 4),
            LABEL: (np.tile(np.arange(4), travellers) == np.repeat(chosen, 4)).astype("int64"),
        }
    )
    frame = frame.sort_values(["income", "traveller"], kind="stable").reset_index(drop=True)
    frame.insert(0, ID, [f"r{i:04d}" for i in range(len(frame))])
    return Case(
        "tiny holdout: long format, a few travellers facing identical options",
        frame.drop(columns="traveller"),
        innocent=("mode", "wait_minutes", "vehicle_minutes", "cost", "income", "party_size"),
        label_time=None,
    )


def integer_floats_point_mass(rows: int, seed: int) -> Case:
    """Integer-valued float columns, one with a point mass at 0 skewed by class.

    As in an election survey: population of the respondent's place in thousands (whole
    numbers, 0 for rural places: 32% of the minority, 19% of the majority), its logarithm
    log(popul + 0.1), whole-year ages and income codes 1-24, all stored as float64.
    """
    rng, frame = _base(rows, seed, positive_rate=0.4)
    n = len(frame)
    minority = frame[LABEL].to_numpy() == 1
    rural = rng.random(n) < np.where(minority, 0.32, 0.19)
    popul = np.where(rural, 0.0, np.round(rng.lognormal(4.0, 1.6, n)))
    age = rng.normal(np.where(minority, 50, 45), 16, n).clip(18, 92).round()
    income = rng.integers(1, 25, n).astype("float64")
    return Case(
        "integer-valued floats with a class-skewed point mass (popul = 0) and its logarithm",
        frame.assign(popul=popul, age=age, income=income, logpopul=np.log(popul + 0.1)),
        innocent=("popul", "age", "income", "logpopul"),
    )


LOOKALIKES: dict[str, Callable[[int, int], Case]] = {
    "clean": clean,
    "drifting_id": drifting_id,
    "low_cardinality": low_cardinality,
    "dates_just_before": shifted_feature,
    "credit_card": credit_card,
    "derived_ratio": derived_ratio,
    "street_coordinates": street_coordinates,
    "day_counts": day_counts,
    "constant_in_class": constant_in_class,
    "correlated_categories": correlated_categories,
    "coded_survey_years": coded_survey_years,
    "tiny_holdout_duplicates": tiny_holdout_duplicates,
    "integer_floats_point_mass": integer_floats_point_mass,
}


def coarse_label_times(rows: int, seed: int, period: str) -> pd.DataFrame:
    """Return rows whose label time is a month (a quarter's extract) or a year (four years).

    Columns t (label time), y (label) and amount. The last period holds a third (months)
    or two fifths (years, growing volume) of the rows: more than 1.5 x the default
    holdout fraction, and it cannot be divided.
    """
    rng = np.random.default_rng(seed)
    if period == "month":
        starts = pd.date_range("2024-01-01", periods=3, freq="MS")
        weights = np.ones(3)
    else:
        starts = pd.date_range("2021-01-01", periods=4, freq="YS")
        weights = np.arange(1.0, 5.0)
    t = np.sort(rng.choice(len(starts), rows, p=weights / weights.sum()))
    return pd.DataFrame(
        {
            "t": starts[t],
            "amount": np.round(rng.lognormal(3.5, 0.6, rows), 2),
            "y": (rng.random(rows) < 0.1).astype("int64"),
        }
    )


def leak_case(name: str, rows: int = 4000, seed: int = 0) -> Case:
    """Return clean data with the named leak injected."""
    return LEAKS[name](clean_frame(rows, seed=seed))


def run_checks(case: Case) -> list[CheckResult]:
    """Run the leakage stage, then the time split and the split check, as the flow does."""
    outcome = detect_leakage(case.frame, case.data, case.leakage, 1)
    split = make_split(case.frame, case.data, SplitParams())
    return [*outcome.checks, check_split_leakage(case.frame, split, case.data, case.leakage)]


_ROWS = TypeAdapter(list[dict[str, Any]])


def rows_of(check: CheckResult, key: str) -> list[dict[str, Any]]:
    """Return the list of mappings the report holds under `key` in the check's metrics."""
    return _ROWS.validate_python(check.metrics.get(key, []))


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
