"""Atomic file writes: write to a temp file in the same directory, fsync, then rename.

A reader (or a rerun after kill -9) sees either the old file or the complete new one, never a partial file.
Temp files are named ``.tmp-<pid>-<random><suffix>`` (``<pid>``: the writing process) so listings and resumption
can ignore them, and ``remove_stale_temps`` deletes only those whose writer is gone, never one another live process
is still writing. A write that fails (a full disk, a read-only folder) removes its temp file and raises
``WriteError``: an ``OSError`` that is also an ``EvalkitError``, i.e. one line naming the file and exit 2.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

from evalkit.errors import EvalkitError

TMP_PREFIX = ".tmp-"
_PID_TEMP = re.compile(re.escape(TMP_PREFIX) + r"(\d+)-")
_FULL = (errno.ENOSPC, errno.EDQUOT)


class WriteError(OSError, EvalkitError):
    """A file could not be written: caught as OSError by code that may go on without it (a cache), shown by the
    CLI as one line naming the file."""

    def __str__(self) -> str:
        if self.errno in _FULL:
            return (f"cannot write {self.filename}: no space left on device; free some space and rerun the same "
                    "command (finished files are kept)")
        return f"cannot write {self.filename}: {(self.strerror or 'write failed').lower()}"


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    except OSError as error:
        raise WriteError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise WriteError(error.errno, error.strerror, str(path)) from None
        raise


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: toggling the umask later would race with threads creating files.
_UMASK = _read_umask()


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda handle: handle.write(data))


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def save_image(path: Path, image, format: str = "PNG") -> str:
    """Save a PIL image atomically; returns the sha256 (hex) of the bytes written."""
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    data = buffer.getvalue()
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def is_temp(name: str) -> bool:
    """Whether a file name is one of this module's temp files (complete or not, it is never a result)."""
    return name.startswith(TMP_PREFIX)


def _writer_alive(name: str) -> bool:
    """Whether the process that named a temp file still runs (a temp without a pid is from an older evalkit)."""
    match = _PID_TEMP.match(name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's live process, or not a pid we can ask about: leave it
    return True


def remove_stale_temps(directory: Path) -> int:
    """Delete temp files that killed writers left in ``directory``; returns how many were removed. Temps of live
    processes are kept: deleting one would fail that process's rename."""
    removed = 0
    if Path(directory).is_dir():
        for stale in Path(directory).glob(TMP_PREFIX + "*"):
            if stale.is_file() and not _writer_alive(stale.name):
                stale.unlink(missing_ok=True)
                removed += 1
    return removed
