"""README's table of failure and check codes, rendered from the registry.

`python -m tasks.codes_table` rewrites the table between its markers in README.md;
tests/unit/test_readme_codes.py fails when README and the registry are out of step.
"""

import re
from pathlib import Path

from retrain_guard.tasks.registry import CHECKS, Check, leak_type

# README.md holds the rendered table between these two lines.
TABLE_START = (
    "<!-- codes table: rendered from tasks/registry.py by "
    "`python -m retrain_guard.tasks.codes_table` -->"
)
TABLE_END = "<!-- end of codes table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _approval(c: Check) -> tuple[str, ...]:
    # A check a person may approve is also set by gate.approval.
    return ("gate.approval",) if c.approvable else ()


def codes_table() -> str:
    """Return README's markdown table of every code, one row per registered check."""
    lines = [
        "| code | shown as | stage | fails when | set by | leak type |",
        "|---|---|---|---|---|---|",
    ]
    for c in CHECKS.values():
        stages = " / ".join((c.stage, *c.also_stages))
        parameters = ", ".join(f"`{p}`" for p in (*c.parameters, *_approval(c)))
        leaks = ", ".join(leak_type(t) for t in c.taxonomy)
        lines.append(
            f"| `{c.code}` | {c.name} | {stages} | {_cell(c.meaning)} | {parameters} | {leaks} |"
        )
    return "\n".join(lines)


def with_codes_table(readme: str) -> str:
    """Return the README text with the table between the markers rendered anew."""
    pattern = re.compile(re.escape(TABLE_START) + r"\n.*?\n" + re.escape(TABLE_END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError("README has no codes table markers")
    rendered = f"{TABLE_START}\n{codes_table()}\n{TABLE_END}"
    return pattern.sub(lambda _: rendered, readme)


if __name__ == "__main__":
    readme = Path(__file__).resolve().parents[1] / "README.md"
    readme.write_text(with_codes_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
