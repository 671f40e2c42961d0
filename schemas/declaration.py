"""Schemas declared in YAML: a small documented layer that compiles to pandera.

pandera's own YAML (`DataFrameSchema.to_yaml`) carries dtypes and built-in column checks,
but drops dataframe-level checks (they are Python functions), and has no place for roles,
known-at times, the extra-columns policy or time-zone handling. Writing half a schema in
pandera's format and half beside it would give teams two formats to learn, so the YAML
below is ours: column keys mirror `pandera.Field` arguments (`ge`, `isin`, `str_matches`,
...), each maps onto exactly one pandera built-in check, and `spec_from_schema` reads a
compiled schema back, which is what the round-trip tests hold us to.

Format (every key but `name` and `columns` optional)::

    name: transactions
    description: one card transaction
    extra_columns: fail            # fail | ignore (columns not listed are reported either way)
    redact_values: false           # true: failing values shown as type + hash (PII)
    roles:
      label: is_fraud
      label_time: event_time
      id: transaction_id
      known_at:                    # feature -> column, or offset from the label time
        amount: 0d
        account_opened_at: account_opened_at
        txn_count_24h: -1d
    columns:
      amount: {dtype: float64, ge: 0}
      event_time: {dtype: datetime}
      created_at: {dtype: datetime, time_zone: UTC, normalise_time_zones: true}
    # Column keys: dtype (required), nullable, unique, coerce, required (all true/false,
    # default false except required), description, ge, gt, le, lt, isin, notin,
    # str_matches, and for datetimes time_zone and normalise_time_zones. Strict by default:
    # no coercion, no nulls, and a datetime column mixing zones (or aware and naive values)
    # fails by row unless it sets time_zone and normalise_time_zones (naive values are then
    # taken to be in time_zone). A datetime column with coerce: true is read by
    # tasks/label_time.py, never guessed: ISO 8601, year-first text, dd/mm or mm/dd text only
    # when a day above 12 settles the order, integer years, epoch seconds or ms, yyyymmdd.
    checks:                        # dataframe-level comparisons, row by row
      - {left: account_opened_at, op: "<=", right: event_time}
      - {left: shipped_at, op: "<=", right: event_time, offset: "+1d", name: shipped_in_time}

Offsets are an optional sign, a number and a unit among w, d, h, min, s ("0d", "-1d",
"+30d", "-90min"), read by tasks/offsets.py as in leakage.known_at. A known-at text that reads
as an offset is an offset; a column whose name reads as one cannot be a known-at column.
A known-at offset must not be positive: a feature known only after the label time is a
declaration error, reported before any data row is read. A known-at column names the
column holding the moment the feature became known; the leakage stage compares it with
the label time row by row. Comparisons skip rows where either side is missing (nullable
is the column's rule). `redact_values` hides failing values, not ids: pick an id column
that is not personal data.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa
import yaml
from pandera.engines import pandas_engine
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from retrain_guard.schemas.date_checks import (
    DATES_CHECK,
    IMPLIED_CHECKS,
    dates_parser,
    reads_as_dates,
    time_checks,
    time_zone_parser,
)
from retrain_guard.schemas.params import describe_yaml_error
from retrain_guard.schemas.roles import SchemaDeclarationError, SchemaRoles
from retrain_guard.tasks.offsets import format_offset, parse_offset

Scalar = int | float | str | bool
Operator = Literal["<", "<=", ">", ">=", "==", "!="]
YAML_SUFFIXES = (".yaml", ".yml")

# Friendly names -> the canonical names written back; anything else goes to pandera as is.
_DTYPE_ALIASES = {
    "int": "int64",
    "integer": "int64",
    "float": "float64",
    "double": "float64",
    "boolean_strict": "bool",
    "string": "str",
    "text": "str",
    "timestamp": "datetime",
    "datetime64": "datetime",
    "datetime64[ns]": "datetime",
    "datetime64[us]": "datetime",
}
# Column key -> (pandera check name, its statistic); one built-in check per key.
_BUILTIN = {
    "ge": ("greater_than_or_equal_to", "min_value"),
    "gt": ("greater_than", "min_value"),
    "le": ("less_than_or_equal_to", "max_value"),
    "lt": ("less_than", "max_value"),
    "isin": ("isin", "allowed_values"),
    "notin": ("notin", "forbidden_values"),
    "str_matches": ("str_matches", "pattern"),
}
_KEY_OF_CHECK = {name: (key, stat) for key, (name, stat) in _BUILTIN.items()}
_METADATA_KEY = "retrain_guard"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(_Spec):
    """One column: dtype, nullability, uniqueness, coercion, value checks, time zone."""

    dtype: str = Field(description="int64, float64, bool, str, datetime, category, or a pandas "
                       "dtype name; checked strictly unless coerce is true.")  # fmt: skip
    nullable: bool = False
    unique: bool = False
    coerce: bool = Field(default=False, description="Convert to dtype before checking (opt-in).")
    required: bool = True
    description: str | None = None
    ge: Scalar | None = None
    gt: Scalar | None = None
    le: Scalar | None = None
    lt: Scalar | None = None
    isin: list[Scalar] | None = None
    notin: list[Scalar] | None = None
    str_matches: str | None = None
    time_zone: str | None = Field(
        default=None, description="datetime only: the zone of aware values (e.g. UTC); empty: "
        "values are naive.",
    )  # fmt: skip
    normalise_time_zones: bool = Field(
        default=False,
        description="datetime with time_zone only: convert values in other zones (and naive "
        "values, taken as time_zone) instead of failing on them.",
    )

    @field_validator("dtype")
    @classmethod
    def _canonical_dtype(cls, value: str) -> str:
        name = value.strip()
        return _DTYPE_ALIASES.get(name.lower(), name)


class CompareSpec(_Spec):
    """A row-by-row comparison of two columns: left op right (+ offset)."""

    left: str
    op: Operator
    right: str
    offset: str | None = Field(
        default=None, description="Added to the right side, e.g. '+1d' or '-2h' (datetimes)."
    )
    name: str | None = None

    @field_validator("offset")
    @classmethod
    def _offset_readable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = parse_offset(value)
        if parsed is None:
            raise ValueError(f"{value!r} is not an offset such as '+1d', '-6h' or '-30min'")
        return format_offset(parsed)

    @property
    def label(self) -> str:
        """The check's name in reports."""
        if self.name:
            return self.name
        offset = f" {self.offset}" if self.offset else ""
        return f"{self.left} {self.op} {self.right}{offset}"


