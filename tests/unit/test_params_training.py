"""The training-related parameter sections render as a documented, bounded UI form."""

from typing import Any

import pytest
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError

from schemas.params import GateParams, ModelParams, ResampleParams, RetrainParams


@pytest.mark.parametrize("section", [ResampleParams, ModelParams, GateParams])
def test_every_field_has_a_description_and_numbers_have_bounds(section: type[BaseModel]) -> None:
    for name, info in section.model_fields.items():
        assert info.description, f"{section.__name__}.{name} has no description"
        if info.annotation in (int, float, int | None, float | None):
            kinds = {type(m) for m in info.metadata}
            assert kinds & {Ge, Gt}, f"{section.__name__}.{name} has no lower bound"
            assert kinds & {Le, Lt}, f"{section.__name__}.{name} has no upper bound"


def test_gate_section_follows_model_and_has_working_defaults() -> None:
    fields = list(RetrainParams.model_fields)
    assert fields.index("gate") == fields.index("model") + 1
    params = RetrainParams.model_validate({"data": {"path": "x.csv", "label": "y"}})
    assert params.gate.max_roc_auc == 0.999 and params.gate.suspiciously_perfect == "fail"


@pytest.mark.parametrize(
    "bad",
    [
        {"gate": {"min_predicted_to_true_ratio": 1.5}},
        {"gate": {"min_predicted_to_true_ratio": -0.1}},
        {"gate": {"min_true_rows_for_ratio": 0}},
        {"gate": {"max_roc_auc": 0.4}},
        {"resample": {"sampler": "smote_nc"}},
        {"model": {"name": "xgboost"}},
        {"model": {"n_estimators": 0}},
    ],
)
def test_out_of_range_training_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RetrainParams.model_validate({"data": {"path": "x.csv", "label": "y"}, **bad})
