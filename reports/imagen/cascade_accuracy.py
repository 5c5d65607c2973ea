"""Held-out toy-world accuracy of the whole shipped cascade (128 px) beside its unconditional baseline (w = 0).

    python reports/imagen/cascade_accuracy.py [--prompts 200] [--stages 3] -> reports/imagen/cascade_accuracy_cpu.json

Model selection (other checkpoints, the validation prompts, base only, no baseline):
    python reports/imagen/cascade_accuracy.py --checkpoint DIR --validation --stages 1 --no-baseline --out FILE
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evalkit.imagen.cascade import ImagenCascade  # noqa: E402
from evalkit.imagen.toy_eval import accuracy_with_baseline, toy_accuracy  # noqa: E402
from evalkit.toyworld.data import PROMPT_SEEDS  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--prompts", type=int, default=200)
parser.add_argument("--stages", type=int, default=3)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--checkpoint", default=str(REPO / "evalkit/imagen/checkpoints/toyworld-32-64-128"))
parser.add_argument("--validation", action="store_true", help="the validation prompts (heldout_prompts seed 1)")
parser.add_argument("--no-baseline", action="store_true", help="skip the unconditional (w = 0) run")
parser.add_argument("--base-steps", type=int, default=None, help="override the base stage's sampling steps")
parser.add_argument("--guidance", type=float, default=None, help="override the base stage's guidance weight")
parser.add_argument("--no-expert", action="store_true", help="the base U-Net alone, without its high-noise expert")
parser.add_argument("--out", default=str(REPO / "reports/imagen/cascade_accuracy_cpu.json"))
args = parser.parse_args()
torch.set_num_threads(args.threads)
cascade = ImagenCascade.from_pretrained(args.checkpoint, num_stages=args.stages, experts=not args.no_expert)
if args.base_steps:
    cascade.stages[0].sampling = replace(cascade.stages[0].sampling, steps=args.base_steps)
if args.guidance is not None:
    cascade.stages[0].sampling = replace(cascade.stages[0].sampling, guidance=args.guidance)
prompt_seed = PROMPT_SEEDS["validation" if args.validation else "heldout"]
start = time.time()
if args.no_baseline:
    with torch.no_grad():
        result = {"guided": toy_accuracy(cascade, args.prompts, prompt_seed=prompt_seed)}
else:
    result = accuracy_with_baseline(cascade, args.prompts, prompt_seed=prompt_seed)
result = {"seconds": time.time() - start, "checkpoint": Path(args.checkpoint).name, "stages": len(cascade.stages),
          "expert": cascade.stages[0].expert is not None,
          "base_steps": cascade.stages[0].sampling.steps, "base_guidance": cascade.stages[0].sampling.guidance,
          "prompts": "validation" if args.validation else "held-out", **result}
text = json.dumps(result, indent=1)
Path(args.out).write_text(text + "\n")
print(text)
