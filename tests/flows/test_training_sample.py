"""The class-aware training sample in the retrain flow: the model is fitted on a sample of
a large training part, the holdout is measured whole, and class weights keep the verdicts."""

from pathlib import Path
from typing import Any

import pytest

from retrain_guard.schemas.report import Report
from retrain_guard.tasks.artifacts import render_markdown
from retrain_guard.tasks.publish import load_model
from retrain_guard.tasks.reporting import format_summary
from tests.conftest import params_for
from tests.flows.test_retrain_training import run

CAP = 1000


def sample_of(report: Report) -> dict[str, Any]:
    resampling = report.metrics["resampling"]
    assert isinstance(resampling, dict)
    sample = resampling["training_sample"]
    assert isinstance(sample, dict)
    return sample


def unweighted_on_sample(
    data: Path, out: Path, cap: int = CAP, **sections: dict[str, Any]
) -> Report:
    """Run with class_weight none on a training sample of `cap` rows per class."""
    params = params_for(
        data, out, model={"class_weight": "none"}, compute={"train_sample_rows": cap}, **sections
    )
    return run(params)


def split_counts(report: Report, part: str) -> dict[str, int]:
    split = report.check("insufficient_minority")
    assert split is not None
    counts: dict[str, int] = split.metrics["class_counts"][part]
    return counts


def test_a_sampled_training_part_keeps_every_minority_row_and_the_whole_holdout(
    example_csv: Path, tmp_path: Path
) -> None:
    report = run(params_for(example_csv, tmp_path, compute={"train_sample_rows": CAP}))
    assert report.status == "passed", report.one_line()
    sample = sample_of(report)
    train = split_counts(report, "train")
    assert sample["sampled"] is True and sample["cap_per_class"] == CAP
    assert sample["of_rows"] == train
    assert sample["rows"] == {"0": CAP, "1": train["1"]}
    # class_weight balanced gives the same shares on the sample: nothing to correct.
    assert sample["correction"]["class_weight"] is None
    assert "balanced" in sample["correction"]["reason"]
    # The sampler saw the sample; the holdout is measured on every one of its rows.
    resampling = report.metrics["resampling"]
    assert isinstance(resampling, dict)
    assert resampling["before"] == {"0": CAP, "1": train["1"]}
    holdout = report.metrics["holdout"]
    assert isinstance(holdout, dict)
    assert holdout["true_class_counts"] == split_counts(report, "holdout")
    assert report.published is not None
    assert load_model(Path(report.published.model_path).parent) is not None
    # The threshold's validation slice is of the sample; it stands for more of the part.
    threshold = report.metrics["threshold_analysis"]
    assert isinstance(threshold, dict)
    validation, standing = (
        threshold["validation_rows"],
        threshold["validation_rows_in_training_part"],
    )
    assert validation < standing <= train["0"] + train["1"]
    assert f"standing for about {standing} rows" in render_markdown(report)


def test_an_unsampled_run_says_so(example_csv: Path, tmp_path: Path) -> None:
    unsampled = run(params_for(example_csv, tmp_path))
    threshold = unsampled.metrics["threshold_analysis"]
    assert isinstance(threshold, dict) and "validation_rows_in_training_part" not in threshold
    sample = sample_of(unsampled)
    assert sample["sampled"] is False and sample["rows"] == sample["of_rows"]
    assert sample["correction"] == {
        "class_weight": None,
        "reason": "the training part was not sampled",
    }


def test_an_unweighted_model_on_a_sample_still_collapses_as_on_the_whole_part(
    example_csv: Path, tmp_path: Path
) -> None:
    # Without the correction, a sample 7x richer in fraud would hide the collapse.
    report = unweighted_on_sample(example_csv, tmp_path)
    assert report.failure is not None and report.failure.code == "single_class_prediction"
    assert report.diagnosis[0].cause == "extreme_imbalance"
    sample = sample_of(report)
    train = split_counts(report, "train")
    assert sample["correction"]["class_weight"] == {"0": round(train["0"] / CAP, 6), "1": 1.0}
    shown = format_summary(report)
    assert f"training sample: {{'0': {CAP}, '1': {train['1']}}} of" in shown
    assert "class_weight {'0': " in shown and "inverse of its sampling rate" in shown
    resampling = report.metrics["resampling"]
    assert isinstance(resampling, dict) and resampling["class_weight"] == "none"


@pytest.mark.parametrize(("ratio", "corrected"), [(0.5, False), (0.05, True)])
def test_a_sampler_that_sets_the_ratio_needs_no_correction_unless_the_sample_passes_it(
    example_csv: Path, tmp_path: Path, ratio: float, corrected: bool
) -> None:
    # The sample's minority/majority ratio is about 0.13: smote lifts it to 0.5 on the
    # sample as on the whole part; a target of 0.05 is already passed on the sample only.
    report = unweighted_on_sample(
        example_csv, tmp_path, resample={"sampler": "random_over", "target_ratio": ratio}
    )
    correction = sample_of(report)["correction"]
    assert (correction["class_weight"] is not None) is corrected, correction


def test_a_large_leaf_is_scaled_so_the_forest_still_splits_on_the_sample(
    example_csv: Path, tmp_path: Path
) -> None:
    # 600 rows a leaf is about 4% of the training part: on a sample of 1,132 rows it would be
    # half of them, and the forest would predict one class.
    model = {"name": "random_forest", "n_estimators": 30, "forest_min_samples_leaf": 600}
    whole = run(params_for(example_csv, tmp_path / "whole", model=model))
    thinned = {"train_sample_rows": CAP}
    sampled = run(params_for(example_csv, tmp_path / "sample", model=model, compute=thinned))
    assert whole.status == sampled.status == "passed", sampled.one_line()
    leaf = sample_of(sampled)["correction"]["min_samples_leaf"]
    assert leaf["given"] == 600 and 30 <= leaf["fitted"] <= 60


def test_a_sample_that_alone_reaches_the_target_ratio_is_no_sampler_adaptation(
    example_csv: Path, tmp_path: Path
) -> None:
    # On the sample the minority/majority ratio (0.66) passes 0.5 and smote has nothing to
    # do; on the whole part (0.008) it would resample. The class weights stand in for it.
    report = unweighted_on_sample(
        example_csv, tmp_path, cap=200, resample={"sampler": "smote", "target_ratio": 0.5}
    )
    adapted = report.check("sampler_adapted")
    assert adapted is not None
    assert adapted.status == "pass", adapted.summary
    assert sample_of(report)["correction"]["class_weight"] is not None
