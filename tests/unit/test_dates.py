"""Dates read one way: day/month order never guessed, mixed offsets to UTC, one offset grammar."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from retrain_guard.schemas.params import DataParams, LeakageParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.schemas.roles import SchemaDeclarationError, SchemaRoles
from retrain_guard.tasks.dates import (
    as_naive_utc,
    day_month_order,
    parse_date_like,
    parse_iso,
    to_days,
)
from retrain_guard.tasks.label_time import read_label_time
from retrain_guard.tasks.leakage.detect import detect_leakage
from retrain_guard.tasks.leakage.temporal import (
    DeclarationError,
    check_temporal_leakage,
    declarations_from_params,
)
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.offsets import format_offset, parse_offset
from retrain_guard.tasks.schema_draft import draft_schema
from tests.leakage_cases import rows_of


def _frame(due: list[str], rows: int = 40) -> pd.DataFrame:
    """A small labelled table with a text date column `due_date` repeating `due`."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=rows, freq="D")
    return pd.DataFrame(
        {
            "event_time": times,
            "amount": rng.normal(size=rows),
            "due_date": [due[i % len(due)] for i in range(rows)],
            "y": np.tile([0, 1, 0, 0], rows // 4),
        }
    )


DATA = DataParams(path="x.csv", label="y", label_time="event_time")


def _check(frame: pd.DataFrame, code: str, params: LeakageParams | None = None) -> CheckResult:
    outcome = detect_leakage(frame, DATA, params or LeakageParams(), 1)
    return next(c for c in outcome.checks if c.code == code)


# --- Day/month order ----------------------------------------------------------------------


def test_a_day_above_12_settles_day_first_for_the_whole_column() -> None:
    values = pd.Series(["03/01/2024", "25/01/2024", "04/02/2024"])
    parsed = parse_date_like("due_date", values)
    assert parsed is not None
    assert list(parsed.values) == [
        pd.Timestamp("2024-01-03"),
        pd.Timestamp("2024-01-25"),
        pd.Timestamp("2024-02-04"),
    ]
    assert "25/01/2024" in parsed.how


def test_a_month_field_above_12_settles_month_first() -> None:
    values = pd.Series(["03/01/2024", "12/25/2024"])
    parsed = parse_date_like("due_date", values)
    assert parsed is not None
    assert list(parsed.values) == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-12-25")]


def test_the_settling_value_may_lie_outside_the_sample() -> None:
    # 5,000 rows: the sample of 200 values is unlikely to hold the one settling value.
    values = pd.Series(["03/01/2024"] * 4999 + ["12/25/2024"])
    parsed = parse_date_like("due_date", values)
    assert parsed is not None
    assert parsed.values.iloc[0] == pd.Timestamp("2024-03-01")
    assert parsed.values.iloc[-1] == pd.Timestamp("2024-12-25")


@pytest.mark.parametrize("separator", ["/", ".", "-"])
def test_every_day_month_separator_is_settled_the_same_way(separator: str) -> None:
    values = pd.Series([f"03{separator}01{separator}2024", f"12{separator}25{separator}2024"])
    order = day_month_order(values)
    assert order is not None and order.order == "month_first"
    assert order.format == f"%m{separator}%d{separator}%Y"


def test_unsettled_order_stays_text_and_warns_naming_the_column() -> None:
    frame = _frame(["03/01/2024", "04/02/2024"])
    assert parse_date_like("due_date", frame["due_date"]) is None
    check = _check(frame, "ambiguous_dates")
    assert check.status == "warn" and check.columns == ["due_date"]
    assert "'due_date'" in check.summary and "03/01/2024" in check.summary
    assert "ISO 8601" in check.summary
    # Left as text, the column is not measured as dates.
    temporal = _check(frame, "temporal_leakage")
    assert temporal.metrics["columns_checked"] == 0


def test_contradicting_values_stay_text_and_warn() -> None:
    frame = _frame(["25/01/2024", "12/25/2024", "03/01/2024"])
    assert parse_date_like("due_date", frame["due_date"]) is None
    check = _check(frame, "ambiguous_dates")
    assert check.status == "warn" and check.columns == ["due_date"]
    assert "contradict" in check.summary
    assert "25/01/2024" in check.summary and "12/25/2024" in check.summary


def test_a_settled_column_passes_the_ambiguity_check() -> None:
    check = _check(_frame(["03/01/2024", "25/01/2024"]), "ambiguous_dates")
    assert check.status == "pass" and check.columns == []


@pytest.mark.parametrize(
    ("values", "first"),
    [(["2024/01/03", "2024/02/04"], "2024-01-03"), (["20240103", "20240204"], "2024-01-03")],
)
def test_year_first_forms_are_unambiguous(values: list[str], first: str) -> None:
    parsed = parse_date_like("due_date", pd.Series(values))
    assert parsed is not None and parsed.values.iloc[0] == pd.Timestamp(first)
    assert _check(_frame(values), "ambiguous_dates").status == "pass"


def test_a_declared_known_at_column_with_unsettled_order_is_a_clear_error() -> None:
    frame = _frame(["2024-01-01"]).assign(ready=["03/01/2024", "04/02/2024"] * 20)
    params = LeakageParams(known_at={"amount": "ready"})
    with pytest.raises(DeclarationError, match=r"'ready'.*not settled"):
        check_temporal_leakage(frame, "event_time", ["amount"], params)


# --- Time zones -----------------------------------------------------------------------------


def test_iso_strings_with_mixed_offsets_are_read_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "dst.csv"
    path.write_text(
        "id,event_time,label\n1,2024-03-30T10:00:00+01:00,0\n2,2024-04-01T10:00:00+02:00,1\n3,,0\n"
    )
    frame = read_table(path)
    assert str(frame["event_time"].dtype).startswith("datetime64")
    assert list(as_naive_utc(frame["event_time"]).dropna()) == [
        pd.Timestamp("2024-03-30 09:00"),
        pd.Timestamp("2024-04-01 08:00"),
    ]
    assert frame["event_time"].isna().sum() == 1


def test_one_offset_keeps_its_zone_and_naive_values_stay_naive() -> None:
    one = parse_iso(pd.Series(["2024-03-30T10:00:00+01:00", "2024-03-31T10:00:00+01:00"]))
    assert one is not None and str(one.dt.tz) == "UTC+01:00"
    naive = parse_iso(pd.Series(["2024-03-30T10:00:00", "2024-03-31"]))
    assert naive is not None and naive.dt.tz is None


def test_naive_and_aware_values_mixed_stay_text() -> None:
    # Which zone the naive value is in is unknown: the schema stage reports the mix by row.
    assert parse_iso(pd.Series(["2024-03-30T10:00:00+01:00", "2024-03-31T10:00:00"])) is None


def test_dates_to_days_treats_aware_and_naive_alike() -> None:
    aware = pd.to_datetime(pd.Series(["1970-01-02T01:00:00+01:00", None]), utc=True)
    naive = pd.to_datetime(pd.Series(["1970-01-02", None]))
    assert to_days(aware)[0] == to_days(naive)[0] == 1.0
    assert np.isnan(to_days(aware)[1])


# --- One offset grammar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("0d", pd.Timedelta(0)),
        ("+0d", pd.Timedelta(0)),
        ("-0d", pd.Timedelta(0)),
        ("-1d", pd.Timedelta(days=-1)),
        ("+30d", pd.Timedelta(days=30)),
        ("30d", pd.Timedelta(days=30)),
        ("-6h", pd.Timedelta(hours=-6)),
        ("- 90min", pd.Timedelta(minutes=-90)),
        ("+2w", pd.Timedelta(weeks=2)),
        ("-30s", pd.Timedelta(seconds=-30)),
    ],
)
def test_the_offset_grammar(text: str, delta: pd.Timedelta) -> None:
    assert parse_offset(text) == delta
    assert parse_offset(format_offset(delta)) == delta


