from typing import Any

import pytest

from retrain_guard.schemas.params import GateParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.evaluation import ClassMetrics, HoldoutMetrics
from retrain_guard.tasks.features import Separation
from retrain_guard.tasks.gate import (
    judge_holdout,
    judge_minority_recall,
    judge_near_collapse,
    judge_perfection,
    judge_pr_auc_lift,
    judge_predictions,
)

NONE = Separation({}, 0.99)


def holdout(**overrides: Any) -> HoldoutMetrics:
    """Holdout metrics; `predicted` and `true` are (class 0, class 1) row counts."""
    base: dict[str, Any] = {
        "rows": 1000,
        "class_names": ("0", "1"),
        "per_class": (ClassMetrics(None, 0.9, None, 950), ClassMetrics(None, 0.6, None, 50)),
        "balanced_accuracy": None,
        "mcc": None,
        "geometric_mean": None,
        "roc_auc": 0.8,
        "pr_auc": 0.1,
        "pr_auc_no_skill": 0.02,
        "confusion": [],
        "predicted": (900, 100),
        "true": (950, 50),
        "score_quantiles": {},
        "score_distribution": {},
        "max_positive_score": None,
        "undefined": {},
    }
    return HoldoutMetrics(**{**base, **overrides})


def test_single_class_prediction_fails_when_a_class_is_never_predicted() -> None:
    check = judge_predictions(holdout(predicted=(1000, 0)))
    assert check.status == "fail" and "only class 0" in check.summary


def test_default_gate_passes_a_reasonable_model() -> None:
    checks = judge_holdout(holdout(), GateParams(), [], NONE)
    # minority recall is off by default: reported as not run.
    assert [c.status for c in checks] == ["pass", "pass", "pass", "not_run", "pass"]
    assert [c.code for c in checks] == [
        "single_class_prediction",
        "near_single_class_prediction",
        "pr_auc_lift",
        "minority_recall",
        "suspiciously_perfect",
    ]


def counts(predicted: tuple[int, int], true: tuple[int, int]) -> HoldoutMetrics:
    """A holdout with these (class 0, class 1) predicted and true row counts."""
    return holdout(rows=sum(true), predicted=predicted, true=true)


def test_the_reported_near_collapse_halts_at_the_default() -> None:
    # Issue 9: the minority predicted for 1 of 3,617 holdout rows, which hold 49 of it.
    check = judge_near_collapse(counts((3616, 1), (3568, 49)), GateParams())
    assert check.status == "fail"
    assert check.metrics["class"] == "1"
    assert (check.metrics["predicted"], check.metrics["true"]) == (1, 49)
    assert check.metrics["ratio"] == pytest.approx(1 / 49, abs=1e-6)
    assert check.metrics["threshold"] == 0.25
    assert "predicted class 1 for 1 holdout row(s), while 49 truly are 1" in check.summary
    assert "below gate.min_predicted_to_true_ratio 0.25" in check.summary


@pytest.mark.parametrize(
    ("predicted", "true"),
    [
        ((1658, 442), (2057, 43)),  # balanced class weights on the loans: many more predicted
        ((2066, 41), (2064, 42)),  # an accurate unweighted model: about as many as true
        ((2052, 12), (2016, 48)),  # exactly at the ratio: a quarter of the true rows
    ],
    ids=["over-predicts", "matches", "at-the-ratio"],
)
def test_honest_prediction_counts_pass_at_the_default(
    predicted: tuple[int, int], true: tuple[int, int]
) -> None:
    check = judge_near_collapse(counts(predicted, true), GateParams())
    assert check.status == "pass", check.summary
    assert f"class 1: {predicted[1]} predicted of {true[1]} true" in check.summary


def test_one_row_short_of_the_ratio_halts() -> None:
    assert judge_near_collapse(counts((2053, 11), (2016, 48)), GateParams()).status == "fail"


