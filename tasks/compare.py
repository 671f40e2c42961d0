"""The new model against the last good one on the same holdout rows: worse_than_last_good.

`compare_with_last_good` loads the model `<publish.output_dir>/models/latest` names (its hash
and types verified, tasks/publish.py), scores it on the holdout the new model is judged on,
and measures both models' PR-AUC, ROC-AUC and minority recall (each at its own threshold)
with the paired, class-stratified bootstrap interval of their difference
(tasks/bootstrap.py). It returns a `Comparison`, or `NotCompared` with the reason: no last
good model, a model that fails verification, features the new table lacks, other classes.

`judge_regression` is the gate's check: it fails when the new model is worse with 95%
confidence by more than `gate.max_regression` (relative to the last good model's value) on
`gate.compare_metric`, and warns instead when `gate.accept_regression` overrides it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.params import GateParams, RetrainParams
from retrain_guard.schemas.report import CheckResult, JsonDict
from retrain_guard.tasks.bootstrap import PairedBootstrap, PairedInterval
from retrain_guard.tasks.publish import latest_version, load_model
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.training import LabelledModel, Parts, Trained, plain_value, positive_scores

CODE = "worse_than_last_good"
# At most REPLICATES; the first draw costs about FIRST_DRAW weights (rows x replicates), and
# never fewer than MIN_REPLICATES. Up to 40,000 holdout rows every comparison draws 1000;
# at 1M rows the first draw is MIN_REPLICATES, about a fifth of the time (RESULTS.md).
REPLICATES = 1000
MIN_REPLICATES = 200
FIRST_DRAW = 40_000_000
# Replicates added per step after the first draw, while the verdict is not settled.
STEP = 200
# How many binomial standard errors of its rank the interval's upper bound must lie from the
# tolerance line before more replicates could not plausibly move it across (see `settled`).
SETTLED_Z = 3.0
SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class NotCompared:
    """Why the new model was not compared with a last good one."""

    reason: str
    version: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Both models on the same holdout rows, per metric with the paired interval."""

    version: str
    rows: int
    thresholds: tuple[float, float]
    metrics: dict[str, PairedInterval]
    replicates: int = REPLICATES

    def to_json(self, gate: GateParams) -> JsonDict:
        """Return the report's `comparison` section, with the override when one is set."""
        section: JsonDict = {
            "last_good_version": self.version,
            "holdout_rows": self.rows,
            "replicates": self.replicates,
            "confidence": LEVEL,
            "thresholds": {"new": self.thresholds[0], "last_good": self.thresholds[1]},
            "metric": gate.compare_metric,
            "max_regression": gate.max_regression,
            "metrics": {
                name: {
                    "new": _round(m.new),
                    "last_good": _round(m.old),
                    "difference": _round(m.difference),
                    "interval": [_round(m.low), _round(m.high)],
                }
                for name, m in self.metrics.items()
            },
        }
        if gate.accept_regression:
            section["accepted_regression"] = {"reason": gate.accept_reason}
        return section


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


@dataclass(frozen=True)
class LastGood:
    """The last good model as loaded, with its version."""

    version: str
    model: LabelledModel


def load_last_good(
    output_dir: str | Path, trusted_types: Iterable[str] = ()
) -> LastGood | NotCompared:
    """Load the model `latest` names, verified (trusting the built-in models' types and
    `trusted_types`); NotCompared says why none can be used."""
    version = latest_version(output_dir)
    if version is None:
        return NotCompared(f"no last good model under {Path(output_dir) / 'models'} (first run)")
    try:
        model = load_model(Path(output_dir) / "models" / version, trusted_types)
    except Exception as exc:  # any unreadable or tampered file: never a crash of the run
        return NotCompared(f"last good model {version} failed verification: {exc}", version)
    if not isinstance(model, LabelledModel):
        kind = type(model).__name__
        return NotCompared(f"last good model {version} is a {kind}, not a LabelledModel", version)
    return LastGood(version, model)


def _features_of(model: LabelledModel) -> list[str]:
    return [str(c) for c in getattr(model.model, "feature_names_in_", [])]


def settled(differences: np.ndarray, line: float, level: float = LEVEL) -> bool:
    """Whether more replicates could not plausibly move the interval's upper bound across `line`.

    The upper bound is the replicates' `level` quantile q: the order statistic of rank about
    B*q. Its rank is uncertain by a binomial standard error sqrt(B*q*(1-q)); the verdict is
    settled when `line` lies outside the values between the ranks SETTLED_Z such errors
    either side. Distribution-free: no shape of the differences is assumed.
    """
    count = len(differences)
    if not count:
        return True  # the metric is undefined in every replicate: more will not define it
    q = 1 - (1 - level) / 2
    spread = SETTLED_Z * np.sqrt(count * q * (1 - q))
    ordered = np.sort(differences)
    low = ordered[max(0, int(np.floor(count * q - spread)))]
    high = ordered[min(count - 1, int(np.ceil(count * q + spread)))]
    return bool(line < low or line > high)


