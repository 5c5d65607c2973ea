import pytest
import torch

from evalkit.imagen.cascade import ImagenCascade
from evalkit.imagen.train import TrainConfig, Trainer, lr_factor

from .helpers import HashTextEncoder

TINY = {"dim": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "attn_levels": (1,), "cond_dim": 16, "heads": 2,
        "image_size": 8}


def tiny_trainer(tmp_path, steps, text_layers: int = 1, **overrides):
    settings = dict(stage="base", out=str(tmp_path), steps=steps, batch_size=16, lr=3e-3, warmup_steps=2,
                    save_every=10, log_every=5, model=TINY, device="cpu", min_snr_gamma=None)
    config = TrainConfig(**{**settings, **overrides})
    return Trainer(config, text_encoder=HashTextEncoder(max_tokens=16, layers=text_layers))


def test_tiny_training_lowers_the_loss_and_writes_a_loadable_stage(tmp_path):
    torch.manual_seed(0)
    trainer = tiny_trainer(tmp_path, 60)
    before = trainer.model.state_dict()["stem.weight"].clone()
    result = trainer.run()
    assert result["step"] == 60
    losses = [float(line.split(",")[1]) for line in (tmp_path / "train/base/loss.csv").read_text().splitlines()[1:]]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:2]) / 2
    assert not torch.equal(before, trainer.model.state_dict()["stem.weight"])
    cascade = ImagenCascade.from_pretrained(tmp_path, text_encoder=HashTextEncoder())
    assert cascade.generate(["a red circle"], [0]).shape == (1, 3, 8, 8)


def test_resume_continues_from_the_saved_step(tmp_path):
    first = tiny_trainer(tmp_path, 10)
    first.run()
    resumed = tiny_trainer(tmp_path, 14)
    assert resumed.step == 10
    for a, b in zip(first.ema.parameters(), resumed.ema.parameters()):
        assert torch.equal(a, b)
    assert resumed.run()["step"] == 14
    restarted = tiny_trainer(tmp_path, 14, resume=False)
    assert restarted.step == 0


def test_sr_stage_trains_with_noise_augmentation(tmp_path):
    config = TrainConfig(stage="sr1", out=str(tmp_path), steps=3, batch_size=4, warmup_steps=1, device="cpu",
                         model={"dim": 8, "channel_mults": (1, 2), "num_res_blocks": (1, 1), "attn_levels": (1,),
                                "cond_dim": 16, "heads": 2, "image_size": 16, "lowres_size": 8}, optimizer="adafactor")
    result = Trainer(config, text_encoder=HashTextEncoder()).run()
    assert result["step"] == 3 and (tmp_path / "sr1.safetensors").is_file()


def test_a_plain_unet_sr_stage_trains_and_samples_in_a_cascade(tmp_path):
    tiny_trainer(tmp_path, 2).run()
    config = TrainConfig(stage="sr1", out=str(tmp_path), steps=2, batch_size=4, warmup_steps=1, device="cpu", unet="plain",
                         model={**TINY, "image_size": 16, "lowres_size": 8})
    Trainer(config, text_encoder=HashTextEncoder(max_tokens=16)).run()
    cascade = ImagenCascade.from_pretrained(tmp_path, text_encoder=HashTextEncoder(max_tokens=16))
    assert [s.model_config["type"] for s in cascade.stages] == ["unet", "unet"]
    assert cascade.generate(["a red circle"], [0]).shape == (1, 3, 16, 16)


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, config) == 0.1 and lr_factor(9, config) == 1.0
    assert abs(lr_factor(100, config) - 0.1) < 1e-9
    assert lr_factor(50, config) < lr_factor(20, config)


def test_stop_at_splits_a_run_without_changing_its_schedule(tmp_path):
    trainer = tiny_trainer(tmp_path, 20, stop_at=6)
    assert trainer.run()["step"] == 6
    resumed = tiny_trainer(tmp_path, 20)
    assert resumed.step == 6 and abs(resumed.scheduler.get_last_lr()[0] - 3e-3 * lr_factor(6, resumed.config)) < 1e-9


