"""Value quirks: non-finite numbers and unusable columns, and every stage that meets them."""

import datetime as dt
import decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain_guard.flows.example_data import make_transactions
from retrain_guard.schemas.params import (
    DataParams,
    LeakageParams,
    ModelParams,
    ResampleParams,
    SchemaParams,
    SplitParams,
)
from retrain_guard.tasks import stored_table
from retrain_guard.tasks.features import (
    judge_constant_features,
    measure_constant_features,
    prepared_training_part,
)
from retrain_guard.tasks.leakage.auc import numeric_view
from retrain_guard.tasks.leakage.detect import detect_leakage
from retrain_guard.tasks.leakage.resampling import measure_resampling
from retrain_guard.tasks.leakage.rows import row_hashes
from retrain_guard.tasks.leakage.split_sharing import check_split_leakage
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.quirks import (
    HUGE,
    NON_FINITE,
    UNUSABLE,
    check_quirks,
    clean_non_finite,
    column_kind,
    judge_non_finite,
    measure_non_finite,
    unusable_roles,
)
from retrain_guard.tasks.split import make_split
from retrain_guard.tasks.stray_text import (
    MAX_STRAYS,
    NON_NUMERIC,
    judge_non_numeric,
    measure_non_numeric,
    numbers_in_text,
    numbers_of_other_kinds,
)
from retrain_guard.tasks.training import fit_model, positive_scores, split_feature_kinds
from retrain_guard.tasks.validation import declare_schema, measure_empty_columns, validate_frame
from tests.unit.test_stored_table import _stored

DATA = DataParams(
    path="t.csv", label="is_fraud", label_time="event_time", id_column="transaction_id"
)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_transactions(rows=2000, positive_rate=0.05, seed=3)


def _with(frame: pd.DataFrame, column: str, rows: list[int], values: list[float]) -> pd.DataFrame:
    changed = frame.copy()
    changed.loc[rows, column] = values
    return changed


def _objects(values: list[object]) -> pd.Series:
    return pd.Series(values, dtype=object)


# --- measuring and judging -----------------------------------------------------------------


def test_non_finite_counts_each_kind_and_names_rows_by_position_and_id() -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "x": [1.0, np.inf, -np.inf, 1e308, np.nan],
            "y": [1.0, 2.0, 3.0, 4.0, 5.0],
            "n": [1, 2, 3, 4, 5],
        }
    )
    (measured,) = measure_non_finite(frame, ["x", "y", "n"], "id")
    assert (measured.column, measured.count) == ("x", 3)
    assert (measured.positive_infinity, measured.negative_infinity, measured.huge) == (1, 1, 1)
    assert [e.position for e in measured.examples] == [1, 2, 3]
    assert [e.id for e in measured.examples] == ["b", "c", "d"]
    assert [e.value for e in measured.examples] == ["+inf", "-inf", 1e308]


def test_bound_is_inclusive_of_huge_but_not_of_large_honest_values() -> None:
    frame = pd.DataFrame({"x": [HUGE, -HUGE, 1e99, 1e101]})
    (measured,) = measure_non_finite(frame, ["x"])
    assert measured.huge == 1 and measured.examples[0].position == 3


def test_judge_warns_with_counts_and_rows_and_passes_when_clean() -> None:
    frame = pd.DataFrame({"amount": [1.0, np.inf, 2.0]})
    check = judge_non_finite(measure_non_finite(frame, ["amount"]))
    assert (check.code, check.status, check.columns) == (NON_FINITE, "warn", ["amount"])
    assert "amount: 1 value(s) (1 +inf; rows 1)" in check.summary
    assert "treated as missing" in check.summary
    clean = judge_non_finite(measure_non_finite(frame.iloc[[0, 2]], ["amount"]))
    assert clean.status == "pass"


