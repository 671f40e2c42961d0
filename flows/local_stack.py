"""A local Prefect stack: server (SQLite), work pool, deployments, worker, failure notifications.

`make serve` / `make stop` and the end-to-end tests use it. Each step is Prefect's own: the
server is `prefect server start` in a session of its own with its output in <home>/server.log
and its PID in Prefect's PID file (<home>/prefect/server.pid), so that `prefect server stop`
ends it; `prefect work-pool create` and `prefect deploy` set up the pool and the deployments;
the notification block is saved with `Block.save` and the automation created through Prefect's
client. The worker, which Prefect cannot start in the background either, is started the same
way (<home>/worker.log) and stopped here by the PID in <home>/worker.pid.

Not `prefect server start --background`: it leaves the server writing to a pipe that nobody
reads once the command returns, and the first log line written there after that (a warning,
an error, uvicorn's own) breaks the request that logs it and can take the server down.

    python -m retrain_guard.flows.local_stack start --home .prefect-local --port 4200 \
        [--notify-url URL]
    python -m retrain_guard.flows.local_stack notify --port 4200 \
        (--notify-url URL | --notify-block SLUG/NAME)
    python -m retrain_guard.flows.local_stack stop --home .prefect-local
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import httpx
import yaml
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

REPO = Path(__file__).resolve().parents[1]
POOL = "retrain-guard"
PREFECT_FILE = "deploy/prefect.yaml"
AUTOMATION_FILE = "deploy/automations/notify-on-failure.yaml"
NOTIFY_BLOCK = "retrain-guard-failures"


class StackError(RuntimeError):
    """A step of starting the stack failed; the message says which and how."""


# Prefect's CLI, run by this interpreter: the worker then runs flows with the same environment.
PREFECT = (sys.executable, "-m", "prefect")


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

    @property
    def server_pid_file(self) -> Path:
        """Prefect's PID file of the server (under PREFECT_HOME), read by `prefect server stop`."""
        return self.home / "prefect" / "server.pid"

    @property
    def worker_pid_file(self) -> Path:
        return self.home / "worker.pid"

    def env(self) -> dict[str, str]:
        """Return the environment every command and service of this stack runs with."""
        env = dict(os.environ)
        env.update(
            {
                "PREFECT_HOME": str(self.home / "prefect"),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_UI_API_URL": self.api_url,
                # The UI reads the port from here; `--port` alone leaves it pointing at 4200.
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
                # Offline machines: telemetry would try DNS and log errors.
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1",
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                # The server's log goes to <home>/server.log: warnings and errors.
                "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
                "RETRAIN_GUARD_HOME": str(self.repo),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a prefect CLI command against this stack; raise StackError when it fails."""
        self.home.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [*PREFECT, *args],
            cwd=self.repo,
            env=self.env(),
            stdin=subprocess.DEVNULL,
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
        """Start the server in a session of its own and wait until its API answers.

        Its PID goes to Prefect's PID file only once it answers, so a server that never came up
        leaves no PID file behind.
        """
        # Refuse a port in use before starting: another server answering there would pass
        # the health check below while this one fails its own port check.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as exc:
                raise StackError(f"Port {self.port} is already in use ({exc.strerror})") from exc
        server = self._spawn(
            "server", "start", "--scheduler" if self.scheduler else "--no-scheduler"
        )
        try:
            deadline = time.monotonic() + timeout
            while not (server.poll() is None and self._healthy()):
                if server.poll() is not None:
                    raise StackError(
                        f"prefect server start exited {server.returncode}:\n"
                        f"{self._log_tail('server')}"
                    )
                if time.monotonic() > deadline:
                    raise StackError(
                        f"prefect server start: no answer on {self.api_url} after "
                        f"{timeout:.0f}s:\n{self._log_tail('server')}"
                    )
                time.sleep(0.5)
        except BaseException:
            # Failed or interrupted before the PID file exists, where stop() looks for it.
            terminate_group(server.pid)
            raise
        self.server_pid_file.write_text(str(server.pid))

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """Start a long-running prefect command leading a new session, output in <name>.log.

        stop() signals that process group, which also reaches the processes it started (a
        worker's flow runs).
        """
        self.server_pid_file.parent.mkdir(parents=True, exist_ok=True)
        with (self.home / f"{args[0]}.log").open("ab") as log:
            return subprocess.Popen(
                [*PREFECT, *args],
                cwd=self.repo,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _log_tail(self, name: str, chars: int = 3000) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")[-chars:]

    def start_worker(self) -> None:
        """Start a process worker polling the work pool, recording its PID."""
        self.record_worker(self._spawn("worker", "start", "--pool", POOL).pid)

    def record_worker(self, pid: int) -> None:
        """Write the worker's PID file: the PID and the process's start time."""
        self.worker_pid_file.write_text(f"{pid} {_started_at(pid)}\n")

    def start(self, notify_url: str | None = None) -> None:
        """Start the whole stack; on any failure stop what was started and re-raise."""
        try:
            self.start_server()
            self.run("work-pool", "create", POOL, "--type", "process", "--overwrite")
            self.run("deploy", "--all", "--prefect-file", PREFECT_FILE, "--no-prompt")
            if notify_url:
                configure_notifications(self.api_url, notify_url, self.repo / AUTOMATION_FILE)
            self.start_worker()
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 10) -> list[str]:
        """Stop the worker, then the server; return what stopped.

        The worker goes first: one that has run flows may ignore the first SIGTERM.
        """
        stopped = []
        if self.worker_pid_file.exists():
            pid_text, _, started = self.worker_pid_file.read_text().strip().partition(" ")
            pid = int(pid_text)
            # After a reboot the PID may belong to another process: signal only the one
            # that was started, recognised by its start time.
            if started == _started_at(pid) and terminate_group(pid, grace):
                stopped.append(f"worker (pid {pid})")
            self.worker_pid_file.unlink()
        if self.server_pid_file.exists():
            pid = int(self.server_pid_file.read_text())
            running = _alive(pid)
            self.run("server", "stop")  # also removes a PID file whose process has ended
            # `prefect server stop` sends SIGTERM and returns: wait for the server to end, so
            # that its port is free for the next start.
            if not _wait_gone(pid, grace):
                raise StackError(f"server (pid {pid}) still running {grace:.0f}s after stop")
            if running:
                stopped.append(f"server (pid {pid})")
        return stopped


def _stat(pid: int) -> list[str]:
    """Return /proc/<pid>/stat after the command name ([] when there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # The command name is parenthesised and may hold spaces: split after it.
    return stat.rsplit(")", 1)[1].split()


def _started_at(pid: int) -> str:
    """Return the process's start time in clock ticks since boot ('' when unknown)."""
    fields = _stat(pid)
    return fields[19] if fields else ""


def _alive(pid: int) -> bool:
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaps it when it is an exited child of this process
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")  # a zombie has ended


def _wait_gone(pid: int, seconds: float) -> bool:
    """Wait up to `seconds` for the process to end; return whether it did."""
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
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
        if _wait_gone(pid, wait):
            break
    return True


def load_automation(path: Path, block_document_id: UUID | str) -> AutomationCore:
    """Read the automation definition, its notification actions sending through one block."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    for action in loaded.get("actions", []):
        if action.get("type") == "send-notification":
            action["block_document_id"] = str(block_document_id)
    return AutomationCore.model_validate(loaded)


def configure_notifications(
    api_url: str, webhook_url: str, automation_file: Path, block_name: str = NOTIFY_BLOCK
) -> UUID:
    """Save a webhook notification block and (re)create the failure automation; return its id.

    Slack or email instead: save a Slack Webhook or an email block in the UI (Blocks) and
    use `notify_with_block` (command line: `notify --notify-block slug/name`).
    """
    webhook = CustomWebhookNotificationBlock(
        name=block_name,
        url=webhook_url,
        method="POST",
        json_data={"subject": "{{subject}}", "text": "{{body}}"},
        timeout=10,
    )
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        webhook.save(block_name, overwrite=True)
    slug = CustomWebhookNotificationBlock.get_block_type_slug()
    return notify_with_block(api_url, f"{slug}/{block_name}", automation_file)


def notify_with_block(api_url: str, block: str, automation_file: Path) -> UUID:
    """(Re)create the failure automation sending through a saved block; return its id.

    Args:
        block: "<block type slug>/<block name>" of a notification block saved in Prefect,
            e.g. "slack-webhook/data-team" or "email-server-credentials/..." via the UI.
    """
    slug, _, name = block.partition("/")
    if not slug or not name:
        raise StackError(f"--notify-block {block!r}: expected <block type slug>/<block name>")
    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,  # retries while a busy SQLite server answers 503
    ):
        try:
            found = client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            raise StackError(
                f"--notify-block {block!r}: no such block saved on {api_url}"
            ) from None
        automation = load_automation(automation_file, found.id)
        # One automation per name: re-running `notify` replaces it instead of sending twice.
        for old in client.read_automations_by_name(automation.name):
            client.delete_automation(old.id)
        return client.create_automation(automation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retrain_guard.flows.local_stack", description=__doc__
    )
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
            automation_file = stack.repo / AUTOMATION_FILE
            if args.notify_block:
                automation = notify_with_block(stack.api_url, args.notify_block, automation_file)
            elif args.notify_url:
                automation = configure_notifications(
                    stack.api_url, args.notify_url, automation_file
                )
            else:
                parser.error("notify needs --notify-url or --notify-block")
            print(f"automation {automation} sends failed retrain runs' notifications")
            return 0
        if stack.server_pid_file.exists():
            print(f"already started (see {stack.server_pid_file}); run `make stop` first")
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
