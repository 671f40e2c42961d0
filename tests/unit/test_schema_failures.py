"""Each kind of schema failure appears in the report with its rows, values and exact counts."""

from pathlib import Path

import pandas as pd
import pytest

from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.tasks.artifacts import schema_failures_table
from retrain_guard.tasks.schema_failures import (
    LABEL_TIME_CHECK,
    MISSING_CHECK,
    FailureRow,
    SchemaFailure,
    column_failure,
    redact,
    unusable_columns,
)
from retrain_guard.tasks.validation import check_header, declare_schema, validate_frame

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_YAML = str(REPO / "schemas" / "examples" / "transactions.yaml")
DATA = DataParams(path="x", label="is_fraud", label_time="event_time", id_column="transaction_id")


def _validate(frame: pd.DataFrame, name: str = EXAMPLE_YAML, cap: int = 100, **kw: object):  # type: ignore[no-untyped-def]
    params = SchemaParams(name=name, max_failure_cases=cap, **kw)
    declared = declare_schema(params, DATA, [str(c) for c in frame.columns])
    return validate_frame(frame, declared, DATA, params)


def _by_check(check) -> dict[tuple[str | None, str], dict]:  # type: ignore[no-untyped-def]
    return {(f["column"], f["check"]): f for f in check.metrics["failures"]}


@pytest.fixture
def frame(example_frame: pd.DataFrame) -> pd.DataFrame:
    return example_frame.head(400).copy()


def test_example_passes_its_yaml_schema(example_frame: pd.DataFrame) -> None:
    validated, check = _validate(example_frame)
    assert check.status == "pass", check.summary
    assert validated is not None and len(validated) == len(example_frame)


def test_every_failure_kind_is_listed_with_rows_and_counts(frame: pd.DataFrame) -> None:
    frame = frame.drop(columns=["txn_count_24h"])  # missing column
    frame["card_age_days"] = frame["card_age_days"].astype("float64")  # wrong dtype
    frame.loc[[3, 4], "distance_from_home_km"] = -1.0  # out of range
    frame["channel"] = frame["channel"].astype(object)
    frame.loc[[5, 6], "channel"] = None  # nulls
    frame.loc[7, "merchant_category"] = "casino"  # unknown category
    frame.loc[8, "transaction_id"] = frame.loc[9, "transaction_id"]  # duplicate id
    late = frame.loc[10, "event_time"] + pd.Timedelta(days=1)
    frame.loc[10, "account_opened_at"] = late  # dataframe-level check
    validated, check = _validate(frame, cap=1)
    assert validated is None and check.status == "fail"
    found = _by_check(check)
    assert found[("txn_count_24h", "column_in_dataframe")]["message"] == (
        "column 'txn_count_24h' is missing"
    )
    dtype = found[("card_age_days", "dtype('int64')")]
    assert dtype["value"] == "float64" and dtype["threshold"] == {"dtype": "int64"}
    ranged = found[("distance_from_home_km", "greater_than_or_equal_to(0)")]
    assert ranged["count"] == 2 and ranged["threshold"] == {"min_value": 0}
    assert ranged["rows"] == [{"index": 3, "value": -1.0, "id": "tx-0000003"}], "capped at 1"
    nulls = found[("channel", "not_nullable")]
    assert nulls["count"] == 2 and [r["index"] for r in nulls["rows"]] == [5]
    category = next(f for (c, _), f in found.items() if c == "merchant_category")
    assert category["rows"][0]["value"] == "casino" and category["count"] == 1
    assert "casino" not in category["threshold"]["allowed_values"]
    duplicate = found[("transaction_id", "field_uniqueness")]
    assert duplicate["count"] == 2 and duplicate["rows"][0]["id"] == "tx-0000009"
    opened = found[(None, "account_opened_before_event")]
    assert opened["count"] == 1 and opened["threshold"]["op"] == "<="
    assert opened["rows"][0]["index"] == 10
    assert opened["rows"][0]["value"]["account_opened_at"] == str(late)
    assert check.metrics["failing_checks"] == 7
    table = schema_failures_table_for(check)
    row = table[("distance_from_home_km", 3)]
    assert row["failing_rows"] == 2 and row["id"] == "tx-0000003" and row["value"] == -1.0
    assert row["threshold"] == '{"min_value": 0}'
    assert table[("txn_count_24h", None)]["check"] == "column_in_dataframe"


def schema_failures_table_for(check) -> dict[tuple[object, object], dict]:  # type: ignore[no-untyped-def]
    from retrain_guard.schemas.report import Report

    report = Report(status="failed", checks=[check])
    return {(r["column"], r["row_index"]): r for r in schema_failures_table(report)}