def test_cleaning_turns_only_the_flagged_values_missing() -> None:
    frame = pd.DataFrame({"x": [1.0, np.inf, -1e200, np.nan], "t": ["a", "b", "c", "d"]})
    cleaned = clean_non_finite(frame, measure_non_finite(frame, ["x", "t"]))
    assert cleaned["x"].isna().tolist() == [False, True, True, True]
    assert cleaned["x"].iloc[0] == 1.0 and cleaned["t"].tolist() == ["a", "b", "c", "d"]
    assert np.isinf(frame["x"].iloc[1]), "the caller's frame is not changed"


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([[1, 2], [3], None], "list"),
        ([np.array([1, 2]), np.array([3])], "list"),
        ([{"a": 1}, {"a": 2}], "struct"),
        ([[("k", 1)], [("j", 2)]], "map"),
        ([b"\x82", b"x", None], "binary"),
        ([1, "x", {"k": 1}], "mixed (number, struct, text)"),
        ([1, "x", None], "mixed (number, text)"),
        ([True, "yes"], "mixed (boolean, text)"),
    ],
)
def test_unusable_kinds_are_named(values: list[object], kind: str) -> None:
    assert column_kind(pd.Series(values, dtype=object)) == kind


@pytest.mark.parametrize(
    "values",
    [
        ["a", None, np.nan],
        [1, 2.5, None],
        [True, False, None],
        [dt.date(2024, 1, 1), None],
        [decimal.Decimal("1.5"), 2],
        [None, None],
    ],
)
def test_scalar_object_columns_are_usable(values: list[object]) -> None:
    assert column_kind(pd.Series(values, dtype=object)) is None


def test_typed_columns_are_usable() -> None:
    assert column_kind(pd.Series([1.0, np.inf])) is None
    assert column_kind(pd.Series(["a", "b"], dtype="string")) is None
    assert column_kind(pd.Series([1 + 2j])) == "complex"


# --- the step ------------------------------------------------------------------------------


def test_unusable_feature_leaves_the_frame_with_a_warning(table: pd.DataFrame) -> None:
    frame = table.assign(tags=_objects([[i % 3] for i in range(len(table))]))
    frame.loc[5, "amount"] = np.inf
    cleaned, (non_finite, unusable, _) = check_quirks(frame, DATA)
    assert "tags" not in cleaned.columns and "tags" in frame.columns
    assert (unusable.code, unusable.status, unusable.columns) == (UNUSABLE, "warn", ["tags"])
    assert "tags (list)" in unusable.summary
    assert non_finite.status == "warn" and np.isnan(cleaned["amount"].iloc[5])


def test_dropped_columns_are_not_checked(table: pd.DataFrame) -> None:
    frame = table.assign(tags=_objects([[i % 3] for i in range(len(table))]), raw=np.inf)
    data = DATA.model_copy(update={"drop": ["tags", "raw"]})
    cleaned, checks = check_quirks(frame, data)
    assert [c.status for c in checks] == ["pass", "pass", "pass"]
    assert "tags" in cleaned.columns and np.isinf(cleaned["raw"]).all()


@pytest.mark.parametrize(
    ("role", "flag"),
    [("is_fraud", "--label"), ("event_time", "--label-time"), ("transaction_id", "--id")],
)
def test_unusable_label_or_label_time_fails_naming_it(
    table: pd.DataFrame, role: str, flag: str
) -> None:
    frame = table.assign(**{role: _objects([[v] for v in table[role]])})
    same, checks = check_quirks(frame, DATA)
    unusable = next(c for c in checks if c.code == UNUSABLE)
    assert unusable.status == "fail" and unusable.columns == [role]
    assert f"{role!r} ({flag}) holds list values" in unusable.summary
    assert next(c for c in checks if c.code == NON_FINITE).status == "not_run"
    assert same is frame


def test_no_usable_feature_left_fails() -> None:
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "blob": [b"a", b"b", b"c", b"d"]})
    _, checks = check_quirks(frame, DataParams(path="t.csv", label="y"))
    unusable = next(c for c in checks if c.code == UNUSABLE)
    assert unusable.status == "fail" and "no usable feature is left" in unusable.summary


# --- the crashes of issue 9, point 4 (each raised before) ------------------------------------


