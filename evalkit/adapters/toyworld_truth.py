"""``toyworld-truth``: the toy world's ground truth as a model — for each toy-world prompt, its scene rendered
exactly, with the objects re-jittered inside their grid cells per seed (evalkit.toyworld.scenes.replace_in_cells).

    evalkit run --model toyworld-truth --benchmark toyworld --images-per-prompt 4 --size 128

Its runs are the reference image sets for distribution distances on the toy world (what a perfect model's images
look like: `evalkit score RUN --metrics kid --ref TRUTH_RUN/images --opt kid.extractor=pixels`), and scored with
the toy-world metric they measure the analyzer itself (every image is correct by construction). Prompts are
looked up by their exact caption among the toy-world prompt sets (held-out and validation); any other prompt is
an error naming it. The same (prompt, seed, size) always gives the same image.
"""

from __future__ import annotations

import random
from typing import Any

from evalkit.adapters.base import AdapterOptions, GenerationBatch, check_known_options
from evalkit.errors import EvalkitError

NAME = "toyworld-truth"
DEFAULT_SIZE = 128


def _scenes_by_caption() -> dict[str, Any]:
    from evalkit.toyworld.data import PROMPT_SEEDS, toy_scenes

    found = {}
    for split in PROMPT_SEEDS:
        for scene, text in toy_scenes(split):
            found.setdefault(text, scene)
    return found


class ToyworldTruthAdapter:
    name = NAME
    default_size = (DEFAULT_SIZE, DEFAULT_SIZE)
    device = "cpu"

    def __init__(self) -> None:
        self._scenes = _scenes_by_caption()

    def config(self) -> dict[str, Any]:
        return {"scenes": "toy-world ground truth (held-out and validation captions)",
                "variation": "objects re-jittered within their grid cells, per seed"}

    def checkpoint_hash(self) -> str | None:
        return None

    def _scene(self, prompt: str):
        scene = self._scenes.get(prompt)
        if scene is None:
            shown = prompt if len(prompt) <= 80 else prompt[:77] + "..."
            raise EvalkitError(f"{NAME} draws only toy-world prompts (--benchmark toyworld or toyworld-validation); "
                               f"{shown!r} is not one")
        return scene

    def generate(self, batch: GenerationBatch):
        from evalkit.toyworld.render import render
        from evalkit.toyworld.scenes import replace_in_cells

        if batch.height != batch.width:
            raise EvalkitError(f"{NAME} renders square images; got --size {batch.height}x{batch.width}")
        return [render(replace_in_cells(self._scene(prompt), random.Random(seed)), batch.height)
                for prompt, seed in zip(batch.prompts, batch.seeds)]


def create(options: AdapterOptions) -> ToyworldTruthAdapter:
    check_known_options(options, set(), NAME)
    if options.model_path:
        raise EvalkitError(f"{NAME} has no model files; drop --model-path")
    return ToyworldTruthAdapter()
