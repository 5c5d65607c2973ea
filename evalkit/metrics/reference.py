"""Reference statistics of real images (the COCO protocol).

As in the Imagen paper's COCO evaluation, real images (e.g. COCO val2014) are centre-cropped to a square and
resized to 256x256 (PIL bicubic) before feature extraction, the size generated images are scored at, so both sets
then go through the same 256 -> 299 resize mode. The result is saved in pytorch-fid's ``.npz`` format (``mu``,
``sigma``) plus ``n`` and a ``meta`` JSON (resize mode, crop size, weights hash), which other tools ignore.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from evalkit.metrics import images as image_io
from evalkit.metrics.sources import stats_of
from evalkit.metrics.stats import GaussianStats


def write_reference_stats(folder: str | Path, out: str | Path, extractor, size: int | None = 256) -> GaussianStats:
    files = image_io.list_images(folder)
    prepared = dataclasses.replace(extractor, crop_size=size or None)
    stats = stats_of(prepared.features(files, desc="inception reference"), prepared)
    stats.meta["source"] = str(folder)
    stats.save(out)
    return stats
