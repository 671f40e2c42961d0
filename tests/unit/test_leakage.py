import itertools
import re

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from retrain_guard.flows.example_data import make_transactions
from retrain_guard.schemas.params import DataParams, LeakageParams, RetrainParams, SplitParams
from retrain_guard.schemas.report import CheckResult, Report
from retrain_guard.tasks import positions as positions_module
from retrain_guard.tasks.artifacts import LEAKAGE_KEY, leakage_table
from retrain_guard.tasks.dates import parse_date_like
from retrain_guard.tasks.leakage import rows, split_sharing
from retrain_guard.tasks.leakage.auc import (
    auc_pairs,
    auc_with_missing,
    fold_of_rows,
    out_of_fold_rates,
    screen_auc,
)
from retrain_guard.tasks.leakage.detect import detect_leakage
from retrain_guard.tasks.leakage.rows import distinct_count, repeated
from retrain_guard.tasks.leakage.split_sharing import check_split_leakage
from retrain_guard.tasks.leakage.target import measure_target_auc
from retrain_guard.tasks.leakage.temporal import (
    DeclarationError,
    declarations_from_params,
    measure_declared_availability,
)
from retrain_guard.tasks.leakage.time_bins import time_bins
from retrain_guard.tasks.positions import increasing, position_index, row_positions
from retrain_guard.tasks.reporting import DATA_CHECKS, RETRAIN_CHECKS
from retrain_guard.tasks.split import Split, make_split
from tests.leakage_cases import (
    LEAKS,
    LOOKALIKES,
    TIME,
    Case,
    clean_frame,
    false_alarms,
    flagged,
    leak_case,
    rows_of,
    run_checks,
)

EXAMPLE = DataParams(
    path="-", label="is_fraud", label_time="event_time", id_column="transaction_id"
)


def _check(checks: list[CheckResult], code: str) -> CheckResult:
    return next(c for c in checks if c.code == code)


# --- Ground truth: every injected leak is found, no look-alike is reported -----------------


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_each_injected_leak_is_found_with_its_columns(name: str) -> None:
    case = leak_case(name, rows=3000, seed=3)
    checks = run_checks(case)
    found = flagged(checks)
    for code, columns in case.expected.items():
        assert code in found, f"{name}: {code} found nothing; found {found}"
        assert set(columns) <= found[code]
        # Subtle leaks (and the row order, only ever reported) warn; the others halt.
        assert _check(checks, code).status == case.status


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(LOOKALIKES))
def test_lookalikes_raise_no_alarm(name: str, seed: int) -> None:
    case = LOOKALIKES[name](3000, seed)
    checks = run_checks(case)
    assert false_alarms(case, checks) == set()
    assert [c.summary for c in checks if c.status == "fail"] == []


def test_clean_data_with_dates_categories_and_missing_values_passes_every_check() -> None:
    case = LOOKALIKES["clean"](5000, 11)
    assert case.frame.isna().any().any() and (case.frame.dtypes == "str").any()
    checks = run_checks(case)
    assert {c.code: c.status for c in checks} == {
        "temporal_leakage": "pass",
        "missingness_leakage": "pass",
        "target_leakage": "pass",
        "order_leakage": "pass",
        "resampling_leakage": "pass",
        "ambiguous_dates": "pass",
        "split_leakage": "pass",
    }


def test_honest_strong_feature_is_measured_near_085_and_not_flagged() -> None:
    frame = clean_frame(20_000, seed=5)
    positive = (frame["y"] == 1).to_numpy()
    (measured,) = measure_target_auc(frame, ["honest_score"], positive, None, 0.95)
    assert 0.82 < measured.auc < 0.88


def test_example_data_has_no_finding_and_its_leaky_variant_names_chargeback_at() -> None:
    clean = detect_leakage(make_transactions(), EXAMPLE, LeakageParams(), 1)
    assert [c.status for c in clean.checks] == ["pass"] * 6
    leaky = detect_leakage(make_transactions(leaky=True), EXAMPLE, LeakageParams(), 1)
    temporal = _check(leaky.checks, "temporal_leakage")
    assert temporal.status == "fail" and temporal.columns == ["chargeback_at"]
    finding = rows_of(temporal, "findings")[0]
    assert finding["taxonomy"] == "L3.1" and finding["value"] == 1.0
    assert finding["threshold"] == 0.01 and finding["measure"] == "share_after_label_time"
    assert re.search(r"up to \d+ days after", temporal.summary)
    assert _check(leaky.checks, "missingness_leakage").columns == ["chargeback_at"]


