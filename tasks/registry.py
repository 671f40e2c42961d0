"""Every check a run can report, one entry each: the single place a check is declared.

An entry gives the check's stable `code` (the JSON `code` field), the stage that runs it,
the short `name` outputs show for it, what it means (README's table of codes is rendered
from it), the parameters that set its thresholds, its leak type and remedy for a leakage
check, and whether its findings name rows rather than columns. It builds the check's
results, so that a module never writes a check's code or stage twice. The flows' lists of
expected checks, the diagnosis' leak remedies and the README's table come from here. Adding
a check: one module with its measure and judge functions, one entry below, tests.
"""

from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

from retrain_guard.schemas.report import CheckResult, Stage, Status

# The flows that list a check in every report (reported not_run when a halt comes first).
Flow = Literal["validate", "retrain"]
BOTH: tuple[Flow, ...] = ("validate", "retrain")
RETRAIN: tuple[Flow, ...] = ("retrain",)

# Kapoor & Narayanan (2023), "Leakage and the reproducibility crisis in ML-based science".
LEAK_TYPES: dict[str, str] = {
    "L1.2": "preprocessing on training and test data",
    "L1.4": "duplicates in training and test data",
    "L2": "illegitimate feature",
    "L3.1": "temporal leakage",
}

# The remedy of a leak in feature columns: leaving them out mends it.
DROP_COLUMNS_REMEDY = (
    "leave out {columns} (data.drop) or rebuild them from data known at the label time"
)


@dataclass(frozen=True)
class Check:
    """A check as the outputs know it."""

    code: str
    stage: Stage
    name: str
    # What makes it fail (or warn): one line of README's table of codes.
    meaning: str
    # Parameter paths (as in the YAML config) that set its thresholds or switch it.
    parameters: tuple[str, ...] = ()
    # Leak types (LEAK_TYPES keys) of a leakage check's findings.
    taxonomy: tuple[str, ...] = ()
    # What to change when a leakage check finds a leak; {columns} names the columns.
    remedy: str = ""
    # Its findings are about rows (ids, copies, shared rows): no column drop removes them.
    names_rows: bool = False
    # Flows whose reports list it always; () for a check reported only when it happens.
    flows: tuple[Flow, ...] = ()
    # Other stages that run it too (their results pass `stage=`).
    also_stages: tuple[Stage, ...] = ()
    # A whole-table leakage check: "module:function" taking a LeakageTable, returning its
    # Judged result (tasks/leakage/table.py); tasks/leakage/detect.py runs them in this order.
    runs: str = ""
    # It reads no label: it runs even when the label is unusable.
    label_free: bool = False
    # A person may approve a run that fails only on such checks (gate.approval, tasks/approval.py).
    approvable: bool = False

    def result(
        self,
        status: Status,
        summary: str,
        columns: list[str] | None = None,
        metrics: dict[str, JsonValue] | None = None,
        stage: Stage | None = None,
    ) -> CheckResult:
        """Return this check's result; `stage` only where another stage runs it too."""
        return CheckResult(
            code=self.code,
            stage=stage or self.stage,
            status=status,
            columns=list(columns or []),
            summary=summary,
            metrics=dict(metrics or {}),
        )


def _checks(*checks: Check) -> dict[str, Check]:
    return {c.code: c for c in checks}


