"""Atomic file writes: a crash, Ctrl-C or a full disk never leaves a half-written output behind.

Every output goes to a temporary file in the same directory, is flushed to disk,
given the mode a plain ``open()`` would give it (the umask is respected: 0644
under umask 022), then renamed over the target (atomic on POSIX within one
filesystem), and the directory is synced so the rename itself survives a crash.
Any ``OSError`` on the way (no space, permission denied, not a directory,
read-only filesystem) becomes a :class:`CommitteeError` naming the path and the
cause, after the temporary file is removed. Ctrl-C or SIGTERM during a write is
held back until the write has finished or been cleaned up, so an interrupt can
land neither between creating the temporary file and guarding it nor inside the
clean-up: the file is either complete under its name or absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from committee.base.errors import CommitteeError
from committee.base.limits import current_limits


def os_error(path: str | os.PathLike, exc: OSError, doing: str = "cannot write") -> CommitteeError:
    """One line for an OSError: the path the user asked for (not our temporary file) and the cause,
    e.g. 'run/members/a/weights.safetensors: cannot write (No space left on device)'."""
    return CommitteeError(f"{path}: {doing} ({exc.strerror or exc})")


def first_line(exc: BaseException) -> str:
    """An exception's message in one line (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def ensure_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p`` with one-line errors (e.g. a regular file where a directory should be)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CommitteeError(f"{path}: exists and is not a directory") from None
    except OSError as exc:
        raise os_error(path, exc, "cannot create directory") from None
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not open directories; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


_deferring = False


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then deliver them to the handler that was set.

    Python runs signal handlers in the main thread only, so only there can (and need) they be
    swapped; elsewhere, and inside an outer deferral, the block runs as it is.
    """
    global _deferring
    if _deferring or threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in _DEFERRED_SIGNALS}
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in caught[:1]:  # one interrupt is enough to stop
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temporary files an earlier writer of ``path`` left when it was killed (SIGKILL gives it
    no chance to clean up); returns how many."""
    path = Path(path)
    stale = [p for p in path.parent.glob(f".{path.name}.*.tmp") if p.is_file() and not p.is_symlink()]
    for p in stale:
        with contextlib.suppress(OSError):
            p.unlink()
    return len(stale)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed to ``path``, on any error removed."""
    path = Path(path)
    ensure_dir(path.parent)
    with _signals_deferred():
        yield from _atomic_path(path)


def _atomic_path(path: Path) -> Iterator[Path]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise os_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 whatever the umask
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise os_error(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN or infinity replaced by None: JSON has no such numbers, and a bare
    ``NaN`` in a document makes it unreadable to every strict parser."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def dumps(obj: Any) -> str:
    """Strict JSON text (NaN and infinities as null), indented: what every file and ``--json`` prints."""
    return json.dumps(json_safe(obj), indent=2, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, dumps(obj) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def regular_file(path: str | os.PathLike) -> Path:
    """``path`` if it is a regular file (after symlinks); else one line, before anything is opened.

    A FIFO would block ``open()`` for ever and ``/dev/zero`` never ends, so neither is ever read.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CommitteeError(f"{path}: not found") from None
    except OSError as exc:
        raise os_error(path, exc, "cannot read") from None
    if stat.S_ISDIR(mode):
        raise CommitteeError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise CommitteeError(f"{path}: not a regular file (a FIFO, device or socket); refusing to read it")
    return path


def run_file(path: str | os.PathLike, root: str | os.PathLike, folder: bool = False) -> Path:
    """``path`` if neither it nor any folder between ``root`` and it is a symbolic link, and it is a
    regular file (``folder``: a real folder), or does not exist yet; else one line, nothing opened.

    A run's files must be its own: a link to ``/etc/passwd`` is never hashed, read or quoted, a
    ``figures/`` linked to another folder is never written into, and a FIFO never blocks a read.
    """
    path, root = Path(path), Path(root)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise CommitteeError(f"{path}: not inside the run directory {root}") from None
    here = root
    for i, part in enumerate(parts):
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            return path
        except OSError as exc:
            raise os_error(here, exc, "cannot read") from None
        if stat.S_ISLNK(mode):
            raise CommitteeError(f"{here}: a symbolic link; a run's files must be regular files inside it")
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(mode):
            raise CommitteeError(f"{here}: not a folder")
        if last and folder and not stat.S_ISDIR(mode):
            raise CommitteeError(f"{here}: not a folder")
        if last and not folder and not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
            raise CommitteeError(f"{here}: {kind}, not a regular file; refusing to read it")
    return path


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON file; a missing, unreadable or malformed one is a one-line error."""
    regular_file(path)
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise os_error(path, exc, "cannot read") from None
    except (ValueError, RecursionError) as exc:
        raise CommitteeError(f"{path}: unreadable {what} ({first_line(exc)})") from None


def sha256_file(path: str | os.PathLike) -> str:
    import hashlib

    regular_file(path)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise os_error(path, exc, "cannot read") from None
    return h.hexdigest()


def _npy_header(fh, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, declared bytes) from an open ``.npy`` stream, reading nothing past the header."""
    try:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh, max_header_size=10_000)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise CommitteeError(f"{name}: not a readable .npy array ({first_line(exc)})") from None
    if dtype.hasobject:
        raise CommitteeError(f"{name}: holds Python objects (a pickle); refusing to load it")
    declared = math.prod(shape) * dtype.itemsize
    cap = current_limits().max_array_bytes
    if declared > cap:
        raise CommitteeError(
            f"{name}: its header declares shape {shape} of {dtype} ({declared:,} bytes), over the cap of "
            f"{cap:,} bytes (--max-array-bytes)"
        )
    return shape, dtype, declared


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Load an array saved by :func:`write_npy`; pickled object arrays, FIFOs and headers that declare more
    than the file holds (or more than ``--max-array-bytes``) are refused before any allocation."""
    path = regular_file(path)
    try:
        with open(path, "rb") as fh:
            _, _, declared = _npy_header(fh, str(path))
            if declared > os.fstat(fh.fileno()).st_size - fh.tell():
                raise CommitteeError(f"{path}: truncated .npy array (its header declares {declared:,} bytes)")
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except OSError as exc:
        raise os_error(path, exc, "cannot read") from None
    except (ValueError, EOFError) as exc:
        raise CommitteeError(f"{path}: not a readable .npy array ({str(exc).splitlines()[0]})") from None


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a ``.npz``; each member's header is checked against ``--max-array-bytes`` before it
    is expanded (a 497 KB file can expand to 500 MB), and a truncated or bad-CRC archive is one line."""
    path = regular_file(path)
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                with zf.open(info) as fh:
                    total += _npy_header(fh, f"{path}:{info.filename}")[2]
            if total > current_limits().max_array_bytes:
                raise CommitteeError(
                    f"{path}: its arrays declare {total:,} bytes, over the cap of {current_limits().max_array_bytes:,} "
                    f"bytes (--max-array-bytes)"
                )
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except CommitteeError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, ValueError, EOFError, KeyError) as exc:
        raise CommitteeError(f"{path}: not a readable .npz ({first_line(exc)})") from None