# --- Temporal: dates recognised without false readings --------------------------------------


def test_share_above_zero_warns_and_above_threshold_fails() -> None:
    frame = clean_frame(2000, seed=1)
    late = np.zeros(len(frame), dtype=bool)
    late[:10] = True  # 0.5% of rows
    lead = pd.to_timedelta(np.where(late, 2, -2), unit="D")
    frame = frame.assign(touched_at=frame[TIME] + lead)
    data = Case("x", frame).data
    assert _check(detect_leakage(frame, data, LeakageParams(), 1).checks, TIME_CHECK).status == (
        "warn"
    )
    strict = LeakageParams(max_share_after_label_time=0.001)
    assert _check(detect_leakage(frame, data, strict, 1).checks, TIME_CHECK).status == "fail"


TIME_CHECK = "temporal_leakage"


@pytest.mark.parametrize(
    ("name", "values", "how"),
    [
        ("model_year", pd.Series([2020, 2021, 2024] * 10), "years"),
        ("signup_yr", pd.Series([2020.0, np.nan, 2024.0] * 10), "years"),
        ("created_ts", pd.Series([1_735_689_600, 1_740_000_000] * 10), "epoch seconds"),
        ("created_at", pd.Series([1_735_689_600_000, 1_740_000_000_000] * 10), "epoch ms"),
        ("ship_date", pd.Series([20250315, 20250401] * 10), "yyyymmdd"),
        ("ship_date", pd.Series(["15/03/2025", "01/04/2025"] * 10), "date strings"),
        ("anything", pd.Series(["2025-03-15", "2025-04-01T10:00:00"] * 10), "ISO"),
    ],
)
def test_dates_in_strings_and_integers_are_recognised(
    name: str, values: pd.Series, how: str
) -> None:
    parsed = parse_date_like(name, values)
    assert parsed is not None and how in parsed.how
    assert parsed.values.notna().sum() == values.notna().sum()


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("amount", pd.Series([1950, 2030, 2099] * 10)),  # in the year range, no year name
        ("price_cents", pd.Series([2024, 2025] * 10)),
        ("order_number", pd.Series([20250101, 20250102] * 10)),  # yyyymmdd-like id
        ("reference", pd.Series(["20250315", "20250401"] * 10)),
        ("year_count", pd.Series([5, 12, 40] * 10)),  # a year name, not a year range
        ("runtime", pd.Series([120, 95] * 10)),  # a date-ish name, not a date range
        ("code", pd.Series(["A-17", "B-22"] * 10)),
        ("is_weekend_day", pd.Series([True, False] * 10)),
    ],
)
def test_lookalike_numbers_and_strings_are_not_read_as_dates(name: str, values: pd.Series) -> None:
    assert parse_date_like(name, values) is None


# --- Declared availability -------------------------------------------------------------------


def _declared_frame() -> pd.DataFrame:
    times = pd.date_range("2025-01-01", periods=6, freq="D")
    return pd.DataFrame(
        {
            "t": times,
            "score": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "score_at": times + pd.to_timedelta([-1, -1, 5, 2, -3, 0], unit="D"),
        }
    )


def test_declared_known_at_column_is_checked_per_row_ignoring_missing_features() -> None:
    (lead,) = measure_declared_availability(_declared_frame(), "t", {"score": "score_at"})
    # Row 2 is after but its feature is missing; row 3 is 2 days after; row 5 equals t.
    assert (lead.column, lead.non_null, lead.after_label_time) == ("score", 5, 1)
    assert lead.max_lead_days == 2.0 and "score_at" in lead.source


def test_declared_offset_after_or_before_the_label_time() -> None:
    frame = _declared_frame()
    later, earlier = measure_declared_availability(
        frame, "t", {"score": pd.Timedelta(days=30), "score_at": pd.Timedelta(days=-1)}
    )
    assert later.share == 1.0 and later.max_lead_days == 30.0
    assert earlier.after_label_time == 0


def test_declared_availability_from_params_offsets_and_columns() -> None:
    frame = _declared_frame().assign(y=[0, 1, 0, 1, 0, 1])
    data = DataParams(path="-", label="y", label_time="t", drop=["score_at"])
    params = LeakageParams(known_at={"score": "+2h"}, min_evidence_rows=1)
    temporal = _check(detect_leakage(frame, data, params, 1).checks, TIME_CHECK)
    assert temporal.status == "fail" and temporal.columns == ["score"]