def test_leakage_detection_treats_infinity_as_missing(table: pd.DataFrame) -> None:
    # "Input X contains infinity" came from the resampling trace's neighbour search.
    frame = _with(table, "amount", [3, 10, 50], [np.inf, -np.inf, np.inf])
    positive = frame["is_fraud"].to_numpy() == 1
    outcome = detect_leakage(frame, DATA, LeakageParams(), 1)
    assert {c.code: c.status for c in outcome.checks}["resampling_leakage"] == "pass"
    traces = measure_resampling(frame, DATA.feature_columns(frame.columns), positive)
    assert any(t.kind == "segments" and "amount" in t.columns for t in traces)
    assert np.isnan(numeric_view(frame["amount"])[[3, 10, 50]]).all()


def test_training_on_huge_values_imputes_them(table: pd.DataFrame) -> None:
    # Two 1e308 overflowed the scaler's sums to NaN and LogisticRegression refused them.
    frame = _with(table, "amount", [3, 10], [1e308, 1e308])
    features = DATA.feature_columns(frame.columns)
    y = frame["is_fraud"].to_numpy()
    trained = fit_model(frame[features], y, ModelParams(), ResampleParams())
    new_rows = _with(frame.iloc[:20].reset_index(drop=True), "amount", [0, 1], [np.inf, -1e300])
    scores = positive_scores(trained.model, new_rows[features])
    assert np.isfinite(scores).all()
    unchanged = positive_scores(trained.model, frame.iloc[2:4][features])
    assert np.isfinite(unchanged).all()


def test_leakage_and_split_skip_a_list_column(table: pd.DataFrame) -> None:
    frame = table.assign(tags=_objects([np.array([i % 3, i % 7]) for i in range(len(table))]))
    outcome = detect_leakage(frame, DATA, LeakageParams(), 1)
    measured = next(c for c in outcome.checks if c.code == "target_leakage").metrics
    assert measured["columns_checked"] == len(DATA.feature_columns(table.columns))
    split = make_split(frame, DATA, SplitParams())
    assert check_split_leakage(frame, split, DATA, LeakageParams()).status == "pass"


def test_row_hashes_take_unhashable_values() -> None:
    frame = pd.DataFrame({"l": [[1], [1], [2]], "d": [{"a": 1}, {"a": 1}, {"a": 1}]})
    hashes = row_hashes(frame)
    assert hashes[0] == hashes[1] != hashes[2]


def test_parquet_with_list_struct_and_binary_columns_loads(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table(
            {
                "y": [0, 1, 0],
                "tags": pa.array([[1, 2], [3], []], type=pa.list_(pa.int64())),
                "rec": pa.array([{"a": 1}, {"a": 2}, {"a": 3}]),
                "blob": pa.array([b"\x82", b"x", b"\xff"], type=pa.binary()),
            }
        ),
        path,
    )
    frame = read_table(path)
    kinds = {c: column_kind(frame[c]) for c in ("tags", "rec", "blob")}
    assert kinds == {"tags": "list", "rec": "struct", "blob": "binary"}


def test_user_schema_that_forbids_infinity_still_fails(tmp_path: Path) -> None:
    schema = tmp_path / "s.yaml"
    schema.write_text("name: s\ncolumns:\n  x: {dtype: float64, le: 1000}\n  y: {dtype: int64}\n")
    params = SchemaParams(name=str(schema))
    data = DataParams(path="t.csv", label="y")
    frame = pd.DataFrame({"x": [1.0, np.inf, 2.0], "y": [0, 1, 0]})
    declared = declare_schema(params, data, ["x", "y"])
    validated, check = validate_frame(frame, declared, data, params)
    assert validated is None and check.status == "fail" and check.columns == ["x"]


def test_a_feature_of_only_infinities_counts_as_empty(table: pd.DataFrame) -> None:
    frame = table.assign(broken=np.inf)
    features = [*DATA.feature_columns(table.columns), "broken"]
    y = frame["is_fraud"].to_numpy()
    trained = fit_model(frame[features], y, ModelParams(), ResampleParams())
    prepared = prepared_training_part(trained, frame[features])
    constant = judge_constant_features(measure_constant_features(prepared, frame[features]))
    assert constant.status == "warn" and "empty (all values missing): broken" in constant.summary


