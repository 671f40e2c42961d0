"""The decision threshold analysis: the F1-best threshold on a validation slice of the training
part, and what that threshold would predict on the holdout. The holdout never chooses it."""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import JsonDict
from retrain_guard.tasks.train_sample import TrainingSample
from retrain_guard.tasks.training import InsufficientMinority, fit_model, positive_scores

# Fits a model like the one judged on (rows, 0/1 labels) and returns it (predict_proba).
Refit = Callable[[pd.DataFrame, np.ndarray], Any]


class NoRefit(Exception):
    """No model like the judged one can be fitted; the message says why."""


@dataclass(frozen=True)
class SampleCap:
    """How many rows an estimate scores at most: `rows`, or more when needed to hold
    `rarer_rows` rows of the rarer class."""

    rows: int
    rarer_rows: int


# On a large table the threshold analysis works on stratified samples (`capped_sample`):
# the refit on the earlier rows and the scoring of the validation slice. The refit stands in
# for "a model fitted like the published one, without the validation rows", and the F1-best
# threshold is read off the validation rows' scores; both are estimates, while the refit on
# every earlier row cost as much as the training itself (RESULTS.md, "Train to gate"). A
# stratified sample keeps the class shares, on which the scores' scale, hence the threshold,
# depends. The refit gets 25,000 rows, at least 200 of the rarer class (ten or more per
# coefficient of a model of a few dozen prepared columns); the validation sample, which
# the F1 is read from, twice that. Tables under the caps are analysed whole, as before.
REFIT_CAP = SampleCap(rows=25_000, rarer_rows=200)
VALIDATION_CAP = SampleCap(rows=50_000, rarer_rows=400)


def rounded(value: float | None) -> float | None:
    """Return a metric rounded to 6 decimals, or None where it is undefined (NaN)."""
    return None if value is None or math.isnan(value) else round(float(value), 6)


@dataclass(frozen=True)
class ThresholdChoice:
    """The F1-maximising threshold found on the validation slice, or why there is none."""

    threshold: float | None
    validation_f1: float | None
    reason: str | None = None


def best_f1_threshold(
    y_val: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
) -> ThresholdChoice:
    """Return the score threshold that maximises the positive class's F1 on `y_val`; rows of
    a class-aware sample count with their `weights` (tasks/train_sample.py)."""
    positives = int(np.sum(y_val == 1))
    if positives == 0 or positives == len(y_val):
        missing = "positive" if positives == 0 else "negative"
        return ThresholdChoice(None, None, f"the validation slice has no {missing} row")
    precision, recall, thresholds = precision_recall_curve(y_val, scores, sample_weight=weights)
    precision, recall = precision[:-1], recall[:-1]
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    best = int(np.argmax(f1))
    return ThresholdChoice(round(float(thresholds[best]), 6), round(float(f1[best]), 6))


@dataclass(frozen=True)
class Predicted:
    """Rows predicted as each class, (negative, positive), and the table's names of them."""

    class_names: tuple[str, str]
    predicted: tuple[int, int]

    @property
    def predicted_class_counts(self) -> dict[str, int]:
        return dict(zip(self.class_names, self.predicted, strict=True))


@dataclass(frozen=True)
class ThresholdOutcome(Predicted):
    """What a threshold predicts on some rows: class counts, and the positive class's scores."""

    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None

    def to_json(self) -> JsonDict:
        positive = self.class_names[1]
        return {
            "threshold": self.threshold,
            "predicted_class_counts": dict(self.predicted_class_counts),
            f"precision[{positive}]": self.precision,
            f"recall[{positive}]": self.recall,
            f"f1[{positive}]": self.f1,
        }


def apply_threshold(
    y_true: np.ndarray, scores: np.ndarray, threshold: float, class_names: tuple[str, str]
) -> ThresholdOutcome:
    """Return what `threshold` would predict on these rows: class counts, precision, recall."""
    y_pred = (scores >= threshold).astype("int64")
    predicted = np.bincount(y_pred, minlength=2)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[1], zero_division=np.nan
    )
    return ThresholdOutcome(
        threshold=round(float(threshold), 6),
        class_names=class_names,
        predicted=(int(predicted[0]), int(predicted[1])),
        precision=rounded(precision[0]),
        recall=rounded(recall[0]),
        f1=rounded(f1[0]),
    )


def threshold_for_share(
    scores: np.ndarray, share: float, weights: np.ndarray | None = None
) -> float | None:
    """Return the score threshold above which `share` of rows would be predicted positive;
    rows of a class-aware sample count with their `weights`."""
    if not len(scores) or share <= 0:
        return None
    if weights is None:
        return round(float(np.quantile(scores, 1.0 - share)), 6)
    return round(weighted_quantile(scores, 1.0 - share, weights), 6)


def weighted_quantile(values: np.ndarray, q: float, weights: np.ndarray) -> float:
    """Return the smallest value at or below which a share `q` of the weight lies."""
    order = np.argsort(values, kind="stable")
    below = np.cumsum(weights[order])
    at = int(np.searchsorted(below, q * below[-1]))
    return float(values[order][min(at, len(order) - 1)])


