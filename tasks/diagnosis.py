"""The diagnosis: why a model collapsed, ranked by the strength of what the run measured.

Each cause is a rule over measured evidence; its score says how strongly this run shows
it, and its remedy names the parameter to change and the value to try.
"""

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.schemas.report import Cause, CheckResult
from retrain_guard.tasks.evaluation import Evaluation
from retrain_guard.tasks.evidence import NO_SIGNAL_MARGIN, Evidence, evidence_from_run
from retrain_guard.tasks.features import FeatureChecks
from retrain_guard.tasks.registry import COLUMN_LEAKS, DROP_COLUMNS_REMEDY, ROW_CHECKS, check

# Minority share of the training part below which an uncorrected model tends to collapse.
IMBALANCE_SHARE = 0.1
# Holdout ROC-AUC from which the scores are taken to rank the classes.
RANKS_AUC = 0.65
# Fewer minority rows than these in the training part leave too little to learn from.
SMALL_MINORITY_ROWS = 30
TINY_MINORITY_ROWS = 10
# Training-part score spread (p99 - p1) below which the model barely uses its features.
FLAT_SCORES = 0.02
# Logistic regression C at or below which regularisation dominates the fit.
STRONG_C = 0.01
# Training-part ROC-AUC from which the model has memorised its training rows.
MEMORISED_AUC = 0.99


# A custom estimator gets class_weight balanced only when its class takes class_weight.
CUSTOM_WEIGHT_REMEDY = (
    "weight the classes (model.class_weight: balanced, given to a custom estimator whose "
    "class takes class_weight and whose model.params leave it out), or resample the "
    "training part (resample.sampler: smote)"
)


def _extreme_imbalance(e: Evidence) -> Cause | None:
    share, count = e.train_minority_share, e.train_minority_count
    if share >= IMBALANCE_SHARE:
        return None
    corrected = e.sampler != "none" or e.class_weight == "balanced"
    # The less the imbalance was corrected for, the likelier it is the cause.
    score = (0.95 if not corrected else 0.4) * (1.0 - share / IMBALANCE_SHARE) ** 0.25
    how = (
        "neither resampling nor class weights were used"
        if not corrected
        else f"resample.sampler={e.sampler}, model.class_weight={e.class_weight}"
    )
    remedy_params: dict[str, JsonValue] = (
        {"model.class_weight": "balanced"}
        if e.class_weight != "balanced"
        else {"resample.sampler": "smote"}
    )
    predicted, true = e.holdout_predicted_counts[1], e.holdout_class_counts[1]
    outcome = (
        f"; on the holdout the model predicted it for {predicted} row(s) while {true} truly "
        "are minority rows"
        if e.holdout_short(positive=True)
        else ""
    )
    return Cause(
        cause="extreme_imbalance",
        title="Extreme class imbalance",
        evidence=f"the minority class is {share:.2%} of the training part ({count} of "
        f"{e.train_rows} rows) and {how}{outcome}",
        remedy=CUSTOM_WEIGHT_REMEDY
        if e.class_weight != "balanced" and e.model == "custom"
        else "weight the classes (model.class_weight: balanced)"
        if e.class_weight != "balanced"
        else "also resample the training part (resample.sampler: smote, or random_over)",
        remedy_params=remedy_params,
        metrics={"train_minority_share": round(share, 6), "train_minority_count": count},
        score=round(score, 4),
    )


