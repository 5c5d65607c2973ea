"""Reference statistics of real images (the COCO protocol).

As in the Imagen paper's COCO evaluation, real images (e.g. COCO val2014) are centre-cropped to a square and
resized to 256x256 (PIL bicubic) before feature extraction, the size generated images are scored at, so both sets
then go through the same 256 -> 299 resize mode. The result is saved in pytorch-fid's ``.npz`` format (``mu``,
``sigma``) plus ``n`` and a ``meta`` JSON (the extractor's description: name, weights hash, preprocessing), which
other tools ignore and evalkit checks before comparing.
"""

from __future__ import annotations

from pathlib import Path

from evalkit import images as image_io
from evalkit.metrics.stats import FeatureStats, GaussianStats


def write_reference_stats(folder: str | Path, out: str | Path, config, size: int | None = 256,
                          extractor: str = "inception") -> GaussianStats:
    from evalkit.metrics.score import ScoreContext
    from evalkit.metrics.sides import ImageSide

    files = image_io.list_images(folder)
    side = ImageSide(str(folder), "folder", files)
    ctx = ScoreContext(side, None, config)
    network = ctx.extractor(extractor, {"crop_size": str(size)} if size else {})
    stats = FeatureStats.of(ctx.features(network)).compute()
    stats.meta = {**network.description(), "source": str(folder)}
    from evalkit import dist

    if dist.active().is_main:  # under torchrun every rank holds the same statistics
        stats.save(out)
    return stats
