from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_guard.flows.example_data import make_transactions
from retrain_guard.tasks import threshold
from retrain_guard.tasks.evaluation import (
    measure_baseline,
    measure_predictions,
    measure_training_part,
)
from retrain_guard.tasks.threshold import (
    SampleCap,
    analyse_threshold,
    apply_threshold,
    best_f1_threshold,
    capped_sample,
    validation_slice,
)
from tests.conftest import params_for

NAMES = ("0", "1")


def test_metrics_of_a_two_class_holdout() -> None:
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 0, 1, 0])
    scores = np.array([0.1, 0.2, 0.7, 0.3, 0.9, 0.4])
    m = measure_predictions(y, pred, scores, NAMES).to_json()
    assert m["geometric_mean"] == pytest.approx(np.sqrt(0.75 * 0.5), abs=1e-6)
    assert m["roc_auc"] == pytest.approx(0.875)
    assert m["pr_auc_no_skill"] == pytest.approx(1 / 3, abs=1e-6)
    assert m["predicted_class_counts"] == {"0": 4, "1": 2}
    assert m["confusion_matrix"]["rows_true_columns_predicted"] == [[3, 1], [1, 1]]
    assert m["undefined"] == {}
    distribution = m["score_distribution"]
    assert distribution["histogram"]["1"] == [0] * 8 + [1] + [0] * 9 + [1, 0]
    assert distribution["quantiles"]["1"]["max"] == 0.9


def test_one_class_predictions_give_zeros_where_defined_and_null_with_reason_elsewhere() -> None:
    y = np.array([0, 0, 0, 1])
    pred = np.zeros(4, dtype="int64")
    m = measure_predictions(y, pred, np.array([0.1, 0.2, 0.1, 0.3]), NAMES).to_json()
    assert m["geometric_mean"] == 0.0
    assert m["mcc"] is None and "one class only" in m["undefined"]["mcc"]
    assert m["per_class"]["1"]["precision"] is None
    assert "no holdout row was predicted 1" in m["undefined"]["precision[1]"]


def test_one_class_holdout_labels_make_ranking_metrics_null_not_warnings() -> None:
    y = np.zeros(5, dtype="int64")
    m = measure_predictions(y, np.array([0, 1, 0, 0, 1]), np.linspace(0, 1, 5), NAMES).to_json()
    for name in ("roc_auc", "pr_auc", "geometric_mean", "balanced_accuracy", "mcc"):
        assert m[name] is None
        assert m["undefined"][name]


def test_baseline_always_predicts_the_training_majority() -> None:
    y = np.array([0] * 9 + [1])
    b = measure_baseline(y, np.array([0] * 8 + [1, 1]), 0, NAMES).to_json()
    assert b["predicts"] == "0"
    assert b["accuracy"] == 0.9 and b["balanced_accuracy"] == 0.5
    assert b["minority_recall"] == 0.0 and b["geometric_mean"] == 0.0
    assert b["model_accuracy"] == 0.9 and b["model_accuracy_gain"] == 0.0
    assert b["undefined"] == {}


def test_baseline_metrics_without_a_minority_row_are_null_with_a_reason() -> None:
    b = measure_baseline(np.zeros(4, dtype="int64"), np.zeros(4, dtype="int64"), 0, NAMES).to_json()
    assert b["minority_recall"] is None and b["geometric_mean"] is None
    assert b["undefined"]["minority_recall"] == "the holdout has no row of class 1"


def test_best_f1_threshold_separates_a_clean_ranking() -> None:
    y = np.array([0, 0, 0, 1, 1])
    choice = best_f1_threshold(y, np.array([0.1, 0.2, 0.3, 0.35, 0.4]))
    assert choice.threshold == 0.35 and choice.validation_f1 == 1.0
    off = apply_threshold(y, np.array([0.1, 0.2, 0.3, 0.35, 0.4]), 0.35, NAMES)
    assert off.predicted_class_counts == {"0": 3, "1": 2}
    assert off.to_json()["recall[1]"] == 1.0


def test_best_f1_threshold_is_null_with_a_reason_when_the_slice_has_one_class() -> None:
    choice = best_f1_threshold(np.zeros(4, dtype="int64"), np.linspace(0, 1, 4))
    assert choice.threshold is None and choice.reason == "the validation slice has no positive row"


def test_validation_slice_is_the_latest_rows_by_label_time() -> None:
    times = pd.Series(pd.to_datetime(["2025-01-05", "2025-01-01", "2025-01-04", "2025-01-02"]))
    fit, val = validation_slice(np.array([0, 1, 0, 1]), times, 0.5, 0)
    assert val.tolist() == [0, 2] and fit.tolist() == [1, 3]


