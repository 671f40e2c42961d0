import numpy as np
import pandas as pd

from retrain_guard.schemas.params import ModelParams, ResampleParams
from retrain_guard.tasks.features import (
    judge_cardinality,
    judge_constant_features,
    measure_cardinality,
    measure_constant_features,
    measure_separation,
    prepared_chunks,
    prepared_training_part,
)
from retrain_guard.tasks.leakage.target import measure_target_auc
from retrain_guard.tasks.training import fit_model


def _frame(rows: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.2).astype("int64")
    frame = pd.DataFrame(
        {
            "signal": y * 2.0 + rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "same": 3.0,
            "nothing": np.nan,
            "colour": rng.choice(["red", "blue"], rows),
            "user_id": [f"u{i}" for i in range(rows)],
            "leak": np.where(y == 1, 1.0, np.nan),
        }
    )
    return frame, y


def test_identifier_like_strings_are_reported_as_high_cardinality() -> None:
    frame, _ = _frame()
    params = ModelParams(high_cardinality=50, max_categories=10)
    check = judge_cardinality(measure_cardinality(frame, params), params)
    assert check.status == "warn" and check.columns == ["user_id"]
    assert "looks like an identifier" in check.summary
    assert "95.5% of rows pooled" in check.summary  # all but the 9 kept categories


def test_empty_and_constant_features_are_named() -> None:
    frame, y = _frame()
    trained = fit_model(frame, y, ModelParams(), ResampleParams())
    measured = measure_constant_features(prepared_training_part(trained, frame), frame)
    assert measured.empty == ["nothing"] and measured.constant == ["same"]
    check = judge_constant_features(measured)
    assert check.status == "warn" and check.columns == ["nothing", "same"]


def test_constant_features_found_a_chunk_at_a_time_are_those_of_the_whole_part() -> None:
    """Prepared a few rows at a time: a column constant within each chunk but not across
    them varies; missing in one chunk and present in another varies; -0.0 is 0.0."""
    frame, y = _frame()
    half = np.arange(len(frame)) < len(frame) // 2
    frame = frame.assign(
        steps=np.where(half, 1.0, 2.0),  # constant in each chunk of 50, not overall
        gap=np.where(half, np.nan, 5.0),  # missing, then present
        zero=np.where(half, -0.0, 0.0),  # one value
        late=np.where(np.arange(len(frame)) == len(frame) - 1, 7.0, 0.0),
    )
    trained = fit_model(frame, y, ModelParams(), ResampleParams())
    whole = measure_constant_features(prepared_training_part(trained, frame), frame)
    chunked = measure_constant_features(prepared_chunks(trained, frame, rows=50), frame)
    assert chunked == whole
    assert whole.empty == ["nothing"] and whole.constant == ["same", "zero"]


def test_a_column_that_alone_separates_the_classes_is_measured() -> None:
    frame, y = _frame()
    separation = measure_separation(frame, y, 0.99)
    measured = separation.roc_auc
    assert next(iter(measured)) == "leak" and measured["leak"] == 1.0
    assert measured["noise"] < 0.7
    assert not {"same", "nothing", "colour"} & set(measured)
    assert separation.separating == {"leak": 1.0}
    assert measure_separation(frame, y, 0.5).separating.keys() == measured.keys()


def test_separation_is_the_target_leakage_measure() -> None:
    frame, y = _frame()
    rng = np.random.default_rng(1)
    # Half the negatives lack a value: missing values rank as target_leakage ranks them.
    frame["partial"] = frame["signal"].where((y == 1) | (rng.random(len(y)) < 0.5))
    columns = ["signal", "noise", "partial"]
    # At recheck_at 0.5 no column is settled by the histogram bound: every AUC is exact.
    powers = measure_target_auc(frame, columns, y == 1, None, 0.5)
    separation = measure_separation(frame[columns], y, 0.99).roc_auc
    assert separation == {p.column: round(p.auc, 6) for p in powers}
