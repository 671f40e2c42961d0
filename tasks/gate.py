"""The gate (halt when the model predicts one class) and the diagnosis of why it collapsed."""

from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas.params import RetrainParams
from schemas.report import Cause, CheckResult

CODE = "single_class_prediction"
# Minority share of the training part below which an unweighted model tends to collapse.
IMBALANCE_SHARE = 0.1
# Holdout ROC-AUC from which the scores are taken to rank the classes.
RANKS_AUC = 0.65
# Holdout ROC-AUC within this distance of 0.5 means no usable signal.
NO_SIGNAL_MARGIN = 0.05
SMALL_MINORITY_ROWS = 30


def judge_predictions(holdout: dict[str, JsonValue]) -> CheckResult:
    """Fail when some class is never predicted on the holdout."""
    counts = holdout["predicted_class_counts"]
    assert isinstance(counts, dict)
    missing = [name for name, n in counts.items() if n == 0]
    rows = holdout["rows"]
    if missing:
        only = next(name for name, n in counts.items() if n)
        return CheckResult(
            code=CODE,
            stage="gate",
            status="fail",
            summary=f"the model predicted only class {only} on all {rows} holdout rows "
            f"(never {', '.join(missing)})",
            metrics={"predicted_class_counts": counts},
        )
    return CheckResult(
        code=CODE,
        stage="gate",
        status="pass",
        summary="the model predicts both classes on the holdout: "
        + ", ".join(f"{name}: {n}" for name, n in counts.items()),
        metrics={"predicted_class_counts": counts},
    )


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

    @property
    def train_minority_share(self) -> float:
        return self.train_minority_count / self.train_rows if self.train_rows else 0.0

    @property
    def train_one_class(self) -> bool:
        return sum(1 for n in self.train_predicted_counts.values() if n) < 2


def diagnose(evidence: Evidence, params: RetrainParams) -> list[Cause]:
    """Rank the likely causes of a one-class model, strongest evidence first."""
    e = evidence
    causes: list[Cause] = []
    share, count = e.train_minority_share, e.train_minority_count
    corrected = e.sampler != "none" or e.class_weight == "balanced"

    if share < IMBALANCE_SHARE:
        # The less the imbalance was corrected for, the likelier it is the cause.
        score = (0.95 if not corrected else 0.4) * (1.0 - share / IMBALANCE_SHARE) ** 0.25
        remedy_params: dict[str, JsonValue] = (
            {"model.class_weight": "balanced"}
            if e.class_weight != "balanced"
            else {"resample.sampler": "smote"}
        )
        how = (
            "neither resampling nor class weights were used"
            if not corrected
            else f"resample.sampler={e.sampler}, model.class_weight={e.class_weight}"
        )
        causes.append(
            Cause(
                cause="extreme_imbalance",
                title="Extreme class imbalance",
                evidence=f"the minority class is {share:.2%} of the training part ({count} of "
                f"{e.train_rows} rows) and {how}",
                remedy="weight the classes (model.class_weight: balanced) or resample the "
                "training part (resample.sampler: smote or random_over)",
                remedy_params=remedy_params,
                metrics={"train_minority_share": round(share, 6), "train_minority_count": count},
                score=round(score, 4),
            )
        )

    auc = e.holdout_roc_auc
    if auc is not None and auc >= RANKS_AUC and e.threshold_for_prior is not None:
        score = min(0.9, 0.5 + (auc - RANKS_AUC))
        causes.append(
            Cause(
                cause="decision_threshold",
                title="Scores rank the classes but none crosses the threshold",
                evidence=f"holdout ROC-AUC is {auc:.3f}, so the scores separate the classes, but "
                f"the highest positive score is {e.holdout_max_score:.3f}, below the decision "
                f"threshold {e.decision_threshold}",
                remedy=f"lower model.decision_threshold to about {e.threshold_for_prior:.4f} "
                "(predicts the training part's positive share), or weight the classes",
                remedy_params={"model.decision_threshold": e.threshold_for_prior},
                metrics={"holdout_roc_auc": auc, "holdout_max_score": e.holdout_max_score},
                score=round(score, 4),
            )
        )

    if auc is not None and abs(auc - 0.5) <= NO_SIGNAL_MARGIN:
        strong_reg = e.model == "logistic_regression" and e.C < 0.1
        remedy = (
            f"weaken regularisation: model.C from {e.C} to 1.0"
            if strong_reg
            else "add informative features, or try model.name: hist_gradient_boosting"
        )
        causes.append(
            Cause(
                cause="no_signal",
                title="No signal: the model cannot tell the classes apart",
                evidence=f"holdout ROC-AUC is {auc:.3f} (chance is 0.5)"
                + (
                    ", and the training part is also predicted as one class"
                    if e.train_one_class
                    else ""
                )
                + (f"; model.C={e.C} is very strong regularisation" if strong_reg else ""),
                remedy=remedy,
                remedy_params={"model.C": 1.0}
                if strong_reg
                else {"model.name": "hist_gradient_boosting"},
                metrics={
                    "holdout_roc_auc": auc,
                    "train_predicted_counts": dict(e.train_predicted_counts),
                },
                score=0.85 if strong_reg else 0.6,
            )
        )
    elif e.train_one_class and e.model == "logistic_regression" and e.C < 0.1:
        causes.append(
            Cause(
                cause="underfitting",
                title="Underfitting: regularisation too strong",
                evidence=f"the training part itself is predicted as one class with model.C={e.C}",
                remedy=f"weaken regularisation: model.C from {e.C} to 1.0",
                remedy_params={"model.C": 1.0},
                metrics={"train_predicted_counts": dict(e.train_predicted_counts)},
                score=0.8,
            )
        )

    if e.train_roc_auc is not None and e.train_roc_auc >= 0.999 and not e.train_one_class:
        causes.append(
            Cause(
                cause="overfitting",
                title="Overfitting: perfect on the training part, one class on the holdout",
                evidence=f"training-part ROC-AUC is {e.train_roc_auc:.4f} while the holdout gets "
                "one class",
                remedy="regularise more (model.C: 0.1, or model.max_depth: 4 with "
                "model.min_samples_leaf: 100) and check the leakage findings",
                remedy_params={"model.C": 0.1, "model.max_depth": 4},
                metrics={"train_roc_auc": e.train_roc_auc},
                score=0.7,
            )
        )

    for check in e.leakage_findings:
        if check.status in ("warn", "fail"):
            causes.append(
                Cause(
                    cause="leakage",
                    title=f"Leakage: {check.code}",
                    evidence=check.summary,
                    remedy="drop the named columns (data.drop) or fix how they are built",
                    remedy_params={"data.drop": list(check.columns)},
                    metrics={"check": check.code},
                    score=0.75 if check.status == "fail" else 0.45,
                )
            )

    if count < SMALL_MINORITY_ROWS:
        causes.append(
            Cause(
                cause="minority_too_small",
                title="Too few minority rows after the split",
                evidence=f"the training part holds {count} row(s) of the minority class",
                remedy="use a longer history, or a smaller split.holdout_fraction",
                remedy_params={
                    "split.holdout_fraction": max(0.1, params.split.holdout_fraction / 2)
                },
                metrics={"train_minority_count": count},
                score=0.65 if count < 10 else 0.5,
            )
        )
    return sorted(causes, key=lambda c: -c.score)


@task(name="gate-predictions", cache_policy=NO_CACHE, persist_result=False)
def gate_task(holdout: dict[str, JsonValue]) -> CheckResult:
    """Judge the holdout predictions."""
    return judge_predictions(holdout)