def test_declaration_naming_a_missing_column_is_a_clear_failure() -> None:
    with pytest.raises(DeclarationError, match="'nope'"):
        measure_declared_availability(_declared_frame(), "t", {"score": "nope"})
    frame = _declared_frame().assign(y=[0, 1, 0, 1, 0, 1])
    data = DataParams(path="-", label="y", label_time="t")
    checks = detect_leakage(frame, data, LeakageParams(known_at={"ghost": "-1d"}), 1).checks
    assert checks[0].code == "leakage_config_invalid" and checks[0].status == "fail"
    assert "ghost" in checks[0].summary


@pytest.mark.parametrize("bad", ["+30x", "-", "+ d", " "])
def test_bad_known_at_values_are_rejected_by_the_parameters(bad: str) -> None:
    with pytest.raises(ValidationError, match="known_at"):
        LeakageParams(known_at={"score": bad})


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="target_auc_warn"):
        LeakageParams(target_auc_warn=0.995, target_auc_fail=0.99)


# --- Target leakage: the AUC itself ---------------------------------------------------------


@pytest.mark.parametrize("rate", [0.02, 0.5, 0.9])
def test_sorting_auc_equals_sklearn_with_ties(rate: float) -> None:
    rng = np.random.default_rng(4)
    y = rng.random(5000) < rate
    x = rng.integers(0, 20, 5000).astype(float) + 0.7 * y
    wins, pairs = auc_pairs(x, y)
    assert wins / pairs == pytest.approx(roc_auc_score(y, x), abs=1e-12)


def test_missing_is_a_value_of_its_own() -> None:
    rng = np.random.default_rng(2)
    y = rng.random(4000) < 0.1
    x = rng.normal(size=4000)
    x[~y] = np.nan  # filled only for positives: the presence alone separates the classes
    auc, side = auc_with_missing(x, y)
    assert auc == 1.0 and side == "low"


def test_function_of_the_label_fails_even_as_a_number() -> None:
    frame = clean_frame(2000, seed=2)
    frame = frame.assign(fee=frame["y"] * 3 + 7)
    checks = detect_leakage(frame, Case("x", frame).data, LeakageParams(), 1).checks
    finding = rows_of(_check(checks, "target_leakage"), "findings")[0]
    assert finding["measure"] == "function_of_label" and finding["columns"] == ["fee"]


def test_free_text_with_unique_values_does_not_score_on_its_own_rows() -> None:
    frame = clean_frame(3000, seed=4)
    positive = (frame["y"] == 1).to_numpy()
    (note,) = measure_target_auc(frame, ["note"], positive, None, 0.95)
    assert note.auc < 0.6


def test_feature_that_only_follows_time_is_explained_by_time() -> None:
    frame = clean_frame(4000, seed=6, drift=12.0)
    frame = frame.assign(day_number=(frame[TIME] - frame[TIME].min()).dt.days)
    checks = detect_leakage(frame, Case("x", frame).data, LeakageParams(), 1).checks
    target = _check(checks, "target_leakage")
    strongest = {m["column"]: m for m in rows_of(target, "strongest")}
    assert strongest["day_number"]["roc_auc"] >= 0.95
    assert strongest["day_number"]["roc_auc_within_time"] < 0.95
    assert target.status == "pass" and "day_number" in target.summary


# --- Id and row order ------------------------------------------------------------------------


def test_id_ordered_by_time_is_explained_but_reported_without_a_label_time() -> None:
    case = LOOKALIKES["drifting_id"](4000, 0)
    checks = run_checks(case)
    order = _check(checks, "order_leakage")
    measured = {m["column"]: m for m in rows_of(order, "measured")}
    assert measured["txn_id"]["roc_auc"] >= 0.75  # the id does predict the label ...
    assert order.status == "pass"  # ... but only through time
    untimed = DataParams(path="-", label="y", id_column="txn_id")
    checks = detect_leakage(case.frame.drop(columns=[TIME]), untimed, LeakageParams(), 1).checks
    order = _check(checks, "order_leakage")
    assert order.status == "warn" and "txn_id" in order.columns
    assert "no data.label_time" in order.summary


