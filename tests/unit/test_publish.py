import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import retrain_guard.tasks.publish as publishing
from retrain_guard.schemas.params import ModelParams, ResampleParams
from retrain_guard.schemas.report import Report
from retrain_guard.tasks.locks import LockTimeout, exclusive_lock
from retrain_guard.tasks.publish import (
    LOCK_FILE,
    LatestMoved,
    ModelIntegrityError,
    Publication,
    Untrusted,
    latest_version,
    load_model,
    publish,
    publish_if_latest,
)
from retrain_guard.tasks.training import fit_model


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


Outcome = TypeVar("Outcome")


def _at_once(calls: list[Callable[[], Outcome]]) -> list[Outcome]:
    """Run the calls in threads released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Outcome]) -> Outcome:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _entries(output_dir: Path) -> list[str]:
    """Everything under models/: versions, `latest`, and any staging leftover."""
    return sorted(p.name for p in (output_dir / "models").iterdir())


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


def test_writers_at_once_each_get_an_intact_version_and_latest_names_one(
    tmp_path: Path, model: Any
) -> None:
    results = _at_once([lambda: publish(model, _report(), tmp_path) for _ in range(4)])
    versions = {r.directory.name for r in results}
    assert len(versions) == 4, "every writer gets its own version"
    assert _entries(tmp_path) == sorted([*versions, "latest"]), "no staging directory is left"
    assert latest_version(tmp_path) in versions
    for result in results:
        assert result.report.published is not None
        assert result.report.published.version == result.directory.name
        load_model(result.directory)


def test_of_two_runs_compared_with_the_same_model_only_one_publishes(
    tmp_path: Path, model: Any
) -> None:
    publish(model, _report(), tmp_path, version="v0")
    outcomes = _at_once(
        [lambda: publish_if_latest(model, _report(), tmp_path, expected_latest="v0")] * 2
    )
    published = [o for o in outcomes if isinstance(o, Publication)]
    moved = [o for o in outcomes if isinstance(o, LatestMoved)]
    assert len(published) == 1 and len(moved) == 1, outcomes
    winner = published[0].directory.name
    assert moved[0] == LatestMoved(expected="v0", found=winner)
    assert "from v0 to " + winner in moved[0].summary()
    assert latest_version(tmp_path) == winner
    assert _entries(tmp_path) == sorted(["v0", winner, "latest"]), "the refused run wrote nothing"
    load_model(published[0].directory)


def test_publish_if_latest_expects_none_on_a_first_run(tmp_path: Path, model: Any) -> None:
    first = publish_if_latest(model, _report(), tmp_path, expected_latest=None, version="v1")
    assert isinstance(first, Publication) and latest_version(tmp_path) == "v1"
    again = publish_if_latest(model, _report(), tmp_path, expected_latest=None)
    assert again == LatestMoved(expected=None, found="v1")
    assert "(none) to v1" in again.summary()
    assert _entries(tmp_path) == ["latest", "v1"]


def test_two_publishes_in_the_same_second_get_distinct_versions(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = iter(["20250101T000000Z-aaaaaa", "20250101T000000Z-aaaaaa", "20250101T000000Z-bbbbbb"])
    monkeypatch.setattr(publishing, "new_version", lambda: next(names))
    first = publish(model, _report(), tmp_path)
    second = publish(model, _report(), tmp_path)
    assert first.directory.name == "20250101T000000Z-aaaaaa"
    assert second.directory.name == "20250101T000000Z-bbbbbb"
    assert latest_version(tmp_path) == "20250101T000000Z-bbbbbb"
    load_model(first.directory)


def test_a_version_already_published_is_refused_and_left_alone(tmp_path: Path, model: Any) -> None:
    first = publish(model, _report(), tmp_path, version="v1")
    publish(model, _report(), tmp_path, version="v2")
    before = (first.directory / "report.json").read_text()
    with pytest.raises(FileExistsError, match="v1 is already published"):
        publish(model, _report(), tmp_path, version="v1")
    assert latest_version(tmp_path) == "v2"
    assert (first.directory / "report.json").read_text() == before
    assert _entries(tmp_path) == ["latest", "v1", "v2"]


def test_the_lock_is_released_when_publishing_fails(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(publishing, "write_report", crash)
    with pytest.raises(OSError, match="disk full"):
        publish(model, _report(), tmp_path, version="v1")
    monkeypatch.undo()
    # Free at once: both the thread lock and the flock were let go.
    with exclusive_lock(tmp_path / LOCK_FILE, timeout=0):
        pass
    assert publish(model, _report(), tmp_path, version="v1").directory.name == "v1"


def test_a_held_lock_times_out_naming_its_holder(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publishing, "LOCK_TIMEOUT_SECONDS", 0.2)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive_lock(tmp_path / LOCK_FILE):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        with pytest.raises(LockTimeout, match=r"stayed locked for 0.2 s \(holder: pid \d+ on "):
            publish(model, _report(), tmp_path, version="v1")
    finally:
        release.set()
        holder.join()
    assert latest_version(tmp_path) is None
    assert not (tmp_path / "models" / "v1").exists()


class UsersLogistic(LogisticRegression):
    """A user's own classifier: a type neither skops nor the built-in allow-list trusts."""


