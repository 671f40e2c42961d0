"""Hypothesis strategies for awkward training tables, and the data stages run in turn.

Shared by the property-based tests (test_fuzz_*.py). The tables hold what real extracts
hold and the stages must survive: nulls, +-inf, huge numbers, mixed Python objects, lists,
bytes, odd or duplicate column names, zero or one row, a constant label, empty columns.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from retrain_guard.schemas.params import DataParams, LeakageParams, SchemaParams, SplitParams
from retrain_guard.tasks.leakage.detect import detect_leakage
from retrain_guard.tasks.leakage.split_sharing import check_split_leakage
from retrain_guard.tasks.profile import drop_unlabelled, judge_label, measure_label
from retrain_guard.tasks.quirks import check_quirks
from retrain_guard.tasks.split import judge_split, make_split
from retrain_guard.tasks.validation import check_header, declare_schema, validate_frame

# Fixed and derandomized: a failure found in CI is found again on every machine.
settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz")

ODD_NAMES = st.sampled_from(
    ["amount", "a b", " ", "", "é", "日本語", "1", "0.5", "-1", "nan", "None", "True", "a.1"]
) | st.text(min_size=0, max_size=6)
FEATURE_KINDS = (
    "float",
    "int",
    "bool",
    "text",
    "empty",
    "datetime",
    "mixed",
    "list",
    "bytes",
    "struct",
)
# Kinds a CSV or Parquet file can carry back (the others only reach in-memory callers).
FILE_KINDS = FEATURE_KINDS[:6]
LABEL_KINDS = ("int01", "text", "bool", "constant", "with_null", "float01", "three")

_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e308, -1e308, 1e150, -1e101, 0.0, 1.0]
)
_TIMES = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2040, 1, 1))
_VALUES = {
    "float": _FLOATS,
    "int": st.integers(-(2**62), 2**62),
    "bool": st.booleans(),
    "text": st.none() | st.text(max_size=5),
    "empty": st.none(),
    "datetime": st.none() | _TIMES,
    "mixed": st.none() | st.integers(-5, 5) | st.text(max_size=3) | st.just({"k": 1}),
    "list": st.lists(st.integers(-3, 3), max_size=3),
    "bytes": st.none() | st.binary(max_size=3),
    "struct": st.fixed_dictionaries({"a": st.integers(0, 3)}),
}
_LABELS = {
    "int01": st.sampled_from([0, 1]),
    "text": st.sampled_from(["yes", "no"]),
    "bool": st.booleans(),
    "constant": st.just(1),
    "with_null": st.sampled_from([0, 1, None]),
    "float01": st.sampled_from([0.0, 1.0, np.inf]),
    "three": st.sampled_from(["a", "b", "c"]),
}


@dataclass(frozen=True)
class Table:
    """A generated table and the roles of its columns."""

    frame: pd.DataFrame
    label: str
    label_time: str | None
    id_column: str | None

    def data(self, path: str = "t.csv") -> DataParams:
        return DataParams(
            path=path, label=self.label, label_time=self.label_time, id_column=self.id_column
        )


def _column(kind: str, values: Sequence[Any]) -> pd.Series:
    if kind == "float":
        return pd.Series(values, dtype="float64")
    if kind == "int":
        return pd.Series(values, dtype="int64")
    if kind == "bool":
        return pd.Series(values, dtype="bool")
    if kind == "datetime":
        return pd.Series(pd.to_datetime(pd.Series(values, dtype=object)))
    if kind == "empty":
        return pd.Series([np.nan] * len(values), dtype="float64")
    return pd.Series(values, dtype=object)


@st.composite
def tables(
    draw: st.DrawFn,
    kinds: tuple[str, ...] = FEATURE_KINDS,
    unique_names: bool = True,
    min_features: int = 0,
    min_rows: int = 0,
) -> Table:
    """Draw a table: a label, maybe a label time and an id, and up to five features."""
    rows = draw(st.sampled_from([0, 1, 2]) | st.integers(3, 40)) if not min_rows else 0
    rows = max(rows, draw(st.integers(min_rows, min_rows + 60)) if min_rows else rows)
    used: list[str] = []

    def name(role: bool = False) -> str:
        # A role is named by a parameter, and parameters are never empty.
        drawn = draw(
            ODD_NAMES.filter(
                lambda n: (not role or n != "") and (not unique_names or n not in used)
            )
        )
        used.append(drawn)
        return drawn

    order: list[tuple[str, pd.Series]] = []
    label = name(role=True)
    # Weighted towards labels and times the baseline schema accepts, so that most tables
    # reach the later stages.
    label_kind = draw(st.sampled_from(("int01", "int01", "int01", "text", *LABEL_KINDS)))
    label_values = draw(st.lists(_LABELS[label_kind], min_size=rows, max_size=rows))
    order.append((label, pd.Series(label_values, dtype=object if label_kind != "int01" else None)))
    label_time = None
    if draw(st.booleans()):
        label_time = name(role=True)
        some_missing = draw(st.integers(0, 3)) == 0
        times = draw(
            st.lists(st.none() | _TIMES if some_missing else _TIMES, min_size=rows, max_size=rows)
        )
        order.append((label_time, pd.Series(pd.to_datetime(pd.Series(times, dtype=object)))))
    id_column = None
    if draw(st.booleans()):
        id_column = name(role=True)
        order.append((id_column, pd.Series([f"r{i}" for i in range(rows)], dtype=object)))
    for _ in range(draw(st.integers(min_features, 5))):
        kind = draw(st.sampled_from([k for k in kinds if k != "empty"]) | st.sampled_from(kinds))
        values = draw(st.lists(_VALUES[kind], min_size=rows, max_size=rows))
        order.append((name(), _column(kind, values)))
    frame = pd.DataFrame({i: s.reset_index(drop=True) for i, (_, s) in enumerate(order)})
    frame.columns = pd.Index([n for n, _ in order], dtype=object)
    return Table(frame.reset_index(drop=True), label, label_time, id_column)


def write(table: Table, folder: Path, parquet: bool) -> Path | None:
    """Write the table as Parquet (when pyarrow can hold it) or CSV; None if neither can."""
    path = folder / ("t.parquet" if parquet else "t.csv")
    try:
        if parquet:
            table.frame.to_parquet(path, index=False)
        else:
            table.frame.to_csv(path, index=False)
    except (ValueError, TypeError, OverflowError, UnicodeEncodeError) as exc:
        if parquet or isinstance(exc, UnicodeEncodeError):
            return None
        raise
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid, ArrowTypeError)
        if type(exc).__module__.startswith("pyarrow"):
            return None
        raise
    return path


def run_data_stages(frame: pd.DataFrame, data: DataParams) -> list[str]:
    """Run every data stage's pure function in order; return the codes that halted.

    A simplified sequence of the flow's: a failing check stops it there (the flow goes on
    after a failing schema, which the whole-run properties of test_fuzz_cli.py cover). Any
    exception is a crash of the stage that raised it.
    """
    columns = [str(c) for c in frame.columns]
    schema_params = SchemaParams()
    declared = declare_schema(schema_params, data, columns)
    header = check_header(declared, data, columns)
    if header is not None:
        return [header.code]
    validated, schema_check = validate_frame(frame, declared, data, schema_params)
    if validated is None:
        return [schema_check.code]
    cleaned, quirks = check_quirks(validated, data)
    failed = [c.code for c in quirks if c.status == "fail"]
    if failed:
        return failed
    labelled, _ = drop_unlabelled(cleaned, data.label)
    profile = measure_label(labelled, data.label)
    if judge_label(profile, data.label).status == "fail":
        return ["single_class_target"]
    leakage = detect_leakage(labelled, data, LeakageParams(), profile.positive)
    failed = [c.code for c in leakage.checks if c.status == "fail"]
    if failed:
        return failed
    kept = labelled.drop(columns=leakage.dropped)
    split = make_split(kept, data, SplitParams())
    checks = judge_split(split, kept[data.label], profile.positive, data)
    checks.append(check_split_leakage(kept, split, data, LeakageParams()))
    return [c.code for c in checks if c.status == "fail"]


_MOSTLY_FINITE = st.floats(-1e6, 1e6) | _FLOATS


@st.composite
def numeric_tables(draw: st.DrawFn) -> Table:
    """Draw a table of float features, rows enough for every leakage measure to run.

    Both classes have at least three rows and the floats mostly vary, so the resampling
    trace's neighbour search and the scaler see the infinite and huge values.
    """
    rows = draw(st.integers(8, 80))
    positives = draw(st.integers(3, rows - 3))
    label = np.zeros(rows, dtype="int64")
    label[draw(st.permutations(range(rows)))[:positives]] = 1
    columns: dict[str, object] = {"y": label}
    for i in range(draw(st.integers(1, 4))):
        columns[f"x{i}"] = draw(st.lists(_MOSTLY_FINITE, min_size=rows, max_size=rows))
    frame = pd.DataFrame(columns).astype({c: "float64" for c in columns if c != "y"})
    return Table(frame, "y", None, None)
