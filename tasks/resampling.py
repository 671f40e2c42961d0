"""Resampling of the training part: the imblearn sampler for its class counts, built at fit time.

`make_sampler` picks and adapts the sampler (`resample.sampler`) to the class counts it
receives; `RecordingSampler` is the pipeline step that builds it during fit only and keeps
what it did; `InsufficientMinority` is raised when too few minority rows are left.
`ResamplingOutcome` reports what was done to the training part: the class-aware sample
(tasks/train_sample.py), then the sampler.
"""

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from imblearn.combine import SMOTEENN, SMOTETomek
from imblearn.over_sampling import (
    ADASYN,
    SMOTE,
    SMOTEN,
    SMOTENC,
    BorderlineSMOTE,
    RandomOverSampler,
)
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator

from retrain_guard.schemas.params import ResampleParams
from retrain_guard.schemas.report import CheckResult, JsonDict
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.train_sample import Correction, TrainingSample, sample_json

# Samplers that interpolate between minority neighbours: they need k_neighbors + 1 minority rows.
NEIGHBOUR_SAMPLERS = ("smote", "smotenc", "adasyn", "borderline_smote", "smote_tomek", "smote_enn")

# How a sampler says it had nothing to do (tasks/training.py recognises it on a sample).
ALREADY_REACHED = "already reaches resample.target_ratio"

# imblearn's default neighbourhood for borderline_smote's danger test.
BORDERLINE_M_NEIGHBORS = 10


class InsufficientMinority(ValueError):
    """The training part has too few minority rows for the chosen sampler."""

    def __init__(self, have: int, need: int, sampler: str, detail: str | None = None) -> None:
        super().__init__(
            detail
            or f"resample.sampler {sampler!r} needs at least {need} minority rows in the "
            f"training part; it has {have}"
        )
        self.have, self.need, self.sampler = have, need, sampler


# A training part with fewer minority rows teaches the model one point, not a class: with a
# single positive row any sampler (or none) only copies, interpolates toward or keeps that row,
# and the holdout measures noise. Every sampler, and training without one, needs this many.
MIN_TRAINING_MINORITY_ROWS = 2
# random_under keeps minority / target_ratio majority rows; fewer than this many majority rows
# describe the majority class no better than the minority's handful.
MIN_KEPT_MAJORITY_ROWS = 10


def minority_rows_needed(name: str, ratio: float) -> int:
    """Return the fewest minority rows in the training part that sampler `name` may work with.

    random_under also needs enough minority rows to keep MIN_KEPT_MAJORITY_ROWS majority rows
    at the target ratio (ratio * MIN_KEPT_MAJORITY_ROWS, rounded up).
    """
    if name == "random_under":
        return max(MIN_TRAINING_MINORITY_ROWS, math.ceil(ratio * MIN_KEPT_MAJORITY_ROWS - 1e-9))
    return MIN_TRAINING_MINORITY_ROWS


