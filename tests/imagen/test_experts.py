"""The high-noise expert: dispatch by t, conversion to v, checkpoint format, training on its band only."""

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from evalkit.errors import EvalkitError
from evalkit.imagen.cascade import ImagenCascade, Stage
from evalkit.imagen.diffusion import Schedule, prediction_target
from evalkit.imagen.efficient_unet import build_model
from evalkit.imagen.experts import NoiseBandEnsemble, as_v
from evalkit.imagen.sampling import SamplerConfig, sample
from evalkit.imagen.train import TrainConfig, Trainer

from .helpers import TEXT_DIM, HashTextEncoder, randomize, tiny_base_config, tiny_cascade

SCHEDULE = Schedule("cosine")


def test_as_v_turns_the_exact_eps_into_the_exact_v():
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(4, 3, 8, 8, generator=gen) * 2 - 1, torch.randn(4, 3, 8, 8, generator=gen)
    alpha, sigma = SCHEDULE.alpha_sigma(torch.tensor([0.1, 0.4, 0.6, 0.8]))
    x_t = alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * noise
    assert torch.allclose(as_v("eps", noise, x_t, alpha, sigma), prediction_target("v", x0, noise, alpha, sigma), atol=1e-5)
    assert as_v("v", noise, x_t, alpha, sigma) is noise


class Constant(torch.nn.Module):
    def __init__(self, value: float, prediction: str):
        super().__init__()
        self.value, self.config = value, SimpleNamespace(prediction=prediction)

    def forward(self, x, t, tokens, mask, lowres=None, aug_level=None):
        return torch.full_like(x, self.value)


def test_the_ensemble_calls_the_expert_in_its_band_and_the_main_model_below_it():
    ensemble = NoiseBandEnsemble(Constant(0.5, "eps"), Constant(-3.0, "v"), 0.85, SCHEDULE)
    x = torch.randn(3, 3, 4, 4)
    t = torch.tensor([0.9, 0.5, 0.85])
    out = ensemble(x, t, torch.zeros(3, 2, 4), torch.ones(3, 2, dtype=torch.bool))
    assert torch.equal(out[0], torch.full_like(x[0], -3.0)) and torch.equal(out[2], torch.full_like(x[2], -3.0))
    alpha, sigma = SCHEDULE.alpha_sigma(torch.tensor([0.5]))
    assert torch.allclose(out[1], (0.5 - sigma * x[1]) / alpha)
    with pytest.raises(ValueError):
        NoiseBandEnsemble(Constant(0, "eps"), Constant(0, "v"), 1.0, SCHEDULE)


