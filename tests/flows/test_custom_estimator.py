"""model.name custom through the real flow and CLI: LightGBM (the optional extra) trains,
passes the gate, publishes and loads back with publish.trusted_types; a LightGBM collapse
halts with a diagnosis naming its parameters; an unusable estimator is exit 2. lightgbm is in
the dev extra: these tests run (and fail) rather than skip when it is missing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from retrain_guard.flows.cli import main
from retrain_guard.schemas.report import Report
from retrain_guard.tasks.publish import ModelIntegrityError, load_model
from tests.conftest import REPO, params_for
from tests.flows.test_retrain_training import run

LGBM = "lightgbm:LGBMClassifier"
# The types a fitted LGBMClassifier adds to a published model.
LGBM_TYPES = [
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
]
QUIET = {"verbose": -1, "n_jobs": 1}
BASE = ["--label", "is_fraud", "--label-time", "event_time", "--id", "transaction_id"]


def test_lightgbm_trains_passes_the_gate_publishes_and_loads_back(
    example_csv: Path, tmp_path: Path
) -> None:
    params = params_for(
        example_csv,
        tmp_path,
        model={"name": "custom", "estimator": LGBM, "params": {**QUIET, "n_estimators": 50}},
        resample={"sampler": "smote"},
        publish={"trusted_types": LGBM_TYPES},
    )
    report = run(params)
    assert report.status == "passed", report.one_line()
    assert report.published is not None
    assert report.published.trusted_types == sorted(LGBM_TYPES)
    resampling = report.metrics["resampling"]
    assert isinstance(resampling, dict)
    # LGBMClassifier takes class_weight and model.params leaves it out: balanced is passed.
    assert resampling["class_weight"] == "balanced"
    assert resampling["after"] != resampling["before"]  # smote, on the training part only
    directory = Path(report.published.model_path).parent
    model = load_model(directory, report.published.trusted_types)
    assert type(model.model.estimator_.named_steps["estimator"]).__name__ == "LGBMClassifier"
    with pytest.raises(ModelIntegrityError, match=r"publish\.trusted_types"):
        load_model(directory)
    # A second run is compared with the first: the last good model loads with the same list.
    again = run(params)
    assert again.status == "passed", again.one_line()
    comparison = again.metrics["comparison"]
    assert isinstance(comparison, dict) and comparison["last_good_version"] == (
        report.published.version
    )


def test_lightgbm_without_trusted_types_publishes_nothing(
    example_csv: Path, tmp_path: Path
) -> None:
    params = params_for(
        example_csv,
        tmp_path,
        model={"name": "custom", "estimator": LGBM, "params": {**QUIET, "n_estimators": 20}},
        publish={"trusted_types": LGBM_TYPES[:1]},
    )
    report = run(params)
    assert report.failure is not None and report.failure.code == "invalid_parameters"
    assert report.failure.stage == "publish"
    assert "publish.trusted_types" in report.failure.summary
    assert "lightgbm.basic.Booster" in report.failure.summary
    models = tmp_path / "models"
    assert not models.exists() or not any(models.iterdir())


def test_a_lightgbm_collapse_halts_and_names_its_parameters(
    collapse_csv: Path, tmp_path: Path
) -> None:
    settings = {**QUIET, "n_estimators": 1, "learning_rate": 0.001}
    report = run(
        params_for(
            collapse_csv,
            tmp_path,
            model={"name": "custom", "estimator": LGBM, "params": settings, "class_weight": "none"},
        )
    )
    assert report.failure is not None
    assert report.failure.code in ("single_class_prediction", "near_single_class_prediction")
    assert report.published is None
    underfitting = [c for c in report.diagnosis if c.cause == "underfitting"]
    assert underfitting, [c.cause for c in report.diagnosis]
    assert "model.params" in underfitting[0].evidence
    assert "'n_estimators': 1" in underfitting[0].evidence
    assert "model.params" in underfitting[0].remedy


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str], report: Path) -> str:
    assert main([*argv, "--report", str(report)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    written = Report.model_validate(json.loads(report.read_text()))
    assert written.failure is not None and written.failure.code == "invalid_parameters"
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("estimator", "params", "expected"),
    [
        ("no_such_package.models:Thing", {}, "model.estimator: 'no_such_package.models:Thing'"),
        ("lightgbm:NoSuchClass", {}, "has no 'NoSuchClass'"),
        ("lightgbm:train", {}, "not a class"),
        ("sklearn.preprocessing:StandardScaler", {}, "it has no predict_proba"),
        ("sklearn.linear_model:LogisticRegression", {"depth": 3}, "model.params: "),
        ("lightgbm", {}, "model.estimator (--estimator): 'lightgbm' is not an import path"),
    ],
)
def test_an_unusable_estimator_is_exit_2_naming_the_setting(
    capsys: pytest.CaptureFixture[str],
    example_csv: Path,
    tmp_path: Path,
    estimator: str,
    params: dict[str, object],
    expected: str,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"model": {"params": params}}) if params else "{}\n")
    argv = ["run", "--data", str(example_csv), *BASE, "--output-dir", str(tmp_path)]
    argv += ["--model", "custom", "--estimator", estimator, "--config", str(config)]
    line = _usage_error(capsys, argv, tmp_path / "report.json")
    assert expected in line, line
    assert not (tmp_path / "models").exists()


def test_parameters_refused_only_by_fit_are_exit_2_naming_model_params(
    capsys: pytest.CaptureFixture[str], example_csv: Path, tmp_path: Path
) -> None:
    # scikit-learn checks a parameter's value in fit: the flow reports it, the CLI exits 2.
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"model": {"params": {"C": -1.0}}}))
    argv = ["run", "--data", str(example_csv), *BASE, "--output-dir", str(tmp_path)]
    argv += ["--model", "custom", "--estimator", "sklearn.linear_model:LogisticRegression"]
    line = _usage_error(capsys, [*argv, "--config", str(config)], tmp_path / "report.json")
    assert "model.params: sklearn.linear_model:LogisticRegression failed to fit" in line, line


# The optional extras' modules: the package imports each only where a run uses it, so an
# install without the extra works (tests/e2e/test_wheel.py installs none of them).
EXTRAS = ("lightgbm", "dask.dataframe", "distributed", "s3fs", "prefect_aws")


def test_no_optional_extra_is_imported_with_the_package() -> None:
    code = (
        "import sys, retrain_guard, retrain_guard.flows.cli, retrain_guard.flows.retrain, "
        "retrain_guard.flows.api, retrain_guard.tasks.training; "
        f"print(' '.join(m for m in {EXTRAS!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == ""
