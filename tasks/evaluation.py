"""Imbalance-aware evaluation on the untouched holdout; undefined metrics are null with a reason."""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from imblearn.metrics import geometric_mean_score
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from schemas.params import RetrainParams
from tasks.training import InsufficientMinority, fit_model, positive_scores

HISTOGRAM_BINS = 20


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
    if len(true_classes) < 2:
        gmean = None
        undefined["geometric_mean"] = "the holdout has one class only"
    else:
        # Both classes are present, so each recall is defined and imblearn does not warn;
        # a class never predicted gives a recall of 0 and a geometric mean of 0.
        gmean = _number(geometric_mean_score(y_true, y_pred, labels=[0, 1], average="binary"))
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
        "geometric_mean": gmean,
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
        "score_distribution": score_distribution(y_true, scores, class_names),
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


def measure_training_part(
    y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray, class_names: tuple[str, str]
) -> dict[str, JsonValue]:
    """Measure the model on its own training part (before resampling): the fit's evidence."""
    full = measure_predictions(y_true, y_pred, scores, class_names)
    spread = (
        round(float(np.quantile(scores, 0.99) - np.quantile(scores, 0.01)), 6)
        if len(scores)
        else None
    )
    return {
        "roc_auc": full["roc_auc"],
        "pr_auc": full["pr_auc"],
        "predicted_class_counts": full["predicted_class_counts"],
        "accuracy": round(float(np.mean(y_true == y_pred)), 6) if len(y_true) else None,
        "score_spread": spread,
    }


def score_distribution(
    y_true: np.ndarray, scores: np.ndarray, class_names: tuple[str, str]
) -> dict[str, JsonValue]:
    """Return per true class the score quantiles and a histogram over [0, 1]."""
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    quantiles: dict[str, JsonValue] = {}
    histogram: dict[str, JsonValue] = {}
    for value, name in enumerate(class_names):
        of_class = scores[y_true == value]
        quantiles[name] = score_quantiles(of_class)
        counts, _ = np.histogram(np.clip(of_class, 0.0, 1.0), bins=edges)
        histogram[name] = [int(c) for c in counts]
    return {
        "bin_edges": [round(float(e), 4) for e in edges],
        "histogram": histogram,
        "quantiles": quantiles,
    }


def measure_baseline(
    y_true: np.ndarray, y_pred: np.ndarray, majority: int, class_names: tuple[str, str]
) -> dict[str, JsonValue]:
    """Compare the model with always predicting the training part's most frequent class.

    Args:
        y_true: holdout labels (1 = positive).
        y_pred: the model's holdout predictions.
        majority: the most frequent class of the training part (0 or 1).
        class_names: (negative, positive) names.
    """
    if not len(y_true):
        return {"predicts": class_names[majority], "undefined": "the holdout is empty"}
    accuracy = float(np.mean(y_true == majority))
    model_accuracy = float(np.mean(y_true == y_pred))
    minority = 1 - majority
    has_minority = bool(np.any(y_true == minority))
    undefined: dict[str, JsonValue] = (
        {}
        if has_minority
        else {
            name: f"the holdout has no row of class {class_names[minority]}"
            for name in ("balanced_accuracy", "minority_recall", "geometric_mean")
        }
    )
    return {
        "predicts": class_names[majority],
        "accuracy": round(accuracy, 6),
        # Always one class: each class recall is 1 or 0, so balanced accuracy is 0.5 and
        # the minority recall and geometric mean are 0 whenever the minority is present.
        "balanced_accuracy": 0.5 if has_minority else None,
        "minority_recall": 0.0 if has_minority else None,
        "geometric_mean": 0.0 if has_minority else None,
        "model_accuracy": round(model_accuracy, 6),
        "model_accuracy_gain": round(model_accuracy - accuracy, 6),
        "undefined": undefined,
    }


@dataclass(frozen=True)
class ThresholdChoice:
    """The F1-maximising threshold found on the validation slice, or why there is none."""

    threshold: float | None
    validation_f1: float | None
    reason: str | None = None


def best_f1_threshold(y_val: np.ndarray, scores: np.ndarray) -> ThresholdChoice:
    """Return the score threshold that maximises the positive class's F1 on `y_val`."""
    positives = int(np.sum(y_val == 1))
    if positives == 0 or positives == len(y_val):
        missing = "positive" if positives == 0 else "negative"
        return ThresholdChoice(None, None, f"the validation slice has no {missing} row")
    precision, recall, thresholds = precision_recall_curve(y_val, scores)
    precision, recall = precision[:-1], recall[:-1]
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    best = int(np.argmax(f1))
    return ThresholdChoice(round(float(thresholds[best]), 6), round(float(f1[best]), 6))


