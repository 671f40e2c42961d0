"""The gate: halt when the model predicts one class, nearly one class, no better than chance,
or suspiciously perfectly. The diagnosis of why lives in tasks/diagnosis.py."""

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from schemas.params import GateParams
from schemas.report import CheckResult
from tasks.features import SEPARATES_AUC

CODE = "single_class_prediction"
NEAR = "near_single_class_prediction"
LIFT = "pr_auc_lift"
RECALL = "minority_recall"
PERFECT = "suspiciously_perfect"


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


def _off(code: str, setting: str) -> CheckResult:
    # A check switched off did not run: it must not read as passed.
    return CheckResult(
        code=code,
        stage="gate",
        status="not_run",
        summary=f"not run: switched off ({setting} is 0)",
        metrics={},
    )


@dataclass(frozen=True)
class ClassRatio:
    """How often the model predicted one class on the holdout, against how often it is true."""

    name: str
    predicted: int
    true: int

    @property
    def ratio(self) -> float | None:
        return self.predicted / self.true if self.true else None

    def describe(self) -> dict[str, JsonValue]:
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


def measure_class_ratios(holdout: dict[str, JsonValue]) -> list[ClassRatio]:
    """Return, per class, the holdout rows predicted as it and the rows truly of it."""
    predicted, true = holdout["predicted_class_counts"], holdout.get("true_class_counts")
    assert isinstance(predicted, dict)
    true = true if isinstance(true, dict) else {}
    return [
        ClassRatio(str(name), int(n), int(true.get(name, 0)))  # type: ignore[arg-type]
        for name, n in predicted.items()
    ]


def judge_near_collapse(holdout: dict[str, JsonValue], gate: GateParams) -> CheckResult:
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
    metrics: dict[str, JsonValue] = {
        "classes": {r.name: r.describe() for r in ratios},
        "threshold": threshold,
        "min_true_rows": min_rows,
    }
    if not ratios:
        return CheckResult(
            code=NEAR,
            stage="gate",
            status="not_run",
            summary="not run: the holdout has no true rows to compare the predictions with",
            metrics=metrics,
        )
    low = [r for r in ratios if (r.ratio or 0.0) < threshold]
    halting = [r for r in low if r.true >= min_rows]
    # The class named is the one that decides the verdict: the lowest ratio among those
    # that halt, else among the low ones, else overall.
    shown = min(halting or low or ratios, key=lambda r: r.ratio or 0.0)
    metrics.update({"class": shown.name, **shown.describe()})
    setting = f"gate.min_predicted_to_true_ratio {threshold}"
    if halting:
        return CheckResult(
            code=NEAR,
            stage="gate",
            status="fail",
            summary=f"nearly one class: {shown.in_words()}, below {setting}",
            metrics=metrics,
        )
    if low:
        return CheckResult(
            code=NEAR,
            stage="gate",
            status="warn",
            summary=f"{shown.in_words()}, below {setting}; with fewer than "
            f"gate.min_true_rows_for_ratio {min_rows} true rows the ratio is too noisy to "
            "halt on",
            metrics=metrics,
        )
    return CheckResult(
        code=NEAR,
        stage="gate",
        status="pass",
        summary=f"every class is predicted for at least {threshold} times as many holdout rows "
        "as truly belong to it: "
        + "; ".join(f"class {r.name}: {r.predicted} predicted of {r.true} true" for r in ratios),
        metrics=metrics,
    )


def judge_pr_auc_lift(holdout: dict[str, JsonValue], gate: GateParams) -> CheckResult:
    """Fail when PR-AUC is not enough times its no-skill baseline (the positive share)."""
    if gate.min_pr_auc_lift == 0:
        return _off(LIFT, "gate.min_pr_auc_lift")
    pr_auc, no_skill = holdout.get("pr_auc"), holdout.get("pr_auc_no_skill")
    if not isinstance(pr_auc, int | float) or not isinstance(no_skill, int | float) or not no_skill:
        return CheckResult(
            code=LIFT,
            stage="gate",
            # Without both classes in the holdout there is nothing to judge: not run.
            status="not_run",
            summary="not run: PR-AUC lift is undefined, the holdout lacks a class",
            metrics={"pr_auc": pr_auc, "pr_auc_no_skill": no_skill},
        )
    lift = pr_auc / no_skill
    failed = lift < gate.min_pr_auc_lift
    return CheckResult(
        code=LIFT,
        stage="gate",
        status="fail" if failed else "pass",
        summary=f"holdout PR-AUC {pr_auc:.4f} is {lift:.2f} times the no-skill baseline "
        f"{no_skill:.4f} ({'below' if failed else 'at least'} gate.min_pr_auc_lift "
        f"{gate.min_pr_auc_lift})",
        metrics={
            "pr_auc": pr_auc,
            "pr_auc_no_skill": no_skill,
            "lift": round(lift, 6),
            "threshold": gate.min_pr_auc_lift,
        },
    )


