"""Position accuracy of a base stage split into one-object region prompts and two-object relation prompts.

    python reports/imagen/position_breakdown.py [--checkpoint DIR] [--prompts 120] -> reports/imagen/position_breakdown.md

Held-out-split Positional scenes only (base stage, 32 px, its sampler settings): how often the analyzer finds the
named colours, and how often the region / relation holds (chance ~1/3 for a region, 1/4 for a relation).
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evalkit.imagen.cascade import ImagenCascade, to_pil  # noqa: E402
from evalkit.toyworld.analyzer import analyze, score  # noqa: E402
from evalkit.toyworld.captions import caption, scene_spec  # noqa: E402
from evalkit.toyworld.scenes import sample_scene  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=str(REPO / "evalkit/imagen/checkpoints/toyworld-32-64-128"))
    parser.add_argument("--prompts", type=int, default=120)
    parser.add_argument("--out", default=str(REPO / "reports/imagen/position_breakdown.md"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    cascade = ImagenCascade.from_pretrained(args.checkpoint, num_stages=1)
    rng = random.Random("position-breakdown:heldout")
    scenes = [sample_scene(rng, "heldout", category="Positional") for _ in range(args.prompts)]
    captions = [caption(scene, rng) for scene in scenes]
    with torch.no_grad():
        images = to_pil(cascade.generate(captions, list(range(len(captions)))))
    counts = collections.Counter()
    for scene, image in zip(scenes, images):
        kind = "region" if scene.region else "relation"
        spec = scene_spec(scene)
        found = {d.colour for d in analyze(image)}
        counts[kind, "prompts"] += 1
        counts[kind, "colours found"] += all(g["colour"] in found for g in spec["groups"])
        counts[kind, "position holds"] += bool(score(image, spec)["position"])
    lines = ["# Position accuracy by kind (base stage, held-out Positional prompts)", "",
             f"`python reports/imagen/position_breakdown.py --prompts {args.prompts}` (checkpoint "
             f"`{Path(args.checkpoint).name}`).", "",
             "| kind | prompts | named colours found | position holds | chance |", "| --- | --- | --- | --- | --- |"]
    for kind, chance in (("region", "~1/3"), ("relation", "1/4")):
        n = counts[kind, "prompts"]
        lines.append(f"| {kind} | {n} | {counts[kind, 'colours found']} | {counts[kind, 'position holds']} "
                     f"({counts[kind, 'position holds'] / max(n, 1):.0%}) | {chance} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