def apply_threshold(
    y_true: np.ndarray, scores: np.ndarray, threshold: float, class_names: tuple[str, str]
) -> dict[str, JsonValue]:
    """Return what `threshold` would predict on these rows: class counts, precision, recall."""
    y_pred = (scores >= threshold).astype("int64")
    predicted = np.bincount(y_pred, minlength=2)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[1], zero_division=np.nan
    )
    return {
        "threshold": round(float(threshold), 6),
        "predicted_class_counts": {
            class_names[0]: int(predicted[0]),
            class_names[1]: int(predicted[1]),
        },
        f"precision[{class_names[1]}]": _number(precision[0]),
        f"recall[{class_names[1]}]": _number(recall[0]),
        f"f1[{class_names[1]}]": _number(f1[0]),
    }


def threshold_for_share(scores: np.ndarray, share: float) -> float | None:
    """Return the score threshold above which `share` of rows would be predicted positive."""
    if not len(scores) or share <= 0:
        return None
    return round(float(np.quantile(scores, 1.0 - share)), 6)


def validation_slice(
    y: np.ndarray, times: pd.Series | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return positions (fit, validation) within the training part.

    With label times the validation slice is the latest `fraction` of rows, as the
    holdout is for the whole table; without, a stratified random share.
    """
    positions = np.arange(len(y))
    n_val = max(1, math.ceil(fraction * len(y)))
    if times is not None:
        order = np.argsort(pd.Series(times).reset_index(drop=True).to_numpy(), kind="stable")
        return np.sort(order[:-n_val]), np.sort(order[-n_val:])
    stratify = y if np.bincount(y.astype("int64"), minlength=2).min() >= 2 else None
    fit, val = train_test_split(positions, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(fit), np.sort(val)


def analyse_threshold(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    times: pd.Series | None,
    params: RetrainParams,
    holdout_scores: np.ndarray,
    y_holdout: np.ndarray,
    class_names: tuple[str, str],
) -> dict[str, JsonValue]:
    """Find the F1-maximising threshold on a validation slice of the training part.

    A second model is fitted on the earlier rows of the training part and scored on
    the validation slice (never the holdout); the threshold found is then applied to
    the published model's holdout scores to show what it would predict.
    """
    fit, val = validation_slice(y_train, times, params.gate.validation_fraction, params.split.seed)
    result: dict[str, JsonValue] = {
        "validation_rows": len(val),
        "validation_positive_rows": int(np.sum(y_train[val] == 1)),
        "slice": "latest by label time" if times is not None else "stratified random",
        "current_threshold": params.model.decision_threshold,
    }
    fit_classes = np.unique(y_train[fit])
    if len(fit_classes) < 2:
        return {**result, "threshold": None, "reason": "the earlier rows have one class only"}
    try:
        refit = fit_model(X_train.iloc[fit], y_train[fit], params.model, params.resample)
    except InsufficientMinority as exc:
        return {**result, "threshold": None, "reason": str(exc)}
    choice = best_f1_threshold(y_train[val], positive_scores(refit.model, X_train.iloc[val]))
    if choice.threshold is None:
        return {**result, "threshold": None, "reason": choice.reason}
    return {
        **result,
        "threshold": choice.threshold,
        "validation_f1": choice.validation_f1,
        "on_holdout": apply_threshold(y_holdout, holdout_scores, choice.threshold, class_names),
    }


@task(name="evaluate-holdout", cache_policy=NO_CACHE, persist_result=False)
def evaluate_task(
    y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray, class_names: tuple[str, str]
) -> dict[str, JsonValue]:
    """Measure the model on the holdout."""
    return measure_predictions(y_true, y_pred, scores, class_names)


@task(name="analyse-threshold", cache_policy=NO_CACHE, persist_result=False)
def threshold_task(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    times: pd.Series | None,
    params: RetrainParams,
    holdout_scores: np.ndarray,
    y_holdout: np.ndarray,
    class_names: tuple[str, str],
) -> dict[str, JsonValue]:
    """Find the F1-maximising threshold on a validation slice of the training part."""
    return analyse_threshold(
        X_train, y_train, times, params, holdout_scores, y_holdout, class_names
    )
