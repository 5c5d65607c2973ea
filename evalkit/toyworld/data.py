"""Training examples and the two prompt sets (held-out and validation), all pure functions of a seed.

Training draws a fresh example per step from ``example(seed, size)``; ``batch_arrays`` skips PIL for speed.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import numpy as np
from PIL import Image

from evalkit.errors import EvalkitError
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


def training_scenes(seeds: Sequence[int], split: str = "train",
                    weights: tuple[float, ...] = CATEGORY_WEIGHTS) -> list[tuple[Scene, str]]:
    """(scene, caption) for each seed, categories drawn with `weights`: what `batch_arrays` renders."""
    return [_scene_and_caption(int(seed), split, weights) for seed in seeds]


def batch_arrays(seeds: Sequence[int], size: int, split: str = "train",
                 weights: tuple[float, ...] = CATEGORY_WEIGHTS) -> tuple[np.ndarray, list[str], list[str]]:
    """Many examples at once: a (N, size, size, 3) uint8 array, captions and categories (drawn with `weights`)."""
    pairs = training_scenes(seeds, split, weights)
    images = np.empty((len(pairs), size, size, 3), dtype=np.uint8)
    for i, (scene, _) in enumerate(pairs):
        images[i] = render_array(scene, size)
    return images, [text for _, text in pairs], [scene.category for scene, _ in pairs]


# The two prompt sets, both of held-out colour x shape combinations, drawn from separate seeds: checkpoints and
# settings are chosen on "validation", results are reported on "heldout" (the ``toyworld`` benchmark).
PROMPT_SEEDS = {"heldout": 0, "validation": 1}
# The held-out benchmark's size: the validation set never repeats one of its first HELDOUT_SIZE captions.
HELDOUT_SIZE = 200


def _distinct_scenes(n: int, seed: int, exclude: frozenset[str] = frozenset()) -> list[tuple[Scene, str]]:
    """``n`` held-out-combination scenes with distinct captions not in ``exclude``, in a fixed order for a seed.

    The order is a stream, so ``n`` prompts are a prefix of ``n + 1``."""
    rng = random.Random(f"toyworld:heldout-prompts:{seed}")
    seen: set[str] = set(exclude)
    out: list[tuple[Scene, str]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise RuntimeError(f"could not draw {n} distinct toy-world prompts")
        scene = sample_scene(rng, "heldout")
        text = caption(scene, rng)
        if text not in seen:
            seen.add(text)
            out.append((scene, text))
    return out


def toy_scenes(split: str = "heldout", n: int = HELDOUT_SIZE) -> list[tuple[Scene, str]]:
    """``n`` (scene, caption) pairs of one prompt set: "heldout" (reported) or "validation" (for choosing).

    Both sets hold only held-out colour x shape combinations. Drawn independently, 68 of the first 200 validation
    captions would repeat a held-out one (short captions such as "a yellow square" recur), so validation skips
    every caption of the held-out benchmark: selecting on it never sees a reported prompt. (Colors captions are the
    fewest, so most of them are held out: validation's first 200 hold 7 Colors prompts, the held-out 200 hold 27.)"""
    if split not in PROMPT_SEEDS:
        raise EvalkitError(f"unknown toy-world prompt set {split!r}; expected one of {', '.join(PROMPT_SEEDS)}")
    if split == "heldout":
        return _distinct_scenes(n, PROMPT_SEEDS["heldout"])
    reported = frozenset(text for _, text in _distinct_scenes(HELDOUT_SIZE, PROMPT_SEEDS["heldout"]))
    return _distinct_scenes(n, PROMPT_SEEDS["validation"], exclude=reported)


def toy_prompts(split: str = "heldout", n: int = HELDOUT_SIZE) -> list[dict[str, Any]]:
    """``n`` prompts of one set as dicts: prompt, category, spec (what the analyzer checks), scene (ground truth)."""
    return [
        {"prompt": text, "category": scene.category, "spec": scene_spec(scene), "scene": scene.to_dict()}
        for scene, text in toy_scenes(split, n)
    ]
