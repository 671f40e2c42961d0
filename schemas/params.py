"""The flow's one parameter: a frozen, documented pydantic model (the Prefect UI renders it)."""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from retrain_guard.schemas.training_params import (
    MAX_SEED,
    ComputeParams,
    GateParams,
    ModelName,
    ModelParams,
    ResampleParams,
    Sampler,
    Section,
)
from retrain_guard.tasks.masking import (
    mask_options,
    mask_url,
    option_secrets,
    sql_source_name,
    url_secrets,
)
from retrain_guard.tasks.offsets import OFFSET_GRAMMAR, looks_like_offset, parse_offset

__all__ = [
    "ComputeParams",
    "DataParams",
    "GateParams",
    "HistoryParams",
    "LeakageParams",
    "ModelName",
    "ModelParams",
    "PublishParams",
    "ResampleParams",
    "RetrainParams",
    "Sampler",
    "SchemaParams",
    "SplitParams",
]


class DataParams(Section):
    """Where the training table is (a file, a Parquet dataset, a URL or a SQL query) and what
    its columns mean."""

    path: str | None = Field(
        default=None,
        min_length=1,
        description="CSV or Parquet file with one row per labelled example, a directory "
        "holding a (hive-partitioned) Parquet dataset, or an fsspec URL of either "
        "(s3://bucket/key.parquet, gs://..., file://...). Give path or sql, not both.",
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

    sql: str | None = Field(
        default=None,
        min_length=1,
        description="A SQL query, or the name of a table, read from data.connection instead "
        "of a file. Give path or sql, not both.",
    )
    connection: str | None = Field(
        default=None,
        min_length=1,
        description="For data.sql: a SQLAlchemy URL (postgresql+psycopg://user@host/db, "
        "sqlite:///file.db), or the name of a Prefect Secret block holding one (keeps "
        "the password out of the parameters). Passwords are masked wherever it is shown.",
    )
    credentials_block: str | None = Field(
        default=None,
        min_length=1,
        description="For a URL path: a prefect-aws block with the credentials, as "
        "'aws-credentials/NAME' or 's3-bucket/NAME' (a bare NAME tries both). With an "
        "S3Bucket block, a path without a scheme is a key in its bucket and folder.",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="For a URL path: options passed to fsspec (e.g. for S3 "
        "{'client_kwargs': {'endpoint_url': 'http://127.0.0.1:9000'}}); they override the "
        "credentials block's. Secret values are masked wherever they are shown; prefer a block.",
    )

    @model_validator(mode="after")
    def _check_source(self) -> "DataParams":
        if (self.path is None) == (self.sql is None):
            raise ValueError("give exactly one of data.path and data.sql")
        if self.sql is not None and self.connection is None:
            raise ValueError("data.sql needs data.connection (a SQLAlchemy URL or a block name)")
        if self.sql is None and self.connection is not None:
            raise ValueError("data.connection is for data.sql; a file or URL goes in data.path")
        if self.sql is not None and (self.credentials_block or self.storage_options):
            raise ValueError(
                "data.credentials_block and data.storage_options are for a URL in data.path"
            )
        return self

    @field_serializer("path", "connection", when_used="json")
    def _mask_url(self, value: str | None) -> str | None:
        return None if value is None else mask_url(value)

    @field_serializer("storage_options", when_used="json")
    def _mask_options(self, value: dict[str, Any]) -> dict[str, Any]:
        return mask_options(value)

    @property
    def source(self) -> str:
        """The source as messages name it, without secrets: the path or URL, or the
        query's first line (a table's name) and the connection."""
        if self.path is not None:
            return mask_url(self.path)
        return sql_source_name(str(self.sql), str(self.connection))

    def secrets(self) -> list[str]:
        """Return the secret values written into the parameters themselves."""
        found = option_secrets(self.storage_options)
        for text in (self.path, self.connection):
            found += url_secrets(text) if text else []
        return found

    def feature_columns(self, columns: Iterable[object]) -> list[str]:
        """Return the columns used as features: all but the label, label time, id and drops."""
        excluded = {self.label, self.label_time, self.id_column, *self.drop}
        return [str(c) for c in columns if str(c) not in excluded]


class SchemaParams(Section):
    """Which pandera schema validates the table before anything else runs."""

    name: str | None = Field(
        default=None,
        description="Name of a schema in schemas/ (e.g. 'example'), or the path of a YAML "
        "schema (ending .yaml or .yml). Empty: the baseline schema "
        "(label present with two classes, label time parseable; an entirely empty column "
        "warns and is left out of the features).",
    )
    max_failure_cases: int = Field(
        default=100, ge=1, le=100_000, description="Failing rows listed per check in the report."
    )
    redact_values: bool = Field(
        default=False,
        description="Show failing values as their type and a hash instead of the value (PII); "
        "a YAML schema can also ask for it.",
    )


class LeakageParams(Section):
    """Thresholds of the leakage checks."""

    max_share_after_label_time: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Largest share of a date column's values that may fall after the row's "
        "label time before the run halts with temporal_leakage (any share above 0 warns).",
    )
    known_at: dict[str, str] = Field(
        default_factory=dict,
        description="Declared availability: feature column -> when its value becomes known, "
        "either another column holding that time (e.g. 'score': 'score_computed_at') or an "
        "offset from the label time: an optional sign, an amount and a unit w, d, h, min or s "
        "('0d' at the label time, '-1d' a day before, '+30d' thirty days after), the same "
        "grammar as a YAML schema's roles.known_at. A text that reads as an offset is always "
        "an offset. Values known after the label time count like dates after it "
        "(temporal_leakage). A declared column is judged by its declaration only: declare a "
        "future date known in advance (a scheduled due date) as '0d'.",
    )
    target_auc_fail: float = Field(
        default=0.99,
        ge=0.5,
        le=1.0,
        description="Single-feature ROC-AUC (folded to >= 0.5) at or above which a feature "
        "halts the run with target_leakage; a feature equal to a function of the label fails. "
        "The gate (suspiciously_perfect) and the diagnosis name a feature that alone separates "
        "the training part at this level too.",
    )
    target_auc_warn: float = Field(
        default=0.95,
        ge=0.5,
        le=1.0,
        description="Single-feature ROC-AUC at or above which target_leakage warns.",
    )
    order_auc_warn: float = Field(
        default=0.75,
        ge=0.5,
        le=1.0,
        description="ROC-AUC of the row order or of data.id_column at or above which "
        "order_leakage warns, unless the label time explains it (AUC within time bins).",
    )
    missingness_ratio_fail: float = Field(
        default=100.0,
        ge=1.0,
        le=1e9,
        description="missingness_leakage fails when a column is present (or absent) this many "
        "times more often in one class than in the other (e.g. a date filled only for positives).",
    )
    missingness_ratio_warn: float = Field(
        default=20.0, ge=1.0, le=1e9, description="Ratio at which missingness_leakage warns."
    )
    max_shared_row_share: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="split_leakage fails when more than this share of the holdout repeats a "
        "training row (beyond chance); fewer shared rows, if more than chance explains, warn.",
    )
    max_resampled_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="resampling_leakage fails when more than this share of minority rows look "
        "made by resampling before the split (excess copies, or points on a segment between "
        "two other minority rows as SMOTE makes them); a smaller excess warns.",
    )
    min_evidence_rows: int = Field(
        default=10,
        ge=1,
        le=1_000_000,
        description="Rows of evidence a missingness, duplicate or resampling finding needs.",
    )
    on_leakage: Literal["fail", "drop", "warn"] = Field(
        default="fail",
        description="fail: a leakage finding above its threshold halts the run; drop: remove "
        "the flagged feature columns, record them in the report and continue (row findings "
        "such as duplicates still halt); warn: report every finding and continue.",
    )

    @field_validator("known_at")
    @classmethod
    def _check_known_at(cls, value: dict[str, str]) -> dict[str, str]:
        for column, when in value.items():
            if not when.strip():
                raise ValueError(f"leakage.known_at[{column!r}] is empty")
            if looks_like_offset(when) and parse_offset(when) is None:
                raise ValueError(
                    f"leakage.known_at[{column!r}] = {when!r}: an offset is {OFFSET_GRAMMAR}"
                )
        return value

    @model_validator(mode="after")
    def _check_order(self) -> "LeakageParams":
        if self.target_auc_warn > self.target_auc_fail:
            raise ValueError("leakage.target_auc_warn must not exceed leakage.target_auc_fail")
        if self.missingness_ratio_warn > self.missingness_ratio_fail:
            raise ValueError(
                "leakage.missingness_ratio_warn must not exceed leakage.missingness_ratio_fail"
            )
        return self