def test_mixed_time_zones_fail_by_row_unless_normalised(frame: pd.DataFrame) -> None:
    text = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    text.loc[[2, 5]] = frame.loc[[2, 5], "event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    text.loc[7] = frame.loc[[7], "event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S").iloc[0]
    frame["event_time"] = text.astype(object)
    _, check = _validate(frame)
    mixed = _by_check(check)[("event_time", "single_time_zone")]
    assert mixed["count"] == 3
    assert [r["index"] for r in mixed["rows"]] == [2, 5, 7]
    assert mixed["threshold"]["time_zones_seen"] == {"+00:00": 397, "+02:00": 2, "naive": 1}
    # The cause comes first; the comparison that could not run is about the table, not a column.
    assert check.summary.startswith(
        "column 'event_time' holds object; the schema wants datetime64[ns]"
    )
    assert mixed["message"] == (
        "column 'event_time' mixes time zones in 3 row(s); the schema wants one time zone "
        "per column"
    )
    compared = _by_check(check)[(None, "account_opened_before_event")]
    assert compared["count"] is None and "TypeError" in str(compared["value"])


def test_unparseable_dates_are_listed_by_row(frame: pd.DataFrame) -> None:
    # As a CSV reader leaves it: a text column, since one value is not a date.
    text = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype("str")
    text.loc[11] = "yesterday-ish"
    frame["event_time"] = text
    _, check = _validate(frame)
    found = _by_check(check)
    # pandera's dtype check names the rows that are not datetimes.
    dtype = found[("event_time", "dtype('datetime64[ns]')")]
    assert dtype["count"] == 1
    assert dtype["rows"] == [{"index": 11, "value": "yesterday-ish", "id": "tx-0000011"}]
    assert ("event_time", "single_time_zone") not in found, "one bad value is not a zone mix"


def test_a_schema_that_says_how_to_normalise_accepts_mixed_zones(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    text = Path(EXAMPLE_YAML).read_text()
    text = text.replace(
        "  event_time:\n    dtype: datetime\n",
        "  event_time:\n    dtype: datetime\n    time_zone: UTC\n    normalise_time_zones: true\n",
    )
    text = text.replace(
        "  account_opened_at:\n    dtype: datetime\n",
        "  account_opened_at:\n    dtype: datetime\n    time_zone: UTC\n"
        "    normalise_time_zones: true\n",
    )
    schema = tmp_path / "tz.yaml"
    schema.write_text(text)
    times = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00").astype(object)
    shifted = frame.loc[[2], "event_time"] + pd.Timedelta(hours=2)
    times.loc[2] = shifted.dt.strftime("%Y-%m-%dT%H:%M:%S+02:00").iloc[0]
    frame["event_time"] = times
    validated, check = _validate(frame, str(schema))
    assert check.status == "pass", check.metrics.get("failures")
    assert validated is not None and str(validated["event_time"].dt.tz) == "UTC"
    assert validated.loc[2, "event_time"] == pd.Timestamp(frame_time := times.loc[2])
    assert frame_time.endswith("+02:00")


def test_redaction_hides_values_but_keeps_rows_and_counts(frame: pd.DataFrame) -> None:
    frame.loc[[3, 4], "amount"] = -12.5
    frame.loc[5, "merchant_category"] = "alice@example.com"
    _, check = _validate(frame, redact_values=True)
    assert check.metrics["redacted"] is True
    assert "alice@example.com" not in str(check.model_dump()) and "-12.5" not in str(
        check.model_dump()
    )
    amount = _by_check(check)[("amount", "greater_than_or_equal_to(0)")]
    assert amount["count"] == 2 and [r["index"] for r in amount["rows"]] == [3, 4]
    assert amount["rows"][0]["value"] == redact(-12.5)
    assert amount["rows"][0]["value"].startswith("<float sha256:")
    assert amount["rows"][0]["value"] == amount["rows"][1]["value"], "equal values match"


def test_yaml_schema_can_ask_for_redaction(frame: pd.DataFrame, tmp_path: Path) -> None:
    schema = tmp_path / "pii.yaml"
    schema.write_text(Path(EXAMPLE_YAML).read_text() + "redact_values: true\n")
    frame.loc[5, "channel"] = "secret-channel"
    _, check = _validate(frame, str(schema))
    assert "secret-channel" not in str(check.model_dump())


def test_extra_columns_fail_or_are_ignored_per_schema(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame["notes"] = "x"
    _, check = _validate(frame)
    assert check.status == "fail"
    assert _by_check(check)[("notes", "column_in_schema")]["count"] is None
    assert check.metrics["extra_columns"] == ["notes"]
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(
        Path(EXAMPLE_YAML).read_text().replace("extra_columns: fail", "extra_columns: ignore")
    )
    _, passed = _validate(frame, str(lenient))
    assert passed.status == "pass" and passed.metrics["extra_columns"] == ["notes"]
    assert "extra columns ignored: notes" in passed.summary


def test_header_check_names_missing_and_extra_columns_before_rows() -> None:
    columns = ["transaction_id", "event_time", "amount", "surprise"]
    declared = declare_schema(SchemaParams(name=EXAMPLE_YAML), DATA, columns)
    failed = check_header(declared, DATA, columns)
    assert failed is not None and failed.metrics["checked"] == "header"
    found = _by_check(failed)
    assert ("is_fraud", "column_in_dataframe") in found
    assert ("merchant_category", "column_in_dataframe") in found
    assert ("surprise", "column_in_schema") in found


def test_a_column_name_with_a_control_character_fails_the_header_naming_it() -> None:
    # numpy cuts a trailing NUL from strings: scikit-learn could not find the column.
    columns = ["transaction_id", "event_time", "amount", "is_fraud", "x\x00", "tab\there"]
    declared = declare_schema(SchemaParams(), DATA, columns)
    failed = check_header(declared, DATA, columns)
    assert failed is not None and failed.code == "schema_invalid"
    found = _by_check(failed)
    assert ("x\x00", "no_control_characters_in_names") in found
    assert ("tab\there", "no_control_characters_in_names") in found
    assert "holds a control character" in failed.summary
    dropped = DATA.model_copy(update={"drop": ["x\x00", "tab\there"]})
    assert check_header(declared, dropped, columns) is None


def test_summary_of_a_million_failing_rows_is_exact_and_capped() -> None:
    rows = 1_000_000
    frame = pd.DataFrame({"x": -pd.Series(range(1, rows + 1), dtype="int64")})
    params = SchemaParams(name=None, max_failure_cases=5)
    import pandera.pandas as pa

    from retrain_guard.schemas.roles import SchemaRoles
    from retrain_guard.tasks.validation import DeclaredSchema

    declared = DeclaredSchema(
        pa.DataFrameSchema({"x": pa.Column("int64", pa.Check.ge(0))}, name="big"),
        SchemaRoles(),
        "ignore",
        False,
        "test",
    )
    _, check = validate_frame(frame, declared, DataParams(path="x", label="x"), params)
    failure = check.metrics["failures"][0]
    assert isinstance(failure, dict) and isinstance(failure["rows"], list)
    assert failure["count"] == rows and len(failure["rows"]) == 5


def test_failures_are_typed_and_become_todays_json_only_in_the_report() -> None:
    missing = column_failure("amount", MISSING_CHECK)
    assert missing.as_json() == {
        "column": "amount",
        "check": MISSING_CHECK,
        "count": None,
        "rows": [],
        "message": "column 'amount' is missing",
    }
    ranged = SchemaFailure(
        "amount",
        "greater_than_or_equal_to(0)",
        "column 'amount' has 1 row(s) below 0",
        count=1,
        rows=(FailureRow(7, -1.0, row_id="tx-7", has_id=True),),
        pandera=True,
        threshold={"min_value": 0},
    )
    assert list(ranged.as_json()) == ["column", "check", "threshold", "count", "rows", "message"]
    assert ranged.as_json()["rows"] == [{"index": 7, "value": -1.0, "id": "tx-7"}]
    raised = SchemaFailure("x", "custom", "raised", pandera=True, value="ZeroDivisionError")
    assert raised.as_json()["value"] == "ZeroDivisionError"
    label_time = SchemaFailure("t", LABEL_TIME_CHECK, "unsettled")
    # Missing, raised and unreadable label times leave their column unusable; a range does not.
    assert unusable_columns([missing, ranged, raised, label_time, missing]) == ["amount", "x", "t"]


def test_a_table_rows_values_are_redacted_one_by_one() -> None:
    row = FailureRow(3, values=(("a", 1), ("b", None)), row_id="r3", has_id=True)
    assert row.as_json() == {"index": 3, "value": {"a": 1, "b": None}, "id": "r3"}
    assert row.redacted().as_json() == {
        "index": 3,
        "value": {"a": redact(1), "b": None},
        "id": "r3",
    }
    assert FailureRow(4).redacted().as_json() == {"index": 4, "value": None}
