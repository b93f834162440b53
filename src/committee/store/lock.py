"""One writer per run directory: an advisory ``fcntl`` lock on ``RUN/.lock``.

``train``, ``run``, ``evaluate``, ``report``, ``ablate`` and ``shift`` hold it while they write;
a second writer on the same run gets one line saying who holds it, and nothing is lost on
either side. The lock dies with its process (the kernel drops it on exit, SIGKILL included),
so a crash never leaves a run locked. It is re-entrant within a process: ``run`` holds it and
calls ``train``, ``evaluate`` and ``report``, which take it again.
Readers (``predict``, ``export``, ``verify``) do not lock: every file is replaced atomically and
checked against the manifest, so they see a whole file or refuse it in one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from committee.base.errors import CommitteeError
from committee.base.fileio import ensure_dir, os_error

LOCK_NAME = ".lock"


_held: dict[Path, list] = {}  # resolved run path -> [fd, depth]


def _holder(fd: int) -> str:
    """Who holds the lock, from what the holder wrote into the file."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"`committee {info['command']}` (pid {info['pid']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another committee command"


@contextlib.contextmanager
def run_lock(run_path: str | os.PathLike, command: str) -> Iterator[None]:
    """Hold the run's lock for the block, or raise CommitteeError at once if another process holds it."""
    path = ensure_dir(run_path).resolve()
    if path in _held:
        _held[path][1] += 1
        try:
            yield
        finally:
            _held[path][1] -= 1
        return
    lock_file = path / LOCK_NAME
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise os_error(lock_file, exc, "cannot lock") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommitteeError(
                f"{run_path}: busy: {_holder(fd)} is writing to this run; wait for it to finish, then try again"
            ) from None
        os.ftruncate(fd, 0)
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode(), 0)
        _held[path] = [fd, 1]
        try:
            yield
        finally:
            del _held[path]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the flock
