"""Evaluation of a fitted model: imbalance-aware metrics on the untouched holdout, the fit on its
own training part, the always-the-majority baseline, and the threshold analysis.

`evaluate` measures all of it into one `Evaluation`; each part becomes JSON only through its
`to_json`, where the flow stores the report's metrics. A metric that is undefined (one class
only) is None, with its reason under `undefined`.
"""

from dataclasses import dataclass, field

import numpy as np
from imblearn.metrics import geometric_mean_score
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import JsonDict
from retrain_guard.tasks.features import FeatureChecks
from retrain_guard.tasks.resampling import ResamplingOutcome
from retrain_guard.tasks.threshold import (
    Predicted,
    Refit,
    SampleCap,
    ThresholdAnalysis,
    analyse_threshold,
    capped_sample,
    rounded,
    threshold_for_share,
    weighted_quantile,
)
from retrain_guard.tasks.training import (
    Parts,
    Trained,
    positive_scores,
    predict_from_scores,
)

HISTOGRAM_BINS = 20
# On a large table the training part is scored on a stratified sample (tasks/threshold.py
# `capped_sample`). Its metrics are the fit's evidence for the diagnosis (memorised, or not
# fitting even its own rows), never a verdict; estimated from 100,000 rows (and at least
# 800 of the rarer class) they tell the same story, while scoring every training row
# again cost as much as the prediction of the holdout four times over (RESULTS.md).
TRAINING_PART_CAP = SampleCap(rows=100_000, rarer_rows=800)


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class (None where undefined), and its true rows."""

    precision: float | None
    recall: float | None
    f1: float | None
    support: int

    def to_json(self) -> JsonDict:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }


@dataclass(frozen=True)
class HoldoutMetrics(Predicted):
    """The model measured on rows it never saw; per-class pairs are (negative, positive)."""

    rows: int
    per_class: tuple[ClassMetrics, ClassMetrics]
    balanced_accuracy: float | None
    mcc: float | None
    geometric_mean: float | None
    roc_auc: float | None
    pr_auc: float | None
    pr_auc_no_skill: float
    confusion: list[list[int]]
    true: tuple[int, int]
    score_quantiles: dict[str, float]
    # Report-only: per true class, score quantiles and a histogram over [0, 1].
    score_distribution: JsonDict
    max_positive_score: float | None
    undefined: dict[str, str]

    @property
    def true_class_counts(self) -> dict[str, int]:
        return dict(zip(self.class_names, self.true, strict=True))

    def to_json(self) -> JsonDict:
        return {
            "rows": self.rows,
            "per_class": {
                name: m.to_json() for name, m in zip(self.class_names, self.per_class, strict=True)
            },
            "balanced_accuracy": self.balanced_accuracy,
            "mcc": self.mcc,
            "geometric_mean": self.geometric_mean,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "pr_auc_no_skill": self.pr_auc_no_skill,
            "confusion_matrix": {
                "labels": list(self.class_names),
                "rows_true_columns_predicted": [list(row) for row in self.confusion],
            },
            "predicted_class_counts": dict(self.predicted_class_counts),
            "true_class_counts": dict(self.true_class_counts),
            "score_quantiles": dict(self.score_quantiles),
            "score_distribution": self.score_distribution,
            "max_positive_score": self.max_positive_score,
            "undefined": dict(self.undefined),
        }


def measure_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray,
    class_names: tuple[str, str],
) -> HoldoutMetrics:
    """Compute the holdout metrics; y is 1 for the positive class (class_names[1]).

    Never warns or raises on one-class input: a metric that is undefined is None and its
    reason is listed under `undefined`.
    """
    undefined: dict[str, str] = {}
    one_class = len(set(np.unique(y_true).tolist())) < 2
    predicted = np.bincount(y_pred.astype("int64"), minlength=2)

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=np.nan
    )
    per_class = []
    for i, name in enumerate(class_names):
        entry = ClassMetrics(
            rounded(precision[i]), rounded(recall[i]), rounded(f1[i]), int(support[i])
        )
        if entry.precision is None:
            undefined[f"precision[{name}]"] = f"no holdout row was predicted {name}"
        if entry.recall is None:
            undefined[f"recall[{name}]"] = f"the holdout has no row of class {name}"
        if entry.f1 is None:
            undefined[f"f1[{name}]"] = "precision or recall is undefined"
        per_class.append(entry)

    if one_class:
        reason = "the holdout has one class only"
        roc_auc = pr_auc = balanced = None
        undefined.update(roc_auc=reason, pr_auc=reason, balanced_accuracy=reason)
    else:
        roc_auc = rounded(roc_auc_score(y_true, scores))
        pr_auc = rounded(average_precision_score(y_true, scores))
        balanced = rounded(balanced_accuracy_score(y_true, y_pred))
    if one_class:
        gmean = None
        undefined["geometric_mean"] = "the holdout has one class only"
    else:
        # Both classes are present, so each recall is defined and imblearn does not warn;
        # a class never predicted gives a recall of 0 and a geometric mean of 0.
        gmean = rounded(geometric_mean_score(y_true, y_pred, labels=[0, 1], average="binary"))
    if one_class or len(set(y_pred.tolist())) < 2:
        mcc = None
        undefined["mcc"] = "one class only in the holdout labels or in the predictions"
    else:
        mcc = rounded(matthews_corrcoef(y_true, y_pred))

    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1])
    positive_share = float(np.mean(y_true == 1)) if len(y_true) else 0.0
    return HoldoutMetrics(
        rows=len(y_true),
        class_names=class_names,
        per_class=(per_class[0], per_class[1]),
        balanced_accuracy=balanced,
        mcc=mcc,
        geometric_mean=gmean,
        roc_auc=roc_auc,
        pr_auc=pr_auc,
        pr_auc_no_skill=round(positive_share, 6),
        confusion=matrix.astype(int).tolist(),
        predicted=(int(predicted[0]), int(predicted[1])),
        true=(int(np.sum(y_true == 0)), int(np.sum(y_true == 1))),
        score_quantiles=score_quantiles(scores),
        score_distribution=score_distribution(y_true, scores, class_names),
        max_positive_score=rounded(float(scores.max())) if len(scores) else None,
        undefined=undefined,
    )


def score_quantiles(scores: np.ndarray) -> dict[str, float]:
    """Summarise the positive-class score distribution."""
    if not len(scores):
        return {}
    qs = np.quantile(scores, [0.0, 0.5, 0.9, 0.99, 1.0])
    return {
        k: round(float(v), 6) for k, v in zip(("min", "p50", "p90", "p99", "max"), qs, strict=True)
    }


def score_distribution(
    y_true: np.ndarray, scores: np.ndarray, class_names: tuple[str, str]
) -> JsonDict:
    """Return per true class the score quantiles and a histogram over [0, 1]."""
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    quantiles: JsonDict = {}
    histogram: JsonDict = {}
    for value, name in enumerate(class_names):
        of_class = scores[y_true == value]
        quantiles[name] = dict(score_quantiles(of_class))
        counts, _ = np.histogram(np.clip(of_class, 0.0, 1.0), bins=edges)
        histogram[name] = [int(c) for c in counts]
    return {
        "bin_edges": [round(float(e), 4) for e in edges],
        "histogram": histogram,
        "quantiles": quantiles,
    }


@dataclass(frozen=True)
class TrainingPartMetrics(Predicted):
    """The model on its own training part (before resampling): the fit's evidence.

    `rows` and `positives` are the whole part's; the scores' measures come from
    `scored_rows` of them (a stratified sample on a large table), and `predicted` is then
    each true class's predicted share in the sample times its rows in the whole part.
    """

    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    accuracy: float | None
    score_spread: float | None
    scored_rows: int

    def to_json(self) -> JsonDict:
        measured: JsonDict = {
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "predicted_class_counts": dict(self.predicted_class_counts),
            "accuracy": self.accuracy,
            "score_spread": self.score_spread,
        }
        if self.scored_rows < self.rows:
            measured["scored_sample"] = {"rows": self.scored_rows, "of_rows": self.rows}
        return measured


def measure_training_part(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray,
    class_names: tuple[str, str],
    whole: tuple[int, int] | None = None,
    weights: np.ndarray | None = None,
) -> TrainingPartMetrics:
    """Measure the model on its own training part (before resampling): the fit's evidence.

    Only what the report keeps of it is computed: the training part is the largest set of
    rows the evaluation scores, and each scikit-learn metric pays for its label checks.
    `whole` is the (negative, positive) rows of the whole part when these rows are a
    stratified sample of it; `weights`, when the classes were sampled at different rates
    (tasks/train_sample.py), make the rows count as the whole part's.
    """
    both = len(np.unique(y_true)) == 2
    sample = (int(np.sum(y_true == 0)), int(np.sum(y_true == 1)))
    whole = whole or sample
    # Predicted positives per true class, scaled from the sample to the whole part.
    predicted_positive = round(
        sum(float(np.sum(y_pred[y_true == c])) * whole[c] / sample[c] for c in (0, 1) if sample[c])
    )
    spread = None
    if len(scores) and weights is None:
        spread = round(float(np.quantile(scores, 0.99) - np.quantile(scores, 0.01)), 6)
    elif len(scores) and weights is not None:
        high, low = (weighted_quantile(scores, q, weights) for q in (0.99, 0.01))
        spread = round(high - low, 6)
    agree = (y_true == y_pred).astype("float64")
    return TrainingPartMetrics(
        rows=sum(whole),
        positives=whole[1],
        class_names=class_names,
        roc_auc=rounded(roc_auc_score(y_true, scores)) if both else None,
        pr_auc=rounded(average_precision_score(y_true, scores, sample_weight=weights))
        if both
        else None,
        predicted=(sum(whole) - predicted_positive, predicted_positive),
        accuracy=round(float(np.average(agree, weights=weights)), 6) if len(y_true) else None,
        score_spread=spread,
        scored_rows=len(y_true),
    )


@dataclass(frozen=True)
class Baseline:
    """Always predicting the training part's most frequent class, against the model."""

    predicts: str
    minority: str
    # None: the holdout is empty.
    accuracy: float | None
    model_accuracy: float | None
    has_minority: bool

    def to_json(self) -> JsonDict:
        if self.accuracy is None or self.model_accuracy is None:
            return {"predicts": self.predicts, "undefined": "the holdout is empty"}
        # Always one class: each class recall is 1 or 0, so balanced accuracy is 0.5 and
        # the minority recall and geometric mean are 0 whenever the minority is present.
        zero = 0.0 if self.has_minority else None
        reason = f"the holdout has no row of class {self.minority}"
        return {
            "predicts": self.predicts,
            "accuracy": round(self.accuracy, 6),
            "balanced_accuracy": 0.5 if self.has_minority else None,
            "minority_recall": zero,
            "geometric_mean": zero,
            "model_accuracy": round(self.model_accuracy, 6),
            "model_accuracy_gain": round(self.model_accuracy - self.accuracy, 6),
            "undefined": {}
            if self.has_minority
            else {
                name: reason for name in ("balanced_accuracy", "minority_recall", "geometric_mean")
            },
        }


