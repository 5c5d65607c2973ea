import json
import warnings

import pytest
import torch

from evalkit.errors import EvalkitError
from evalkit.imagen.cascade import ImagenCascade, to_pil

from evalkit.imagen.efficient_unet import build_model

from .helpers import TEXT_DIM, HashTextEncoder, randomize, tiny_cascade


def test_cascade_output_shape_and_same_seed_same_image_regardless_of_batch():
    cascade = tiny_cascade()
    images = cascade.generate(["a red circle", "two blue squares", "a green cross"], [7, 8, 9])
    assert images.shape == (3, 3, 16, 16) and images.abs().max() <= 1
    alone = cascade.generate(["two blue squares"], [8])
    assert torch.allclose(alone[0], images[1], atol=1e-5)
    again = cascade.generate(["a green cross", "two blue squares"], [9, 8])
    assert torch.allclose(again[1], images[1], atol=1e-5)
    assert not torch.allclose(cascade.generate(["two blue squares"], [99])[0], images[1])
    pil = to_pil(images)
    assert pil[0].size == (16, 16) and pil[0].mode == "RGB"


def test_text_embeddings_are_cached_per_prompt():
    cascade = tiny_cascade()
    encoder = cascade.text_encoder
    cascade.generate(["a red circle", "a red circle"], [1, 2])
    calls = encoder.calls
    cascade.generate(["a red circle"], [3])
    assert encoder.calls == calls


def test_save_load_gives_identical_samples(tmp_path):
    cascade = tiny_cascade()
    # Weights are stored as float16; round them first so the comparison is exact.
    for stage in cascade.stages:
        with torch.no_grad():
            for p in stage.model.parameters():
                p.copy_(p.half().float())
    cascade.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.json", "base.safetensors", "sr1.json", "sr1.safetensors"]
    loaded = ImagenCascade.from_pretrained(tmp_path, text_encoder=HashTextEncoder())
    prompts, seeds = ["a yellow triangle", "three purple squares"], [1, 2]
    assert torch.equal(cascade.generate(prompts, seeds), loaded.generate(prompts, seeds))
    assert loaded.checkpoint_hash() == cascade.checkpoint_hash()
    assert loaded.stages[1].sampling == cascade.stages[1].sampling
    base_only = ImagenCascade.from_pretrained(tmp_path, num_stages=1, text_encoder=HashTextEncoder())
    assert base_only.image_size == 8


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(EvalkitError, match="does not exist"):
        ImagenCascade.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(EvalkitError, match="base.json is missing"):
        ImagenCascade.from_pretrained(tmp_path)
    tiny_cascade().save_pretrained(tmp_path)
    weights = tmp_path / "base.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(EvalkitError, match="corrupt"):
        ImagenCascade.from_pretrained(tmp_path)
    weights.write_bytes(good)
    meta = json.loads((tmp_path / "base.json").read_text())
    meta["model"]["dim"] = 16
    (tmp_path / "base.json").write_text(json.dumps(meta))
    with pytest.raises(EvalkitError, match="does not match"):
        ImagenCascade.from_pretrained(tmp_path)
    (tmp_path / "base.json").write_text("{not json")
    with pytest.raises(EvalkitError, match="not valid JSON"):
        ImagenCascade.from_pretrained(tmp_path)
    (tmp_path / "base.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(EvalkitError, match="not an Imagen checkpoint"):
        ImagenCascade.from_pretrained(tmp_path)


def test_sr_stage_must_match_previous_size():
    cascade = tiny_cascade()
    with pytest.raises(EvalkitError, match="does not upsample"):
        ImagenCascade([cascade.stages[0], cascade.stages[1], cascade.stages[1]])
    with pytest.raises(EvalkitError, match="starts with a base"):
        ImagenCascade([cascade.stages[1]])


def test_too_long_prompts_are_truncated_and_recorded():
    encoder = HashTextEncoder(max_tokens=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = encoder.encode(["one two three four five six", "short prompt"])
    assert out.tokens.shape[1] == 4 and out.mask[0].all()
    assert encoder.truncated == {"one two three four five six"}
    assert any("truncated" in str(w.message) for w in caught)


def test_minilm_encoder_loads_offline_and_truncates():
    from evalkit.imagen.text_encoders import load_text_encoder

    encoder = load_text_encoder({"kind": "minilm", "max_tokens": 8})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = encoder.encode(["a red circle", "a very long prompt with many many words in it that goes on"])
    assert out.tokens.shape == (2, 8, 384) and out.pooled.shape == (2, 384)
    assert out.mask[0].sum() == 5 and out.mask[1].all()  # [CLS] a red circle [SEP]
    assert len(encoder.truncated) == 1
    assert not any(p.requires_grad for p in encoder.model.parameters())
    with pytest.raises(EvalkitError, match="unknown text encoder"):
        load_text_encoder({"kind": "gpt"})
    with pytest.raises(EvalkitError, match="needs a local folder"):
        load_text_encoder({"kind": "t5"})


def test_sr_stages_read_the_leading_features_of_a_base_with_early_encoder_layers():
    from dataclasses import replace

    from evalkit.imagen.cascade import reads_prefix_of

    cascade = tiny_cascade()
    encoder = HashTextEncoder(layers=2)
    base = cascade.stages[0]
    config = {**base.model_config, "extra_text_dim": TEXT_DIM}
    wide = replace(base, model=randomize(build_model(config)), model_config=config, text_encoder=encoder.spec())
    images = ImagenCascade([wide, cascade.stages[1]], text_encoder=encoder).generate(["a red circle"], [0])
    assert images.shape == (1, 3, 16, 16)
    assert reads_prefix_of({"kind": "minilm"}, {"kind": "minilm", "layers": [-1, 0]})
    assert not reads_prefix_of({"kind": "minilm", "layers": [-1, 0]}, {"kind": "minilm"})
    assert not reads_prefix_of({"kind": "minilm", "layers": [0]}, {"kind": "minilm", "layers": [-1, 0]})
    assert not reads_prefix_of({"kind": "t5"}, {"kind": "minilm", "layers": [-1, 0]})
