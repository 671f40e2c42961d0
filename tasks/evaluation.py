"""Imbalance-aware evaluation on the untouched holdout; undefined metrics are null with a reason."""

import math

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def measure_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray,
    class_names: tuple[str, str],
) -> dict[str, JsonValue]:
    """Compute the holdout metrics; y is 1 for the positive class (class_names[1]).

    Never warns or raises on one-class input: a metric that is undefined is None and its
    reason is listed under `undefined`.
    """
    negative, positive = class_names
    undefined: dict[str, JsonValue] = {}
    true_classes = set(np.unique(y_true).tolist())
    predicted = np.bincount(y_pred.astype("int64"), minlength=2)

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=np.nan
    )
    per_class: dict[str, JsonValue] = {}
    for i, name in enumerate(class_names):
        entry: dict[str, JsonValue] = {
            "precision": _number(precision[i]),
            "recall": _number(recall[i]),
            "f1": _number(f1[i]),
            "support": int(support[i]),
        }
        if entry["precision"] is None:
            undefined[f"precision[{name}]"] = f"no holdout row was predicted {name}"
        if entry["recall"] is None:
            undefined[f"recall[{name}]"] = f"the holdout has no row of class {name}"
        if entry["f1"] is None:
            undefined[f"f1[{name}]"] = "precision or recall is undefined"
        per_class[name] = entry

    if len(true_classes) < 2:
        reason = "the holdout has one class only"
        roc_auc = pr_auc = balanced = None
        undefined.update(roc_auc=reason, pr_auc=reason, balanced_accuracy=reason)
    else:
        roc_auc = _number(roc_auc_score(y_true, scores))
        pr_auc = _number(average_precision_score(y_true, scores))
        balanced = _number(balanced_accuracy_score(y_true, y_pred))
    if len(true_classes) < 2 or len(set(y_pred.tolist())) < 2:
        mcc = None
        undefined["mcc"] = "one class only in the holdout labels or in the predictions"
    else:
        mcc = _number(matthews_corrcoef(y_true, y_pred))

    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1])
    positive_share = float(np.mean(y_true == 1)) if len(y_true) else 0.0
    return {
        "rows": len(y_true),
        "per_class": per_class,
        "balanced_accuracy": balanced,
        "mcc": mcc,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "pr_auc_no_skill": round(positive_share, 6),
        "confusion_matrix": {
            "labels": [negative, positive],
            "rows_true_columns_predicted": matrix.astype(int).tolist(),
        },
        "predicted_class_counts": {negative: int(predicted[0]), positive: int(predicted[1])},
        "true_class_counts": {
            negative: int(np.sum(y_true == 0)),
            positive: int(np.sum(y_true == 1)),
        },
        "score_quantiles": score_quantiles(scores),
        "max_positive_score": _number(float(scores.max())) if len(scores) else None,
        "undefined": undefined,
    }


def score_quantiles(scores: np.ndarray) -> dict[str, JsonValue]:
    """Summarise the positive-class score distribution."""
    if not len(scores):
        return {}
    qs = np.quantile(scores, [0.0, 0.5, 0.9, 0.99, 1.0])
    return {
        k: round(float(v), 6) for k, v in zip(("min", "p50", "p90", "p99", "max"), qs, strict=True)
    }


def threshold_for_share(scores: np.ndarray, share: float) -> float | None:
    """Return the score threshold above which `share` of rows would be predicted positive."""
    if not len(scores) or share <= 0:
        return None
    return round(float(np.quantile(scores, 1.0 - share)), 6)


@task(name="evaluate-holdout", cache_policy=NO_CACHE, persist_result=False)
def evaluate_task(
    y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray, class_names: tuple[str, str]
) -> dict[str, JsonValue]:
    """Measure the model on the holdout."""
    return measure_predictions(y_true, y_pred, scores, class_names)
