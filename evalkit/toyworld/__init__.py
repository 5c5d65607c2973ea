"""The toy world: procedurally generated scenes with templated, checkable captions.

A leaf package (imports only evalkit.errors / evalkit.atomic): the built-in Imagen trains on ``data.example``; the
``toyworld`` and ``toyworld-validation`` benchmarks are its two prompt sets (``data.toy_prompts``);
``analyzer.score`` checks a generated image against its prompt's spec (colour, shape, count, position).
"""

from evalkit.toyworld.captions import caption, scene_spec
from evalkit.toyworld.data import batch_arrays, example, toy_prompts
from evalkit.toyworld.palette import BACKGROUND, COLOURS, HELDOUT_COMBOS, SHAPES, SIZES
from evalkit.toyworld.render import render, render_array
from evalkit.toyworld.scenes import CATEGORIES, ObjectSpec, Scene, sample_scene

__all__ = [
    "BACKGROUND", "CATEGORIES", "COLOURS", "HELDOUT_COMBOS", "SHAPES", "SIZES", "ObjectSpec", "Scene",
    "batch_arrays", "caption", "example", "render", "render_array", "sample_scene", "scene_spec", "toy_prompts",
]