class SplitParams(Section):
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


class PublishParams(Section):
    """Where the model and report go."""

    output_dir: str = Field(
        default="out",
        description="Directory of published models: `models/VERSION/` inside it and a "
        "'latest' pointer, moved only after every gate passed.",
    )
    trusted_types: list[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")]
    ] = Field(
        default_factory=list,
        description="Exact fully-qualified type names, beyond the built-in models' own, that "
        "a published model may hold and loading it trusts (a custom estimator's classes, e.g. "
        "lightgbm.sklearn.LGBMClassifier, lightgbm.basic.Booster, collections.OrderedDict). "
        "A run whose model holds any other type fails before publishing, naming them.",
    )


class HistoryParams(Section):
    """Checks of the data against the last good run's, from <publish.output_dir>/history.sqlite."""

    min_row_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="row_count_drop fails when the table has fewer rows than this share of "
        "the last good run's (0.5: a table under half of yesterday's is a truncated extract; "
        "0 turns it off).",
    )
    max_label_shift: float = Field(
        default=2.0,
        gt=1.0,
        le=1000.0,
        description="label_shift warns when the minority share moved by more than this "
        "factor, up or down, against the last good run's (2: it doubled or halved).",
    )
    last_n: int = Field(
        default=20, ge=1, le=1000, description="Runs the retrain-guard-history artifact shows."
    )


