"""Continuous-time Gaussian diffusion (variance preserving): schedules, the training loss and noise augmentation.

x_t = alpha(t) * x_0 + sigma(t) * eps with alpha^2 + sigma^2 = 1 and t in [0, 1]. Schedules are written as
log-SNR(t) = log(alpha^2 / sigma^2), clipped to [-20, 20] so that t = 0 and t = 1 stay finite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_SNR_MIN, LOG_SNR_MAX = -20.0, 20.0


class Schedule:
    """A noise schedule by name: "cosine" (Nichol & Dhariwal, Imagen's choice) or "linear" (DDPM's betas, continuous)."""

    def __init__(self, name: str = "cosine"):
        if name not in ("cosine", "linear"):
            raise ValueError(f"unknown noise schedule {name!r} (cosine or linear)")
        self.name = name

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        if self.name == "cosine":
            s = 0.008
            # alpha_bar = cos^2(((t + s)/(1 + s)) pi/2), normalised so alpha_bar(0) = 1  ->  log SNR = -log(tan^2(...))
            f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
            f = f.clamp(1e-9, 1 - 1e-9)
            out = torch.log(f) - torch.log1p(-f)
        else:
            beta0, beta1 = 0.1, 20.0  # 1000-step DDPM betas 1e-4..0.02 in continuous time
            log_alpha_bar = -(beta0 * t + 0.5 * (beta1 - beta0) * t**2)
            out = log_alpha_bar - torch.log((-torch.expm1(log_alpha_bar)).clamp_min(1e-9))
        return out.clamp(LOG_SNR_MIN, LOG_SNR_MAX)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_snr = self.log_snr(t)
        return torch.sigmoid(log_snr).sqrt(), torch.sigmoid(-log_snr).sqrt()


def broadcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    alpha, sigma = schedule.alpha_sigma(t)
    return broadcast(alpha, x0) * x0 + broadcast(sigma, x0) * noise


def augment_lowres(schedule: Schedule, lowres: torch.Tensor, aug_level: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Noise conditioning augmentation (paper Sec. 2.5): corrupt the low-res input with the forward process at `aug_level`."""
    return q_sample(schedule, lowres, aug_level, noise)


LOSS_WEIGHTINGS = ("min-snr", "truncated-snr", "none")
TRUNCATED_SNR_CAP = 50.0  # the weight 1/SNR grows without bound as t -> 1; past this the eps target is pure noise


PREDICTIONS = ("eps", "v", "x0")


def prediction_target(prediction: str, x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor,
                      sigma: torch.Tensor) -> torch.Tensor:
    """What the U-Net is trained to output: eps, v = alpha * eps - sigma * x0 (Salimans & Ho 2022), or x0 (for a
    high-noise expert, where x0 is a blurry layout that a low-resolution U-Net can predict)."""
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        return broadcast(alpha, x0) * noise - broadcast(sigma, x0) * x0
    raise ValueError(f"unknown prediction {prediction!r} (choose {', '.join(PREDICTIONS)})")


def predicted_x0(prediction: str, output: torch.Tensor, x_t: torch.Tensor, alpha: torch.Tensor,
                 sigma: torch.Tensor) -> torch.Tensor:
    """x0 from the U-Net's output. From eps it divides by alpha, so near t = 1 a small eps error becomes a large x0
    error (alpha(1) ~ 5e-5 here) and the layout comes from the noise; from v it is alpha * x_t - sigma * v."""
    if prediction == "eps":
        return (x_t - sigma * output) / alpha
    if prediction == "v":
        return alpha * x_t - sigma * output
    if prediction == "x0":
        return output
    raise ValueError(f"unknown prediction {prediction!r} (choose {', '.join(PREDICTIONS)})")


