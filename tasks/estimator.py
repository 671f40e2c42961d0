"""A custom estimator (model.name custom): its class found, checked and built.

`make_custom_estimator` imports the class `model.estimator` names, checks that it is a
scikit-learn-compatible classifier, and builds it with `model.params`; every way that can go
wrong is an `EstimatorError` naming the setting. tasks/training.py puts the estimator into
the same pipeline as the built-in models. The class's module is imported only here, when a
run uses it, so an optional package such as lightgbm stays out of the import of the project.
"""

import importlib
from typing import Any

from retrain_guard.schemas.params import ModelParams

ESTIMATOR_SETTING = "model.estimator"
PARAMS_SETTING = "model.params"


class EstimatorError(ValueError):
    """model.estimator or model.params cannot be used; the message names the setting."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


def load_estimator_class(path: str) -> type:
    """Return the class 'package.module:ClassName' names.

    Raises:
        EstimatorError: the module does not import, lacks the name, or the name is no
            classifier class with fit, predict_proba and get_params.
    """
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import runs the module's code: any error means unusable
        raise EstimatorError(
            ESTIMATOR_SETTING,
            f"{path!r}: module {module_name!r} cannot be imported "
            f"({type(exc).__name__}: {first_line(exc)})",
        ) from exc
    found = getattr(module, class_name, None)
    if found is None:
        raise EstimatorError(
            ESTIMATOR_SETTING, f"{path!r}: module {module_name!r} has no {class_name!r}"
        )
    if not isinstance(found, type):
        raise EstimatorError(
            ESTIMATOR_SETTING, f"{path!r} is a {type(found).__name__}, not a class"
        )
    missing = _missing_methods(found)
    if missing:
        raise EstimatorError(
            ESTIMATOR_SETTING,
            f"{path!r} is not a scikit-learn-compatible classifier: it has no "
            + ", ".join(missing),
        )
    return found


# What the pipeline calls on the estimator: scikit-learn's classifier interface.
CLASSIFIER_METHODS = ("fit", "predict_proba", "get_params")


def _missing_methods(estimator: Any) -> list[str]:
    """Return the classifier methods a class or an instance lacks."""
    return [m for m in CLASSIFIER_METHODS if not callable(getattr(estimator, m, None))]


def make_custom_estimator(model: ModelParams) -> Any:
    """Build the estimator model.estimator names with model.params.

    class_weight 'balanced' is passed when model.class_weight is balanced, the class takes
    class_weight and model.params does not set it; random_state is model.seed when the class
    takes it and model.params does not set it.

    Raises:
        EstimatorError: the class cannot be used, or refuses model.params.
    """
    assert model.estimator is not None, "model.estimator is required with model.name custom"
    cls = load_estimator_class(model.estimator)
    try:
        estimator = cls(**model.params)
        accepted = estimator.get_params(deep=False)
    except Exception as exc:  # the class's own validation: any error means bad arguments
        raise EstimatorError(
            PARAMS_SETTING,
            f"{model.estimator} refuses {dict(model.params)}: "
            f"{type(exc).__name__}: {first_line(exc)}",
        ) from exc
    # Some methods exist only with some parameters (SVC's predict_proba needs probability).
    missing = _missing_methods(estimator)
    if missing:
        raise EstimatorError(
            PARAMS_SETTING,
            f"{model.estimator} with {dict(model.params)} has no " + ", ".join(missing),
        )
    unknown = sorted(set(model.params) - set(accepted))
    if unknown:
        raise EstimatorError(
            PARAMS_SETTING,
            f"{model.estimator} takes no parameter(s) {', '.join(unknown)}; it takes "
            + ", ".join(sorted(accepted)),
        )
    extra: dict[str, Any] = {}
    if "random_state" in accepted and "random_state" not in model.params:
        extra["random_state"] = model.seed
    if (
        "class_weight" in accepted
        and "class_weight" not in model.params
        and model.class_weight == "balanced"
    ):
        extra["class_weight"] = "balanced"
    try:
        estimator.set_params(**extra)
    except Exception as exc:
        raise EstimatorError(
            PARAMS_SETTING,
            f"{model.estimator} refuses {extra}: {type(exc).__name__}: {first_line(exc)}",
        ) from exc
    return estimator


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message: the cause, without its detail."""
    return (str(exc).strip().splitlines() or [""])[0]
