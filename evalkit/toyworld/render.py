"""Deterministic, alias-free rendering of toy scenes with numpy.

A pixel belongs to an object when its centre lies inside the object's shape, so every pixel is exactly the
background or one palette colour: the ground truth the analyzer must read back perfectly.
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
        half = SIZES[obj.size] * size / 2.0
        cx, cy = obj.position[0] * size, obj.position[1] * size
        x0, x1 = max(int(np.floor(cx - half)), 0), min(int(np.ceil(cx + half)) + 1, size)
        y0, y1 = max(int(np.floor(cy - half)), 0), min(int(np.ceil(cy + half)) + 1, size)
        u = (np.arange(x0, x1) + 0.5 - cx) / half
        v = (np.arange(y0, y1) + 0.5 - cy) / half
        mask = shape_mask(obj.shape, u[None, :], v[:, None])
        image[y0:y1, x0:x1][mask] = COLOURS[obj.colour]
    return image


def render(scene: Scene, size: int) -> Image.Image:
    """The scene as an RGB PIL image of ``size`` x ``size`` pixels."""
    return Image.fromarray(render_array(scene, size), mode="RGB")