@pytest.mark.parametrize("text", ["0d", "-1d", "+30d", "-6h"])
def test_an_offset_means_the_same_in_parameters_and_in_a_schema(text: str) -> None:
    from_params = declarations_from_params(LeakageParams(known_at={"amount": text}))
    roles = SchemaRoles.from_mapping({"label_time": "t", "known_at": {"amount": text}})
    assert from_params == roles.declarations() == {"amount": parse_offset(text)}
    # The schema's roles, handed on to the leakage parameters, still read as the offset.
    handed_on = LeakageParams(known_at=roles.leakage_known_at())
    assert declarations_from_params(handed_on) == from_params


def test_0d_in_parameters_is_an_offset_not_a_column() -> None:
    frame = _frame(["2024-01-01"])
    params = LeakageParams(known_at={"amount": "0d"})
    check = check_temporal_leakage(frame, "event_time", ["amount"], params)
    assert check.status == "pass"
    declared = [m for m in rows_of(check, "measured") if m["column"] == "amount"]
    assert declared and "label time" in declared[0]["source"]


def test_a_text_that_is_both_an_offset_and_a_column_is_an_error() -> None:
    frame = _frame(["2024-01-01"]).assign(**{"0d": pd.Timestamp("2023-12-01")})
    params = LeakageParams(known_at={"amount": "0d"})
    with pytest.raises(DeclarationError, match="both as an offset"):
        check_temporal_leakage(frame, "event_time", ["amount"], params)
    config = _check(frame, "leakage_config_invalid", params)
    assert config.status == "fail" and "rename the column" in config.summary
    with pytest.raises(SchemaDeclarationError, match="both as an offset"):
        SchemaRoles.from_mapping({"known_at": {"amount": "0d"}}, ["amount", "0d"])
    with pytest.raises(SchemaDeclarationError, match="reads as an offset"):
        SchemaRoles.from_mapping({"known_at": {"amount": {"column": "-1d"}}})