def measure_baseline(
    y_true: np.ndarray, y_pred: np.ndarray, majority: int, class_names: tuple[str, str]
) -> Baseline:
    """Compare the model with always predicting the training part's most frequent class.

    Args:
        y_true: holdout labels (1 = positive).
        y_pred: the model's holdout predictions.
        majority: the most frequent class of the training part (0 or 1).
        class_names: (negative, positive) names.
    """
    minority = 1 - majority
    empty = not len(y_true)
    return Baseline(
        predicts=class_names[majority],
        minority=class_names[minority],
        accuracy=None if empty else float(np.mean(y_true == majority)),
        model_accuracy=None if empty else float(np.mean(y_true == y_pred)),
        has_minority=bool(np.any(y_true == minority)),
    )


@dataclass(frozen=True)
class Evaluation:
    """Everything measured about the fitted model, for the gate, the diagnosis and the report."""

    features: list[str]
    resampling: ResamplingOutcome
    holdout: HoldoutMetrics
    training_part: TrainingPartMetrics
    baseline: Baseline
    threshold: ThresholdAnalysis
    # The score above which the training part's positive share would be predicted positive.
    threshold_for_prior: float | None
    # The model's positive-class score of each holdout row, for the comparison.
    holdout_scores: np.ndarray = field(repr=False, compare=False)

    def to_json(self, checked: FeatureChecks) -> JsonDict:
        """Return the report's metrics of training and evaluation."""
        return {
            "resampling": self.resampling.describe(),
            "features": list(self.features),
            "holdout": self.holdout.to_json(),
            "baseline": self.baseline.to_json(),
            "threshold_analysis": self.threshold.to_json(),
            "training_part": self.training_part.to_json(),
            "single_feature_roc_auc": checked.separation.to_json(),
            "predicted_class_counts": dict(self.holdout.predicted_class_counts),
        }


