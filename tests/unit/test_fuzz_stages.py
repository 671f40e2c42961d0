"""Property-based tests: the data stages take any table and answer with checks, not crashes.

The only exceptions allowed are the project's own for unusable input: InputError from the
loader (exit 2) and SchemaDeclarationError for a wrong schema declaration.
"""

from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from retrain_guard.schemas.params import DataParams, ModelParams, ResampleParams, SplitParams
from retrain_guard.tasks.load import InputError, read_columns, read_table
from retrain_guard.tasks.profile import drop_unlabelled, measure_label
from retrain_guard.tasks.quirks import check_quirks
from retrain_guard.tasks.schema_failures import control_names
from retrain_guard.tasks.split import judge_split, make_split
from retrain_guard.tasks.training import InsufficientMinority, fit_model, positive_scores
from tests.unit.fuzz_tables import (
    FILE_KINDS,
    FUZZ,
    Table,
    numeric_tables,
    run_data_stages,
    tables,
    write,
)


@settings(FUZZ, max_examples=300)
@given(tables())
def test_data_stages_never_crash_on_in_memory_tables(table: Table) -> None:
    run_data_stages(table.frame, table.data())


@settings(FUZZ, max_examples=150)
@given(tables(kinds=FILE_KINDS, unique_names=False), st.booleans())
def test_written_tables_load_or_say_why_and_then_pass_the_stages(
    table: Table, parquet: bool
) -> None:
    with TemporaryDirectory() as folder:
        path = write(table, Path(folder), parquet)
        if path is None:
            return
        try:
            columns = read_columns(path)
            frame = read_table(path)
        except InputError:
            return
        assert [str(c) for c in frame.columns] == columns
        roles = (table.label, table.label_time, table.id_column)
        if any(r is not None and r not in columns for r in roles):
            return  # the command line refuses the invocation (exit 2) before any stage
        run_data_stages(frame, table.data(str(path)))


@settings(FUZZ, max_examples=150)
@given(numeric_tables())
def test_infinite_and_huge_numbers_reach_every_measure_without_crashing(table: Table) -> None:
    run_data_stages(table.frame, table.data())


@settings(FUZZ, max_examples=40)
@given(
    numeric_tables() | tables(min_rows=20),
    st.sampled_from(["logistic_regression", "random_forest"]),
)
def test_training_takes_the_cleaned_table(table: Table, model: str) -> None:
    data = table.data()
    frame, checks = check_quirks(table.frame, data)
    labelled, _ = drop_unlabelled(frame, data.label)
    profile = measure_label(labelled, data.label)
    assume(profile.positive is not None and not any(c.status == "fail" for c in checks))
    features = data.feature_columns(labelled.columns)
    # The header check refuses a name with a control character before any stage runs.
    assume(features and not control_names(features))
    y = (labelled[data.label] == profile.positive).to_numpy().astype("int64")
    try:
        trained = fit_model(labelled[features], y, ModelParams(name=model), ResampleParams())
    except InsufficientMinority:
        return
    scores = positive_scores(trained.model, labelled[features])
    assert np.isfinite(scores).all()


# --- crashes the properties found, kept as plain tests -------------------------------------


def test_a_tiny_table_splits_at_random_and_the_split_check_says_what_is_missing() -> None:
    # Five rows: a stratified holdout of one row cannot hold both classes (sklearn raised).
    frame = pd.DataFrame({"y": [0, 1, 1, 0, 0], "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    data = DataParams(path="t.csv", label="y")
    split = make_split(frame, data, SplitParams())
    checks = {c.code: c for c in judge_split(split, frame["y"], 1, data)}
    assert len(split.holdout) == 1 and len(split.train) == 4
    assert checks["insufficient_minority"].status == "fail"


def test_a_column_named_dask_is_validated_like_any_other() -> None:
    # pandera mistook the frame for a Dask DataFrame and raised AttributeError.
    # A third class breaks the baseline schema: the failure is reported, not a crash.
    frame = pd.DataFrame({"y": [0, 1, 2, 1], "dask": [1.0, 2.0, 3.0, 4.0]})
    assert run_data_stages(frame, DataParams(path="t.csv", label="y")) == ["schema_invalid"]
    frame["y"] = [0, 1, 0, 1]
    assert "schema_invalid" not in run_data_stages(frame, DataParams(path="t.csv", label="y"))
