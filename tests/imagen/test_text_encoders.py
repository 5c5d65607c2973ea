"""T5 and CLIP text encoders load from local weights (random, tiny, saved to tmp dirs: no downloads here)."""

import json
import shutil
import warnings

import pytest
import torch

from evalkit.errors import EvalkitError
from evalkit.imagen.text_encoders import load_text_encoder, minilm_path


def test_t5_encoder_from_a_local_folder(tmp_path):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    config = T5Config(vocab_size=30522, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)
    T5EncoderModel(config).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm_path() / name, tmp_path / name)  # any local tokenizer will do for a random model
    encoder = load_text_encoder({"kind": "t5", "max_tokens": 6}, path=str(tmp_path))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = encoder.encode(["a red circle", "one two three four five six seven"])
    assert encoder.dim == 32 and out.tokens.shape == (2, 6, 32)
    assert out.mask[0].sum() == 5 and out.mask[1].all() and len(encoder.truncated) == 1
    expected_pool = (out.tokens[0, :5]).mean(0)
    assert torch.allclose(out.pooled[0], expected_pool, atol=1e-5)
    with pytest.raises(EvalkitError, match="does not exist"):
        load_text_encoder({"kind": "t5"}, path=str(tmp_path / "missing"))


def test_clip_text_encoder_from_a_local_weights_file(tmp_path):
    import open_clip

    arch = "evalkit-tiny-clip"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / f"{arch}.json").write_text(json.dumps({
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }))
    open_clip.add_model_config(tmp_path / "configs")
    torch.manual_seed(0)
    model = open_clip.create_model(arch)
    weights = tmp_path / "tiny_clip.pt"
    torch.save(model.state_dict(), weights)
    encoder = load_text_encoder({"kind": "clip", "arch": arch, "max_tokens": 10}, path=str(weights))
    out = encoder.encode(["a red circle", "a blue square"])
    assert out.tokens.shape[0] == 2 and out.tokens.shape[2] == 32 and out.pooled.shape == (2, 16)
    ids = open_clip.get_tokenizer(arch)(["a red circle"])
    with torch.no_grad():
        reference = model.encode_text(ids)
    assert torch.allclose(out.pooled[0], reference[0], atol=1e-5)  # same as open_clip's own pooled text feature
    assert out.mask[0].sum() == 5  # <start> a red circle <end>
    with pytest.raises(EvalkitError, match="does not exist"):
        load_text_encoder({"kind": "clip", "arch": arch}, path=str(tmp_path / "missing.pt"))


def test_minilm_early_layers_are_concatenated_after_the_last_and_keep_position_words_apart():
    plain = load_text_encoder({"kind": "minilm", "max_tokens": 16})
    both = load_text_encoder({"kind": "minilm", "max_tokens": 16, "layers": [-1, 0]})
    assert both.dim == 768 and both.spec()["layers"] == [-1, 0] and "layers" not in plain.spec()
    prompts = ["a red circle on the left", "a red circle on the right"]
    a, b = plain.encode(prompts), both.encode(prompts)
    assert b.tokens.shape == (2, a.tokens.shape[1], 768)
    assert torch.allclose(b.tokens[..., :384], a.tokens, atol=1e-5)  # the last layer first, unchanged
    ids = both.tokenizer(prompts, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        embeddings = both.model.embeddings(input_ids=ids)
    assert torch.allclose(b.tokens[..., 384:], embeddings, atol=1e-5)  # hidden state 0 = the input embeddings
    word = 6  # [CLS] a red circle on the left/right
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(b.tokens[0, word, 384:], b.tokens[1, word, 384:], dim=0) < \
        cosine(b.tokens[0, word, :384], b.tokens[1, word, :384], dim=0) - 0.2
    with pytest.raises(EvalkitError, match="hidden states 0..6"):
        load_text_encoder({"kind": "minilm", "layers": [9]})
