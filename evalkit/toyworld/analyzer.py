"""Read a toy-world image back: which objects it shows, and whether that matches a prompt's spec.

Pipeline, robust to the noise of generated samples:
  1. snap every pixel to a palette colour, or to "nothing" when it is mostly background or far from every
     colour (noise, off-palette blends), see ``snap``;
  2. per colour, 8-connected components with holes filled; components under MIN_AREA of the image (specks) or over
     MAX_AREA (a coloured background) drop out;
  3. per component: colour, centroid, size (see SIZE_THRESHOLD) and shape (the shape template, stretched over
     the component's bounding box, with the best intersection-over-union).
Works at any resolution: every threshold is relative to the image side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from evalkit.errors import EvalkitError
from evalkit.toyworld.palette import BACKGROUND, COLOUR_NAMES, COLOURS, SHAPES, SIZES
from evalkit.toyworld.render import shape_mask

_PALETTE = np.array([COLOURS[name] for name in COLOUR_NAMES] + [BACKGROUND], dtype=np.float32)
# Half the closest distance between two palette entries: how far a pixel may lie from a colour's blend line.
SNAP_DISTANCE = 0.5 * float(
    min(np.linalg.norm(a - b) for i, a in enumerate(_PALETTE) for b in _PALETTE[i + 1:])
)
_BACKGROUND = np.array(BACKGROUND, dtype=np.float32)
_DIRECTIONS = _PALETTE[:-1] - _BACKGROUND  # (C, 3): from the background to each object colour
_DIRECTION_NORMS2 = (_DIRECTIONS * _DIRECTIONS).sum(1)[None, :]
MIN_AREA = 0.004  # fraction of the image; a small triangle covers about 0.02
MAX_AREA = 0.2  # a large square covers 0.068; anything far bigger is a coloured background, not an object
# Sizes are told apart by a component's extent: the larger of its bounding-box side and sqrt(area / shape fill).
# Blur nibbles tips off a box (triangles) but changes area less; pixel quantisation thins a small cross's arms
# (less area) but keeps its box.
SIZE_THRESHOLD = (SIZES["small"] * SIZES["large"]) ** 0.5


def _shape_fill(shape: str, samples: int = 400) -> float:
    """Fraction of its bounding box a shape covers."""
    grid = (np.arange(samples) + 0.5) / samples * 2 - 1
    return float(shape_mask(shape, grid[None, :], grid[:, None]).mean())


SHAPE_FILL = {shape: _shape_fill(shape) for shape in SHAPES}
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class DetectedObject:
    colour: str
    shape: str
    size: str
    centroid: tuple[float, float]  # (x, y) as fractions of the image width/height; y grows downwards
    area: float  # fraction of the image
    shape_iou: float  # how well the best shape template fits (1.0 = exactly)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["centroid"] = list(self.centroid)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectedObject":
        return cls(**{**data, "centroid": tuple(data["centroid"])})


def snap(image: Image.Image | np.ndarray) -> np.ndarray:
    """(H, W) int array: palette colour index + 1 per pixel, 0 for background or unreadable.

    Each pixel is explained as a blend ``background + t * (colour - background)`` of the background and one
    colour: it takes the colour whose blend line passes nearest, if the blend is at least half colour (t >= 0.5)
    and the line passes within SNAP_DISTANCE. Blurred or anti-aliased edges are thus split at their midpoint (so
    areas and sizes survive blur) and never read as a third colour (grey, half black, is not purple).
    """
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise EvalkitError(f"toy-world analyzer needs an RGB image, got an array of shape {pixels.shape}")
    offsets = pixels.reshape(-1, 3) - _BACKGROUND  # (N, 3)
    # blend fraction along each colour's line; beyond 1 allows darker/more saturated shades of a colour
    t = np.clip(offsets @ _DIRECTIONS.T / _DIRECTION_NORMS2, 0.0, 1.5)  # (N, C)
    residual2 = (offsets * offsets).sum(1, keepdims=True) - 2 * t * (offsets @ _DIRECTIONS.T) + t * t * _DIRECTION_NORMS2
    residual2 = np.where(t >= 0.5, residual2, np.inf)
    nearest = residual2.argmin(axis=1)
    readable = residual2[np.arange(len(offsets)), nearest] <= SNAP_DISTANCE**2
    return np.where(readable, nearest + 1, 0).reshape(pixels.shape[:2])


def classify_shape(mask: np.ndarray) -> tuple[str, float]:
    """The shape whose template, stretched over the mask's bounding box, overlaps the mask best (and its IoU)."""
    rows, cols = np.nonzero(mask)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = mask[y0:y1, x0:x1]
    height, width = crop.shape
    u = (np.arange(width) + 0.5 - width / 2) / (width / 2)
    v = (np.arange(height) + 0.5 - height / 2) / (height / 2)
    best, best_iou = SHAPES[0], -1.0
    for shape in SHAPES:
        template = shape_mask(shape, u[None, :], v[:, None])
        iou = float((template & crop).sum()) / float((template | crop).sum())
        if iou > best_iou:
            best, best_iou = shape, iou
    return best, best_iou


