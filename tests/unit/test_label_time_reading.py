"""The baseline schema reads the label time with tasks/dates.py: never a guessed order."""

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from retrain_guard.schemas.date_checks import DATES_CHECK, with_time_zone_checks
from retrain_guard.schemas.declaration import compile_spec, parse_spec, spec_from_schema
from retrain_guard.schemas.params import DataParams, SchemaParams, SplitParams
from retrain_guard.tasks.label_time import read_label_time
from retrain_guard.tasks.split import UNTIMED, judge_split, make_split
from retrain_guard.tasks.validation import (
    LABEL_TIME_CHECK,
    SchemaOutcome,
    declare_schema,
    validate_frame,
    validate_schema,
)

DATA = DataParams(path="x", label="y", label_time="t")
SCHEMA = SchemaParams()


def _outcome(frame: pd.DataFrame, data: DataParams = DATA) -> SchemaOutcome:
    declared = declare_schema(SCHEMA, data, list(frame.columns))
    return validate_schema(frame, declared, data, SCHEMA)


def _validate(frame: pd.DataFrame, data: DataParams = DATA):  # type: ignore[no-untyped-def]
    outcome = _outcome(frame, data)
    return outcome.frame, outcome.check


def _frame(times: list[object], labels: list[object] | None = None) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame(
        {"x": np.arange(n, dtype="float64"), "y": labels or [i % 2 for i in range(n)], "t": times}
    )


def test_a_day_first_label_time_settled_by_one_value_is_read_day_first() -> None:
    frame, check = _validate(_frame(["03/01/2024", "13/01/2024", "04/02/2024"]))
    assert check.status == "pass" and frame is not None
    assert frame["t"].tolist() == [
        pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-13"), pd.Timestamp("2024-02-04")
    ]  # fmt: skip


def test_a_month_first_label_time_settled_by_one_value_is_read_month_first() -> None:
    frame, check = _validate(_frame(["03/01/2024", "01/13/2024", "04/02/2024"]))
    assert check.status == "pass" and frame is not None
    assert frame["t"].tolist() == [
        pd.Timestamp("2024-03-01"), pd.Timestamp("2024-01-13"), pd.Timestamp("2024-04-02")
    ]  # fmt: skip


def test_an_unsettled_day_month_label_time_fails_naming_it_and_asking_for_iso() -> None:
    outcome = _outcome(_frame(["03/01/2024", "04/02/2024", "05/03/2024", "06/04/2024"]))
    frame, check = outcome.frame, outcome.check
    assert frame is None and check.status == "fail"
    assert check.columns == ["t"]
    assert "label time 't'" in check.summary and "ISO 8601" in check.summary
    assert "got False" not in check.summary
    (failure,) = outcome.failures
    assert failure.check == LABEL_TIME_CHECK and failure.column == "t"
    assert outcome.unusable == ["t"]
    assert check.metrics["failures"] == [failure.as_json()]


@pytest.mark.parametrize(
    ("times", "first"),
    [
        ([1_704_067_200, 1_704_153_600], pd.Timestamp("2024-01-01")),  # epoch seconds
        ([2019, 2020], pd.Timestamp("2019-01-01")),  # years
        ([20240105, 20240106], pd.Timestamp("2024-01-05")),  # yyyymmdd
    ],
)
def test_integer_label_times_are_read_as_what_they_are_not_as_nanoseconds(
    times: list[object], first: pd.Timestamp
) -> None:
    frame, check = _validate(_frame(times))
    assert check.status == "pass" and frame is not None
    assert frame["t"].iloc[0] == first


def test_small_integers_as_label_time_fail_in_words() -> None:
    frame, check = _validate(_frame([1, 2, 3, 4]))
    assert frame is None and check.status == "fail"
    assert "label time 't' holds numbers (1 to 4)" in check.summary
    assert "ISO 8601" in check.summary


def test_iso_label_time_with_a_bad_value_names_its_row() -> None:
    frame, check = _validate(_frame(["2024-01-01", "2024-01-02", "soon", "2024-01-04"]))
    assert frame is None
    (failure,) = check.metrics["failures"]
    assert failure["count"] == 1 and failure["rows"] == [{"index": 2, "value": "soon"}]
    assert "'soon'" in str(failure["message"])


def test_the_baseline_allows_rows_without_a_label_or_a_label_time() -> None:
    times: list[object] = ["2024-01-01", None, "2024-01-03", "2024-01-04"]
    frame, check = _validate(_frame(times, [0, None, 1, 0]))
    assert check.status == "pass" and frame is not None
    assert frame["t"].isna().sum() == 1


def test_a_user_schema_that_forbids_missing_labels_still_fails(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ncolumns:\n  x: {dtype: float64}\n  y: {dtype: float64}\n"
        "  t: {dtype: str, nullable: true}\n"
    )
    frame = _frame(["a", "b", "c"], [0, None, 1])
    params = SchemaParams(name=str(path))
    declared = declare_schema(params, DATA, list(frame.columns))
    _, check = validate_frame(frame, declared, DATA, params)
    assert check.status == "fail" and check.columns == ["y"]


