"""A manual run that would halt only on an approvable check pauses for a person (real server,
real worker, the deployment retrain/manual): approved through the API it publishes, rejected
or left unanswered it ends Failed with the code first.

random_forest on the example table predicts the minority for 3 of its 28 true holdout rows:
near_single_class_prediction fails and nothing else does, deterministically.
"""

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrain_guard.tasks.approval import APPROVAL_KEY
from tests.e2e.conftest import FINAL, artifacts_of, deployment_params, start_run, wait_final

pytestmark = pytest.mark.e2e

CODE = "near_single_class_prediction"


def start_paused(
    api: httpx.Client, example_csv: Path, output_dir: Path, timeout: int = 600
) -> dict[str, Any]:
    """Start a borderline manual run that asks for approval; return it once paused."""
    params = deployment_params(
        example_csv,
        output_dir,
        model={"name": "random_forest"},
        gate={"approval": "ask", "approval_timeout": timeout},
    )
    return wait_paused(api, start_run(api, "retrain/manual", params))


def wait_paused(api: httpx.Client, run_id: str, timeout: float = 300) -> dict[str, Any]:
    """Poll a flow run until it is paused and its form is there; fail when it ends or never
    pauses.

    Prefect sets the Paused state first and saves the form's schema and description just
    after (prefect.flow_runs.pause_flow_run), as the UI also finds them: a form read the
    moment the state turns Paused can be missing still.
    """
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = api.get(f"/flow_runs/{run_id}").json()
        assert run["state_type"] not in FINAL, run["state"]
        if run["state_type"] == "PAUSED":
            keyset = run["state"]["state_details"]["run_input_keyset"]
            form = [keyset["description"], keyset["schema"]]
            saved = [api.get(f"/flow_runs/{run_id}/input/{key}") for key in form]
            if all(r.status_code == 200 for r in saved):
                return run
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not pause within {timeout}s: {run.get('state')}")


def _resume(api: httpx.Client, run_id: str, run_input: dict[str, Any]) -> None:
    response = api.post(f"/flow_runs/{run_id}/resume", json={"run_input": run_input})
    response.raise_for_status()
    assert response.json()["status"] == "ACCEPT", response.json()


def _report(output_dir: Path) -> dict[str, Any]:
    [path] = (output_dir / "reports").glob("*.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.fixture(scope="module")
def paused(api: httpx.Client, example_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A paused run: its form and evidence are read before a test answers it."""
    output_dir = tmp_path_factory.mktemp("approve")
    return start_paused(api, example_csv, output_dir), output_dir


def test_a_paused_run_shows_the_evidence_above_a_form(
    api: httpx.Client, paused: tuple[dict[str, Any], Path]
) -> None:
    run, _ = paused
    keyset = run["state"]["state_details"]["run_input_keyset"]
    description = api.get(f"/flow_runs/{run['id']}/input/{keyset['description']}")
    description.raise_for_status()
    text = json.loads(description.text)
    assert text.startswith(f"# Approval needed: `{CODE}`")
    assert "the model predicted class 1 for 3 holdout row(s)" in text
    schema = json.loads(api.get(f"/flow_runs/{run['id']}/input/{keyset['schema']}").text)
    assert {"approve", "reason", "by"} <= set(schema["properties"])
    assert artifacts_of(api, run["id"])[APPROVAL_KEY]["data"] == text
    # A resume without a reason is refused by the server: the form requires one.
    refused = api.post(f"/flow_runs/{run['id']}/resume", json={"run_input": {"approve": True}})
    assert refused.json()["status"] == "REJECT"


def test_an_approved_run_completes_and_publishes(
    api: httpx.Client, paused: tuple[dict[str, Any], Path]
) -> None:
    run, output_dir = paused
    _resume(api, run["id"], {"approve": True, "reason": "recall is fine for now", "by": "ana"})
    final = wait_final(api, run["id"])
    assert final["state_type"] == "COMPLETED", final["state"]
    assert (output_dir / "models" / "latest").exists()
    report = _report(output_dir)
    assert report["status"] == "passed" and report["published"]
    near = next(c for c in report["checks"] if c["code"] == CODE)
    assert near["status"] == "warn" and "approved by ana" in near["summary"]
    [approval] = report["run"]["approvals"]
    assert approval["approved"] is True and approval["reason"] == "recall is fine for now"
    assert approval["deployment"] == "manual" and approval["flow_run_id"] == run["id"]


def test_a_rejected_run_fails_with_the_code_first(
    api: httpx.Client, example_csv: Path, tmp_path: Path
) -> None:
    run = start_paused(api, example_csv, tmp_path)
    _resume(api, run["id"], {"approve": False, "reason": "too few frauds caught"})
    final = wait_final(api, run["id"])
    assert final["state_type"] == "FAILED", final["state"]
    assert final["state"]["message"].startswith(f"{CODE}: nearly one class")
    assert "rejected at " in final["state"]["message"]
    assert not (tmp_path / "models" / "latest").exists()


def test_an_unanswered_run_fails_after_the_timeout(
    api: httpx.Client, example_csv: Path, tmp_path: Path
) -> None:
    run = start_paused(api, example_csv, tmp_path, timeout=5)
    final = wait_final(api, run["id"], timeout=120)
    assert final["state_type"] == "FAILED", final["state"]
    message = final["state"]["message"]
    assert message.startswith(f"{CODE}: nearly one class")
    assert "no answer within gate.approval_timeout 5 s" in message
    assert not (tmp_path / "models" / "latest").exists()
