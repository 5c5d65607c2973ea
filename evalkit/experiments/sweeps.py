"""The paper's sampling findings, in miniature, on an Imagen checkpoint (default: the shipped one).

    python -m evalkit.experiments.sweeps [--benchmark toyworld] [--prompts 48] [--sampler-prompts 24]
        -> reports/imagen/sweeps.md, reports/imagen/guidance_pareto.png

One setting changes at a time from the checkpoint's defaults, on the same prompts (``--prompts`` of the
benchmark, the subset ``evalkit run --limit`` picks) and the same hashed per-image seeds throughout. Every row is a
run directory under ``--runs`` (reused on a rerun) scored by the toyworld metric, i.e. what
``evalkit run --model imagen --benchmark B --limit N --opt KEY=VALUE`` + ``evalkit score RUN --metrics toyworld``
give:
  guidance   base stage, w = 1..10, two images per prompt: alignment (analyzer accuracy) against diversity (RMS
             pixel distance between the two images of a prompt), the trade-off of the paper's Fig. 4
  threshold  base stage at a high weight (w = 8): none / static / dynamic (paper Sec. 2.3)
  sampler    base stage: ancestral DDPM 250 steps, DDIM 50, DPM-Solver++(2M) 25 and 16 (the shipped setting), on
             ``--sampler-prompts`` prompts (network evaluations per image: guidance batches both branches, 2 a step)
  SR         every super-resolution stage: noise-augmentation level 0 / 0.1 / 0.3 at sampling (paper App. E),
             dynamic thresholding, start time 1 (pure noise) with 8 steps; the base images are the same in each
             row (same seeds, same base settings)
Settings are chosen on ``--benchmark toyworld-validation``; the held-out ``toyworld`` only reports them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from evalkit.cli.args import positive_int
from evalkit.experiments.common import (REPORTS_DIR, agg_pyplot, run_as_script, save_figure, shipped_checkpoint,
                                        write_report)
from evalkit.experiments.runs import RUNS_DIR, cells, generate_and_score, sub_cascade

QUESTIONS = ("colour", "count", "position", "all")
GUIDANCE_WEIGHTS = (1.0, 2.0, 4.0, 6.0, 8.0, 10.0)
SAMPLERS = (("ddpm", 250), ("ddim", 50), ("dpm++2m", 25), ("dpm++2m", 16))


def diversity(run) -> float:
    """Mean over prompts of the RMS pixel distance (images in [0, 1]) between samples 0 and 1 of the prompt."""
    from PIL import Image

    by_prompt: dict[int, dict[int, np.ndarray]] = {}
    for record in run.completed_records():
        with Image.open(run.image_path(record)) as image:
            by_prompt.setdefault(record.prompt_index, {})[record.sample] = np.asarray(image.convert("RGB"), float) / 255
    pairs = [s for s in by_prompt.values() if 0 in s and 1 in s]
    return float(np.mean([np.sqrt(((s[0] - s[1]) ** 2).mean()) for s in pairs]))


def _row(group: str, label: str, scored, extra: str = "") -> str:
    return f"| {group} | {label} | {cells(scored, QUESTIONS)} | {extra} | {scored.seconds:.0f} |"


def sweep_rows(cascade, checkpoint: str, benchmark, rows, sampler_rows, runs: Path) -> tuple[list[str], list[tuple]]:
    base = sub_cascade(cascade, 1)
    lines, pareto = [], []

    def report(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for w in GUIDANCE_WEIGHTS:
        scored = generate_and_score(base, checkpoint, benchmark, rows, runs, {"base": {"guidance": w}}, 2)
        spread = diversity(scored.run)
        pareto.append((w, spread, scored.estimate("all").value, scored.estimate("colour").value))
        report(_row("guidance (2 images per prompt)", f"w={w:g}", scored, f"diversity {spread:.3f}"))
    for threshold in ("none", "static", "dynamic"):
        changes = {"base": {"guidance": 8.0, "threshold": threshold}}
        scored = generate_and_score(base, checkpoint, benchmark, rows, runs, changes)
        report(_row("threshold (w=8)", threshold, scored))
    for sampler, steps in SAMPLERS:
        scored = generate_and_score(base, checkpoint, benchmark, sampler_rows, runs,
                                    {"base": {"sampler": sampler, "steps": steps}})
        report(_row(f"sampler ({len(sampler_rows)} prompts)", f"{sampler} {steps}", scored,
                    f"{2 * steps} network evals"))
    sr_names = [stage.name for stage in cascade.stages[1:]]
    settings = [(f"aug level {a:g}", {"aug_level": a}) for a in (0.0, 0.1, 0.3)]
    settings += [("dynamic thresholding", {"threshold": "dynamic"}),
                 ("start_t = 1 (pure noise), 8 steps", {"start_t": 1.0, "steps": 8})]
    for label, changes in settings if sr_names else []:
        scored = generate_and_score(cascade, checkpoint, benchmark, rows, runs, {name: changes for name in sr_names})
        report(_row(f"SR stages ({cascade.image_size} px)", label, scored))
    return lines, pareto


def plot_pareto(points, path: Path) -> Path:
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([p[1] for p in points], [100 * p[2] for p in points], "o-", label="all questions right")
    ax.plot([p[1] for p in points], [100 * p[3] for p in points], "s--", label="colour right")
    for w, spread, acc_all, _ in points:
        ax.annotate(f"w={w:g}", (spread, 100 * acc_all), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("diversity (RMS distance between two samples)")
    ax.set_ylabel("toy-world accuracy (%)")
    ax.set_title("Guidance: alignment vs diversity (base stage)")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def report_text(args, benchmark, rows, lines: list[str]) -> str:
    n_count = sum(bool(r.extra["spec"]["exact_count"]) for r in rows)
    n_position = sum(bool(r.extra["spec"]["relation"] or r.extra["spec"]["region"]) for r in rows)
    return "\n".join([
        "# Sampling sweeps",
        "",
        f"`python -m evalkit.experiments.sweeps --benchmark {benchmark.name} --prompts {args.prompts} "
        f"--sampler-prompts {args.sampler_prompts}` (checkpoint `{args.checkpoint.name}`, {args.threads} CPU "
        f"threads): {len(rows)} prompts of `{benchmark.name}`, one image each (two for the guidance sweep), the same "
        "hashed per-image seeds throughout, one setting changed at a time from the checkpoint's defaults. Each row "
        "is a run scored by `evalkit score --metrics toyworld`: accuracy, 95% Wilson interval and N images asked. "
        "Base rows score the base stage's output, SR rows the whole cascade's. "
        f"Of the {len(rows)} prompts, {n_count} ask a count and {n_position} a position.",
        "",
        "| sweep | setting | colour | count | position | all | | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *lines,
        "",
        "Diversity: RMS pixel distance (images in [0, 1]) between the two images of a prompt, averaged over prompts. "
        f"`{args.figure.name}` plots alignment ('all' correct) against it. Seconds: generation in the call that "
        "made the run (0: reused).",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    from evalkit.adapters.imagen import checkpoint_label
    from evalkit.benchmarks.registry import load_benchmark, select_subset
    from evalkit.imagen.cascade import ImagenCascade

    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.sweeps", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="Imagen checkpoint folder (default: the shipped one)")
    parser.add_argument("--benchmark", default="toyworld", choices=["toyworld", "toyworld-validation"])
    parser.add_argument("--prompts", type=positive_int, default=48)
    parser.add_argument("--sampler-prompts", type=positive_int, default=24,
                        help="fewer for the sampler sweep (DDPM-250 is slow)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")
    parser.add_argument("--runs", type=Path, default=RUNS_DIR / "sweeps", help="root of the sweep's run directories")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "sweeps.md")
    parser.add_argument("--figure", type=Path, default=REPORTS_DIR / "guidance_pareto.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.checkpoint = args.checkpoint or shipped_checkpoint()
    cascade = ImagenCascade.from_pretrained(args.checkpoint)
    benchmark = load_benchmark(args.benchmark)
    rows = select_subset(benchmark.rows, args.prompts)
    sampler_rows = select_subset(benchmark.rows, min(args.sampler_prompts, args.prompts))
    lines, pareto = sweep_rows(cascade, checkpoint_label(args.checkpoint), benchmark, rows, sampler_rows, args.runs)
    plot_pareto(pareto, args.figure)
    write_report(args.out, report_text(args, benchmark, rows, lines))
    return 0


if __name__ == "__main__":
    run_as_script(main)
