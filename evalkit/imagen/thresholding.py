"""Clipping the predicted x0 at each sampling step (paper Sec. 2.3).

Static: clip to [-1, 1]. Dynamic: s = max(1, quantile(|x0|, p)) per image, then x0 = clip(x0, -s, s) / s.
Note: diffusers' own dynamic thresholding clamps s to [1, sample_max_value]; with its default
sample_max_value=1.0 that silently becomes static clipping. Ours has no upper bound on s, as in the paper.
"""

from __future__ import annotations

import torch


def static_threshold(x0: torch.Tensor) -> torch.Tensor:
    return x0.clamp(-1.0, 1.0)


def dynamic_threshold(x0: torch.Tensor, percentile: float = 0.995) -> torch.Tensor:
    if not 0.0 < percentile <= 1.0:
        raise ValueError("the dynamic-thresholding percentile must be in (0, 1]")
    flat = x0.reshape(x0.shape[0], -1).abs().float()
    s = torch.quantile(flat, percentile, dim=1).clamp_min(1.0).to(x0.dtype)
    s = s.reshape(-1, *([1] * (x0.ndim - 1)))
    return torch.maximum(torch.minimum(x0, s), -s) / s


def apply_threshold(x0: torch.Tensor, mode: str, percentile: float = 0.995) -> torch.Tensor:
    if mode == "none":
        return x0
    if mode == "static":
        return static_threshold(x0)
    if mode == "dynamic":
        return dynamic_threshold(x0, percentile)
    raise ValueError(f"unknown thresholding {mode!r} (none, static or dynamic)")