def judge_minority_recall(
    holdout: dict[str, JsonValue], gate: GateParams, positive: str
) -> CheckResult:
    """Fail when the holdout recall of the minority (positive) class is below the minimum."""
    if gate.min_minority_recall == 0:
        return _off(RECALL, "gate.min_minority_recall")
    per_class = holdout["per_class"]
    assert isinstance(per_class, dict)
    entry = per_class.get(positive)
    recall = entry.get("recall") if isinstance(entry, dict) else None
    if not isinstance(recall, int | float):
        return CheckResult(
            code=RECALL,
            stage="gate",
            status="not_run",
            summary=f"not run: recall of {positive} is undefined, the holdout has no row of it",
            metrics={"recall": None},
        )
    failed = recall < gate.min_minority_recall
    return CheckResult(
        code=RECALL,
        stage="gate",
        status="fail" if failed else "pass",
        summary=f"holdout recall of minority class {positive} is {recall:.4f} "
        f"({'below' if failed else 'at least'} gate.min_minority_recall "
        f"{gate.min_minority_recall})",
        metrics={"recall": recall, "threshold": gate.min_minority_recall},
    )


def judge_perfection(
    holdout: dict[str, JsonValue],
    gate: GateParams,
    leakage_findings: list[CheckResult],
    separation: dict[str, float],
) -> CheckResult:
    """Flag a holdout ROC-AUC at or above gate.max_roc_auc as probable leakage."""
    auc = holdout.get("roc_auc")
    if not isinstance(auc, int | float) or auc < gate.max_roc_auc:
        return CheckResult(
            code=PERFECT,
            stage="gate",
            status="pass",
            summary=f"holdout ROC-AUC {auc} is below gate.max_roc_auc {gate.max_roc_auc}"
            if auc is not None
            else "holdout ROC-AUC is undefined (the holdout lacks a class)",
            metrics={"roc_auc": auc, "threshold": gate.max_roc_auc},
        )
    findings = [c for c in leakage_findings if c.status in ("warn", "fail")]
    separating = [c for c, a in separation.items() if a >= SEPARATES_AUC]
    pointers = [f"{c.code}: {', '.join(c.columns) or c.summary}" for c in findings]
    if separating:
        pointers.append("columns that alone separate the classes: " + ", ".join(separating))
    return CheckResult(
        code=PERFECT,
        stage="gate",
        status=gate.suspiciously_perfect,
        columns=sorted({*separating, *(col for c in findings for col in c.columns)}),
        summary=f"holdout ROC-AUC {auc:.4f} >= gate.max_roc_auc {gate.max_roc_auc}: too good "
        "to be true, probably leakage; "
        + ("see " + "; ".join(pointers) if pointers else "no leakage check named a column"),
        metrics={
            "roc_auc": auc,
            "threshold": gate.max_roc_auc,
            "leakage_findings": [c.code for c in findings],
            "separating_columns": {c: separation[c] for c in separating},
        },
    )


def judge_holdout(
    holdout: dict[str, JsonValue],
    gate: GateParams,
    positive: str,
    leakage_findings: list[CheckResult],
    separation: dict[str, float],
) -> list[CheckResult]:
    """Run every gate check: one class predicted, near-collapse, PR-AUC lift, recall, perfection."""
    return [
        judge_predictions(holdout),
        judge_near_collapse(holdout, gate),
        judge_pr_auc_lift(holdout, gate),
        judge_minority_recall(holdout, gate, positive),
        judge_perfection(holdout, gate, leakage_findings, separation),
    ]


@task(name="gate-holdout", cache_policy=NO_CACHE, persist_result=False)
def gate_holdout_task(
    holdout: dict[str, JsonValue],
    gate: GateParams,
    positive: str,
    leakage_findings: list[CheckResult],
    separation: dict[str, float],
) -> list[CheckResult]:
    """Judge the holdout results against every gate."""
    return judge_holdout(holdout, gate, positive, leakage_findings, separation)