def analyze(image: Image.Image | np.ndarray) -> list[DetectedObject]:
    """The objects in a toy-world image, ordered by row of the 3x3 layout, then left to right."""
    labels = snap(image)
    height, width = labels.shape
    side = float(max(height, width))
    min_pixels, max_pixels = MIN_AREA * height * width, MAX_AREA * height * width
    found: list[DetectedObject] = []
    for index, colour in enumerate(COLOUR_NAMES, start=1):
        colour_mask = labels == index
        if not colour_mask.any():
            continue
        components, _ = ndimage.label(colour_mask, structure=_EIGHT_CONNECTED)
        for component_id, (slice_y, slice_x) in enumerate(ndimage.find_objects(components), start=1):
            mask = ndimage.binary_fill_holes(components[slice_y, slice_x] == component_id)
            area = int(mask.sum())
            if area < min_pixels or area > max_pixels:
                continue
            rows, cols = np.nonzero(mask)
            shape, iou = classify_shape(mask)
            extent = max((area / SHAPE_FILL[shape]) ** 0.5, max(mask.shape)) / side
            centroid = ((cols.mean() + 0.5 + slice_x.start) / width, (rows.mean() + 0.5 + slice_y.start) / height)
            found.append(
                DetectedObject(
                    colour=colour,
                    shape=shape,
                    size="large" if extent >= SIZE_THRESHOLD else "small",
                    centroid=(round(float(centroid[0]), 4), round(float(centroid[1]), 4)),
                    area=round(area / (height * width), 5),
                    shape_iou=round(iou, 4),
                )
            )
    found.sort(key=lambda d: (min(int(d.centroid[1] * 3), 2), d.centroid[0]))
    return found


def _relation_holds(rel: str, a: DetectedObject, b: DetectedObject) -> bool:
    """Coarse relations: the offset from a to b points mostly along the named axis, the right way."""
    dx, dy = b.centroid[0] - a.centroid[0], b.centroid[1] - a.centroid[1]
    if rel == "left_of":
        return dx > 0 and abs(dx) > abs(dy)
    if rel == "right_of":
        return dx < 0 and abs(dx) > abs(dy)
    if rel == "above":
        return dy > 0 and abs(dy) > abs(dx)
    if rel == "below":
        return dy < 0 and abs(dy) > abs(dx)
    raise EvalkitError(f"unknown toy-world relation {rel!r} in spec")


def _in_region(region: str, d: DetectedObject) -> bool:
    x, y = d.centroid
    bounds = {"left": x < 1 / 3, "right": x > 2 / 3, "top": y < 1 / 3, "bottom": y > 2 / 3}
    if region not in bounds:
        raise EvalkitError(f"unknown toy-world region {region!r} in spec")
    return bounds[region]


def score_objects(found: list[DetectedObject], spec: dict[str, Any]) -> dict[str, bool | int | None]:
    """Answer the spec's questions about detected objects; None where the prompt does not ask that question.

    colour / shape: every named colour / shape appears (on any object). binding: every group's colour and shape
    appear on one object. size: that object also has the named size. count: each group's colour appears exactly
    ``count`` times and nothing else appears. position: objects of the named colours stand in the named relation
    or region. all: every question asked holds, with exact (colour, shape[, size]) counts where counts are asked.
    """
    try:
        groups = spec["groups"]
        exact = bool(spec.get("exact_count"))
        relation, region = spec.get("relation"), spec.get("region")
    except (KeyError, TypeError) as error:
        raise EvalkitError(f"malformed toy-world spec (missing {error})") from None

    def full_matches(g: dict[str, Any]) -> int:
        return sum(
            d.colour == g["colour"] and d.shape == g["shape"] and (g.get("size") is None or d.size == g["size"])
            for d in found
        )

    result: dict[str, bool | int | None] = {
        "colour": all(any(d.colour == g["colour"] for d in found) for g in groups),
        "shape": all(any(d.shape == g["shape"] for d in found) for g in groups),
        "binding": all(any(d.colour == g["colour"] and d.shape == g["shape"] for d in found) for g in groups),
        "size": None,
        "count": None,
        "position": None,
    }
    if any(g.get("size") for g in groups):
        result["size"] = all(full_matches(g) > 0 for g in groups if g.get("size"))
    if exact:
        total = sum(int(g["count"]) for g in groups)
        result["count"] = len(found) == total and all(
            sum(d.colour == g["colour"] for d in found) == int(g["count"]) for g in groups
        )
    if relation:
        subjects = [d for d in found if d.colour == groups[relation["a"]]["colour"]]
        objects = [d for d in found if d.colour == groups[relation["b"]]["colour"]]
        result["position"] = any(_relation_holds(relation["rel"], a, b) for a in subjects for b in objects)
    elif region:
        result["position"] = any(_in_region(region["region"], d) for d in found if d.colour == groups[region["a"]]["colour"])
    asked = [value for value in result.values() if value is not None]
    strict = all((full_matches(g) == int(g["count"])) if exact else full_matches(g) > 0 for g in groups)
    result["all"] = all(asked) and strict
    result["n_objects"] = len(found)
    return result


def score(image: Image.Image | np.ndarray, spec: dict[str, Any]) -> dict[str, bool | int | None]:
    """Analyze an image and answer its prompt's spec (see ``score_objects``)."""
    return score_objects(analyze(image), spec)
