"""The registry of checks is complete, and README's table of codes is rendered from it."""

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.tasks.codes_table import codes_table, with_codes_table
from retrain_guard.tasks.registry import CHECKS, LEAK_TYPES, ROW_CHECKS
from retrain_guard.tasks.reporting import DATA_CHECKS, RETRAIN_CHECKS
from tests.conftest import REPO

# Calls that name a check's code, and where: a keyword, or a position (0 = first argument).
_CODE_ARGUMENTS: dict[str, str | int] = {
    "CheckResult": "code",
    "Failure": "code",
    "check": 0,
    "check_from_findings": 0,
    "skip": 0,
    "UsageError": 1,
}


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _code_expressions(tree: ast.AST) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = _CODE_ARGUMENTS.get(_called(node) or "")
        if isinstance(where, str):
            found += [k.value for k in node.keywords if k.arg == where]
        elif isinstance(where, int) and len(node.args) > where:
            found.append(node.args[where])
    return found


def _emitted_codes() -> dict[str, str]:
    """Return every code written in flows/ and tasks/ (literal or module constant) -> where."""
    codes: dict[str, str] = {}
    for path in sorted([*(REPO / "flows").rglob("*.py"), *(REPO / "tasks").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for expr in _code_expressions(tree):
            value: object
            if isinstance(expr, ast.Constant):
                value = expr.value
            elif isinstance(expr, ast.Name) and expr.id.isupper():
                value = getattr(importlib.import_module(module), expr.id)
            else:  # a variable carrying a code from elsewhere (code=code, exc.code)
                continue
            assert isinstance(value, str), f"{path}:{expr.lineno}: code {value!r} is no text"
            codes.setdefault(value, f"{Path(path).relative_to(REPO)}:{expr.lineno}")
    return codes


def test_the_scan_sees_codes_of_every_kind() -> None:
    codes = _emitted_codes()
    # A literal, a module constant, a code of the CLI and one of a leakage check.
    assert {"internal_error", "schema_invalid", "no_features_left", "temporal_leakage"} <= set(
        codes
    )


def test_every_code_a_module_can_emit_is_registered() -> None:
    unregistered = {c: where for c, where in _emitted_codes().items() if c not in CHECKS}
    assert unregistered == {}


def test_the_readme_table_is_the_rendered_registry() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert codes_table() in text
    assert with_codes_table(text) == text, (
        "run `python -m retrain_guard.tasks.codes_table` and commit README.md"
    )


def _has_parameter(path: str) -> bool:
    model: Any = RetrainParams
    for part in path.split("."):
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


@pytest.mark.parametrize("code", sorted(CHECKS))
def test_an_entry_names_real_parameters_and_leak_types(code: str) -> None:
    entry = CHECKS[code]
    assert entry.code == code and entry.name and entry.meaning
    assert [p for p in entry.parameters if not _has_parameter(p)] == []
    assert set(entry.taxonomy) <= set(LEAK_TYPES)
    # A leak has a remedy; findings about rows are leaks.
    assert bool(entry.taxonomy) == bool(entry.remedy)
    assert not entry.names_rows or entry.taxonomy


def test_names_are_unique_and_row_checks_are_the_row_leaks() -> None:
    names = [c.name for c in CHECKS.values()]
    assert len(names) == len(set(names))
    assert {"split_leakage", "resampling_leakage", "order_leakage"} == ROW_CHECKS


def test_the_flows_expect_the_registered_checks_in_report_order() -> None:
    assert RETRAIN_CHECKS[: len(DATA_CHECKS)] == DATA_CHECKS
    assert DATA_CHECKS[0] == ("schema_invalid", "schema")
    assert RETRAIN_CHECKS[-1] == ("worse_than_last_good", "gate")
    assert all(CHECKS[code].stage == stage for code, stage in RETRAIN_CHECKS)


def test_every_whole_table_leak_names_a_function_that_runs_it() -> None:
    from retrain_guard.tasks.leakage.detect import runner

    entries = [c for c in CHECKS.values() if c.runs]
    assert [c.code for c in entries] == [
        "temporal_leakage",
        "missingness_leakage",
        "target_leakage",
        "order_leakage",
        "resampling_leakage",
        "ambiguous_dates",
    ]
    for entry in entries:
        assert entry.stage == "leakage"
        assert callable(runner(entry)), entry.runs