class SchemaSpec(_Spec):
    """A whole schema as written in YAML."""

    name: str
    description: str | None = None
    extra_columns: Literal["fail", "ignore"] = "fail"
    redact_values: bool = False
    roles: dict[str, Any] = Field(default_factory=dict)
    columns: dict[str, ColumnSpec]
    checks: list[CompareSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _canonical_roles(cls, raw: Any) -> Any:
        # "-24h" and "-1d" are one declaration: store one spelling so round trips compare.
        if not isinstance(raw, dict) or not isinstance(raw.get("roles"), dict):
            return raw
        columns = raw.get("columns")
        try:
            roles = SchemaRoles.from_mapping(
                raw["roles"], list(columns) if isinstance(columns, dict) else None
            )
        except SchemaDeclarationError:
            return raw
        return {**raw, "roles": roles.to_mapping()}

    def parsed_roles(self) -> SchemaRoles:
        """Return the typed roles (raises SchemaDeclarationError on unreadable ones)."""
        return SchemaRoles.from_mapping(self.roles, self.columns)


def is_yaml_reference(name: str) -> bool:
    """Return whether a schema reference is a YAML file path rather than a registered name."""
    return name.lower().endswith(YAML_SUFFIXES)


def load_spec(path: str | Path) -> SchemaSpec:
    """Read and check a YAML schema file.

    Raises:
        SchemaDeclarationError: missing file, bad YAML, unknown keys or values, bad roles.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaDeclarationError([exc.strerror or str(exc)], source) from exc
    return parse_spec(text, source)


def parse_spec(text: str, source: str = "schema") -> SchemaSpec:
    """Parse YAML text into a checked SchemaSpec (see load_spec)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemaDeclarationError([describe_yaml_error(exc)], source) from exc
    if not isinstance(raw, dict):
        raise SchemaDeclarationError(["expected a mapping with name and columns"], source)
    try:
        spec = SchemaSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise SchemaDeclarationError(problems, source) from exc
    problems = spec_problems(spec)
    if problems:
        raise SchemaDeclarationError(problems, source)
    return spec


def spec_problems(spec: SchemaSpec) -> list[str]:
    """Return what is wrong in a spec beyond its shape: roles, checks, dtypes."""
    try:
        roles = spec.parsed_roles()
    except SchemaDeclarationError as exc:
        return exc.problems
    problems = roles.problems(spec.columns)
    for i, check in enumerate(spec.checks):
        for side in (check.left, check.right):
            if side not in spec.columns:
                problems.append(f"checks[{i}] ({check.label}): {side!r} is not a column")
    for name, column in spec.columns.items():
        try:
            _dtype(column)
        except (TypeError, ValueError) as exc:
            problems.append(f"columns.{name}.dtype: {column.dtype!r} is not a dtype ({exc})")
        is_time = column.dtype == "datetime"
        if not is_time and (column.time_zone or column.normalise_time_zones):
            problems.append(f"columns.{name}: time_zone settings need dtype datetime")
        if column.normalise_time_zones and not column.time_zone:
            problems.append(
                f"columns.{name}: normalise_time_zones needs time_zone (the zone to convert to)"
            )
    return problems


def _dtype(column: ColumnSpec) -> Any:
    if column.dtype == "datetime":
        if column.time_zone:
            return pandas_engine.DateTime(tz=column.time_zone)  # type: ignore[call-arg]
        return "datetime64[ns]"
    return pandas_engine.Engine.dtype(column.dtype)


def _compare(check: CompareSpec) -> pa.Check:
    offset = parse_offset(check.offset) if check.offset else None
    op = check.op

    def compare(frame: pd.DataFrame) -> pd.Series:
        left, right = frame[check.left], frame[check.right]
        if offset is not None:
            right = right + offset
        result = {
            "<": left.lt,
            "<=": left.le,
            ">": left.gt,
            ">=": left.ge,
            "==": left.eq,
            "!=": left.ne,
        }[op](right)
        # Missing values are the nullable rule's business, not this comparison's.
        return result | left.isna() | right.isna()

    statistics: dict[str, Any] = {"left": check.left, "op": op, "right": check.right}
    if check.offset:
        statistics["offset"] = check.offset
    if check.name:
        statistics["name"] = check.name
    return pa.Check(compare, name=check.label, statistics=statistics)


def compile_spec(spec: SchemaSpec) -> pa.DataFrameSchema:
    """Return the pandera schema a spec declares (roles and policies kept in its metadata)."""
    columns: dict[str, pa.Column] = {}
    for name, column in spec.columns.items():
        checks: list[pa.Check] = []
        for key, (check_name, _) in _BUILTIN.items():
            value = getattr(column, key)
            if value is not None:
                checks.append(getattr(pa.Check, check_name)(value))
        parsers: list[pa.Parser] = []
        coerce = column.coerce
        if column.dtype == "datetime":
            checks += time_checks(column.normalise_time_zones)
            if column.coerce and not column.time_zone:
                # Read by tasks/label_time.py, not coerced by pandera (which guesses the order);
                # a zoned column keeps pandera's coercion to its zone (dates.py reads to UTC).
                parsers.append(dates_parser())
                checks.append(pa.Check(reads_as_dates, name=DATES_CHECK))
                coerce = False
            if column.time_zone:
                parsers.append(time_zone_parser(column.time_zone, column.normalise_time_zones))
        columns[name] = pa.Column(
            _dtype(column),
            checks=checks,
            parsers=parsers or None,
            nullable=column.nullable,
            unique=column.unique,
            coerce=coerce,
            required=column.required,
            description=column.description,
            metadata={
                _METADATA_KEY: {
                    "normalise_time_zones": column.normalise_time_zones,
                    "coerce": column.coerce,
                }
            },
        )
    return pa.DataFrameSchema(
        columns,
        checks=[_compare(c) for c in spec.checks],
        name=spec.name,
        description=spec.description,
        strict=spec.extra_columns == "fail",
        metadata={
            _METADATA_KEY: {
                "roles": spec.parsed_roles().to_mapping(),
                "redact_values": spec.redact_values,
            }
        },
    )


def _scalar(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


def _column_spec(column: pa.Column) -> ColumnSpec:
    fields: dict[str, Any] = {
        "nullable": column.nullable,
        "unique": column.unique,
        "coerce": column.coerce,
        "required": column.required,
        "description": column.description,
    }
    dtype = column.dtype
    text = str(dtype)
    if text.startswith("datetime64"):
        fields["dtype"] = "datetime"
        tz = getattr(dtype, "tz", None)
        if tz is not None:
            fields["time_zone"] = str(tz)
        ours = (column.metadata or {}).get(_METADATA_KEY, {})
        fields["normalise_time_zones"] = bool(ours.get("normalise_time_zones", False))
        fields["coerce"] = bool(column.coerce or ours.get("coerce", False))
    elif text.startswith("string") or text == "str":
        fields["dtype"] = "str"
    else:
        fields["dtype"] = text
    for check in column.checks:
        if check.name in IMPLIED_CHECKS:
            continue
        found = _KEY_OF_CHECK.get(str(check.name))
        if found is None:
            raise ValueError(
                f"column {column.name!r}: check {check.name!r} has no YAML form; use one of "
                f"{', '.join(_BUILTIN)} or a dataframe-level comparison"
            )
        key, statistic = found
        value = check.statistics[statistic]
        if isinstance(value, list | tuple | set | frozenset):
            value = [_scalar(v) for v in value]
        fields[key] = _scalar(value)
    return ColumnSpec.model_validate(fields)


def spec_from_schema(schema: pa.DataFrameSchema) -> SchemaSpec:
    """Read a compiled (or compatible) pandera schema back into a spec.

    Raises:
        ValueError: the schema holds a check the YAML layer cannot express.
    """
    checks = []
    for check in schema.checks:
        statistics = check.statistics or {}
        if not {"left", "op", "right"} <= set(statistics):
            raise ValueError(
                f"dataframe check {check.name!r} has no YAML form; declare it as a comparison"
            )
        checks.append(CompareSpec.model_validate(statistics))
    ours: Mapping[str, Any] = (schema.metadata or {}).get(_METADATA_KEY, {})
    return SchemaSpec(
        name=str(schema.name),
        description=schema.description,
        extra_columns="fail" if schema.strict is True else "ignore",
        redact_values=bool(ours.get("redact_values", False)),
        roles=dict(ours.get("roles", {})),
        columns={str(n): _column_spec(c) for n, c in schema.columns.items()},
        checks=checks,
    )


def spec_to_mapping(spec: SchemaSpec) -> dict[str, Any]:
    """Return the spec as YAML-ready data, defaults left out so the file stays short."""
    out: dict[str, Any] = {"name": spec.name}
    if spec.description:
        out["description"] = spec.description
    out["extra_columns"] = spec.extra_columns
    if spec.redact_values:
        out["redact_values"] = True
    if spec.roles:
        out["roles"] = spec.parsed_roles().to_mapping()
    out["columns"] = {
        name: {"dtype": column.dtype, **column.model_dump(mode="json", exclude_defaults=True)}
        for name, column in spec.columns.items()
    }
    if spec.checks:
        out["checks"] = [c.model_dump(mode="json", exclude_none=True) for c in spec.checks]
    return out


def dump_spec(spec: SchemaSpec) -> str:
    """Return the spec as YAML text that parse_spec reads back to an equal spec."""
    return yaml.safe_dump(spec_to_mapping(spec), sort_keys=False, allow_unicode=True)