def evaluate(
    trained: Trained, parts: Parts, params: RetrainParams, refit: Refit | None = None
) -> Evaluation:
    """Score the holdout and the training part, and measure the model on both; `refit`
    fits the threshold analysis' second model (tasks/threshold.py)."""
    names = parts.class_names
    holdout_scores = positive_scores(trained.model, parts.X_holdout)
    holdout_pred = predict_from_scores(trained.model, holdout_scores)
    y_train = parts.y_train
    scored = capped_sample(np.arange(len(y_train)), y_train, TRAINING_PART_CAP, params.split.seed)
    train_scores = positive_scores(trained.model, parts.X_train.iloc[scored])
    train_pred = predict_from_scores(trained.model, train_scores)
    # Counts and shares of the whole training part, also when the model saw a sample of it.
    sample = parts.sample
    whole = sample.of_rows if sample else (int(np.sum(y_train == 0)), int(np.sum(y_train == 1)))
    positive_share = (
        sample.positive_share if sample else float(np.mean(y_train)) if len(y_train) else 0.0
    )
    majority = int(positive_share > 0.5)
    train_weights = sample.row_weights(y_train[scored]) if sample else None
    return Evaluation(
        features=parts.features,
        resampling=ResamplingOutcome.of(trained, params.resample, names),
        holdout=measure_predictions(parts.y_holdout, holdout_pred, holdout_scores, names),
        training_part=measure_training_part(
            y_train[scored], train_pred, train_scores, names, whole, train_weights
        ),
        baseline=measure_baseline(parts.y_holdout, holdout_pred, majority, names),
        threshold=analyse_threshold(
            parts.X_train,
            parts.y_train,
            parts.train_times,
            params,
            holdout_scores,
            parts.y_holdout,
            names,
            refit,
            sample,
        ),
        threshold_for_prior=threshold_for_share(train_scores, positive_share, train_weights),
        holdout_scores=holdout_scores,
    )


evaluate_task = task(name="evaluate-model", cache_policy=NO_CACHE, persist_result=False)(evaluate)
