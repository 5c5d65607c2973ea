"""Denoiser experts by noise level (eDiff-I, Balaji et al. 2022): one U-Net for the highest-noise steps, another below.

Where the objects of a toy scene go is decided in the first sampler steps (t >= ~0.85: below that, x_t already
shows where things are). A U-Net trained on all noise levels spends almost none of its loss there, and in this
project's bases the position words never moved the layout (reports/imagen/README.md). An expert trained only on
that band sees nothing but that signal; with x0- or v-prediction its x0 is well-conditioned at t ~ 1 (from eps it
is not), and since that x0 is a blurry layout it can run at a lower resolution (unet.UNetConfig.work_size). The
stage's main U-Net keeps the rest of the trajectory and draws the detail. The shipped expert: 16 px, x0, t >= 0.78.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from evalkit.imagen.diffusion import Schedule, broadcast, model_prediction


def as_v(prediction: str, output: torch.Tensor, x_t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A U-Net output as v = alpha * eps - sigma * x0: from eps that is (eps - sigma * x_t) / alpha (used below the
    expert's band, alpha >= ~0.2, so dividing by alpha is harmless); from x0, (alpha * x_t - x0) / sigma."""
    if prediction == "v":
        return output
    if prediction == "x0":
        return (broadcast(alpha, x_t) * x_t - output) / broadcast(sigma, x_t)
    return (output - broadcast(sigma, x_t) * x_t) / broadcast(alpha, x_t)


class NoiseBandEnsemble(nn.Module):
    """Calls `expert` for t >= `t_min` and `main` below; outputs v for every t (so samplers take x0 = alpha x - sigma v).

    Both U-Nets read the same text features; guidance combines the ensemble's outputs like any U-Net's.
    """

    def __init__(self, main: nn.Module, expert: nn.Module, t_min: float, schedule: Schedule):
        super().__init__()
        if not 0.0 < t_min < 1.0:
            raise ValueError(f"an expert's band starts in (0, 1), got {t_min}")
        self.main, self.expert, self.t_min, self.schedule = main, expert, float(t_min), schedule
        self.config = SimpleNamespace(prediction="v")  # what `diffusion.model_prediction` reads

    def forward(self, x, t, tokens, mask, lowres=None, aug_level=None):
        t = t.expand(x.shape[0]) if t.shape[0] != x.shape[0] else t
        high = t >= self.t_min
        if bool(high.all()) or not bool(high.any()):  # the usual case (one t per sampler step): no row copies
            return self._v(self.expert if bool(high[0]) else self.main, x, t, tokens, mask, lowres, aug_level)
        pick = lambda a, rows: None if a is None else a[rows]  # noqa: E731
        out = torch.empty_like(x)
        for model, rows in ((self.expert, high), (self.main, ~high)):
            if bool(rows.any()):
                out[rows] = self._v(model, x[rows], t[rows], tokens[rows], mask[rows], pick(lowres, rows),
                                    pick(aug_level, rows))
        return out

    def _v(self, model, x, t, tokens, mask, lowres, aug_level) -> torch.Tensor:
        """`model`'s output for these rows as v, in float32 whatever autocast ran the U-Net in."""
        alpha, sigma = self.schedule.alpha_sigma(t)
        output = model(x, t, tokens, mask, lowres, aug_level).float()
        return as_v(model_prediction(model), output, x, alpha, sigma)