def test_a_batch_all_in_one_band_gives_what_its_rows_give_in_a_mixed_batch():
    """One t per sampler step is the usual call: it skips the row split and must agree with it."""
    main, expert = build_model(tiny_base_config()).eval(), build_model(tiny_base_config()).eval()
    randomize(main, 1), randomize(expert, 2)
    ensemble = NoiseBandEnsemble(main, expert, 0.7, SCHEDULE)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 8, 8, generator=gen)
    tokens, mask = torch.randn(4, 5, TEXT_DIM, generator=gen), torch.ones(4, 5, dtype=torch.bool)
    with torch.no_grad():
        mixed = ensemble(x, torch.tensor([0.9, 0.9, 0.3, 0.3]), tokens, mask)
        high = ensemble(x[:2], torch.tensor([0.9]), tokens[:2], mask[:2])
        low = ensemble(x[2:], torch.tensor([0.3, 0.3]), tokens[2:], mask[2:])
    assert torch.allclose(mixed[:2], high, atol=1e-5) and torch.allclose(mixed[2:], low, atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddim", "dpm++2m"])
def test_an_ideal_v_expert_with_an_ideal_eps_model_samples_their_one_image(sampler):
    """Data = one image c: whichever model answers, the sample must land on c."""
    target = torch.linspace(-0.9, 0.9, 3 * 8 * 8).reshape(1, 3, 8, 8)

    class Ideal(torch.nn.Module):
        def __init__(self, prediction):
            super().__init__()
            self.config = SimpleNamespace(prediction=prediction)
            self.calls = 0

        def forward(self, x, t, tokens=None, mask=None, lowres=None, aug_level=None):
            self.calls += 1
            alpha, sigma = (v.reshape(-1, 1, 1, 1) for v in SCHEDULE.alpha_sigma(t))
            eps = (x - alpha * target) / sigma
            return eps if self.config.prediction == "eps" else alpha * eps - sigma * target

    main, expert = Ideal("eps"), Ideal("v")
    tokens, mask = torch.zeros(2, 1, 4), torch.ones(2, 1, dtype=torch.bool)
    config = SamplerConfig(sampler=sampler, steps=8, guidance=1.0, threshold="static")
    images = sample(NoiseBandEnsemble(main, expert, 0.8, SCHEDULE), SCHEDULE, tokens, mask,
                    [torch.Generator().manual_seed(i) for i in range(2)], 8, config)
    assert torch.allclose(images, target.expand(2, -1, -1, -1), atol=2e-3)
    assert expert.calls == 2 and main.calls == 6  # t = 1 and 0.875 are in [0.8, 1]


def expert_stage(seed: int = 5, **changes) -> Stage:
    config = {**tiny_base_config(), "prediction": "v"}
    stage = Stage("base_expert", randomize(build_model(config), seed), config, SCHEDULE,
                  SamplerConfig("dpm++2m", 4, 3.0, "dynamic"), HashTextEncoder().spec(), {}, (0.8, 1.0))
    return replace(stage, **changes)


def test_a_saved_expert_loads_with_its_stage_and_changes_the_samples(tmp_path):
    cascade = tiny_cascade()
    plain = cascade.generate(["a red circle"], [3])
    cascade.stages[0].attach_expert(expert_stage())
    with_expert = cascade.generate(["a red circle"], [3])
    assert not torch.allclose(plain, with_expert)
    cascade.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "base_expert.json").read_text())["band"] == [0.8, 1.0]
    loaded = ImagenCascade.from_pretrained(tmp_path, text_encoder=HashTextEncoder())
    assert loaded.stages[0].expert.band == (0.8, 1.0)
    assert torch.allclose(loaded.generate(["a red circle"], [3]), with_expert, atol=1e-2)  # weights stored as float16
    assert loaded.checkpoint_hash() != ImagenCascade.from_pretrained(tmp_path, experts=False).checkpoint_hash()
    without = ImagenCascade.from_pretrained(tmp_path, text_encoder=HashTextEncoder(), experts=False)
    assert without.stages[0].expert is None
    assert torch.allclose(without.generate(["a red circle"], [3]), plain, atol=1e-2)


def test_an_expert_that_does_not_fit_its_stage_is_a_clear_error(tmp_path):
    stage = tiny_cascade().stages[0]
    with pytest.raises(EvalkitError, match="another text encoder"):
        stage.attach_expert(expert_stage(text_encoder={"kind": "minilm", "max_tokens": 32, "dim": 16}))
    with pytest.raises(EvalkitError, match="no band"):
        stage.attach_expert(expert_stage(band=None))
    cascade = tiny_cascade()
    cascade.stages[0].attach_expert(expert_stage())
    cascade.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "base_expert.json").read_text())
    meta["band"] = [0.9, 0.2]
    (tmp_path / "base_expert.json").write_text(json.dumps(meta))
    with pytest.raises(EvalkitError, match="corrupt Imagen checkpoint"):
        ImagenCascade.from_pretrained(tmp_path, text_encoder=HashTextEncoder())


def test_expert_training_draws_t_from_its_band_and_saves_beside_the_base(tmp_path, monkeypatch):
    import evalkit.imagen.diffusion as diffusion

    seen = []
    original = diffusion.sample_times
    monkeypatch.setattr(diffusion, "sample_times", lambda *a, **k: seen.append(original(*a, **k)) or seen[-1])
    tiny = {"dim": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "attn_levels": (1,), "cond_dim": 16, "heads": 2,
            "image_size": 8}
    config = TrainConfig(stage="base", out=str(tmp_path), steps=3, batch_size=8, lr=1e-3, warmup_steps=1, save_every=3,
                         model=tiny, device="cpu", expert_band=0.7)
    trainer = Trainer(config, text_encoder=HashTextEncoder(max_tokens=16))
    trainer.run()
    times = torch.cat(seen)
    assert len(seen) == 3 and bool((times >= 0.7).all()) and bool((times <= 1.0).all())
    meta = json.loads((tmp_path / "base_expert.json").read_text())
    assert meta["band"] == [0.7, 1.0] and meta["model"]["prediction"] == "v" and meta["stage"] == "base_expert"
    assert (tmp_path / "train" / "base_expert" / "state.pt").is_file() and not (tmp_path / "base.json").exists()
    with pytest.raises(EvalkitError, match="--expert-band"):
        Trainer(TrainConfig(stage="sr1", out=str(tmp_path / "x"), expert_band=0.7, device="cpu"), text_encoder=HashTextEncoder())


