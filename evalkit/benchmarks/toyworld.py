"""The toy-world benchmarks: generated (not read from a file) prompts, each with the spec the toy-world analyzer
checks an image against. Every prompt names at least one colour x shape combination that the built-in model
never saw in training (see ``evalkit.toyworld.palette.HELDOUT_COMBOS``).

  toyworld             200 held-out prompts: the set results are reported on
  toyworld-validation  200 validation prompts, none repeating a held-out caption: the set checkpoints and
                       settings are chosen on (``evalkit train --eval-every`` scores it by default)
"""

from __future__ import annotations

import json

from evalkit.benchmarks.registry import BenchmarkSpec, LoadedBenchmark, PromptRow, content_hash
from evalkit.errors import EvalkitError

N_PROMPTS = 200


def _load(name: str, split: str, prompts_file: str | None) -> LoadedBenchmark:
    if prompts_file is not None:
        raise EvalkitError(f"the {name} benchmark generates its own prompts; drop --prompts")
    from evalkit.toyworld.data import PROMPT_SEEDS, toy_prompts

    rows = [
        PromptRow(index=i, prompt=p["prompt"], category=p["category"], extra={"spec": p["spec"], "scene": p["scene"]})
        for i, p in enumerate(toy_prompts(split, N_PROMPTS))
    ]
    digest = content_hash(
        [(row.prompt, row.category, json.dumps(row.extra["spec"], sort_keys=True, separators=(",", ":"))) for row in rows]
    )
    return LoadedBenchmark(name=name, rows=rows, content_hash=digest,
                           source=f"generated:toyworld-{split}:seed={PROMPT_SEEDS[split]}")


def load(prompts_file: str | None = None) -> LoadedBenchmark:
    """The held-out prompts (reported)."""
    return _load("toyworld", "heldout", prompts_file)


def load_validation(prompts_file: str | None = None) -> LoadedBenchmark:
    """The validation prompts (for choosing checkpoints and settings)."""
    return _load("toyworld-validation", "validation", prompts_file)


BENCHMARK = BenchmarkSpec("Toy world: 200 held-out checkable prompts (colour, count, position)", load)
VALIDATION_BENCHMARK = BenchmarkSpec("Toy world: 200 validation prompts, disjoint from toyworld's, for choosing checkpoints", load_validation)
