"""examples/lightgbm_flow.py run as a user runs it: its published LightGBM model and report, and
the halt of a collapsing configuration."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from retrain_guard.schemas.report import RetrainGuardHalt
from retrain_guard.tasks.publish import REPORT_FILE, ModelIntegrityError, latest_version, load_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lightgbm_flow.py"
LIGHTGBM_ONLY = {"lightgbm.sklearn.LGBMClassifier", "lightgbm.basic.Booster"}


def test_the_example_publishes_its_lightgbm_model(prefect_server: str, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--workdir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output_dir = tmp_path / "guard"
    version = latest_version(output_dir)
    assert version is not None and f"published {output_dir}" in done.stdout
    published = output_dir / "models" / version
    report = json.loads((published / REPORT_FILE).read_text())
    assert report["status"] == "passed" and report["run"]["flow"] == "check-model"
    assert report["published"]["version"] == version
    gate = {c["code"]: c["status"] for c in report["checks"] if c["stage"] == "gate"}
    assert gate["single_class_prediction"] == "pass"

    # A job loading it trusts exactly what the report says the model needs, nothing broader.
    trusted = report["published"]["trusted_types"]
    assert sorted(trusted) == ["collections.OrderedDict", *sorted(LIGHTGBM_ONLY)]
    with pytest.raises(ModelIntegrityError, match=r"publish\.trusted_types"):
        load_model(published)
    model = load_model(published, trusted_types=trusted)
    example = importlib.import_module("examples.lightgbm_flow")
    rows = example.features(
        pd.read_sql_table("transactions", f"sqlite:///{tmp_path}/warehouse.sqlite")
    )
    assert set(model.predict(rows)) == {0, 1}


def test_a_collapsing_configuration_halts_at_the_gate(tmp_path: Path) -> None:
    example = importlib.import_module("examples.lightgbm_flow")
    with pytest.raises(RetrainGuardHalt) as raised:
        example.retrain_lightgbm(str(tmp_path), example.COLLAPSING)
    report = raised.value.report
    assert report.failure is not None and report.failure.code == "single_class_prediction"
    assert report.failure.stage == "gate"
    causes = [c.cause for c in report.diagnosis]
    assert causes[0] == "extreme_imbalance", causes
    assert latest_version(tmp_path / "guard") is None