def bootstrap_for_gate(
    y: np.ndarray,
    new_scores: np.ndarray,
    old_scores: np.ndarray,
    thresholds: tuple[float, float],
    gate: GateParams,
) -> PairedBootstrap:
    """Draw replicates until the gate's verdict on `gate.compare_metric` is settled.

    The cost of a replicate grows with the holdout rows, while the interval narrows with
    them. A small holdout draws all REPLICATES at once (it costs little). A large one draws
    about FIRST_DRAW weights first (at least MIN_REPLICATES), then STEP more at a time, up
    to REPLICATES, until the upper bound lies clearly on one side of the tolerance line
    (`settled`): a clear pass or a clear regression stops early, a close call gets the
    full count. The report says how many replicates were drawn.
    """
    drawn = PairedBootstrap(y, new_scores, old_scores, thresholds, seed=SEED)
    first = int(np.clip(FIRST_DRAW // max(1, len(y)), MIN_REPLICATES, REPLICATES))
    drawn.draw(first)
    metric = gate.compare_metric
    line = -gate.max_regression * drawn.point_old[metric]
    while drawn.replicates < REPLICATES and not settled(drawn.differences(metric), line):
        drawn.draw(min(STEP, REPLICATES - drawn.replicates))
    return drawn


def compare_with_last_good(
    trained: Trained,
    parts: Parts,
    params: RetrainParams,
    new_scores: np.ndarray | None = None,
) -> Comparison | NotCompared:
    """Score the last good model on the new holdout and compare it with the new model.

    `new_scores` are the new model's holdout scores when the evaluation already has them
    (scoring the holdout again costs as much as the last good model's scoring).
    """
    loaded = load_last_good(params.publish.output_dir, params.publish.trusted_types)
    if isinstance(loaded, NotCompared):
        return loaded
    version, old = loaded.version, loaded.model
    old_classes = (plain_value(old.negative), plain_value(old.positive))
    new_classes = (plain_value(parts.negative), plain_value(parts.positive))
    if old_classes != new_classes:
        return NotCompared(
            f"the classes differ: last good model {version} has (negative, positive) "
            f"{old_classes}, the new table {new_classes}",
            version,
        )
    features = _features_of(old)
    missing = [c for c in features if c not in parts.X_holdout.columns]
    if missing or not features:
        what = ", ".join(missing) if missing else "(its features are not recorded)"
        return NotCompared(
            f"features of last good model {version} missing from the new table: {what}",
            version,
        )
    y = parts.y_holdout
    if len(np.unique(y)) < 2:
        return NotCompared("the holdout has one class only: no metric to compare", version)
    try:
        old_scores = positive_scores(old, parts.X_holdout, features)
        old_threshold = float(old.model.threshold)
    except Exception as exc:  # a model of other column types: no comparison, not a crash
        return NotCompared(f"last good model {version} could not score the holdout: {exc}", version)
    thresholds = (float(trained.model.threshold), old_threshold)
    if new_scores is None:
        new_scores = positive_scores(trained.model, parts.X_holdout)
    drawn = bootstrap_for_gate(y, new_scores, old_scores, thresholds, params.gate)
    return Comparison(
        version=version,
        rows=len(y),
        thresholds=thresholds,
        metrics=drawn.intervals(LEVEL),
        replicates=drawn.replicates,
    )


def judge_regression(outcome: Comparison | NotCompared, gate: GateParams) -> CheckResult:
    """Fail when the new model is confidently worse than the last good one beyond tolerance.

    The tolerance is relative: with `gate.max_regression` 0.05 the run halts when even the
    upper bound of the 95% interval of new - old lies below -5% of the last good model's
    value. A point difference beyond it whose interval reaches the tolerance warns.
    """
    result = check(CODE)
    if isinstance(outcome, NotCompared):
        return result.result("not_run", f"not run: {outcome.reason}")
    name = gate.compare_metric
    m = outcome.metrics[name]
    allowed = -gate.max_regression * m.old
    metrics: JsonDict = {
        "metric": name,
        "last_good_version": outcome.version,
        "new": _round(m.new),
        "last_good": _round(m.old),
        "difference": _round(m.difference),
        "interval": [_round(m.low), _round(m.high)],
        "max_regression": gate.max_regression,
        "allowed_difference": _round(allowed),
    }
    words = (
        f"{name} {m.new:.4f} against {m.old:.4f} of last good model {outcome.version}: "
        f"difference {m.difference:+.4f}, {LEVEL:.0%} interval [{m.low:+.4f}, {m.high:+.4f}]"
    )
    if np.isnan(m.low) or np.isnan(m.high):
        return result.result("not_run", f"not run: {name} is undefined ({words})", metrics=metrics)
    tolerance = f"gate.max_regression {gate.max_regression} ({allowed:+.4f})"
    if m.high < allowed:
        if gate.accept_regression:
            metrics["accepted_regression"] = {"reason": gate.accept_reason}
            return result.result(
                "warn",
                f"worse than the last good model beyond {tolerance}: {words}; published "
                f"anyway by gate.accept_regression: {gate.accept_reason}",
                metrics=metrics,
            )
        return result.result(
            "fail", f"worse than the last good model beyond {tolerance}: {words}", metrics=metrics
        )
    if m.difference < allowed:
        return result.result(
            "warn",
            f"may be worse than the last good model beyond {tolerance}, but the interval "
            f"does not show it: {words}",
            metrics=metrics,
        )
    return result.result(
        "pass", f"no worse than the last good model beyond {tolerance}: {words}", metrics=metrics
    )


compare_task = task(name="compare-with-last-good", cache_policy=NO_CACHE, persist_result=False)(
    compare_with_last_good
)
