"""retrain-guard's public API for users' own Prefect flows; it only re-exports.

- `check_data(frame, params)`: schema, label classes and leakage on an in-memory table.
- `check_model(model, X_holdout, y_holdout, params, X_train=..., y_train=...)`: the gate,
  the diagnosis of a collapse and the threshold analysis on a fitted model of your own.
- `publish_model(model, report, params)`: publish a model whose report passed.
- `retrain`, `validate_data`: the project's flows, usable as subflows.

A failing check raises `RetrainGuardHalt`; its `.report` is the run's `Report`.
"""

from flows.api import check_data, check_model, publish_model
from flows.example_data import make_transactions
from flows.retrain import retrain, validate_data
from schemas.params import RetrainParams
from schemas.report import Cause, CheckResult, Report, RetrainGuardHalt

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
