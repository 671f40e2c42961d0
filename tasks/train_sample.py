"""The class-aware training sample: what the model is fitted on when the training part is large.

With `compute.train_sample_rows` N, a class of the training part with more than N rows
keeps N of them, drawn at random (seeded by split.seed) and kept in their order; a class with
at most N rows keeps every row. The rarer class is therefore whole up to N rows, and the
larger one is thinned. The holdout is never sampled: the model is measured on all of it.

Thinning a class changes the class shares the estimator sees, and with them its scores and
what it predicts. `weight_correction` says how the fit restores the training part's shares
(class weights in proportion to each class's sampling rate), or why nothing is needed: a
balanced class weight or a sampler that sets the ratio itself gives the same shares either
way. The threshold analysis weighs its validation rows the same way (`row_weights`).
"""

from dataclasses import dataclass

import numpy as np
from pydantic import JsonValue

from retrain_guard.schemas.params import ModelParams, ResampleParams
from retrain_guard.schemas.report import JsonDict


@dataclass(frozen=True)
class TrainingSample:
    """Rows of each class (negative, positive) in the training part and in the sample."""

    cap: int
    of_rows: tuple[int, int]
    rows: tuple[int, int]

    @property
    def sampled(self) -> bool:
        return self.rows != self.of_rows

    @property
    def rates(self) -> tuple[float, float]:
        """The share of each class's rows the sample kept (1.0 for a class kept whole)."""
        return (_rate(self.rows[0], self.of_rows[0]), _rate(self.rows[1], self.of_rows[1]))

    @property
    def positive_share(self) -> float:
        """The positive class's share of the whole training part (not of the sample)."""
        total = sum(self.of_rows)
        return self.of_rows[1] / total if total else 0.0

    def row_weights(self, y: np.ndarray) -> np.ndarray | None:
        """Weights that make sampled rows (y 0/1) count as the training part's rows; None
        when nothing was thinned."""
        if not self.sampled:
            return None
        negative, positive = self.rates
        return np.where(y == 1, 1.0 / positive, 1.0 / negative)


def _rate(kept: int, of: int) -> float:
    return kept / of if of else 1.0


def draw_training_sample(
    train: np.ndarray, y_train: np.ndarray, cap: int, seed: int
) -> tuple[np.ndarray, TrainingSample]:
    """Return the positions of `train` the model is fitted on, in their order, and the sample.

    `y_train` holds the 0/1 labels at `train`. A class with more than `cap` rows keeps `cap`
    of them, drawn without replacement; the other class keeps all its rows.
    """
    rng = np.random.default_rng(seed)
    # Rows are chosen by their place in `train` (the same draws as choosing the positions
    # themselves) and marked, so the sample keeps the training part's own order, which the
    # threshold analysis reads the latest rows of, without searching one array in another.
    chosen = np.zeros(len(train), dtype=bool)
    rows = []
    for value in (0, 1):
        of_class = np.flatnonzero(y_train == value)
        rows.append(len(of_class))
        if len(of_class) > cap:
            of_class = rng.choice(of_class, size=cap, replace=False)
        chosen[of_class] = True
    sample = TrainingSample(
        cap=cap,
        of_rows=(rows[0], rows[1]),
        rows=(min(rows[0], cap), min(rows[1], cap)),
    )
    if not sample.sampled:
        return train, sample
    return train[chosen], sample


@dataclass(frozen=True)
class Correction:
    """How the fit on the sample stands in for a fit on the whole training part: class
    weights (None: none given), the leaf size scaled to the sample (given, fitted; None:
    not scaled), and why."""

    weights: tuple[float, float] | None
    reason: str
    leaf: tuple[int, int] | None = None

    def class_weight(self) -> dict[int, float] | None:
        return None if self.weights is None else {0: self.weights[0], 1: self.weights[1]}

    def to_json(self) -> JsonDict:
        weight: JsonValue = (
            None
            if self.weights is None
            else {str(c): round(w, 6) for c, w in enumerate(self.weights)}
        )
        found: JsonDict = {"class_weight": weight, "reason": self.reason}
        if self.leaf is not None:
            found["min_samples_leaf"] = {"given": self.leaf[0], "fitted": self.leaf[1]}
        return found


