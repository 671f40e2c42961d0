"""A local Prefect stack: server (SQLite), work pool, deployments, worker, failure notifications.

`make serve` / `make stop` and the end-to-end tests use it. Services are started as process
group leaders and their PIDs written to <home>/<name>.pid, so `stop` ends exactly what `start`
started (the worker first: a worker that has run flows may ignore the first SIGTERM).

    python -m flows.local_stack start --home .prefect-local --port 4200 [--notify-url URL]
    python -m flows.local_stack notify --port 4200 (--notify-url URL | --notify-block SLUG/NAME)
    python -m flows.local_stack stop --home .prefect-local
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
POOL = "retrain-guard"
PREFECT_FILE = "deploy/prefect.yaml"
AUTOMATION_FILE = "deploy/automations/notify-on-failure.yaml"
NOTIFY_BLOCK = "retrain-guard-failures"
SERVICES = ("worker", "server")  # stop order


class StackError(RuntimeError):
    """A step of starting the stack failed; the message says which and where its log is."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Return whether something accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _prefect_bin() -> str:
    # The console script beside this interpreter: the worker then runs flows with the same venv.
    beside = Path(sys.executable).with_name("prefect")
    return str(beside) if beside.exists() else shutil.which("prefect") or "prefect"


@dataclass
class LocalStack:
    """One Prefect server with its work pool, deployments and worker, all under `home`."""

    home: Path
    port: int
    repo: Path = REPO
    scheduler: bool = True
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Return the environment every command and service of this stack runs with."""
        env = dict(os.environ)
        env.update(
            {
                "PREFECT_HOME": str(self.home / "prefect"),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_UI_API_URL": self.api_url,
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
                # Offline machines: telemetry would try DNS and log errors.
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1",
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                "RETRAIN_GUARD_HOME": str(self.repo),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if not self.scheduler:
            env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"
        env.update(self.extra_env)
        return env

    def pid_file(self, service: str) -> Path:
        return self.home / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.home / f"{service}.log"

    def _spawn(self, service: str, args: list[str]) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_file(service).open("ab")
        # A new session makes the service a process group leader: stop() signals the group,
        # which also reaches the flow-run processes a worker started.
        process = subprocess.Popen(
            args,
            cwd=self.repo,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.record(service, process.pid)
        return process.pid

    def record(self, service: str, pid: int) -> None:
        """Write the service's PID file: the PID and the process's start time."""
        self.pid_file(service).write_text(f"{pid} {_started_at(pid)}\n")

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a prefect CLI command against this stack; raise StackError when it fails."""
        result = subprocess.run(
            [_prefect_bin(), *args],
            cwd=self.repo,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"prefect {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def start_server(self, timeout: float = 120) -> None:
        """Start `prefect server start` and wait until /api/health answers."""
        if port_in_use(self.port):
            raise StackError(f"port {self.port} on 127.0.0.1 is in use; choose another port")
        pid = self._spawn("server", [_prefect_bin(), "server", "start"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                raise StackError(f"server exited early; see {self.log_file('server')}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise StackError(f"server not healthy after {timeout:.0f}s; see {self.log_file('server')}")

    def create_pool(self) -> None:
        """Create the process work pool the deployments name (replaced if it exists)."""
        self.run("work-pool", "create", POOL, "--type", "process", "--overwrite")

    def deploy(self) -> None:
        """Deploy every deployment of deploy/prefect.yaml from the repository root."""
        self.run("deploy", "--all", "--prefect-file", PREFECT_FILE, "--no-prompt")

    def start_worker(self) -> None:
        """Start a process worker polling the work pool."""
        self._spawn("worker", [_prefect_bin(), "worker", "start", "--pool", POOL])

    def configure_notifications(self, url: str) -> str:
        """Point failure notifications at a webhook URL; return the automation id."""
        return configure_notifications(self.api_url, url, self.repo / AUTOMATION_FILE)

    def start(self, notify_url: str | None = None) -> None:
        """Start the whole stack; on any failure stop what was started and re-raise."""
        try:
            self.start_server()
            self.create_pool()
            self.deploy()
            if notify_url:
                self.configure_notifications(notify_url)
            self.start_worker()
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 10) -> list[str]:
        """Stop the worker, then the server, by the PIDs in their files; return what stopped."""
        stopped = []
        for service in SERVICES:
            pid_file = self.pid_file(service)
            if not pid_file.exists():
                continue
            pid_text, _, started = pid_file.read_text().strip().partition(" ")
            pid = int(pid_text)
            # After a reboot the PID may belong to another process: signal only the one
            # that was started, recognised by its start time.
            if started == _started_at(pid) and terminate_group(pid, grace):
                stopped.append(f"{service} (pid {pid})")
            pid_file.unlink()
        return stopped


def _started_at(pid: int) -> str:
    """Return the process's start time in clock ticks since boot ('' when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22, counted after the parenthesised command name (which may hold spaces).
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False  # our child, and it has exited
    except ChildProcessError:
        pass  # not our child: fall back to probing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate_group(pid: int, grace: float = 10) -> bool:
    """Send TERM to the process group led by pid, wait, then KILL; return whether it ran."""
    if not _alive(pid):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.2)
    return True


def load_automation(path: Path, block_document_id: str) -> dict[str, Any]:
    """Read the automation definition and point its notification actions at one block."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise StackError(f"{path}: expected one automation as a mapping")
    for action in loaded.get("actions", []):
        if action.get("type") == "send-notification":
            action["block_document_id"] = block_document_id
    return loaded


def configure_notifications(
    api_url: str, webhook_url: str, automation_file: Path, block_name: str = NOTIFY_BLOCK
) -> str:
    """Save a webhook notification block and (re)create the failure automation; return its id.

    Slack or email instead: save a Slack Webhook or an email block in the UI (Blocks) and
    use `notify_with_block` (command line: `notify --notify-block slug/name`).
    """
    with retrying_client(httpx.Client(base_url=api_url, timeout=30)) as client:
        block_type = _ok(client.get("/block_types/slug/custom-webhook")).json()
        schemas = _ok(
            client.post(
                "/block_schemas/filter",
                json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
            )
        ).json()
        existing = client.get(f"/block_types/slug/custom-webhook/block_documents/name/{block_name}")
        if existing.status_code == 200:
            _ok(client.delete(f"/block_documents/{existing.json()['id']}"))
        document = _ok(
            client.post(
                "/block_documents/",
                json={
                    "name": block_name,
                    "block_type_id": block_type["id"],
                    "block_schema_id": schemas[0]["id"],
                    "data": {
                        "name": block_name,
                        "url": webhook_url,
                        "method": "POST",
                        "json_data": {"subject": "{{subject}}", "text": "{{body}}"},
                        "timeout": 10,
                    },
                },
            )
        ).json()
        return _create_automation(client, load_automation(automation_file, document["id"]))


def notify_with_block(api_url: str, block: str, automation_file: Path) -> str:
    """(Re)create the failure automation sending through a saved block; return its id.

    Args:
        block: "<block type slug>/<block name>" of a notification block saved in Prefect,
            e.g. "slack-webhook/data-team" or "email-server-credentials/..." via the UI.
    """
    slug, _, name = block.partition("/")
    if not slug or not name:
        raise StackError(f"--notify-block {block!r}: expected <block type slug>/<block name>")
    with retrying_client(httpx.Client(base_url=api_url, timeout=30)) as client:
        found = client.get(f"/block_types/slug/{slug}/block_documents/name/{name}")
        if found.status_code == 404:
            raise StackError(f"--notify-block {block!r}: no such block saved on {api_url}")
        return _create_automation(client, load_automation(automation_file, _ok(found).json()["id"]))


def _create_automation(client: httpx.Client, automation: dict[str, Any]) -> str:
    # One automation per name: re-running `notify` replaces it instead of sending twice.
    for found in _ok(client.post("/automations/filter", json={})).json():
        if found["name"] == automation["name"]:
            _ok(client.delete(f"/automations/{found['id']}"))
    return str(_ok(client.post("/automations/", json=automation)).json()["id"])


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise StackError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: "
            f"{response.text[:1000]}"
        )
    return response


def retrying_client(client: httpx.Client) -> httpx.Client:
    """Return the client with a hook that retries answers a busy SQLite server gives."""
    send = client.send

    def send_with_retries(request: httpx.Request, **kwargs: Any) -> httpx.Response:
        for delay in (0.5, 1, 2, 4, 8):
            response = send(request, **kwargs)
            if response.status_code not in (429, 503):
                return response
            time.sleep(delay)
        return send(request, **kwargs)

    client.send = send_with_retries  # type: ignore[method-assign]
    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.local_stack", description=__doc__)
    parser.add_argument("command", choices=("start", "stop", "notify"))
    parser.add_argument("--home", default=".prefect-local", help="state, logs and PID files")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--notify-url", help="webhook that receives failed-run notifications")
    parser.add_argument(
        "--notify-block",
        help="notify through a saved block instead: <block type slug>/<name>, "
        "e.g. slack-webhook/data-team",
    )
    args = parser.parse_args(argv)
    stack = LocalStack(home=Path(args.home).resolve(), port=args.port)
    try:
        if args.command == "stop":
            stopped = stack.stop()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
            return 0
        if args.command == "notify":
            if args.notify_block:
                automation = notify_with_block(
                    stack.api_url, args.notify_block, stack.repo / AUTOMATION_FILE
                )
            elif args.notify_url:
                automation = stack.configure_notifications(args.notify_url)
            else:
                parser.error("notify needs --notify-url or --notify-block")
            print(f"automation {automation} sends failed retrain runs' notifications")
            return 0
        if stack.pid_file("server").exists():
            print(f"already started (see {stack.pid_file('server')}); run `make stop` first")
            return 2
        stack.start(args.notify_url)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Prefect UI: {stack.ui_url}")
    print("Deployments: retrain/nightly, retrain/manual, validate-data/validate; start a run")
    print("from a deployment's page (Run > Custom run), or from a shell:")
    print(f"  PREFECT_API_URL={stack.api_url} .venv/bin/prefect deployment run retrain/manual")
    print(f"Logs and PID files: {stack.home}.  Stop everything with: make stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
