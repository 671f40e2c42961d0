"""retrain-guard's public API for users' own Prefect flows; it only re-exports.

- `check_data(frame, params)`: schema, label classes and leakage on an in-memory table.
- `check_model(model, X_holdout, y_holdout, params, X_train=..., y_train=...)`: the gate,
  the diagnosis of a collapse and the threshold analysis on a fitted model of your own.
- `publish_model(model, report, params)`: publish a model whose report passed.
- `retrain`, `validate_data`: the project's flows, usable as subflows.

A failing check raises `RetrainGuardHalt`; its `.report` is the run's `Report`.

The project's code lives in the subpackages retrain_guard.flows, retrain_guard.tasks and
retrain_guard.schemas (in the repository: flows/, tasks/ and schemas/ at its top level, linked
here). The names below are imported when first used, so importing one subpackage does not import
Prefect's flows and every stage.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrain_guard.flows.api import check_data, check_model, publish_model
    from retrain_guard.flows.example_data import make_transactions
    from retrain_guard.flows.retrain import retrain, validate_data
    from retrain_guard.schemas.params import RetrainParams
    from retrain_guard.schemas.report import Cause, CheckResult, Report, RetrainGuardHalt

# Each public name and the module it comes from.
_PUBLIC = {
    "check_data": "retrain_guard.flows.api",
    "check_model": "retrain_guard.flows.api",
    "publish_model": "retrain_guard.flows.api",
    "make_transactions": "retrain_guard.flows.example_data",
    "retrain": "retrain_guard.flows.retrain",
    "validate_data": "retrain_guard.flows.retrain",
    "RetrainParams": "retrain_guard.schemas.params",
    "Cause": "retrain_guard.schemas.report",
    "CheckResult": "retrain_guard.schemas.report",
    "Report": "retrain_guard.schemas.report",
    "RetrainGuardHalt": "retrain_guard.schemas.report",
}

__all__ = [
    "Cause",
    "CheckResult",
    "Report",
    "RetrainGuardHalt",
    "RetrainParams",
    "check_data",
    "check_model",
    "make_transactions",
    "publish_model",
    "retrain",
    "validate_data",
]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'retrain_guard' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
