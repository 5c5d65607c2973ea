"""Our samplers against diffusers' schedulers where they coincide: same alphas, same time points, no thresholding."""

import pytest
import torch

from evalkit.imagen.diffusion import Schedule
from evalkit.imagen.sampling import SamplerConfig, sample

diffusers = pytest.importorskip("diffusers")
T = 1000


def eps_model(x, t, tokens=None, mask=None, lowres=None, aug_level=None):
    """A fixed smooth 'model': any deterministic function works for parity."""
    return 0.6 * x + 0.2 * torch.sin(3 * x) + 0.1 * t.reshape(-1, 1, 1, 1)


def discrete_alphas(schedule: Schedule) -> torch.Tensor:
    """alphas_cumprod[k] = alpha((k + 1) / T)^2, so diffusers timestep k is our time (k + 1) / T."""
    alpha, _ = schedule.alpha_sigma(torch.arange(1, T + 1, dtype=torch.float64) / T)
    return (alpha.double() ** 2)


def betas_for(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
    return (1 - alphas_cumprod / prev).clamp(0, 0.9999)


def run_ours(schedule, sampler, timesteps, x_init_seed):
    times = torch.cat([(timesteps.double() + 1) / T, torch.zeros(1, dtype=torch.float64)]).float()
    tokens, mask = torch.zeros(2, 1, 4), torch.ones(2, 1, dtype=torch.bool)
    gens = [torch.Generator().manual_seed(x_init_seed + i) for i in range(2)]
    config = SamplerConfig(sampler=sampler, steps=len(timesteps), guidance=1.0, threshold="none")
    return sample(eps_model, schedule, tokens, mask, gens, 8, config, times=times)


def initial_noise(seed):
    return torch.stack([torch.randn((3, 8, 8), generator=torch.Generator().manual_seed(seed + i)) for i in range(2)])


@pytest.mark.parametrize("schedule_name", ["cosine", "linear"])
def test_ddim_matches_diffusers(schedule_name):
    schedule = Schedule(schedule_name)
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=T, trained_betas=betas_for(discrete_alphas(schedule)).numpy(),
                                        clip_sample=False, set_alpha_to_one=True, timestep_spacing="leading")
    scheduler.set_timesteps(10)
    x = initial_noise(5)
    for t in scheduler.timesteps:
        x = scheduler.step(eps_model(x, torch.tensor([(float(t) + 1) / T])), t, x, eta=0.0).prev_sample
    ours = run_ours(schedule, "ddim", scheduler.timesteps, 5)
    assert torch.allclose(ours, x.clamp(-1, 1), atol=2e-3)


def test_dpm_solver_pp_2m_matches_diffusers():
    schedule = Schedule("cosine")
    scheduler = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=T, trained_betas=betas_for(discrete_alphas(schedule)).numpy(), algorithm_type="dpmsolver++",
        solver_order=2, final_sigmas_type="zero", lower_order_final=True, thresholding=False)
    scheduler.set_timesteps(8)
    x = initial_noise(9)
    for t in scheduler.timesteps:
        x = scheduler.step(eps_model(x, torch.tensor([(float(t) + 1) / T])), t, x).prev_sample
    ours = run_ours(schedule, "dpm++2m", scheduler.timesteps, 9)
    assert torch.allclose(ours, x.clamp(-1, 1), atol=2e-3)


def test_ancestral_sampler_is_stochastic_per_seed_and_reproducible():
    schedule = Schedule("cosine")
    timesteps = torch.arange(900, -1, -100)
    a = run_ours(schedule, "ddpm", timesteps, 1)
    assert torch.equal(a, run_ours(schedule, "ddpm", timesteps, 1))
    assert not torch.allclose(a, run_ours(schedule, "ddpm", timesteps, 2))
