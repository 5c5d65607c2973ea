"""Speed of the built-in Imagen vs lucidrains' imagen-pytorch at a matched configuration, in one process.

    python benchmarks/perf/imagen_bench.py [--threads 2] [--batch 32] [--repeats 5] [--drawbench-batch 8]
        -> reports/perf/imagen.md

Matched: base U-Net at 32x32, width 48, channel multipliers (1, 2, 2), 2 residual blocks per level, text
attention at the two lower levels, 384-d text tokens (MiniLM's width), 16 tokens, batch 32. Measured:
  * training step: forward + MSE + backward + AdamW on one batch (each library's own U-Net);
  * sampling step: one classifier-free-guided noise prediction (w = 4) for the batch, in float32 and under
    bfloat16 autocast (the adapter's `precision` option), each library alike;
  * the machine's limit: float32 and bfloat16 matmul throughput (4096^2, the best of the repeats), against the
    sampling step's achieved rate (its FLOPs counted by torch.utils.flop_counter);
  * `evalkit run --model imagen` cost per image with the adapter's defaults at each precision, extrapolated to
    DrawBench 200 x 4.
Timings alternate between the compared settings and report medians, so CPU contention hits all alike.
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
FULL_RUN_NOTE_FILE = REPO / "reports" / "perf" / "imagen_full_run.md"


def matmul_rate(dtype, repeats: int, n: int = 4096) -> float:
    """The machine's measured limit for dense arithmetic in `dtype`: GFLOP/s of an n x n matmul, best of repeats."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    best = min(timed(lambda: a @ b, repeats))
    return 2 * n**3 / best / 1e9


def flops_of(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def alternating(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, the callables interleaved repeat by repeat."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_once(fn))
    return {name: statistics.median(values) for name, values in times.items()}


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stage_summary(adapter) -> str:
    """'3 stages 32->64->128: base dpm++2m 20 steps w=4, sr1 ...' from the loaded cascade's own defaults."""
    stages = adapter.cascade.stages
    sizes = "->".join(str(s.image_size) for s in stages)
    parts = [f"{s.name} {s.sampling.sampler} {s.sampling.steps} steps w={s.sampling.guidance:g}"
             + (f" from t >= {s.sampling.guidance_min_t:g}" if s.sampling.guidance_min_t else "")
             + f" {s.sampling.threshold}" for s in stages]
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

    def under(precision: str, fn):
        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                fn()
        return run

    def sample_ours():
        guided_prediction(ours.eval(), x, t_half, tokens, mask, 4.0)

    def sample_theirs():
        theirs.eval().forward_with_cond_scale(x, t_half.expand(B), text_embeds=tokens, text_mask=mask, cond_scale=4.0)

    results = {}
    pairs = (("training step", train_ours, train_theirs),
             ("sampling step (guided, w=4), float32", under("fp32", sample_ours), under("fp32", sample_theirs)),
             ("sampling step (guided, w=4), bfloat16 autocast", under("bf16", sample_ours), under("bf16", sample_theirs)))
    for label, a, b in pairs:
        ta, tb = [], []
        for _ in range(args.repeats):  # alternate so that load on the machine hits both alike
            ta += timed(a, 1)
            tb += timed(b, 1)
        results[label] = (statistics.median(ta), statistics.median(tb), max(ta) / min(ta), max(tb) / min(tb))
        print(f"{label}: evalkit {results[label][0]:.3f}s  imagen-pytorch {results[label][1]:.3f}s", flush=True)

    sampling_flops = flops_of(sample_ours)  # with autograd on: the flop counter's module hooks need grad_fn
    limits = {"fp32": matmul_rate(torch.float32, args.repeats), "bf16": matmul_rate(torch.bfloat16, args.repeats)}
    achieved = {"fp32": sampling_flops / results["sampling step (guided, w=4), float32"][0] / 1e9,
                "bf16": sampling_flops / results["sampling step (guided, w=4), bfloat16 autocast"][0] / 1e9}
    print(f"matmul limit GFLOP/s {limits}; sampling step achieves {achieved}", flush=True)

    # End-to-end: the adapter's defaults, one image per prompt, a batch of made-up toy prompts.
    from evalkit.adapters.base import AdapterOptions, GenerationBatch
    from evalkit.adapters.imagen import create

    adapters = {precision: create(AdapterOptions(extra={"precision": precision})) for precision in ("fp32", "bf16")}
    adapter = adapters["bf16"]
    prompts = [f"{n} red circles and a blue square" for n in range(args.drawbench_batch)]
    seeds = list(range(args.drawbench_batch))
    size = adapter.default_size
    for each in adapters.values():
        each.generate(GenerationBatch(prompts[:1], seeds[:1], *size))  # loads the text encoder
    per_batch = alternating({p: (lambda a=a: a.generate(GenerationBatch(prompts, seeds, *size)))
                             for p, a in adapters.items()}, max(1, args.repeats // 2))
    per_image = {p: per_batch[p] / len(prompts) for p in adapters}
    for p, seconds in per_image.items():
        print(f"adapter {p}: {seconds:.3f}s per image -> DrawBench 200x4 ~ {seconds * 800 / 60:.1f} min", flush=True)

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
        "| measurement | evalkit (s) | imagen-pytorch (s) | ratio (goal <= 0.8) | max/min of repeats (evalkit, imagen-pytorch) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, (a, b, spread_a, spread_b) in results.items():
        lines.append(f"| {label} | {a:.3f} | {b:.3f} | {a / b:.2f} | {spread_a:.2f}, {spread_b:.2f} |")
    lines += [
        "",
        f"Machine limit (an n = 4096 matmul, best of {args.repeats}): float32 {limits['fp32']:.0f} GFLOP/s, bfloat16 "
        f"{limits['bf16']:.0f} GFLOP/s. evalkit's sampling step is {sampling_flops / 1e9:.1f} GFLOP "
        f"(torch.utils.flop_counter: convolutions, matmuls and attention) and runs at {achieved['fp32']:.0f} GFLOP/s "
        f"({achieved['fp32'] / limits['fp32']:.0%} of the float32 limit) in float32, {achieved['bf16']:.0f} GFLOP/s "
        f"({achieved['bf16'] / limits['bf16']:.0%} of the bfloat16 limit) under bfloat16 autocast (autocast runs "
        "convolutions and matmuls in bfloat16 and group norm in float32).",
        "",
        f"`evalkit run --model imagen` defaults ({stage_summary(adapter)}), a batch of {args.drawbench_batch}, "
        f"medians of {max(1, args.repeats // 2)} alternating repeats: "
        + "; ".join(f"precision={p} {s:.3f} s per image (DrawBench 200 x 4 = 800 images -> about {s * 800 / 60:.1f} "
                    "minutes, extrapolated)" for p, s in per_image.items())
        + f"; bf16/fp32 = {per_image['bf16'] / per_image['fp32']:.2f}.",
        "",
    ]
    if FULL_RUN_NOTE_FILE.is_file():
        lines += ["## Full runs", "", FULL_RUN_NOTE_FILE.read_text().strip(), ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
