"""The layout keeps its shape: no import cycle among the project's modules, dates a leaf.

Imports are read from the source (ast), so an import placed inside a function to dodge a
cycle counts like one at the top of the module.
"""

import ast
from pathlib import Path

from tests.conftest import REPO

# The installed package and its subpackages: flows/, tasks/ and schemas/ sit at the repository's
# top level and are linked into retrain_guard/, whose own source is only its __init__.py.
PACKAGE = "retrain_guard"
SUBPACKAGES = ("flows", "tasks", "schemas")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] != PACKAGE:
        parts = [PACKAGE, *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Return every module of the package (flows/, tasks/, schemas/) by its dotted name."""
    paths = [REPO / PACKAGE / "__init__.py"]
    paths += [path for sub in SUBPACKAGES for path in sorted((REPO / sub).rglob("*.py"))]
    return {_module_name(path): path for path in paths}


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Return the project modules `name` imports anywhere in its source.

    `from x import y` imports x, and x.y too when that is a module; relative imports are
    resolved against the module's package.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(name, path).split(".")
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    """Return module -> the project modules it imports."""
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)) is not None:
            return cycle
    return None


def test_no_import_cycle_among_flows_tasks_and_schemas() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_dates_imports_nothing_of_the_project() -> None:
    graph = import_graph()
    project = {PACKAGE, *SUBPACKAGES, "tests", "benchmarks"}
    tree = ast.parse((REPO / "tasks" / "dates.py").read_text())
    roots = {
        alias.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import)
        for alias in n.names
    }
    roots |= {
        (n.module or "").split(".")[0] or "."
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom)
    }
    assert not roots & (project | {"."}), f"tasks/dates.py imports {sorted(roots & project)}"
    assert graph["retrain_guard.tasks.dates"] == set()


# A module past this is doing more than one thing; the README's "Layout" says where to split.
MAX_LINES = 500


def test_no_module_is_over_the_size_a_reader_takes_in() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in project_modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_readme_layout_names_every_module_of_tasks() -> None:
    layout = (REPO / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    modules = [p.stem for p in (REPO / "tasks").glob("*.py") if p.stem != "__init__"]
    assert [m for m in modules if f"{m}.py" not in layout] == []


def test_nothing_imports_the_subpackages_by_their_bare_names() -> None:
    """`import tasks` would load a second copy of tasks/ (or a user's own package named tasks)
    beside retrain_guard.tasks: every import says retrain_guard.<subpackage>."""
    sources = [REPO / PACKAGE / "__init__.py"]
    for folder in (*SUBPACKAGES, "tests", "benchmarks", "examples"):
        sources += sorted((REPO / folder).rglob("*.py"))
    bare = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            bare += [
                f"{path.relative_to(REPO)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in SUBPACKAGES
            ]
    assert bare == []
