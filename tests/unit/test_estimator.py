"""A custom estimator is found, checked and built from model.estimator and model.params."""

import pytest

from retrain_guard.schemas.params import ModelParams
from retrain_guard.tasks.estimator import EstimatorError, make_custom_estimator


def _custom(estimator: str, weight: str = "balanced", **params: object) -> ModelParams:
    return ModelParams.model_validate(
        {"name": "custom", "estimator": estimator, "params": params, "class_weight": weight}
    )


def test_class_weight_and_seed_are_passed_only_where_the_class_takes_them() -> None:
    built = make_custom_estimator(_custom("sklearn.tree:DecisionTreeClassifier", max_depth=3))
    assert built.get_params()["class_weight"] == "balanced"
    assert built.get_params()["random_state"] == 0 and built.get_params()["max_depth"] == 3
    unweighted = make_custom_estimator(_custom("sklearn.tree:DecisionTreeClassifier", "none"))
    assert unweighted.get_params()["class_weight"] is None
    # model.params wins over model.class_weight and model.seed.
    own = make_custom_estimator(
        _custom("sklearn.tree:DecisionTreeClassifier", class_weight=None, random_state=5)
    )
    assert own.get_params()["class_weight"] is None and own.get_params()["random_state"] == 5
    # GaussianNB takes neither.
    assert (
        "class_weight"
        not in make_custom_estimator(_custom("sklearn.naive_bayes:GaussianNB")).get_params()
    )


@pytest.mark.parametrize(
    ("estimator", "params", "setting", "message"),
    [
        ("sklearn.svm:SVC", {"probability": False}, "model.params", "has no predict_proba"),
        ("no_such_module_x:Model", {}, "model.estimator", "cannot be imported"),
        ("sklearn.tree:NoSuchTree", {}, "model.estimator", "has no 'NoSuchTree'"),
        ("sklearn.tree:plot_tree", {}, "model.estimator", "not a class"),
        ("sklearn.preprocessing:StandardScaler", {}, "model.estimator", "no predict_proba"),
        ("sklearn.tree:DecisionTreeClassifier", {"depth": 3}, "model.params", "depth"),
    ],
)
def test_an_unusable_estimator_names_the_setting(
    estimator: str, params: dict[str, object], setting: str, message: str
) -> None:
    with pytest.raises(EstimatorError) as caught:
        make_custom_estimator(
            ModelParams.model_validate({"name": "custom", "estimator": estimator, "params": params})
        )
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert message in str(caught.value)