class RetrainParams(Section):
    """Everything one retraining run needs; the Prefect UI shows it as the run form."""

    data: DataParams = Field(description="The training table and the roles of its columns.")
    schema_: SchemaParams = Field(
        default_factory=SchemaParams,
        alias="schema",
        description="Schema validation.",
    )
    history: HistoryParams = Field(
        default_factory=HistoryParams, description="Checks against the last good run's data."
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
    gate: GateParams = Field(
        default_factory=GateParams, description="When the holdout results halt the run."
    )
    publish: PublishParams = Field(
        default_factory=PublishParams, description="Where models and reports are written."
    )
    compute: ComputeParams = Field(
        default_factory=ComputeParams,
        description="Engine of the data stages and its cluster.",
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


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Return a YAML parse error as one line: where, and what went wrong."""
    where = getattr(exc, "problem_mark", None)
    at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"not valid YAML{at}: {problem}"


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config holding (part of) the parameter model.

    Raises:
        ValueError: the file is not valid YAML, or not a mapping.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(describe_yaml_error(exc)) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"expected a mapping at the top, got {type(loaded).__name__}")
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


def describe_validation(exc: ValidationError, flags: Mapping[str, str] | None = None) -> str:
    """Describe a validation error by each failing setting and its rule, never by the value
    given (pydantic's own text quotes the input, which may hold a password); `flags` names the
    command-line flag of a setting."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        flag = (flags or {}).get(where)
        name = f"{where} ({flag})" if flag else where or "parameters"
        message = error["msg"].removeprefix("Value error, ")
        # A message that names its setting itself (a removed one) is not prefixed again.
        parts.append(message if where and message.startswith(f"{where}.") else f"{name}: {message}")
    return "invalid parameters: " + "; ".join(parts)
