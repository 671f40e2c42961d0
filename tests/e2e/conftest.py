"""One real Prefect stack for the whole session: server, work pool, deployments, worker.

Also a webhook receiver on 127.0.0.1 that records what the failure automation sends.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.base import PrefectHttpxSyncClient

from retrain_guard.flows.local_stack import LocalStack
from tests.conftest import example_sections

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """A webhook endpoint that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                try:
                    received.append(json.loads(body))
                except ValueError:
                    received.append({"raw": body.decode("utf-8", "replace")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate: Any, timeout: float = 90) -> dict[str, Any] | None:
        """Return the first received body the predicate accepts, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in list(self.received):
                if predicate(body):
                    return body
            time.sleep(0.5)
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("prefect-stack")
    # No scheduler: the nightly deployment must not start runs of its own during the tests.
    local = LocalStack(home=home, port=free_port(), scheduler=False)
    local.start(notify_url=receiver.url)
    try:
        yield local
    finally:
        stopped = local.stop()
    assert [s.split(" ")[0] for s in stopped] == ["worker", "server"], stopped
    assert not local.server_pid_file.exists()


@pytest.fixture(scope="session")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    """Raw REST calls through Prefect's own httpx client, which retries a busy server (503)."""
    with PrefectHttpxSyncClient(
        base_url=stack.api_url, timeout=30, raise_on_all_errors=False
    ) as client:
        yield client


def deployment_params(data: Path, output_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """Return the whole `params` object for a run (a run's parameters replace the defaults)."""
    schema = {"name": "example", **sections.pop("schema", {})}
    return example_sections(data, output_dir, schema=schema, **sections)


def start_run(api: httpx.Client, deployment: str, params: dict[str, Any]) -> str:
    """Create a flow run of 'flow/deployment' with these params; return its id."""
    flow_name, name = deployment.split("/")
    found = api.get(f"/deployments/name/{flow_name}/{name}")
    found.raise_for_status()
    created = api.post(
        f"/deployments/{found.json()['id']}/create_flow_run",
        json={"parameters": {"params": params}},
    )
    created.raise_for_status()
    return str(created.json()["id"])


def wait_final(api: httpx.Client, run_id: str, timeout: float = 420) -> dict[str, Any]:
    """Poll a flow run until it is final; return it."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = api.get(f"/flow_runs/{run_id}")
        response.raise_for_status()
        run = response.json()
        if run["state_type"] in FINAL:
            return run
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} not final after {timeout}s: {run.get('state')}")


def artifacts_of(api: httpx.Client, run_id: str) -> dict[str, dict[str, Any]]:
    """Return the flow run's artifacts by key."""
    response = api.post(
        "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    )
    response.raise_for_status()
    return {a["key"]: a for a in response.json() if a.get("key")}


@pytest.fixture(scope="session")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-out")


@pytest.fixture(scope="session")
def two_runs(api: httpx.Client, example_csv: Path, output_dir: Path) -> dict[str, dict[str, Any]]:
    """A passing and a collapsing run of retrain/manual, started together."""
    passing = start_run(api, "retrain/manual", deployment_params(example_csv, output_dir))
    collapsing = start_run(
        api,
        "retrain/manual",
        deployment_params(example_csv, output_dir, model={"class_weight": "none"}),
    )
    return {"passing": wait_final(api, passing), "collapsing": wait_final(api, collapsing)}
