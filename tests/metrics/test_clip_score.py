"""CLIP score equals a direct open_clip cosine computation with torchmetrics' formula, and its CIs behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.metrics.bootstrap import mean_ci
from evalkit.metrics.clip_score import ClipScorer
from evalkit.images import list_images
from tests.metrics.conftest import TINY_CLIP

PROMPTS = ["a red cube on a table", "two green spheres", "a blue cat wearing a hat"]


def test_clip_score_equals_direct_open_clip_cosine(clip_weights, folders):
    import open_clip

    paths = list_images(folders[0])[:6]
    prompts = [PROMPTS[i % 3] for i in range(len(paths))]
    ours = ClipScorer(TINY_CLIP, "test", weights_path=clip_weights, workers=0).scores(paths, prompts)

    model, _, preprocess = open_clip.create_model_and_transforms(TINY_CLIP, pretrained=None)
    model.load_state_dict(torch.load(clip_weights, weights_only=True))
    model.eval()
    tokenizer = open_clip.get_tokenizer(TINY_CLIP)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths]))
        text = model.encode_text(tokenizer(prompts))
    # torchmetrics' formula: 100 * cosine of L2-normalised embeddings, clamped at 0.
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    expected = torch.clamp(100 * (image * text).sum(-1), min=0).numpy()
    assert np.allclose(ours, expected, rtol=1e-5, atol=1e-4)
    assert ours.min() >= 0 and len(set(np.round(ours, 4))) > 1


def test_unknown_clip_model_without_weights_is_a_clear_error():
    with pytest.raises(EvalkitError, match="--clip-weights"):
        ClipScorer("ViT-B-32", "laion-nonexistent")


def test_wrong_checkpoint_for_model_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.pt"
    torch.save({"not": torch.zeros(1)}, bogus)
    with pytest.raises(EvalkitError, match="not a checkpoint"):
        ClipScorer(TINY_CLIP, "test", weights_path=bogus)


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = mean_ci(rng.normal(30, 2, size=20), resamples=2000, seed=1)
    large = mean_ci(rng.normal(30, 2, size=2000), resamples=2000, seed=1)
    assert small["ci_low"] < small["mean"] < small["ci_high"]
    assert (large["ci_high"] - large["ci_low"]) < (small["ci_high"] - small["ci_low"]) / 5
    # the standard error of a mean of 2000 N(30, 2) draws is 0.045: a 95% interval is ~0.18 wide
    assert 0.12 < large["ci_high"] - large["ci_low"] < 0.24
    assert mean_ci([5.0])["ci_low"] is None and mean_ci([])["n"] == 0