_CLI_EXIT_2 = "(the CLI exits 2)"
# In the order a run reports them.
CHECKS: dict[str, Check] = _checks(
    Check(
        "invalid_parameters",
        "run",
        "parameters",
        "(CLI, exit 2) a flag or setting is invalid or names a column the table lacks, a "
        "custom estimator (`model.estimator`, `model.params`) cannot be built or fitted, or "
        "the model holds types `publish.trusted_types` does not list; the summary names the "
        "flag or setting; written to `--report` when given",
        also_stages=("train", "publish"),
    ),
    Check(
        "output_dir_unusable",
        "run",
        "output directory",
        "`publish.output_dir` is a file or not writable; checked before any data is read "
        + _CLI_EXIT_2,
        parameters=("publish.output_dir",),
    ),
    Check(
        "internal_error",
        "run",
        "run without error",
        "(CLI, exit 3) the run broke off on an unexpected error",
    ),
    Check(
        "engine_unavailable",
        "load",
        "engine installed",
        "`compute.engine: dask` without the dask extra (`pip install 'retrain-guard[dask]'`, or "
        "set `compute.engine` to `pandas`); checked before any data is read " + _CLI_EXIT_2,
        parameters=("compute.engine",),
    ),
    Check("input_unreadable", "load", "readable input", "the table cannot be read (exit 2)"),
    Check(
        "table_too_large",
        "load",
        "table fits in memory",
        "its estimated size exceeds `compute.max_memory_fraction` of free memory (pandas "
        "engine) or the free space of `compute.spill_dir` (Dask engine) " + _CLI_EXIT_2,
        parameters=("compute.max_memory_fraction", "compute.spill_dir"),
    ),
    Check(
        "schema_invalid",
        "schema",
        "schema",
        "the schema declaration is wrong, the header repeats a column name (CSV or Parquet), "
        "or the table breaks the schema; every failure is listed in words with its rows",
        parameters=("schema.name", "schema.max_failure_cases"),
        flows=BOTH,
    ),
    Check(
        "non_finite_values",
        "load",
        "finite numbers",
        "(warns) a numeric column holds ±inf or values beyond ±1e100 (which overflow float64 "
        "sums of squares); they count as missing for every check and the model, and the report "
        "gives the count and rows per column. A user schema that forbids them still fails",
        flows=BOTH,
    ),
    Check(
        "unusable_columns",
        "load",
        "usable column types",
        "a feature holds lists, structs, maps, bytes or mixed Python objects: it is left out "
        "of the features and every check (warns); fails when the label, label time or id is "
        "such a column (measured before the schema, which then leaves that column alone, so "
        "this is the run's failure), or no feature is left",
        flows=BOTH,
    ),
    Check(
        "non_numeric_values",
        "load",
        "numbers stored as text",
        "(warns) a text feature whose present values are numbers except a few (at least 99%, "
        "and all but at most 20) is read as numbers: the stray values count as missing, and "
        "the report gives the count and example rows (position, id) and values per column. "
        "Decimal features are read as float64 and durations as days; the check's summary and "
        "metrics name them. A user schema that declares the column numeric still fails on the "
        "strays",
        flows=BOTH,
    ),
    Check(
        "empty_columns",
        "schema",
        "empty columns",
        "(warns) a feature column is empty in every row; it is left out of the features (a "
        "schema that forbids nulls fails instead)",
        flows=BOTH,
    ),
    Check(
        "single_class_target",
        "profile",
        "label classes",
        "the label has fewer than two classes (warns below 1% minority)",
        flows=BOTH,
    ),
    Check(
        "too_few_rows",
        "profile",
        "rows per class",
        "a class of the label has fewer than 3 labelled rows (2 to learn from, 1 in the "
        "holdout), naming the rows per class; the leakage checks still run and the run halts "
        "after them",
        flows=BOTH,
    ),
    Check(
        "unlabelled_rows",
        "profile",
        "unlabelled rows",
        "(warns) rows without a label (a schema may allow them) were left out",
    ),
    Check(
        "row_count_drop",
        "profile",
        "rows against the last good run",
        "the table has fewer rows than `history.min_row_ratio` (0.5) times the last good run's "
        "(the last that published a model; for validate-data the last that passed), from "
        "`<publish.output_dir>/history.sqlite`; not_run without one",
        parameters=("history.min_row_ratio",),
        flows=BOTH,
        approvable=True,
    ),
    Check(
        "label_shift",
        "profile",
        "minority share against the last good run",
        "(warns) the minority share moved by more than a factor `history.max_label_shift` (2), "
        "up or down, against the last good run's; not_run without one",
        parameters=("history.max_label_shift",),
        flows=BOTH,
        approvable=True,
    ),
    Check(
        "feature_set_changed",
        "profile",
        "features against the last good run",
        "(warns) feature columns were added or removed against the last good run's, naming "
        "them; not_run without one",
        flows=BOTH,
    ),
    Check(
        "leakage_config_invalid",
        "leakage",
        "leakage declarations",
        "`leakage.known_at` names a column the table lacks, one that holds no dates, or a text "
        "that is both an offset and a column name",
        parameters=("leakage.known_at",),
    ),
    Check(
        "temporal_leakage",
        "leakage",
        "dates before the label time",
        "a date column has more than 1% of its values after the label time",
        parameters=("leakage.max_share_after_label_time", "leakage.known_at"),
        taxonomy=("L3.1",),
        remedy=DROP_COLUMNS_REMEDY,
        flows=BOTH,
        runs="retrain_guard.tasks.leakage.temporal:run",
        label_free=True,
    ),
    Check(
        "missingness_leakage",
        "leakage",
        "missing values by class",
        "a column's presence alone tells the classes apart",
        parameters=(
            "leakage.missingness_ratio_fail",
            "leakage.missingness_ratio_warn",
            "leakage.min_evidence_rows",
        ),
        taxonomy=("L2",),
        remedy=DROP_COLUMNS_REMEDY,
        flows=BOTH,
        runs="retrain_guard.tasks.leakage.missingness:run",
    ),
    Check(
        "target_leakage",
        "leakage",
        "single-feature separation",
        "one feature alone ranks the classes (ROC-AUC >= 0.99) or is a function of the label "
        "(one value per class, counted only when each class has at least 10 rows); not_run "
        "when the smaller class has fewer than 3 rows",
        parameters=("leakage.target_auc_fail", "leakage.target_auc_warn"),
        taxonomy=("L2",),
        remedy=DROP_COLUMNS_REMEDY,
        flows=BOTH,
        runs="retrain_guard.tasks.leakage.target:run",
    ),
    Check(
        "order_leakage",
        "leakage",
        "id and row order",
        "(warns) the id or row order predicts the label beyond what time explains; not_run "
        "when the smaller class has fewer than 3 rows",
        parameters=("leakage.order_auc_warn",),
        taxonomy=("L2",),
        remedy="find out why the id or row order predicts the label (ids issued after the "
        "outcome, a table sorted by label) and fix the extract; ids are never features",
        names_rows=True,
        flows=BOTH,
        runs="retrain_guard.tasks.leakage.order:run",
    ),
    Check(
        "resampling_leakage",
        "leakage",
        "resampling before the split",
        "the input shows copies or SMOTE segments of minority rows made before the split",
        parameters=("leakage.max_resampled_share", "leakage.min_evidence_rows"),
        taxonomy=("L1.2",),
        remedy="resample only inside retrain-guard (resample.sampler), on raw rows extracted "
        "before any oversampling",
        names_rows=True,
        flows=BOTH,
        runs="retrain_guard.tasks.leakage.resampling:run",
    ),
    Check(
        "ambiguous_dates",
        "leakage",
        "day/month order",
        "(warns) a date column's day/month order is not settled by any value, or its values "
        "contradict each other; it stays text",
        flows=BOTH,
        runs="retrain_guard.tasks.leakage.temporal:run_ambiguous_dates",
        label_free=True,
    ),
    Check(
        "no_features_left",
        "leakage",
        "features left",
        "`on_leakage: drop` removed every feature",
        parameters=("leakage.on_leakage",),
    ),
    Check(
        "insufficient_minority",
        "split",
        "classes in each part",
        "a part of the split lacks a class, or the training part has fewer than 2 minority "
        "rows (any sampler, `none` included; `random_under` needs enough to keep 10 majority "
        "rows), naming the sampler and the rows had and needed",
        parameters=("split.holdout_fraction", "resample.sampler"),
        flows=RETRAIN,
        also_stages=("resample",),
    ),
    Check(
        "random_split_on_timed_data",
        "split",
        "split strategy",
        "(warns) a random split was asked for on data with a label time",
        parameters=("split.strategy",),
    ),
    Check(
        "rows_without_label_time",
        "split",
        "rows with a label time",
        "(warns) rows without a label time were left out of the time split; fails when no row "
        "has one (nothing to cut on)",
    ),
    Check(
        "holdout_fraction_off",
        "split",
        "holdout size",
        "(warns) the realised holdout is below 0.5x or above 1.5x `split.holdout_fraction`: "
        "rows tied at the cut's label time cannot be divided",
        parameters=("split.holdout_fraction",),
        flows=RETRAIN,
    ),
    Check(
        "split_leakage",
        "split",
        "train/holdout overlap",
        "holdout rows repeat training rows, or the holdout is not after the training part",
        parameters=("leakage.max_shared_row_share",),
        taxonomy=("L1.4", "L3.1"),
        remedy="remove duplicated rows from the source table before training",
        names_rows=True,
        flows=RETRAIN,
    ),
    Check(
        "sampler_adapted",
        "resample",
        "sampler settings",
        "(warns) the sampler was adapted to the data, e.g. fewer SMOTE neighbours",
        parameters=("resample.sampler", "resample.k_neighbors"),
        flows=RETRAIN,
    ),
    Check(
        "high_cardinality_features",
        "train",
        "feature cardinality",
        "(warns) string features with too many values to one-hot",
        parameters=("model.high_cardinality",),
        flows=RETRAIN,
    ),
    Check(
        "constant_features",
        "train",
        "constant features",
        "(warns) features empty or constant after preprocessing",
        flows=RETRAIN,
    ),
    Check(
        "single_class_prediction",
        "gate",
        "both classes predicted",
        "the model predicts one class on the whole holdout",
        parameters=("model.decision_threshold",),
        flows=RETRAIN,
    ),
    Check(
        "near_single_class_prediction",
        "gate",
        "predicted vs true counts",
        "a class is predicted for fewer than `gate.min_predicted_to_true_ratio` (0.25) times "
        "the holdout rows truly of it, e.g. 1 predicted of 43 true; with fewer than "
        "`gate.min_true_rows_for_ratio` (10) true rows it only warns",
        parameters=("gate.min_predicted_to_true_ratio", "gate.min_true_rows_for_ratio"),
        flows=RETRAIN,
        approvable=True,
    ),
    Check(
        "pr_auc_lift",
        "gate",
        "PR-AUC lift",
        "holdout PR-AUC is under `gate.min_pr_auc_lift` times its no-skill baseline",
        parameters=("gate.min_pr_auc_lift",),
        flows=RETRAIN,
    ),
    Check(
        "minority_recall",
        "gate",
        "minority recall",
        "minority recall is under `gate.min_minority_recall` (off by default)",
        parameters=("gate.min_minority_recall",),
        flows=RETRAIN,
    ),
    Check(
        "suspiciously_perfect",
        "gate",
        "too-perfect holdout",
        "holdout ROC-AUC >= `gate.max_roc_auc` (0.999): probable leakage",
        parameters=("gate.max_roc_auc", "gate.suspiciously_perfect"),
        flows=RETRAIN,
    ),
    Check(
        "worse_than_last_good",
        "gate",
        "no worse than the last good model",
        "the new model is worse than the last good one (`latest`, scored on the same holdout "
        "rows) on `gate.compare_metric` with 95% confidence (paired bootstrap) by more than "
        "`gate.max_regression` (0.05) of its value; warns when `gate.accept_regression` "
        "overrides it; not_run on a first run, or when the last good model fails "
        "verification, lacks features of the new table or has other classes",
        parameters=(
            "gate.compare_metric",
            "gate.max_regression",
            "gate.accept_regression",
            "gate.accept_reason",
        ),
        flows=RETRAIN,
        approvable=True,
    ),
    Check(
        "latest_moved",
        "publish",
        "last good model unchanged",
        "another run published a model after this run was compared with the last good one; "
        "nothing is published (run again to be compared with the new model)",
    ),
)

