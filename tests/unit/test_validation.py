from pathlib import Path

import pandas as pd
import pytest

from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.schemas.roles import SchemaDeclarationError
from retrain_guard.tasks.schema_messages import describe
from retrain_guard.tasks.validation import (
    SchemaOutcome,
    check_header,
    declare_schema,
    judge_empty_columns,
    measure_empty_columns,
    validate_frame,
    validate_schema,
)

EXAMPLE_YAML = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "transactions.yaml"

DATA = DataParams(path="x", label="is_fraud", label_time="event_time", id_column="transaction_id")


def _outcome(frame: pd.DataFrame, name: str | None = None, cap: int = 100) -> SchemaOutcome:
    params = SchemaParams(name=name, max_failure_cases=cap)
    declared = declare_schema(params, DATA, list(frame.columns))
    return validate_schema(frame, declared, DATA, params)


def _validate(frame: pd.DataFrame, name: str | None = None, cap: int = 100):  # type: ignore[no-untyped-def]
    outcome = _outcome(frame, name, cap)
    return outcome.frame, outcome.check


def _failures(check) -> dict[tuple[str | None, str], dict]:  # type: ignore[no-untyped-def]
    return {(f["column"], f["check"]): f for f in check.metrics["failures"]}


@pytest.mark.parametrize("name", [None, "example"])
def test_example_passes_baseline_and_example_schema(
    example_frame: pd.DataFrame, name: str | None
) -> None:
    frame, check = _validate(example_frame, name)
    assert check.status == "pass"
    assert frame is not None and len(frame) == len(example_frame)


def test_missing_label_column_is_named(example_frame: pd.DataFrame) -> None:
    frame, check = _validate(example_frame.drop(columns=["is_fraud"]))
    assert frame is None and check.status == "fail"
    assert check.columns == ["is_fraud"]
    assert "is_fraud" in check.summary and "missing" in check.summary


def test_unparseable_label_time_names_column_row_and_value(example_frame: pd.DataFrame) -> None:
    frame = example_frame.head(20).copy()
    frame["event_time"] = frame["event_time"].astype(str)
    frame.loc[7, "event_time"] = "yesterday-ish"
    _, check = _validate(frame)
    assert check.status == "fail"
    failures = [f for f in check.metrics["failures"] if f["column"] == "event_time"]
    assert len(failures) == 1 and failures[0]["count"] == 1
    assert failures[0]["rows"] == [{"index": 7, "value": "yesterday-ish", "id": "tx-0000007"}]


def test_an_empty_column_is_no_baseline_failure_but_three_classes_are(
    example_frame: pd.DataFrame,
) -> None:
    frame = example_frame.head(30).copy()
    frame["empty"] = float("nan")
    frame.loc[3, "is_fraud"] = 1
    frame.loc[4, "is_fraud"] = 2
    outcome = _outcome(frame)
    check = outcome.check
    found = _failures(check)
    assert list(found) == [("is_fraud", "at_most_two_classes")]
    assert check.summary == (
        "column 'is_fraud' holds more than two classes; a binary classifier needs at most two"
    )
    assert outcome.unusable == ["is_fraud"]
    # The report's failures are the typed failures as JSON.
    assert check.metrics["failures"] == [f.as_json() for f in outcome.failures]


def test_empty_feature_columns_are_a_warning_with_the_row_count(
    example_frame: pd.DataFrame,
) -> None:
    frame = example_frame.head(7214).copy()
    frame["violent_recid"] = float("nan")
    empty = measure_empty_columns(frame, DATA.feature_columns(frame.columns))
    assert empty == ["violent_recid"]
    check = judge_empty_columns(empty, len(frame))
    assert check.status == "warn" and check.columns == ["violent_recid"]
    assert check.summary == (
        "column 'violent_recid' is empty in all 7,214 rows; left out of the features"
    )
    assert judge_empty_columns([], len(frame)).status == "pass"
    # Without rows no column is called empty: the label profile says the table has no class.
    assert measure_empty_columns(frame.head(0), ["violent_recid", "amount"]) == []


def test_dropped_columns_are_not_checked_by_the_schema(example_frame: pd.DataFrame) -> None:
    frame = example_frame.head(30).copy()
    frame["broken"] = "text"
    schema = tmp_yaml_with_int_column("broken")
    data = DATA.model_copy(update={"drop": ["broken"]})
    params = SchemaParams(name=str(schema))
    declared = declare_schema(params, data, list(frame.columns))
    validated, check = validate_frame(frame, declared, data, params)
    assert check.status == "pass", check.summary
    assert validated is not None and list(validated.columns) == list(frame.columns)
    # Without the drop the same schema fails on the column, in words.
    declared = declare_schema(params, DATA, list(frame.columns))
    _, failed = validate_frame(frame, declared, DATA, params)
    assert failed.status == "fail" and failed.columns == ["broken"]
    assert "the schema wants int64" in failed.summary or "cannot be read as int64" in (
        failed.summary
    )


def tmp_yaml_with_int_column(column: str) -> Path:
    import tempfile

    target = Path(tempfile.mkdtemp()) / "with-int.yaml"
    target.write_text(
        EXAMPLE_YAML.read_text().replace(
            "columns:\n", f"columns:\n  {column}:\n    dtype: int64\n", 1
        )
    )
    return target


