"""The two sides a metric compares: a run directory, a folder of images, or a saved statistics file (.npz).

A side knows its images (and, for a run, its index rows) and an identity for comparability keys: an id and a
content hash (sha256 over the images' content hashes in order, or of the statistics file), so two numbers are
only ever compared when they were measured against the same reference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.hashing import sha256_file
from evalkit import images as image_io
from evalkit.metrics.stats import GaussianStats
from evalkit.runs.store import ImageRecord, Run, is_run_dir, open_run


@dataclass
class ImageSide:
    label: str
    kind: str  # "run", "folder" or "stats"
    paths: list[Path] | None = None
    records: list[ImageRecord] | None = None  # a run's completed index rows, in the order of ``paths``
    run: Run | None = None
    stats_file: Path | None = None

    @property
    def n(self) -> int | None:
        if self.paths is not None:
            return len(self.paths)
        return self.saved_stats.n

    @cached_property
    def saved_stats(self) -> GaussianStats:
        if self.stats_file is None:
            raise EvalkitError(f"{self.label} has images, not a statistics file")
        return GaussianStats.load(self.stats_file)

    @cached_property
    def content_hash(self) -> str:
        if self.stats_file is not None:
            return "sha256:" + sha256_file(self.stats_file)
        digest = hashlib.sha256()
        for path in self.paths:
            digest.update(image_io.content_hash(path).encode())
        return "sha256:" + digest.hexdigest()

    def identity(self) -> dict[str, Any]:
        """What a comparability key records about this side."""
        ident = self.run.run_id if self.run is not None else self.label
        return {"id": ident, "kind": self.kind, "hash": self.content_hash, "n": self.n}


def open_side(path: str | Path, what: str = "image set") -> ImageSide:
    """A run directory, an image folder or a .npz statistics file; anything else is a one-line error."""
    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise EvalkitError(f"statistics file {path} does not exist")
        return ImageSide(str(path), "stats", stats_file=path)
    if not path.exists():
        raise EvalkitError(f"{what} {path} does not exist")
    if is_run_dir(path):
        run = open_run(path)
        records = run.completed_records()
        if not records:
            raise EvalkitError(f"run {path} has no generated images yet")
        return ImageSide(str(path), "run", [run.image_path(r) for r in records], records, run)
    if path.is_dir():
        return ImageSide(str(path), "folder", image_io.list_images(path))
    raise EvalkitError(f"{path} is not a run directory, an image folder or a .npz statistics file")
