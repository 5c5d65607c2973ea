"""The toy world's vocabulary: a few colours far apart in RGB, a few shapes distinct at 32x32, two sizes.

Chosen for a small model and a noisy sample: no colour is a blend of two others or of one with the background
(so an anti-aliased or blurred edge never reads as a third colour), and the background is used by no object.
"""

from __future__ import annotations

# name -> sRGB. Ordered: the index is the class id used by the renderer and analyzer.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20),
    "green": (20, 160, 40),
    "blue": (30, 50, 230),
    "yellow": (245, 215, 0),
    "purple": (150, 40, 190),
    "cyan": (0, 200, 210),
    "black": (20, 20, 20),
}

BACKGROUND: tuple[int, int, int] = (255, 255, 255)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

# Size name -> object extent (bounding-box side) as a fraction of the image side. The 3x3 layout grid has cells of
# 1/3; large objects in neighbouring cells keep a gap of >= 1.4 px at 32x32 (jitter included), so they never touch.
SIZES: dict[str, float] = {"small": 0.2, "large": 0.26}

GRID = 3  # objects are placed in the cells of a GRID x GRID layout

# Colour x shape combinations never drawn in the training split: the held-out benchmark asks for them, so it
# measures whether a model composes a colour and a shape it only saw apart. One per shape, four colours.
HELDOUT_COMBOS: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "cross"), ("blue", "circle"), ("yellow", "square")}
)

COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
