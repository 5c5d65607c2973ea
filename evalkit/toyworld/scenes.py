"""Random toy scenes: 1-4 flat objects on a 3x3 layout grid, each scene built for one prompt category.

Categories (DrawBench-like, each checkable by the analyzer):
  Colors      one object; the caption names its colour and shape (sometimes its size).
  Counting    1-4 identical objects, or two groups of identical objects (total <= 4); the caption gives numbers.
  Positional  two objects in one row/column with a relation (left of, right of, above, below),
              or one object in an outer third of the image ("on the left", "at the top", ...).
  Binding     two objects differing in colour, shape and size; the caption binds each attribute to its object.

Splits: "train" never draws a colour x shape combination from ``palette.HELDOUT_COMBOS``; "heldout" puts one
in every scene (as the first object / first group), so held-out prompts test unseen compositions; "any" draws
every combination (for chance baselines).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.toyworld.palette import COLOUR_NAMES, GRID, HELDOUT_COMBOS, SHAPES, SIZES

CATEGORIES: tuple[str, ...] = ("Colors", "Counting", "Positional", "Binding")
# Counting and position are what small models learn slowest, so they get the larger share.
CATEGORY_WEIGHTS: tuple[float, ...] = (0.2, 0.3, 0.3, 0.2)
RELATIONS: tuple[str, ...] = ("left_of", "right_of", "above", "below")
REGIONS: tuple[str, ...] = ("left", "right", "top", "bottom")
SPLITS: tuple[str, ...] = ("train", "heldout", "any")

_TRAIN_COMBOS = tuple((c, s) for c in COLOUR_NAMES for s in SHAPES if (c, s) not in HELDOUT_COMBOS)
_HELDOUT_COMBOS = tuple(sorted(HELDOUT_COMBOS))
_ALL_COMBOS = tuple((c, s) for c in COLOUR_NAMES for s in SHAPES)


@dataclass(frozen=True)
class ObjectSpec:
    shape: str
    colour: str
    size: str
    cell: tuple[int, int]  # (row, column) in the GRID x GRID layout; row 0 is the top
    position: tuple[float, float]  # centre (x, y) as fractions of the image side, inside ``cell``

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cell"] = list(self.cell)
        data["position"] = list(self.position)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ObjectSpec":
        return cls(
            shape=data["shape"],
            colour=data["colour"],
            size=data["size"],
            cell=(int(data["cell"][0]), int(data["cell"][1])),
            position=(float(data["position"][0]), float(data["position"][1])),
        )


@dataclass(frozen=True)
class Scene:
    objects: tuple[ObjectSpec, ...]
    category: str
    relation: str | None = None  # Positional: relation of objects[0] to objects[1]
    region: str | None = None  # Positional with one object: the third of the image it lies in
    say_size: bool = False  # whether the caption names sizes (then the spec checks them)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": [o.to_dict() for o in self.objects],
            "category": self.category,
            "relation": self.relation,
            "region": self.region,
            "say_size": self.say_size,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scene":
        return cls(
            objects=tuple(ObjectSpec.from_dict(o) for o in data["objects"]),
            category=data["category"],
            relation=data.get("relation"),
            region=data.get("region"),
            say_size=bool(data.get("say_size", False)),
            extra=dict(data.get("extra") or {}),
        )


class _Draw:
    """The few random draws scenes need, from either a ``random.Random`` or a numpy ``Generator``."""

    def __init__(self, rng: Any):
        if isinstance(rng, random.Random):
            self._py = rng
        elif hasattr(rng, "integers"):  # numpy Generator: seed a Random from it, which is faster per draw
            self._py = random.Random(int(rng.integers(0, 2**63 - 1)))
        else:
            raise EvalkitError(f"sample_scene needs a random.Random or numpy Generator, not {type(rng).__name__}")

    def choice(self, seq):
        return seq[self._py.randrange(len(seq))]

    def weighted(self, seq, weights):
        return self._py.choices(seq, weights=weights, k=1)[0]

    def sample(self, seq, k: int):
        return self._py.sample(seq, k)

    def randint(self, low: int, high: int) -> int:  # inclusive
        return self._py.randint(low, high)

    def uniform(self, low: float, high: float) -> float:
        return self._py.uniform(low, high)

    def coin(self, p: float = 0.5) -> bool:
        return self._py.random() < p


ALL_CELLS: tuple[tuple[int, int], ...] = tuple((r, c) for r in range(GRID) for c in range(GRID))


def _place(draw: _Draw, shape: str, colour: str, size: str, cell: tuple[int, int]) -> ObjectSpec:
    """An object centred in its cell, jittered by at most 40% of the slack so neighbours never touch."""
    slack = (1.0 / GRID - SIZES[size]) / 2 * 0.4
    row, col = cell
    x = (col + 0.5) / GRID + draw.uniform(-slack, slack)
    y = (row + 0.5) / GRID + draw.uniform(-slack, slack)
    return ObjectSpec(shape=shape, colour=colour, size=size, cell=cell, position=(round(x, 4), round(y, 4)))


def _combo(draw: _Draw, split: str, first: bool, avoid: set[tuple[str, str]] | None = None) -> tuple[str, str]:
    """A (colour, shape); the first object of a held-out scene is a held-out combo, all train objects are not."""
    if split == "any":
        pool = _ALL_COMBOS
    else:
        pool = _HELDOUT_COMBOS if (split == "heldout" and first) else _TRAIN_COMBOS
    if avoid:
        pool = tuple(p for p in pool if p not in avoid) or pool
    return draw.choice(pool)


def _colors(draw: _Draw, split: str) -> Scene:
    colour, shape = _combo(draw, split, True)
    size = draw.choice(tuple(SIZES))
    obj = _place(draw, shape, colour, size, draw.choice(ALL_CELLS))
    return Scene(objects=(obj,), category="Colors", say_size=draw.coin(0.5))


def _counting(draw: _Draw, split: str) -> Scene:
    if draw.coin(0.7):
        counts = [draw.randint(1, 4)]
    else:
        first = draw.randint(1, 3)
        counts = [first, draw.randint(1, 4 - first)]
    cells = draw.sample(ALL_CELLS, sum(counts))
    objects: list[ObjectSpec] = []
    used: set[tuple[str, str]] = set()
    for group, n in enumerate(counts):
        colour, shape = _combo(draw, split, group == 0)
        # a second group must differ in colour so each group is countable on its own
        while used and colour in {c for c, _ in used}:
            colour, shape = _combo(draw, split, False)
        used.add((colour, shape))
        size = draw.choice(tuple(SIZES))
        for _ in range(n):
            objects.append(_place(draw, shape, colour, size, cells[len(objects)]))
    return Scene(objects=tuple(objects), category="Counting")


def _positional(draw: _Draw, split: str) -> Scene:
    if draw.coin(0.3):
        region = draw.choice(REGIONS)
        line = draw.randint(0, GRID - 1)
        edge = 0 if region in ("left", "top") else GRID - 1
        cell = (line, edge) if region in ("left", "right") else (edge, line)
        colour, shape = _combo(draw, split, True)
        obj = _place(draw, shape, colour, draw.choice(tuple(SIZES)), cell)
        return Scene(objects=(obj,), category="Positional", region=region)
    relation = draw.choice(RELATIONS)
    line = draw.randint(0, GRID - 1)
    lo, hi = sorted(draw.sample(range(GRID), 2))
    # objects[0] is the subject: it is at `lo` for left_of/above and at `hi` for right_of/below
    a, b = (lo, hi) if relation in ("left_of", "above") else (hi, lo)
    horizontal = relation in ("left_of", "right_of")
    cell_a = (line, a) if horizontal else (a, line)
    cell_b = (line, b) if horizontal else (b, line)
    colour_a, shape_a = _combo(draw, split, True)
    colour_b, shape_b = _combo(draw, split, False, avoid={(c, s) for c in [colour_a] for s in SHAPES})
    obj_a = _place(draw, shape_a, colour_a, draw.choice(tuple(SIZES)), cell_a)
    obj_b = _place(draw, shape_b, colour_b, draw.choice(tuple(SIZES)), cell_b)
    return Scene(objects=(obj_a, obj_b), category="Positional", relation=relation)


def _binding(draw: _Draw, split: str) -> Scene:
    colour_a, shape_a = _combo(draw, split, True)
    avoid = {(c, s) for c, s in _TRAIN_COMBOS + _HELDOUT_COMBOS if c == colour_a or s == shape_a}
    colour_b, shape_b = _combo(draw, split, False, avoid=avoid)
    size_a = draw.choice(tuple(SIZES))
    size_b = "small" if size_a == "large" else "large"
    cell_a, cell_b = draw.sample(ALL_CELLS, 2)
    objects = (_place(draw, shape_a, colour_a, size_a, cell_a), _place(draw, shape_b, colour_b, size_b, cell_b))
    return Scene(objects=objects, category="Binding", say_size=True)


_BUILDERS = {"Colors": _colors, "Counting": _counting, "Positional": _positional, "Binding": _binding}


def category_weights(mix: dict[str, float] | None) -> tuple[float, ...]:
    """Weights in CATEGORIES order from a {category: weight} mix (missing categories weigh 0); None -> default."""
    if mix is None:
        return CATEGORY_WEIGHTS
    unknown = sorted(set(mix) - set(CATEGORIES))
    if unknown:
        raise EvalkitError(f"unknown toy-world categories {', '.join(unknown)} in the mix (known: {', '.join(CATEGORIES)})")
    weights = tuple(float(mix.get(c, 0.0)) for c in CATEGORIES)
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise EvalkitError("toy-world category weights must be >= 0 and not all 0")
    return weights


def sample_scene(rng: Any, split: str = "train", category: str | None = None,
                 weights: tuple[float, ...] = CATEGORY_WEIGHTS) -> Scene:
    """One random scene; its category is drawn with `weights` (CATEGORIES order) unless given."""
    if split not in SPLITS:
        raise EvalkitError(f"unknown toy-world split {split!r}; expected one of {', '.join(SPLITS)}")
    draw = rng if isinstance(rng, _Draw) else _Draw(rng)
    if category is None:
        category = draw.weighted(CATEGORIES, weights)
    elif category not in _BUILDERS:
        raise EvalkitError(f"unknown toy-world category {category!r}; expected one of {', '.join(CATEGORIES)}")
    return _BUILDERS[category](draw, split)


def replace_in_cells(scene: Scene, rng: Any) -> Scene:
    """Another ground-truth image of the same caption: every object keeps its shape, colour, size and grid cell
    (so counts, relations and regions stay true) and is re-jittered within the cell exactly as ``_place`` draws it."""
    draw = rng if isinstance(rng, _Draw) else _Draw(rng)
    objects = tuple(_place(draw, o.shape, o.colour, o.size, tuple(o.cell)) for o in scene.objects)
    return replace(scene, objects=objects)
