"""Run a command while watching the files it writes, and SIGKILL it at a chosen write (or time): the killer of
``evalkit.experiments.crash_safety``.

The writes are seen through Linux inotify (called through ctypes: the standard library has no binding, and polling
a directory misses temp files that live for a millisecond). evalkit writes every file to ``.tmp-<pid>-*`` beside
it and renames it, so the creation of a temp file marks the start of a write; each is classified by where it
is (``images/`` -> image, the run directory -> index (.csv) or manifest/metrics (.json), the feature cache ->
cache) and a change to generation.jsonl is a timing append.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.atomic import is_temp

IN_MODIFY, IN_CREATE, IN_MOVED_TO, IN_ISDIR = 0x2, 0x100, 0x80, 0x40000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


class Inotify:
    """A minimal inotify reader: watch folders, read (folder, name, mask) events with a timeout."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.folders: dict[int, Path] = {}

    def watch(self, folder: Path) -> None:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_CREATE | IN_MODIFY | IN_MOVED_TO)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"cannot watch {folder}")
        self.folders[wd] = Path(folder)

    def read(self, timeout: float) -> list[tuple[Path, str, int]]:
        if not select.select([self.fd], [], [], max(timeout, 0.0))[0]:
            return []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        events, offset = [], 0
        while offset < len(data):
            wd, mask, _, size = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size: offset + _EVENT.size + size].rstrip(b"\0").decode(errors="replace")
            offset += _EVENT.size + size
            if wd in self.folders:
                events.append((self.folders[wd], name, mask))
        return events

    def close(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True)
class Folders:
    """Where a command writes: its run directory (known in advance, or found below ``out_root`` as it appears)
    and the feature cache. ``json_kind`` names what a .json temp in the run directory is."""

    run_dir: Path | None = None
    out_root: Path | None = None
    cache: Path | None = None
    json_kind: str = "manifest"


def classify(folders: Folders, folder: Path, name: str, mask: int) -> str | None:
    """The kind of write an event starts (image, index, manifest, metrics, cache, timing), or None."""
    if mask & IN_MODIFY:
        return "timing" if name == "generation.jsonl" else None
    if not (mask & IN_CREATE) or not is_temp(name):
        return None
    if folder.name == "images":
        return "image"
    if folders.cache is not None and folder == folders.cache:
        return "cache" if name.endswith(".npy") else None
    return {".csv": "index", ".json": folders.json_kind}.get(Path(name).suffix)


@dataclass(frozen=True)
class KillAt:
    """Kill at the ``ordinal``-th write of ``kind`` (1-based) plus ``delay`` seconds, or, with kind "anytime",
    ``delay`` seconds after the start."""

    kind: str
    ordinal: int = 0
    delay: float = 0.0

    def describe(self) -> str:
        if self.kind == "anytime":
            return f"at {self.delay:.3f} s"
        return f"{self.kind} write #{self.ordinal} + {self.delay * 1000:.1f} ms"


@dataclass
class Watched:
    returncode: int
    seconds: float
    killed: bool
    events: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, kind)
    stderr: str = ""


def _watch_existing(inotify: Inotify, folders: Folders) -> None:
    for folder in (folders.out_root, folders.run_dir, folders.run_dir and folders.run_dir / "images", folders.cache):
        if folder is not None and Path(folder).is_dir():
            inotify.watch(Path(folder))


def _follow_new_folder(inotify: Inotify, folders: Folders, folder: Path, name: str, mask: int) -> None:
    """A run directory appearing under the out root (or its images/ folder): watch it too. Its images/ may exist
    before the run directory is watched (they are made together), so it is looked for as well. Writes made
    before a watch is in place are not seen: a traced run into a new --out may miss its very first write."""
    if mask & IN_ISDIR and (folder == folders.out_root or name == "images"):
        inotify.watch(folder / name)
        if (folder / name / "images").is_dir():
            inotify.watch(folder / name / "images")


def run_watched(command: list[str], env: dict[str, str], folders: Folders, kill: KillAt | None = None,
                timeout: float = 600.0) -> Watched:
    """Run ``command``, record the writes it starts, and SIGKILL it as ``kill`` says (None: never)."""
    inotify = Inotify()
    errors = tempfile.TemporaryFile()  # not a pipe: a full pipe would stall the command while events are read
    try:
        _watch_existing(inotify, folders)
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        seen: dict[str, int] = {}
        events: list[tuple[float, str]] = []
        kill_time = kill.delay if kill is not None and kill.kind == "anytime" else None
        while process.poll() is None:
            now = time.monotonic() - started
            if kill_time is not None and now >= kill_time:
                process.kill()
                break
            if now > timeout:
                process.kill()
                raise TimeoutError(f"{' '.join(command)} ran past {timeout} s")
            wait = 0.05 if kill_time is None else min(0.05, kill_time - now)
            for folder, name, mask in inotify.read(wait):
                _follow_new_folder(inotify, folders, folder, name, mask)
                kind = classify(folders, folder, name, mask)
                if kind is None:
                    continue
                at = time.monotonic() - started
                events.append((at, kind))
                seen[kind] = seen.get(kind, 0) + 1
                if kill is not None and kind == kill.kind and seen[kind] == kill.ordinal and kill_time is None:
                    kill_time = at + kill.delay
        process.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
        return Watched(process.returncode, time.monotonic() - started, process.returncode == -signal.SIGKILL,
                       events, stderr)
    finally:
        inotify.close()
        errors.close()