def test_repeated_column_names_are_left_to_the_schema() -> None:
    frame = pd.DataFrame([[0, np.inf, [1], 2.0], [1, 1.0, [2], np.inf]])
    frame.columns = pd.Index(["y", "a", "a", "b"])
    cleaned, (non_finite, unusable, _) = check_quirks(frame, DataParams(path="t.csv", label="y"))
    assert unusable.status == "pass" and non_finite.columns == ["b"]
    assert list(cleaned.columns) == ["y", "a", "a", "b"] and np.isnan(cleaned["b"].iloc[1])


# --- stray text in numeric columns, decimals and durations ---------------------------------


def _numbers_as_text(count: int, strays: dict[int, str]) -> pd.Series:
    values: list[object] = [f"{v:.3f}" for v in np.linspace(-5, 5, count)]
    for row, text in strays.items():
        values[row] = text
    return pd.Series(values, dtype=object)


def test_a_stray_text_value_in_a_numeric_column_is_missing_and_named() -> None:
    frame = pd.DataFrame(
        {"key": np.arange(1000) + 100, "x1": _numbers_as_text(1000, {9: "oops", 40: "n/a"})}
    )
    measured, converted = measure_non_numeric(frame, ["x1"], "key")
    assert [(m.column, m.count, m.present) for m in measured] == [("x1", 2, 1000)]
    assert [e.as_json() for e in measured[0].examples] == [
        {"position": 9, "value": "oops", "id": 109},
        {"position": 40, "value": "n/a", "id": 140},
    ]
    numbers = converted["x1"]
    assert numbers.dtype == "float64"
    assert numbers.isna().sum() == 2 and np.isnan(numbers[9]) and np.isnan(numbers[40])
    assert numbers[0] == -5.0
    check = judge_non_numeric(measured)
    assert (check.code, check.status, check.columns) == (NON_NUMERIC, "warn", ["x1"])
    assert "row 9 (id 109): 'oops'" in check.summary and "2 of 1000" in check.summary


@pytest.mark.parametrize(
    ("count", "strays"),
    [
        (1000, {}),  # numbers only, kept as the file typed them
        (50, {3: "oops"}),  # 1 in 50 is more than 1%
        (10_000, {r: "oops" for r in range(MAX_STRAYS + 1)}),  # under 1%, but too many
    ],
)
def test_text_columns_outside_the_rule_stay_text(count: int, strays: dict[int, str]) -> None:
    assert numbers_in_text(_numbers_as_text(count, strays)) is None


def test_categories_and_mixed_objects_are_not_read_as_numbers() -> None:
    assert numbers_in_text(pd.Series(["a", "b"] * 500, dtype=object)) is None
    assert numbers_in_text(pd.Series([1.5] * 999 + ["oops"], dtype=object)) is None
    assert numbers_in_text(pd.Series(np.arange(1000.0))) is None


def test_quirk_step_reads_the_feature_as_numbers_but_not_the_roles(table: pd.DataFrame) -> None:
    frame = table.copy()
    frame["amount"] = _numbers_as_text(len(frame), {5: "oops"}).to_numpy()
    frame["transaction_id"] = _numbers_as_text(len(frame), {7: "x"}).to_numpy()
    cleaned, checks = check_quirks(frame, DATA)
    by_code = {c.code: c for c in checks}
    assert by_code[NON_NUMERIC].status == "warn" and by_code[NON_NUMERIC].columns == ["amount"]
    assert cleaned["amount"].dtype == "float64" and np.isnan(cleaned["amount"].iloc[5])
    assert cleaned["transaction_id"].dtype != "float64"
    numeric, categorical, _ = split_feature_kinds(cleaned[["amount"]])
    assert (numeric, categorical) == (["amount"], [])


