"""The class-aware training sample: what it keeps, its weights and its class-weight correction."""

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve

from retrain_guard.schemas.params import ModelParams, ResampleParams
from retrain_guard.tasks.evaluation import measure_training_part
from retrain_guard.tasks.threshold import best_f1_threshold, threshold_for_share
from retrain_guard.tasks.train_sample import TrainingSample, draw_training_sample, weight_correction


def labels(negatives: int, positives: int, seed: int = 0) -> np.ndarray:
    y = np.array([0] * negatives + [1] * positives)
    return np.random.default_rng(seed).permutation(y)


def test_a_part_under_the_cap_is_kept_whole() -> None:
    y = labels(300, 20)
    train = np.arange(1000, 1000 + len(y))
    kept, sample = draw_training_sample(train, y, cap=300, seed=1)
    assert kept is train and not sample.sampled
    assert sample.rows == sample.of_rows == (300, 20)
    assert sample.row_weights(y) is None


def test_the_larger_class_is_thinned_to_the_cap_and_the_order_kept() -> None:
    y = labels(5000, 40)
    train = np.arange(len(y)) * 3
    kept, sample = draw_training_sample(train, y, cap=500, seed=7)
    assert sample.of_rows == (5000, 40) and sample.rows == (500, 40)
    assert np.all(np.diff(kept) > 0) and set(kept) <= set(train)
    kept_y = y[np.searchsorted(train, kept)]
    assert int(np.sum(kept_y == 1)) == 40 and int(np.sum(kept_y == 0)) == 500
    again, _ = draw_training_sample(train, y, cap=500, seed=7)
    other, _ = draw_training_sample(train, y, cap=500, seed=8)
    assert np.array_equal(kept, again) and not np.array_equal(kept, other)
    weights = sample.row_weights(kept_y)
    assert weights is not None
    # Weighted, the sample counts as many rows of each class as the training part.
    assert weights[kept_y == 0].sum() == pytest.approx(5000)
    assert weights[kept_y == 1].sum() == pytest.approx(40)
    assert sample.positive_share == pytest.approx(40 / 5040)


SAMPLE = TrainingSample(cap=1000, of_rows=(20_000, 200), rows=(1000, 200))


def test_an_unweighted_fit_is_weighted_back_to_the_whole_part() -> None:
    unweighted = ModelParams(class_weight="none")
    correction = weight_correction(SAMPLE, unweighted, ResampleParams(), "none")
    # The sample's ratio 0.2 over the part's 0.01.
    assert correction.class_weight() == {0: pytest.approx(20.0), 1: 1.0}


@pytest.mark.parametrize(
    ("model", "resample", "given", "reason"),
    [
        (ModelParams(class_weight="balanced"), ResampleParams(), "balanced", "balanced"),
        (ModelParams(name="balanced_random_forest"), ResampleParams(), "none", "bootstrap"),
        (
            ModelParams(class_weight="none"),
            ResampleParams(sampler="smote", target_ratio=0.5),
            "none",
            "whole part's ratio after the sampler",
        ),
        (ModelParams(class_weight="none"), ResampleParams(), None, "takes no class_weight"),
    ],
)
def test_no_correction_where_the_shares_do_not_change_or_cannot_be_weighted(
    model: ModelParams, resample: ResampleParams, given: str | None, reason: str
) -> None:
    correction = weight_correction(SAMPLE, model, resample, given)
    assert correction.class_weight() is None and reason in correction.reason


def test_both_classes_thinned_alike_need_no_correction() -> None:
    both = TrainingSample(cap=1000, of_rows=(5000, 5000), rows=(1000, 1000))
    correction = weight_correction(both, ModelParams(class_weight="none"), ResampleParams(), "none")
    assert correction.class_weight() is None
    assert correction.reason == "not needed: the classes keep the whole part's ratio"


def test_a_target_ratio_passed_on_the_sample_only_is_weighted_back_to_it() -> None:
    # The part is at 0.01 and smote lifts it to 0.05; the sample is at 0.2 already.
    resample = ResampleParams(sampler="smote", target_ratio=0.05)
    correction = weight_correction(SAMPLE, ModelParams(class_weight="none"), resample, "none")
    assert correction.class_weight() == {0: pytest.approx(4.0), 1: 1.0}


