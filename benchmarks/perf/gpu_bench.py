"""Throughput on one accelerator (or the CPU) of the three things COCO FID-30K costs, and its projected wall time.

    python benchmarks/perf/gpu_bench.py [--device cuda] [--out reports/perf/gpu.md]
    python benchmarks/perf/gpu_bench.py --device cpu --quick          # a seconds-long check that it runs

Measured, each after one warm-up batch, medians over ``--repeats`` timed batches:
  * Inception pool3 (evalkit's extractor, FID's network): images/s of the network on preprocessed 299 x 299
    batches, and end to end from PNG files on disk (decode + resize threads + network), the rate a score sees.
    Weights: a randomly initialised network saved in the real format (no hub here); the cost is the same.
  * the built-in Imagen cascade (shipped checkpoint, 32 -> 64 -> 128, adapter defaults): images/s.
  * a tiny diffusers StableDiffusionPipeline (tests/fixtures_tiny_pipeline.py) through evalkit's diffusers
    adapter: images/s — the adapter's own overhead, not a real model's cost.
Projected COCO FID-30K wall time for a model = 30,000 / its images/s + 30,000 / Inception's end-to-end images/s
(the reference statistics of the real images are computed once and reused). The card is named in the output.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

COCO_FID_IMAGES = 30_000


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(fn, images_per_call: int, repeats: int, device: str) -> tuple[float, list[float]]:
    """Median images/s of ``fn`` (one warm-up call first) and the per-call seconds."""
    fn()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return images_per_call / statistics.median(seconds), seconds


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{model}, {torch.get_num_threads()} torch threads"


def inception_rates(device: str, batch: int, repeats: int, workdir: Path) -> dict[str, float]:
    from PIL import Image

    from evalkit.metrics import inception
    from evalkit.metrics.extractors.inception import InceptionFeatures

    weights = inception.save_random_weights(workdir / "random-inception.pth", seed=0)
    extractor = InceptionFeatures(weights, device=device, batch_size=batch, workers=4, backend="torch")
    forward = extractor.network()
    inputs = torch.rand(batch, 3, inception.INPUT_SIZE, inception.INPUT_SIZE, device=device) * 255
    network, _ = rate(lambda: forward(inputs), batch, repeats, device)
    folder = workdir / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(batch * 2):  # COCO-like 256 x 256 files
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    paths = sorted(folder.iterdir())
    files, _ = rate(lambda: extractor.compute(paths), len(paths), repeats, device)
    return {"network": network, "files": files}


def cascade_rate(device: str, batch: int, repeats: int) -> float:
    from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter

    adapter = create_adapter("imagen", AdapterOptions(device=device))
    prompts = [f"a red circle above a blue square {i}" for i in range(batch)]
    generation = GenerationBatch(prompts, list(range(batch)), *adapter.default_size)
    return rate(lambda: adapter.generate(generation), batch, repeats, device)[0]


def diffusers_rate(device: str, batch: int, repeats: int, workdir: Path) -> float:
    from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
    from tests.fixtures_tiny_pipeline import make_tiny_pipeline

    path = make_tiny_pipeline(workdir / "tiny-sd")
    adapter = create_adapter("diffusers", AdapterOptions(model_path=str(path), device=device, extra={"steps": "10"}))
    generation = GenerationBatch(["a photo of a cat"] * batch, list(range(batch)), 64, 64)
    return rate(lambda: adapter.generate(generation), batch, repeats, device)[0]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def report(device: str, name: str, inc: dict[str, float], cascade: float, tiny: float, command: str) -> str:
    inception_s = COCO_FID_IMAGES / inc["files"]
    rows = [("built-in Imagen cascade (128 px)", cascade), ("tiny diffusers pipeline (64 px, 10 steps)", tiny)]
    lines = [
        f"# Throughput on {name}", "",
        f"Device `{device}`; torch {torch.__version__}; measured {time.strftime('%Y-%m-%d')} by `{command}`.", "",
        "| what | images/s |", "|---|---|",
        f"| Inception pool3, network only (299 x 299 batches) | {inc['network']:.1f} |",
        f"| Inception pool3, from 256 px PNG files (decode + resize + network) | {inc['files']:.1f} |",
    ]
    lines += [f"| {label} | {value:.2f} |" for label, value in rows]
    lines += ["", "Projected COCO FID-30K wall time (30,000 generated images, then their Inception features; the real "
              "images' statistics are computed once):", "", "| model | generation | Inception | total |", "|---|---|---|---|"]
    for label, value in rows:
        generation = COCO_FID_IMAGES / value
        lines.append(f"| {label} | {hours(generation)} | {hours(inception_s)} | {hours(generation + inception_s)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--inception-batch", type=int, default=200)
    parser.add_argument("--cascade-batch", type=int, default=64)
    parser.add_argument("--diffusers-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny batches, 1 repeat: checks that it runs")
    parser.add_argument("--out", type=Path, help="write the Markdown table here (e.g. reports/perf/gpu.md)")
    args = parser.parse_args(argv)
    if args.quick:
        args.inception_batch, args.cascade_batch, args.diffusers_batch, args.repeats = 4, 2, 2, 1
    name = device_name(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        inc = inception_rates(args.device, args.inception_batch, args.repeats, Path(tmp))
        cascade = cascade_rate(args.device, args.cascade_batch, args.repeats)
        tiny = diffusers_rate(args.device, args.diffusers_batch, args.repeats, Path(tmp))
    text = report(args.device, name, inc, cascade, tiny, "python benchmarks/perf/gpu_bench.py " + " ".join(argv or sys.argv[1:]))
    print(text)
    if args.out:
        from evalkit import atomic

        atomic.write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
