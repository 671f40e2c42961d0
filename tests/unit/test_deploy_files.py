"""The files of deploy/: deployments, container variants, job templates, the automation."""

import json
import re
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.events.schemas.automations import AutomationCore

from retrain_guard.flows.local_stack import load_automation
from retrain_guard.schemas.params import RetrainParams
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
VARIANTS = ["prefect.yaml", "prefect-docker.yaml", "prefect-kubernetes.yaml"]


def _deployments(name: str) -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load((DEPLOY / name).read_text())
    return {d["name"]: d for d in loaded["deployments"]}


@pytest.mark.parametrize("name", VARIANTS)
def test_default_parameters_of_every_deployment_validate(name: str) -> None:
    for deployment in _deployments(name).values():
        RetrainParams.model_validate(deployment["parameters"]["params"])


@pytest.mark.parametrize("name", VARIANTS[1:])
def test_container_variants_mirror_the_process_deployments(name: str) -> None:
    process, variant = _deployments("prefect.yaml"), _deployments(name)
    assert set(variant) == set(process)
    for key, deployment in process.items():
        for field in ("entrypoint", "schedules", "concurrency_limit", "tags"):
            assert variant[key].get(field) == deployment.get(field), (key, field)
        assert variant[key]["work_pool"]["job_variables"]["image"].startswith("retrain-guard:")
        output_dir = variant[key]["parameters"]["params"]["publish"]["output_dir"]
        # Outputs must land on the mounted volume, not in a container that is removed.
        assert output_dir.startswith("/srv/retrain-guard/")


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_base_job_templates_default_to_the_image_and_the_volume(kind: str) -> None:
    template = json.loads((DEPLOY / kind / "base-job-template.json").read_text())
    variables = template["variables"]["properties"]
    assert variables["image"]["default"] == "retrain-guard:0.1.0"
    assert variables["env"]["default"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    rendered = json.dumps(template["job_configuration"])
    assert "{{ image }}" in rendered
    if kind == "kubernetes":
        spec = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
        assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/srv/retrain-guard"
    else:
        assert variables["volumes"]["default"] == ["/srv/retrain-guard:/srv/retrain-guard"]


def test_the_dockerfile_uses_the_paths_the_deployments_use() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "WORKDIR /opt/retrain-guard" in dockerfile
    for name in VARIANTS[1:]:
        loaded = yaml.safe_load((DEPLOY / name).read_text())
        step = loaded["pull"][0]["prefect.deployments.steps.set_working_directory"]
        assert step["directory"] == "/opt/retrain-guard"


def test_the_dockerfile_copies_every_folder_the_package_is_built_from() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = {
        name.split(".")[1] if "." in name else name
        for name in pyproject["tool"]["setuptools"]["packages"]
    }
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, flags=re.M))
    assert folders <= copied, folders - copied
    # The dependency step builds an empty package of the same layout, links included.
    assert "ln -s ../flows ../tasks ../schemas retrain_guard/" in dockerfile
    assert "-c requirements.lock" in dockerfile


def test_failure_automation_is_a_valid_prefect_automation() -> None:
    block_id = str(uuid.uuid4())
    automation = AutomationCore.model_validate(
        load_automation(Path(DEPLOY / "automations" / "notify-on-failure.yaml"), block_id)
    )
    assert automation.actions[0].type == "send-notification"
    assert str(getattr(automation.actions[0], "block_document_id", "")) == block_id
    # The state message starts with the failure code: the body carries code and summary.
    assert getattr(automation.actions[0], "body", "") == "{{ flow_run.state.message }}"
    assert "prefect.flow-run.Failed" in getattr(automation.trigger, "expect", set())


@pytest.mark.parametrize("name", VARIANTS)
def test_the_manual_deployment_asks_for_approval_and_the_nightly_does_not(name: str) -> None:
    deployments = _deployments(name)
    approval = {
        key: RetrainParams.model_validate(d["parameters"]["params"]).gate.approval
        for key, d in deployments.items()
    }
    assert approval == {"nightly": "never", "manual": "ask", "validate": "never"}
    # The manual deployment differs from the nightly one only by the approval.
    manual = dict(deployments["manual"]["parameters"]["params"])
    assert manual.pop("gate") == {"approval": "ask"}
    assert manual == deployments["nightly"]["parameters"]["params"]
