"""The flow's one parameter: a frozen, documented pydantic model (the Prefect UI renders it)."""

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Sampler = Literal["none", "random_over", "random_under", "smote"]
ModelName = Literal["logistic_regression", "hist_gradient_boosting"]
# numpy's legacy seeding (used by scikit-learn's random_state) accepts 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataParams(_Params):
    """Where the training table is and what its columns mean."""

    path: str = Field(
        min_length=1, description="CSV or Parquet file with one row per labelled example."
    )
    label: str = Field(
        min_length=1, description="Column holding the class to predict (two classes)."
    )
    label_time: str | None = Field(
        default=None,
        description="Column holding the moment a prediction would be made for the row "
        "(ISO dates or datetimes). Enables temporal leakage checks and the time split.",
    )
    id_column: str | None = Field(
        default=None, description="Column identifying a row; used in reports, never as a feature."
    )
    drop: list[str] = Field(
        default_factory=list, description="Columns to leave out of the features."
    )


class SchemaParams(_Params):
    """Which pandera schema validates the table before anything else runs."""

    name: str | None = Field(
        default=None,
        description="Name of a schema in schemas/ (e.g. 'example'). Empty: the baseline schema "
        "(label present with two classes, label time parseable, no column entirely null).",
    )
    max_failure_cases: int = Field(
        default=100, ge=1, le=100_000, description="Failing rows listed per check in the report."
    )


class LeakageParams(_Params):
    """Thresholds of the leakage checks."""

    max_share_after_label_time: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Largest share of a date column's values that may fall after the row's "
        "label time before the run halts with temporal_leakage (any share above 0 warns).",
    )


class SplitParams(_Params):
    """How the holdout is cut from the data."""

    strategy: Literal["auto", "time", "random"] = Field(
        default="auto",
        description="time: the holdout is the latest rows by label time (needs data.label_time); "
        "random: stratified random split (reported as a warning when the data has a label "
        "time); auto: time when data.label_time is set, else random.",
    )
    holdout_fraction: float = Field(
        default=0.2, gt=0.0, le=0.5, description="Share of rows kept aside as the holdout."
    )
    gap_days: float = Field(
        default=0.0,
        ge=0.0,
        le=3650.0,
        description="Days between the last training label time and the first holdout label time; "
        "rows inside the gap are left out of both.",
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seed of the random split.")


class ResampleParams(_Params):
    """Resampling of the training part (never the holdout)."""

    sampler: Sampler = Field(
        default="none", description="imbalanced-learn sampler applied to the training part only."
    )
    target_ratio: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Minority/majority ratio the sampler aims for in the training part.",
    )
    k_neighbors: int = Field(
        default=5, ge=1, le=50, description="Neighbours SMOTE interpolates between."
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seed of the sampler.")


class ModelParams(_Params):
    """The estimator and its main hyperparameters."""

    name: ModelName = Field(default="logistic_regression", description="Estimator to train.")
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
        default=None, ge=1, le=64, description="hist_gradient_boosting: tree depth (empty: none)."
    )
    max_leaf_nodes: int = Field(
        default=31, ge=2, le=4096, description="hist_gradient_boosting: leaves per tree."
    )
    min_samples_leaf: int = Field(
        default=20, ge=1, le=100_000, description="hist_gradient_boosting: rows per leaf."
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
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seed of the estimator.")


class PublishParams(_Params):
    """Where the model and report go."""

    output_dir: str = Field(
        default="out",
        description="Directory of published models: <output_dir>/models/<version>/ and a "
        "'latest' pointer, moved only after every gate passed.",
    )


class ComputeParams(_Params):
    """Where the per-column checks run when the data outgrows one process."""

    task_runner: Literal["default", "dask"] = Field(
        default="default",
        description="default: the per-column checks run in turn in the flow's process; dask: "
        "each column's check is a Prefect task on a Dask cluster (needs prefect-dask).",
    )
    dask_workers: int = Field(
        default=2,
        ge=1,
        le=256,
        description="dask: worker processes of the local cluster started for the run.",
    )
    dask_address: str | None = Field(
        default=None,
        max_length=500,
        description="dask: address of an existing scheduler (e.g. tcp://10.0.0.5:8786); "
        "empty: start a local cluster of dask_workers processes for the run.",
    )


class RetrainParams(_Params):
    """Everything one retraining run needs; the Prefect UI shows it as the run form."""

    data: DataParams = Field(description="The training table and the roles of its columns.")
    schema_: SchemaParams = Field(
        default_factory=SchemaParams,
        alias="schema",
        description="Schema validation.",
    )
    leakage: LeakageParams = Field(
        default_factory=LeakageParams, description="Leakage policy: when a finding halts the run."
    )
    split: SplitParams = Field(
        default_factory=SplitParams, description="How the untouched holdout is cut."
    )
    resample: ResampleParams = Field(
        default_factory=ResampleParams, description="Sampler of the training part only."
    )
    model: ModelParams = Field(
        default_factory=ModelParams, description="Estimator, class weights, decision threshold."
    )
    publish: PublishParams = Field(
        default_factory=PublishParams, description="Where models and reports are written."
    )
    compute: ComputeParams = Field(
        default_factory=ComputeParams, description="Task runner of the per-column checks."
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check_cross_fields(self) -> "RetrainParams":
        named = [self.data.label, *([self.data.label_time] if self.data.label_time else [])]
        if self.data.id_column:
            named.append(self.data.id_column)
        if len(set(named)) != len(named):
            raise ValueError(
                "data.label, data.label_time and data.id_column must name different columns"
            )
        overlap = sorted(set(self.data.drop) & set(named))
        if overlap:
            raise ValueError(f"data.drop names role columns {overlap}; drop only features")
        if self.split.strategy == "time" and self.data.label_time is None:
            raise ValueError(
                "split.strategy 'time' needs data.label_time; set it, or choose split.strategy "
                "'random' for data without a time"
            )
        if self.split.gap_days > 0 and (
            self.split.strategy == "random" or self.data.label_time is None
        ):
            raise ValueError(
                "split.gap_days > 0 needs a time split: set data.label_time and split.strategy "
                "'time' or 'auto', or set split.gap_days to 0"
            )
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """Return the parameters as JSON-ready data (the key 'schema', not the field name)."""
        return self.model_dump(mode="json", by_alias=True)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config holding (part of) the parameter model.

    Raises:
        ValueError: the file is not a YAML mapping.
    """
    text = Path(path).read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(
            f"config {path}: expected a mapping at the top, got {type(loaded).__name__}"
        )
    return loaded


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return base updated by override, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
