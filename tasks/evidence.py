"""The evidence of a collapse: what a run measured that the diagnosis rules read.

`evidence_from_run` gathers it from the run's typed results (tasks/evaluation.py,
tasks/features.py) and its leakage findings; tasks/diagnosis.py ranks the causes.
"""

import math
from dataclasses import dataclass, field

from pydantic import JsonValue

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.evaluation import Evaluation
from retrain_guard.tasks.features import FeatureChecks

# Holdout ROC-AUC within this distance of 0.5 (or two standard errors of a chance AUC on a
# holdout this size, if wider) means no usable signal.
NO_SIGNAL_MARGIN = 0.05


def _short(predicted: int, true: int, ratio: float) -> bool:
    # A class with true rows, predicted for none of them or for fewer than `ratio` of them.
    return true > 0 and (predicted == 0 or predicted < ratio * true)


@dataclass(frozen=True)
class Evidence:
    """What a run measured that can explain a collapse."""

    train_minority_count: int
    train_rows: int
    sampler: str
    class_weight: str
    model: str
    C: float
    decision_threshold: float
    holdout_roc_auc: float | None
    holdout_max_score: float | None
    threshold_for_prior: float | None
    train_predicted_counts: dict[str, int]
    train_roc_auc: float | None
    train_accuracy: float | None
    leakage_findings: list[CheckResult] = field(default_factory=list)
    gate_code: str = "single_class_prediction"
    holdout_min_score: float | None = None
    train_score_spread: float | None = None
    best_threshold: float | None = None
    best_threshold_holdout_counts: dict[str, int] = field(default_factory=dict)
    features: int = 0
    empty_features: list[str] = field(default_factory=list)
    constant_features: list[str] = field(default_factory=list)
    # The features that alone separate the training part (at leakage.target_auc_fail).
    separating: dict[str, float] = field(default_factory=dict)
    # The tree models' settings that can regularise hard (None where not known).
    forest_min_samples_leaf: int | None = None
    learning_rate: float | None = None
    # model.name custom: the estimator's class and its keyword arguments (model.params).
    estimator: str | None = None
    estimator_params: dict[str, JsonValue] = field(default_factory=dict)
    holdout_class_counts: tuple[int, int] = (0, 0)
    # (negative, positive) holdout rows predicted as each class, and the gate's ratio of
    # predicted to true rows below which a class counts as nearly never predicted.
    holdout_predicted_counts: tuple[int, int] = (0, 0)
    min_predicted_to_true_ratio: float = 0.0

    @property
    def train_minority_share(self) -> float:
        return self.train_minority_count / self.train_rows if self.train_rows else 0.0

    @property
    def train_one_class(self) -> bool:
        """The training part is predicted as one class, or one class (nearly) never."""
        predicted = list(self.train_predicted_counts.values())
        if sum(1 for n in predicted if n) < 2:
            return True
        true = (self.train_rows - self.train_minority_count, self.train_minority_count)
        return len(predicted) == 2 and any(
            _short(p, t, self.min_predicted_to_true_ratio)
            for p, t in zip(predicted, true, strict=True)
        )

    def holdout_short(self, positive: bool) -> bool:
        """A class of the holdout is (nearly) never predicted: 0 rows, or too few for its truth."""
        i = int(positive)
        return _short(
            self.holdout_predicted_counts[i],
            self.holdout_class_counts[i],
            self.min_predicted_to_true_ratio,
        )

    @property
    def chance_margin(self) -> float:
        """Half-width around 0.5 within which a holdout ROC-AUC is indistinguishable from chance."""
        negatives, positives = self.holdout_class_counts
        if not negatives or not positives:
            return NO_SIGNAL_MARGIN
        # Hanley & McNeil: the standard error of an AUC of 0.5 with these class sizes.
        se = math.sqrt((negatives + positives + 1) / (12.0 * negatives * positives))
        return max(NO_SIGNAL_MARGIN, 2.0 * se)

    @property
    def unusable_features(self) -> list[str]:
        return [*self.empty_features, *self.constant_features]


def evidence_from_run(
    params: RetrainParams,
    evaluation: Evaluation,
    checked: FeatureChecks,
    gate_code: str,
    leakage_findings: list[CheckResult],
) -> Evidence:
    """Collect the measured numbers the diagnosis rules read."""
    holdout, on_train, threshold = (
        evaluation.holdout,
        evaluation.training_part,
        evaluation.threshold,
    )
    model = params.model
    return Evidence(
        train_minority_count=on_train.positives,
        train_rows=on_train.rows,
        sampler=params.resample.sampler,
        # What the estimator was given: a custom one may take no class_weight, or set its own.
        class_weight=evaluation.resampling.class_weight,
        model=model.name,
        C=model.C,
        decision_threshold=model.decision_threshold,
        holdout_roc_auc=holdout.roc_auc,
        holdout_max_score=holdout.max_positive_score,
        holdout_min_score=holdout.score_quantiles.get("min"),
        threshold_for_prior=evaluation.threshold_for_prior,
        train_predicted_counts=on_train.predicted_class_counts,
        train_roc_auc=on_train.roc_auc,
        train_accuracy=on_train.accuracy,
        train_score_spread=on_train.score_spread,
        leakage_findings=leakage_findings,
        gate_code=gate_code,
        best_threshold=threshold.threshold,
        best_threshold_holdout_counts=threshold.on_holdout.predicted_class_counts
        if threshold.on_holdout
        else {},
        features=checked.constant.features,
        empty_features=list(checked.constant.empty),
        constant_features=list(checked.constant.constant),
        separating=checked.separation.separating,
        holdout_class_counts=holdout.true,
        holdout_predicted_counts=holdout.predicted,
        min_predicted_to_true_ratio=params.gate.min_predicted_to_true_ratio,
        forest_min_samples_leaf=model.forest_min_samples_leaf,
        learning_rate=model.learning_rate,
        estimator=model.estimator,
        estimator_params=dict(model.params),
    )