def test_train_command_rejects_bad_input(capsys):
    from evalkit.cli import main

    assert main(["train", "imagen", "--stage", "base", "--data", "/no/such/folder", "--device", "cpu",
                 "--model-opt", "dim=8", "--model-opt", "channel_mults=[1,2]", "--model-opt", "attn_levels=[1]",
                 "--out", "/tmp/evalkit-test-unused"]) == 2
    assert "not 'toyworld' and not a folder" in capsys.readouterr().err


def test_fine_tuning_adds_coordinate_channels_without_changing_the_start(tmp_path):
    """--init-from a checkpoint without coordinate planes: the new zero layer leaves predictions unchanged."""
    tiny_trainer(tmp_path / "old", 3).run()
    trainer = tiny_trainer(tmp_path / "new", 3, init_from=str(tmp_path / "old"), model={**TINY, "coord_channels": True})
    old = ImagenCascade.from_pretrained(tmp_path / "old", text_encoder=HashTextEncoder()).stages[0].model
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([0.3, 0.8])
    tokens, mask = torch.randn(2, 4, 16), torch.ones(2, 4, dtype=torch.bool)
    with torch.no_grad():
        expected = old(x, t, tokens, mask)
        got = trainer.model.eval()(x, t, tokens, mask)
    assert torch.allclose(got, expected, atol=1e-6)
    assert trainer.stage().training["init_from"]["new_layers"] == ["coord"]
    trainer.run()
    assert trainer.model.coord.weight.abs().sum() > 0  # the new layer learns


def test_coordinate_planes_tell_positions_apart():
    from evalkit.imagen.unet import coordinate_planes

    planes = coordinate_planes(torch.zeros(2, 3, 4, 4))
    assert planes.shape == (2, 2, 4, 4)
    assert planes[0, 0, 0, 0] < planes[0, 0, 0, 3] and planes[0, 1, 0, 0] < planes[0, 1, 3, 0]  # x grows right, y down
    assert torch.allclose(planes[0, 0, :, 0], torch.full((4,), -0.75))


def test_init_from_a_different_model_is_a_clear_error(tmp_path):
    from evalkit.errors import EvalkitError

    tiny_trainer(tmp_path / "old", 2).run()
    with pytest.raises(EvalkitError, match="does not fit"):
        tiny_trainer(tmp_path / "new", 2, init_from=str(tmp_path / "old"), model={**TINY, "dim": 16})


def test_train_command_rejects_a_bad_category_mix(capsys):
    from evalkit.cli import main

    assert main(["train", "imagen", "--stage", "base", "--toy-mix", "Shapes=1", "--out", "/tmp/evalkit-test-unused"]) == 2
    err = capsys.readouterr().err
    assert "unknown toy-world categories Shapes" in err and len(err.strip().splitlines()) == 1


def test_init_from_keeps_the_checkpoint_architecture_by_default(tmp_path):
    tiny_trainer(tmp_path / "old", 2).run()
    trainer = tiny_trainer(tmp_path / "new", 2, init_from=str(tmp_path / "old"), model={})
    assert trainer.model_config == ImagenCascade.from_pretrained(tmp_path / "old", text_encoder=HashTextEncoder()).stages[0].model_config


def test_truncated_snr_weighting_stresses_high_noise_and_trains(tmp_path):
    from evalkit.imagen.diffusion import TRUNCATED_SNR_CAP, Schedule, loss_weights

    schedule = Schedule("cosine")
    t = torch.tensor([0.05, 0.5, 0.9, 1.0])
    snr = schedule.log_snr(t).exp()
    truncated = loss_weights(schedule.log_snr(t), "truncated-snr")
    # x0-space weight max(SNR, 1): eps weight 1 at low noise, 1/SNR at high noise, capped
    assert torch.allclose(truncated[:2], torch.clamp(1 / snr[:2], min=1.0))
    assert truncated[2] > 10 and truncated[3] == TRUNCATED_SNR_CAP
    assert torch.allclose(loss_weights(schedule.log_snr(t), "min-snr", 5.0), torch.clamp(5.0 / snr, max=1.0))
    result = tiny_trainer(tmp_path, 4, loss_weighting="truncated-snr").run()
    assert result["step"] == 4 and result["last_loss"] > 0
    from evalkit.errors import EvalkitError

    with pytest.raises(EvalkitError, match="loss-weighting"):
        tiny_trainer(tmp_path / "bad", 1, loss_weighting="snr+1")


