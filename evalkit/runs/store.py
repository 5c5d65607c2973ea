"""Run directories on disk.

    <run>/manifest.json        spec, benchmark + adapter provenance, versions, status, timestamps
    <run>/index.csv            one row per planned image: prompt_index, sample, seed, file, prompt, category, extra,
                               sha256 (of the image file's bytes; empty until written, absent in older runs)
    <run>/images/PPPPP_SS.png  prompt row index (5 digits) and sample number (2 digits)
    <run>/generation.jsonl     one line per generated batch: images, seconds, device, keys, time (see below),
                               and image_details (one dict per image) when the adapter reports them
    <run>/metrics.json         written later by `evalkit score`

Every file is written atomically, so after a crash a file is either absent or complete; resuming means
generating exactly the images whose files are absent. The one exception is generation.jsonl, which is appended
to (a resumed run adds its batches): each line is written with one write and fsynced, so a crash can only tear
the last line; readers skip a torn last line and the next append cuts it off first.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import math
import os
import re

from evalkit import atomic
from evalkit.runs import validate
from evalkit.errors import EvalkitError
from evalkit.images import image_file_name

MANIFEST = "manifest.json"
INDEX = "index.csv"
IMAGES = "images"
INDEX_COLUMNS = ["prompt_index", "sample", "seed", "file", "prompt", "category", "extra", "sha256"]
BASE_INDEX_COLUMNS = INDEX_COLUMNS[:-1]  # what every run's index has (sha256 came later)
GENERATION_LOG = "generation.jsonl"


@dataclass(frozen=True)
class ImageRecord:
    prompt_index: int
    sample: int
    seed: int
    file: str  # relative to the run directory
    prompt: str
    category: str
    extra: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""  # hex digest of the image file's bytes, recorded when it is written ("" until then)


def image_file(prompt_index: int, sample: int) -> str:
    """Where a run keeps an image, relative to the run directory: images/PPPPP_SS.png."""
    return f"{IMAGES}/{image_file_name(prompt_index, sample)}"


def _index_csv(records: Iterable[ImageRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for r in records:
        writer.writerow(
            [r.prompt_index, r.sample, r.seed, r.file, r.prompt, r.category, json.dumps(r.extra, ensure_ascii=False),
             r.sha256]
        )
    return buffer.getvalue()


class Run:
    """An existing run directory. Use ``open_run`` to open one, ``Run.create`` to start one."""

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def benchmark(self) -> str:
        return self.manifest["benchmark"]["name"]

    @classmethod
    def create(cls, path: Path, manifest: dict[str, Any], records: list[ImageRecord]) -> "Run":
        path = Path(path)
        try:
            (path / IMAGES).mkdir(parents=True, exist_ok=True)
            atomic.write_text(path / INDEX, _index_csv(records))
            atomic.write_json(path / MANIFEST, manifest)
        except OSError as error:
            raise EvalkitError(f"cannot write run directory {path}: {error.strerror or error}") from None
        return cls(path, manifest)

    def records(self) -> list[ImageRecord]:
        """All planned images, in generation order (whether or not their file exists yet); index.csv is checked
        first (evalkit.runs.validate: columns, types, duplicates, file names inside the run, manifest agreement)."""
        path = self.path / INDEX
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as error:
            raise EvalkitError(f"{self.path}: cannot read {INDEX}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise EvalkitError(f"{path} is not UTF-8 text; delete the run and rerun it") from None
        try:
            return [ImageRecord(*row, sha256=_sha256_cell(cells.get("sha256")))
                    for row, cells in validate.parse_index(path, text, BASE_INDEX_COLUMNS, self.manifest, image_file)]
        except ValueError as error:
            raise EvalkitError(f"{path} is malformed ({error}); delete the run and rerun it") from None

    def completed_records(self) -> list[ImageRecord]:
        """The planned images whose file exists (complete, thanks to atomic writes); a symbolic link is an error."""
        return [r for r in self.records() if validate.check_image_file(self.path, r.file)]

    def image_path(self, record: ImageRecord) -> Path:
        return self.path / record.file

    def save_image(self, record: ImageRecord, image) -> str:
        """Write one image atomically; returns the sha256 of its bytes (for ``record_hashes``)."""
        return atomic.save_image(self.path / record.file, image)

    def record_hashes(self, hashes: dict[str, str]) -> None:
        """Record images' content hashes ({file: sha256}) in index.csv, rewritten atomically (only if it changes)."""
        records = self.records()
        updated = [replace(r, sha256=hashes.get(r.file, r.sha256)) for r in records]
        if updated != records:
            atomic.write_text(self.path / INDEX, _index_csv(updated))

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        atomic.write_json(self.path / MANIFEST, self.manifest)

    def append_generation_timing(self, images: int, seconds: float, device: str, keys: list[tuple[int, int]],
                                 at: str, image_details: list[dict[str, Any]] | None = None,
                                 rank: int | None = None) -> None:
        """Append one batch's timing to generation.jsonl, durably (flushed and fsynced before returning).
        ``rank``: the torchrun rank that made the batch (absent for single-process runs)."""
        entry = {"images": int(images), "seconds": float(seconds), "device": str(device),
                 "keys": [[int(p), int(s)] for p, s in keys], "at": at}
        if rank is not None:
            entry["rank"] = int(rank)
        if image_details is not None:  # absent from older runs and from adapters that report none
            entry["image_details"] = image_details
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        path = self.path / GENERATION_LOG
        try:
            _cut_torn_tail(path)
            with open(path, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise EvalkitError(f"cannot append to {path}: {error.strerror or error}") from None

    def generation_timings(self) -> list[dict[str, Any]]:
        """The batches recorded in generation.jsonl, oldest first ([] for a run made before it was kept).

        A torn last line (a crash mid-append) is skipped; any other line that is not a valid entry is an error.
        """
        path = self.path / GENERATION_LOG
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise EvalkitError(f"cannot read {path}: {error.strerror or error}") from None
        complete = data.split(b"\n")[:-1]  # what follows the last newline is empty, or a torn line: skipped
        timings = []
        for number, raw in enumerate(complete, start=1):
            entry = _timing_entry(raw)
            if entry is None:
                raise EvalkitError(f"{path}, line {number}: not a generation timing entry; delete the file to reset")
            timings.append(entry)
        return timings

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a result file (metrics.json, ...) atomically into the run directory, first removing temp files
        that a killed write left there."""
        target = self.path / name
        atomic.remove_stale_temps(self.path)
        atomic.write_json(target, obj)
        return target


def _sha256_cell(cell: str | None) -> str:
    """An index row's sha256: "" when not recorded (or the column is absent: a run made before it was kept)."""
    if not cell:
        return ""
    if not re.fullmatch(r"[0-9a-f]{64}", cell):
        raise ValueError(f"sha256 {cell[:80]!r} is not a hex sha256")
    return cell


def _timing_entry(raw: bytes) -> dict[str, Any] | None:
    """One generation.jsonl line as a dict, or None when it is not a complete, valid entry."""
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(entry, dict):
        return None
    images, seconds = entry.get("images"), entry.get("seconds")
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        return None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
        return None
    keys = entry.get("keys")
    if not isinstance(entry.get("device"), str) or not isinstance(keys, list) or len(keys) != images:
        return None
    if not all(isinstance(k, list) and len(k) == 2 and all(isinstance(v, int) for v in k) for k in keys):
        return None
    details = entry.get("image_details", [{}] * images)
    if not isinstance(details, list) or len(details) != images or not all(isinstance(d, dict) for d in details):
        return None
    return entry


def _cut_torn_tail(path: Path) -> None:
    """Drop a partial last line (no trailing newline) left by a crash, so the next line starts cleanly."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "r+b") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        handle.truncate(data.rfind(b"\n") + 1)
        handle.flush()
        os.fsync(handle.fileno())


def is_run_dir(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file() and (Path(path) / INDEX).is_file()


def open_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.exists():
        raise EvalkitError(f"run directory {path} does not exist")
    if not is_run_dir(path):
        raise EvalkitError(f"{path} is not an evalkit run (no {MANIFEST} and {INDEX})")
    manifest = validate.read_manifest(path)
    return Run(path, manifest)


def list_runs(root: str | Path) -> list[Run]:
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for child in sorted(root.iterdir()):
        if is_run_dir(child):
            try:
                runs.append(open_run(child))
            except EvalkitError:
                continue
    return runs
