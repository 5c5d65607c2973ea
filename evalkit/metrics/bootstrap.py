"""Means with percentile-bootstrap 95% confidence intervals (seeded, so reruns give the same interval)."""

from __future__ import annotations

import numpy as np


def mean_ci(values, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """{"mean", "ci_low", "ci_high", "n"}; the CI is None for fewer than 2 values (no spread to resample)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    result = {"mean": float(data.mean()), "ci_low": None, "ci_high": None, "n": int(data.size)}
    if data.size >= 2:
        rng = np.random.default_rng(seed)
        means = np.empty(resamples)
        for start in range(0, resamples, 256):  # chunks keep memory at 256 x n
            count = min(256, resamples - start)
            means[start : start + count] = data[rng.integers(0, data.size, size=(count, data.size))].mean(axis=1)
        tail = (1 - level) / 2 * 100
        result["ci_low"], result["ci_high"] = (float(v) for v in np.percentile(means, [tail, 100 - tail]))
    return result
