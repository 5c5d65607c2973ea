"""Part (f) of metrics_bench.py: peak RSS and time of the metrics that need whole feature sets (KID, CMMD, PRDC) and
of streaming statistics + Frechet distance, at N x 2048 float32 random features per side, each in a fresh process
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the process's peak, so one metric per process).

Features are Inception-like (non-negative, post-ReLU, a 32-d common structure plus noise); CMMD gets them
L2-normalised, as CLIP embeddings are. They are generated in blocks of 1,000 rows so that generating them adds no
temporaries to the peak: ``inputs_rss_mib`` is the peak before the metric starts (torch + numpy + both inputs).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from metrics_bench_common import load_average

WHAT = ("stats", "kid", "cmmd", "prdc")
DIM = 2048
GOAL_MIB = 4096


def features(n: int, shift: float, rng: np.random.Generator, basis: np.ndarray) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 1000):
        rows = min(1000, n - start)
        z = rng.normal(shift, 1.0, size=(rows, basis.shape[0])).astype(np.float32)
        noise = rng.normal(size=(rows, DIM)).astype(np.float32)
        out[start : start + rows] = np.maximum(z @ basis / 6 + 0.3 * noise + 0.4, 0)
    return out


def _measure(what: str, real: np.ndarray, fake: np.ndarray):
    if what == "stats":
        from evalkit.metrics.frechet import FrechetReference
        from evalkit.metrics.stats import FeatureStats

        sides = []
        for feats in (real, fake):
            stats = FeatureStats(DIM)
            for start in range(0, len(feats), 500):  # as the extractor hands them over, a batch at a time
                stats.update(feats[start : start + 500])
            sides.append(stats.compute())
        return FrechetReference(sides[0].mu, sides[0].sigma).distance(sides[1].mu, sides[1].sigma)
    if what == "kid":
        import torch

        from evalkit.metrics.kid import kernel_inception_distance

        return kernel_inception_distance(real, fake, subsets=100, subset_size=1000,
                                         generator=torch.Generator().manual_seed(0))["kid"]
    if what == "cmmd":
        from evalkit.metrics.cmmd import cmmd

        real /= np.linalg.norm(real, axis=1, keepdims=True)
        fake /= np.linalg.norm(fake, axis=1, keepdims=True)
        return cmmd(real, fake)
    if what == "prdc":
        from evalkit.metrics.prdc import prdc

        return {k: v for k, v in prdc(real, fake).items() if k in ("precision", "recall", "density", "coverage")}
    raise SystemExit(f"unknown measurement {what!r}")


def child(what: str, n: int) -> None:
    import torch  # imported before the baseline, as every metric needs it

    rng = np.random.default_rng(0)
    basis = rng.normal(size=(32, DIM)).astype(np.float32)
    real, fake = features(n, 0.0, rng, basis), features(n, 0.2, rng, basis)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    value = _measure(what, real, fake)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps({"what": what, "n": n, "dim": DIM, "seconds": seconds, "cpu_seconds": cpu, "value": value,
                      "peak_rss_mib": after.ru_maxrss / 1024, "inputs_rss_mib": before.ru_maxrss / 1024,
                      "threads": torch.get_num_threads()}))


def part_f(n: int) -> dict:
    out = {"n": n, "dim": DIM}
    script = str(Path(__file__).resolve().parent / "metrics_bench.py")
    for what in WHAT:
        load = load_average()
        done = subprocess.run([sys.executable, script, "--memory-child", what, str(n)], capture_output=True,
                              text=True, check=True)
        out[what] = json.loads(done.stdout.strip().splitlines()[-1]) | {"load_before": load}
        print(json.dumps(out[what]), flush=True)
    return out


LABELS = {"stats": "streaming mean/covariance + Frechet distance (FID)", "kid": "KID, 100 subsets of 1,000",
          "cmmd": "CMMD (Gaussian RBF, sigma 10, biased estimator), float64 row blocks",
          "prdc": "precision/recall (k=3) + density/coverage (k=5), row blocks"}


def section_f(runs: list[dict]) -> list[str]:
    lines = ["## (f) Memory and time at 30,000 x 2048 features per side", "",
             "Each metric in a fresh process on random Inception-like float32 features (see the module docstring of "
             "benchmarks/perf/metrics_bench_memory.py); peak RSS = `resource.getrusage(RUSAGE_SELF).ru_maxrss`, "
             "the whole process (torch, numpy and both inputs included: \"inputs\" is the peak before the metric "
             "starts). Worst over runs.", "",
             "| computation | N per side | seconds | CPU seconds | peak RSS MiB | inputs MiB | added by the metric MiB | goal <= 4 GiB |",
             "|---|---|---|---|---|---|---|---|"]
    for what in WHAT:
        found = [r[what] for r in runs if what in r]
        if not found:
            continue
        worst = max(found, key=lambda x: x["peak_rss_mib"])
        slow = max(x["seconds"] for x in found)
        lines.append(f"| {LABELS[what]} | {worst['n']:,} | {slow:.0f} | {worst['cpu_seconds']:.0f} | "
                     f"{worst['peak_rss_mib']:.0f} | {worst['inputs_rss_mib']:.0f} | "
                     f"{worst['peak_rss_mib'] - worst['inputs_rss_mib']:.0f} | "
                     f"{'met' if worst['peak_rss_mib'] <= GOAL_MIB else 'NOT met'} |")
    n = runs[-1]["n"]
    whole = 3 * n * n * 4 / 2**30
    lines += ["", f"For scale: the prdc package holds whole n x n distance "
              f"matrices, {n * n * 4 / 1e9:.1f} GB ({n * n * 4 / 2**30:.1f} GiB) each in float32 at n = {n:,} ({whole:.0f} GiB for the real-real, "
              "fake-fake and real-fake ones), by arithmetic: not run here, as the machine has 24 GiB shared.",
              "", "Runs:"]
    lines += [f"- {r['measured_at']}, load average {r['load_before'][0]} before, {r['load_after'][0]} after: "
              f"`{r['command']}`" for r in runs]
    return lines + [""]