def loss_weights(log_snr: torch.Tensor, weighting: str = "min-snr", min_snr_gamma: float | None = 5.0,
                 prediction: str = "eps") -> torch.Tensor:
    """Per-sample weights of the prediction MSE (eps or v).

    An eps error e is an x0 error e / sqrt(SNR), so plain eps-MSE weighs x0 errors by SNR, next to nothing at high
    noise, which is where the layout of an image is decided. "min-snr" (Hang et al. 2023) caps the easy low-noise
    steps: x0 weight min(SNR, gamma). "truncated-snr" (Salimans & Ho 2022) keeps the x0 weight at least 1 at high
    noise: x0 weight max(SNR, 1), i.e. eps weight max(1, 1/SNR), capped at TRUNCATED_SNR_CAP. "min-snr" without a
    gamma (None or 0) is plain MSE, as `--min-snr-gamma 0` has always meant.

    A v error e is an x0 error e * sigma, so v-MSE weighs x0 errors by SNR + 1: the same x0 weights are
    min(SNR, gamma) / (SNR + 1) and max(SNR, 1) / (SNR + 1) on the v-MSE (no cap needed), "none" plain v-MSE.
    An x0 output takes those x0 weights as they are ("none": plain x0-MSE).
    """
    snr = log_snr.float().exp()
    if prediction == "x0":
        if weighting == "min-snr":
            return torch.clamp(snr, max=min_snr_gamma) if min_snr_gamma else torch.ones_like(snr)
        if weighting == "truncated-snr":
            return torch.clamp(snr, min=1.0)
    if prediction == "v":
        if weighting == "min-snr":
            return torch.clamp(snr, max=min_snr_gamma) / (snr + 1) if min_snr_gamma else torch.ones_like(snr)
        if weighting == "truncated-snr":
            return torch.clamp(snr, min=1.0) / (snr + 1)
    if weighting == "min-snr":
        return torch.clamp(min_snr_gamma / snr, max=1.0) if min_snr_gamma else torch.ones_like(snr)
    if weighting == "truncated-snr":
        return torch.clamp(1.0 / snr, min=1.0, max=TRUNCATED_SNR_CAP)
    if weighting == "none":
        return torch.ones_like(snr)
    raise ValueError(f"unknown loss weighting {weighting!r} (choose {', '.join(LOSS_WEIGHTINGS)})")


# Where a toy scene's layout is decided (cosine schedule: alpha(0.85) = 0.23); see `sample_times`.
HIGH_NOISE_BAND = (0.85, 1.0)


def sample_times(batch: int, high_noise_share: float = 0.0, device=None, generator=None,
                 band: tuple[float, float] = HIGH_NOISE_BAND, band_power: float = 1.0) -> torch.Tensor:
    """t ~ U(0, 1), except that the first `high_noise_share` of the batch draws from `band` (a noise-level expert,
    experts.py, trains with share 1 on its own band).

    Whether an object goes left or right only changes the best prediction at high noise (below it, x_t already
    shows where things are), so with uniform t few samples carry that signal; this share concentrates them.

    Inside the band, t = high - (high - low) * u^band_power with u ~ U(0, 1): power 1 is uniform (drawn as before,
    so old runs repeat), power p > 1 puts the share q^(1/p) of the draws in the band's top fraction q (p = 3: 52%
    in the top 14% instead of 14%), next to t = high, where x_t shows next to nothing and the text alone must say
    which object goes where (reports/imagen/README.md, 2026-12-03: power 3 did not teach the expert the colour
    order of relations)."""
    if not 0.0 <= high_noise_share <= 1.0:
        raise ValueError(f"high_noise_share must be in [0, 1], got {high_noise_share}")
    if not band_power >= 1.0:
        raise ValueError(f"band_power must be >= 1, got {band_power}")
    t = torch.rand(batch, device=device, generator=generator)
    n_high = round(high_noise_share * batch)
    low, high = band
    in_band = high - (high - low) * t[:n_high] ** band_power if band_power != 1.0 else low + (high - low) * t[:n_high]
    return torch.cat([in_band, t[n_high:]])


def diffusion_loss(model, schedule: Schedule, x0, tokens, mask, lowres=None, aug_level=None,
                   min_snr_gamma: float | None = None, generator: torch.Generator | None = None,
                   weighting: str = "min-snr", high_noise_share: float = 0.0,
                   band: tuple[float, float] = HIGH_NOISE_BAND, band_power: float = 1.0) -> torch.Tensor:
    """MSE of the model's prediction (`model_prediction(model)`: eps or v) at t from `sample_times`, weighted per
    `weighting`."""
    batch = x0.shape[0]
    prediction = model_prediction(model)
    t = sample_times(batch, high_noise_share, x0.device, generator, band, band_power)
    noise = torch.randn(x0.shape, device=x0.device, generator=generator, dtype=x0.dtype)
    alpha, sigma = schedule.alpha_sigma(t)
    x_t = broadcast(alpha, x0) * x0 + broadcast(sigma, x0) * noise
    pred = model(x_t, t, tokens, mask, lowres, aug_level)
    target = prediction_target(prediction, x0, noise, alpha, sigma)
    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    return (per_sample * loss_weights(schedule.log_snr(t), weighting, min_snr_gamma, prediction)).mean()


def model_prediction(model) -> str:
    """What a U-Net outputs, from its config ("eps" unless it says otherwise; torch.compile wrappers see through)."""
    config = getattr(getattr(model, "_orig_mod", model), "config", None)
    return getattr(config, "prediction", "eps")