def test_ids_issued_by_class_are_reported() -> None:
    frame = clean_frame(3000, seed=8)
    frame["txn_id"] = np.where(frame["y"] == 1, "z-" + frame["txn_id"], frame["txn_id"])
    order = _check(run_checks(Case("x", frame)), "order_leakage")
    assert order.status == "warn" and order.columns == ["txn_id"]


# --- Missingness -----------------------------------------------------------------------------


def test_partial_presence_in_one_class_is_found_random_missingness_is_not() -> None:
    frame = clean_frame(4000, seed=9)
    rng = np.random.default_rng(0)
    only_pos = np.where((frame["y"] == 1) & (rng.random(len(frame)) < 0.3), 1.0, np.nan)
    frame = frame.assign(refund=only_pos)
    checks = detect_leakage(frame, Case("x", frame).data, LeakageParams(), 1).checks
    missing = _check(checks, "missingness_leakage")
    assert missing.status == "fail" and missing.columns == ["refund"]  # not "balance"


# --- Split and resampling --------------------------------------------------------------------


def test_shared_rows_are_counted() -> None:
    case = leak_case("shared_rows", rows=4000, seed=0)
    split = _check(run_checks(case), "split_leakage")
    assert split.status == "fail" and split.stage == "split"
    assert split.metrics["holdout_rows_repeating_training_rows"] == 200
    finding = rows_of(split, "findings")[0]
    assert finding["taxonomy"] == "L1.4"


def test_random_split_shares_rows_of_few_distinct_values_by_chance_only() -> None:
    case = LOOKALIKES["low_cardinality"](4000, 0)
    split = make_split(case.frame, case.data, SplitParams(strategy="random"))
    check = check_split_leakage(case.frame, split, case.data, LeakageParams())
    assert check.status == "pass"
    assert check.metrics["holdout_rows_repeating_training_features"] > 700


@pytest.mark.parametrize(
    ("name", "kind"),
    [("smote_before_split", "segments"), ("oversampled_before_split", "copies")],
)
def test_resampling_before_the_split_leaves_traces(name: str, kind: str) -> None:
    checks = run_checks(leak_case(name, rows=4000, seed=1))
    check = _check(checks, "resampling_leakage")
    assert check.status == "fail"
    finding = rows_of(check, "findings")[0]
    assert finding["measure"] == f"excess_share_{kind}" and finding["taxonomy"] == "L1.2"


# --- Policy, report and artifact ------------------------------------------------------------


def test_drop_policy_removes_flagged_columns_and_continues() -> None:
    case = leak_case("date_after_all", rows=2000, seed=0)
    outcome = detect_leakage(case.frame, case.data, LeakageParams(on_leakage="drop"), 1)
    assert outcome.dropped == ["settled_at"]
    temporal = _check(outcome.checks, TIME_CHECK)
    assert temporal.status == "warn" and "dropped settled_at" in temporal.summary
    assert all(c.status != "fail" for c in outcome.checks)
    assert outcome.describe() == {"on_leakage": "drop", "dropped_columns": ["settled_at"]}


def test_warn_policy_reports_without_halting_and_drop_keeps_row_failures() -> None:
    case = leak_case("oversampled_before_split", rows=3000, seed=0)
    warned = detect_leakage(case.frame, case.data, LeakageParams(on_leakage="warn"), 1)
    assert _check(warned.checks, "resampling_leakage").status == "warn" and not warned.dropped
    dropped = detect_leakage(case.frame, case.data, LeakageParams(on_leakage="drop"), 1)
    assert _check(dropped.checks, "resampling_leakage").status == "fail"


def test_findings_table_lists_every_finding_worst_first() -> None:
    frame = leak_case("date_after_share", rows=3000, seed=0).frame
    frame = frame.assign(review=frame["y"] + np.random.default_rng(0).normal(0, 0.3, len(frame)))
    checks = run_checks(Case("x", frame))
    report = Report(status="failed", checks=checks)
    table = leakage_table(report)
    assert re.fullmatch(r"[a-z0-9-]+", LEAKAGE_KEY)
    assert [row["columns"] for row in table][:2] == ["updated_at", "review"]
    assert {row["status"] for row in table} == {"fail"}
    assert table[0]["type"] == "L3.1 temporal leakage" and table[0]["threshold"] == 0.01


def test_every_leakage_code_is_expected_by_the_report() -> None:
    data_codes = {code for code, _ in DATA_CHECKS}
    assert {
        "temporal_leakage",
        "missingness_leakage",
        "target_leakage",
        "order_leakage",
        "resampling_leakage",
    } <= data_codes
    assert ("split_leakage", "split") in RETRAIN_CHECKS


