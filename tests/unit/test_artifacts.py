import base64
import re

import numpy as np

from retrain_guard.schemas.report import Cause, CheckResult, Failure, Report
from retrain_guard.tasks.artifacts import render_markdown
from retrain_guard.tasks.evaluation import measure_predictions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _report() -> Report:
    y = np.array([0] * 8 + [1, 1])
    holdout = measure_predictions(
        y, np.zeros(10, dtype="int64"), np.linspace(0, 0.4, 10), ("0", "1")
    ).to_json()
    return Report(
        status="failed",
        failure=Failure(code="single_class_prediction", stage="gate", summary="only class 0"),
        checks=[
            CheckResult(
                code="single_class_prediction", stage="gate", status="fail", summary="only 0"
            )
        ],
        diagnosis=[
            Cause(
                cause="decision_threshold",
                title="Scores rank the classes but none crosses the threshold",
                evidence="holdout ROC-AUC is 1.000",
                remedy="set model.decision_threshold to 0.3",
                remedy_params={"model.decision_threshold": 0.3},
                score=0.8,
            )
        ],
        metrics={
            "holdout": holdout,
            "baseline": {"predicts": "0", "accuracy": 0.8, "balanced_accuracy": 0.5},
            "threshold_analysis": {
                "threshold": 0.3,
                "validation_f1": 0.9,
                "validation_rows": 20,
                "slice": "latest by label time",
                "current_threshold": 0.5,
                "on_holdout": {"predicted_class_counts": {"0": 7, "1": 3}, "recall[1]": 1.0},
            },
        },
        run={"parameters": {"model": {"decision_threshold": 0.5}}},
    )


def test_markdown_shows_the_diagnosis_before_the_evidence_tables_and_the_checks() -> None:
    text = render_markdown(_report())
    order = [
        text.index("# Halted: `single_class_prediction`"),
        text.index("## Diagnosis"),
        text.index("`model.decision_threshold: 0.3`"),
        text.index("## Holdout metrics"),
        text.index("| geometric_mean | 0.0 | "),
        text.index("### Threshold analysis"),
        text.index("## Checks"),
    ]
    assert order == sorted(order)
    assert "On the holdout it would predict {'0': 7, '1': 3}" in text


def test_markdown_embeds_the_confusion_matrix_and_score_histogram_as_png_data_uris() -> None:
    text = render_markdown(_report())
    images = re.findall(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert [alt for alt, _ in images] == [
        "Holdout confusion matrix",
        "Holdout scores per true class",
    ]
    for _, payload in images:
        assert base64.b64decode(payload).startswith(PNG_SIGNATURE)
    assert "data:image" not in render_markdown(_report(), images=False)
