"""The Prefect UI in headless Chromium: the run form of a deployment, a failed run's artifacts,
a paused run and the form with the evidence it asks a person to judge.

Pages are loaded with command-line Chromium (`--screenshot`, `--dump-dom`); the paused run's
Resume dialog opens only on a click, so that page is driven over the DevTools protocol
(tests/e2e/cdp.py). Chromium comes from Debian's `chromium` package; it is installed here when
missing (as root, with apt-get). Where it cannot be installed the tests are skipped with the
reason. Screenshots are written to tests/output/ for a person to look at.
"""

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from retrain_guard.flows.local_stack import LocalStack
from retrain_guard.schemas.params import Sampler
from retrain_guard.tasks.approval import APPROVAL_KEY
from tests.conftest import REPO
from tests.e2e.cdp import open_page
from tests.e2e.conftest import artifacts_of, wait_final
from tests.e2e.test_approval import start_paused
from tests.system_packages import apt_install

pytestmark = pytest.mark.e2e

OUTPUT = REPO / "tests" / "output"
BROWSER = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,1400",
)
FLAGS = (
    *BROWSER,
    # With virtual time only: driven over CDP it can leave a screenshot waiting for a frame.
    "--run-all-compositor-stages-before-draw",
    # Virtual time lets the single-page app fetch and render before the DOM is taken.
    "--virtual-time-budget=30000",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = apt_install("chromium")
        found = shutil.which("chromium")
        if found is None:
            pytest.skip(f"headless Chromium unavailable: {reason or 'not on PATH after install'}")
    return found


@pytest.fixture(scope="session")
def render(chromium: str) -> Callable[[str, str], str]:
    """Return a function that loads a URL, saves a screenshot and returns the rendered DOM."""
    OUTPUT.mkdir(parents=True, exist_ok=True)

    def load(url: str, name: str) -> str:
        outputs: list[str] = []
        for mode in (f"--screenshot={OUTPUT / name}.png", "--dump-dom"):
            with tempfile.TemporaryDirectory() as profile:
                done = subprocess.run(
                    [chromium, *FLAGS, f"--user-data-dir={profile}", mode, url],
                    capture_output=True,
                    text=True,
                    timeout=180,
                    check=False,
                )
            assert done.returncode == 0, done.stderr[-2000:]
            outputs.append(done.stdout)
        dom = outputs[1]
        (OUTPUT / f"{name}.html").write_text(dom, encoding="utf-8")
        return dom

    return load


def _in_order(text: str, labels: list[str]) -> list[int]:
    return [text.find(label) for label in labels]


def test_run_form_shows_the_parameter_fields(
    stack: LocalStack, api: httpx.Client, render: Callable[[str, str], str]
) -> None:
    deployment = api.get("/deployments/name/retrain/manual").json()
    dom = render(f"{stack.ui_url}/deployments/deployment/{deployment['id']}/run", "run-form")
    # Field titles, in the pipeline's order: data, columns, leakage, split, sampler, model.
    titles = [
        "Path",
        "Label Time",
        "Id Column",
        "Max Share After Label Time",
        "Holdout Fraction",
        "Gap Days",
        "Sampler",
        "Class Weight",
        "Decision Threshold",
        "Min Predicted To True Ratio",
        "Output Dir",
    ]
    positions = _in_order(dom, titles)
    assert -1 not in positions, dict(zip(titles, positions, strict=True))
    assert positions == sorted(positions)
    # Descriptions are shown beside the fields (the deployment's defaults fill the inputs'
    # values, which the screenshot shows; a DOM dump holds no input values).
    assert "imbalanced-learn sampler applied to the training part only" in dom
    assert "CSV or Parquet file with one row per labelled example, a directory" in dom
    # Choices are dropdowns holding exactly the allowed values.
    dropdowns = [
        re.findall(r'<option[^>]*value="([^"]*)"', select)
        for select in re.findall(r"<select[^>]*>(.*?)</select>", dom)
    ]
    assert list(get_args(Sampler)) in dropdowns
    assert ["none", "balanced"] in dropdowns
    assert ["auto", "time", "random"] in dropdowns
    assert ["pandas", "dask"] in dropdowns


def test_failed_run_pages_show_the_failure_code(
    stack: LocalStack,
    api: httpx.Client,
    two_runs: dict[str, dict[str, Any]],
    render: Callable[[str, str], str],
) -> None:
    failed = two_runs["collapsing"]
    run_page = render(f"{stack.ui_url}/runs/flow-run/{failed['id']}", "failed-run")
    assert failed["name"] in run_page
    assert "Failed" in run_page

    found = api.post(
        "/artifacts/filter",
        json={
            "artifacts": {
                "flow_run_id": {"any_": [failed["id"]]},
                "key": {"any_": ["retrain-guard-summary"]},
            }
        },
    ).json()
    artifact_page = render(f"{stack.ui_url}/artifacts/artifact/{found[0]['id']}", "failed-summary")
    assert "Halted:" in artifact_page
    assert "single_class_prediction" in artifact_page
    assert "Diagnosis (most likely first)" in artifact_page


# JavaScript run in the paused run's page: its Resume button, and the text of the dialog it
# opens once the dialog's form (loaded after the evidence) shows its last field, "By".
RESUME = "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Resume')"
DIALOG = "document.querySelector('[role=dialog]')?.innerText"
FORM = f"{DIALOG}?.includes('Who decides') && {DIALOG}"


def _open_resume_form(chromium: str, url: str) -> tuple[str, str]:
    """Open a paused run's page, click Resume and return the page's text and the dialog's
    once its form has loaded. Screenshots: the page, the dialog (the evidence above the form),
    or the page as it was when a step failed."""
    with open_page(chromium, BROWSER) as page:
        try:
            page.navigate(url)
            page.wait_for(RESUME, timeout=90)
            page.screenshot(OUTPUT / "paused-run.png")
            run_page = page.evaluate("document.body.innerText")
            page.evaluate(f"{RESUME}.click()")
            form = page.wait_for(FORM, timeout=60)
            page.screenshot(OUTPUT / "paused-run-form.png")
        except Exception:
            page.screenshot(OUTPUT / "paused-run-failure.png")
            raise
    (OUTPUT / "paused-run-form.txt").write_text(form, encoding="utf-8")
    return run_page, form


def test_a_paused_run_shows_resume_and_its_evidence(
    stack: LocalStack,
    api: httpx.Client,
    example_csv: Path,
    tmp_path: Path,
    chromium: str,
    render: Callable[[str, str], str],
) -> None:
    run = start_paused(api, example_csv, tmp_path)
    try:
        url = f"{stack.ui_url}/runs/flow-run/{run['id']}"
        run_page, form = _open_resume_form(chromium, url)
        assert run["name"] in run_page and "Paused" in run_page
        # Resume opens a dialog: the evidence, then the form's fields (Approval's titles and
        # descriptions; the evidence itself says "Approve to publish anyway"), then Submit.
        assert "Resume Flow Run" in form, form[:200]
        evidence_part, _, fields_part = form.rpartition("Approve")
        assert "Approval needed:" in evidence_part, evidence_part[:500]
        assert "near_single_class_prediction" in evidence_part, evidence_part[:500]
        order = ["Reason", "Why: kept in the report", "By", "Who decides", "Submit"]
        positions = _in_order(fields_part, order)
        found = dict(zip(order, positions, strict=True))
        assert -1 not in positions and positions == sorted(positions), (found, fields_part)
        # The same evidence is kept as an artifact of the run, after the form is gone.
        evidence = artifacts_of(api, run["id"])[APPROVAL_KEY]
        page_text = render(f"{stack.ui_url}/artifacts/artifact/{evidence['id']}", "paused-evidence")
        assert "Approval needed:" in page_text and "near_single_class_prediction" in page_text
    finally:
        answer = {"approve": False, "reason": "only looked at"}
        api.post(f"/flow_runs/{run['id']}/resume", json={"run_input": answer})
    assert wait_final(api, run["id"])["state_type"] == "FAILED"