def test_decimals_and_durations_are_read_as_numbers(tmp_path: Path) -> None:
    rows = 200
    rng = np.random.default_rng(1)
    values = [decimal.Decimal(f"{v:.2f}") for v in rng.normal(100, 10, rows)]
    values[3] = None
    days = rng.integers(0, 100, rows)
    table = pa.table(
        {
            "transaction_id": np.arange(rows),
            "is_fraud": (np.arange(rows) % 10 == 0).astype(int),
            "dec": pa.array(values, type=pa.decimal128(10, 2)),
            "dur": pa.array(pd.to_timedelta(days, unit="D")),
        }
    )
    pq.write_table(table, tmp_path / "exotic.parquet")
    frame = read_table(tmp_path / "exotic.parquet")
    data = DataParams(path="t.parquet", label="is_fraud", id_column="transaction_id")
    cleaned, checks = check_quirks(frame, data)
    assert cleaned["dec"].dtype == "float64" and cleaned["dur"].dtype == "float64"
    assert np.isnan(cleaned["dec"].iloc[3])
    assert cleaned["dec"].iloc[0] == float(values[0])
    assert list(cleaned["dur"]) == [float(d) for d in days]
    check = {c.code: c for c in checks}[NON_NUMERIC]
    assert check.status == "pass"
    assert check.metrics["read_as_numbers"] == [
        {"column": "dec", "from": "decimal", "as": "float64"},
        {"column": "dur", "from": "duration", "as": "days"},
    ]
    assert "dec (decimal as float64)" in check.summary
    numeric, categorical, _ = split_feature_kinds(cleaned[["dec", "dur"]])
    assert (numeric, categorical) == (["dec", "dur"], [])
    assert numeric_view(cleaned["dec"]) is not None and numeric_view(cleaned["dur"]) is not None


def test_unusable_role_columns_are_found_and_left_to_unusable_columns_by_the_schema() -> None:
    rows = 30
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(rows),
            "event_time": _objects([{"at": i} for i in range(rows)]),
            "is_fraud": _objects([[i % 2] for i in range(rows)]),
            "tags": _objects([[i] for i in range(rows)]),
            "amount": np.arange(rows, dtype=float),
        }
    )
    roles = unusable_roles(frame, DATA)
    assert roles == ["is_fraud", "event_time"]  # a list feature is no role
    declared = declare_schema(SchemaParams(), DATA, list(frame.columns))
    _, misled = validate_frame(frame, declared, DATA, SchemaParams())
    assert misled.status == "fail"
    validated, check = validate_frame(frame, declared, DATA, SchemaParams(), roles)
    assert check.status == "pass", check.summary
    assert validated is not None and list(validated.columns) == list(frame.columns)


def test_quirks_of_a_stored_table_read_only_what_they_must_and_find_late_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a table stored in partitions, the first values settle a text column (ids,
    categories) and chunks settle a float column without infinities and a column holding
    a value; what appears only in the last partition (a number column's strays, an
    infinity, decimals after missing values, the only value) is found as in memory. A
    whole column is read only for the columns that have the quirk."""
    rows = 1200
    numbers = [str(n) for n in range(rows)]
    numbers[1150] = "n/a"
    late = np.full(rows, np.nan)
    late[1199] = 4.0
    decimals = [None] * 1100 + [decimal.Decimal("1.5")] * 100
    frame = pd.DataFrame(
        {
            "ids": [f"tx-{n}" for n in range(rows)],
            "codes": pd.Series([None] * 400 + numbers[400:], dtype=object),
            "amount": np.where(np.arange(rows) == 1190, np.inf, 1.0),
            "clean": np.ones(rows),
            "late": late,
            "never": np.full(rows, np.nan),
            "price": pd.Series(decimals, dtype=object),
        }
    )
    table = _stored(frame, 4, tmp_path)
    monkeypatch.setattr(stored_table, "CHUNK_ROWS", 100)
    read_whole: list[str] = []
    column = stored_table.StoredTable._column

    def counted(self: stored_table.StoredTable, name: str) -> pd.Series:
        read_whole.append(name)
        return column(self, name)

    monkeypatch.setattr(stored_table.StoredTable, "_column", counted)
    for form in (frame, table):
        read_whole.clear()
        strays, _ = measure_non_numeric(form, ["ids", "codes"])
        assert [(s.column, s.count) for s in strays] == [("codes", 1)]
        (infinite,) = measure_non_finite(form, ["amount", "clean", "late"])
        assert infinite.column == "amount"
        assert measure_empty_columns(form, ["late", "never"]) == ["never"]
        notes, _ = numbers_of_other_kinds(form, ["ids", "price", "amount"])
        assert [n.column for n in notes] == ["price"]
        if form is table:
            assert sorted(set(read_whole)) == ["amount", "codes", "price"]