def _decision_threshold(e: Evidence) -> Cause | None:
    auc = e.holdout_roc_auc
    if auc is None or auc < RANKS_AUC:
        return None
    # The scores rank the classes, yet (almost) none of them crosses the threshold: every
    # score is below it, or far fewer rows reach it than are truly positive (near-collapse);
    # or the mirror image above it.
    cut = f"the decision threshold {e.decision_threshold}"
    all_below = e.holdout_max_score is not None and e.holdout_max_score < e.decision_threshold
    all_above = e.holdout_min_score is not None and e.holdout_min_score >= e.decision_threshold
    negatives, positives = e.holdout_predicted_counts
    true_negatives, true_positives = e.holdout_class_counts
    if all_below:
        where = f"the highest holdout score is {e.holdout_max_score:.4f}, below {cut}"
    elif e.holdout_short(positive=True):
        where = (
            f"only {positives} holdout score(s) reach {cut}, while {true_positives} holdout "
            "rows are truly positive"
        )
    elif all_above:
        where = f"the lowest holdout score is {e.holdout_min_score:.4f}, at or above {cut}"
    elif e.holdout_short(positive=False):
        where = (
            f"only {negatives} holdout score(s) stay below {cut}, while {true_negatives} "
            "holdout rows are truly negative"
        )
    else:
        return None
    target = e.best_threshold if e.best_threshold is not None else e.threshold_for_prior
    if target is None:
        return None
    source = (
        "the F1-maximising threshold on the validation slice of the training part"
        if e.best_threshold is not None
        else "the threshold predicting the training part's positive share"
    )
    would = (
        f"; on the holdout it would predict {e.best_threshold_holdout_counts}"
        if e.best_threshold is not None and e.best_threshold_holdout_counts
        else ""
    )
    return Cause(
        cause="decision_threshold",
        title="Scores rank the classes but (almost) none crosses the threshold",
        evidence=f"holdout ROC-AUC is {auc:.3f}, so the scores separate the classes, but {where}",
        remedy=f"set model.decision_threshold to {target:.4f} ({source}{would})",
        remedy_params={"model.decision_threshold": target},
        metrics={
            "holdout_roc_auc": auc,
            "holdout_max_score": e.holdout_max_score,
            "holdout_min_score": e.holdout_min_score,
            "holdout_predicted_counts": list(e.holdout_predicted_counts),
            "holdout_true_counts": list(e.holdout_class_counts),
            "suggested_threshold": target,
        },
        score=round(min(0.9, 0.5 + (auc - RANKS_AUC)), 4),
    )


def _custom_settings(e: Evidence) -> str:
    """Name a custom estimator's settings, which the diagnosis cannot judge one by one."""
    return f"model.params={e.estimator_params} of {e.estimator}"


# The diagnosis knows the built-in models' hyperparameters; a custom estimator's are named
# as a whole (model.params), to be revised by whoever knows the class.
CUSTOM_REGULARISATION_REMEDY = (
    "revise model.params of the custom estimator: fewer rows required per leaf, more "
    "iterations or a larger learning rate, weaker regularisation"
)


def _strong_regularisation(e: Evidence) -> tuple[str, dict[str, JsonValue]] | None:
    """Return the setting that regularises hard, and the value to try, if any.

    A custom estimator that does not fit its own training part is taken as set to
    regularise hard: its parameters are the likeliest lever, with no value to suggest.
    """
    if e.model == "custom":
        return _custom_settings(e), {}
    if e.model == "logistic_regression" and e.C <= STRONG_C:
        return f"model.C={e.C}", {"model.C": 1.0}
    leaf = e.forest_min_samples_leaf
    if (
        e.model in ("random_forest", "balanced_random_forest")
        and leaf is not None
        and e.train_rows
        and leaf >= 0.05 * e.train_rows
    ):
        return f"model.forest_min_samples_leaf={leaf}", {"model.forest_min_samples_leaf": 1}
    rate = e.learning_rate
    if e.model == "hist_gradient_boosting" and rate is not None and rate <= 0.001:
        return f"model.learning_rate={rate}", {"model.learning_rate": 0.1}
    return None


