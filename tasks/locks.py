"""An exclusive lock on a file: one holder at a time across threads, processes and machines.

`exclusive_lock(path)` takes an advisory `flock` on `path` (created if missing, never
deleted) and, inside one process, a thread lock for the same path. The kernel releases a
`flock` when its holder exits or dies, so a crashed run never leaves a stale lock behind. On
NFS, Linux turns `flock` into a POSIX byte-range lock that the server arbitrates, which
covers writers on other machines but is owned per process: the thread lock is what keeps two
threads of one process apart there. While held, the file names its holder (process id, host,
time) so that a wait that times out can say who holds it.
"""

import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

POLL_SECONDS = 0.05


class LockTimeout(TimeoutError):
    """Another holder kept the lock for longer than the wait allowed."""


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    key = os.path.realpath(path)
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


def _timed_out(path: Path, timeout: float) -> LockTimeout:
    try:
        holder = path.read_text().strip() or "unknown"
    except OSError:
        holder = "unknown"
    return LockTimeout(f"{path} stayed locked for {timeout:g} s (holder: {holder})")


def _note_holder(fd: int) -> None:
    since = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    note = f"pid {os.getpid()} on {socket.gethostname()} since {since}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, (note + "\n").encode(), 0)


@contextmanager
def exclusive_lock(path: str | Path, timeout: float = 300.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the `with` block.

    Raises:
        LockTimeout: the lock was not free within `timeout` seconds.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    local = _thread_lock(target)
    if not local.acquire(timeout=max(timeout, 0.0)):
        raise _timed_out(target, timeout)
    try:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _timed_out(target, timeout) from None
                    time.sleep(POLL_SECONDS)
            try:
                _note_holder(fd)
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        local.release()