def test_weighted_threshold_and_f1_equal_those_of_the_rows_repeated() -> None:
    rng = np.random.default_rng(3)
    y = labels(400, 60, seed=4)
    scores = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    weights = np.where(y == 1, 1.0, 3.0)
    repeated_y = np.repeat(y, weights.astype(int))
    repeated_scores = np.repeat(scores, weights.astype(int))
    assert best_f1_threshold(y, scores, weights) == best_f1_threshold(repeated_y, repeated_scores)
    share = float(np.mean(repeated_y))
    weighted = threshold_for_share(scores, share, weights)
    plain = threshold_for_share(repeated_scores, share)
    assert weighted is not None and plain is not None
    # The weighted quantile picks an observed score; linear interpolation may fall between.
    gap = np.diff(np.sort(scores)).max()
    assert abs(weighted - plain) <= gap
    precision, _, _ = precision_recall_curve(y, scores, sample_weight=weights)
    assert precision.min() < float(np.mean(y))  # the weights matter: not the plain shares


def test_positives_in_the_majority_of_the_training_part_are_weighted_the_right_way() -> None:
    # A time split can leave more positives than negatives in the training part: the sampler
    # then lifts the negatives (the minority there), as make_sampler does.
    thinned = TrainingSample(cap=1000, of_rows=(500, 3000), rows=(500, 1000))
    resample = ResampleParams(sampler="smote", target_ratio=0.2)
    correction = weight_correction(thinned, ModelParams(class_weight="none"), resample, "none")
    weights = correction.class_weight()
    assert weights is not None
    # Whole part after smote: 600 negatives to 3000 positives (0.2); the sample stays at
    # 500 to 1000. Weighted, the sample's classes must stand 0.2 again.
    assert 500 * weights[0] / (1000 * weights[1]) == pytest.approx(0.2)


def test_both_classes_thinned_at_different_rates_take_their_inverse_rates() -> None:
    both = TrainingSample(cap=5000, of_rows=(50_000, 20_000), rows=(5000, 5000))
    correction = weight_correction(both, ModelParams(class_weight="none"), ResampleParams(), "none")
    assert correction.class_weight() == {0: pytest.approx(10.0), 1: pytest.approx(4.0)}


@pytest.mark.parametrize(
    ("model", "given", "fitted"),
    [
        (ModelParams(name="random_forest", forest_min_samples_leaf=600), 600, 36),
        (ModelParams(name="hist_gradient_boosting", min_samples_leaf=20), 20, 1),
    ],
)
def test_a_minimum_leaf_size_is_scaled_to_the_sample_rows(
    model: ModelParams, given: int, fitted: int
) -> None:
    # The sample holds 1,200 of the part's 20,200 rows: a leaf keeps its share of them.
    correction = weight_correction(SAMPLE, model, ResampleParams(), "balanced")
    assert correction.leaf == (given, fitted)
    assert correction.to_json()["min_samples_leaf"] == {"given": given, "fitted": fitted}
    assert f"min_samples_leaf {given} scaled to {fitted}" in correction.reason


def test_training_part_metrics_of_a_weighted_sample_are_the_whole_parts() -> None:
    rng = np.random.default_rng(5)
    y = labels(40_000, 400, seed=6)
    scores = np.clip(rng.normal(0.2 + 0.3 * y, 0.15), 0, 1)
    predicted = (scores >= 0.45).astype("int64")
    whole = measure_training_part(y, predicted, scores, ("0", "1"))
    train = np.arange(len(y))
    kept, sample = draw_training_sample(train, y, cap=2000, seed=1)
    weights = sample.row_weights(y[kept])
    sampled = measure_training_part(
        y[kept], predicted[kept], scores[kept], ("0", "1"), sample.of_rows, weights
    )
    unweighted = measure_training_part(
        y[kept], predicted[kept], scores[kept], ("0", "1"), sample.of_rows
    )
    for name in ("pr_auc", "accuracy", "score_spread"):
        value, plain = getattr(sampled, name), getattr(unweighted, name)
        assert value == pytest.approx(getattr(whole, name), rel=0.1), name
        assert abs(plain - getattr(whole, name)) > abs(value - getattr(whole, name)), name
