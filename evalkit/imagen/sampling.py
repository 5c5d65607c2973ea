"""Samplers for one cascade stage: ancestral (DDPM), DDIM (eta = 0) and DPM-Solver++(2M), with batched
classifier-free guidance and x0 thresholding at every step.

All three walk a time grid 1 = t_0 > t_1 > ... > t_N = 0 of the continuous schedule. Each image has its own
torch.Generator for its initial and per-step noise, so an image depends only on its seed, never on its batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from evalkit.imagen.diffusion import Schedule, augment_lowres, model_prediction, predicted_x0
from evalkit.imagen.thresholding import apply_threshold

SAMPLERS = ("ddpm", "ddim", "dpm++2m")


@dataclass
class SamplerConfig:
    sampler: str = "dpm++2m"
    steps: int = 20
    guidance: float = 3.0  # w; 1 = purely conditional, 0 = unconditional
    threshold: str = "dynamic"  # none | static | dynamic
    percentile: float = 0.995
    aug_level: float = 0.0  # SR stages: noise-augmentation level of the low-res input at sampling
    # SR stages only: start at t = start_t < 1 from the forward-noised upsampled low-res image instead of pure
    # noise at t = 1 (SDEdit-style). Our eps-prediction SR U-Nets give unusable x0 estimates near t = 1 (an eps
    # error of 0.02 is amplified by sigma/alpha > 60), which set wrong colours the later steps never undo
    # (toy-world validation colour: 4-6% from t = 1, 94% from t = 0.5 or 0.7).
    start_t: float = 1.0
    # Guidance in a limited interval (Kynkaanniemi et al. 2024): steps from t < guidance_min_t take the conditional
    # prediction alone, one U-Net pass instead of two. Low-noise steps only refine detail the guided high-noise
    # steps laid out, so this saves time; 0 guides every step.
    guidance_min_t: float = 0.0
    # A band of the highest noise levels, t >= band_t (the base's high-noise expert's, where the layout is
    # decided), with its own guidance and/or number of grid steps; None: the settings above hold there too.
    band_t: float | None = None
    band_guidance: float | None = None
    band_steps: int | None = None

    def validate(self) -> "SamplerConfig":
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r} (choose {', '.join(SAMPLERS)})")
        if self.steps < 1:
            raise ValueError("steps must be >= 1")
        if self.threshold not in ("none", "static", "dynamic"):
            raise ValueError(f"unknown thresholding {self.threshold!r} (none, static or dynamic)")
        if not 0.0 <= self.aug_level < 1.0:
            raise ValueError("aug_level must be in [0, 1)")
        if not 0.0 < self.start_t <= 1.0:
            raise ValueError("start_t must be in (0, 1]")
        if not 0.0 <= self.guidance_min_t <= 1.0:
            raise ValueError("guidance_min_t must be in [0, 1]")
        if (self.band_guidance is not None or self.band_steps is not None) and self.band_t is None:
            raise ValueError("band_guidance and band_steps need band_t (the band's lowest t)")
        if self.band_t is not None and not 0.0 < self.band_t < 1.0:
            raise ValueError("band_t must be in (0, 1)")
        if self.band_steps is not None and not 2 <= self.band_steps < self.steps:
            raise ValueError(f"band_steps must be in [2, steps) = [2, {self.steps})")
        return self

    def to_dict(self) -> dict:
        # The band fields only when set, so configs (and the run ids hashed from them) without a band stay as they were.
        return {k: v for k, v in asdict(self).items() if not (k.startswith("band_") and v is None)}

    def step_guidance(self, s: float) -> float:
        """w at a step from time s: the band's inside its band, 1 (unguided) below guidance_min_t."""
        # compared in float32, as the expert's ensemble compares the grid's float32 times with its band
        if self.band_t is not None and self.band_guidance is not None and np.float32(s) >= np.float32(self.band_t):
            return self.band_guidance
        return self.guidance if s >= self.guidance_min_t else 1.0

    def grid(self, device=None, start: float = 1.0) -> torch.Tensor:
        """The time grid: `steps` uniform steps from `start` to 0; with band_steps, that many steps start in the
        band (grid points spread evenly from 1 down to band_t) and the rest spread evenly over [0, band_t]."""
        if self.band_steps is None or start < 1.0:
            return time_grid(self.steps, device, start)
        high = torch.linspace(1.0, self.band_t, self.band_steps, device=device)
        low = torch.linspace(self.band_t, 0.0, self.steps - self.band_steps + 2, device=device)
        return torch.cat([high, low[1:]])


