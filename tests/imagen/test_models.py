import math

import pytest
import torch

from evalkit.imagen.efficient_unet import build_model
from evalkit.imagen.sampling import SamplerConfig, guided_prediction, null_condition
from evalkit.imagen.thresholding import apply_threshold, dynamic_threshold, static_threshold

from .helpers import TEXT_DIM, randomize, tiny_base_config, tiny_sr_config


def text(batch=2, length=5):
    tokens = torch.randn(batch, length, TEXT_DIM)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, 3:] = False
    return tokens, mask


def test_base_unet_shapes_and_dtype():
    model = randomize(build_model(tiny_base_config()))
    tokens, mask = text()
    out = model(torch.randn(2, 3, 8, 8), torch.rand(2), tokens, mask)
    assert out.shape == (2, 3, 8, 8) and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("kind", ["efficient_unet", "unet"])
def test_sr_unets_shapes_and_use_lowres(kind):
    config = tiny_sr_config()
    if kind == "unet":  # the plain super-resolution U-Net, the Efficient U-Net's baseline
        config = {**tiny_base_config(), "image_size": 16, "lowres_size": 8}
    model = randomize(build_model(config))
    tokens, mask = text()
    x, low = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 8, 8)
    out = model(x, torch.rand(2), tokens, mask, low, torch.zeros(2))
    assert out.shape == (2, 3, 16, 16)
    assert not torch.allclose(out, model(x, torch.rand(2), tokens, mask, -low, torch.zeros(2)))
    with pytest.raises(ValueError):
        model(x, torch.rand(2), tokens, mask)


def test_efficient_unet_rejects_attention_in_last_stage():
    config = tiny_sr_config()
    config["attn_levels"] = [0]
    with pytest.raises(ValueError, match="no attention"):
        build_model(config)


def test_padding_tokens_do_not_change_the_prediction():
    model = randomize(build_model(tiny_base_config()))
    tokens, mask = text(1, 3)
    x, t = torch.randn(1, 3, 8, 8), torch.rand(1)
    padded = torch.cat([tokens, torch.randn(1, 4, TEXT_DIM)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 4, dtype=torch.bool)], dim=1)
    assert torch.allclose(model(x, t, tokens, mask), model(x, t, padded, padded_mask), atol=1e-5)


def test_guidance_one_equals_conditional_and_formula_holds():
    model = randomize(build_model(tiny_base_config()))
    tokens, mask = text()
    x, t = torch.randn(2, 3, 8, 8), torch.rand(1)
    cond = model(x, t.expand(2), tokens, mask)
    uncond = model(x, t.expand(2), *null_condition(tokens, mask))
    assert torch.equal(guided_prediction(model, x, t, tokens, mask, 1.0), cond)
    w = 3.5
    assert torch.allclose(guided_prediction(model, x, t, tokens, mask, w), w * cond + (1 - w) * uncond, atol=1e-5)
    assert torch.allclose(guided_prediction(model, x, t, tokens, mask, 0.0), uncond, atol=1e-5)


def test_dynamic_threshold_matches_the_formula():
    torch.manual_seed(0)
    x0 = torch.randn(3, 3, 8, 8) * torch.tensor([0.3, 2.0, 5.0])[:, None, None, None]
    out = dynamic_threshold(x0, 0.995)
    for i in range(3):
        flat = x0[i].abs().flatten().numpy()
        import numpy as np

        s = max(1.0, float(np.quantile(flat, 0.995)))
        expected = np.clip(x0[i].numpy(), -s, s) / s
        assert np.allclose(out[i].numpy(), expected, atol=1e-6)
    assert torch.allclose(out[0], x0[0].clamp(-1, 1))  # s = 1 when |x0| stays small: plain clipping
    assert out.abs().max() <= 1.0
    assert torch.equal(static_threshold(x0), x0.clamp(-1, 1))
    assert torch.equal(apply_threshold(x0, "none"), x0)


def test_dynamic_threshold_differs_from_diffusers_default_clamp():
    """diffusers' _threshold_sample clamps s to sample_max_value (1.0 by default): that is static clipping."""
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDPMScheduler(thresholding=True, dynamic_thresholding_ratio=0.995, sample_max_value=1.0)
    torch.manual_seed(1)
    x0 = torch.randn(2, 3, 8, 8) * 4
    assert torch.allclose(scheduler._threshold_sample(x0.clone()), static_threshold(x0), atol=1e-6)
    unbounded = diffusers.DDPMScheduler(thresholding=True, dynamic_thresholding_ratio=0.995, sample_max_value=1e9)
    assert torch.allclose(unbounded._threshold_sample(x0.clone()), dynamic_threshold(x0), atol=1e-5)
    assert not torch.allclose(dynamic_threshold(x0), static_threshold(x0))


def test_sampler_config_validation():
    with pytest.raises(ValueError):
        SamplerConfig(sampler="euler").validate()
    with pytest.raises(ValueError):
        SamplerConfig(steps=0).validate()
    with pytest.raises(ValueError):
        SamplerConfig(threshold="soft").validate()
    assert math.isclose(SamplerConfig().validate().percentile, 0.995)


