"""The Imagen paper's central finding in miniature: does a larger frozen text encoder help more than a larger U-Net?

    python -m evalkit.experiments.scaling_study [--steps 560] [--batch-size 64] [--lr 8e-4] [--dim 24]
        [--benchmark toyworld] [--prompts 200] [--images-per-prompt 2] [--only ROW,...] [--jobs 1]
        [--runs runs/scaling] [--out reports/imagen/scaling]
        -> OUT/scaling.md, OUT/scaling.json, OUT/scaling.png, OUT/report/ (evalkit report)

Rows, each a base stage (32 px) trained from scratch with the same budget (steps x batch, seed, learning rate,
schedule, data) and changed in one thing from the reference row ``encoder 6, U-Net 1x``:

  encoder 0 / 2 / 4 / 6   MiniLM (all-MiniLM-L6-v2) cut after 0, 2, 4 or 6 of its 6 transformer layers
                          (``--text-layers K``: the hidden state after layer K; 0 is the input embeddings, word plus
                          position embeddings with no mixing between tokens, i.e. a bag of position-tagged words:
                          the baseline without a language model)
  U-Net 0.5x / 2x         the 6-layer encoder with a U-Net of half / twice the reference's channel width
                          (``--model-opt dim=D``; about 0.25x / 4x its parameters and compute)

Each model is ``evalkit train imagen --stage base --out RUNS/models/ROW ...`` (resumable: rerunning continues
from its last save), then ``evalkit run --model imagen --model-path RUNS/models/ROW --opt stages=1 --benchmark B
--limit N --images-per-prompt K`` (the same prompts and hashed seeds for every row), ``evalkit score RUN --metrics
toyworld`` and ``evalkit compare REFERENCE RUN`` (paired bootstrap over prompts). The paper (Sec. 4.4, Fig. 4)
found that scaling the text encoder (T5 Small -> XXL) improved alignment and fidelity more than scaling the U-Net
(300M -> 2B parameters). The defaults are the budget of ``reports/imagen/README.md`` (67 minutes of training on 2
CPU cores), set by the time available, not chosen on results.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from evalkit.cli.args import MAX_IMAGES_PER_PROMPT, float_range, int_range, positive_float, positive_int
from evalkit.errors import EvalkitError
from evalkit.experiments.common import agg_pyplot, run_as_script, save_figure, write_report
from evalkit.experiments.paper_findings import QUESTIONS, cell, change_cell, compare, evalkit, overall_stats, run_dir

REFERENCE = "encoder 6, U-Net 1x"


@dataclass(frozen=True)
class Model:
    label: str
    slug: str  # its folder under RUNS/models
    encoder_layers: int
    width: float  # U-Net channel width relative to --dim

    def train_options(self, dim: int) -> list[str]:
        return ["--text-layers", str(self.encoder_layers), "--model-opt", f"dim={max(1, round(self.width * dim))}"]


MODELS = (
    Model("encoder 0 (embeddings)", "enc0", 0, 1.0),
    Model("encoder 2", "enc2", 2, 1.0),
    Model("encoder 4", "enc4", 4, 1.0),
    Model(REFERENCE, "enc6", 6, 1.0),
    Model("U-Net 0.5x", "unet05", 6, 0.5),
    Model("U-Net 2x", "unet2", 6, 2.0),
)


def train(args, model: Model, threads: int | None = None) -> Path:
    folder = args.runs / "models" / model.slug
    shared = [item for setting in args.unet_opt for item in ("--model-opt", setting)]
    evalkit("train", "imagen", "--stage", "base", "--out", folder, *shared, *model.train_options(args.dim),
            "--steps", args.steps, "--batch-size", args.batch_size, "--lr", args.lr, "--ema-decay", args.ema_decay,
            "--warmup-steps", args.warmup_steps, "--seed", args.seed, "--save-every", args.save_every, "--log-every",
            min(10, args.steps), "--device", "cpu", threads=threads)
    return folder


def train_all(args, chosen: list[Model]) -> dict[str, Path]:
    """Train every chosen base, `--jobs` at a time with the cores split between them. Measured on 2 cores for the
    width-24 base at batch 64: 1.04 s a step at two threads, 1.88 at one, so two one-thread trainings side by side
    finish about 10% sooner than one after another (two two-thread jobs at once were 4x slower: keep threads x jobs
    at the core count)."""
    if args.jobs == 1:
        return {m.label: train(args, m) for m in chosen}
    from concurrent.futures import ThreadPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    # the largest first, so the pool does not end on it alone
    order = sorted(chosen, key=lambda m: -m.width)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        folders = dict(zip([m.label for m in order], pool.map(lambda m: train(args, m, threads), order)))
    return {m.label: folders[m.label] for m in chosen}


def parameters(folder: Path) -> int:
    """Trainable U-Net parameters of the trained base (its safetensors file; the frozen encoder is not in it)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(folder / "base.safetensors"), framework="np") as weights:
        for name in weights.keys():
            shape = weights.get_slice(name).get_shape()
            count = 1
            for size in shape:
                count *= int(size)
            total += count
    return total