def null_condition(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 'empty' conditioning the model was trained on when conditioning was dropped: zeroed tokens, no mask."""
    return torch.zeros_like(tokens), torch.zeros_like(mask)


def guided_prediction(model, x, t, tokens, mask, guidance: float, lowres=None, aug_level=None) -> torch.Tensor:
    """Classifier-free guidance of the model's output f, whatever it predicts (eps, v or x0):

        f_w = w * f(x_t, c) + (1 - w) * f(x_t, empty),   cond and uncond in one batched forward pass.

    For a given x_t, v = alpha eps - sigma x0 and x0 = (x_t - sigma eps) / alpha are affine in eps, so guiding
    v or x0 this way is exactly guiding eps."""
    batch = x.shape[0]
    t_b = t.expand(batch) if t.ndim == 0 or t.shape[0] == 1 else t
    if guidance == 1.0:  # exactly the conditional prediction; skip the unconditional half
        return model(x, t_b, tokens, mask, lowres, aug_level).float()
    null_tokens, null_mask = null_condition(tokens, mask)
    double = lambda a: None if a is None else torch.cat([a, a])  # noqa: E731
    out = model(double(x), double(t_b), torch.cat([tokens, null_tokens]), torch.cat([mask, null_mask]),
                double(lowres), double(aug_level)).float()  # float32 whatever autocast ran the U-Net in
    cond, uncond = out[:batch], out[batch:]
    return guidance * cond + (1.0 - guidance) * uncond


def time_grid(steps: int, device=None, start: float = 1.0) -> torch.Tensor:
    return torch.linspace(start, 0.0, steps + 1, device=device)


def per_image_noise(shape, generators: list[torch.Generator], device, dtype=torch.float32) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=g, dtype=dtype).to(device) for g in generators])


@torch.no_grad()
def sample(model, schedule: Schedule, tokens, mask, generators: list[torch.Generator], image_size: int,
           config: SamplerConfig, lowres=None, times: torch.Tensor | None = None, progress=None) -> torch.Tensor:
    """Draw one image per generator; returns x0 in [-1, 1] (clipped), shape [B, 3, H, W]."""
    config.validate()
    device = tokens.device
    batch = len(generators)
    x = per_image_noise((3, image_size, image_size), generators, device)
    aug = None
    clean_lowres = lowres
    if lowres is not None:
        # Noise conditioning augmentation at sampling: corrupt the low-res input to the chosen level, feed the level.
        aug = torch.full((batch,), config.aug_level, device=device)
        if config.aug_level > 0:
            noise = per_image_noise(lowres.shape[1:], generators, device, lowres.dtype)
            lowres = augment_lowres(schedule, lowres, aug, noise)
    times = config.grid(device, config.start_t if lowres is not None else 1.0) if times is None else times.to(device)
    if lowres is not None and float(times[0]) < 1.0:
        alpha, sigma = schedule.alpha_sigma(times[0])
        up = F.interpolate(clean_lowres, size=(image_size, image_size), mode="bilinear", align_corners=False)
        x = alpha * up + sigma * x
    prev_x0, prev_h = None, None
    prediction = model_prediction(model)
    for i in range(len(times) - 1):
        s, t = times[i], times[i + 1]
        alpha_s, sigma_s = schedule.alpha_sigma(s)
        alpha_t, sigma_t = schedule.alpha_sigma(t)
        guidance = config.step_guidance(float(s))
        output = guided_prediction(model, x, s.reshape(1), tokens, mask, guidance, lowres, aug)
        x0 = apply_threshold(predicted_x0(prediction, output, x, alpha_s, sigma_s), config.threshold, config.percentile)
        last = i == len(times) - 2 or float(sigma_t) < 1e-6
        if config.sampler == "ddim":
            eps_hat = (x - alpha_s * x0) / sigma_s  # re-derived so the step is consistent with the clipped x0
            x = alpha_t * x0 + sigma_t * eps_hat
        elif config.sampler == "ddpm":
            # Posterior q(x_t | x_s, x0) of the forward process between s > t.
            alpha_ts = alpha_s / alpha_t
            sigma_ts2 = sigma_s**2 - alpha_ts**2 * sigma_t**2
            mean = (alpha_ts * sigma_t**2 / sigma_s**2) * x + (alpha_t * sigma_ts2 / sigma_s**2) * x0
            x = mean
            if not last:
                std = (sigma_ts2 * sigma_t**2 / sigma_s**2).clamp_min(0).sqrt()
                x = x + std * per_image_noise(x.shape[1:], generators, device, x.dtype)
        else:  # DPM-Solver++(2M), data prediction, first order at the first and the last step
            lambda_s = torch.log(alpha_s / sigma_s)
            if last:
                x = x0
            else:
                lambda_t = torch.log(alpha_t / sigma_t)
                h = lambda_t - lambda_s
                d = x0
                if prev_x0 is not None:
                    r = prev_h / h
                    d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
                x = (sigma_t / sigma_s) * x - alpha_t * torch.expm1(-h) * d
                prev_h = h
            prev_x0 = x0
        if progress is not None:
            progress.update(1)
    return x.clamp(-1.0, 1.0)
