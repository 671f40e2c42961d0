"""Publishing: model and report written atomically into a versioned directory."""

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import skops.io as sio
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.report import Published, Report

MODEL_FILE = "model.skops"
REPORT_FILE = "report.json"
LATEST = "latest"
# Types a published model may contain; anything else in a file is refused on load.
TRUSTED_PREFIXES = (
    "sklearn.",
    "imblearn.",
    "numpy.",
    "tasks.training.",
    "tasks.resampling.",
    "builtins.",
    "collections.",
)


class ModelIntegrityError(ValueError):
    """A published model file does not match its recorded hash or holds untrusted types."""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_dir_problem(path: str | Path) -> str | None:
    """Return why reports and models could not be written under `path`, or None if they can.

    Nothing is created: a directory that does not exist yet is fine when its nearest
    existing ancestor is a writable directory.
    """
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            return f"{target} is a file, not a directory"
        if not os.access(target, os.W_OK | os.X_OK):
            return f"{target} is not writable"
        return None
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{target} cannot be created: {ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{target} cannot be created: {ancestor} is not writable"
    return None


def write_report(report: Report, path: str | Path) -> Path:
    """Write the report JSON atomically."""
    target = Path(path)
    atomic_write_bytes(target, (report.model_dump_json(indent=2) + "\n").encode())
    return target


def new_version(now: datetime | None = None) -> str:
    """Return a sortable version name: UTC time and a short random suffix."""
    moment = now or datetime.now(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


@dataclass(frozen=True)
class Publication:
    report: Report
    directory: Path


def publish(
    model: Any, report: Report, output_dir: str | Path, version: str | None = None
) -> Publication:
    """Write the model and its report into models/<version>/ and point `latest` at it.

    Everything is written under a temporary directory that is renamed into place
    whole, and `latest` moves last, so an interrupted publish never replaces the
    last good model.
    """
    models = Path(output_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    version = version or new_version()
    final = models / version
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=models))
    try:
        model_path = staging / MODEL_FILE
        atomic_write_bytes(model_path, sio.dumps(model))
        published = Published(
            version=version,
            model_path=str(final / MODEL_FILE),
            report_path=str(final / REPORT_FILE),
            sha256=sha256_of(model_path),
        )
        report = report.model_copy(update={"published": published})
        write_report(report, staging / REPORT_FILE)
        os.replace(staging, final)
    except BaseException:
        for leftover in staging.glob("*"):
            leftover.unlink(missing_ok=True)
        staging.rmdir()
        raise
    atomic_write_bytes(models / LATEST, (version + "\n").encode())
    return Publication(report=report, directory=final)


def latest_version(output_dir: str | Path) -> str | None:
    """Return the version `latest` points at, if any."""
    pointer = Path(output_dir) / "models" / LATEST
    return pointer.read_text().strip() if pointer.exists() else None


def load_model(version_dir: str | Path) -> Any:
    """Load a published model after checking its hash and that it holds only trusted types.

    Raises:
        ModelIntegrityError: the hash differs from the report's, or a type is not trusted.
    """
    directory = Path(version_dir)
    recorded = json.loads((directory / REPORT_FILE).read_text())["published"]["sha256"]
    model_path = directory / MODEL_FILE
    actual = sha256_of(model_path)
    if actual != recorded:
        raise ModelIntegrityError(
            f"{model_path}: SHA-256 {actual} differs from the report's {recorded}"
        )
    payload = model_path.read_bytes()
    untrusted = sio.get_untrusted_types(data=payload)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelIntegrityError(f"{model_path}: holds types that are not trusted: {refused}")
    return sio.loads(payload, trusted=untrusted)


# Publishing runs only after every gate passed.
publish_task = task(name="publish-model", cache_policy=NO_CACHE, persist_result=False)(publish)
