"""The training sections of the flow's parameter: resampling, the model, the gate, compute.

schemas/params.py assembles them with the data sections into RetrainParams, the one
parameter of the flows (the Prefect UI renders it as the run form).
"""

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

Sampler = Literal[
    "none",
    "random_over",
    "random_under",
    "smote",
    "smotenc",
    "adasyn",
    "borderline_smote",
    "smote_tomek",
    "smote_enn",
]
ModelName = Literal[
    "logistic_regression",
    "hist_gradient_boosting",
    "random_forest",
    "balanced_random_forest",
    "custom",
]
# "package.module:ClassName": where model.estimator finds a custom estimator's class.
ESTIMATOR_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
# numpy's legacy seeding (used by scikit-learn's random_state) accepts 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1


class Section(BaseModel):
    """A section of the parameters: frozen, and unknown keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ResampleParams(Section):
    """Resampling of the training part (never the holdout)."""

    sampler: Sampler = Field(
        default="none",
        description="imbalanced-learn sampler applied to the training part only, inside the "
        "fitted pipeline: random_over / random_under duplicate or drop rows; smote, "
        "borderline_smote and adasyn interpolate synthetic minority rows; smotenc does so "
        "with categorical columns kept categorical; smote_tomek and smote_enn oversample, "
        "then clean both classes.",
    )
    target_ratio: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Minority/majority ratio the sampler aims for in the training part. "
        "When the training part already has this ratio (over-samplers) or is below it "
        "(under-samplers would have to add rows), nothing is resampled and the report says so.",
    )
    k_neighbors: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Neighbours the SMOTE family and adasyn interpolate between. With fewer "
        "minority rows than k_neighbors + 1 it is lowered to (minority rows - 1) and the "
        "report records it; with a single minority row the run halts (insufficient_minority).",
    )
    seed: int = Field(
        default=0, ge=0, le=MAX_SEED, description="Seed of the sampler (numpy's seed range)."
    )


class ModelParams(Section):
    """The estimator and its main hyperparameters."""

    name: ModelName = Field(
        default="logistic_regression",
        description="Estimator to train; custom: the class model.estimator names.",
    )
    estimator: str | None = Field(
        default=None,
        validate_default=True,
        description="custom only: the estimator's class as 'package.module:ClassName', a "
        "scikit-learn-compatible classifier with fit and predict_proba (e.g. "
        "'lightgbm:LGBMClassifier'). Published models holding its types need "
        "publish.trusted_types.",
    )
    params: dict[str, JsonValue] = Field(
        default_factory=dict,
        validate_default=True,
        description="custom only: keyword arguments of the estimator's class. class_weight "
        "'balanced' is passed when the class takes class_weight, model.class_weight is "
        "balanced and these arguments do not set it.",
    )
    class_weight: Literal["none", "balanced"] = Field(
        default="balanced",
        description="balanced: weight classes inversely to their frequency (cost-sensitive "
        "learning); none: every row weighs the same.",
    )
    C: float = Field(
        default=1.0,
        gt=0.0,
        le=1e6,
        description="logistic_regression: inverse regularisation strength (smaller = stronger).",
    )
    max_iter: int = Field(
        default=1000, ge=10, le=100_000, description="logistic_regression: solver iterations."
    )
    learning_rate: float = Field(
        default=0.1, gt=0.0, le=1.0, description="hist_gradient_boosting: shrinkage per tree."
    )
    max_depth: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="hist_gradient_boosting, random_forest, balanced_random_forest: tree depth "
        "(empty: unlimited).",
    )
    max_leaf_nodes: int = Field(
        default=31, ge=2, le=4096, description="hist_gradient_boosting: leaves per tree."
    )
    min_samples_leaf: int = Field(
        default=20, ge=1, le=100_000, description="hist_gradient_boosting: rows per leaf."
    )
    n_estimators: int = Field(
        default=100,
        ge=1,
        le=5000,
        description="random_forest, balanced_random_forest: number of trees; "
        "hist_gradient_boosting: boosting iterations.",
    )
    forest_min_samples_leaf: int = Field(
        default=1,
        ge=1,
        le=100_000,
        description="random_forest, balanced_random_forest: rows per leaf (larger = smoother, "
        "less overfitting).",
    )
    max_features: Literal["sqrt", "log2", "all"] = Field(
        default="sqrt",
        description="random_forest, balanced_random_forest: features tried per split.",
    )
    high_cardinality: int = Field(
        default=100,
        ge=2,
        le=1_000_000,
        description="A string column with more distinct values than this in the training part "
        "is reported as high-cardinality (high_cardinality_features); its categories beyond "
        "max_categories share one 'infrequent' slot either way.",
    )
    max_categories: int = Field(
        default=20,
        ge=2,
        le=1000,
        description="Categories kept per string column; rarer ones share one 'infrequent' slot.",
    )
    decision_threshold: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="Score of the positive class at or above which a row is predicted positive.",
    )
    seed: int = Field(
        default=0, ge=0, le=MAX_SEED, description="Seed of the estimator (numpy's seed range)."
    )

    @field_validator("estimator")
    @classmethod
    def _estimator_for_custom(cls, value: str | None, info: ValidationInfo) -> str | None:
        custom = info.data.get("name") == "custom"
        if custom and not value:
            raise ValueError(
                "required with model.name custom: the class as 'package.module:ClassName'"
            )
        if value is not None and not custom:
            raise ValueError(
                "only used with model.name custom; leave model.estimator out for "
                f"{info.data.get('name')}"
            )
        if value is not None and not ESTIMATOR_PATH.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an import path 'package.module:ClassName' "
                "(e.g. 'lightgbm:LGBMClassifier')"
            )
        return value

    @field_validator("params")
    @classmethod
    def _params_for_custom(
        cls, value: dict[str, JsonValue], info: ValidationInfo
    ) -> dict[str, JsonValue]:
        name = info.data.get("name")
        if value and name != "custom":
            raise ValueError(
                f"only used with model.name custom; {name} takes its settings from the "
                "model section's own fields"
            )
        return value


class GateParams(Section):
    """When the holdout results halt the run; single_class_prediction is always on."""

    min_predicted_to_true_ratio: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Smallest ratio, for each class, of holdout rows predicted as the class to "
        "holdout rows truly of it; below it the run halts with near_single_class_prediction "
        "(0.25: a class with 48 true holdout rows must be predicted for at least 12 rows; "
        "0: off).",
    )
    min_true_rows_for_ratio: int = Field(
        default=10,
        ge=1,
        le=1_000_000,
        description="True holdout rows a class needs before a ratio below "
        "gate.min_predicted_to_true_ratio halts the run; with fewer the ratio is too noisy "
        "to halt on, and a low one only warns.",
    )
    min_pr_auc_lift: float = Field(
        default=1.0,
        ge=0.0,
        le=100.0,
        description="Smallest ratio of holdout PR-AUC to its no-skill baseline (the positive "
        "share); below it the run halts with pr_auc_lift (1: no better than chance; 0: off).",
    )
    min_minority_recall: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Smallest holdout recall of the minority class; below it the run halts "
        "with minority_recall (0: off).",
    )
    max_roc_auc: float = Field(
        default=0.999,
        gt=0.5,
        le=1.0,
        description="Holdout ROC-AUC at or above which the result is suspiciously perfect "
        "(probable leakage): the run halts with suspiciously_perfect.",
    )
    suspiciously_perfect: Literal["fail", "warn"] = Field(
        default="fail",
        description="fail: a suspiciously perfect holdout halts the run; warn: it is reported "
        "and the model is published.",
    )
    validation_fraction: float = Field(
        default=0.2,
        gt=0.0,
        le=0.5,
        description="Share of the training part (its latest rows by label time, else a "
        "stratified random share) held out of a second fit to find the F1-maximising "
        "threshold; the holdout is never used for it.",
    )
    compare_metric: Literal["pr_auc", "roc_auc", "minority_recall"] = Field(
        default="pr_auc",
        description="Metric on which the new model is compared with the last good one "
        "(the model `latest` names), both scored on the new holdout: pr_auc, roc_auc, or "
        "minority_recall at each model's own threshold. worse_than_last_good halts the run "
        "when the new model is worse on it with 95% confidence by more than "
        "gate.max_regression.",
    )
    max_regression: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Tolerated drop of gate.compare_metric, relative to the last good "
        "model's value (0.05: a PR-AUC of 0.60 may fall to 0.57); the run halts with "
        "worse_than_last_good only when the upper bound of the 95% bootstrap interval of "
        "new - last good is below it. The interval already absorbs holdout noise, so the "
        "tolerance only says how large a real drop is worth stopping a retrain for: 5% "
        "is below what two fits on neighbouring extracts usually differ by on imbalanced "
        "data, and large enough that a fresher model is not refused for a slight loss.",
    )
    accept_regression: bool = Field(
        default=False,
        description="Publish even when worse_than_last_good fails (it then warns, naming "
        "this override); needs gate.accept_reason, which the report keeps.",
    )
    accept_reason: str = Field(
        default="",
        max_length=2000,
        description="Why a regression against the last good model is accepted (required "
        "with gate.accept_regression); kept in the report and the published model's report.",
    )

    approval: Literal["ask", "never"] = Field(
        default="never",
        description="ask: when the run would halt only on checks a person may override "
        "(worse_than_last_good, row_count_drop, label_shift, near_single_class_prediction), "
        "it pauses with the evidence and a form (approve, reason) in the Prefect UI; an "
        "approval publishes, a rejection or gate.approval_timeout halts as usual. never: "
        "such a run halts. Leakage, schema and one-class halts are never approvable. A "
        "command-line run without a Prefect server (PREFECT_API_URL) treats ask as never.",
    )
    approval_timeout: int = Field(
        default=3600,
        ge=5,
        le=7 * 24 * 3600,
        description="Seconds a paused run waits for a person's answer (gate.approval: ask); "
        "then it halts as without approval (3600: an hour; at most a week).",
    )

    @model_validator(mode="after")
    def _reason_for_override(self) -> "GateParams":
        if self.accept_regression and not self.accept_reason.strip():
            raise ValueError(
                "gate.accept_reason is required when gate.accept_regression is true: say why "
                "the regression is accepted"
            )
        return self


class ComputeParams(Section):
    """Which engine reads and checks the table, and on which cluster."""

    engine: Literal["pandas", "dask"] = Field(
        default="pandas",
        description="pandas: the table is read into the flow's process; dask: it is read as a "
        "Dask DataFrame on a cluster (a local one of dask_workers workers, or the scheduler "
        "at dask_address), where the schema and label profile run partition by partition; "
        "the later stages read the checked table column by column from the flow's disk "
        "(spill_dir).",
    )
    dask_workers: int = Field(
        default=2,
        ge=1,
        le=256,
        description="dask: workers of the local cluster started for the run, one task at "
        "a time each (threads of the flow's process unless dask_processes).",
    )
    dask_processes: bool = Field(
        default=False,
        description="dask: run the local cluster's workers as processes of their own, not "
        "as threads of the flow's process. A worker process that crashes or is killed for "
        "lack of memory is replaced and the run reports what failed, where a thread's crash "
        "ends the flow's process; each process holds its own imports and heap (at 20M rows "
        "the schema stage peaked at 1.74 GiB with two against 1.29 with threads, "
        "benchmarks/RESULTS.md).",
    )
    dask_address: str | None = Field(
        default=None,
        max_length=500,
        description="dask: address of an existing scheduler (e.g. tcp://10.0.0.5:8786); "
        "empty: start a local cluster of dask_workers workers for the run.",
    )
    spill_dir: str | None = Field(
        default=None,
        max_length=1000,
        description="dask: directory of the flow's machine where the checked table is "
        "stored while the run lasts (about its size in pandas; removed at the end); "
        "empty: the system's temporary directory.",
    )
    train_sample_rows: int = Field(
        default=1_000_000,
        ge=100,
        le=1_000_000_000,
        description="The model is fitted on a class-aware sample of the training part: a "
        "class with more rows than this keeps this many, drawn at random (split.seed), the "
        "other keeps all its rows, and class weights restore the whole part's class shares "
        "(the report states the sample and the correction). The holdout is never sampled.",
    )
    max_memory_fraction: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="A table whose estimated in-memory size exceeds this share of "
        "the memory available (the smaller of MemAvailable and the cgroup's limit minus its "
        "working set) is refused before it is read (table_too_large). A retrain run peaks at "
        "about 8.5 times the table, validate at 2.7 (benchmarks/RESULTS.md).",
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_removed(cls, given: Any) -> Any:
        # A config still setting the removed task runner is told why and what replaces it.
        if isinstance(given, Mapping) and "task_runner" in given:
            raise ValueError(
                "compute.task_runner was removed (the per-column Dask task runner was about "
                "100x slower than the default and did not bound memory, benchmarks/RESULTS.md); "
                "delete it, and use compute.engine: dask to run the data stages on a Dask cluster"
            )
        return given