@pytest.mark.parametrize("rate", [0.05, 0.95])
def test_auc_with_missing_values_in_both_classes_matches_sklearn(rate: float) -> None:
    rng = np.random.default_rng(7)
    y = rng.random(3000) < rate
    x = np.round(rng.normal(size=3000) + 0.5 * y, 1)
    x[rng.random(3000) < 0.2] = np.nan
    auc, side = auc_with_missing(x, y)
    fill = -1e9 if side == "low" else 1e9
    expected = roc_auc_score(y, np.where(np.isnan(x), fill, x))
    assert auc == pytest.approx(max(expected, 1 - expected), abs=1e-12)


def test_histogram_screen_bounds_the_exact_auc_and_defers_strong_columns() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(20_000) < 0.05
    for shift in (0.0, 0.5, 1.0):
        x = rng.lognormal(0, 1, 20_000) + shift * y
        x[rng.random(20_000) < 0.1] = np.nan
        screened = screen_auc(x, y, 0.95)
        assert screened is not None
        estimate, _, error = screened
        exact, _ = auc_with_missing(x, y)
        assert abs(estimate - exact) <= error + 1e-12 and error < 0.01
    strong = rng.normal(size=20_000) + 4.0 * y
    assert screen_auc(strong, y, 0.95) is None


def test_folds_are_the_same_draws_in_blocks_and_rates_read_the_other_fold() -> None:
    """The folds are drawn a block at a time and kept as bytes: the same halves as one call
    of 64-bit draws, so categorical AUCs stay what earlier versions measured."""
    n = 3 * 2**16 + 5
    expected = np.random.default_rng(0).integers(0, 2, size=n, dtype="int64")
    folds = fold_of_rows(n)
    assert folds.dtype == bool and np.array_equal(folds, expected.astype(bool))
    codes = np.arange(n) % 7
    # Category 3 is positive in one fold only: its own fold's rate and the other's differ.
    positive = (codes == 3) & folds
    prior = positive.mean()
    rates = out_of_fold_rates(codes, positive, folds)
    for fold in (False, True):
        other = positive[(codes == 3) & (folds != fold)]
        rows = (codes == 3) & (folds == fold)
        assert rates[rows] == pytest.approx((other.sum() + prior) / (len(other) + 1.0))
    assert rates[(codes == 3) & ~folds].min() > 0.99 and rates[(codes == 3) & folds].max() < 0.01


def test_time_bins_hold_every_row_once_in_label_time_order() -> None:
    rng = np.random.default_rng(5)
    times = pd.Series(
        pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, 5000), "s")
    )
    times[rng.random(5000) < 0.05] = pd.NaT
    bins = time_bins(times)
    assert bins is not None and all(b.dtype == np.int32 for b in bins)
    assert np.array_equal(np.sort(np.concatenate(bins)), np.arange(5000))
    present = [b for b in bins if times.iloc[b].notna().all()]
    assert len(present) == len(bins) - 1  # rows without a label time share one bin
    assert all(times.iloc[a].max() <= times.iloc[b].min() for a, b in itertools.pairwise(present))


def test_time_split_whose_holdout_reaches_into_training_time_fails() -> None:
    case = LOOKALIKES["clean"](2000, 0)
    good = make_split(case.frame, case.data, SplitParams())
    assert check_split_leakage(case.frame, good, case.data, LeakageParams()).status == "pass"
    overlapping = Split(
        train=good.train,
        holdout=np.append(good.holdout, good.train[-5:]),
        strategy="time",
        cut=good.cut,
        gap_rows=0,
    )
    check = check_split_leakage(case.frame, overlapping, case.data, LeakageParams())
    assert check.status == "fail" and check.columns[0] == TIME
    assert rows_of(check, "findings")[0]["value"] == 5


def test_tiny_tables_are_checked_without_errors() -> None:
    frame = clean_frame(12, positive_rate=0.3, seed=1)
    frame.loc[:3, "y"] = 1
    checks = run_checks(Case("tiny", frame))
    assert len(checks) == 7 and all(c.status in ("pass", "warn", "fail") for c in checks)


