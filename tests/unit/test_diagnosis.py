"""Each cause of the diagnosis, induced on purpose in a small synthetic table, ranks first."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import Cause, CheckResult
from retrain_guard.tasks.diagnosis import Evidence, diagnose, diagnose_run
from retrain_guard.tasks.evaluation import evaluate
from retrain_guard.tasks.features import check_features
from retrain_guard.tasks.gate import judge_holdout
from retrain_guard.tasks.training import Parts, Trained, train
from tests.conftest import params_for
from tests.near_collapse_cases import LABEL as LOAN_LABEL
from tests.near_collapse_cases import LABEL_TIME as LOAN_TIME
from tests.near_collapse_cases import make_loans


def synthetic(
    rows: int = 2000,
    positive_share: float = 0.2,
    signal: float = 1.0,
    seed: int = 0,
    leak: bool = False,
    constant: bool = False,
) -> pd.DataFrame:
    """Rows in time order; the label is the top `positive_share` of a noisy score."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    score = signal * (x1 + 0.5 * x2 + (colour == "red")) + rng.logistic(size=rows)
    label = np.zeros(rows, dtype="int64")
    label[np.argsort(-score)[: max(1, round(positive_share * rows))]] = 1
    frame = pd.DataFrame(
        {
            "event_time": pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(rows), unit="h"),
            "x1": x1,
            "x2": x2,
            "colour": colour,
            "label": label,
        }
    )
    if leak:
        frame["settled_amount"] = np.where(label == 1, 100.0, np.nan)
    if constant:
        frame = frame.assign(x1=1.0, x2=np.nan, colour="red")
    return frame


def params(tmp_path: Path, **overrides: Any) -> RetrainParams:
    base = params_for(tmp_path / "t.csv", tmp_path).to_json_dict()
    base["data"] = {"path": "t.csv", "label": "label", "label_time": "event_time"}
    for section, values in overrides.items():
        base[section] = {**base.get(section, {}), **values}
    return RetrainParams.model_validate(base)


def run_pure(
    frame: pd.DataFrame,
    p: RetrainParams,
    leakage_findings: list[CheckResult] | None = None,
    train_rows: int | None = None,
    label: str = "label",
    time_column: str = "event_time",
) -> tuple[CheckResult, list[Cause]]:
    """Run the stages the flow runs after the split: the functions behind its tasks."""
    cut = train_rows or int(len(frame) * 0.8)
    features = [c for c in frame.columns if c not in (label, time_column)]
    y = frame[label].to_numpy()
    parts = Parts(
        X_train=frame[features].iloc[:cut],
        y_train=y[:cut],
        X_holdout=frame[features].iloc[cut:],
        y_holdout=y[cut:],
        train_times=frame[time_column].iloc[:cut],
        label=label,
        negative=0,
        positive=1,
    )
    trained = train(parts, p)
    assert isinstance(trained, Trained), trained
    checked = check_features(trained, parts, p)
    evaluation = evaluate(trained, parts, p)
    findings = leakage_findings or []
    verdicts = judge_holdout(evaluation.holdout, p.gate, findings, checked.separation)
    failed = next((c for c in verdicts if c.status == "fail"), None)
    assert failed is not None, f"the gate did not halt: {[c.summary for c in verdicts]}"
    return failed, diagnose_run(p, evaluation, checked, failed.code, findings)


def assert_first(causes: list[Cause], expected: str) -> Cause:
    assert causes, "no cause found"
    assert causes[0].cause == expected, [(c.cause, c.score) for c in causes]
    first = causes[0]
    assert first.evidence and first.remedy and first.remedy_params
    return first


def test_extreme_imbalance_without_correction_ranks_first(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.01, signal=0.8)
    failed, causes = run_pure(frame, params(tmp_path, model={"class_weight": "none"}))
    assert failed.code == "single_class_prediction"
    first = assert_first(causes, "extreme_imbalance")
    assert first.remedy_params == {"model.class_weight": "balanced"}
    assert "neither resampling nor class weights" in first.evidence