def test_a_malformed_offset_in_parameters_names_the_grammar() -> None:
    with pytest.raises(ValidationError, match="optional sign, an amount and a unit"):
        LeakageParams(known_at={"amount": "+3 days"})


# --- The temporal_leakage message -----------------------------------------------------------


def test_a_future_date_halts_with_how_to_declare_it_and_the_declaration_works() -> None:
    frame = _frame(["2024-01-01"])
    frame["due_date"] = frame["event_time"] + pd.Timedelta(days=30)
    check = _check(frame, "temporal_leakage")
    assert check.status == "fail"
    assert "leakage.known_at: {due_date: '0d'}" in check.summary
    assert str(check.metrics["remedy"]) in check.summary
    # The declaration the hint gives is accepted and passes.
    declared = LeakageParams(known_at={"due_date": "0d"})
    assert _check(frame, "temporal_leakage", declared).status == "pass"
    # A declaration saying the value is known only later is still leakage, without the hint.
    later = _check(frame, "temporal_leakage", LeakageParams(known_at={"due_date": "+30d"}))
    assert later.status == "fail" and "known_at" not in later.summary


# --- The schema draft -----------------------------------------------------------------------


def test_the_draft_marks_day_month_text_for_review() -> None:
    frame = _frame(["03/01/2024", "04/02/2024"])
    draft = draft_schema(frame, "y", label_time="event_time")
    note = draft.review[("columns", "due_date")]
    assert "no value settles day/month order" in note and "ISO 8601" in note


def test_a_draft_from_an_extract_across_a_dst_change_declares_utc(tmp_path: Path) -> None:
    path = tmp_path / "dst.csv"
    path.write_text(
        "event_time,amount,y\n2024-03-30T10:00:00+01:00,1.0,0\n2024-04-01T10:00:00+02:00,2.0,1\n"
    )
    draft = draft_schema(read_table(path), "y", label_time="event_time")
    assert draft.spec.columns["event_time"].time_zone == "UTC"


def test_a_declared_known_at_column_of_epoch_seconds_is_read_as_seconds() -> None:
    # Read as nanoseconds it would lie in 1970, before every label time, hiding the leak.
    frame = _frame(["2024-01-01"])
    known = frame["event_time"] + pd.Timedelta(days=5)
    frame["ready"] = (known - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    params = LeakageParams(known_at={"amount": "ready"})
    check = check_temporal_leakage(frame, "event_time", ["amount"], params)
    assert check.status == "fail" and check.columns == ["amount"]


def test_a_fraction_among_years_or_yyyymmdd_numbers_is_a_missing_date_not_an_error() -> None:
    """The sample decides that float numbers are years or yyyymmdd dates; a value with a
    fraction the sample did not see is no date (missing, a bad row of a label time), where
    it raised from the cast to integers."""
    years = pd.Series([2019.0 + i % 5 for i in range(3000)])
    years.iloc[1] = 2019.5  # outside the sample's stride
    parsed = parse_date_like("signup_year", years)
    assert parsed is not None and parsed.how.startswith("years")
    assert parsed.values.isna().tolist() == [i == 1 for i in range(3000)]
    days = pd.Series([20240101.0 + i % 28 for i in range(3000)])
    days.iloc[1] = 20240101.5
    read = read_label_time("event_time", days)
    assert read.values is not None and read.how == "yyyymmdd numbers"
    assert read.bad_rows == (1,)
