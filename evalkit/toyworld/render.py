"""Deterministic, alias-free rendering of toy scenes with numpy.

Each object gets a whole-pixel bounding box; a pixel belongs to the object when its centre lies inside the shape,
so every pixel is exactly the background or one palette colour: the ground truth the analyzer must read back.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.toyworld.palette import BACKGROUND, COLOURS, SIZES
from evalkit.toyworld.scenes import Scene

CROSS_ARM = 0.36  # half-width of a cross's arms, relative to its half-extent (thick enough to survive 32x32)


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test for a shape in normalised coordinates: u, v in [-1, 1] span its bounding box, v grows down."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    if shape == "triangle":  # apex at the top, base at the bottom
        return (v >= -1.0) & (v <= 1.0) & (np.abs(u) <= (v + 1.0) / 2.0)
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= CROSS_ARM) & (av <= 1.0)) | ((av <= CROSS_ARM) & (au <= 1.0))
    raise EvalkitError(f"unknown toy-world shape {shape!r}")


def render_array(scene: Scene, size: int) -> np.ndarray:
    """The scene as a (size, size, 3) uint8 array."""
    if size < 8:
        raise EvalkitError(f"toy-world images must be at least 8 pixels wide, got {size}")
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    for obj in scene.objects:
        # Whole-pixel extent and box: the same shape looks the same wherever it is (no sub-pixel asymmetry).
        extent = max(int(round(SIZES[obj.size] * size)), 3)
        x0 = int(round(obj.position[0] * size - extent / 2))
        y0 = int(round(obj.position[1] * size - extent / 2))
        half = extent / 2.0
        u = (np.arange(extent) + 0.5 - half) / half
        v = (np.arange(extent) + 0.5 - half) / half
        mask = shape_mask(obj.shape, u[None, :], v[:, None])
        # clip the box to the image (objects near an edge never leave it in practice, but be safe)
        cy0, cx0 = max(y0, 0), max(x0, 0)
        cy1, cx1 = min(y0 + extent, size), min(x0 + extent, size)
        if cy1 > cy0 and cx1 > cx0:
            window = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            image[cy0:cy1, cx0:cx1][window] = COLOURS[obj.colour]
    return image


def render(scene: Scene, size: int) -> Image.Image:
    """The scene as an RGB PIL image of ``size`` x ``size`` pixels."""
    return Image.fromarray(render_array(scene, size), mode="RGB")
