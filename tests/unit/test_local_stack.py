"""Starting and stopping the local stack without a running Prefect server."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrain_guard.flows.local_stack import LocalStack, StackError, main

# A service that ignores the first SIGTERM, as a worker that has run flows may do, with a
# child in its process group (as a worker's flow-run processes are).
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return state not in ("Z", "X")


def test_stop_ends_the_worker_and_its_children_by_pid(tmp_path: Path) -> None:
    stack = LocalStack(home=tmp_path, port=4311)
    service = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert service.stdout is not None
    child = int(service.stdout.readline())
    stack.record_worker(service.pid)

    stopped = stack.stop(grace=1)

    service.wait(timeout=10)
    assert stopped == [f"worker (pid {service.pid})"]
    # A killed process takes a moment to be torn down after the signal is sent.
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert not stack.worker_pid_file.exists()


def test_stop_leaves_a_process_that_reuses_a_stale_pid_alone(tmp_path: Path) -> None:
    stack = LocalStack(home=tmp_path, port=4311)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        stack.worker_pid_file.write_text(f"{other.pid} 1\n")  # started at another time
        assert stack.stop(grace=1) == []
        assert other.poll() is None
        assert not stack.worker_pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_stop_with_nothing_started_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stop", "--home", str(tmp_path)]) == 0
    assert "nothing was running" in capsys.readouterr().out


def test_start_refuses_a_second_stack_in_the_same_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = LocalStack(home=tmp_path, port=4311)
    stack.server_pid_file.parent.mkdir(parents=True)
    stack.server_pid_file.write_text("1")
    assert main(["start", "--home", str(tmp_path), "--port", "4311"]) == 2
    assert "make stop" in capsys.readouterr().out
    assert stack.server_pid_file.read_text() == "1"


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    # `prefect server start` checks the port before it starts anything.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = LocalStack(home=tmp_path, port=port)
        with pytest.raises(StackError, match=f"Port {port} is already in use"):
            stack.start_server()
        assert not stack.server_pid_file.exists()
