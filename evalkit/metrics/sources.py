"""What FID/KID compare: a run directory, a folder of images, or a saved statistics file (.npz)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.errors import EvalkitError
from evalkit.metrics import images as image_io
from evalkit.metrics.stats import FeatureStats, GaussianStats
from evalkit.runs.store import is_run_dir, open_run


@dataclass
class ImageSet:
    """One side of a comparison: its features (None for a stats file) and Gaussian statistics."""

    label: str
    kind: str  # "run", "folder" or "stats"
    n: int | None
    stats: GaussianStats
    features: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


def image_paths(path: str | Path) -> tuple[str, list[Path]]:
    """("run" | "folder", image files) for a run directory or an image folder."""
    path = Path(path)
    if is_run_dir(path):
        run = open_run(path)
        files = [run.image_path(r) for r in run.completed_records()]
        if not files:
            raise EvalkitError(f"run {path} has no generated images yet")
        return "run", files
    if path.is_dir():
        return "folder", image_io.list_images(path)
    raise EvalkitError(f"{path} is not a run directory, an image folder or a .npz statistics file")


def load_image_set(path: str | Path, extractor) -> ImageSet:
    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise EvalkitError(f"statistics file {path} does not exist")
        stats = GaussianStats.load(path)
        return ImageSet(str(path), "stats", stats.n, stats, None, stats.meta)
    if not path.exists():
        raise EvalkitError(f"{path} does not exist")
    kind, files = image_paths(path)
    feats = extractor.features(files, desc=f"inception {path.name}")
    return ImageSet(str(path), kind, len(files), stats_of(feats, extractor), feats)


def stats_of(features: np.ndarray, extractor) -> GaussianStats:
    if len(features) < 2:
        raise EvalkitError(f"need at least 2 images for FID, got {len(features)}")
    stats = FeatureStats.of(features).compute()
    stats.meta = dict(extractor.description)
    return stats
