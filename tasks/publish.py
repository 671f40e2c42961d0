"""Publishing: model and report written atomically into a versioned directory.

`publish` and `publish_if_latest` write models/<version>/ and move `latest` while holding
<output_dir>/.publish.lock, so runs of several deployments (or machines) sharing one output
dir never interleave; `publish_if_latest` also refuses (LatestMoved) when another run moved
`latest` after this one was compared with it. `load_model` reads a published model back,
its hash and types verified.
"""

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
from tasks.locks import exclusive_lock

MODEL_FILE = "model.skops"
REPORT_FILE = "report.json"
LATEST = "latest"
# Held while `latest` is checked and moved (tasks/locks.py): the nightly and manual
# deployments have separate concurrency limits but share the output dir.
LOCK_FILE = ".publish.lock"
LOCK_TIMEOUT_SECONDS = 300.0
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


@dataclass(frozen=True)
class LatestMoved:
    """Nothing was published: `latest` no longer names the version the run was judged against.

    Another run published in between. The run's comparison is stale: compare with `found`
    again, or halt; never publish over it.
    """

    expected: str | None
    found: str | None

    def summary(self) -> str:
        return (
            f"models/latest moved from {self.expected or '(none)'} to {self.found or '(none)'} "
            "after this run was compared with it; nothing was published"
        )


class _Unchecked:
    """Publish whatever `latest` names now: the last writer wins."""


_UNCHECKED = _Unchecked()


def publish(
    model: Any, report: Report, output_dir: str | Path, version: str | None = None
) -> Publication:
    """Write the model and its report into models/<version>/ and point `latest` at it.

    Safe against other writers of the same output dir (see `publish_if_latest`), but it
    moves `latest` whatever it names now; a run judged against a last good model publishes
    through `publish_if_latest` instead.
    """
    outcome = _publish(model, report, output_dir, version, _UNCHECKED)
    assert isinstance(outcome, Publication), "an unchecked publish never finds latest moved"
    return outcome


def publish_if_latest(
    model: Any,
    report: Report,
    output_dir: str | Path,
    expected_latest: str | None,
    version: str | None = None,
) -> Publication | LatestMoved:
    """Publish only while `latest` still names `expected_latest` (None: no model yet).

    `expected_latest` is the version the run was compared with. Another run (the nightly
    and a manual one share the output dir) may have published since; then nothing is
    written and LatestMoved says which version `latest` names now.
    """
    return _publish(model, report, output_dir, version, expected_latest)


def _publish(
    model: Any,
    report: Report,
    output_dir: str | Path,
    version: str | None,
    expected: str | _Unchecked | None,
) -> Publication | LatestMoved:
    """Serialise the model, then, holding <output_dir>/.publish.lock: check `latest`, claim a
    version name no other writer holds, write models/<version>/ and move `latest`.

    Everything is written under a temporary directory that is renamed into place whole,
    and `latest` moves last, so an interrupted publish never replaces the last good model.
    """
    payload = sio.dumps(model)  # the slow part, outside the lock
    models = Path(output_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(Path(output_dir) / LOCK_FILE, timeout=LOCK_TIMEOUT_SECONDS):
        found = latest_version(output_dir)
        if not isinstance(expected, _Unchecked) and found != expected:
            return LatestMoved(expected=expected, found=found)
        final = models / _free_version(models, version)
        report = _write_version(final, payload, report)
        atomic_write_bytes(models / LATEST, (final.name + "\n").encode())
    return Publication(report=report, directory=final)


def _free_version(models: Path, version: str | None) -> str:
    """Return a version name not yet under `models`; called with the publish lock held."""
    if version is not None:
        if (models / version).exists():
            raise FileExistsError(f"version {version} is already published under {models}")
        return version
    chosen = new_version()
    while (models / chosen).exists():  # two runs in one second with the same random suffix
        chosen = new_version()
    return chosen


def _write_version(final: Path, payload: bytes, report: Report) -> Report:
    """Write the model and its report under a staging directory renamed to `final` whole;
    return the report with its `published` section."""
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        model_path = staging / MODEL_FILE
        atomic_write_bytes(model_path, payload)
        published = Published(
            version=final.name,
            model_path=str(final / MODEL_FILE),
            report_path=str(final / REPORT_FILE),
            sha256=hashlib.sha256(payload).hexdigest(),
        )
        report = report.model_copy(update={"published": published})
        write_report(report, staging / REPORT_FILE)
        os.replace(staging, final)
    except BaseException:
        for leftover in staging.glob("*"):
            leftover.unlink(missing_ok=True)
        staging.rmdir()
        raise
    return report


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
publish_if_latest_task = task(name="publish-model", cache_policy=NO_CACHE, persist_result=False)(
    publish_if_latest
)