def test_read_label_time_of_an_empty_column_gives_missing_dates() -> None:
    read = read_label_time("t", pd.Series([np.nan, np.nan]))
    assert read.problem is None and read.values is not None
    assert read.values.isna().all() and str(read.values.dtype).startswith("datetime64")


def test_a_time_split_without_any_label_time_is_a_failing_check_not_an_error() -> None:
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "t": pd.Series([pd.NaT] * 4)})
    split = make_split(frame, DATA, SplitParams(strategy="time"))
    (check,) = judge_split(split, frame["y"], 1, DATA)
    assert check.code == UNTIMED and check.status == "fail"
    assert check.columns == ["t"]
    assert "missing in all 4 row(s)" in check.summary and "--label-time" in check.summary


# --- A YAML schema's coerced datetime column: the same rules, no guessing ------------------

YAML = (
    "name: s\ncolumns:\n  x: {dtype: float64}\n  y: {dtype: int64}\n"
    "  t: {dtype: datetime, coerce: true}\n"
)


def _yaml_outcome(frame: pd.DataFrame, tmp_path: Path) -> SchemaOutcome:
    path = tmp_path / "s.yaml"
    path.write_text(YAML)
    params = SchemaParams(name=str(path))
    declared = declare_schema(params, DATA, list(frame.columns))
    return validate_schema(frame, declared, DATA, params)


def _validate_yaml(frame: pd.DataFrame, tmp_path: Path):  # type: ignore[no-untyped-def]
    outcome = _yaml_outcome(frame, tmp_path)
    return outcome.frame, outcome.check


def test_a_coerced_yaml_datetime_reads_day_first_when_a_value_settles_it(tmp_path: Path) -> None:
    frame, check = _validate_yaml(_frame(["03/01/2024", "13/01/2024"]), tmp_path)
    assert check.status == "pass" and frame is not None
    assert frame["t"].tolist() == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-13")]


def test_a_coerced_yaml_datetime_reads_epoch_seconds_not_nanoseconds(tmp_path: Path) -> None:
    frame, check = _validate_yaml(_frame([1_704_067_200, 1_704_153_600]), tmp_path)
    assert check.status == "pass" and frame is not None
    assert frame["t"].iloc[0] == pd.Timestamp("2024-01-01")


def test_a_coerced_yaml_datetime_with_an_open_order_fails_in_words(tmp_path: Path) -> None:
    outcome = _yaml_outcome(_frame(["03/01/2024", "04/02/2024"]), tmp_path)
    frame, check = outcome.frame, outcome.check
    assert frame is None and check.status == "fail"
    assert check.summary.startswith("column 't' holds day/month/year text")
    assert "ISO 8601" in check.summary
    assert outcome.unusable == ["t"]


def test_a_coerced_yaml_datetime_still_round_trips(tmp_path: Path) -> None:
    spec = parse_spec(YAML)
    assert spec_from_schema(compile_spec(spec)) == spec
    assert spec.columns["t"].coerce is True


def test_a_label_time_mixing_values_with_and_without_a_zone_fails_in_words() -> None:
    times = ["2024-01-01T00:00:00+01:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00+01:00"]
    frame, check = _validate(_frame(list(times)))
    assert frame is None and check.columns == ["t"]
    assert "mixes values with and without a time zone" in check.summary


class _CoercedTime(pa.DataFrameModel):
    t: Series[pd.Timestamp] = pa.Field(coerce=True)


def test_a_coerced_datetime_in_a_schema_written_in_code_is_not_guessed_either() -> None:
    schema = with_time_zone_checks(_CoercedTime.to_schema())
    settled = schema.validate(pd.DataFrame({"t": ["03/01/2024", "13/01/2024"]}))
    assert settled["t"].iloc[0] == pd.Timestamp("2024-01-03")
    with pytest.raises(pa.errors.SchemaErrors) as raised:
        schema.validate(pd.DataFrame({"t": ["03/01/2024", "04/01/2024"]}), lazy=True)
    assert DATES_CHECK in set(raised.value.failure_cases["check"])


def test_a_bad_label_time_value_is_redacted_when_asked() -> None:
    frame = _frame(["2024-01-01", "2024-01-02", "secret-ish", "2024-01-04"])
    params = SchemaParams(redact_values=True)
    declared = declare_schema(params, DATA, list(frame.columns))
    _, check = validate_frame(frame, declared, DATA, params)
    failures = check.metrics["failures"]
    assert isinstance(failures, list)
    (failure,) = failures
    assert isinstance(failure, dict)
    assert "secret-ish" not in str(failure)
    assert str(failure["rows"][0]["value"]).startswith("<str sha256:")