def test_a_threshold_no_score_reaches_ranks_first_and_names_a_better_one(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.05, signal=0.8)
    p = params(tmp_path, model={"decision_threshold": 0.999})
    failed, causes = run_pure(frame, p)
    assert failed.code == "single_class_prediction"
    first = assert_first(causes, "decision_threshold")
    suggested = first.remedy_params["model.decision_threshold"]
    assert isinstance(suggested, float) and 0.0 < suggested < 0.999
    assert "validation slice" in first.remedy


def test_no_signal_ranks_first(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.2, signal=0.0)
    p = params(tmp_path, gate={"min_pr_auc_lift": 1.5})
    failed, causes = run_pure(frame, p)
    assert failed.code == "pr_auc_lift"
    first = assert_first(causes, "no_signal")
    assert "chance is 0.5" in first.evidence


def test_regularisation_so_strong_the_training_part_is_one_class_ranks_first(
    tmp_path: Path,
) -> None:
    frame = synthetic(positive_share=0.15, signal=1.0)
    p = params(tmp_path, model={"C": 1e-6, "class_weight": "none"})
    failed, causes = run_pure(frame, p)
    assert failed.code == "single_class_prediction"
    first = assert_first(causes, "underfitting")
    assert first.remedy_params == {"model.C": 1.0}
    assert "model.C=1e-06" in first.evidence


def test_overfitting_ranks_first(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.05, signal=0.3)
    # A stricter gate than the default: the memorising forest finds 14 of 23 positives.
    p = params(
        tmp_path,
        model={"name": "random_forest", "n_estimators": 30},
        gate={"min_predicted_to_true_ratio": 0.7},
    )
    failed, causes = run_pure(frame, p)
    assert failed.code == "near_single_class_prediction"
    first = assert_first(causes, "overfitting")
    assert "model.forest_min_samples_leaf" in first.remedy_params


def test_constant_and_empty_features_rank_first(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.2, constant=True)
    failed, causes = run_pure(frame, params(tmp_path))
    assert failed.code == "single_class_prediction"
    first = assert_first(causes, "constant_features")
    assert first.remedy_params == {"data.drop": ["colour", "x1", "x2"]}
    assert "empty: x2" in first.evidence


def test_leakage_behind_a_perfect_holdout_ranks_first(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.05, leak=True)
    finding = CheckResult(
        code="temporal_leakage",
        stage="leakage",
        status="warn",
        columns=["settled_at"],
        summary="dates after the label time: settled_at",
    )
    failed, causes = run_pure(frame, params(tmp_path), [finding])
    assert failed.code == "suspiciously_perfect"
    first = assert_first(causes, "leakage")
    assert first.remedy_params == {"data.drop": ["settled_amount", "settled_at"]}
    assert "settled_amount (ROC-AUC 1.000)" in first.evidence


def test_row_level_leak_findings_never_suggest_dropping_role_columns(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.05, leak=True)
    order = CheckResult(
        code="order_leakage",
        stage="leakage",
        status="warn",
        columns=["transaction_id"],
        summary="the id predicts the label",
    )
    _, causes = run_pure(frame, params(tmp_path), [order])
    first = assert_first(causes, "leakage")
    assert first.remedy_params == {"data.drop": ["settled_amount"]}, "the id is not dropped"
    assert "ids are never features" in first.remedy


def test_a_minority_too_small_after_the_split_ranks_first(tmp_path: Path) -> None:
    frame = synthetic(rows=1000, positive_share=0.2, signal=1.0)
    # Keep 6 positives in the training part (the first 400 rows), all in the holdout.
    train_positive = np.flatnonzero(frame["label"].iloc[:400].to_numpy() == 1)
    frame.loc[train_positive[6:], "label"] = 0
    p = params(tmp_path, gate={"min_pr_auc_lift": 100.0})
    failed, causes = run_pure(frame, p, train_rows=400)
    assert failed.code == "pr_auc_lift"
    first = assert_first(causes, "minority_too_small")
    assert "holds 6 row(s)" in first.evidence
    assert first.remedy_params == {"split.holdout_fraction": 0.1}


