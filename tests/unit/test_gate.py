from typing import Any

import pytest

from schemas.params import GateParams
from schemas.report import CheckResult
from tasks.gate import (
    judge_holdout,
    judge_minority_recall,
    judge_near_collapse,
    judge_perfection,
    judge_pr_auc_lift,
    judge_predictions,
)


def holdout(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rows": 1000,
        "predicted_class_counts": {"0": 900, "1": 100},
        "per_class": {"0": {"recall": 0.9}, "1": {"recall": 0.6}},
        "roc_auc": 0.8,
        "pr_auc": 0.1,
        "pr_auc_no_skill": 0.02,
    }
    return {**base, **overrides}


def test_single_class_prediction_fails_when_a_class_is_never_predicted() -> None:
    check = judge_predictions(holdout(predicted_class_counts={"0": 1000, "1": 0}))
    assert check.status == "fail" and "only class 0" in check.summary


def test_default_gate_passes_a_reasonable_model() -> None:
    checks = judge_holdout(holdout(), GateParams(), "1", [], {})
    # near-collapse and minority recall are off by default: reported as not run.
    assert [c.status for c in checks] == ["pass", "not_run", "pass", "not_run", "pass"]
    assert [c.code for c in checks] == [
        "single_class_prediction",
        "near_single_class_prediction",
        "pr_auc_lift",
        "minority_recall",
        "suspiciously_perfect",
    ]


def test_near_collapse_fails_below_min_predicted_share() -> None:
    gate = GateParams(min_predicted_share=0.01)
    check = judge_near_collapse(holdout(predicted_class_counts={"0": 995, "1": 5}), gate)
    assert check.status == "fail" and "class 1 is predicted for 0.50%" in check.summary
    assert judge_near_collapse(holdout(), gate).status == "pass"


def test_pr_auc_lift_fails_below_the_minimum_ratio() -> None:
    check = judge_pr_auc_lift(holdout(pr_auc=0.03), GateParams(min_pr_auc_lift=2.0))
    assert check.status == "fail" and check.metrics["lift"] == pytest.approx(1.5)
    off = judge_pr_auc_lift(holdout(pr_auc=0.03), GateParams(min_pr_auc_lift=0))
    assert off.status == "not_run"


def test_pr_auc_lift_is_not_run_when_undefined() -> None:
    check = judge_pr_auc_lift(holdout(pr_auc=None), GateParams())
    assert check.status == "not_run" and "undefined" in check.summary


def test_minority_recall_fails_below_the_minimum() -> None:
    check = judge_minority_recall(holdout(), GateParams(min_minority_recall=0.7), "1")
    assert check.status == "fail" and "0.6000" in check.summary


def test_suspiciously_perfect_halts_and_points_to_the_leakage_findings() -> None:
    finding = CheckResult(
        code="temporal_leakage",
        stage="leakage",
        status="warn",
        columns=["chargeback_at"],
        summary="dates after the label time",
    )
    check = judge_perfection(holdout(roc_auc=1.0), GateParams(), [finding], {"amount": 0.999})
    assert check.status == "fail"
    assert check.columns == ["amount", "chargeback_at"]
    assert "temporal_leakage: chargeback_at" in check.summary
    assert "alone separate the classes: amount" in check.summary


def test_suspiciously_perfect_is_configurable() -> None:
    assert judge_perfection(holdout(roc_auc=0.9995), GateParams(), [], {}).status == "fail"
    relaxed = GateParams(max_roc_auc=1.0)
    assert judge_perfection(holdout(roc_auc=0.9995), relaxed, [], {}).status == "pass"
    warn_only = GateParams(suspiciously_perfect="warn")
    assert judge_perfection(holdout(roc_auc=1.0), warn_only, [], {}).status == "warn"