def test_band_power_puts_the_expected_share_of_t_next_to_the_top_of_the_band(tmp_path):
    import evalkit.imagen.diffusion as diffusion

    generator = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    uniform = diffusion.sample_times(20000, 1.0, generator=generator(), band=(0.78, 1.0))
    assert torch.equal(uniform, 0.78 + 0.22 * torch.rand(20000, generator=generator()))  # power 1: drawn as before
    tilted = diffusion.sample_times(20000, 1.0, generator=generator(), band=(0.78, 1.0), band_power=3.0)
    assert bool((tilted >= 0.78).all()) and bool((tilted <= 1.0).all())
    top = 1.0 - 0.14 * 0.22  # the band's top 14%: share 0.14^(1/3) = 0.519 of the draws, not 0.14
    assert abs(float((tilted >= top).float().mean()) - 0.14 ** (1 / 3)) < 0.015
    assert abs(float((uniform >= top).float().mean()) - 0.14) < 0.015
    with pytest.raises(ValueError, match="band_power"):
        diffusion.sample_times(4, 1.0, band=(0.78, 1.0), band_power=0.5)
    tiny = {"dim": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "attn_levels": (1,), "cond_dim": 16, "heads": 2,
            "image_size": 8}

    def config(out, **changes):
        return TrainConfig(stage="base", out=str(out), steps=1, batch_size=4, lr=1e-3, warmup_steps=1, save_every=1,
                           model=tiny, device="cpu", **changes)

    with pytest.raises(EvalkitError, match="needs --expert-band"):
        Trainer(config(tmp_path / "a", band_power=2.0), text_encoder=HashTextEncoder(max_tokens=16))
    with pytest.raises(EvalkitError, match="must be >= 1"):
        Trainer(config(tmp_path / "b", band_power=0.5, expert_band=0.7), text_encoder=HashTextEncoder(max_tokens=16))
    trainer = Trainer(config(tmp_path / "c", band_power=3.0, expert_band=0.7), text_encoder=HashTextEncoder(max_tokens=16))
    trainer.run()
    assert json.loads((tmp_path / "c" / "base_expert.json").read_text())["training"]["band_power"] == 3.0
    plain = Trainer(config(tmp_path / "d", expert_band=0.7), text_encoder=HashTextEncoder(max_tokens=16))
    assert "band_power" not in plain.stage().training  # configs trained without it read as before


def test_an_expert_fine_tune_starts_from_the_checkpoints_expert_and_else_from_its_base(tmp_path):
    tiny = {"dim": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "attn_levels": (1,), "cond_dim": 16, "heads": 2,
            "image_size": 8}
    encoder = HashTextEncoder(max_tokens=16)

    def train(out, **changes):
        settings = {"model": tiny, **changes}
        config = TrainConfig(stage="base", out=str(out), steps=1, batch_size=4, lr=1e-3, warmup_steps=1, save_every=1,
                             device="cpu", **settings)
        return Trainer(config, text_encoder=encoder)

    base = train(tmp_path / "ckpt")
    base.run()
    first = train(tmp_path / "ckpt", expert_band=0.7, model={**tiny, "prediction": "eps"})
    first.run()
    saved = Stage.load(tmp_path / "ckpt", "base_expert", experts=False).model.state_dict()
    again = train(tmp_path / "again", expert_band=0.7, init_from=str(tmp_path / "ckpt"))
    assert again.init_from["steps"] == 1 and again.init_stage == "base_expert"
    assert again.model_config["prediction"] == "eps"  # continued as it was trained, not the new-expert default v
    assert all(torch.equal(value, saved[key]) for key, value in again.model.state_dict().items())
    (tmp_path / "ckpt" / "base_expert.json").unlink()
    from_base = train(tmp_path / "other", expert_band=0.7, init_from=str(tmp_path / "ckpt"), model={"prediction": "eps"})
    assert from_base.init_stage == "base"


