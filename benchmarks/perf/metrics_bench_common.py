"""What every part of metrics_bench.py shares: synthetic images, timing, the machine's measured fp32 limit, and a
record of the machine and its load next to each number."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# 2 x multiply-adds of Inception-v3 at 299 x 299 (5.7 G multiply-adds; the 1000-way head is not run).
INCEPTION_GFLOP = 11.4


def make_images(folder: Path, count: int, seed: int, size: int = 256) -> Path:
    """Smooth random colour fields saved as PNG (upsampled 8 x 8 noise), so every network sees varied inputs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        coarse = rng.uniform(0, 255, size=(8, 8, 3))
        Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.BICUBIC).save(folder / f"{i:05d}.png")
    return folder


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f in flags)
    except OSError:
        pass
    return []


def machine() -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "flags": cpu_flags(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version()}


def matmul_gflops(n: int = 4096, repeats: int = 3) -> float:
    """fp32 GFLOP/s of an n x n x n torch matmul on the current torch threads: best of ``repeats`` after a warm-up
    (the best is the machine's limit; contention only lowers it)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def spread(values: list[float]) -> float:
    """(max - min) / max of repeated measurements: how noisy the repeats were."""
    return (max(values) - min(values)) / max(values) if values and max(values) > 0 else 0.0


def openvino_matmul_gflops(n: int = 4096, repeats: int = 3) -> float | None:
    """The same product run by OpenVINO (oneDNN's kernels, which the network's convolutions also use) on the
    torch thread count: on AMD CPUs torch's MKL sgemm may not reach the machine's peak, so the larger of the two
    is the stricter limit. None without openvino."""
    try:
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError:
        return None
    x = ops.parameter([n, n], ov.Type.f32)
    weights = ops.constant(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    model = ov.Model([ops.matmul(x, weights, False, False)], [x])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                                      "INFERENCE_NUM_THREADS": torch.get_num_threads()})
    request, data = compiled.create_infer_request(), np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    request.infer({0: data})
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer({0: data})
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9
