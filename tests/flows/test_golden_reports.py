"""Golden reports: the JSON report of the example run, the collapse run and every leak case.

The reports under tests/golden/ were written by this module and reviewed. A change to the
code that changes a report fails here; when the change is intended (a name in an output
changed on purpose), rewrite them with

    GOLDEN_UPDATE=1 .venv/bin/pytest tests/flows/test_golden_reports.py

and review the diff of tests/golden/ before committing it. What differs between two runs of
the same code is masked: run ids and names, timings, dates of the run, paths, versions and
the published model's hash. Floats are compared to 6 significant digits.
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from retrain_guard.flows.cli import run_flow
from retrain_guard.flows.example_data import make_transactions, write_table
from tests.conftest import REPO, params_for
from tests.leakage_cases import ID, LABEL, LEAKS, LOOKALIKES, Case, leak_case

GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
MASK = "<masked>"
# Values that change between two runs of the same code, by their path in the report.
_MASKED_PATHS = (
    ("run", "started_at"),
    ("run", "finished_at"),
    ("run", "report_path"),
    ("run", "versions"),
    ("run", "parameters", "data", "path"),
    ("run", "parameters", "publish", "output_dir"),
    ("published",),
    # The memory the machine has free at the time (the table's estimate stays compared).
    ("metrics", "memory", "available"),
)


def _mask_paths(report: dict[str, Any]) -> None:
    for path in _MASKED_PATHS:
        node: Any = report
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) is not None:
            node[path[-1]] = MASK
    timings = report.get("run", {}).get("timings_seconds")
    if isinstance(timings, dict):
        report["run"]["timings_seconds"] = sorted(timings)


def _normalise(value: Any, tmp: str) -> Any:
    """Round floats, and write the run's temporary directory as <tmp>."""
    if isinstance(value, dict):
        return {k: _normalise(v, tmp) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, tmp) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, str):
        return value.replace(tmp, "<tmp>")
    return value


def masked(report: Any, tmp: Path) -> dict[str, Any]:
    """Return the report as JSON with what differs between runs masked."""
    data = json.loads(report.model_dump_json(by_alias=True))
    _mask_paths(data)
    normalised: dict[str, Any] = _normalise(data, str(tmp))
    return normalised


def _compare(name: str, report: Any, tmp: Path) -> None:
    actual = masked(report, tmp)
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
        return
    assert path.exists(), f"no golden report {path}; write it with GOLDEN_UPDATE=1"
    expected = json.loads(path.read_text())
    assert actual == expected, f"the report of {name} changed; see {path}"


def _case_params(case: Case, path: Path, tmp: Path) -> Any:
    data = {"label": LABEL, "label_time": case.label_time, "id_column": ID, "drop": [*case.drop]}
    return params_for(path, tmp, data=data, leakage=case.leakage.model_dump(mode="json"))


def test_example_run(example_csv: Path, tmp_path: Path) -> None:
    params = params_for(example_csv, tmp_path, schema={"name": "example"})
    _compare("example_run", run_flow("run", params), tmp_path)


def test_collapse_run(example_csv: Path, tmp_path: Path) -> None:
    params = params_for(
        example_csv, tmp_path, schema={"name": "example"}, model={"class_weight": "none"}
    )
    _compare("collapse_run", run_flow("run", params), tmp_path)


def test_leaky_example_validation(tmp_path: Path) -> None:
    path = write_table(make_transactions(leaky=True), tmp_path / "leaky.parquet")
    _compare("leaky_example_validate", run_flow("validate", params_for(path, tmp_path)), tmp_path)


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_leak_case(name: str, tmp_path: Path) -> None:
    case = leak_case(name)
    path = write_table(case.frame, tmp_path / "case.parquet")
    _compare(f"leak_{name}", run_flow("run", _case_params(case, path, tmp_path)), tmp_path)


@pytest.mark.parametrize("name", sorted(LOOKALIKES))
def test_lookalike_case(name: str, tmp_path: Path) -> None:
    case = LOOKALIKES[name](4000, 0)
    path = write_table(case.frame, tmp_path / "case.parquet")
    _compare(f"lookalike_{name}", run_flow("run", _case_params(case, path, tmp_path)), tmp_path)