# The whole-table leakage checks, in the order a run reports them.
WHOLE_TABLE_LEAKS = tuple(c for c in CHECKS.values() if c.runs)
LABEL_FREE_LEAKS = tuple(c.code for c in WHOLE_TABLE_LEAKS if c.label_free)

# Checks a person may approve in a run that fails on nothing else (gate.approval: ask).
APPROVABLE = frozenset(c.code for c in CHECKS.values() if c.approvable)

# Leakage checks whose findings are about rows: a column drop cannot remove them.
ROW_CHECKS = frozenset(c.code for c in CHECKS.values() if c.names_rows)
# Leakage checks whose findings name feature columns: leaving the columns out mends them.
COLUMN_LEAKS = frozenset(c.code for c in CHECKS.values() if c.taxonomy and not c.names_rows)


def check(code: str) -> Check:
    """Return the registered check `code`; an unknown code is a programming error."""
    return CHECKS[code]


def expected_checks(flow: Flow) -> tuple[tuple[str, Stage], ...]:
    """Return the (code, stage) of every check `flow` reports, in report order."""
    return tuple((c.code, c.stage) for c in CHECKS.values() if flow in c.flows)


def name_of(code: str) -> str:
    """Return the name outputs show for `code` (the code itself when it is not registered)."""
    registered = CHECKS.get(code)
    return registered.name if registered else code


def label(code: str, status: Status) -> str:
    """Return how outputs name a check: its name, with the code when it warns or fails."""
    name = name_of(code)
    return f"{name} ({code})" if status in ("warn", "fail") and name != code else name


def leak_type(tag: str) -> str:
    """Return a leak type with its name, e.g. 'L3.1 temporal leakage'."""
    return f"{tag} {LEAK_TYPES[tag]}"
