"""Streaming Gaussian statistics of features: float64 running sums (count, sum, sum of outer products).

Memory is flat in the number of images and two partial statistics merge exactly (a distributed run all-reduces
the three sums). Like a torchmetrics Metric: ``update`` / ``merge`` / ``compute`` (mean, covariance).
Files: pytorch-fid's ``.npz`` (``mu``, ``sigma``) plus our ``n`` and a JSON ``meta`` (resize mode, weights hash);
pytorch-fid and clean-fid statistics (``mu``, ``sigma``) are read as they are.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit import atomic
from evalkit.errors import EvalkitError


class FeatureStats:
    """Running sums of d-dimensional features."""

    def __init__(self, dim: int):
        self.dim = dim
        self.count = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.outer = np.zeros((dim, dim), dtype=np.float64)

    def update(self, features: np.ndarray) -> "FeatureStats":
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(f"expected N x {self.dim} features, got shape {feats.shape}")
        self.count += feats.shape[0]
        self.sum += feats.sum(axis=0)
        self.outer += feats.T @ feats
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        if other.dim != self.dim:
            raise ValueError(f"cannot merge {other.dim}-d statistics into {self.dim}-d ones")
        self.count += other.count
        self.sum += other.sum
        self.outer += other.outer
        return self

    def compute(self) -> "GaussianStats":
        if self.count < 2:
            raise EvalkitError(f"need at least 2 images for a covariance, got {self.count}")
        mu = self.sum / self.count
        sigma = (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)
        return GaussianStats(mu=mu, sigma=(sigma + sigma.T) / 2, n=self.count)

    @classmethod
    def of(cls, features: np.ndarray, chunk: int = 1024) -> "FeatureStats":
        feats = np.asarray(features)
        stats = cls(feats.shape[1])
        for start in range(0, len(feats), chunk):
            stats.update(feats[start : start + chunk])
        return stats


@dataclass
class GaussianStats:
    mu: np.ndarray
    sigma: np.ndarray
    n: int | None = None
    meta: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, mu=self.mu, sigma=self.sigma, n=np.int64(self.n if self.n is not None else -1),
                 meta=np.array(json.dumps(self.meta, sort_keys=True)))
        atomic.write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "GaussianStats":
        """Read a .npz statistics file, checked at the boundary (evalkit/metrics/stats_file.py says how)."""
        from evalkit.metrics.stats_file import read_stats_file

        return read_stats_file(path)