def test_validation_slice_without_times_is_stratified() -> None:
    y = np.array([0] * 16 + [1] * 4)
    fit, val = validation_slice(y, None, 0.25, 0)
    assert len(val) == 5 and y[val].sum() == 1
    assert sorted([*fit, *val]) == list(range(20))


def test_threshold_analysis_never_uses_the_holdout(tmp_path: Path) -> None:
    frame = make_transactions(rows=1500, positive_rate=0.05, seed=2)
    features = [c for c in frame.columns if c not in ("transaction_id", "event_time", "is_fraud")]
    y = frame["is_fraud"].to_numpy()
    params = params_for("x.csv", tmp_path, model={"name": "logistic_regression"})
    train, holdout = slice(0, 1200), slice(1200, 1500)
    # Poisoned holdout labels: an analysis that looked at them would change its threshold.
    result = analyse_threshold(
        frame[features].iloc[train],
        y[train],
        frame["event_time"].iloc[train],
        params,
        np.linspace(0, 1, 300),
        1 - y[holdout],
        NAMES,
    )
    again = analyse_threshold(
        frame[features].iloc[train],
        y[train],
        frame["event_time"].iloc[train],
        params,
        np.linspace(0, 1, 300),
        y[holdout],
        NAMES,
    )
    assert result.threshold is not None
    assert result.threshold == again.threshold
    assert result.validation_rows == 240 and result.slice == "latest by label time"
    assert result.on_holdout is not None and sum(result.on_holdout.predicted) == 300


def test_training_part_measures_score_spread_and_accuracy() -> None:
    y = np.array([0, 0, 1, 1])
    m = measure_training_part(y, np.array([0, 0, 0, 0]), np.array([0.1, 0.1, 0.1, 0.1]), NAMES)
    assert m.score_spread == 0.0 and m.accuracy == 0.5
    assert m.to_json()["predicted_class_counts"] == {"0": 4, "1": 0}


def test_capped_sample_keeps_small_tables_whole_and_class_shares_of_large_ones() -> None:
    y = np.array([0] * 950 + [1] * 50)
    positions = np.arange(1000) + 7
    assert capped_sample(positions, y, SampleCap(rows=1000, rarer_rows=10), 0) is positions
    sample = capped_sample(positions, y, SampleCap(rows=200, rarer_rows=10), 0)
    assert len(sample) == 200 and len(set(sample)) == 200
    assert list(sample) == sorted(sample) and set(sample) <= set(positions)
    assert int(np.sum(y[sample - 7] == 1)) == 10  # 5%, as in the whole
    # Enough rows to hold `rarer_rows` of the rarer class, beyond `rows`.
    assert len(capped_sample(positions, y, SampleCap(rows=200, rarer_rows=20), 0)) == 400


def test_threshold_analysis_on_samples_of_a_large_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threshold, "REFIT_CAP", SampleCap(rows=400, rarer_rows=10))
    monkeypatch.setattr(threshold, "VALIDATION_CAP", SampleCap(rows=120, rarer_rows=5))
    frame = make_transactions(rows=1500, positive_rate=0.05, seed=2)
    features = [c for c in frame.columns if c not in ("transaction_id", "event_time", "is_fraud")]
    y = frame["is_fraud"].to_numpy()
    params = params_for("x.csv", tmp_path, model={"name": "logistic_regression"})
    result = analyse_threshold(
        frame[features].iloc[:1200],
        y[:1200],
        frame["event_time"].iloc[:1200],
        params,
        np.linspace(0, 1, 300),
        y[1200:],
        NAMES,
    )
    assert result.threshold is not None
    assert result.samples == ((400, 960), (120, 240))
    assert result.to_json()["samples"] == {
        "refit_rows": 400,
        "earlier_rows": 960,
        "scored_validation_rows": 120,
        "validation_rows": 240,
    }


def test_training_part_of_a_sample_scales_predicted_counts_to_the_whole_part() -> None:
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([1, 0, 0, 0, 1, 0])
    scores = np.array([0.6, 0.1, 0.2, 0.3, 0.9, 0.4])
    # The sample holds 4 of 400 negatives and 2 of 200 positives.
    m = measure_training_part(y, pred, scores, NAMES, whole=(400, 200))
    assert (m.rows, m.positives, m.scored_rows) == (600, 200, 6)
    assert m.predicted == (600 - 200, 100 + 100)
    assert m.to_json()["scored_sample"] == {"rows": 6, "of_rows": 600}
    assert "scored_sample" not in measure_training_part(y, pred, scores, NAMES).to_json()
