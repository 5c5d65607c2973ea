"""Atomic file writes: write to a temp file in the same directory, fsync, then rename.

A reader (or a rerun after kill -9) sees either the old file or the complete new one, never a partial file.
Temp files start with ``.tmp-`` so listings and resumption can ignore them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

TMP_PREFIX = ".tmp-"


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def save_image(path: Path, image, format: str = "PNG") -> None:
    """Save a PIL image atomically."""
    _atomic_write(path, lambda handle: image.save(handle, format=format))


def remove_stale_temps(directory: Path) -> int:
    """Delete temp files a killed writer left behind; returns how many were removed."""
    removed = 0
    if Path(directory).is_dir():
        for stale in Path(directory).glob(TMP_PREFIX + "*"):
            stale.unlink(missing_ok=True)
            removed += 1
    return removed
