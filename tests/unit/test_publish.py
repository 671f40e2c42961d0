from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tasks.publish as publishing
from schemas.params import ModelParams, ResampleParams
from schemas.report import Report
from tasks.publish import ModelIntegrityError, latest_version, load_model, publish
from tasks.training import fit_model


@pytest.fixture(scope="module")
def model() -> Any:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60)})
    y = (frame["x"] > 0.8).astype("int64").to_numpy()
    return fit_model(
        frame, y, ModelParams(name="random_forest", n_estimators=5), ResampleParams(sampler="smote")
    ).model


def _report() -> Report:
    return Report(status="passed", run={"versions": {"scikit-learn": "x"}})


def test_publish_writes_model_report_and_hash_and_moves_latest(tmp_path: Path, model: Any) -> None:
    first = publish(model, _report(), tmp_path, version="v1")
    assert latest_version(tmp_path) == "v1"
    assert first.report.published is not None
    stored = Report.model_validate_json((first.directory / "report.json").read_text())
    assert stored.published == first.report.published
    assert stored.run["versions"] == {"scikit-learn": "x"}
    loaded = load_model(first.directory)
    frame = pd.DataFrame({"x": [0.0, 2.0], "c": ["a", "never-seen"]})
    assert loaded.predict(frame).tolist() == model.predict(frame).tolist()


@pytest.mark.parametrize("fail_at", ["model", "report", "rename"])
def test_an_interrupted_publish_leaves_the_previous_model_and_no_partial_directory(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    publish(model, _report(), tmp_path, version="v1")
    before = sorted(p.name for p in (tmp_path / "models").iterdir())

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    if fail_at == "model":
        monkeypatch.setattr(publishing.sio, "dumps", crash)
    elif fail_at == "report":
        monkeypatch.setattr(publishing, "write_report", crash)
    else:
        monkeypatch.setattr(publishing.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        publish(model, _report(), tmp_path, version="v2")
    monkeypatch.undo()

    assert latest_version(tmp_path) == "v1"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == before
    load_model(tmp_path / "models" / "v1")


def test_loading_refuses_a_model_whose_hash_differs(tmp_path: Path, model: Any) -> None:
    published = publish(model, _report(), tmp_path, version="v1")
    path = published.directory / "model.skops"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="differs from the report"):
        load_model(published.directory)


@pytest.mark.parametrize(
    "name",
    ["logistic_regression", "hist_gradient_boosting", "random_forest", "balanced_random_forest"],
)
def test_every_model_round_trips_through_skops_with_trusted_types_only(
    tmp_path: Path, name: str
) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=80), "c": rng.choice(["a", "b", "c"], 80)})
    y = (frame["x"] > 0.7).astype("int64").to_numpy()
    fitted = fit_model(
        frame, y, ModelParams(name=name, n_estimators=5), ResampleParams(sampler="smotenc")
    ).model
    published = publish(fitted, _report(), tmp_path, version="v1")
    loaded = load_model(published.directory)
    np.testing.assert_array_equal(loaded.predict_proba(frame), fitted.predict_proba(frame))