def capped_sample(positions: np.ndarray, y: np.ndarray, cap: SampleCap, seed: int) -> np.ndarray:
    """Return `positions` (sorted), or a stratified sample of them when `cap` is exceeded.

    `y` holds the labels at `positions`; the sample keeps their class shares.
    """
    rarer = int(np.bincount(y.astype("int64"), minlength=2).min())
    if not rarer:
        return positions
    size = max(cap.rows, math.ceil(cap.rarer_rows * len(y) / rarer))
    if size >= len(positions):
        return positions
    # One draw per class keeps its share (scikit-learn's stratified split: 0.15 s at 800k rows).
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(of_class, size=round(size * len(of_class) / len(positions)), replace=False)
        for of_class in (positions[y != 1], positions[y == 1])
    ]
    return np.sort(np.concatenate(chosen))


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


@dataclass(frozen=True)
class ThresholdAnalysis:
    """The threshold found on the validation slice (None, with a reason, when there is none)."""

    validation_rows: int
    validation_positive_rows: int
    slice: str
    current_threshold: float
    threshold: float | None = None
    reason: str | None = None
    validation_f1: float | None = None
    on_holdout: ThresholdOutcome | None = None
    # Rows of the stratified samples, when the table is large: (refit, of the earlier rows),
    # (scored, of the validation slice).
    samples: tuple[tuple[int, int], tuple[int, int]] | None = None
    # When the training part is a thinned class-aware sample: the training part's rows the
    # validation slice's rows stand for (each weighed by its class's inverse sampling rate).
    training_part_rows: int | None = None

    def to_json(self) -> JsonDict:
        found: JsonDict = {
            "validation_rows": self.validation_rows,
            "validation_positive_rows": self.validation_positive_rows,
            "slice": self.slice,
            "current_threshold": self.current_threshold,
            "threshold": self.threshold,
        }
        if self.training_part_rows is not None:
            found["validation_rows_in_training_part"] = self.training_part_rows
        if self.samples is not None:
            (fit, earlier), (scored, validation) = self.samples
            found["samples"] = {
                "refit_rows": fit,
                "earlier_rows": earlier,
                "scored_validation_rows": scored,
                "validation_rows": validation,
            }
        if self.on_holdout is None:
            return {**found, "reason": self.reason}
        return {
            **found,
            "validation_f1": self.validation_f1,
            "on_holdout": self.on_holdout.to_json(),
        }


def analyse_threshold(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    times: pd.Series | None,
    params: RetrainParams,
    holdout_scores: np.ndarray,
    y_holdout: np.ndarray,
    class_names: tuple[str, str],
    refit: Refit | None = None,
    sample: TrainingSample | None = None,
) -> ThresholdAnalysis:
    """Find the F1-maximising threshold on a validation slice of the training part.

    A second model is fitted on the earlier rows of the training part and scored on
    the validation slice (never the holdout); on a large table both are stratified
    samples (REFIT_CAP, VALIDATION_CAP). The threshold found is then applied to the
    published model's holdout scores to show what it would predict. `refit` fits that
    second model (by default as params.model and params.resample say; it may raise
    NoRefit). When the training part is a class-aware `sample`, the refit is corrected as
    the model's fit is, and the validation rows count with the sample's weights.
    """
    seed = params.split.seed
    earlier, whole = validation_slice(y_train, times, params.gate.validation_fraction, seed)
    fit = capped_sample(earlier, y_train[earlier], REFIT_CAP, seed)
    val = capped_sample(whole, y_train[whole], VALIDATION_CAP, seed)
    sampled = len(fit) < len(earlier) or len(val) < len(whole)
    stands_for = sample.row_weights(y_train[whole]) if sample else None
    without = ThresholdAnalysis(
        validation_rows=len(whole),
        validation_positive_rows=int(np.sum(y_train[whole] == 1)),
        slice="latest by label time" if times is not None else "stratified random",
        current_threshold=params.model.decision_threshold,
        samples=((len(fit), len(earlier)), (len(val), len(whole))) if sampled else None,
        training_part_rows=None if stands_for is None else round(float(stands_for.sum())),
    )
    if len(np.unique(y_train[fit])) < 2:
        return replace(without, reason="the earlier rows have one class only")
    try:
        if refit is None:
            second = fit_model(
                X_train.iloc[fit], y_train[fit], params.model, params.resample, sample
            )
            refitted = second.model
        else:
            refitted = refit(X_train.iloc[fit], y_train[fit])
    except (InsufficientMinority, NoRefit) as exc:
        return replace(without, reason=str(exc))
    weights = sample.row_weights(y_train[val]) if sample else None
    choice = best_f1_threshold(y_train[val], positive_scores(refitted, X_train.iloc[val]), weights)
    if choice.threshold is None:
        return replace(without, reason=choice.reason)
    return replace(
        without,
        threshold=choice.threshold,
        validation_f1=choice.validation_f1,
        on_holdout=apply_threshold(y_holdout, holdout_scores, choice.threshold, class_names),
    )
