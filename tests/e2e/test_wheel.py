"""The built wheel, installed (not editable) into a fresh virtual environment beside a user's own
packages named `tasks` and `flows`: all of them import, the command line runs, and a deployment
of the installed retrain flow runs on the real server and publishes a model.

The wheel is built from a copy of the package's sources (retrain_guard/ links flows/, tasks/ and
schemas/), so the build leaves nothing in the repository. Its dependencies are installed at the
versions of requirements.lock.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retrain_guard.flows.local_stack import LocalStack
from retrain_guard.tasks.publish import REPORT_FILE, latest_version
from tests.conftest import REPO
from tests.e2e.conftest import deployment_params, start_run, wait_final

pytestmark = pytest.mark.e2e

# What a wheel build reads: the package (its links included) and the project's metadata.
SOURCES = ("pyproject.toml", "README.md", "retrain_guard", "flows", "tasks", "schemas")
USER_PACKAGES = {"tasks": "the user's tasks", "flows": "the user's flows"}
DEPLOYMENT = "installed-wheel"


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("wheel-source")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(
                path, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source)
    (built,) = dist.glob("retrain_guard-*.whl")
    return built


@pytest.fixture(scope="module")
def user_project(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> tuple[Path, Path]:
    """A fresh venv with the wheel installed, and a user's project directory; returns both."""
    venv = tmp_path_factory.mktemp("user-venv")
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    lock = REPO / "requirements.lock"
    _run(python, "-m", "pip", "install", "--quiet", "-c", lock, wheel)
    project = tmp_path_factory.mktemp("user-project")
    for package, who in USER_PACKAGES.items():
        (project / package).mkdir()
        (project / package / "__init__.py").write_text(f"WHO = {who!r}\n")
    return venv, project


def test_the_wheel_claims_only_the_name_retrain_guard(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        declared = archive.read(top_level).decode().split()
    assert declared == ["retrain_guard"]
    tops = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert tops == {"retrain_guard"}, sorted(tops)
    # The package's data files travel with it.
    assert "retrain_guard/tasks/skops_trusted_types.txt" in names
    assert "retrain_guard/schemas/report.schema.json" in names


def test_the_users_tasks_and_flows_import_beside_it(user_project: tuple[Path, Path]) -> None:
    venv, project = user_project
    script = (
        "import json, flows, tasks, retrain_guard, retrain_guard.tasks.training as training\n"
        "print(json.dumps({'tasks': tasks.WHO, 'flows': flows.WHO,\n"
        "    'training': training.__file__, 'api': callable(retrain_guard.check_data)}))\n"
    )
    seen = json.loads(_run(venv / "bin" / "python", "-c", script, cwd=project))
    assert seen["tasks"] == USER_PACKAGES["tasks"] and seen["flows"] == USER_PACKAGES["flows"]
    assert seen["training"].startswith(str(venv)) and "site-packages" in seen["training"]
    assert seen["api"] is True


def test_the_installed_command_line_runs(
    user_project: tuple[Path, Path], stack: LocalStack
) -> None:
    venv, project = user_project
    env = {**os.environ, "PREFECT_API_URL": stack.api_url}
    cli = venv / "bin" / "retrain-guard"
    _run(cli, "example", "--out", "data.csv", "--rows", "5000", cwd=project, env=env)
    out = _run(
        cli,
        "validate",
        "--data",
        "data.csv",
        "--label",
        "is_fraud",
        "--label-time",
        "event_time",
        "--id",
        "transaction_id",
        "--schema",
        "example",
        "--report",
        "report.json",
        cwd=project,
        env=env,
    )
    assert "PASSED" in out, out
    assert json.loads((project / "report.json").read_text())["status"] == "passed"


@pytest.fixture
def served(user_project: tuple[Path, Path], stack: LocalStack) -> Iterator[subprocess.Popen[str]]:
    """The installed retrain flow served as a deployment from the user's project directory."""
    venv, project = user_project
    (project / "serve.py").write_text(
        "from retrain_guard import retrain\n\n"
        f"if __name__ == '__main__':\n    retrain.serve(name={DEPLOYMENT!r})\n"
    )
    log = (project / "serve.log").open("w")
    server = subprocess.Popen(
        [str(venv / "bin" / "python"), "serve.py"],
        cwd=project,
        env={**os.environ, "PREFECT_API_URL": stack.api_url},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_a_deployment_of_the_installed_flow_runs(
    served: subprocess.Popen[str],
    user_project: tuple[Path, Path],
    api: httpx.Client,
    example_csv: Path,
    tmp_path: Path,
) -> None:
    deadline = time.monotonic() + 120
    while api.get(f"/deployments/name/retrain/{DEPLOYMENT}").status_code != 200:
        if served.poll() is not None:
            log = user_project[1] / "serve.log"
            raise AssertionError(f"serve.py exited {served.returncode}:\n{log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, "the served deployment never appeared"
        time.sleep(1)
    output_dir = tmp_path / "out"
    run = wait_final(
        api, start_run(api, f"retrain/{DEPLOYMENT}", deployment_params(example_csv, output_dir))
    )
    assert run["state_type"] == "COMPLETED", run["state"]
    latest = latest_version(output_dir)
    assert latest is not None
    report = json.loads((output_dir / "models" / latest / REPORT_FILE).read_text())
    assert report["status"] == "passed" and report["published"]["version"] == latest