def _no_signal_or_underfitting(e: Evidence) -> list[Cause]:
    auc = e.holdout_roc_auc
    flat = e.train_score_spread is not None and e.train_score_spread < FLAT_SCORES
    strong = _strong_regularisation(e)
    causes = []
    if e.train_one_class and (strong or flat):
        setting, remedy_params = strong or ("", {"model.name": "hist_gradient_boosting"})
        spread = (
            f"; its scores span only {e.train_score_spread:.2g}"
            if e.train_score_spread is not None
            else ""
        )
        if strong and e.model == "custom":
            note = f"; the model's parameters ({setting}) are a likely cause"
            remedy = CUSTOM_REGULARISATION_REMEDY
        elif strong:
            note = f"; {setting} regularises hard"
            remedy = "weaken regularisation: " + ", ".join(
                f"{k}: {v}" for k, v in remedy_params.items()
            )
        else:
            note, remedy = "", "use a more flexible model: model.name: hist_gradient_boosting"
        causes.append(
            Cause(
                cause="underfitting",
                title="Underfitting: the model does not fit even its training part",
                evidence=f"the training part itself is predicted as (nearly) one class "
                f"({e.train_predicted_counts}){spread}{note}",
                remedy=remedy,
                remedy_params=remedy_params,
                metrics={
                    "train_predicted_counts": dict(e.train_predicted_counts),
                    "train_score_spread": e.train_score_spread,
                },
                score=0.97 if strong and flat else 0.85 if strong else 0.55,
            )
        )
    margin = e.chance_margin
    if auc is not None and abs(auc - 0.5) <= margin:
        train_flat = e.train_roc_auc is not None and abs(e.train_roc_auc - 0.5) <= NO_SIGNAL_MARGIN
        causes.append(
            Cause(
                cause="no_signal",
                title="No signal: the model cannot tell the classes apart",
                evidence=f"holdout ROC-AUC is {auc:.3f} (chance is 0.5 +/- {margin:.3f} on a "
                f"holdout of {sum(e.holdout_class_counts)} rows)"
                + (
                    f", and {e.train_roc_auc:.3f} on the training part itself"
                    if e.train_roc_auc is not None
                    else ""
                )
                + (
                    "; the training part is also predicted as (nearly) one class"
                    if e.train_one_class
                    else ""
                ),
                remedy="add informative features (the ones given do not separate the classes), "
                "or try a more flexible model: model.name: hist_gradient_boosting",
                remedy_params={"model.name": "hist_gradient_boosting"},
                metrics={
                    "holdout_roc_auc": auc,
                    "train_roc_auc": e.train_roc_auc,
                    "chance_margin": round(margin, 6),
                },
                score=0.8 if train_flat else 0.6,
            )
        )
    return causes


def _overfitting(e: Evidence) -> Cause | None:
    train_auc, auc = e.train_roc_auc, e.holdout_roc_auc
    if train_auc is None or train_auc < MEMORISED_AUC or e.train_one_class:
        return None
    if auc is not None and auc >= 0.95:
        return None  # as good on the holdout: memorising is not the problem there
    gap = train_auc - (auc if auc is not None else 0.5)
    tree = e.model != "logistic_regression"
    remedy_params: dict[str, JsonValue] = (
        {}
        if e.model == "custom"
        else {"model.max_depth": 6, "model.forest_min_samples_leaf": 20}
        if e.model in ("random_forest", "balanced_random_forest")
        else {"model.max_depth": 4, "model.min_samples_leaf": 100}
        if tree
        else {"model.C": 0.1}
    )
    return Cause(
        cause="overfitting",
        title="Overfitting: perfect on the training part, collapsed on the holdout",
        evidence=f"training-part ROC-AUC is {train_auc:.4f} against "
        + (f"{auc:.4f}" if auc is not None else "an undefined value")
        + " on the holdout, where the gate failed",
        remedy="regularise: " + ", ".join(f"{k}: {v}" for k, v in remedy_params.items())
        if remedy_params
        else f"regularise the custom estimator through its parameters ({_custom_settings(e)})",
        remedy_params=remedy_params,
        metrics={"train_roc_auc": train_auc, "holdout_roc_auc": auc, "gap": round(gap, 6)},
        score=round(0.6 + 0.35 * min(1.0, max(0.0, gap) / 0.3), 4),
    )


def _constant_features(e: Evidence) -> Cause | None:
    unusable = e.unusable_features
    if not unusable or not e.features:
        return None
    share = len(set(unusable)) / e.features
    every = share >= 1.0
    parts = []
    if e.empty_features:
        parts.append(f"empty: {', '.join(e.empty_features)}")
    if e.constant_features:
        parts.append(f"constant after preprocessing: {', '.join(e.constant_features)}")
    return Cause(
        cause="constant_features",
        title="Constant or empty features",
        evidence=f"{len(set(unusable))} of {e.features} features carry no information in the "
        f"training part ({'; '.join(parts)})",
        remedy="fix how these columns are produced upstream"
        + (" (no feature is left to learn from)" if every else "")
        + ", or leave them out with data.drop",
        remedy_params={"data.drop": sorted(set(unusable))},
        metrics={"unusable_share": round(share, 6), "features": e.features},
        score=0.98 if every else round(0.3 + 0.5 * share, 4),
    )


