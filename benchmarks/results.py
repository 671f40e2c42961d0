"""What every benchmark records beside its figures: the machine, the versions, the section."""

import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from retrain_guard.schemas.params import RetrainParams

RESULTS = Path(__file__).with_name("RESULTS.md")


def cpu_model() -> str:
    """Return the CPU's model name, or 'unknown'."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else "unknown"


def describe_machine(packages: tuple[str, ...]) -> str:
    """Return one line: cores, CPU, Python, the given packages' versions and the load."""
    libs = []
    for package in packages:
        try:
            libs.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            libs.append(f"{package} (not installed)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Machine: {os.cpu_count()} cores (nproc), {cpu_model()}, Python "
        f"{platform.python_version()}; {', '.join(libs)}; load average at the start "
        f"{load:.1f} (the machine may be shared: compare ratios measured in one run)."
    )


def replace_section(heading: str, body: str, results: Path = RESULTS) -> None:
    """Replace the section that starts at `heading` (up to the next '## ') or append it."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n"
    else:
        end = text.find("\n## ", start + len(heading))
        rest = text[end + 1 :] if end >= 0 else ""
        text = text[:start] + body.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    results.write_text(text)


def example_params(path: Path, output_dir: Path) -> RetrainParams:
    """The parameters of a run on the example table with the example schema."""
    return RetrainParams.model_validate(
        {
            "data": {
                "path": str(path),
                "label": "is_fraud",
                "label_time": "event_time",
                "id_column": "transaction_id",
            },
            "schema": {"name": "example"},
            "publish": {"output_dir": str(output_dir)},
        }
    )
