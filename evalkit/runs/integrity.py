"""Content hashes of a run's images: recorded in index.csv's ``sha256`` column as images are written, checked by
`evalkit runs verify RUN`.

An image is written first (atomically) and its hash recorded after, in a rewrite of index.csv, so a crash can
leave an image whose hash is not recorded yet — never a hash without its image. Resuming the run (and finishing
it) hashes such images from their files, which atomic writes guarantee are complete, so the index and the images
agree again. Verification compares every recorded hash with the file's bytes and lists what is missing, changed,
not hashed, or present without a row in the index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from evalkit import atomic
from evalkit.errors import EvalkitError
from evalkit.images import content_hash
from evalkit.runs.store import IMAGES, Run

# Rewriting index.csv costs time proportional to its rows (measured: 1.5-3 s for 30k rows on 2 busy CPU cores, a
# few ms for 100); it is redone after a batch only once this many times its last cost has passed, so it never takes
# more than ~1/20 of a run, and a small run's index is rewritten after every batch.
REWRITE_COST_RATIO = 20.0


class HashRecorder:
    """Collects the hashes of images as they are written and records them in index.csv after batches."""

    def __init__(self, run: Run):
        self.run = run
        self.pending: dict[str, str] = {}
        self._last_cost = 0.0
        self._last_at = time.perf_counter()

    def add(self, file: str, sha256: str) -> None:
        self.pending[file] = sha256

    def after_batch(self) -> None:
        if self.pending and time.perf_counter() - self._last_at >= REWRITE_COST_RATIO * self._last_cost:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        started = time.perf_counter()
        self.run.record_hashes(self.pending)
        self.pending = {}
        self._last_at = time.perf_counter()
        self._last_cost = self._last_at - started


def record_missing_hashes(run: Run) -> int:
    """Hash every existing image whose hash index.csv lacks (a crash came between the image and its record, or the
    run predates hashes) and record them; returns how many were recorded."""
    found = {r.file: content_hash(run.image_path(r)) for r in run.records()
             if not r.sha256 and run.image_path(r).is_file()}
    if found:
        run.record_hashes(found)
    return len(found)


@dataclass
class Verification:
    """What `evalkit runs verify` found; ``ok`` when every planned image is present with its recorded hash and
    nothing else is in images/ (or in the run directory as a leftover temp file)."""

    run: Path
    planned: int
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unhashed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.unhashed or self.extra)

    def lines(self) -> list[str]:
        found = [f"missing     {f}" for f in self.missing] + [f"changed     {f}" for f in self.changed]
        found += [f"not hashed  {f}" for f in self.unhashed] + [f"extra       {f}" for f in self.extra]
        summary = (f"{self.run}: {self.planned} planned images, {self.matched} match their hash, "
                   f"{len(self.missing)} missing, {len(self.changed)} changed, {len(self.unhashed)} not hashed, "
                   f"{len(self.extra)} extra")
        if self.unhashed:
            summary += " (rerun the run's command to record the missing hashes)"
        return found + [summary]


def _inside(run: Run, file: str) -> Path:
    path = run.path / file
    if not path.resolve().is_relative_to(run.path.resolve()):
        raise EvalkitError(f"{run.path / 'index.csv'}: entry {file!r} points outside the run directory")
    return path


def _extra_files(run: Run, planned: set[str]) -> list[str]:
    """Files in images/ that the index does not plan, and temp files anywhere in the run directory."""
    extra = []
    images = run.path / IMAGES
    if images.is_dir():
        for path in sorted(images.rglob("*")):
            name = path.relative_to(run.path).as_posix()
            if not path.is_dir() and name not in planned:
                extra.append(name)
    extra += sorted(p.name for p in run.path.iterdir() if atomic.is_temp(p.name))
    return extra


def verify_run(run: Run) -> Verification:
    """Check every image of ``run`` against the sha256 recorded in its index.csv (see ``Verification``).

    A run whose index records no hash at all (made before hashes were recorded) is an error: there is nothing to
    check against; ``record_missing_hashes`` records the files' current hashes."""
    records = run.records()
    if records and not any(r.sha256 for r in records):
        raise EvalkitError(f"{run.path / 'index.csv'} records no image hashes (the run was made before evalkit "
                           f"recorded them); `evalkit runs verify --record {run.path}` records the current files' "
                           "hashes, to verify against later")
    result = Verification(run=run.path, planned=len(records))
    for record in records:
        path = _inside(run, record.file)
        if not path.is_file():
            result.missing.append(record.file)
        elif not record.sha256:
            result.unhashed.append(record.file)
        elif content_hash(path) != record.sha256:
            result.changed.append(record.file)
        else:
            result.matched += 1
    result.extra = _extra_files(run, {r.file for r in records})
    return result
