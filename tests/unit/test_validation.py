import pandas as pd
import pytest

from schemas.params import DataParams, SchemaParams
from schemas.roles import SchemaDeclarationError
from tasks.validation import declare_schema, validate_frame

DATA = DataParams(path="x", label="is_fraud", label_time="event_time", id_column="transaction_id")


def _validate(frame: pd.DataFrame, name: str | None = None, cap: int = 100):  # type: ignore[no-untyped-def]
    params = SchemaParams(name=name, max_failure_cases=cap)
    declared = declare_schema(params, DATA, list(frame.columns))
    return validate_frame(frame, declared, DATA, params)


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


def test_entirely_null_column_and_three_classes_fail_together(example_frame: pd.DataFrame) -> None:
    frame = example_frame.head(30).copy()
    frame["empty"] = float("nan")
    frame.loc[3, "is_fraud"] = 1
    frame.loc[4, "is_fraud"] = 2
    _, check = _validate(frame)
    found = _failures(check)
    assert ("empty", "not_entirely_null") in found
    assert ("is_fraud", "at_most_two_classes") in found


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
    assert check.metrics["failing_checks"] == len(check.metrics["failures"]) == 4


def test_unknown_schema_name_is_a_clear_error() -> None:
    with pytest.raises(SchemaDeclarationError, match="not a known schema"):
        declare_schema(SchemaParams(name="nope"), DATA, ["a"])
