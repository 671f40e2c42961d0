"""The null models of the row checks: what chance explains on real-looking tables."""

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE, RandomOverSampler
from scipy.stats import binom
from sklearn.neighbors import NearestNeighbors

from retrain_guard.schemas.params import LeakageParams, SplitParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.leakage import split_sharing
from retrain_guard.tasks.leakage.resampling import (
    check_resampling_leakage,
    independent_copy_share,
    measure_resampling,
)
from retrain_guard.tasks.leakage.segments import column_grid, decimal_grid, segment_share
from retrain_guard.tasks.leakage.split_sharing import (
    SharedRows,
    check_split_leakage,
    judge_split_sharing,
    measure_split_sharing,
)
from retrain_guard.tasks.quirks import usable_columns
from retrain_guard.tasks.split import make_split
from tests.leakage_cases import LABEL, LOOKALIKES, Case, _shared, leak_case


def _positive(case: Case) -> np.ndarray:
    return (case.frame[LABEL] == 1).to_numpy()


def _features(case: Case) -> list[str]:
    return case.data.feature_columns(case.frame.columns)


def _trace(case: Case, kind: str) -> tuple[float, float]:
    traces = measure_resampling(case.frame, _features(case), _positive(case))
    found = next(t for t in traces if t.kind == kind)
    return found.minority_share, found.control_share


@pytest.mark.parametrize(
    ("values", "decimals"),
    [
        (np.arange(18.0, 80.0), 0),  # whole-year ages
        (np.arange(10, 200) * 100.0, 0),  # incomes in hundreds
        (np.round(41.8 + np.linspace(0, 0.1, 500), 5), 5),  # coordinates, 5 decimals
        (np.round(np.linspace(1, 90, 400), 2), 2),  # amounts in cents
        (np.random.default_rng(0).normal(size=500), None),  # measured values
    ],
)
def test_decimal_grid_reads_how_a_column_was_rounded(values: np.ndarray, decimals: int) -> None:
    assert decimal_grid(values) == decimals


def test_a_few_values_off_the_grid_do_not_hide_it() -> None:
    values = np.arange(1000.0)
    values[:5] += 0.37
    assert decimal_grid(values) == 0


def test_a_minority_recorded_more_finely_than_the_majority_is_judged_on_its_own_grid() -> None:
    rng = np.random.default_rng(0)
    whole = rng.integers(0, 500, 5000).astype("float64")
    quarters = rng.integers(0, 400, 500) / 4.0
    assert column_grid(whole, quarters) == 2
    # Light SMOTE leaves most minority values on the majority's grid: that grid holds.
    light = np.concatenate([rng.integers(0, 500, 400), rng.uniform(0, 500, 100)])
    assert column_grid(whole, light) == 0
    # A mostly synthetic minority has no grid of its own.
    assert column_grid(whole, rng.uniform(0, 500, 500)) is None


def test_lattice_points_in_a_line_are_not_segments_unless_the_grid_is_ignored() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 8, (400, 3)).astype("float64")
    assert segment_share(points, np.random.default_rng(1), [0, 0, 0]) == 0.0
    # Without the grid the same points line up by chance: what the grid rule removes.
    assert segment_share(points, np.random.default_rng(1), [None, None, None]) > 0.3


def test_rows_tied_in_all_columns_but_one_are_not_segments() -> None:
    rng = np.random.default_rng(0)
    # A measured column, and another taking 5 values: many rows share the second, and
    # along the first they are collinear whatever their origin.
    points = np.column_stack([rng.normal(size=400), rng.integers(0, 5, 400)]).astype(float)
    assert segment_share(points, np.random.default_rng(1), [None, 0]) == 0.0


