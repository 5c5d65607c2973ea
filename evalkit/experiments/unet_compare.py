"""Efficient U-Net vs a plain U-Net of about its size (paper App. B.1), as the 32 -> 64 SR stage, in one process.

    python -m evalkit.experiments.unet_compare [--steps 300] [--batch 32] [--threads 2]
        -> reports/imagen/unet_compare.md, unet_compare.png

Both U-Nets (presets `--unet efficient` and `--unet plain` of `evalkit train imagen --stage sr1`) train from scratch
on the same toy-world batches with the same settings; their steps alternate, so CPU contention hits both alike.
Measured: the median time of a training step and of one sampling forward pass (batch 8), and the plain eps-MSE on a
fixed validation set (`--validation` scenes, 64 by default, drawn with another seed than the training batches; fixed
t, noise and aug level 0) every `--eval-every` steps, compared at equal steps and at equal training time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from evalkit.cli.args import positive_float, positive_int
from evalkit.experiments.common import REPORTS_DIR, agg_pyplot, run_as_script, save_figure, write_report

KINDS = ("efficient", "plain")


@torch.no_grad()
def validation_loss(trainer, batch) -> float:
    from evalkit.imagen.diffusion import diffusion_loss

    images, lowres, captions, _ = batch
    text = trainer.text_encoder.encode(captions)
    model = trainer.model.eval()
    generator = torch.Generator().manual_seed(1234)  # same t and noise for every evaluation and both models
    loss = diffusion_loss(model, trainer.schedule, images, text.tokens, text.mask, lowres, torch.zeros(images.shape[0]),
                          generator=generator, weighting="none")
    return float(loss)


def sampling_forward_seconds(trainer, batch, repeats: int = 5) -> float:
    """Median seconds of one forward pass at sampling (batch 8, or the validation set if smaller)."""
    images, lowres, captions, _ = batch
    n = min(8, len(captions))
    text = trainer.text_encoder.encode(captions[:n])
    model = trainer.model.eval()
    args = (torch.randn_like(images[:n]), torch.full((n,), 0.5), text.tokens, text.mask, lowres[:n], torch.zeros(n))
    with torch.no_grad():
        model(*args)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(*args)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_both(args, scratch: Path):
    """Train both U-Nets on the same batches, steps interleaved; returns (params, step_times, forward, curves)."""
    from tqdm import tqdm

    from evalkit.imagen.data import StageBatches
    from evalkit.imagen.text_encoders import load_text_encoder
    from evalkit.imagen.train import TrainConfig, Trainer

    encoder = load_text_encoder({"kind": "minilm", "max_tokens": 32})
    trainers = {}
    for kind in KINDS:
        config = TrainConfig(stage="sr1", unet=kind, out=str(scratch / kind), steps=args.steps, batch_size=args.batch,
                             lr=args.lr, warmup_steps=min(50, args.steps // 5), device="cpu", seed=0, resume=False)
        trainers[kind] = Trainer(config, text_encoder=encoder)
    params = {k: sum(p.numel() for p in t.model.parameters()) for k, t in trainers.items()}
    data = StageBatches("toyworld", 64, 32, args.batch, seed=0)
    held_out = StageBatches("toyworld", 64, 32, args.validation, seed=777)[0]  # scenes the training never drew
    curves = {k: [(0, 0.0, validation_loss(t, held_out))] for k, t in trainers.items()}
    step_times = {k: [] for k in KINDS}
    for step in tqdm(range(args.steps), desc="train sr1 (both U-Nets)", unit="step", disable=args.quiet):
        batch = data[step]
        order = KINDS if step % 2 == 0 else KINDS[::-1]
        for kind in order:
            start = time.perf_counter()
            trainers[kind].train_step(*batch)
            step_times[kind].append(time.perf_counter() - start)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            for kind, trainer in trainers.items():
                curves[kind].append((step + 1, sum(step_times[kind]), validation_loss(trainer, held_out)))
    forward = {k: sampling_forward_seconds(t, held_out) for k, t in trainers.items()}
    return params, step_times, forward, curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.unet_compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=positive_int, default=300)
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--lr", type=positive_float, default=5e-4)
    parser.add_argument("--eval-every", type=positive_int, default=25)
    parser.add_argument("--validation", type=positive_int, default=64, help="validation scenes")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "unet_compare.md", help="report; the plot goes beside it")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="unet-compare-") as scratch:
        results = train_both(args, Path(scratch))
    write_results(args, *results, args.out)
    return 0


def loss_at_time(curve, seconds: float) -> float:
    """Validation loss at a training time, linearly interpolated between evaluations."""
    for (s0, t0, l0), (s1, t1, l1) in zip(curve, curve[1:]):
        if t0 <= seconds <= t1:
            return l0 + (l1 - l0) * (seconds - t0) / max(t1 - t0, 1e-9)
    return curve[-1][2]


def report_text(args, params, step_times, forward, curves, figure_name: str) -> str:
    median = {k: statistics.median(v) for k, v in step_times.items()}
    budget = min(curves[k][-1][1] for k in KINDS)  # the training time both reached
    lines = [
        "# Efficient U-Net vs a plain U-Net (paper App. B.1), 32 -> 64 super-resolution",
        "",
        f"`python -m evalkit.experiments.unet_compare --steps {args.steps} --batch {args.batch} --threads {args.threads}` "
        f"(CPU, {args.threads} threads; both from scratch, lr {args.lr:g}, AdamW, same toy-world batches, steps "
        f"interleaved). Validation: plain eps-MSE on {args.validation} scenes drawn with another seed than the "
        "training batches, fixed t and noise, aug level 0.",
        "",
        "| U-Net | parameters | training step (median) | sampling forward, batch 8 | "
        f"val loss after {args.steps} steps | val loss after {budget:.0f} s of training |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind in KINDS:
        lines.append(f"| {kind} | {params[kind] / 1e6:.2f}M | {median[kind]:.3f} s | {forward[kind] * 1000:.0f} ms | "
                     f"{curves[kind][-1][2]:.4f} | {loss_at_time(curves[kind], budget):.4f} |")
    ratio = median["efficient"] / median["plain"]
    lines += ["", f"Efficient / plain: training step time x{ratio:.2f}, sampling forward "
                  f"x{forward['efficient'] / forward['plain']:.2f}.", "", f"![validation loss]({figure_name})", ""]
    lines += ["| step | " + " | ".join(f"{k} seconds | {k} val loss" for k in KINDS) + " |",
              "| --- |" + " --- | --- |" * len(KINDS)]
    for rows in zip(*(curves[k] for k in KINDS)):
        lines.append(f"| {rows[0][0]} | " + " | ".join(f"{t:.0f} | {loss:.4f}" for _, t, loss in rows) + " |")
    return "\n".join(lines) + "\n"


def loss_figure(curves):
    plt = agg_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for kind in KINDS:
        steps, seconds, losses = zip(*curves[kind])
        axes[0].plot(steps, losses, marker=".", label=kind)
        axes[1].plot(seconds, losses, marker=".", label=kind)
    axes[0].set_xlabel("training step")
    axes[1].set_xlabel("training seconds (CPU)")
    for axis in axes:
        axis.set_ylabel("validation eps-MSE")
        axis.set_yscale("log")
        axis.legend()
    fig.suptitle("SR 32->64: Efficient U-Net vs plain U-Net of similar size")
    fig.tight_layout()
    return fig


def write_results(args, params, step_times, forward, curves, out: Path) -> None:
    """The Markdown report at `out` and its loss plot beside it (same name, .png)."""
    figure = out.with_suffix(".png")
    write_report(out, report_text(args, params, step_times, forward, curves, figure.name))
    save_figure(loss_figure(curves), figure, dpi=110)
    print(f"wrote {out} and {figure}")


if __name__ == "__main__":
    run_as_script(main)
