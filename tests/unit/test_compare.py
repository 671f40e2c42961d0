"""The paired bootstrap, loading the last good model, and the worse_than_last_good verdict."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import average_precision_score, roc_auc_score

from retrain_guard.schemas.params import GateParams, ModelParams, ResampleParams, RetrainParams
from retrain_guard.schemas.report import Report
from retrain_guard.tasks import compare
from retrain_guard.tasks.bootstrap import (
    PairedBootstrap,
    PairedInterval,
    paired_bootstrap,
    poisson_weights,
)
from retrain_guard.tasks.compare import (
    Comparison,
    NotCompared,
    bootstrap_for_gate,
    compare_with_last_good,
    judge_regression,
    load_last_good,
    settled,
)
from retrain_guard.tasks.publish import MODEL_FILE, publish
from retrain_guard.tasks.training import LabelledModel, Parts, Trained, fit_model


def _labels_and_scores(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.1).astype("int64")
    good = np.clip(rng.normal(0.3 + 0.4 * y, 0.15), 0, 1).round(3)  # ties included
    poor = np.clip(rng.normal(0.3 + 0.05 * y, 0.15), 0, 1).round(2)
    return y, good, poor


def test_point_values_are_scikit_learns_ties_included() -> None:
    y, good, poor = _labels_and_scores(3000)
    result = paired_bootstrap(y, good, poor, (0.5, 0.35), replicates=32)
    assert result["pr_auc"].new == pytest.approx(average_precision_score(y, good), abs=1e-12)
    assert result["pr_auc"].old == pytest.approx(average_precision_score(y, poor), abs=1e-12)
    assert result["roc_auc"].new == pytest.approx(roc_auc_score(y, good), abs=1e-12)
    assert result["roc_auc"].old == pytest.approx(roc_auc_score(y, poor), abs=1e-12)
    assert result["minority_recall"].new == pytest.approx(np.mean(good[y == 1] >= 0.5))
    assert result["minority_recall"].old == pytest.approx(np.mean(poor[y == 1] >= 0.35))


def test_identical_models_give_an_interval_around_zero() -> None:
    y, good, _ = _labels_and_scores(2000)
    for m in paired_bootstrap(y, good, good, (0.5, 0.5), replicates=200).values():
        assert m.difference == 0 and m.low == 0 and m.high == 0


def test_two_equally_good_models_give_an_interval_holding_zero() -> None:
    y, good, _ = _labels_and_scores(2000)
    rng = np.random.default_rng(1)
    other = np.clip(rng.normal(0.3 + 0.4 * y, 0.15), 0, 1)
    for name, m in paired_bootstrap(y, good, other, (0.5, 0.5), replicates=400).items():
        assert m.low < 0 < m.high, name
        assert m.low < m.difference < m.high, name


def test_a_clearly_worse_model_lies_outside_the_interval() -> None:
    y, good, poor = _labels_and_scores(2000)
    result = paired_bootstrap(y, poor, good, (0.35, 0.5), replicates=400)
    for name in ("pr_auc", "roc_auc"):
        assert result[name].high < 0, name
        assert result[name].low <= result[name].difference <= result[name].high


def test_the_interval_is_reproducible_and_stratified() -> None:
    y, good, poor = _labels_and_scores(1000)
    first = paired_bootstrap(y, good, poor, (0.5, 0.35), replicates=64, seed=5)
    assert first == paired_bootstrap(y, good, poor, (0.5, 0.35), replicates=64, seed=5)
    weights = poisson_weights(np.random.default_rng(0), 4, 200_000).astype(float)
    assert weights.mean() == pytest.approx(1.0, abs=0.01)
    assert weights.var() == pytest.approx(1.0, abs=0.02)


def test_drawing_in_steps_adds_to_the_same_replicates() -> None:
    y, good, poor = _labels_and_scores(1000)
    drawn = PairedBootstrap(y, good, poor, (0.5, 0.35), seed=5).draw(64)
    assert drawn.intervals() == paired_bootstrap(y, good, poor, (0.5, 0.35), 64, seed=5)
    assert len(drawn.draw(36).differences("roc_auc")) == drawn.replicates == 100


# How many replicates the gate draws.


def test_settled_when_the_line_is_clear_of_the_upper_bounds_rank_noise() -> None:
    differences = np.linspace(-1.0, 1.0, 200)  # the 97.5% quantile is near 0.95
    assert settled(differences, -0.5) and settled(differences, 1.5)
    # Ranks 188..199 hold values from 0.89 to 1.0: a line among them may yet be crossed.
    assert not settled(differences, 0.95) and not settled(differences, 0.9)
    assert settled(np.empty(0), 0.0)


def test_a_small_holdout_draws_every_replicate() -> None:
    y, good, poor = _labels_and_scores(2000)
    drawn = bootstrap_for_gate(y, good, poor, (0.5, 0.35), GateParams())
    assert drawn.replicates == compare.REPLICATES


def test_a_large_holdout_stops_early_on_a_clear_verdict_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2000 rows stand for a large holdout: the first draw is MIN_REPLICATES.
    monkeypatch.setattr(compare, "FIRST_DRAW", 2000)
    y, good, poor = _labels_and_scores(2000)
    clear_regression = bootstrap_for_gate(y, poor, good, (0.35, 0.5), GateParams())
    assert clear_regression.replicates == compare.MIN_REPLICATES
    assert clear_regression.intervals()["pr_auc"].high < 0
    clear_pass = bootstrap_for_gate(y, good, good, (0.5, 0.5), GateParams())
    assert clear_pass.replicates == compare.MIN_REPLICATES
    # A tolerance line where the upper bound lies: more replicates are drawn.
    noisier = np.clip(good + np.random.default_rng(1).normal(0, 0.1, len(y)), 0, 1)
    full = PairedBootstrap(y, noisier, good, (0.5, 0.5), seed=compare.SEED).draw(1000)
    high, old = full.intervals()["pr_auc"].high, full.point_old["pr_auc"]
    assert high < 0
    close = bootstrap_for_gate(y, noisier, good, (0.5, 0.5), GateParams(max_regression=-high / old))
    assert close.replicates > compare.MIN_REPLICATES


# The worse_than_last_good verdict.


def _comparison(new: float, old: float, low: float, high: float) -> Comparison:
    m = PairedInterval(new=new, old=old, low=low, high=high)
    return Comparison("v1", 1000, (0.5, 0.5), {"pr_auc": m, "roc_auc": m, "minority_recall": m})


def test_confidently_worse_beyond_the_tolerance_fails() -> None:
    check = judge_regression(_comparison(0.40, 0.60, -0.26, -0.14), GateParams())
    assert check.status == "fail"
    assert check.metrics["allowed_difference"] == pytest.approx(-0.03)
    assert "gate.max_regression" in check.summary


def test_a_drop_within_the_tolerance_or_the_noise_does_not_fail() -> None:
    assert judge_regression(_comparison(0.59, 0.60, -0.02, 0.0), GateParams()).status == "pass"
    noisy = judge_regression(_comparison(0.50, 0.60, -0.25, 0.05), GateParams())
    assert noisy.status == "warn" and "does not show it" in noisy.summary
    # Confident, but smaller than 5% of 0.60.
    assert judge_regression(_comparison(0.58, 0.60, -0.028, -0.01), GateParams()).status == "pass"


def test_an_accepted_regression_warns_naming_the_override_and_reason() -> None:
    gate = GateParams(accept_regression=True, accept_reason="stale champion")
    check = judge_regression(_comparison(0.40, 0.60, -0.26, -0.14), gate)
    assert check.status == "warn"
    assert "gate.accept_regression: stale champion" in check.summary
    assert _comparison(0.4, 0.6, -0.26, -0.14).to_json(gate)["accepted_regression"] == {
        "reason": "stale champion"
    }


def test_accepting_a_regression_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match=r"gate\.accept_reason is required"):
        GateParams(accept_regression=True)
    with pytest.raises(ValidationError, match=r"gate\.accept_reason is required"):
        GateParams(accept_regression=True, accept_reason="  ")


def test_not_compared_is_not_run_with_the_reason() -> None:
    check = judge_regression(NotCompared("no last good model (first run)"), GateParams())
    assert check.status == "not_run" and check.summary == "not run: no last good model (first run)"


# Loading and scoring the last good model.


def _frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "z": rng.normal(size=rows)})
    y = (frame["x"] + 0.3 * rng.normal(size=rows) > 1.0).astype("int64").to_numpy()
    return frame, y


def _trained(frame: pd.DataFrame, y: np.ndarray) -> Trained:
    return fit_model(frame, y, ModelParams(name="logistic_regression"), ResampleParams())


def _parts(frame: pd.DataFrame, y: np.ndarray, negative: object = 0) -> Parts:
    return Parts(frame, y, frame, y, None, "label", negative, 1)


def _params(output_dir: Path) -> RetrainParams:
    return RetrainParams.model_validate(
        {"data": {"path": "t.csv", "label": "label"}, "publish": {"output_dir": str(output_dir)}}
    )


def _publish(output_dir: Path, frame: pd.DataFrame, y: np.ndarray, negative: object = 0) -> None:
    model = LabelledModel(_trained(frame, y).model, negative, 1)
    publish(model, Report(status="passed"), output_dir, version="v1")


def test_first_run_is_not_compared(tmp_path: Path) -> None:
    outcome = load_last_good(tmp_path)
    assert isinstance(outcome, NotCompared) and "first run" in outcome.reason


def test_a_tampered_last_good_model_is_not_compared(tmp_path: Path) -> None:
    frame, y = _frame()
    _publish(tmp_path, frame, y)
    model_file = tmp_path / "models" / "v1" / MODEL_FILE
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    outcome = load_last_good(tmp_path)
    assert isinstance(outcome, NotCompared) and "failed verification" in outcome.reason


def test_missing_features_and_other_classes_are_not_compared(tmp_path: Path) -> None:
    frame, y = _frame()
    _publish(tmp_path, frame, y)
    fewer = frame.drop(columns=["z"])
    outcome = compare_with_last_good(_trained(fewer, y), _parts(fewer, y), _params(tmp_path))
    assert isinstance(outcome, NotCompared)
    assert outcome.reason.endswith("missing from the new table: z")
    other = compare_with_last_good(_trained(frame, y), _parts(frame, y, "no"), _params(tmp_path))
    assert isinstance(other, NotCompared) and "the classes differ" in other.reason


def test_the_last_good_model_is_scored_on_the_same_rows(tmp_path: Path) -> None:
    frame, y = _frame()
    _publish(tmp_path, frame, y)
    outcome = compare_with_last_good(_trained(frame, y), _parts(frame, y), _params(tmp_path))
    assert isinstance(outcome, Comparison) and outcome.version == "v1"
    assert outcome.metrics["pr_auc"].difference == 0
    assert judge_regression(outcome, GateParams()).status == "pass"


def test_the_evaluations_holdout_scores_serve_the_comparison(tmp_path: Path) -> None:
    frame, y = _frame()
    _publish(tmp_path, frame, y)
    trained = _trained(frame, y)
    scores = np.asarray(trained.model.predict_proba(frame))[:, 1]
    given = compare_with_last_good(trained, _parts(frame, y), _params(tmp_path), scores)
    assert given == compare_with_last_good(trained, _parts(frame, y), _params(tmp_path))
    assert isinstance(given, Comparison) and given.to_json(GateParams())["replicates"] == 1000