def training_seconds(folder: Path) -> float:
    """Wall time of all training calls from the loss log (its seconds restart at each resumed call)."""
    path = folder / "train" / "base" / "loss.csv"
    if not path.is_file():
        return float("nan")
    total, last = 0.0, 0.0
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            seconds = float(row["seconds"])
            if seconds < last:
                total += last
            last = seconds
    return total + last


def evaluate(args, folder: Path) -> Path:
    run = run_dir(evalkit("run", "--model", "imagen", "--model-path", folder, "--opt", "stages=1", "--opt",
                          f"precision={args.precision}", "--benchmark", args.benchmark, "--limit", args.prompts,
                          "--images-per-prompt", args.images_per_prompt, "--seed", 0, "--out", args.runs / "evals",
                          "--quiet", "--device", "cpu"))
    evalkit("score", run, "--metrics", "toyworld", "--opt", f"toyworld.bootstrap={args.bootstrap}")
    return run


def figure(records: list[dict], path: Path) -> Path:
    """Left: accuracy against encoder depth (U-Net 1x); right: against U-Net parameters (encoder 6)."""
    plt = agg_pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    shown = ("all", "colour", "position", "binding", "count")
    by_label = {r["model"]: r for r in records}
    encoders = [by_label[m.label] for m in MODELS if m.width == 1.0 and m.label in by_label]
    unets = sorted((by_label[m.label] for m in MODELS if m.encoder_layers == 6 and m.label in by_label),
                   key=lambda r: r["parameters"])
    for question in shown:
        for axis, rows, x in ((left, encoders, "encoder_layers"), (right, unets, "parameters")):
            if not rows:
                continue
            measured = [r for r in rows if r["stats"][question].get("value") is not None]
            if not measured:  # no prompt of this kind among the chosen ones
                continue
            values = [r["stats"][question] for r in measured]
            xs = [r[x] for r in measured]
            axis.errorbar(xs, [v["value"] for v in values],
                          yerr=[[v["value"] - v["low"] for v in values], [v["high"] - v["value"] for v in values]],
                          marker="o", capsize=3, label=question)
    left.set_xlabel("MiniLM layers kept (U-Net 1x)")
    left.set_xticks([0, 2, 4, 6])
    right.set_xlabel("U-Net parameters (6-layer encoder)")
    right.set_xscale("log")
    left.set_ylabel("toy-world accuracy (95% interval)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle("Text encoder size vs U-Net size, same training budget")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=560, help="training steps of every model")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--lr", type=positive_float, default=8e-4)
    parser.add_argument("--warmup-steps", type=positive_int, default=50)
    parser.add_argument("--ema-decay", type=float_range(0, 1, closed_high=False), default=0.995)
    parser.add_argument("--seed", type=int_range(0, 2**31 - 1), default=0)
    parser.add_argument("--save-every", type=positive_int, default=100)
    parser.add_argument("--dim", type=positive_int, default=24, help="the 1x U-Net's base channel width")
    parser.add_argument("--unet-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="a U-Net setting every model shares (passed as --model-opt to evalkit train)")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="bases trained at once, the CPU cores split between them (their training seconds then "
                             "count shared cores)")
    parser.add_argument("--benchmark", default="toyworld")
    parser.add_argument("--prompts", type=positive_int, default=200)
    parser.add_argument("--images-per-prompt", type=int_range(2, MAX_IMAGES_PER_PROMPT), default=2)
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="toy-world bootstrap replicates")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16", help="sampling arithmetic")
    parser.add_argument("--only", default=",".join(m.slug for m in MODELS),
                        help=f"comma-separated rows of {', '.join(m.slug for m in MODELS)} (the reference enc6 is "
                             "always included)")
    parser.add_argument("--runs", type=Path, default=Path("runs") / "scaling")
    parser.add_argument("--out", type=Path, default=Path("reports") / "imagen" / "scaling")
    args = parser.parse_args(argv)
    slugs = {item.strip() for item in args.only.split(",") if item.strip()} | {"enc6"}
    unknown = sorted(slugs - {m.slug for m in MODELS})
    if unknown:
        raise EvalkitError(f"--only: unknown row {unknown[0]!r} (choose from {', '.join(m.slug for m in MODELS)})")
    chosen = [m for m in MODELS if m.slug in slugs]
    folders = train_all(args, chosen)
    runs = {label: evaluate(args, folder) for label, folder in folders.items()}
    command = (f"python -m evalkit.experiments.scaling_study --steps {args.steps} --batch-size {args.batch_size} "
               f"--lr {args.lr:g} --ema-decay {args.ema_decay:g} --dim {args.dim}"
               f"{''.join(f' --unet-opt {o}' for o in args.unet_opt)} --benchmark "
               f"{args.benchmark} --prompts {args.prompts} --images-per-prompt {args.images_per_prompt} --only "
               f"{','.join(m.slug for m in chosen)} --jobs {args.jobs}")
    header = ["model", "encoder layers", "U-Net parameters", *QUESTIONS, f"'all' vs {REFERENCE} (paired)",
              f"position vs {REFERENCE} (paired)", "training s"]
    lines = ["# Text encoder size vs U-Net size", "", f"`{command}` ({os.cpu_count()} CPU threads"
             f"{f', {args.jobs} trainings at a time' if args.jobs > 1 else ''}). Every model: `evalkit train "
             f"imagen --stage base` for {args.steps} steps at batch {args.batch_size} (lr {args.lr:g}, EMA "
             f"{args.ema_decay:g}, seed {args.seed}), then `evalkit run --model imagen --model-path MODEL --opt stages=1 "
             "--benchmark "
             f"{args.benchmark} --limit {args.prompts} --images-per-prompt {args.images_per_prompt}` and `evalkit "
             "score RUN --metrics toyworld`; paired comparisons by `evalkit compare` (same prompts and seeds). "
             "Intervals are 95%.", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    records = []
    for model in chosen:
        run = runs[model.label]
        found = overall_stats(run, [f"toyworld.{q}" for q in QUESTIONS])
        stats = {name.removeprefix("toyworld."): value for name, value in found.items()}
        changes = compare(runs[REFERENCE], run) if model.label != REFERENCE else {}
        count = parameters(folders[model.label])
        seconds = training_seconds(folders[model.label])
        lines.append("| " + " | ".join([
            f"**{model.label}**" if model.label == REFERENCE else model.label, str(model.encoder_layers),
            f"{count / 1e6:.2f}M", *(cell(stats[q], True) for q in QUESTIONS),
            change_cell(changes.get("toyworld.all"), True), change_cell(changes.get("toyworld.position"), True),
            f"{seconds:.0f}"]) + " |")
        records.append({"model": model.label, "slug": model.slug, "encoder_layers": model.encoder_layers,
                        "width": model.width, "parameters": count, "training_seconds": seconds, "run": run.name,
                        "stats": stats, "paired_vs_reference": {k: v for k, v in changes.items()
                                                                if k in ("toyworld.all", "toyworld.position")}})
    args.out.mkdir(parents=True, exist_ok=True)
    figure(records, args.out / "scaling.png")
    report_dir = args.out / "report"
    evalkit("report", *runs.values(), "--out", report_dir, "--title", "Text encoder size vs U-Net size",
            *[item for label, run in runs.items() for item in ("--label", f"{run}={label}")])
    lines += ["", "![accuracy against encoder depth and U-Net size](scaling.png)", "",
              f"Per-category tables and image grids: `{report_dir / 'report.html'}` (`evalkit report` of these runs).",
              ""]
    write_report(args.out / "scaling.md", "\n".join(lines))
    write_report(args.out / "scaling.json", json.dumps({"command": command, "rows": records}, indent=1))
    print(f"wrote {args.out / 'scaling.md'}")
    return 0


if __name__ == "__main__":
    run_as_script(main)