@pytest.mark.parametrize(
    ("check", "count", "value", "expected"),
    [
        ("not_nullable", 3, None, "column 'x' has missing values in 3 row(s); the schema "
         "forbids them"),
        ("dtype('int64')", None, "float64", "column 'x' holds float64; the schema wants int64"),
        ("coerce_dtype('datetime64[ns]')", 2, None,
         "column 'x': 2 row(s) hold values that cannot be read as datetime64[ns]"),
        ("field_uniqueness", 4, None, "column 'x' repeats values in 4 row(s); the schema "
         "wants them unique"),
        ("in_range(0, 1)", 1_200, None, "column 'x' has 1,200 row(s) outside the range 0 to 1"),
        ("greater_than_or_equal_to(0)", 5, None, "column 'x' has 5 row(s) below 0"),
        ("less_than(10)", 1, None, "column 'x' has 1 row(s) not below 10"),
        ("isin(['a', 'b'])", 2, None, "column 'x' has 2 row(s) outside the allowed values "
         "['a', 'b']"),
        ("str_matches('^q')", 2, None, "column 'x' has 2 row(s) not matching the pattern '^q'"),
        ("not_entirely_null", None, False, "column 'x' fails the check 'not_entirely_null'"),
        ("str_matches('q')", None, "AttributeError('Can only use .str accessor')",
         "column 'x': the check \"str_matches('q')\" could not be applied "
         "(AttributeError('Can only use .str accessor'))"),
    ],
)  # fmt: skip
def test_every_schema_message_is_in_words(
    check: str, count: int | None, value: object, expected: str
) -> None:
    message = describe("x", check, count, value)  # type: ignore[arg-type]
    assert message == expected
    assert "got False" not in message and "got True" not in message


def test_a_user_schema_forbidding_nulls_still_fails_in_words(
    example_frame: pd.DataFrame,
) -> None:
    frame = example_frame.head(50).copy()
    frame["amount"] = float("nan")
    _, check = _validate(frame, str(EXAMPLE_YAML))
    assert check.status == "fail"
    found = _failures(check)
    assert found[("amount", "not_nullable")]["message"] == (
        "column 'amount' has missing values in 50 row(s); the schema forbids them"
    )


def test_repeated_header_names_are_schema_invalid_naming_the_column() -> None:
    params = SchemaParams()
    columns = ["is_fraud", "event_time", "transaction_id", "amount", "amount.1"]
    declared = declare_schema(params, DATA, columns)
    check = check_header(declared, DATA, columns, ["amount"])
    assert check is not None and check.status == "fail" and check.code == "schema_invalid"
    assert check.columns == ["amount"]
    assert check.summary.startswith("column name 'amount' appears more than once in the header")
    assert check_header(declared, DATA, columns, []) is None


def test_example_schema_lists_every_failure_with_rows_and_exact_counts(
    example_frame: pd.DataFrame,
) -> None:
    frame = example_frame.head(500).copy()
    frame.loc[[1, 2, 3], "amount"] = -5.0
    frame.loc[4, "channel"] = "telepathy"
    frame.loc[5, "transaction_id"] = frame.loc[6, "transaction_id"]
    frame.loc[8, "account_opened_at"] = frame.loc[8, "event_time"] + pd.Timedelta(days=3)
    _, check = _validate(frame, "example", cap=2)
    found = _failures(check)
    amount = found[("amount", "greater_than_or_equal_to(0)")]
    assert amount["count"] == 3, "the count stays exact when the listed rows are capped"
    assert [r["index"] for r in amount["rows"]] == [1, 2]
    assert amount["rows"][0]["id"] == "tx-0000001"
    assert found[("channel", "isin(['pos', 'online', 'atm'])")]["rows"][0]["value"] == "telepathy"
    assert found[("transaction_id", "field_uniqueness")]["count"] == 2
    opened = [f for f in check.metrics["failures"] if f["check"] == "account_opened_before_event"]
    assert opened and [r["index"] for r in opened[0]["rows"]] == [8]
    # A dataframe-level failure is one entry counting rows, not one per column.
    assert len(opened) == 1 and opened[0]["count"] == 1
    assert (
        opened[0]["message"]
        == "the table fails the check 'account_opened_before_event' in 1 row(s)"
    )
    assert check.metrics["failing_checks"] == len(check.metrics["failures"]) == 4


def test_unknown_schema_name_is_a_clear_error() -> None:
    with pytest.raises(SchemaDeclarationError, match="not a known schema"):
        declare_schema(SchemaParams(name="nope"), DATA, ["a"])


def test_a_yaml_comparison_is_described_by_its_rule(example_frame: pd.DataFrame) -> None:
    frame = example_frame.head(300).copy()
    frame.loc[8, "account_opened_at"] = frame.loc[8, "event_time"] + pd.Timedelta(days=3)
    _, check = _validate(frame, str(EXAMPLE_YAML))
    assert check.summary == (
        "the table breaks 'account_opened_before_event' (account_opened_at <= event_time) "
        "in 1 row(s)"
    )
