"""compute.engine: the Dask engine without its extra installed, and the removed task runner."""

import sys

import pytest
from pydantic import ValidationError

from retrain_guard.schemas.params import ComputeParams, RetrainParams, describe_validation
from retrain_guard.tasks.engine import ENGINE_UNAVAILABLE, check_engine

DASK = ComputeParams(engine="dask")


@pytest.mark.parametrize("module", ["distributed", "dask.dataframe"])
def test_the_dask_engine_without_its_extra_is_a_failing_check_naming_the_install(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    check = check_engine(DASK)
    assert check is not None and check.status == "fail"
    assert check.code == ENGINE_UNAVAILABLE and check.stage == "load"
    assert "compute.engine" in check.summary and module in check.summary
    assert "pip install 'retrain-guard[dask]'" in check.summary
    assert "compute.engine to 'pandas'" in check.summary
    assert check.metrics == {"setting": "compute.engine", "value": "dask"}


def test_the_engine_check_passes_when_nothing_is_missing_or_nothing_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert check_engine(ComputeParams()) is None
    # A table given in memory is checked in the flow's process: no cluster is needed.
    assert check_engine(DASK, reads=False) is None


def test_the_removed_task_runner_is_refused_saying_what_replaces_it() -> None:
    given = {"data": {"path": "t.csv", "label": "y"}, "compute": {"task_runner": "dask"}}
    with pytest.raises(ValidationError) as caught:
        RetrainParams.model_validate(given)
    message = describe_validation(caught.value)
    assert message.startswith("invalid parameters: compute.task_runner was removed")
    assert "use compute.engine: dask" in message
    assert "Extra inputs" not in message
    with pytest.raises(ValidationError, match=r"compute\.task_runner was removed"):
        ComputeParams.model_validate({"task_runner": "default"})