def test_smote_points_on_a_grid_are_off_it_and_found() -> None:
    rng = np.random.default_rng(0)
    honest = rng.integers(0, 60, (600, 2)).astype("float64")
    # As SMOTE: between a row and one of its 5 nearest neighbours, at a uniform position.
    _, near = NearestNeighbors(n_neighbors=6).fit(honest).kneighbors(honest)
    start = rng.integers(0, 600, 200)
    a, b = honest[start], honest[near[start, rng.integers(1, 6, 200)]]
    synthetic = a + rng.random((200, 1)) * (b - a)
    points = np.vstack([honest, synthetic])
    share = segment_share(points, np.random.default_rng(1), [0, 0])
    assert share > 0.1 and segment_share(honest, np.random.default_rng(1), [0, 0]) == 0.0


def test_minority_amounts_in_quarters_beside_whole_majority_amounts_are_not_segments() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    positive = rng.random(n) < 0.2
    # Fees in quarters for the minority, whole amounts for the majority; a second column of
    # whole days: lattice points of the minority line up, as majority points do.
    fee = np.where(positive, rng.integers(0, 120, n) / 4.0, rng.integers(0, 60, n) * 1.0)
    days = rng.integers(0, 40, n).astype("float64")
    frame = pd.DataFrame({"fee": fee, "days": days})
    traces = measure_resampling(frame, ["fee", "days"], positive)
    segments = next(t for t in traces if t.kind == "segments")
    assert segments.minority_share == 0.0


@pytest.mark.parametrize(
    "name", ["credit_card", "derived_ratio", "street_coordinates", "integer_floats_point_mass"]
)
def test_real_table_quirks_leave_no_excess_of_segments_or_copies(name: str) -> None:
    case = LOOKALIKES[name](6000, 4)
    for kind in ("copies", "segments"):
        minority, chance = _trace(case, kind)
        assert minority <= chance + 0.02, (kind, minority, chance)


def _smote_on(case: Case, columns: list[str], ratio: float) -> pd.DataFrame:
    """SMOTE the given float columns of the whole table, other columns from minority donors."""
    frame = case.frame.dropna(subset=columns).reset_index(drop=True)
    X, y = SMOTE(sampling_strategy=ratio, random_state=0).fit_resample(
        frame[columns].to_numpy(), frame[LABEL].to_numpy()
    )
    extra = len(y) - len(frame)
    donors = frame[frame[LABEL] == 1].sample(extra, replace=True, random_state=2).copy()
    donors[columns] = X[len(frame) :]
    return pd.concat([frame, donors], ignore_index=True)


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("street_coordinates", ["latitude", "longitude"]),
        ("credit_card", ["age", "income"]),
        ("day_counts", ["days_employed", "days_since_last_payment", "days_to_due"]),
    ],
)
def test_smote_on_rounded_and_gridded_columns_is_still_found(name: str, columns: list[str]) -> None:
    case = LOOKALIKES[name](4000, 0)
    ratio = float(_positive(case).mean() / (1 - _positive(case).mean())) * 1.3
    leaky = Case("smoted", _smote_on(case, columns, ratio))
    check = check_resampling_leakage(
        leaky.frame, _features(leaky), _positive(leaky), LeakageParams(), LABEL
    )
    assert check.status == "fail" and set(check.columns) >= set(columns)


def test_a_column_derived_from_another_adds_no_chance_factor() -> None:
    rng = np.random.default_rng(0)
    income = rng.integers(15, 40, 3000) * 100.0
    frame = pd.DataFrame({"age": rng.integers(20, 40, 3000), "income": income})
    rows = np.arange(3000)
    without = independent_copy_share(frame, rows, ["age", "income"])
    derived = frame.assign(payment_share=25.0 / income)
    assert independent_copy_share(derived, rows, ["age", "income", "payment_share"]) == (
        pytest.approx(without)
    )
    assert without > 0.3


def test_copies_of_rows_with_several_measured_columns_stay_above_chance() -> None:
    case = LOOKALIKES["credit_card"](4000, 0)
    frame = case.frame.assign(score=np.random.default_rng(1).normal(size=len(case.frame)))
    frame = frame.assign(balance=np.random.default_rng(2).gamma(2.0, 100.0, len(frame)))
    sampler = RandomOverSampler(sampling_strategy=0.4, random_state=0)
    sampler.fit_resample(frame[["score"]], frame[LABEL])
    leaky = Case("copied", frame.iloc[sampler.sample_indices_].reset_index(drop=True))
    check = check_resampling_leakage(
        leaky.frame, _features(leaky), _positive(leaky), LeakageParams(), LABEL
    )
    assert check.status == "fail"


