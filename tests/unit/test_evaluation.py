import warnings

import numpy as np

from tasks.evaluation import measure_predictions

NAMES = ("0", "1")


def test_one_class_predictions_give_nulls_with_reasons_and_no_warning() -> None:
    y_true = np.array([0] * 95 + [1] * 5)
    scores = np.linspace(0.0, 0.4, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = measure_predictions(y_true, np.zeros(100, dtype=int), scores, NAMES)
    assert metrics["predicted_class_counts"] == {"0": 100, "1": 0}
    assert metrics["per_class"]["1"]["precision"] is None
    assert "precision[1]" in metrics["undefined"]
    assert metrics["mcc"] is None and "mcc" in metrics["undefined"]
    assert metrics["roc_auc"] == 1.0, "scores still rank the classes"
    assert metrics["pr_auc_no_skill"] == 0.05


def test_one_class_holdout_labels_make_ranking_metrics_null() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = measure_predictions(
            np.zeros(10, dtype=int), np.array([0, 1] * 5), np.linspace(0, 1, 10), NAMES
        )
    assert metrics["roc_auc"] is None and metrics["pr_auc"] is None
    assert metrics["undefined"]["roc_auc"] == "the holdout has one class only"


def test_confusion_matrix_and_per_class_values() -> None:
    y_true = np.array([0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 0])
    metrics = measure_predictions(y_true, y_pred, y_pred.astype(float), NAMES)
    assert metrics["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1], [1, 1]]
    assert metrics["per_class"]["1"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert metrics["balanced_accuracy"] == round((2 / 3 + 1 / 2) / 2, 6)
