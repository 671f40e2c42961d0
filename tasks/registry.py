"""Every check a run can report, one entry each: the single place a check is declared.

An entry gives the check's stable `code` (the JSON `code` field), the stage that runs it,
the short `name` outputs show for it, and builds its results, so that a module never
writes a check's code or stage twice. The flows' lists of expected checks come from here.

Adding a check: one module with its measure and judge functions, one entry below, tests.
"""

from dataclasses import dataclass

from pydantic import JsonValue

from schemas.report import CheckResult, Stage, Status


@dataclass(frozen=True)
class Check:
    """A check as the outputs know it."""

    code: str
    stage: Stage
    name: str

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


# In the order a run reports them.
CHECKS: dict[str, Check] = _checks(
    Check("output_dir_unusable", "run", "output directory"),
    Check("task_runner_unavailable", "run", "task runner"),
    Check("invalid_parameters", "run", "parameters"),
    Check("internal_error", "run", "run"),
    Check("input_unreadable", "load", "input readable"),
    Check("schema_invalid", "schema", "schema"),
    Check("non_finite_values", "load", "finite numbers"),
    Check("unusable_columns", "load", "usable column types"),
    Check("non_numeric_values", "load", "numbers in numeric columns"),
    Check("empty_columns", "schema", "empty columns"),
    Check("single_class_target", "profile", "label classes"),
    Check("too_few_rows", "profile", "rows per class"),
    Check("unlabelled_rows", "profile", "unlabelled rows"),
    Check("leakage_config_invalid", "leakage", "leakage declarations"),
    Check("temporal_leakage", "leakage", "dates before the label time"),
    Check("missingness_leakage", "leakage", "missingness and class"),
    Check("target_leakage", "leakage", "single-feature separation"),
    Check("order_leakage", "leakage", "row order and id"),
    Check("resampling_leakage", "leakage", "resampling before the split"),
    Check("ambiguous_dates", "leakage", "day/month order"),
    Check("no_features_left", "leakage", "features left"),
    Check("insufficient_minority", "split", "classes in each part"),
    Check("random_split_on_timed_data", "split", "split strategy"),
    Check("rows_without_label_time", "split", "rows with a label time"),
    Check("holdout_fraction_off", "split", "holdout size"),
    Check("split_leakage", "split", "train/holdout overlap"),
    Check("sampler_adapted", "resample", "resampling"),
    Check("high_cardinality_features", "train", "feature cardinality"),
    Check("constant_features", "train", "constant features"),
    Check("single_class_prediction", "gate", "both classes predicted"),
    Check("near_single_class_prediction", "gate", "predicted vs true per class"),
    Check("pr_auc_lift", "gate", "PR-AUC lift"),
    Check("minority_recall", "gate", "minority recall"),
    Check("suspiciously_perfect", "gate", "too-perfect holdout"),
)


def check(code: str) -> Check:
    """Return the registered check `code`; an unknown code is a programming error."""
    return CHECKS[code]
