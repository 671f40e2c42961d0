"""Two runs publishing into one output dir at once, in separate processes.

The nightly and manual deployments have separate concurrency limits, so nothing in Prefect
keeps their runs apart; these tests start two processes against one output dir and check
that `latest` names a complete version and that each run's report tells what it did.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    TaskRunFilter,
    TaskRunFilterName,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from retrain_guard.schemas.params import ModelParams, ResampleParams
from retrain_guard.schemas.report import Report
from retrain_guard.tasks.locks import exclusive_lock
from retrain_guard.tasks.publish import LOCK_FILE, latest_version, load_model, publish
from retrain_guard.tasks.training import fit_model
from tests.conftest import REPO, params_for

# Loads the last good model, says it is ready, then publishes it again if `latest` still
# names it; prints the outcome as JSON.
PUBLISHER = """
import json, sys
from pathlib import Path
from retrain_guard.schemas.report import Report
from retrain_guard.tasks.publish import LatestMoved, load_model, publish_if_latest

output_dir, expected, name = sys.argv[1:]
model = load_model(Path(output_dir) / "models" / expected)
print("ready", flush=True)
report = Report(status="passed", run={"deployment": name})
outcome = publish_if_latest(model, report, output_dir, expected_latest=expected)
if isinstance(outcome, LatestMoved):
    print(json.dumps({"moved": {"expected": outcome.expected, "found": outcome.found}}))
else:
    print(json.dumps({"published": outcome.directory.name}))
"""

# Runs the retrain flow on the parameters given as JSON; prints the report (passed or
# halted) as JSON.
RETRAIN = """
import sys
from retrain_guard.flows.cli import run_flow
from retrain_guard.schemas.params import RetrainParams

report = run_flow("run", RetrainParams.model_validate_json(sys.argv[1]))
print(report.model_dump_json())
"""


def _start(code: str, *args: str, api_url: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _last_line(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out.strip().splitlines()[-1]


def test_two_processes_compared_with_one_model_publish_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60)})
    y = (frame["x"] > 0.8).astype("int64").to_numpy()
    model = fit_model(
        frame, y, ModelParams(name="random_forest", n_estimators=5), ResampleParams()
    ).model
    publish(model, Report(status="passed"), tmp_path, version="v0")

    # Hold the lock until both processes are ready, so that they meet at it.
    with exclusive_lock(tmp_path / LOCK_FILE):
        runs = [_start(PUBLISHER, str(tmp_path), "v0", name) for name in ("nightly", "manual")]
        for run in runs:
            assert run.stdout is not None and run.stdout.readline().strip() == "ready"
        time.sleep(0.3)
    outcomes: list[dict[str, Any]] = [json.loads(_last_line(run)) for run in runs]

    published = [o["published"] for o in outcomes if "published" in o]
    moved = [o["moved"] for o in outcomes if "moved" in o]
    assert len(published) == 1 and len(moved) == 1, outcomes
    winner = published[0]
    assert moved[0] == {"expected": "v0", "found": winner}
    assert latest_version(tmp_path) == winner
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(
        ["latest", "v0", winner]
    )
    stored = Report.model_validate_json((tmp_path / "models" / winner / "report.json").read_text())
    assert stored.published is not None and stored.published.version == winner
    load_model(tmp_path / "models" / winner)


async def _running_publishes() -> int:
    async with get_client() as client:
        runs = await client.read_task_runs(
            task_run_filter=TaskRunFilter(
                name=TaskRunFilterName(like_="publish-model"),
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING])),
            )
        )
    return sum(run.state_type == StateType.RUNNING for run in runs)


def test_two_retrain_runs_at_once_publish_one_model_and_halt_the_other(
    prefect_server: str, example_csv: Path, tmp_path: Path
) -> None:
    """Nightly and manual runs compared with the same last good model (none: a first run)
    meet at the publish lock: one publishes, the other halts with latest_moved."""
    params = params_for(example_csv, tmp_path).model_dump_json(by_alias=True)
    # Hold the lock until both runs are in their publish task, so that they meet at it.
    with exclusive_lock(tmp_path / LOCK_FILE):
        runs = [_start(RETRAIN, params, api_url=prefect_server) for _ in range(2)]
        deadline = time.monotonic() + 240
        while asyncio.run(_running_publishes()) < 2:
            assert time.monotonic() < deadline, "both runs never reached publishing"
            assert all(run.poll() is None for run in runs), "a run ended before publishing"
            time.sleep(0.5)
    reports = [Report.model_validate_json(_last_line(run)) for run in runs]

    published = [r for r in reports if r.status == "passed"]
    halted = [r for r in reports if r.status == "failed"]
    assert len(published) == 1 and len(halted) == 1, [r.one_line() for r in reports]
    winner = published[0].published
    assert winner is not None
    directory = Path(winner.model_path).parent
    stored = Report.model_validate_json((directory / "report.json").read_text())
    assert stored.published == winner
    load_model(directory)
    assert latest_version(tmp_path) == winner.version
    failure = halted[0].failure
    assert failure is not None and failure.code == "latest_moved"
    assert failure.details["compared_with"] is None
    assert failure.details["latest"] == winner.version
    assert halted[0].published is None
    for report in reports:
        assert Path(str(report.run["report_path"])).exists()
    entries = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert entries == sorted([winner.version, "latest"]), "nothing else is left in models/"
