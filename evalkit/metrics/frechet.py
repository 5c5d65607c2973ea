"""Frechet distance between Gaussians without ``scipy.linalg.sqrtm``.

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2)

For any factor S1 = F F^T, S1 S2 has the same non-zero eigenvalues as F^T S2 F, which is symmetric positive
semi-definite, so tr((S1 S2)^1/2) = sum sqrt(eig(F^T S2 F)): one eigenvalues-only symmetric solve, no imaginary
parts. F is computed once per reference and reused for every comparison against it:
  - fewer images than dimensions, features known: F = centred features^T / sqrt(n - 1), d x n, so the solve is
    n x n (a per-category FID of 50 images costs milliseconds, not a 2048 x 2048 eigensolve);
  - otherwise the Cholesky factor (cheap) when S1 is positive definite, else the symmetric eigendecomposition root.
The compared side likewise uses its centred features when it has fewer images than F has columns.
Tiny negative eigenvalues from rounding are clamped to 0. Everything is float64, in torch (its LAPACK was ~2x
faster than numpy's here).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from evalkit.errors import EvalkitError


def _psd_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(sigma)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def _centred(features) -> torch.Tensor:
    feats = torch.from_numpy(np.asarray(features, dtype=np.float64))
    return feats - feats.mean(dim=0)


class FrechetReference:
    """A reference Gaussian whose covariance factor is computed once and reused for every comparison."""

    def __init__(self, mu: np.ndarray, sigma: np.ndarray, features: np.ndarray | None = None):
        self.mu = np.asarray(mu, dtype=np.float64)
        self.sigma = np.asarray(sigma, dtype=np.float64)
        _check_shapes(self.mu, self.sigma)
        self.trace = float(np.trace(self.sigma))
        if features is not None and 2 <= len(features) <= self.mu.shape[0]:
            self.factor = _centred(features).T / math.sqrt(len(features) - 1)
            return
        sym = torch.from_numpy((self.sigma + self.sigma.T) / 2)
        factor, info = torch.linalg.cholesky_ex(sym)
        self.factor = factor if int(info) == 0 else _psd_sqrt(sym)

    def distance(self, mu: np.ndarray, sigma: np.ndarray, features: np.ndarray | None = None) -> float:
        """d^2 to N(mu, sigma); ``features`` (whose mean and covariance mu and sigma are) may speed it up."""
        mu = np.asarray(mu, dtype=np.float64)
        sigma = np.asarray(sigma, dtype=np.float64)
        _check_shapes(mu, sigma)
        if mu.shape != self.mu.shape:
            raise EvalkitError(f"feature dimensions differ: {self.mu.shape[0]} vs {mu.shape[0]}")
        if features is not None and 2 <= len(features) < self.factor.shape[1]:
            projected = _centred(features) @ self.factor / math.sqrt(len(features) - 1)
            middle = projected @ projected.T  # same non-zero eigenvalues as F^T S2 F
        else:
            middle = self.factor.T @ torch.from_numpy(sigma) @ self.factor
        eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2)
        trace_sqrt = float(eigenvalues.clamp(min=0).sqrt().sum())
        diff = self.mu - mu
        return float(diff @ diff + self.trace + np.trace(sigma) - 2 * trace_sqrt)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    return FrechetReference(mu1, sigma1).distance(mu2, sigma2)


def _check_shapes(mu: np.ndarray, sigma: np.ndarray) -> None:
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise EvalkitError(f"expected mu of shape (d,) and sigma of shape (d, d), got {mu.shape} and {sigma.shape}")