def test_future_date_known_in_advance_passes_once_declared() -> None:
    frame = clean_frame(2000, seed=3)
    frame = frame.assign(due_date=(frame[TIME] + pd.Timedelta(days=30)).dt.floor("D"))
    data = Case("x", frame).data
    undeclared = detect_leakage(frame, data, LeakageParams(), 1).checks
    assert _check(undeclared, TIME_CHECK).columns == ["due_date"]
    declared = LeakageParams(known_at={"due_date": "-0d"})
    assert _check(detect_leakage(frame, data, declared, 1).checks, TIME_CHECK).status == "pass"


def test_leakage_settings_come_from_a_config_mapping() -> None:
    params = RetrainParams.model_validate(
        {
            "data": {"path": "x.csv", "label": "y", "label_time": "t"},
            "leakage": {"known_at": {"score": "+30d", "risk": "risk_at"}, "on_leakage": "drop"},
        }
    )
    assert params.leakage.on_leakage == "drop"
    assert declarations_from_params(params.leakage) == {
        "score": pd.Timedelta(days=30),
        "risk": "risk_at",
    }
    with pytest.raises(ValidationError, match="on_leakage"):
        RetrainParams.model_validate(
            {"data": {"path": "x", "label": "y"}, "leakage": {"on_leakage": "ignore"}}
        )


def test_row_findings_are_listed_as_rows_in_the_table() -> None:
    checks = run_checks(leak_case("rows_by_class", rows=2000, seed=0))
    table = leakage_table(Report(status="passed", checks=checks))
    assert [(r["check"], r["columns"]) for r in table] == [("order_leakage", "(rows)")]


def test_label_time_given_as_a_date_counts_only_later_days() -> None:
    days = pd.date_range("2025-01-01", periods=40, freq="D")
    frame = pd.DataFrame(
        {
            "t": days,
            "submitted_at": days + pd.Timedelta(hours=15),  # the same day, later hours
            "settled_at": days + pd.Timedelta(days=2),
            "y": [0, 1] * 20,
        }
    )
    data = DataParams(path="-", label="y", label_time="t")
    temporal = _check(detect_leakage(frame, data, LeakageParams(), 1).checks, TIME_CHECK)
    assert temporal.columns == ["settled_at"]


def test_one_value_per_class_needs_enough_rows_of_each_class_to_count() -> None:
    from retrain_guard.tasks.leakage.auc import MIN_ROWS_FOR_FUNCTION, is_function_of_label

    two = np.array([0.1, 0.5])
    assert not is_function_of_label(two, np.array([False, True]))
    n = MIN_ROWS_FOR_FUNCTION
    values = np.array([0.0] * n + [1.0] * n)
    positive = np.array([False] * n + [True] * n)
    assert is_function_of_label(values, positive)
    assert not is_function_of_label(values[1:], positive[1:])


def test_a_two_row_table_flags_no_feature_and_says_target_leakage_could_not_judge() -> None:
    frame = pd.DataFrame({"x1": [0.1, 0.5], "x2": [1.0, 2.0], "y": [0, 1]})
    outcome = detect_leakage(frame, DataParams(path="-", label="y"), LeakageParams(), 1)
    checks = {c.code: c for c in outcome.checks}
    assert checks["target_leakage"].status == "not_run"
    assert "has 1 row(s)" in checks["target_leakage"].summary
    assert checks["target_leakage"].metrics["needed"] == 3
    assert checks["order_leakage"].status == "not_run"
    assert not [c for c in outcome.checks if c.status == "fail"]


def test_the_label_free_checks_judge_dates_without_looking_at_the_label() -> None:
    from retrain_guard.tasks.leakage.detect import LABEL_FREE_CHECKS, detect_label_free_leakage

    t = pd.date_range("2024-01-01", periods=50, freq="h")
    frame = pd.DataFrame(
        {"t": t, "closed_at": t + pd.Timedelta(days=3), "x": np.arange(50.0), "y": ["a"] * 50}
    )
    data = DataParams(path="-", label="y", label_time="t")
    outcome = detect_label_free_leakage(frame, data, LeakageParams())
    assert [c.code for c in outcome.checks] == list(LABEL_FREE_CHECKS)
    temporal = outcome.checks[0]
    assert temporal.status == "fail" and temporal.columns == ["closed_at"]


