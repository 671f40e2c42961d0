"""Publishing: model and report written atomically into a versioned directory.

`publish` and `publish_if_latest` write models/<version>/ and move `latest` while holding
<output_dir>/.publish.lock, so runs of several deployments (or machines) sharing one output
dir never interleave; `publish_if_latest` also refuses (LatestMoved) when another run moved
`latest` after this one was compared with it. `load_model` reads a published model back,
its hash and types verified: only the exact types of the built-in models
(skops_trusted_types.txt) and those publish.trusted_types lists are trusted, and a model
that could not be loaded back is refused (Untrusted) before anything is written. Files and
directories are created with the permissions the umask allows, so other jobs can read them.
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import skops.io as sio
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain_guard.schemas.report import Published, Report
from retrain_guard.tasks.locks import exclusive_lock

MODEL_FILE = "model.skops"
REPORT_FILE = "report.json"
LATEST = "latest"
# Held while `latest` is checked and moved (tasks/locks.py): the nightly and manual
# deployments have separate concurrency limits but share the output dir.
LOCK_FILE = ".publish.lock"
LOCK_TIMEOUT_SECONDS = 300.0
# The exact types, beyond skops' own trusted ones, that the built-in models' pipelines hold:
# one fully-qualified name a line, regenerated and compared by tests/unit/test_trusted_types.py.
BUILTIN_TYPES_FILE = Path(__file__).with_name("skops_trusted_types.txt")
TRUSTED_SETTING = "publish.trusted_types"


@cache
def builtin_trusted_types() -> frozenset[str]:
    """Return the exact types a built-in model may hold."""
    lines = BUILTIN_TYPES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def untrusted_types(
    payload: bytes, trusted_types: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Return the types of a skops payload in neither list, and those `trusted_types` covers."""
    held = sio.get_untrusted_types(data=payload)
    extra = set(trusted_types)
    builtin = builtin_trusted_types()
    refused = sorted(t for t in held if t not in builtin and t not in extra)
    needed = sorted(t for t in held if t in extra and t not in builtin)
    return refused, needed


def refusal(types: list[str]) -> str:
    """Say which types are refused and the setting that would trust them."""
    return (
        f"holds types that are not trusted: {', '.join(types)}; list the exact ones you "
        f"trust in {TRUSTED_SETTING}"
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


def current_umask() -> int:
    """Return the process umask without changing it where the system can tell it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    # Elsewhere the only way to read it is to set it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_directory(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the system allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # systems without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # file systems that cannot fsync a directory
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`.

    The file gets the permissions an ordinary open would (0666 less the umask), not
    mkstemp's 0600, and the rename is flushed to disk with its directory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


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


@dataclass(frozen=True)
class Untrusted:
    """Nothing was published: the model holds types neither the built-in list nor
    publish.trusted_types trusts, so it could not be loaded back."""

    types: list[str]

    def summary(self) -> str:
        return f"the model {refusal(self.types)}; nothing was published"


class _Unchecked:
    """Publish whatever `latest` names now: the last writer wins."""


_UNCHECKED = _Unchecked()


def publish(
    model: Any,
    report: Report,
    output_dir: str | Path,
    version: str | None = None,
    trusted_types: Iterable[str] = (),
) -> Publication:
    """Write the model and its report into models/<version>/ and point `latest` at it.

    Safe against other writers of the same output dir (see `publish_if_latest`), but it
    moves `latest` whatever it names now; a run judged against a last good model publishes
    through `publish_if_latest` instead.

    Raises:
        ModelIntegrityError: the model holds types neither list trusts; nothing is written.
    """
    outcome = _publish(model, report, output_dir, version, _UNCHECKED, trusted_types)
    if isinstance(outcome, Untrusted):
        raise ModelIntegrityError(outcome.summary())
    assert isinstance(outcome, Publication), "an unchecked publish never finds latest moved"
    return outcome


def publish_if_latest(
    model: Any,
    report: Report,
    output_dir: str | Path,
    expected_latest: str | None,
    version: str | None = None,
    trusted_types: Iterable[str] = (),
) -> Publication | LatestMoved | Untrusted:
    """Publish only while `latest` still names `expected_latest` (None: no model yet).

    `expected_latest` is the version the run was compared with. Another run (the nightly
    and a manual one share the output dir) may have published since; then nothing is
    written and LatestMoved says which version `latest` names now. A model holding types
    that neither the built-in list nor `trusted_types` trusts is not written (Untrusted).
    """
    return _publish(model, report, output_dir, version, expected_latest, trusted_types)


def _publish(
    model: Any,
    report: Report,
    output_dir: str | Path,
    version: str | None,
    expected: str | _Unchecked | None,
    trusted_types: Iterable[str],
) -> Publication | LatestMoved | Untrusted:
    """Serialise the model and check it could be loaded back; then, holding
    <output_dir>/.publish.lock: check `latest`, claim a version name no other writer holds,
    write models/<version>/ and move `latest`.

    Everything is written under a temporary directory that is renamed into place whole,
    and `latest` moves last, so an interrupted publish never replaces the last good model.
    """
    payload = sio.dumps(model)  # the slow part, outside the lock
    refused, needed = untrusted_types(payload, trusted_types)
    if refused:
        return Untrusted(refused)
    models = Path(output_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(Path(output_dir) / LOCK_FILE, timeout=LOCK_TIMEOUT_SECONDS):
        found = latest_version(output_dir)
        if not isinstance(expected, _Unchecked) and found != expected:
            return LatestMoved(expected=expected, found=found)
        final = models / _free_version(models, version)
        report = _write_version(final, payload, report, needed)
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


def _write_version(final: Path, payload: bytes, report: Report, trusted: list[str]) -> Report:
    """Write the model and its report under a staging directory renamed to `final` whole;
    return the report with its `published` section, which lists the `trusted` types a
    loader needs beyond the built-in ones."""
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())
        model_path = staging / MODEL_FILE
        atomic_write_bytes(model_path, payload)
        published = Published(
            version=final.name,
            model_path=str(final / MODEL_FILE),
            report_path=str(final / REPORT_FILE),
            sha256=hashlib.sha256(payload).hexdigest(),
            trusted_types=trusted,
        )
        report = report.model_copy(update={"published": published})
        write_report(report, staging / REPORT_FILE)
        os.replace(staging, final)
        fsync_directory(final.parent)
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


def load_model(version_dir: str | Path, trusted_types: Iterable[str] = ()) -> Any:
    """Load a published model after checking its hash and that it holds only trusted types:
    the built-in models' exact types and `trusted_types` (a custom estimator's, as
    publish.trusted_types lists them; the report's published.trusted_types names those the
    model needs).

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
    refused, _ = untrusted_types(payload, trusted_types)
    if refused:
        raise ModelIntegrityError(f"{model_path}: {refusal(refused)}")
    return sio.loads(payload, trusted=sio.get_untrusted_types(data=payload))


# Publishing runs only after every gate passed.
publish_task = task(name="publish-model", cache_policy=NO_CACHE, persist_result=False)(publish)
publish_if_latest_task = task(name="publish-model", cache_policy=NO_CACHE, persist_result=False)(
    publish_if_latest
)