def test_x0_outputs_convert_to_v_and_weigh_x0_errors_as_eps_outputs_do():
    from evalkit.imagen.diffusion import loss_weights

    gen = torch.Generator().manual_seed(1)
    x0, noise = torch.rand(3, 3, 8, 8, generator=gen) * 2 - 1, torch.randn(3, 3, 8, 8, generator=gen)
    alpha, sigma = SCHEDULE.alpha_sigma(torch.tensor([0.8, 0.9, 1.0]))
    x_t = alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * noise
    assert torch.allclose(as_v("x0", x0, x_t, alpha, sigma), prediction_target("v", x0, noise, alpha, sigma), atol=1e-5)
    log_snr = SCHEDULE.log_snr(torch.tensor([0.05, 0.3, 0.6, 0.9]))
    for weighting, gamma in (("min-snr", 5.0), ("truncated-snr", None)):
        assert torch.allclose(loss_weights(log_snr, weighting, gamma, "x0"),
                              loss_weights(log_snr, weighting, gamma, "eps") * log_snr.exp(), rtol=1e-4)


def test_a_low_resolution_expert_sees_only_its_own_resolution():
    model = randomize(build_model({**tiny_base_config(), "prediction": "x0", "work_size": 4}))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4)  # zero mean in every 2x2 block
    tokens, mask, t = torch.randn(2, 3, 16), torch.ones(2, 3, dtype=torch.bool), torch.tensor([0.9, 0.8])
    with torch.no_grad():
        out = model(x, t, tokens, mask)
        assert out.shape == x.shape
        assert torch.allclose(model(x + 0.5 * checker, t, tokens, mask), out, atol=1e-5)
        assert not torch.allclose(model(x + 0.5, t, tokens, mask), out, atol=1e-3)
    for bad in ({"prediction": "eps", "work_size": 4}, {"prediction": "x0", "work_size": 3}):
        with pytest.raises(ValueError, match="work_size"):
            build_model({**tiny_base_config(), **bad})


def test_the_expert_band_gets_its_own_guidance_and_step_count():
    """band_steps puts that many grid steps in [band_t, 1] (the ensemble's expert takes exactly those) and
    band_guidance guides those steps with its own w; without band fields a config is what it was."""
    calls = []

    class Recording(torch.nn.Module):
        def __init__(self, name, scale):
            super().__init__()
            self.name, self.scale, self.config = name, scale, SimpleNamespace(prediction="x0")

        def forward(self, x, t, tokens, mask, lowres=None, aug_level=None):
            calls.append((self.name, x.shape[0], round(float(t[0]), 4)))
            return self.scale * torch.tanh(x) + 0.2 * tokens.sum(dim=(1, 2)).reshape(-1, 1, 1, 1)

    ensemble = NoiseBandEnsemble(Recording("main", 0.5), Recording("expert", 0.3), 0.78, SCHEDULE)
    tokens, mask = torch.ones(2, 1, 4), torch.ones(2, 1, dtype=torch.bool)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa: E731
    plain = SamplerConfig(steps=16, guidance=3.0, threshold="static", guidance_min_t=0.5)
    uniform = sample(ensemble, SCHEDULE, tokens, mask, gens(), 8, plain)
    assert [n for n, _, _ in calls].count("expert") == 4  # 1, 0.9375, 0.875, 0.8125 on the uniform grid
    calls.clear()
    six = replace(plain, band_t=0.78, band_steps=6, band_guidance=5.0).validate()
    banded = sample(ensemble, SCHEDULE, tokens, mask, gens(), 8, six)
    assert [(n, b) for n, b, _ in calls[:6]] == [("expert", 4)] * 6 and all(n == "main" for n, _, _ in calls[6:])
    assert len(calls) == 16 and calls[5][2] == 0.78 and not torch.allclose(banded, uniform)
    assert [six.step_guidance(float(s)) for s in six.grid()[:-1]] == [5.0] * 6 + [3.0] * 3 + [1.0] * 7
    # the band's w equal to the stage's and its step count equal to the uniform grid's: the same images
    calls.clear()
    same = sample(ensemble, SCHEDULE, tokens, mask, gens(), 8, replace(plain, band_t=0.78, band_guidance=3.0))
    assert torch.equal(same, uniform)
    assert plain.to_dict() == SamplerConfig(**plain.to_dict()).to_dict() and "band_t" not in plain.to_dict()
    for bad, match in (({"band_steps": 6}, "need band_t"), ({"band_t": 1.0}, "band_t"),
                       ({"band_t": 0.78, "band_steps": 1}, "band_steps"), ({"band_t": 0.78, "band_steps": 16}, "band_steps")):
        with pytest.raises(ValueError, match=match):
            replace(plain, **bad).validate()