USERS_TYPE = f"{__name__}.UsersLogistic"


def _custom_model() -> Any:
    """A model holding a type outside the built-in allow-list (a custom estimator's)."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=80)})
    y = (frame["x"] > 0.5).astype("int64").to_numpy()
    params = ModelParams(name="custom", estimator=f"{__name__}:UsersLogistic")
    return fit_model(frame, y, params, ResampleParams()).model


def test_a_model_with_types_nobody_trusts_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    model = _custom_model()
    outcome = publish_if_latest(model, _report(), tmp_path, None)
    assert isinstance(outcome, Untrusted)
    assert outcome.types == [USERS_TYPE]
    assert "publish.trusted_types" in outcome.summary()
    with pytest.raises(ModelIntegrityError, match=r"UsersLogistic.*publish\.trusted_types"):
        publish(model, _report(), tmp_path)
    assert not (tmp_path / "models").exists()


def test_types_listed_in_trusted_types_publish_are_recorded_and_load_with_the_list(
    tmp_path: Path,
) -> None:
    model = _custom_model()
    extra = [USERS_TYPE, "some.other.Type"]
    published = publish(model, _report(), tmp_path, version="v1", trusted_types=extra)
    assert published.report.published is not None
    # Only what the model holds is recorded: what a loader has to trust.
    assert published.report.published.trusted_types == [USERS_TYPE]
    with pytest.raises(ModelIntegrityError, match=r"UsersLogistic.*publish\.trusted_types"):
        load_model(published.directory)
    loaded = load_model(published.directory, published.report.published.trusted_types)
    frame = pd.DataFrame({"x": [0.0, 2.0]})
    assert loaded.predict(frame).tolist() == model.predict(frame).tolist()


def test_trust_is_by_exact_name_never_by_package_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    held = [
        "retrain_guard.tasks.training.LabelledModel",  # in the built-in list
        "retrain_guard.tasks.training.SomethingElse",
        "sklearn.utils.Bunch",
        "numpy.random.mtrand.RandomState",
        "builtins.eval",
        "users.Model",
    ]
    monkeypatch.setattr(publishing.sio, "get_untrusted_types", lambda data: held)
    refused, needed = publishing.untrusted_types(b"", ["users.Model"])
    assert refused == sorted(held[1:5])
    assert needed == ["users.Model"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_published_files_and_directories_honour_the_umask(
    tmp_path: Path, model: Any, umask: int
) -> None:
    previous = os.umask(umask)
    try:
        assert publishing.current_umask() == umask
        published = publish(model, _report(), tmp_path / "out", version="v1")
    finally:
        os.umask(previous)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(published.directory) == 0o777 & ~umask
    for name in ("model.skops", "report.json"):
        assert mode(published.directory / name) == 0o666 & ~umask
    assert mode(tmp_path / "out" / "models" / "latest") == 0o666 & ~umask


def test_the_rename_is_flushed_with_its_directory(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[Path] = []
    monkeypatch.setattr(publishing, "fsync_directory", flushed.append)
    published = publish(model, _report(), tmp_path, version="v1")
    models = tmp_path / "models"
    # The model and report into the staging directory, the version into models/, then latest.
    assert flushed[-2:] == [models, models]
    assert published.directory.parent == models
    assert len(flushed) == 4
