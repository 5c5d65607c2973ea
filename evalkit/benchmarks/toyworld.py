"""The toy-world benchmark: 200 held-out prompts, generated (not read from a file), each with the spec the
toy-world analyzer checks an image against. Every prompt names at least one colour x shape combination that the
built-in model never saw in training (see ``evalkit.toyworld.palette.HELDOUT_COMBOS``)."""

from __future__ import annotations

import json

from evalkit.benchmarks.registry import LoadedBenchmark, PromptRow, content_hash
from evalkit.errors import EvalkitError

N_PROMPTS = 200
SEED = 0


def load(prompts_file: str | None = None) -> LoadedBenchmark:
    if prompts_file is not None:
        raise EvalkitError("the toyworld benchmark generates its own prompts; drop --prompts")
    from evalkit.toyworld.data import heldout_prompts

    rows = [
        PromptRow(index=i, prompt=p["prompt"], category=p["category"], extra={"spec": p["spec"], "scene": p["scene"]})
        for i, p in enumerate(heldout_prompts(N_PROMPTS, SEED))
    ]
    digest = content_hash(
        [(row.prompt, row.category, json.dumps(row.extra["spec"], sort_keys=True, separators=(",", ":"))) for row in rows]
    )
    return LoadedBenchmark(name="toyworld", rows=rows, content_hash=digest, source=f"generated:toyworld-heldout:seed={SEED}")