def test_fine_tuning_adds_early_encoder_layers_without_changing_the_start(tmp_path):
    """--init-from a last-layer-only checkpoint with --text-layers last,0: a new zero text branch, same start."""
    tiny_trainer(tmp_path / "old", 3).run()
    trainer = tiny_trainer(tmp_path / "new", 3, text_layers=2, init_from=str(tmp_path / "old"), model={})
    assert trainer.model_config["extra_text_dim"] == 16
    assert set(trainer.stage().training["init_from"]["new_layers"]) == {"text.extra_norm", "text.extra_proj"}
    old = ImagenCascade.from_pretrained(tmp_path / "old", text_encoder=HashTextEncoder()).stages[0].model
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([0.3, 0.8])
    text = HashTextEncoder(layers=2).encode(["a red circle on the left", "two blue squares"])
    with torch.no_grad():
        expected = old(x, t, text.tokens[..., :16], text.mask)
        got = trainer.model.eval()(x, t, text.tokens, text.mask)
    assert torch.allclose(got, expected, atol=1e-6)
    trainer.run()
    assert trainer.model.text.extra_proj.weight.abs().sum() > 0  # the early-layer branch learns
    stage = ImagenCascade.from_pretrained(tmp_path / "new", text_encoder=HashTextEncoder(layers=2)).stages[0]
    assert stage.text_encoder["layers"] == [-1, 0] and stage.model_config["extra_text_dim"] == 16


def test_init_from_a_checkpoint_of_another_text_encoder_is_a_clear_error(tmp_path):
    from evalkit.errors import EvalkitError

    tiny_trainer(tmp_path / "old", 2).run()
    meta_path = tmp_path / "old" / "base.json"
    meta_path.write_text(meta_path.read_text().replace('"kind": "hash"', '"kind": "t5"'))
    with pytest.raises(EvalkitError, match="another text encoder"):
        tiny_trainer(tmp_path / "new", 2, init_from=str(tmp_path / "old"), model={})


