"""The gate: halt when the model predicts one class, nearly one class, no better than chance,
or suspiciously perfectly. The diagnosis of why lives in tasks/diagnosis.py."""

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.params import GateParams
from retrain_guard.schemas.report import CheckResult, JsonDict
from retrain_guard.tasks.evaluation import HoldoutMetrics
from retrain_guard.tasks.features import Separation
from retrain_guard.tasks.registry import check

CODE = "single_class_prediction"
NEAR = "near_single_class_prediction"
LIFT = "pr_auc_lift"
RECALL = "minority_recall"
PERFECT = "suspiciously_perfect"


def judge_predictions(holdout: HoldoutMetrics) -> CheckResult:
    """Fail when some class is never predicted on the holdout."""
    counts = holdout.predicted_class_counts
    metrics: JsonDict = {"predicted_class_counts": dict(counts)}
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        only = next(name for name, n in counts.items() if n)
        summary = (
            f"the model predicted only class {only} on all {holdout.rows} holdout rows "
            f"(never {', '.join(missing)})"
        )
        return check(CODE).result("fail", summary, metrics=metrics)
    summary = "the model predicts both classes on the holdout: " + ", ".join(
        f"{name}: {n}" for name, n in counts.items()
    )
    return check(CODE).result("pass", summary, metrics=metrics)


def _off(code: str, setting: str) -> CheckResult:
    # A check switched off did not run: it must not read as passed.
    return check(code).result("not_run", f"not run: switched off ({setting} is 0)")


@dataclass(frozen=True)
class ClassRatio:
    """How often the model predicted one class on the holdout, against how often it is true."""

    name: str
    predicted: int
    true: int

    @property
    def ratio(self) -> float | None:
        return self.predicted / self.true if self.true else None

    def describe(self) -> JsonDict:
        ratio = self.ratio
        return {
            "predicted": self.predicted,
            "true": self.true,
            "ratio": None if ratio is None else round(ratio, 6),
        }

    def in_words(self) -> str:
        return (
            f"the model predicted class {self.name} for {self.predicted} holdout row(s), while "
            f"{self.true} truly are {self.name} (ratio {self.ratio or 0.0:.2f})"
        )


def measure_class_ratios(holdout: HoldoutMetrics) -> list[ClassRatio]:
    """Return, per class, the holdout rows predicted as it and the rows truly of it."""
    return [
        ClassRatio(name, predicted, true)
        for name, predicted, true in zip(
            holdout.class_names, holdout.predicted, holdout.true, strict=True
        )
    ]


def judge_near_collapse(holdout: HoldoutMetrics, gate: GateParams) -> CheckResult:
    """Fail when a class is predicted for far fewer holdout rows than truly belong to it.

    Each class present in the holdout is judged by predicted / true rows against
    gate.min_predicted_to_true_ratio. A class with fewer than gate.min_true_rows_for_ratio
    true rows cannot halt the run (a handful of rows make the ratio noisy): a low ratio
    there warns. A class predicted for no row at all is single_class_prediction's finding
    and fails here too when it has enough rows.
    """
    threshold, min_rows = gate.min_predicted_to_true_ratio, gate.min_true_rows_for_ratio
    if threshold == 0:
        return _off(NEAR, "gate.min_predicted_to_true_ratio")
    ratios = [r for r in measure_class_ratios(holdout) if r.true]
    metrics: JsonDict = {
        "classes": {r.name: r.describe() for r in ratios},
        "threshold": threshold,
        "min_true_rows": min_rows,
    }
    near = check(NEAR)
    if not ratios:
        summary = "not run: the holdout has no true rows to compare the predictions with"
        return near.result("not_run", summary, metrics=metrics)
    low = [r for r in ratios if (r.ratio or 0.0) < threshold]
    halting = [r for r in low if r.true >= min_rows]
    # The class named is the one that decides the verdict: the lowest ratio among those
    # that halt, else among the low ones, else overall.
    shown = min(halting or low or ratios, key=lambda r: r.ratio or 0.0)
    metrics.update({"class": shown.name, **shown.describe()})
    setting = f"gate.min_predicted_to_true_ratio {threshold}"
    if halting:
        summary = f"nearly one class: {shown.in_words()}, below {setting}"
        return near.result("fail", summary, metrics=metrics)
    if low:
        summary = (
            f"{shown.in_words()}, below {setting}; with fewer than "
            f"gate.min_true_rows_for_ratio {min_rows} true rows the ratio is too noisy to "
            "halt on"
        )
        return near.result("warn", summary, metrics=metrics)
    summary = (
        f"every class is predicted for at least {threshold} times as many holdout rows "
        "as truly belong to it: "
        + "; ".join(f"class {r.name}: {r.predicted} predicted of {r.true} true" for r in ratios)
    )
    return near.result("pass", summary, metrics=metrics)