def test_split_chance_level_follows_the_tables_own_repeats() -> None:
    case = LOOKALIKES["correlated_categories"](4000, 0)
    features = _features(case)
    split = make_split(case.frame, case.data, SplitParams(strategy="random"))
    measured = measure_split_sharing(case.frame, features, LABEL, split.train, split.holdout)
    # Few distinct vectors: nearly every holdout row repeats one, and the training part's
    # own repeats predict it (independent columns would predict almost none).
    assert measured.shared_vectors > 0.9 * measured.holdout_rows
    assert measured.expected_by_chance == pytest.approx(measured.shared_vectors, rel=0.05)
    assert check_split_leakage(case.frame, split, case.data, LeakageParams()).status == "pass"


def test_copies_made_before_a_random_split_exceed_the_tables_own_repeats() -> None:
    case = leak_case("oversampled_before_split", rows=4000, seed=0)
    split = make_split(case.frame, case.data, SplitParams(strategy="random"))
    check = check_split_leakage(case.frame, split, case.data, LeakageParams())
    # The copies repeat inside the training part too (Good-Turing sees them), but next to
    # their originals in time: the later half of training does not repeat the earlier one.
    assert check.metrics["training_repeat_share"] > 0.1
    assert check.metrics["training_later_half_repeat_share"] < 0.01
    assert check.status == "fail"


def _split_check(case: Case) -> tuple[SharedRows, CheckResult]:
    split = make_split(case.frame, case.data, SplitParams())
    features = usable_columns(case.frame, _features(case))
    order = case.frame[case.label_time] if case.label_time else None
    measured = measure_split_sharing(case.frame, features, LABEL, split.train, split.holdout, order)
    return measured, check_split_leakage(case.frame, split, case.data, LeakageParams())


def test_without_a_label_time_the_stored_order_does_not_set_the_chance_level() -> None:
    case = LOOKALIKES["coded_survey_years"](4000, 0)
    shuffled = Case("shuffled", case.frame.sample(frac=1.0, random_state=3), label_time=None)
    # Person-years stored person by person: in stored order the later half of training
    # shares almost no person with the earlier half; in random order three quarters of its
    # rows repeat the earlier half, and the holdout repeats training at the training
    # part's own rate.
    measured, check = _split_check(case)
    assert measured.shared_vectors > 0.9 * measured.holdout_rows
    assert measured.later_half_repeat_share > 0.7
    assert measured.expected_by_chance == pytest.approx(measured.shared_vectors, rel=0.05)
    assert check.status == "pass"
    assert _split_check(shuffled)[1].status == "pass"


def test_a_few_repeats_in_a_small_holdout_are_judged_against_the_rates_uncertainty() -> None:
    case = LOOKALIKES["tiny_holdout_duplicates"](0, 0)
    measured, check = _split_check(case)
    assert measured.holdout_rows == 168
    # More repeats than the point estimate by over 1% of the holdout (the failure level):
    # the training part's own handful of duplicates measures its rate loosely, and the
    # binomial tail at the upper end of that rate finds the count unremarkable.
    assert measured.shared_vectors - measured.expected_by_chance > 0.01 * measured.holdout_rows
    assert (measured.expected_upper or 0.0) > measured.expected_by_chance
    assert measured.p_value > 0.05 and check.status == "pass"


def test_the_binomial_tail_is_the_chance_of_at_least_the_count() -> None:
    rows = SharedRows(100, 5, 5, 0, 1.0, expected_upper=2.0)
    assert rows.p_value == pytest.approx(1.0 - binom.cdf(4, 100, 0.02))
    # A continuous table: no chance repeat, so any exact repeat is evidence.
    assert SharedRows(100, 1, 1, 0, 0.0).p_value == 0.0
    assert SharedRows(100, 0, 0, 0, 0.0).p_value == 1.0
    # Every row of a coded table repeats by nature: nothing is unlikely.
    assert SharedRows(100, 100, 100, 0, 100.0).p_value == 1.0


