"""The YAML layer: round trips keep every check, declaration errors are caught before data."""

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from retrain_guard.schemas.declaration import (
    compile_spec,
    dump_spec,
    load_spec,
    parse_spec,
    spec_from_schema,
)
from retrain_guard.schemas.example import Transactions
from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.schemas.roles import KnownAt, SchemaDeclarationError, SchemaRoles
from retrain_guard.tasks.offsets import format_offset, parse_offset
from retrain_guard.tasks.validation import apply_roles, declare_schema

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_YAML = REPO / "schemas" / "examples" / "transactions.yaml"
FULL = """
name: everything
description: every key the layer has
extra_columns: ignore
redact_values: true
roles:
  label: y
  label_time: t
  id: key
  known_at: {n: -1d, s: "+0d", d: d, f: -36h}
columns:
  key: {dtype: str, unique: true, str_matches: "^k-"}
  t: {dtype: datetime, time_zone: UTC, normalise_time_zones: true}
  d: {dtype: datetime, nullable: true}
  n: {dtype: int64, ge: 0, lt: 100, coerce: true}
  f: {dtype: float64, gt: -1.5, le: 2.5, nullable: true, description: a float}
  s: {dtype: str, isin: [a, b], notin: [c]}
  y: {dtype: int64, isin: [0, 1]}
  maybe: {dtype: bool, required: false}
checks:
  - {left: d, op: "<=", right: t}
  - {left: d, op: ">", right: t, offset: -30d, name: recent}
"""


def _check_names(schema: pa.DataFrameSchema) -> dict[str, list[tuple[str, str]]]:
    out = {
        str(n): sorted((str(c.name), str(c.statistics)) for c in col.checks)
        for n, col in schema.columns.items()
    }
    out["<frame>"] = sorted((str(c.name), str(c.statistics)) for c in schema.checks)
    return out


@pytest.mark.parametrize("text", [FULL, EXAMPLE_YAML.read_text()], ids=["full", "example"])
def test_yaml_to_schema_to_yaml_keeps_every_check(text: str) -> None:
    spec = parse_spec(text)
    schema = compile_spec(spec)
    back = spec_from_schema(schema)
    assert back == spec
    assert parse_spec(dump_spec(back)) == spec
    again = compile_spec(parse_spec(dump_spec(back)))
    assert _check_names(again) == _check_names(schema)
    assert again.strict == schema.strict
    for name, column in schema.columns.items():
        twin = again.columns[name]
        assert (str(twin.dtype), twin.nullable, twin.unique, twin.coerce, twin.required) == (
            str(column.dtype),
            column.nullable,
            column.unique,
            column.coerce,
            column.required,
        )


def test_full_spec_counts_its_checks() -> None:
    schema = compile_spec(parse_spec(FULL))
    names = _check_names(schema)
    assert [n for n, _ in names["n"]] == ["greater_than_or_equal_to", "less_than"]
    assert [n for n, _ in names["s"]] == ["isin", "notin"]
    assert [n for n, _ in names["<frame>"]] == ["d <= t", "recent"]
    assert any(n == "single_time_zone" for n, _ in names["d"])


def test_yaml_and_code_schema_of_the_example_agree(example_frame: pd.DataFrame) -> None:
    from_yaml = spec_from_schema(compile_spec(load_spec(EXAMPLE_YAML)))
    code = Transactions.to_schema()
    for name, column in code.columns.items():
        ours = from_yaml.columns[str(name)]
        assert ours.nullable == column.nullable and ours.unique == column.unique
        stats = sorted(str(c.statistics) for c in column.checks)
        yaml_stats = sorted(
            str(c.statistics) for c in compile_spec(load_spec(EXAMPLE_YAML)).columns[name].checks
        )
        assert set(stats) <= set(yaml_stats)


def test_pandera_to_yaml_drops_the_dataframe_check_ours_keeps() -> None:
    # Why the layer exists: pandera's own YAML loses the comparison (a Python function).
    schema = compile_spec(load_spec(EXAMPLE_YAML))
    with pytest.warns(UserWarning, match="skipped"):
        theirs = pa.DataFrameSchema.from_yaml(schema.to_yaml())
    assert not theirs.checks
    assert [c.name for c in compile_spec(parse_spec(dump_spec(spec_from_schema(schema)))).checks]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"known_at": "amount: +30d"}, "after the label time"),
        ({"known_at": "amount: later"}, "not in the schema"),
        ({"known_at": "is_fraud: 0d"}, "role column"),
        ({"label": "label: nope"}, "'nope' is not a column"),
        ({"check": "right: nowhere"}, "'nowhere' is not a column"),
        ({"dtype": "dtype: quaternion"}, "is not a dtype"),
        ({"key": "colour: blue"}, "Extra inputs are not permitted"),
    ],
)
def test_declaration_errors_are_caught_before_data(patch: dict[str, str], message: str) -> None:
    text = EXAMPLE_YAML.read_text()
    kind, value = next(iter(patch.items()))
    if kind == "known_at":
        text = text.replace("    amount: 0d\n", f"    {value}\n")
    elif kind == "label":
        text = text.replace("  label: is_fraud\n", f"  {value}\n")
    elif kind == "check":
        text = text.replace("right: event_time", value)
    elif kind == "dtype":
        text = text.replace("    dtype: float64\n    ge: 0\n", f"    {value}\n    ge: 0\n", 1)
    else:
        text += f"{value}\n"
    with pytest.raises(SchemaDeclarationError, match=message) as caught:
        parse_spec(text, "bad.yaml")
    assert str(caught.value).startswith("bad.yaml: ")