def _at_least(
    code: str, measured: str, value: float, setting: str, minimum: float, metrics: JsonDict
) -> CheckResult:
    """Fail when `value` is below the `setting`'s `minimum`; the summary says which."""
    failed = value < minimum
    return check(code).result(
        "fail" if failed else "pass",
        f"{measured} ({'below' if failed else 'at least'} {setting} {minimum})",
        metrics={**metrics, "threshold": minimum},
    )


def judge_pr_auc_lift(holdout: HoldoutMetrics, gate: GateParams) -> CheckResult:
    """Fail when PR-AUC is not enough times its no-skill baseline (the positive share)."""
    if gate.min_pr_auc_lift == 0:
        return _off(LIFT, "gate.min_pr_auc_lift")
    pr_auc, no_skill = holdout.pr_auc, holdout.pr_auc_no_skill
    if pr_auc is None or not no_skill:
        # Without both classes in the holdout there is nothing to judge: not run.
        return check(LIFT).result(
            "not_run",
            "not run: PR-AUC lift is undefined, the holdout lacks a class",
            metrics={"pr_auc": pr_auc, "pr_auc_no_skill": no_skill},
        )
    lift = pr_auc / no_skill
    return _at_least(
        LIFT,
        f"holdout PR-AUC {pr_auc:.4f} is {lift:.2f} times the no-skill baseline {no_skill:.4f}",
        lift,
        "gate.min_pr_auc_lift",
        gate.min_pr_auc_lift,
        {"pr_auc": pr_auc, "pr_auc_no_skill": no_skill, "lift": round(lift, 6)},
    )


def judge_minority_recall(holdout: HoldoutMetrics, gate: GateParams) -> CheckResult:
    """Fail when the holdout recall of the minority (positive) class is below the minimum."""
    if gate.min_minority_recall == 0:
        return _off(RECALL, "gate.min_minority_recall")
    positive, recall = holdout.class_names[1], holdout.per_class[1].recall
    if recall is None:
        return check(RECALL).result(
            "not_run",
            f"not run: recall of {positive} is undefined, the holdout has no row of it",
            metrics={"recall": None},
        )
    return _at_least(
        RECALL,
        f"holdout recall of minority class {positive} is {recall:.4f}",
        recall,
        "gate.min_minority_recall",
        gate.min_minority_recall,
        {"recall": recall},
    )


def judge_perfection(
    holdout: HoldoutMetrics,
    gate: GateParams,
    leakage_findings: list[CheckResult],
    separation: Separation,
) -> CheckResult:
    """Flag a holdout ROC-AUC at or above gate.max_roc_auc as probable leakage."""
    auc = holdout.roc_auc
    if auc is None or auc < gate.max_roc_auc:
        return check(PERFECT).result(
            "pass",
            f"holdout ROC-AUC {auc} is below gate.max_roc_auc {gate.max_roc_auc}"
            if auc is not None
            else "holdout ROC-AUC is undefined (the holdout lacks a class)",
            metrics={"roc_auc": auc, "threshold": gate.max_roc_auc},
        )
    findings = [c for c in leakage_findings if c.status in ("warn", "fail")]
    separating = separation.separating
    pointers = [f"{c.code}: {', '.join(c.columns) or c.summary}" for c in findings]
    if separating:
        pointers.append("columns that alone separate the classes: " + ", ".join(separating))
    return check(PERFECT).result(
        gate.suspiciously_perfect,
        f"holdout ROC-AUC {auc:.4f} >= gate.max_roc_auc {gate.max_roc_auc}: too good "
        "to be true, probably leakage; "
        + ("see " + "; ".join(pointers) if pointers else "no leakage check named a column"),
        columns=sorted({*separating, *(col for c in findings for col in c.columns)}),
        metrics={
            "roc_auc": auc,
            "threshold": gate.max_roc_auc,
            "leakage_findings": [c.code for c in findings],
            "separating_columns": dict(separating),
        },
    )


def judge_holdout(
    holdout: HoldoutMetrics,
    gate: GateParams,
    leakage_findings: list[CheckResult],
    separation: Separation,
) -> list[CheckResult]:
    """Run every gate check: one class predicted, near-collapse, PR-AUC lift, recall, perfection."""
    return [
        judge_predictions(holdout),
        judge_near_collapse(holdout, gate),
        judge_pr_auc_lift(holdout, gate),
        judge_minority_recall(holdout, gate),
        judge_perfection(holdout, gate, leakage_findings, separation),
    ]


gate_task = task(name="gate-holdout", cache_policy=NO_CACHE, persist_result=False)(judge_holdout)
