"""The paper's sampling findings, in miniature, on the shipped cascade (held-out toy-world prompts).

    python reports/imagen/sweeps.py [--prompts 48] -> reports/imagen/sweeps.md, reports/imagen/guidance_pareto.png

One setting changes at a time from the shipped defaults, with the same prompts and seeds throughout:
  guidance   base stage, w = 1..10: alignment (analyzer accuracy) against diversity (RMS pixel distance between
             two samples of the same prompt), the trade-off of the paper's Fig. 4
  threshold  base stage at a high weight (w = 8): none / static / dynamic (paper Sec. 2.3)
  sampler    base stage: ancestral DDPM 250 steps, DDIM 50, DPM-Solver++(2M) 25 and the shipped 20, with the
             network evaluations per image (guidance batches the two branches: 2 per step)
  SR         the two SR stages on the same base images: noise-augmentation level 0 / 0.1 / 0.3 at sampling
             (paper App. E), and dynamic vs static thresholding, start time 1 vs 0.5 (see reports/imagen/README.md)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evalkit.imagen.cascade import ImagenCascade  # noqa: E402
from evalkit.imagen.toy_eval import score_images  # noqa: E402
from evalkit.toyworld.data import heldout_prompts  # noqa: E402

CHECKPOINT = REPO / "evalkit" / "imagen" / "checkpoints" / "toyworld-32-64-128"
OUT = REPO / "reports" / "imagen"
QUESTIONS = ("colour", "count", "position", "all")


def accuracy(images: torch.Tensor, prompts: list[dict]) -> dict[str, float]:
    return {q: sum(v) / len(v) for q, v in score_images(images, prompts).items() if q in QUESTIONS and v}


def row(group: str, label: str, acc: dict, extra: str, seconds: float) -> str:
    cells = " | ".join(f"{acc[q]:.1%}" if q in acc else "-" for q in QUESTIONS)
    return f"| {group} | {label} | {cells} | {extra} | {seconds:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--sampler-prompts", type=int, default=24, help="fewer for the sampler sweep (DDPM-250 is slow)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cascade = ImagenCascade.from_pretrained(CHECKPOINT)
    prompts = heldout_prompts(args.prompts)
    seeds, second_seeds = list(range(len(prompts))), [10_000 + i for i in range(len(prompts))]
    text = cascade.text_encoder.encode([p["prompt"] for p in prompts])
    base = cascade.stages[0].sampling
    rows, pareto = [], []

    def timed(fn):
        start = time.time()
        out = fn()
        return out, time.time() - start

    with torch.no_grad():
        for w in (1.0, 2.0, 4.0, 6.0, 8.0, 10.0):
            config = replace(base, guidance=w)
            (first, second), seconds = timed(lambda: (cascade.run_stage(0, text, seeds, config),
                                                      cascade.run_stage(0, text, second_seeds, config)))
            acc = accuracy(first, prompts)
            diversity = float(((first - second) / 2).pow(2).mean(dim=(1, 2, 3)).sqrt().mean())
            pareto.append((w, diversity, acc["all"], acc["colour"]))
            rows.append(row("guidance", f"w={w:g}", acc, f"diversity {diversity:.3f}", seconds))
            print(rows[-1], flush=True)
        for threshold in ("none", "static", "dynamic"):
            config = replace(base, guidance=8.0, threshold=threshold)
            images, seconds = timed(lambda: cascade.run_stage(0, text, seeds, config))
            rows.append(row("threshold (w=8)", threshold, accuracy(images, prompts), "", seconds))
            print(rows[-1], flush=True)
        few = slice(0, args.sampler_prompts)
        few_text = cascade.text_encoder.encode([p["prompt"] for p in prompts[few]])
        for sampler, steps in (("ddpm", 250), ("ddim", 50), ("dpm++2m", 25), ("dpm++2m", 20)):
            config = replace(base, sampler=sampler, steps=steps)
            images, seconds = timed(lambda: cascade.run_stage(0, few_text, seeds[few], config))
            rows.append(row(f"sampler ({args.sampler_prompts} prompts)", f"{sampler} {steps}",
                            accuracy(images, prompts[few]), f"{2 * steps} network evals", seconds))
            print(rows[-1], flush=True)
        lowres = cascade.run_stage(0, text, seeds, base)
        sr_settings = [(f"aug level {a:g}", {"aug_level": a}) for a in (0.0, 0.1, 0.3)]
        sr_settings += [("dynamic thresholding", {"threshold": "dynamic"}),
                        ("start_t = 1 (pure noise), 8 steps", {"start_t": 1.0, "steps": 8})]
        for label, changes in sr_settings:
            def cascade_sr():
                image = lowres
                for index in (1, 2):
                    image = cascade.run_stage(index, text, seeds, replace(cascade.stages[index].sampling, **changes), image)
                return image
            images, seconds = timed(cascade_sr)
            rows.append(row("SR stages (128 px)", label, accuracy(images, prompts), "", seconds))
            print(rows[-1], flush=True)
    plot_pareto(pareto)
    n_count = sum(bool(p["spec"]["exact_count"]) for p in prompts)
    n_position = sum(bool(p["spec"]["relation"] or p["spec"]["region"]) for p in prompts)
    text_lines = [
        "# Sampling sweeps on the shipped cascade",
        "",
        f"`python reports/imagen/sweeps.py --prompts {args.prompts} --sampler-prompts {args.sampler_prompts}` "
        f"({args.threads} CPU threads): held-out toy-world prompts, one image each (two for the guidance sweep), the "
        "same seeds throughout, one setting changed at a time from the shipped defaults (base: DPM-Solver++ 20 "
        "steps, w = 4, dynamic thresholding p = 99.5%; SR: 2 steps from t = 0.5, w = 1, static thresholding, "
        "aug level 0). Base rows score the 32 px base output, SR rows the 128 px cascade output. Small samples: "
        f"of the {len(prompts)} prompts, {n_count} ask a count and {n_position} a position, so read those columns "
        "as direction only.",
        "",
        "| sweep | setting | colour | count | position | all | | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "Diversity: RMS pixel distance (images in [0, 1]) between two samples of the same prompt, averaged over "
        "prompts. `guidance_pareto.png` plots alignment ('all' correct) against it.",
        "",
    ]
    (OUT / "sweeps.md").write_text("\n".join(text_lines))


def plot_pareto(points) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([p[1] for p in points], [100 * p[2] for p in points], "o-", label="all questions right")
    ax.plot([p[1] for p in points], [100 * p[3] for p in points], "s--", label="colour right")
    for w, diversity, acc_all, _ in points:
        ax.annotate(f"w={w:g}", (diversity, 100 * acc_all), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("diversity (RMS distance between two samples)")
    ax.set_ylabel("held-out toy-world accuracy (%)")
    ax.set_title("Guidance: alignment vs diversity (base, 32 px)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "guidance_pareto.png", dpi=120)


if __name__ == "__main__":
    main()
