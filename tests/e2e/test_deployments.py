"""The deployments of deploy/prefect.yaml on a real server, run by a real process worker."""

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from retrain_guard.flows.example_data import write_table
from retrain_guard.flows.local_stack import (
    AUTOMATION_FILE,
    LocalStack,
    StackError,
    notify_with_block,
)
from retrain_guard.tasks.registry import label
from tests.e2e.conftest import Receiver, artifacts_of, deployment_params, start_run, wait_final

pytestmark = pytest.mark.e2e


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_passing_configuration_completes_and_publishes(
    two_runs: dict[str, dict[str, Any]], output_dir: Path
) -> None:
    run = two_runs["passing"]
    assert run["state_type"] == "COMPLETED", run["state"]
    assert (output_dir / "models" / "latest").exists()
    reports = [json.loads(p.read_text()) for p in (output_dir / "reports").glob("*.json")]
    assert "passed" in [r["status"] for r in reports]


def test_collapsing_configuration_fails_with_code_first(
    two_runs: dict[str, dict[str, Any]],
) -> None:
    run = two_runs["collapsing"]
    assert run["state_type"] == "FAILED", run["state"]
    assert run["state"]["message"].startswith("single_class_prediction: ")


def test_failed_run_artifacts_are_readable_through_the_api(
    api: httpx.Client, two_runs: dict[str, dict[str, Any]]
) -> None:
    artifacts = artifacts_of(api, two_runs["collapsing"]["id"])
    assert {"retrain-guard-summary", "retrain-guard-checks", "retrain-guard-report"} <= set(
        artifacts
    )
    summary = artifacts["retrain-guard-summary"]
    assert summary["type"] == "markdown"
    assert summary["data"].startswith("# Halted: `single_class_prediction`")
    # A table artifact's data is a JSON string.
    checks = json.loads(artifacts["retrain-guard-checks"]["data"])
    # Rows name a check by what it checks, with the code when it warns or fails.
    by_check = {row["check"]: row["status"] for row in checks}
    assert by_check[label("single_class_prediction", "fail")] == "fail"
    assert by_check[label("temporal_leakage", "pass")] == "pass"
    assert label("single_class_prediction", "fail").endswith("(single_class_prediction)")
    # Prefect stores a link artifact as markdown: [text](url).
    link = re.fullmatch(r"\[(.+)\]\((file://.+)\)", artifacts["retrain-guard-report"]["data"])
    assert link is not None, artifacts["retrain-guard-report"]
    report_path = Path(link.group(1))
    assert report_path.as_uri() == link.group(2)
    report = json.loads(report_path.read_text())
    assert report["failure"]["code"] == "single_class_prediction"
    assert report["run"]["report_path"].endswith(report_path.name)


def test_two_runs_started_together_do_not_overlap(
    api: httpx.Client, two_runs: dict[str, dict[str, Any]]
) -> None:
    first, second = sorted(two_runs.values(), key=lambda r: _time(r["start_time"]))
    assert _time(second["start_time"]) >= _time(first["end_time"])
    history = api.get("/flow_run_states/", params={"flow_run_id": second["id"]})
    history.raise_for_status()
    names = [s["name"] for s in history.json()]
    assert "AwaitingConcurrencySlot" in names, names


def test_failed_run_notification_carries_code_and_summary(
    receiver: Receiver, two_runs: dict[str, dict[str, Any]]
) -> None:
    failed = two_runs["collapsing"]
    body = receiver.wait_for(lambda b: failed["name"] in b.get("subject", ""))
    assert body is not None, f"no notification for {failed['name']}: {receiver.received}"
    assert body["text"] == failed["state"]["message"]
    assert body["text"].startswith("single_class_prediction: ")
    passing = two_runs["passing"]["name"]
    assert not [b for b in receiver.received if passing in b.get("subject", "")]


def test_validate_deployment_runs_from_the_cli(
    stack: LocalStack, api: httpx.Client, example_csv: Path, output_dir: Path
) -> None:
    params = deployment_params(example_csv, output_dir)
    result = stack.run(
        "deployment",
        "run",
        "validate-data/validate",
        "--param",
        f"params={json.dumps(params)}",
        "--watch",
    )
    assert "Completed" in result.stdout
    response = api.post(
        "/flow_runs/filter",
        json={"deployments": {"name": {"any_": ["validate"]}}, "sort": "START_TIME_DESC"},
    )
    response.raise_for_status()
    run = response.json()[0]
    assert run["state_type"] == "COMPLETED"
    artifacts = artifacts_of(api, run["id"])
    assert artifacts["retrain-guard-summary"]["data"].startswith("# Passed")


