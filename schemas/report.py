"""The report: the JSON contract of every run, and the one exception that carries it."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Status = Literal["pass", "warn", "fail", "not_run"]
Stage = Literal[
    "run",
    "load",
    "schema",
    "profile",
    "leakage",
    "split",
    "resample",
    "train",
    "evaluate",
    "gate",
    "publish",
]

JsonDict = dict[str, JsonValue]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckResult(_Frozen):
    """One check's measurement and verdict."""

    code: str = Field(description="Stable snake_case code of the check, e.g. temporal_leakage.")
    stage: Stage = Field(description="Pipeline stage that ran the check.")
    status: Status = Field(description="pass, warn, fail, or not_run when an earlier halt.")
    columns: list[str] = Field(default_factory=list, description="Columns the finding names.")
    summary: str = Field(description="One line a person can read.")
    metrics: JsonDict = Field(default_factory=dict, description="Measured numbers behind it.")


class Failure(_Frozen):
    """Why a run halted."""

    code: str = Field(description="Code of the failed check.")
    stage: Stage
    summary: str
    details: JsonDict = Field(default_factory=dict)


class Cause(_Frozen):
    """One likely cause of a collapsed model, with what shows it and what to change."""

    cause: str = Field(description="Stable snake_case name of the cause.")
    title: str = Field(description="The cause in a few words.")
    evidence: str = Field(description="What this run measured that points to the cause.")
    remedy: str = Field(description="What to change, naming the parameter and value to try.")
    remedy_params: JsonDict = Field(
        default_factory=dict, description="Parameter paths and values to try, e.g. model.C."
    )
    metrics: JsonDict = Field(default_factory=dict)
    score: float = Field(description="Strength of the evidence in [0, 1]; causes sort by it.")


class DataSummary(_Frozen):
    """The table as read, and its fingerprint once the label is profiled (the run history
    compares the next runs with it)."""

    rows: int | None = None
    columns: list[str] = Field(default_factory=list)
    class_counts: dict[str, int] = Field(default_factory=dict)
    columns_hash: str | None = Field(
        default=None, description="Short SHA-256 of the column names and dtypes, in order."
    )
    label_time_min: str | None = Field(default=None, description="Earliest label time.")
    label_time_max: str | None = Field(default=None, description="Latest label time.")
    features: list[str] = Field(
        default_factory=list,
        description="Feature columns of the profiled table (empty and unusable ones left out).",
    )


class Published(_Frozen):
    version: str
    model_path: str
    report_path: str
    sha256: str
    # Types of the model beyond the built-in models' own that publish.trusted_types
    # trusted: what a loader passes to load_model's trusted_types.
    trusted_types: list[str] = Field(default_factory=list)


class Report(_Frozen):
    """Everything a run measured and decided; serialises to the report JSON."""

    status: Literal["passed", "failed"]
    failure: Failure | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    diagnosis: list[Cause] = Field(default_factory=list)
    metrics: JsonDict = Field(default_factory=dict)
    data: DataSummary = Field(default_factory=DataSummary)
    run: JsonDict = Field(default_factory=dict)
    published: Published | None = None

    def check(self, code: str) -> CheckResult | None:
        """Return the check with this code, if it ran."""
        return next((c for c in self.checks if c.code == code), None)

    def one_line(self) -> str:
        """Return the state message: the failure code first, or the pass verdict."""
        if self.failure is None:
            return "passed: every check passed"
        return f"{self.failure.code}: {self.failure.summary}"


class RetrainGuardHalt(Exception):
    """A check halted the run; the report says which and why.

    The report is the only argument so the exception pickles through Prefect's
    result storage and comes back whole.
    """

    def __init__(self, report: Report) -> None:
        super().__init__(report)
        self.report = report

    def __str__(self) -> str:
        return self.report.one_line()

    @property
    def code(self) -> str:
        return self.report.failure.code if self.report.failure else "unknown"