def test_text_coordinate_bias_starts_at_zero_and_depends_on_the_text():
    from evalkit.imagen.unet import TextCoordinateBias

    bias = TextCoordinateBias(emb_dim=6, channels=4)
    h, emb = torch.randn(2, 4, 8, 8), torch.randn(2, 6)
    assert torch.equal(bias(h, emb), h)  # zero-initialised: loading older weights changes nothing
    with torch.no_grad():
        bias.to_coeff.weight.normal_()
    delta = bias(h, emb) - h
    assert not torch.allclose(delta[0], delta[1])  # the ramp differs per prompt
    assert torch.allclose(delta[:, :, :, 0] + delta[:, :, :, -1], delta[:, :, :, 3] + delta[:, :, :, 4], atol=1e-5)  # linear in x
    loss = (bias(h, emb)[:, :, :, :4].sum() - bias(h, emb)[:, :, :, 4:].sum())
    bias.to_coeff.weight.grad = None
    loss.backward()
    assert bias.to_coeff.weight.grad.abs().sum() > 0


def test_text_conditioner_extra_features_start_at_zero_and_wrong_widths_are_refused():
    from evalkit.imagen.layers import TextConditioner

    torch.manual_seed(0)
    plain, extended = TextConditioner(16, 8, 12, heads=2), TextConditioner(16, 8, 12, heads=2, extra_dim=16)
    extended.load_state_dict(plain.state_dict(), strict=False)
    tokens, mask = torch.randn(2, 5, 32), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        for got, expected in zip(extended(tokens, mask), plain(tokens[..., :16], mask)):
            assert torch.allclose(got, expected, atol=1e-6)
        torch.nn.init.normal_(extended.extra_proj.weight)
        assert not torch.allclose(extended(tokens, mask)[2], plain(tokens[..., :16], mask)[2])
    with pytest.raises(ValueError, match="takes 32"):
        extended(tokens[..., :16], mask)


def test_plain_sr_presets_are_about_the_efficient_unets_size():
    from evalkit.imagen.presets import model_config

    for stage in ("sr1", "sr2"):
        efficient, plain = build_model(model_config(stage, 384)), build_model(model_config(stage, 384, "plain"))
        sizes = [sum(p.numel() for p in m.parameters()) for m in (efficient, plain)]
        assert type(plain).__name__ == "UNet" and plain.config.lowres_size == efficient.config.lowres_size
        assert abs(sizes[1] / sizes[0] - 1) < 0.1, sizes
    with pytest.raises(ValueError, match="unknown U-Net kind"):
        model_config("sr1", 384, "tiny")


def test_token_refiner_keeps_padding_out_and_survives_dropped_text():
    from evalkit.imagen.layers import TextConditioner

    torch.manual_seed(0)
    cond = TextConditioner(16, 8, 12, heads=2, refiner_layers=2)
    for block in cond.refiner:  # as after training: the residual branches are no longer zero
        torch.nn.init.normal_(block.mlp[-1].weight, std=0.5)
        torch.nn.init.normal_(block.attn.out_proj.weight, std=0.5)
    tokens, mask = torch.randn(2, 5, 16), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    tokens[1, :3] = tokens[0, :3]  # same prompt, different padding values
    with torch.no_grad():
        context, context_mask, pooled = cond(tokens, mask)
        assert torch.allclose(pooled[0], pooled[1], atol=1e-6) and torch.allclose(context[0], context[1], atol=1e-6)
        assert torch.all(context[:, 4:] == 0)  # padding (after the null token) stays zero
        _, _, dropped = cond(torch.zeros_like(tokens), torch.zeros_like(mask))  # classifier-free guidance's branch
        assert torch.isfinite(dropped).all()


def test_attention_positions_tell_pixels_apart():
    from evalkit.imagen.layers import coordinate_features

    features = coordinate_features(4, 6)
    assert features.shape == (24, 18)
    assert torch.unique(features, dim=0).shape[0] == 24
    assert features[5, 0] > features[0, 0] and features[6, 1] > features[0, 1]  # x grows along a row, y down rows


def test_token_layout_bias_starts_at_zero_and_its_first_gradient_tells_words_apart():
    """Two prompts that differ in one token, targets that differ in where things go: the zero-initialised map gets a
    gradient at once (no saddle), and after one step the two prompts get different maps."""
    from evalkit.imagen.unet import TokenLayoutBias

    torch.manual_seed(0)
    bias = TokenLayoutBias(cond_dim=6, channels=3)
    h = torch.zeros(2, 3, 8, 8)
    context, mask = torch.randn(1, 4, 6).repeat(2, 1, 1), torch.ones(2, 4, dtype=torch.bool)
    context[1, 2] = torch.randn(6)  # "left" vs "right"
    mask[:, 3] = False
    assert torch.equal(bias(h, context, mask), h)
    padded = context.clone()
    padded[:, 3] = 100.0  # masked tokens must not matter
    target = torch.zeros(2, 3, 8, 8)
    target[0, :, :, :3], target[1, :, :, 5:] = 1.0, 1.0  # prompt 0 wants its object left, prompt 1 right
    loss = ((bias(h, padded, mask) - target) ** 2).mean()
    loss.backward()
    assert bias.to_coeff.weight.grad.abs().sum() > 0
    with torch.no_grad():
        bias.to_coeff.weight -= 10.0 * bias.to_coeff.weight.grad
        bias.to_coeff.bias -= 10.0 * bias.to_coeff.bias.grad
        maps = bias(h, padded, mask)
        assert torch.allclose(maps, bias(h, context, mask))
    left_minus_right = maps[:, :, :, :3].mean(dim=(1, 2, 3)) - maps[:, :, :, 5:].mean(dim=(1, 2, 3))
    assert left_minus_right[0] > left_minus_right[1]
