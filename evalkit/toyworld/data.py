"""Training examples and held-out prompts, both pure functions of a seed.

Training draws a fresh example per step from ``example(seed, size)``; ``batch_arrays`` skips PIL for speed.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import numpy as np
from PIL import Image

from evalkit.toyworld.captions import caption, scene_spec
from evalkit.toyworld.render import render_array
from evalkit.toyworld.scenes import CATEGORY_WEIGHTS, Scene, sample_scene


def _scene_and_caption(seed: int, split: str, weights: tuple[float, ...] = CATEGORY_WEIGHTS) -> tuple[Scene, str]:
    rng = random.Random(f"toyworld:{split}:{seed}")
    scene = sample_scene(rng, split, weights=weights)
    return scene, caption(scene, rng)


def example(seed: int, size: int, split: str = "train") -> tuple[Image.Image, str, str]:
    """(image, caption, category) for one seed."""
    scene, text = _scene_and_caption(seed, split)
    return Image.fromarray(render_array(scene, size), mode="RGB"), text, scene.category


def batch_arrays(seeds: Sequence[int], size: int, split: str = "train",
                 weights: tuple[float, ...] = CATEGORY_WEIGHTS) -> tuple[np.ndarray, list[str], list[str]]:
    """Many examples at once: a (N, size, size, 3) uint8 array, captions and categories (drawn with `weights`)."""
    images = np.empty((len(seeds), size, size, 3), dtype=np.uint8)
    captions, categories = [], []
    for i, seed in enumerate(seeds):
        scene, text = _scene_and_caption(int(seed), split, weights)
        images[i] = render_array(scene, size)
        captions.append(text)
        categories.append(scene.category)
    return images, captions, categories


# heldout_prompts seeds of the two prompt sets: settings are chosen on "validation", results reported on "heldout".
PROMPT_SEEDS = {"heldout": 0, "validation": 1}


def heldout_scenes(n: int = 200, seed: int = 0) -> list[tuple[Scene, str]]:
    """``n`` held-out scenes with distinct captions, in a fixed order for a given seed."""
    rng = random.Random(f"toyworld:heldout-prompts:{seed}")
    seen: set[str] = set()
    out: list[tuple[Scene, str]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise RuntimeError(f"could not draw {n} distinct held-out prompts")
        scene = sample_scene(rng, "heldout")
        text = caption(scene, rng)
        if text not in seen:
            seen.add(text)
            out.append((scene, text))
    return out


def heldout_prompts(n: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` held-out prompts as dicts: prompt, category, spec (what the analyzer checks), scene (ground truth)."""
    return [
        {"prompt": text, "category": scene.category, "spec": scene_spec(scene), "scene": scene.to_dict()}
        for scene, text in heldout_scenes(n, seed)
    ]