@pytest.mark.parametrize("block", [1_000_000, 7])
@pytest.mark.parametrize("searched_most", [4096, 2])
@pytest.mark.parametrize("distinct", [1, 3, 500, 10**6, 2**64 - 1])
def test_repeated_values_are_found_as_pandas_finds_duplicates(
    distinct: int, searched_most: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rows.repeated (by sorting) marks what duplicated(keep=False) marks, every value once
    or more, the largest 64-bit hashes included; repeats looked up by binary search and,
    beyond a few, through the sorting permutation; a block of values at a time."""
    monkeypatch.setattr(rows, "_SEARCHED_MOST", searched_most)
    monkeypatch.setattr(rows, "CHUNK_ROWS", block)
    monkeypatch.setattr(rows, "_BUCKETED_ABOVE", 2 * block)  # by eighths of the range
    rng = np.random.default_rng(distinct % 97)
    for size in (0, 1, 2, 1000):
        values = rng.integers(0, distinct, size, dtype="uint64", endpoint=True)
        expected = pd.Index(values).duplicated(keep=False)
        np.testing.assert_array_equal(repeated(values), expected)
        assert distinct_count(values) == len(np.unique(values))
    top = np.array([2**64 - 1, 0, 2**64 - 1, 5], dtype="uint64")
    np.testing.assert_array_equal(repeated(top), [True, False, True, False])


@pytest.mark.parametrize("block", [1_000_000, 7, 1])
def test_row_positions_and_increasing_a_block_at_a_time(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positions found a block of the mask at a time are flatnonzero's (32-bit); strictly
    increasing positions are told apart from repeated or decreasing ones across blocks."""
    monkeypatch.setattr(positions_module, "BLOCK", block)
    rng = np.random.default_rng(block)
    for size in (0, 1, 2, 50):
        mask = rng.random(size) < 0.4
        found = row_positions(mask)
        assert found.dtype == np.int32
        np.testing.assert_array_equal(found, np.flatnonzero(mask))
        assert increasing(found)
    for listed in ([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 2], [0, 5, 9, 9, 12], [5, 4]):
        assert not increasing(np.array(listed))
    assert increasing(np.arange(30)) and increasing(np.array([], dtype=np.int64))
    for positions in (np.array([2, 5, 9], dtype=np.int32), np.array([2, 5, 9])):
        for value in (-1, 0, 2, 3, 9, 10, 2**31, 2**40):
            assert position_index(positions, value) == np.searchsorted(positions, value)


def _columns_of_every_kind() -> list[pd.Series]:
    rng = np.random.default_rng(1)
    present = rng.random(1000) > 0.3
    return [
        *(pd.Series(rng.integers(0, k, n)) for k, n in ((2, 1000), (10**9, 1000), (50, 1))),
        pd.Series(rng.integers(0, 3, 5000)),  # mostly repeats
        pd.Series(np.concatenate([np.arange(1000), [5, 5, 17, 17, 17, 999]])),  # few repeats
        pd.Series(rng.normal(size=1000)).where(present),
        pd.Series([0.0, -0.0, np.nan, float("nan"), 1.0]),
        pd.Series([["a", "b", None][i] for i in rng.integers(0, 3, 1000)], dtype="object"),
        pd.Series(rng.choice(["a", "bb", "ccc"], 1000), dtype="str"),
        pd.Series(pd.to_datetime(rng.integers(0, 5, 1000), unit="D")).where(present),
        pd.Series(rng.integers(0, 3, 1000)).astype("category"),
        pd.Series([], dtype=float),
        pd.Series([2**60, 2**60 + 1, 2**60 + 1, -5], dtype="int64"),  # apart only as integers
        pd.Series(rng.integers(0, 3, 1000), dtype="Int64").where(present),
        pd.Series(rng.random(1000) < 0.3),
        pd.Series(pd.to_datetime(rng.integers(0, 5, 1000), unit="D", utc=True)).where(present),
        pd.Series(pd.to_timedelta(rng.integers(0, 4, 1000), unit="h")),
    ]


@pytest.mark.parametrize("values", _columns_of_every_kind())
def test_collision_probability_by_sorted_hashes_is_the_value_counts_one(
    values: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above _COUNT_BY_HASH_ROWS the chance two rows share a value is counted from sorted
    values, hashes or codes; it is the value_counts sum (0.0 and -0.0 one value, missing
    values one)."""
    shares = values.value_counts(normalize=True, dropna=False).to_numpy()
    exact = split_sharing.collision_probability(values)
    assert exact == pytest.approx(float(np.sum(shares * shares)), abs=1e-15)
    monkeypatch.setattr(split_sharing, "_COUNT_BY_HASH_ROWS", 0)
    assert split_sharing.collision_probability(values) == pytest.approx(exact, abs=1e-12)