def _after_sampler(negatives: int, positives: int, resample: ResampleParams) -> float:
    """The positive/negative ratio of these rows after resample.sampler, which (like
    tasks/resampling.py make_sampler) lifts a minority/majority ratio below
    resample.target_ratio to it, whichever class is the minority."""
    minority, majority = sorted((negatives, positives))
    ratio = minority / majority
    if resample.sampler != "none":
        ratio = max(ratio, resample.target_ratio)
    return ratio if positives <= negatives else 1.0 / ratio


def resampled_whole(sample: TrainingSample, resample: ResampleParams) -> bool:
    """Whether resample.sampler would resample the whole training part (its minority/majority
    ratio is below the target), whatever it did on the sample."""
    minority, majority = sorted(sample.of_rows)
    return resample.sampler != "none" and minority / majority < resample.target_ratio


def _leaf_setting(model: ModelParams) -> int | None:
    """The built-in model's minimum rows per leaf (a count of rows, not of weights)."""
    if model.name in ("random_forest", "balanced_random_forest"):
        return model.forest_min_samples_leaf
    if model.name == "hist_gradient_boosting":
        return model.min_samples_leaf
    return None


def weight_correction(
    sample: TrainingSample, model: ModelParams, resample: ResampleParams, given: str | None
) -> Correction:
    """Return how the fit on the sample restores a fit on the whole training part: class
    weights for the class shares, and the leaf size for the rows, or why none is needed.

    `given` is the class_weight the estimator has ("none", "balanced", another value), None
    when it takes none. The positive/negative ratio after the sampler is compared on the
    sample and on the whole part: each class is weighted by the inverse of its sampling rate,
    the negative class adjusted so that the weighted ratio is the whole part's. A minimum
    leaf size counts rows, which class weights do not restore: it is scaled by the share of
    the part's rows the sample holds (at least 1).
    """
    if not sample.sampled:
        return Correction(None, "the training part was not sampled")
    leaf = _leaf_setting(model)
    fitted = max(1, round(leaf * sum(sample.rows) / sum(sample.of_rows))) if leaf else None
    scaled = (leaf, fitted) if leaf is not None and fitted is not None and fitted != leaf else None
    about = (
        f"; min_samples_leaf {scaled[0]} scaled to {scaled[1]} for the sample's rows"
        if scaled
        else ""
    )
    if model.name == "balanced_random_forest":
        return Correction(
            None, "not needed: every tree is fitted on a class-balanced bootstrap" + about, scaled
        )
    if given == "balanced":
        return Correction(
            None, "not needed: class_weight balanced weighs the classes equally" + about, scaled
        )
    (n_neg, n_pos), (s_neg, s_pos) = sample.of_rows, sample.rows
    whole = _after_sampler(n_neg, n_pos, resample)
    sampled = _after_sampler(s_neg, s_pos, resample)
    after = "" if resample.sampler == "none" else " after the sampler"
    if abs(sampled / whole - 1.0) < 1e-9:
        return Correction(
            None, f"not needed: the classes keep the whole part's ratio{after}" + about, scaled
        )
    if given != "none":
        return Correction(
            None,
            "not corrected: the estimator takes no class_weight, or sets its own; its scores "
            f"reflect the sample's class shares ({s_pos} positive of {s_neg + s_pos} rows)" + about,
            scaled,
        )
    positive = 1.0 / sample.rates[1]
    return Correction(
        (positive * sampled / whole, positive),
        "each class weighted by the inverse of its sampling rate, so that the classes have "
        f"the whole part's ratio{after}" + about,
        scaled,
    )


def sample_json(sample: TrainingSample, correction: Correction, names: tuple[str, str]) -> JsonDict:
    """Return the report's account of the training sample and its correction."""
    return {
        "sampled": sample.sampled,
        "cap_per_class": sample.cap,
        "rows": {names[i]: sample.rows[i] for i in (0, 1)},
        "of_rows": {names[i]: sample.of_rows[i] for i in (0, 1)},
        "correction": correction.to_json(),
    }