def test_invalid_parameters_are_rejected_naming_the_field(
    api: httpx.Client, example_csv: Path, output_dir: Path
) -> None:
    params = deployment_params(example_csv, output_dir, split={"holdout_fraction": 0.9})
    found = api.get("/deployments/name/retrain/manual").json()
    response = api.post(
        f"/deployments/{found['id']}/create_flow_run", json={"parameters": {"params": params}}
    )
    assert response.status_code == 409, response.text
    assert "holdout_fraction" in response.text


def test_worker_runs_flows_from_the_repository(stack: LocalStack) -> None:
    # The pull step resolved RETRAIN_GUARD_HOME at deploy time: the worker runs this checkout.
    shown = stack.run("deployment", "inspect", "retrain/manual")
    assert str(stack.repo) in shown.stdout


def test_cross_field_rules_are_checked_when_the_run_starts(
    api: httpx.Client, example_csv: Path, output_dir: Path
) -> None:
    # Each field is within its bounds, so the server accepts the run; the flow rejects it.
    params = deployment_params(example_csv, output_dir, split={"strategy": "random", "gap_days": 7})
    run = wait_final(api, start_run(api, "validate-data/validate", params))
    assert run["state_type"] == "FAILED"
    assert "split.gap_days" in run["state"]["message"]
    assert "split.strategy" in run["state"]["message"]


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_container_work_pools_accept_the_base_job_templates(
    stack: LocalStack, api: httpx.Client, kind: str
) -> None:
    # No container engine here: the pools are created and read back, no flow runs in them.
    pool = f"retrain-guard-{kind}"
    template = f"deploy/{kind}/base-job-template.json"
    stack.run("work-pool", "create", pool, "--type", kind, "--base-job-template", template)
    found = api.get(f"/work_pools/{pool}")
    found.raise_for_status()
    stored = found.json()["base_job_template"]
    assert stored["variables"]["properties"]["image"]["default"] == "retrain-guard:0.1.0"


def test_notifications_can_go_through_a_saved_block(stack: LocalStack, api: httpx.Client) -> None:
    # Slack and email blocks are chosen the same way; the stack saved this webhook block.
    automation_id = notify_with_block(
        stack.api_url, "custom-webhook/retrain-guard-failures", stack.repo / AUTOMATION_FILE
    )
    automation = api.get(f"/automations/{automation_id}").json()
    block = api.get("/block_types/slug/custom-webhook/block_documents/name/retrain-guard-failures")
    assert automation["actions"][0]["block_document_id"] == block.json()["id"]
    with pytest.raises(StackError, match="no such block"):
        notify_with_block(stack.api_url, "slack-webhook/missing", stack.repo / AUTOMATION_FILE)


def test_schema_failures_are_published_as_a_table(
    api: httpx.Client, example_frame: pd.DataFrame, data_dir: Path, output_dir: Path
) -> None:
    broken = example_frame.copy()
    broken.loc[[3, 17], "amount"] = -5.0
    path = write_table(broken, data_dir / "negative-amounts.csv")
    run = wait_final(
        api, start_run(api, "validate-data/validate", deployment_params(path, output_dir))
    )
    assert run["state_type"] == "FAILED"
    assert run["state"]["message"].startswith("schema_invalid: ")
    artifacts = artifacts_of(api, run["id"])
    rows = json.loads(artifacts["retrain-guard-schema-failures"]["data"])
    amount_rows = [r for r in rows if r["column"] == "amount"]
    assert sorted(r["row_index"] for r in amount_rows) == [3, 17]
    assert {r["value"] for r in amount_rows} == {-5.0}


def test_a_deployment_runs_on_the_dask_engine(
    api: httpx.Client, example_csv: Path, tmp_path: Path
) -> None:
    """retrain/nightly (never asks for approval) with compute.engine dask: a local cluster of
    one worker started by the flow run under the process worker, closed when it ends."""
    params = deployment_params(
        example_csv, tmp_path / "out", compute={"engine": "dask", "dask_workers": 1}
    )
    run = wait_final(api, start_run(api, "retrain/nightly", params))
    assert run["state_type"] == "COMPLETED", run["state"]
    (report_path,) = (tmp_path / "out" / "reports").glob("*.json")
    report = json.loads(report_path.read_text())
    assert report["status"] == "passed"
    assert report["metrics"]["engine"]["name"] == "dask"
    assert report["metrics"]["engine"]["on_cluster"] == ["load", "schema", "profile"]
