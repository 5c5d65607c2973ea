"""Speed of the built-in Imagen vs lucidrains' imagen-pytorch at a matched configuration, in one process.

    python benchmarks/perf/imagen_bench.py [--threads 2] [--batch 32] [--repeats 5] [--drawbench-batch 8]
        -> reports/perf/imagen.md

Matched: base U-Net at 32x32, width 48, channel multipliers (1, 2, 2), 2 residual blocks per level, text
attention at the two lower levels, 384-d text tokens (MiniLM's width), 16 tokens, batch 32. Measured:
  * training step: forward + MSE + backward + AdamW on one batch (each library's own U-Net);
  * sampling step: one classifier-free-guided noise prediction (w = 4) for the batch;
  * `evalkit run --model imagen` cost per image with the adapter's defaults, extrapolated to DrawBench 200 x 4.
Timings alternate between the two models and report medians, so CPU contention hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def import_imagen_pytorch():
    """imagen_pytorch reads T5's config from the Hub at import time; serve a local config instead (offline)."""
    import transformers

    transformers.T5Config.from_pretrained = classmethod(lambda cls, *a, **k: transformers.T5Config(d_model=768))
    import imagen_pytorch

    return imagen_pytorch


def timed(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# Measured by hand (a whole run is too long for this script); keep it with the command that produced it.
FULL_RUN_NOTE = [
    "Full run (shipped SR defaults of 2 static-thresholded steps): `EVALKIT_DATA=../shared/benchmarks "
    "/usr/bin/time -v evalkit run --model imagen --out /tmp/dbrun` on 2 CPU cores -> 800 images, exit 0, "
    "10:00 wall clock, peak RSS 1.1 GB, first base (base w = 3 static clipping; with w = 4 dynamic: 9:53; with 4 dynamic-thresholded SR steps: 11:05).",
    "",
]


def stage_summary(adapter) -> str:
    """'3 stages 32->64->128: base dpm++2m 20 steps w=4, sr1 ...' from the loaded cascade's own defaults."""
    stages = adapter.cascade.stages
    sizes = "->".join(str(s.image_size) for s in stages)
    parts = [f"{s.name} {s.sampling.sampler} {s.sampling.steps} steps w={s.sampling.guidance:g} {s.sampling.threshold}"
             for s in stages]
    return f"{len(stages)} stages {sizes}: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--drawbench-batch", type=int, default=8)
    parser.add_argument("--out", default=str(REPO / "reports" / "perf" / "imagen.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from evalkit.imagen.diffusion import Schedule, diffusion_loss
    from evalkit.imagen.efficient_unet import build_model
    from evalkit.imagen.presets import model_config
    from evalkit.imagen.sampling import guided_prediction

    ip = import_imagen_pytorch()
    B, L, D = args.batch, 16, 384
    x = torch.randn(B, 3, 32, 32)
    tokens, mask = torch.randn(B, L, D), torch.ones(B, L, dtype=torch.bool)
    schedule = Schedule("cosine")

    ours = build_model(model_config("base", D))
    theirs = ip.Unet(dim=48, dim_mults=(1, 2, 2), num_resnet_blocks=2, text_embed_dim=D, cond_dim=256,
                     layer_attns=(False, True, True), layer_cross_attns=(False, True, True), attn_heads=4,
                     attn_dim_head=32, max_text_len=L)
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in (("evalkit", ours), ("imagen-pytorch", theirs))}
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    opt_theirs = torch.optim.AdamW(theirs.parameters(), lr=1e-4)

    def train_ours():
        loss = diffusion_loss(ours.train(), schedule, x, tokens, mask)
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()

    def train_theirs():
        t = torch.rand(B)
        noise = torch.randn_like(x)
        alpha, sigma = schedule.alpha_sigma(t)
        x_t = alpha[:, None, None, None] * x + sigma[:, None, None, None] * noise
        pred = theirs.train()(x_t, t, text_embeds=tokens, text_mask=mask, cond_drop_prob=0.1)
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt_theirs.zero_grad()
        loss.backward()
        opt_theirs.step()

    t_half = torch.full((1,), 0.5)

    @torch.no_grad()
    def sample_ours():
        guided_prediction(ours.eval(), x, t_half, tokens, mask, 4.0)

    @torch.no_grad()
    def sample_theirs():
        theirs.eval().forward_with_cond_scale(x, t_half.expand(B), text_embeds=tokens, text_mask=mask, cond_scale=4.0)

    results = {}
    for label, a, b in (("training step", train_ours, train_theirs), ("sampling step (guided, w=4)", sample_ours, sample_theirs)):
        ta, tb = [], []
        for _ in range(args.repeats):  # alternate so that load on the machine hits both alike
            ta += timed(a, 1)
            tb += timed(b, 1)
        results[label] = (statistics.median(ta), statistics.median(tb))
        print(f"{label}: evalkit {results[label][0]:.3f}s  imagen-pytorch {results[label][1]:.3f}s", flush=True)

    # End-to-end: the adapter's defaults, one image per prompt, a batch of made-up toy prompts.
    from evalkit.adapters.base import AdapterOptions, GenerationBatch
    from evalkit.adapters.imagen import create

    adapter = create(AdapterOptions())
    prompts = [f"{n} red circles and a blue square" for n in range(args.drawbench_batch)]
    seeds = list(range(args.drawbench_batch))
    size = adapter.default_size
    adapter.generate(GenerationBatch(prompts[:1], seeds[:1], *size))  # loads the text encoder
    start = time.perf_counter()
    adapter.generate(GenerationBatch(prompts, seeds, *size))
    per_image = (time.perf_counter() - start) / len(prompts)
    drawbench_minutes = per_image * 800 / 60
    print(f"adapter: {per_image:.2f}s per image -> DrawBench 200x4 ~ {drawbench_minutes:.1f} min", flush=True)

    lines = [
        "# Imagen speed: evalkit vs imagen-pytorch",
        "",
        f"Command: `python benchmarks/perf/imagen_bench.py --threads {args.threads} --batch {B} --repeats {args.repeats}"
        f" --drawbench-batch {args.drawbench_batch}`; torch {torch.__version__}, {args.threads} CPU threads, "
        f"`{torch.get_num_threads()}` used; medians of {args.repeats} alternating repeats.",
        "",
        f"Matched base U-Net: 32x32, width 48, mults (1,2,2), 2 res blocks/level, text attention at the 2 lower levels, "
        f"batch {B}, {L} text tokens of width {D}. Parameters: evalkit {params['evalkit'] / 1e6:.2f}M, "
        f"imagen-pytorch {params['imagen-pytorch'] / 1e6:.2f}M (its defaults add cross-embed stem, global-context "
        "attention, attention-pooled latents).",
        "",
        "| measurement | evalkit (s) | imagen-pytorch (s) | ratio (goal <= 0.8) |",
        "| --- | --- | --- | --- |",
    ]
    for label, (a, b) in results.items():
        lines.append(f"| {label} | {a:.3f} | {b:.3f} | {a / b:.2f} |")
    lines += [
        "",
        f"`evalkit run --model imagen` defaults ({stage_summary(adapter)}): "
        f"{per_image:.2f} s per image in a batch of {args.drawbench_batch}; DrawBench 200 x 4 = 800 images "
        f"-> about {drawbench_minutes:.1f} minutes (extrapolated, not a full run; goal <= 10).",
        "",
        *FULL_RUN_NOTE,
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