def test_every_cause_carries_a_remedy_naming_a_parameter(tmp_path: Path) -> None:
    frame = synthetic(positive_share=0.01, signal=0.8)
    _, causes = run_pure(frame, params(tmp_path, model={"class_weight": "none"}))
    for cause in causes:
        assert all("." in key for key in cause.remedy_params), cause
        assert 0.0 <= cause.score <= 1.0


def test_the_lending_near_collapse_ranks_imbalance_or_the_threshold_first(
    tmp_path: Path,
) -> None:
    # Issue 9: unweighted logistic regression on 1.8% bad loans predicts almost no bad loan.
    frame = make_loans(seed=0)
    p = params(tmp_path, model={"class_weight": "none"})
    failed, causes = run_pure(frame, p, label=LOAN_LABEL, time_column=LOAN_TIME)
    assert failed.code == "near_single_class_prediction"
    assert causes[0].cause in ("extreme_imbalance", "decision_threshold"), causes
    assert causes[0].remedy_params
    named = {c.cause: c for c in causes}
    # The scores rank the loans; too few cross 0.5: the threshold is named with a better one.
    threshold = named["decision_threshold"]
    assert "1 holdout score(s) reach the decision threshold 0.5, while" in threshold.evidence
    suggested = threshold.remedy_params["model.decision_threshold"]
    assert isinstance(suggested, float) and 0.0 < suggested < 0.5
    assert "on the holdout the model predicted it for" in named["extreme_imbalance"].evidence


def near_collapse_evidence(**overrides: Any) -> Evidence:
    """A holdout where 2 of 2,000 rows are predicted positive while 40 truly are."""
    base: dict[str, Any] = {
        "train_minority_count": 300,
        "train_rows": 8000,
        "sampler": "none",
        "class_weight": "balanced",
        "model": "logistic_regression",
        "C": 1e-6,
        "decision_threshold": 0.5,
        "holdout_roc_auc": 0.8,
        "holdout_max_score": 0.51,
        "threshold_for_prior": 0.2,
        "train_predicted_counts": {"0": 7990, "1": 10},
        "train_roc_auc": 0.8,
        "train_accuracy": 0.96,
        "gate_code": "near_single_class_prediction",
        "holdout_min_score": 0.49,
        "train_score_spread": 0.001,
        "holdout_class_counts": (1960, 40),
        "holdout_predicted_counts": (1998, 2),
        "min_predicted_to_true_ratio": 0.25,
    }
    return Evidence(**{**base, **overrides})


def test_a_training_part_predicted_nearly_as_one_class_is_underfitting(tmp_path: Path) -> None:
    # 10 of 300 training positives predicted: not exactly one class, yet nearly.
    causes = diagnose(near_collapse_evidence(), params(tmp_path))
    first = assert_first(causes, "underfitting")
    assert first.remedy_params == {"model.C": 1.0}
    assert "(nearly) one class" in first.evidence


def test_near_collapse_names_the_threshold_only_when_too_few_rows_reach_it(
    tmp_path: Path,
) -> None:
    short = diagnose(near_collapse_evidence(C=1.0), params(tmp_path))
    threshold = next(c for c in short if c.cause == "decision_threshold")
    assert "only 2 holdout score(s) reach the decision threshold 0.5, while 40" in (
        threshold.evidence
    )
    # 30 of 40 predicted: the threshold is not what went wrong.
    enough = near_collapse_evidence(C=1.0, holdout_predicted_counts=(1970, 30))
    assert "decision_threshold" not in [c.cause for c in diagnose(enough, params(tmp_path))]
