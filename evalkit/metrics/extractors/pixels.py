"""``pixels``: an image's own pixels, box-averaged to a small square, as the feature vector. No network, no weights.

    feature(image) = vec( box_S(image) / 255 )        S x S x 3 values in [0, 1], S = ``size`` (default 16)

where ``box_S`` is PIL's ``Image.reduce``-style area average (``Image.resize(..., Image.BOX)``): each output pixel
is the mean of the input pixels it covers, so for sizes divisible by S it is exactly the block mean. Nothing is
cropped, so the layout of the whole image (where each colour is) survives.

What it is for: distances between image sets whose differences are in colour and layout, such as toy-world
renders (flat shapes in a fixed palette on one background: `evalkit distance --metrics kid,fd --opt
fd.extractor=pixels --opt kid.extractor=pixels`), and places where no pretrained network can be loaded (the
project's CI gate). It is not a perceptual metric for photographs: Inception, CLIP and DINOv2 are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from evalkit import images as image_io
from evalkit.metrics.extractors.base import ExtractorOptions, ExtractorSpec, Setting

NAME = "pixels"
SIZES = ("8", "16", "32")
WEIGHTS = "none"  # what the comparability key records: there are no weights to differ


def box_features(image: Image.Image, size: int) -> np.ndarray:
    """One image's size*size*3 features (row-major, RGB innermost), float32 in [0, 1]."""
    rgb = image_io.to_rgb_image(image)
    small = np.asarray(rgb.resize((size, size), Image.BOX), dtype=np.float32)
    return small.reshape(-1) / 255.0


class PixelFeatures:
    name = NAME
    weights_sha256 = WEIGHTS

    def __init__(self, size: int):
        self.size = size
        self.dim = 3 * size * size

    def description(self) -> dict:
        return {"extractor": NAME, "network": "none (box-averaged pixels)", "weights_sha256": WEIGHTS,
                "preprocessing": {"resize": "box", "size": self.size, "scale": "x/255"}, "dim": self.dim}

    def compute(self, paths: Sequence[Path]) -> np.ndarray:
        from tqdm import tqdm

        out = np.empty((len(paths), self.dim), dtype=np.float32)
        for i, path in enumerate(tqdm(paths, desc="pixel features", unit="img", leave=False)):
            out[i] = box_features(image_io.open_rgb(path), self.size)  # an unreadable file: UnreadableImage
        return out


def _build(options: ExtractorOptions, settings: dict[str, str]) -> PixelFeatures:
    return PixelFeatures(int(settings["size"]))


SPEC = ExtractorSpec(
    name=NAME,
    summary="box-averaged pixels (S x S x 3, no network): layout and colour, e.g. toy-world renders",
    settings={"size": Setting("16", SIZES, "side of the averaged square")},
    build=_build,
    weights=lambda settings: [],
)