# Leak remedies come from the registry: a leak in feature columns is mended by leaving them
# out; a leak in rows by its check's own remedy.
FEATURE_LEAKS = COLUMN_LEAKS
ROW_LEAK_REMEDIES = {code: check(code).remedy for code in ROW_CHECKS}


def _leakage(e: Evidence) -> Cause | None:
    findings = [c for c in e.leakage_findings if c.status in ("warn", "fail")]
    separating = e.separating
    perfect = e.gate_code == "suspiciously_perfect"
    if not (findings or separating or perfect):
        return None
    parts = [f"{c.code}: {c.summary}" for c in findings]
    if separating:
        parts.append(
            "alone separating the classes in the training part: "
            + ", ".join(f"{c} (ROC-AUC {a:.3f})" for c, a in separating.items())
        )
    if perfect:
        parts.insert(0, f"the holdout ROC-AUC is {e.holdout_roc_auc}, too good to be true")
    # Only feature leaks are mended by dropping columns; row-level findings (id or row order,
    # copied or synthetic rows, rows shared across the split) name roles or rows instead.
    columns = sorted(
        {*separating, *(col for c in findings if c.code in FEATURE_LEAKS for col in c.columns)}
    )
    row_remedies = [ROW_LEAK_REMEDIES[c.code] for c in findings if c.code in ROW_LEAK_REMEDIES]
    score = (
        0.96
        if perfect
        else 0.75
        if any(c.status == "fail" for c in findings) or separating
        else 0.45
    )
    return Cause(
        cause="leakage",
        title="Leakage: features known only after the label",
        evidence="; ".join(parts),
        remedy="; ".join(
            ([DROP_COLUMNS_REMEDY.format(columns=", ".join(columns))] if columns else [])
            + row_remedies
        )
        or "look for columns built after the label time and leave them out (data.drop)",
        remedy_params={"data.drop": columns} if columns else {},
        metrics={"findings": [c.code for c in findings], "separating_columns": separating},
        score=score,
    )


def _minority_too_small(e: Evidence, params: RetrainParams) -> Cause | None:
    count = e.train_minority_count
    if count >= SMALL_MINORITY_ROWS:
        return None
    return Cause(
        cause="minority_too_small",
        title="Too few minority rows after the split",
        evidence=f"the training part holds {count} row(s) of the minority class "
        f"(fewer than {SMALL_MINORITY_ROWS} leave too little to learn from)",
        remedy="use a longer history, or a smaller split.holdout_fraction",
        remedy_params={"split.holdout_fraction": max(0.1, params.split.holdout_fraction / 2)},
        metrics={"train_minority_count": count},
        score=0.9 if count < TINY_MINORITY_ROWS else 0.7,
    )


def diagnose(evidence: Evidence, params: RetrainParams) -> list[Cause]:
    """Rank the likely causes of a failed gate, strongest evidence first."""
    found = [
        _extreme_imbalance(evidence),
        _decision_threshold(evidence),
        *_no_signal_or_underfitting(evidence),
        _overfitting(evidence),
        _constant_features(evidence),
        _leakage(evidence),
        _minority_too_small(evidence, params),
    ]
    return sorted((c for c in found if c is not None), key=lambda c: -c.score)


def diagnose_run(
    params: RetrainParams,
    evaluation: Evaluation,
    checked: FeatureChecks,
    gate_code: str,
    leakage_findings: list[CheckResult],
) -> list[Cause]:
    """Rank the likely causes of the gate's `gate_code` from what the run measured."""
    evidence = evidence_from_run(params, evaluation, checked, gate_code, leakage_findings)
    return diagnose(evidence, params)


diagnose_task = task(name="diagnose-collapse", cache_policy=NO_CACHE, persist_result=False)(
    diagnose_run
)