def test_positive_offset_in_a_code_schema_is_a_declaration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from retrain_guard.schemas import SCHEMAS

    class Late(Transactions):
        class Config:
            name = "late"
            metadata = {"roles": {"label_time": "event_time", "known_at": {"amount": "+1d"}}}  # noqa: RUF012

    monkeypatch.setitem(SCHEMAS, "late", Late)
    data = DataParams(path="x", label="is_fraud")
    with pytest.raises(SchemaDeclarationError, match=r"\+1d, after the label time"):
        declare_schema(SchemaParams(name="late"), data, [])


def test_roles_are_typed_and_convert_to_leakage_declarations() -> None:
    declared = declare_schema(SchemaParams(name="example"), DataParams(path="x", label="a"), [])
    roles = declared.roles
    assert (roles.label, roles.label_time, roles.id) == ("is_fraud", "event_time", "transaction_id")
    assert roles.known_at["account_opened_at"] == KnownAt(column="account_opened_at")
    declarations = roles.declarations()
    assert declarations["amount"] == pd.Timedelta(0)
    assert declarations["account_opened_at"] == "account_opened_at"
    full = parse_spec(FULL).parsed_roles()
    assert full.declarations()["f"] == pd.Timedelta(hours=-36)
    assert full.declarations()["n"] == pd.Timedelta(days=-1)


@pytest.mark.parametrize(
    ("text", "delta"),
    [("-1d", pd.Timedelta(days=-1)), ("+30d", pd.Timedelta(days=30)), ("-90min", pd.Timedelta(
        minutes=-90)), ("0d", pd.Timedelta(0)), ("-2w", pd.Timedelta(weeks=-2))],
)  # fmt: skip
def test_offsets_parse_and_format_back(text: str, delta: pd.Timedelta) -> None:
    assert parse_offset(text) == delta
    assert parse_offset(format_offset(delta)) == delta
    assert parse_offset("yesterday") is None


def test_schema_roles_fill_empty_data_roles_and_conflicts_are_errors() -> None:
    roles = SchemaRoles(label="y", label_time="t", id="key")
    filled = apply_roles(DataParams(path="x", label="y"), roles)
    assert (filled.label_time, filled.id_column) == ("t", "key")
    with pytest.raises(SchemaDeclarationError, match=r"--label-time\) is 'when'"):
        apply_roles(DataParams(path="x", label="y", label_time="when"), roles)


def test_flow_step_turns_a_declaration_error_into_schema_invalid(tmp_path: Path) -> None:
    from retrain_guard.tasks.validation import declare_schema_task

    schema = tmp_path / "late.yaml"
    schema.write_text(EXAMPLE_YAML.read_text().replace("    amount: 0d\n", "    amount: +30d\n"))
    data = DataParams(path="x", label="is_fraud")
    outcome = declare_schema_task.fn(data, SchemaParams(name=str(schema)), ["is_fraud"])
    assert not isinstance(outcome, tuple)
    assert outcome.code == "schema_invalid" and outcome.status == "fail"
    assert outcome.metrics["checked"] == "declaration"
    assert "known at label time +30d" in outcome.summary


def test_flow_step_fills_roles_and_checks_the_header() -> None:
    from retrain_guard.tasks.validation import declare_schema_task

    header = list(Transactions.to_schema().columns)
    outcome = declare_schema_task.fn(
        DataParams(path="x", label="is_fraud"), SchemaParams(name="example"), header
    )
    assert isinstance(outcome, tuple)
    data, declared = outcome
    assert (data.label_time, data.id_column) == ("event_time", "transaction_id")
    assert declared.roles.known_at["amount"] == KnownAt(offset=pd.Timedelta(0))
    missing = declare_schema_task.fn(
        DataParams(path="x", label="is_fraud"), SchemaParams(name="example"), header[1:]
    )
    assert not isinstance(missing, tuple) and missing.columns == ["transaction_id"]


def test_a_schema_file_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    from retrain_guard.schemas.params import DataParams, SchemaParams
    from retrain_guard.tasks.validation import declare_schema

    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ncolumns:\n  b: [1, 2\n")
    with pytest.raises(ValueError) as caught:
        declare_schema(SchemaParams(name=str(path)), DataParams(path="t.csv", label="y"), ["b"])
    message = str(caught.value)
    assert "not valid YAML at line" in message and "\n" not in message


@pytest.mark.parametrize("normalise", [False, True])
def test_a_coerced_zoned_column_keeps_the_true_instants_of_offset_text(normalise: bool) -> None:
    # tasks/dates.py reads text to naive UTC: a zoned column must not take that path, or
    # the zone check fails (not normalised) or the instants shift by the offset (normalised).
    spec = parse_spec(
        "name: zoned\ncolumns:\n  t: {dtype: datetime, coerce: true, time_zone: Europe/Paris,"
        f" normalise_time_zones: {str(normalise).lower()}}}\n"
    )
    text = ["2024-01-01T10:00:00+01:00", "2024-07-01T10:00:00+02:00"]
    validated = compile_spec(spec).validate(pd.DataFrame({"t": text}))
    instants = pd.to_datetime(text, utc=True)
    assert list(validated["t"].dt.tz_convert("UTC")) == list(instants)
    assert str(validated["t"].dt.tz) == "Europe/Paris"