@pytest.mark.parametrize("name", ["credit_card", "constant_in_class"])
def test_copies_into_the_holdout_of_a_repeating_table_still_fail(name: str) -> None:
    case = LOOKALIKES[name](4000, 0)
    honest = _split_check(case)[1]
    # Training rows copied into the holdout period: a quarter of the holdout, on tables
    # where 7% (rounded ages and incomes) or 60% (few-valued columns) of holdout rows
    # repeat a training row by nature.
    leaky = _split_check(Case("copied", _shared(case.frame, 0.05)))[1]
    assert honest.status == "pass" and leaky.status == "fail"


def test_four_repeats_in_a_holdout_of_168_rows_with_one_training_pair_are_chance() -> None:
    # A modechoice-sized table: 672 training rows holding one pair of identical rows, 168
    # holdout rows of which 4 repeat a training row. The point estimate is 0.5 rows, so a
    # fixed margin (3 sqrt(0.5) + 1 = 3.1 rows) halted at 2.1% of the holdout; one pair
    # measures the rate loosely (two-sigma upper end 168 x 5.83 / 672 = 1.46 rows), and 4
    # or more happen with probability 0.06 at that rate.
    repeated = 2
    upper = 168 * (repeated + 2 * np.sqrt(repeated) + 1) / 672
    measured = SharedRows(168, 4, 4, 0, 168 * repeated / 672, expected_upper=upper)
    assert measured.share > LeakageParams().max_shared_row_share
    assert measured.p_value > 0.01
    assert judge_split_sharing(measured, LeakageParams(), ["cost"]).status == "pass"
    # Thirty of 168 (tens of percent beyond the rate) halt.
    copied = SharedRows(168, 30, 30, 0, 168 * repeated / 672, expected_upper=upper)
    assert judge_split_sharing(copied, LeakageParams(), ["cost"]).status == "fail"


def test_the_auc_screen_leaves_a_range_too_narrow_to_bin_to_the_exact_auc() -> None:
    from retrain_guard.tasks.leakage.auc import screen_auc

    values = np.zeros(27)
    values[-1] = 2.225074e-313  # a subnormal range: dividing by it overflows
    assert screen_auc(values, np.array([24, 25, 26]), 0.95) is None


def test_the_chance_level_stops_reading_columns_once_nothing_reported_can_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a shared vector, the columns' collision chances are multiplied only until
    the rows chance expects are far below the report's 3 decimals: each further column is
    a whole-column count at 20M rows, and the report is the same as with every column."""
    i = np.arange(2000)
    frame = pd.DataFrame({"k": i % 1000, "j": i // 1000})
    for number, prime in enumerate((7, 11, 13, 17, 19, 23, 29, 31)):
        frame[f"x{number}"] = (i * prime) % 1000  # a value in two rows, never the same two
    frame["y"] = i % 2
    features = [c for c in frame.columns if c != "y"]
    train, holdout = i[:1600], i[1600:]
    counted: list[str] = []
    real = split_sharing.collision_probability

    def counting(values: pd.Series) -> float:
        counted.append(str(values.name))
        return real(values)

    monkeypatch.setattr(split_sharing, "collision_probability", counting)
    early = split_sharing.measure_split_sharing(frame, features, "y", train, holdout)
    used = len(counted)
    monkeypatch.setattr(split_sharing, "_NEGLIGIBLE", 0.0)
    every = split_sharing.measure_split_sharing(frame, features, "y", train, holdout)
    assert early.shared_vectors == every.shared_vectors == 0
    assert used == 5 and len(counted) - used == len(features)
    assert every.expected_by_chance <= early.expected_by_chance < 1e-4
    params = LeakageParams()
    same = [split_sharing.judge_split_sharing(m, params, features) for m in (early, every)]
    assert same[0] == same[1]