def test_text_layers_option_parses_last_and_rejects_garbage(capsys):
    from evalkit.cli import main
    from evalkit.cli.args import layer_list

    assert layer_list("last,0") == [-1, 0] and layer_list("6,0") == [6, 0]
    with pytest.raises(SystemExit) as exit_info:  # argparse's own one-line usage error
        main(["train", "imagen", "--stage", "base", "--text-layers", "last,x", "--out", "/tmp/evalkit-test-unused"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "expected layer indices" in err and "Traceback" not in err


def test_fine_tuning_inherits_the_checkpoints_encoder_layers(tmp_path):
    """A base trained on last,0 needs no --text-layers to be fine-tuned; an explicit choice still wins."""
    import argparse
    import json

    from evalkit.cli.train_cmd import _checkpoint_layers
    from evalkit.imagen.cascade import FORMAT, VERSION

    (tmp_path / "base.json").write_text(json.dumps({"format": FORMAT, "version": VERSION, "model": {},
                                                    "text_encoder": {"kind": "minilm", "layers": [-1, 0]}}))
    args = argparse.Namespace(init_from=str(tmp_path), stage="base", text_encoder="minilm")
    assert _checkpoint_layers(args) == [-1, 0]
    assert _checkpoint_layers(argparse.Namespace(init_from=None, stage="base", text_encoder="minilm")) == [-1]
    assert _checkpoint_layers(argparse.Namespace(init_from=str(tmp_path), stage="base", text_encoder="t5")) == [-1]


def test_fine_tuning_adds_a_token_refiner_attention_positions_and_a_layout_bias_without_changing_the_start(tmp_path):
    """The relation-reading layers are zero at start: an older checkpoint fine-tunes from exactly what it computed."""
    tiny_trainer(tmp_path / "old", 3).run()
    new_model = {**TINY, "text_refiner_layers": 1, "attn_position": True, "text_layout_bias": True}
    trainer = tiny_trainer(tmp_path / "new", 3, init_from=str(tmp_path / "old"), model=new_model)
    old = ImagenCascade.from_pretrained(tmp_path / "old", text_encoder=HashTextEncoder()).stages[0].model
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([0.3, 0.8])
    tokens, mask = torch.randn(2, 4, 16), torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(trainer.model.eval()(x, t, tokens, mask), old(x, t, tokens, mask), atol=1e-6)
    new_layers = trainer.stage().training["init_from"]["new_layers"]
    assert any(name.startswith("text.refiner.0") for name in new_layers)
    assert any(name.endswith("position") for name in new_layers)
    assert any(name.startswith("layout_bias") for name in new_layers)
    trainer.run()
    refiner_out = trainer.model.text.refiner[0].mlp[-1].weight
    assert refiner_out.abs().sum() > 0  # the new layers learn
    reloaded = ImagenCascade.from_pretrained(tmp_path / "new", text_encoder=HashTextEncoder()).stages[0]
    assert reloaded.model.config.text_refiner_layers == 1 and reloaded.model.config.attn_position


def test_v_prediction_weights_equal_the_eps_weights_in_x0_terms_and_train(tmp_path):
    """v-MSE weighs x0 errors by SNR + 1, eps-MSE by SNR: the same x0 weighting must come out either way."""
    from evalkit.imagen.diffusion import Schedule, loss_weights

    log_snr = Schedule("cosine").log_snr(torch.tensor([0.05, 0.3, 0.6, 0.9]))
    snr = log_snr.exp()
    for weighting, gamma in (("min-snr", 5.0), ("truncated-snr", None)):
        x0_from_eps = loss_weights(log_snr, weighting, gamma, "eps") * snr
        x0_from_v = loss_weights(log_snr, weighting, gamma, "v") * (snr + 1)
        assert torch.allclose(x0_from_v, x0_from_eps, rtol=1e-4)
    torch.manual_seed(0)
    trainer = tiny_trainer(tmp_path, 40, model={**TINY, "prediction": "v"})
    trainer.run()
    losses = [float(line.split(",")[1]) for line in (tmp_path / "train/base/loss.csv").read_text().splitlines()[1:]]
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2
    stage = ImagenCascade.from_pretrained(tmp_path, text_encoder=HashTextEncoder()).stages[0]
    assert stage.model.config.prediction == "v"
    with pytest.raises(ValueError, match="prediction"):
        from evalkit.imagen.unet import UNet, UNetConfig

        UNet(UNetConfig(**{**TINY, "prediction": "x1"}))


def test_model_options_take_json_or_a_bare_word():
    from evalkit.cli.train_cmd import _model_overrides
    from evalkit.errors import EvalkitError

    assert _model_overrides([("prediction", "v"), ("attn_levels", "[1,2]"), ("attn_position", "true")]) == \
        {"prediction": "v", "attn_levels": (1, 2), "attn_position": True}
    with pytest.raises(EvalkitError, match="must be JSON"):
        _model_overrides([("attn_levels", "[1,2")])


def test_high_noise_share_puts_that_share_of_the_batch_in_the_layout_band(tmp_path):
    from evalkit.errors import EvalkitError
    from evalkit.imagen.diffusion import HIGH_NOISE_BAND, sample_times

    t = sample_times(1000, 0.5, generator=torch.Generator().manual_seed(0))
    low, high = HIGH_NOISE_BAND
    assert t.shape == (1000,) and bool(((t[:500] >= low) & (t[:500] <= high)).all())
    assert 0.4 < float((t[500:] < 0.5).float().mean()) < 0.6  # the rest stays uniform on [0, 1]
    assert torch.equal(sample_times(8, 0.0, generator=torch.Generator().manual_seed(1)),
                       torch.rand(8, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(EvalkitError, match="high-noise-share"):
        tiny_trainer(tmp_path, 1, high_noise_share=1.5)
    trainer = tiny_trainer(tmp_path / "ok", 2, high_noise_share=0.5)
    trainer.run()
    assert trainer.stage().training["high_noise_share"] == 0.5
