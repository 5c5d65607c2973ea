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


def test_v_target_matches_diffusers_velocity():
    """prediction_target("v") against diffusers' DDPMScheduler.get_velocity on the same alphas, and back to x0."""
    from evalkit.imagen.diffusion import predicted_x0, prediction_target

    schedule = Schedule("cosine")
    alphas_cumprod = discrete_alphas(schedule).float()
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=T, trained_betas=betas_for(alphas_cumprod.double()).numpy())
    scheduler.alphas_cumprod = alphas_cumprod
    x0, noise = torch.rand(4, 3, 8, 8) * 2 - 1, torch.randn(4, 3, 8, 8)
    steps = torch.tensor([0, 250, 700, 999])
    alpha, sigma = schedule.alpha_sigma((steps.double() + 1) / T)
    alpha, sigma = alpha.float(), sigma.float()
    v = prediction_target("v", x0, noise, alpha, sigma)
    assert torch.allclose(v, scheduler.get_velocity(x0, noise, steps), atol=1e-5)
    x_t = alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * noise
    a, s = alpha[:, None, None, None], sigma[:, None, None, None]
    assert torch.allclose(predicted_x0("v", v, x_t, a, s), x0, atol=1e-5)
    assert torch.allclose(predicted_x0("eps", noise[:3], x_t[:3], a[:3], s[:3]), x0[:3], atol=1e-3)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpm++2m"])
def test_an_ideal_v_model_samples_its_one_image_as_the_ideal_eps_model_does(sampler):
    """Data = one image c: the exact eps is (x - alpha c) / sigma and the exact v is alpha eps - sigma c; from the
    same noise both must land on c (DDIM's last step keeps sigma(0) * eps, about 1e-3)."""
    from types import SimpleNamespace

    schedule, target = Schedule("cosine"), torch.linspace(-0.9, 0.9, 3 * 8 * 8).reshape(1, 3, 8, 8)

    def ideal_eps(x, t, tokens=None, mask=None, lowres=None, aug_level=None):
        alpha, sigma = (v.reshape(-1, 1, 1, 1) for v in schedule.alpha_sigma(t))
        return (x - alpha * target) / sigma

    class IdealV(torch.nn.Module):
        config = SimpleNamespace(prediction="v")

        def forward(self, x, t, tokens=None, mask=None, lowres=None, aug_level=None):
            alpha, sigma = (v.reshape(-1, 1, 1, 1) for v in schedule.alpha_sigma(t))
            return alpha * ideal_eps(x, t) - sigma * target

    tokens, mask = torch.zeros(2, 1, 4), torch.ones(2, 1, dtype=torch.bool)
    config = SamplerConfig(sampler=sampler, steps=8, guidance=3.0, threshold="static")
    images = {name: sample(model, schedule, tokens, mask, [torch.Generator().manual_seed(i) for i in range(2)], 8, config)
              for name, model in (("v", IdealV()), ("eps", ideal_eps))}
    assert torch.allclose(images["v"], images["eps"], atol=1e-5)
    assert torch.allclose(images["v"], target.expand(2, -1, -1, -1), atol=2e-3)


def test_guidance_in_a_limited_interval_guides_only_the_steps_from_its_start():
    """Guided steps call the model on cond + uncond (twice the batch); steps below guidance_min_t on cond alone,
    which is exactly the guidance = 1 update."""
    from types import SimpleNamespace

    schedule = Schedule("cosine")
    batches = []

    def model(x, t, tokens, mask, lowres=None, aug_level=None):  # an x0 predictor the text moves
        batches.append((x.shape[0], round(float(t[0]), 4)))
        return 0.5 * torch.tanh(x) + 0.1 * tokens.sum(dim=(1, 2)).reshape(-1, 1, 1, 1)

    model.config = SimpleNamespace(prediction="x0")
    tokens, mask = torch.ones(2, 1, 4), torch.ones(2, 1, dtype=torch.bool)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa: E731
    limited = sample(model, schedule, tokens, mask, gens(), 8,
                     SamplerConfig(steps=10, guidance=3.0, threshold="static", guidance_min_t=0.5))
    assert [b for b, t in batches if t >= 0.5] == [4] * 6 and [b for b, t in batches if t < 0.5] == [2] * 4
    batches.clear()
    everywhere = sample(model, schedule, tokens, mask, gens(), 8, SamplerConfig(steps=10, guidance=3.0, threshold="static"))
    assert [b for b, _ in batches] == [4] * 10 and not torch.allclose(limited, everywhere)
    with pytest.raises(ValueError, match="guidance_min_t"):
        SamplerConfig(guidance_min_t=1.5).validate()