def make_sampler(
    name: str,
    ratio: float,
    k_neighbors: int,
    seed: int,
    counts: dict[Any, int],
    n_categorical: int = 0,
    n_columns: int = 0,
) -> tuple[Any, list[str]]:
    """Return the imblearn sampler for these class counts and the adaptations made to it.

    Adaptations keep imblearn's own errors from reaching the user: a target ratio the
    data already meets resamples nothing, k_neighbors shrinks to the minority rows
    available, smotenc without numeric or categorical columns runs as smoten or smote.

    Raises:
        InsufficientMinority: fewer minority rows than MIN_TRAINING_MINORITY_ROWS (any
            sampler, "none" too), or too few for random_under to keep
            MIN_KEPT_MAJORITY_ROWS majority rows.
    """
    if len(counts) < 2:
        return None, []
    minority, majority = min(counts.values()), max(counts.values())
    current = minority / majority
    if minority < MIN_TRAINING_MINORITY_ROWS:
        # Name all the sampler needs, not only the first minimum it misses.
        resamples = name != "none" and current < ratio
        need = minority_rows_needed(name, ratio) if resamples else MIN_TRAINING_MINORITY_ROWS
        raise InsufficientMinority(minority, need, name)
    if name == "none":
        return None, []
    if current >= ratio:
        return None, [
            f"the training part's minority/majority ratio {current:.4f} {ALREADY_REACHED} "
            f"{ratio}: {name} resampled nothing"
        ]
    if name == "random_over":
        return RandomOverSampler(sampling_strategy=ratio, random_state=seed), []
    if name == "random_under":
        need = minority_rows_needed(name, ratio)
        if minority < need:
            kept = math.floor(minority / ratio + 1e-9)
            raise InsufficientMinority(
                minority,
                need,
                name,
                f"resample.sampler 'random_under' needs at least {need} minority rows in the "
                f"training part; it has {minority}: at resample.target_ratio {ratio} it would "
                f"keep {kept} of {majority} majority rows (at least {MIN_KEPT_MAJORITY_ROWS} "
                "needed); use an over-sampler (e.g. smote) or class_weight balanced",
            )
        return RandomUnderSampler(sampling_strategy=ratio, random_state=seed), []
    if name not in NEIGHBOUR_SAMPLERS:
        raise ValueError(f"resample.sampler {name!r} is not supported")
    adaptations: list[str] = []
    k = k_neighbors
    if minority < k + 1:
        k = minority - 1
        adaptations.append(
            f"resample.k_neighbors lowered from {k_neighbors} to {k}: the training part has "
            f"{minority} minority rows and {name} needs k_neighbors + 1 of them"
        )
    smote = SMOTE(sampling_strategy=ratio, k_neighbors=k, random_state=seed)
    if name == "smote":
        return smote, adaptations
    if name == "smotenc":
        if n_categorical == 0:
            adaptations.append("smotenc found no categorical feature and ran as smote")
            return smote, adaptations
        if n_categorical >= n_columns:
            adaptations.append("smotenc found only categorical features and ran as smoten")
            return SMOTEN(sampling_strategy=ratio, k_neighbors=k, random_state=seed), adaptations
        return SMOTENC(
            categorical_features=list(range(n_categorical)),
            sampling_strategy=ratio,
            k_neighbors=k,
            random_state=seed,
        ), adaptations
    if name == "adasyn":
        return ADASYN(sampling_strategy=ratio, n_neighbors=k, random_state=seed), adaptations
    if name == "borderline_smote":
        # The danger test looks at m neighbours among all rows, so it needs m + 1 rows.
        rows = sum(counts.values())
        m = min(BORDERLINE_M_NEIGHBORS, rows - 1)
        if m < BORDERLINE_M_NEIGHBORS:
            adaptations.append(
                f"borderline_smote's m_neighbors lowered from {BORDERLINE_M_NEIGHBORS} to {m}: "
                f"the training part has {rows} rows"
            )
        return BorderlineSMOTE(
            sampling_strategy=ratio, k_neighbors=k, m_neighbors=m, random_state=seed
        ), adaptations
    if name == "smote_tomek":
        return SMOTETomek(smote=smote, random_state=seed), adaptations
    return SMOTEENN(smote=smote, random_state=seed), adaptations


