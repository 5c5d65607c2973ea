"""Why the shipped base stage does not follow position words: three measurements.

    python -m evalkit.experiments.position_probe [--checkpoint DIR] [--seeds 8] [--out FILE]
        -> reports/imagen/position_probe.md

1. Same seed, four region words: for N seeds x {on the left, on the right, at the top, at the bottom}, where the
   object lands, and how often it lands in the named third (chance about 1/3). If the words mattered, one seed
   would give four different places.
2. For one fixed x_t, the redness of the base's x0 prediction by third of the image's columns, for the four region
   words and a colour change.
3. The frozen text encoder (MiniLM): cosine similarity of the token that differs between two prompts, at every
   layer, for position words (left/right, top/bottom, above/below), number words (two/three) and colour and shape
   words (red/blue, circle/square).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from evalkit.cli.args import positive_int
from evalkit.experiments.common import REPORTS_DIR, run_as_script, shipped_checkpoint, write_report
from evalkit.imagen.cascade import ImagenCascade, to_pil
from evalkit.imagen.diffusion import model_prediction, predicted_x0
from evalkit.toyworld.analyzer import analyze

REGIONS = {"on the left": lambda x, y: x < 1 / 3, "on the right": lambda x, y: x > 2 / 3,
           "at the top": lambda x, y: y < 1 / 3, "at the bottom": lambda x, y: y > 2 / 3}
WORD_PAIRS = [("a red circle on the left", "a red circle on the right"),
              ("a red circle at the top", "a red circle at the bottom"),
              ("a red circle above a blue square", "a red circle below a blue square"),
              ("two red circles", "three red circles"),
              ("a red circle on the left", "a blue circle on the left"),
              ("a red circle on the left", "a red square on the left")]


def same_seed_table(cascade: ImagenCascade, seeds: int = 8) -> tuple[list[str], int, int]:
    prompts = [f"a {['red', 'blue'][s % 2]} {['circle', 'square', 'triangle', 'cross'][s % 4]} {region}"
               for region in REGIONS for s in range(seeds)]
    with torch.no_grad():
        images = to_pil(cascade.generate(prompts, [i % seeds for i in range(len(prompts))]))
    places = {}
    hits = 0
    for i, (prompt, image) in enumerate(zip(prompts, images)):
        region = next(r for r in REGIONS if prompt.endswith(r))
        centroids = [d.centroid for d in analyze(image)]
        hits += any(REGIONS[region](*c) for c in centroids)
        places.setdefault(i % seeds, []).append("-" if not centroids else "({:.2f}, {:.2f})".format(*centroids[0]))
    rows = [f"| {seed} | " + " | ".join(cells) + " |" for seed, cells in places.items()]
    return rows, hits, len(prompts)


def encoder_table(cascade: ImagenCascade) -> list[str]:
    encoder = cascade.text_encoder
    rows = []
    for a, b in WORD_PAIRS:
        batch = encoder.tokenizer([a, b], return_tensors="pt")
        ids = batch["input_ids"]
        position = int((ids[0] != ids[1]).nonzero()[0])
        with torch.no_grad():
            states = encoder.model(**batch, output_hidden_states=True).hidden_states
        cosines = [float(F.cosine_similarity(h[0, position], h[1, position], dim=0)) for h in states]
        words = encoder.tokenizer.convert_ids_to_tokens([int(ids[0, position]), int(ids[1, position])])
        rows.append(f"| {words[0]} / {words[1]} | " + " | ".join(f"{c:.2f}" for c in cosines) + " |")
    return rows


def x0_redness_table(cascade: ImagenCascade) -> list[str]:
    """Redness (R - (G + B) / 2) of the base's x0 prediction, averaged over the left / centre / right third of
    columns, for one fixed x_t and four region words plus a colour change."""
    stage = cascade.stages[0]
    prompts = [f"a red circle {region}" for region in REGIONS] + ["a blue circle on the left"]
    text = cascade.text_encoder.encode(prompts)
    noise = torch.randn(1, 3, stage.image_size, stage.image_size, generator=torch.Generator().manual_seed(0))
    rows = []
    for t in (0.95, 0.8, 0.6):
        times = torch.full((len(prompts),), t)
        alpha, sigma = stage.schedule.alpha_sigma(times[:1])
        x = (sigma * noise).expand(len(prompts), -1, -1, -1)
        with torch.no_grad():
            output = stage.model(x, times, text.tokens, text.mask)
        x0 = predicted_x0(model_prediction(stage.model), output, x, alpha, sigma)
        redness = (x0[:, 0] - 0.5 * (x0[:, 1] + x0[:, 2])).mean(dim=1)  # [prompts, columns]
        thirds = [redness[:, i * stage.image_size // 3:(i + 1) * stage.image_size // 3].mean(dim=1) for i in range(3)]
        for i, prompt in enumerate(prompts):
            rows.append(f"| {t} | {prompt} | " + " | ".join(f"{float(third[i]):+.3f}" for third in thirds) + " |")
    return rows


def report(cascade: ImagenCascade, checkpoint: Path, seeds: int) -> str:
    rows, hits, total = same_seed_table(cascade, seeds)
    encoder_rows = encoder_table(cascade)
    layers = len(encoder_rows[0].split("|")) - 3
    lines = [
        "# Position words: what the base stage and its text encoder do with them",
        "",
        f"`python -m evalkit.experiments.position_probe --seeds {seeds}` (checkpoint `{checkpoint.name}`,"
        " base stage, 32 px, its own sampler settings).",
        "",
        "## 1. One seed, four region words: where the object lands (first object's centre, x and y in [0, 1])",
        "",
        "| seed | " + " | ".join(REGIONS) + " |",
        "| --- |" + " --- |" * len(REGIONS),
        *rows,
        "",
        f"In the named third: {hits} of {total} (chance about {total // 3}).",
        "",
        "## 2. The x0 prediction for one fixed x_t: redness by third of the image's columns",
        "",
        "| t | prompt | left | centre | right |",
        "| --- | --- | --- | --- | --- |",
        *x0_redness_table(cascade),
        "",
        "## 3. MiniLM: cosine similarity of the differing token, by layer (0 = input embeddings)",
        "",
        "| words | " + " | ".join(str(i) for i in range(layers)) + " |",
        "| --- |" + " --- |" * layers,
        *encoder_rows,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.position_probe",
                                     description="Do position words move the base stage's objects?")
    parser.add_argument("--checkpoint", type=Path, default=None, help="Imagen checkpoint folder (default: the shipped one)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")
    parser.add_argument("--seeds", type=positive_int, default=8, help="noise seeds per region word")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "position_probe.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or shipped_checkpoint()
    cascade = ImagenCascade.from_pretrained(checkpoint, num_stages=1)
    text = report(cascade, checkpoint, args.seeds)
    write_report(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    run_as_script(main)
