"""One process per run directory: an advisory lock on ``RUN/.lock``.

Two processes on one run directory would send every API call twice, and two with different
configs leave the exports, the store and the scored table inconsistent with one another. The
lock is advisory (``filelock``: ``flock`` on POSIX), so it is released by the OS when the holder
dies, even by ``kill -9``: no stale lock to clean up. The holder's pid sits in ``RUN/.lock.pid``
(a separate file: ``filelock`` truncates the lock file on every attempt to take it), so the
second process can say who holds it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import WarmbenchError

LOCK_NAME = ".lock"
PID_NAME = ".lock.pid"


class RunDirLocked(WarmbenchError):
    """Another process holds this run directory."""


# Locks this process holds, by resolved run directory, with a nesting count: `run` takes the
# lock and calls stages that may take it again (``warmbench eval`` also locks when run alone).
_held: dict[Path, tuple[FileLock, int]] = {}
_guard = threading.Lock()


def holder(run_dir: str | Path) -> str:
    """Who holds the lock, as recorded by the holder ("pid 123 on host, since 10:02:03")."""
    try:
        return (Path(run_dir) / PID_NAME).read_text(encoding="utf-8").strip() or "unknown process"
    except OSError:
        return "unknown process"


@contextmanager
def run_lock(run_dir: str | Path, timeout: float = 0.0) -> Iterator[None]:
    """Hold the run directory's lock for the block; ``RunDirLocked`` at once (or after
    ``timeout`` seconds) when another process holds it."""
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise WarmbenchError(f"run directory {root} is a file, not a directory")
    root.mkdir(parents=True, exist_ok=True)
    key = root.resolve()
    with _guard:
        if key in _held:
            lock, n = _held[key]
            _held[key] = (lock, n + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            _release(key)
        return
    lock = FileLock(str(root / LOCK_NAME), timeout=timeout, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise RunDirLocked(f"run directory {root} is in use by {holder(root)}; wait for it to "
                           "finish or stop it (one process per run directory)") from None
    with _guard:
        _held[key] = (lock, 1)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    (root / PID_NAME).write_text(f"pid {os.getpid()} on {socket.gethostname()}, since {stamp}\n",
                                 encoding="utf-8")
    try:
        yield
    finally:
        _release(key)


def _release(key: Path) -> None:
    with _guard:
        lock, n = _held[key]
        if n > 1:
            _held[key] = (lock, n - 1)
            return
        del _held[key]
    try:
        (key / PID_NAME).unlink(missing_ok=True)
    finally:
        lock.release()