class RecordingSampler(BaseEstimator):
    """Build the named imblearn sampler at fit time and remember what it did.

    imblearn's Pipeline calls `fit_resample` during fit only, so the sampler touches the
    training rows and never the rows a fitted pipeline predicts on. The sampler is built
    from the class counts it actually receives, so any refit (e.g. on a validation split)
    adapts to its own data. Only plain numbers and strings are kept after fitting, which
    keeps the persisted model small and its types trusted.
    """

    def __init__(
        self,
        sampler: str = "none",
        target_ratio: float = 1.0,
        k_neighbors: int = 5,
        seed: int = 0,
        n_categorical: int = 0,
    ) -> None:
        self.sampler = sampler
        self.target_ratio = target_ratio
        self.k_neighbors = k_neighbors
        self.seed = seed
        self.n_categorical = n_categorical

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        before = Counter(np.asarray(y).tolist())
        self.counts_before_ = {int(k): int(v) for k, v in before.items()}
        sampler, adaptations = make_sampler(
            self.sampler,
            self.target_ratio,
            self.k_neighbors,
            self.seed,
            self.counts_before_,
            self.n_categorical,
            int(np.shape(X)[1]),
        )
        X_out, y_out = X, y
        if sampler is not None:
            try:
                X_out, y_out = sampler.fit_resample(X, y)
            except RuntimeError as exc:
                # ADASYN cannot weight rows when no minority row has a majority neighbour.
                if self.sampler != "adasyn":
                    raise
                adaptations.append(f"adasyn could not run ({exc}); smote was used instead")
                X_out, y_out = SMOTE(
                    sampling_strategy=self.target_ratio,
                    k_neighbors=sampler.n_neighbors,
                    random_state=self.seed,
                ).fit_resample(X, y)
            except ValueError as exc:
                if "No samples will be generated" not in str(exc):
                    raise
                adaptations.append(f"{self.sampler} generated no rows ({exc})")
        after = Counter(np.asarray(y_out).tolist())
        self.counts_after_ = {int(k): int(after.get(k, 0)) for k in self.counts_before_}
        if sampler is not None and self.counts_after_ == self.counts_before_:
            adaptations.append(
                f"{self.sampler} left the class counts unchanged (e.g. no minority row was "
                "near the class border)"
            )
        emptied = [k for k, n in self.counts_after_.items() if n == 0]
        if emptied:
            raise InsufficientMinority(
                self.counts_before_[emptied[0]],
                2,
                self.sampler,
                f"resample.sampler {self.sampler!r} removed every training row of class "
                f"{emptied[0]}; choose another sampler (e.g. smote)",
            )
        self.adaptations_ = adaptations
        return X_out, y_out


class Fitted(Protocol):
    """What a fit records of the training part (tasks/training.py's Trained)."""

    @property
    def counts_before(self) -> dict[str, int]: ...
    @property
    def counts_after(self) -> dict[str, int]: ...
    @property
    def adaptations(self) -> list[str]: ...
    @property
    def class_weight(self) -> str: ...
    @property
    def sample(self) -> TrainingSample | None: ...
    @property
    def correction(self) -> Correction | None: ...


@dataclass(frozen=True)
class ResamplingOutcome:
    """What resampling did to the training part, under the table's class names."""

    sampler: str
    class_weight: str
    target_ratio: float
    before: dict[str, int]
    after: dict[str, int]
    adaptations: list[str]

    # The class-aware training sample and its correction (train_sample.sample_json).
    training_sample: JsonDict | None = None

    @classmethod
    def of(
        cls, trained: "Fitted", resample: ResampleParams, names: tuple[str, str]
    ) -> "ResamplingOutcome":
        named = dict(zip(("0", "1"), names, strict=True))
        sample, correction = trained.sample, trained.correction
        return cls(
            sampler=resample.sampler,
            class_weight=trained.class_weight,
            target_ratio=resample.target_ratio,
            before={named[k]: v for k, v in trained.counts_before.items()},
            after={named[k]: v for k, v in trained.counts_after.items()},
            adaptations=list(trained.adaptations),
            training_sample=None
            if sample is None or correction is None
            else sample_json(sample, correction, names),
        )

    def describe(self) -> JsonDict:
        return {
            "sampler": self.sampler,
            "class_weight": self.class_weight,
            "target_ratio": self.target_ratio,
            "before": dict(self.before),
            "after": dict(self.after),
            "change": {k: self.after[k] - v for k, v in self.before.items()},
            "adaptations": list(self.adaptations),
            **({} if self.training_sample is None else {"training_sample": self.training_sample}),
        }

    def check(self) -> CheckResult:
        """Report the class counts around resampling; warn when the sampler was adapted."""
        metrics: JsonDict = {
            "sampler": self.sampler,
            "before": dict(self.before),
            "after": dict(self.after),
            "adaptations": list(self.adaptations),
        }
        counts = f"class counts {self.before} -> {self.after}"
        if self.adaptations:
            summary = (
                f"{self.sampler} adapted to the training part: "
                + "; ".join(self.adaptations)
                + f" ({counts})"
            )
            return check("sampler_adapted").result("warn", summary, metrics=metrics)
        summary = f"{self.sampler} ran as configured ({counts})"
        return check("sampler_adapted").result("pass", summary, metrics=metrics)
