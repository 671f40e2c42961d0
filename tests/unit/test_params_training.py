"""The training-related parameter sections render as a documented, bounded UI form."""

from typing import Any

import pytest
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError

from retrain_guard.schemas.params import GateParams, ModelParams, ResampleParams, RetrainParams


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


@pytest.mark.parametrize(
    ("model", "where", "message"),
    [
        ({"name": "custom"}, ("estimator",), "required with model.name custom"),
        ({"name": "custom", "estimator": "lightgbm.LGBMClassifier"}, ("estimator",), "import path"),
        ({"name": "custom", "estimator": "a b:C"}, ("estimator",), "import path"),
        ({"estimator": "lightgbm:LGBMClassifier"}, ("estimator",), "only used with model.name"),
        ({"params": {"num_leaves": 7}}, ("params",), "only used with model.name custom"),
    ],
)
def test_a_custom_estimator_setting_is_refused_naming_its_field(
    model: dict[str, Any], where: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ModelParams.model_validate(model)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [where]
    assert message in errors[0]["msg"]


def test_a_custom_estimator_takes_its_class_and_keyword_arguments() -> None:
    model = ModelParams.model_validate(
        {"name": "custom", "estimator": "lightgbm:LGBMClassifier", "params": {"num_leaves": 7}}
    )
    assert model.estimator == "lightgbm:LGBMClassifier" and model.params == {"num_leaves": 7}
