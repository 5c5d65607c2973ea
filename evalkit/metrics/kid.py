"""Kernel Inception Distance: the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
averaged over random subsets (mean and population std over subsets), as torchmetrics' KernelInceptionDistance.

Subsets are drawn with ``torch.randperm`` in the same order as torchmetrics (real, then fake, per subset), so with
the same generator state the two agree to rounding; we compute in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from evalkit.errors import EvalkitError


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor, degree: int, coef: float) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + coef) ** degree


def unbiased_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef: float = 1.0) -> torch.Tensor:
    m = x.shape[0]
    k_xx = _polynomial_kernel(x, x, degree, coef)
    k_yy = _polynomial_kernel(y, y, degree, coef)
    k_xy = _polynomial_kernel(x, y, degree, coef)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> dict:
    """KID mean and std over ``subsets`` random subsets of ``subset_size`` (capped at the smaller set's size)."""
    n_real, n_fake = len(real), len(fake)
    size = min(subset_size, n_real, n_fake)
    if size < 2:
        raise EvalkitError(f"KID needs at least 2 images on each side, got {n_real} and {n_fake}")
    x_all = torch.from_numpy(np.asarray(real)).double()
    y_all = torch.from_numpy(np.asarray(fake)).double()
    values = []
    for _ in range(subsets):
        x = x_all[torch.randperm(n_real, generator=generator)[:size]]
        y = y_all[torch.randperm(n_fake, generator=generator)[:size]]
        values.append(unbiased_mmd2(x, y))
    scores = torch.stack(values)
    return {"kid": float(scores.mean()), "kid_std": float(scores.std(unbiased=False)), "kid_subsets": subsets,
            "kid_subset_size": size}
