"""Held-out toy-world accuracy of the whole shipped cascade (128 px) beside its unconditional baseline (w = 0).

    python reports/imagen/cascade_accuracy.py [--prompts 200] [--stages 3] -> reports/imagen/cascade_accuracy_cpu.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evalkit.imagen.cascade import ImagenCascade  # noqa: E402
from evalkit.imagen.toy_eval import accuracy_with_baseline  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--prompts", type=int, default=200)
parser.add_argument("--stages", type=int, default=3)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)
cascade = ImagenCascade.from_pretrained(REPO / "evalkit/imagen/checkpoints/toyworld-32-64-128", num_stages=args.stages)
start = time.time()
result = {"seconds": time.time() - start, **accuracy_with_baseline(cascade, args.prompts)}
result["seconds"] = time.time() - start
text = json.dumps(result, indent=1)
(REPO / "reports/imagen/cascade_accuracy_cpu.json").write_text(text + "\n")
print(text)