def test_a_majority_class_predicted_far_too_rarely_halts_naming_it() -> None:
    check = judge_near_collapse(counts((100, 900), (950, 50)), GateParams())
    assert check.status == "fail" and check.metrics["class"] == "0"
    assert "predicted class 0 for 100 holdout row(s), while 950 truly are 0" in check.summary


def test_near_collapse_switched_off_is_not_run() -> None:
    off = GateParams(min_predicted_to_true_ratio=0)
    check = judge_near_collapse(counts((3616, 1), (3568, 49)), off)
    assert check.status == "not_run"
    assert "gate.min_predicted_to_true_ratio is 0" in check.summary


def test_too_few_true_rows_only_warn_and_say_why() -> None:
    # 1 predicted of 6 true: a low ratio, but 6 rows are too few to halt on.
    few = counts((993, 1), (994, 6))
    check = judge_near_collapse(few, GateParams())
    assert check.status == "warn"
    assert (check.metrics["predicted"], check.metrics["true"]) == (1, 6)
    assert "fewer than gate.min_true_rows_for_ratio 10 true rows" in check.summary
    assert judge_near_collapse(few, GateParams(min_true_rows_for_ratio=5)).status == "fail"


def test_small_counts_at_a_good_ratio_pass() -> None:
    assert judge_near_collapse(counts((992, 8), (994, 6)), GateParams()).status == "pass"


def test_a_holdout_without_true_counts_is_not_run() -> None:
    check = judge_near_collapse(
        holdout(predicted=(10, 0), true=(0, 0)),
        GateParams(),
    )
    assert check.status == "not_run" and "no true rows" in check.summary


def test_pr_auc_lift_fails_below_the_minimum_ratio() -> None:
    check = judge_pr_auc_lift(holdout(pr_auc=0.03), GateParams(min_pr_auc_lift=2.0))
    assert check.status == "fail" and check.metrics["lift"] == pytest.approx(1.5)
    off = judge_pr_auc_lift(holdout(pr_auc=0.03), GateParams(min_pr_auc_lift=0))
    assert off.status == "not_run"


def test_pr_auc_lift_is_not_run_when_undefined() -> None:
    check = judge_pr_auc_lift(holdout(pr_auc=None), GateParams())
    assert check.status == "not_run" and "undefined" in check.summary


def test_minority_recall_fails_below_the_minimum() -> None:
    check = judge_minority_recall(holdout(), GateParams(min_minority_recall=0.7))
    assert check.status == "fail" and "0.6000" in check.summary


def test_suspiciously_perfect_halts_and_points_to_the_leakage_findings() -> None:
    finding = CheckResult(
        code="temporal_leakage",
        stage="leakage",
        status="warn",
        columns=["chargeback_at"],
        summary="dates after the label time",
    )
    separation = Separation({"amount": 0.999, "fee": 0.98}, 0.99)
    check = judge_perfection(holdout(roc_auc=1.0), GateParams(), [finding], separation)
    assert check.status == "fail"
    assert check.columns == ["amount", "chargeback_at"]
    assert "temporal_leakage: chargeback_at" in check.summary
    assert "alone separate the classes: amount" in check.summary
    assert check.metrics["separating_columns"] == {"amount": 0.999}


def test_a_column_separates_at_the_target_leakage_threshold() -> None:
    # The same setting as target_leakage's: leakage.target_auc_fail.
    separation = Separation({"amount": 0.999, "fee": 0.98}, 0.97)
    check = judge_perfection(holdout(roc_auc=1.0), GateParams(), [], separation)
    assert check.columns == ["amount", "fee"]


def test_suspiciously_perfect_is_configurable() -> None:
    assert judge_perfection(holdout(roc_auc=0.9995), GateParams(), [], NONE).status == "fail"
    relaxed = GateParams(max_roc_auc=1.0)
    assert judge_perfection(holdout(roc_auc=0.9995), relaxed, [], NONE).status == "pass"
    warn_only = GateParams(suspiciously_perfect="warn")
    assert judge_perfection(holdout(roc_auc=1.0), warn_only, [], NONE).status == "warn"
