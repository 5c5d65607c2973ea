"""The CLIP extractors against independent code on the same random weights:
- ``clip``: open_clip's own preprocess + encode_image/encode_text, and torch-fidelity's vendored OpenAI CLIP network
  reading the same TorchScript file;
- ``clip-cleanfid``: clean-fid's own feature path (cleanfid.fid.get_files_features with its img_preprocess_clip and
  CLIP_fx), with the ``clip`` package it imports standing in as torch-fidelity's vendored OpenAI CLIP (the ``clip``
  package itself is not installed);
- ``clip-cmmd``: CMMD's io_util/embedding steps written out with PIL, on torch-fidelity's network.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.metrics.extractors import ExtractorOptions, create_extractor, extractor_weights
from evalkit.images import list_images
from tests.metrics.conftest import TINY_CLIP, TINY_OPENAI_CLIP

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def torch_fidelity_visual(weights):
    """torch-fidelity's own OpenAI-CLIP image tower, loaded from the TorchScript file by torch-fidelity itself."""
    from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP

    return FeatureExtractorCLIP("clip-vit-b-32", ["clip"], feature_extractor_weights_path=str(weights)).model.visual


def openai_extractor(name, weights, **settings):
    options = ExtractorOptions(weights=weights, workers=0, batch_size=2,
                               settings={"model": TINY_OPENAI_CLIP, "pretrained": "openai", **settings})
    return create_extractor(name, options)


def test_clip_images_and_texts_equal_open_clip(clip_weights, folders):
    import open_clip

    paths = list_images(folders[0])[:5]
    ours = create_extractor("clip", ExtractorOptions(weights=clip_weights, workers=0, batch_size=2,
                                                     settings={"model": TINY_CLIP, "pretrained": "test"}))
    model, _, preprocess = open_clip.create_model_and_transforms(TINY_CLIP, pretrained=None)
    model.load_state_dict(torch.load(clip_weights, weights_only=True))
    model.eval()
    long_prompt = " ".join(["a small red cube on top of a large blue sphere"] * 8)  # ~90 tokens
    prompts = ["a red cube", long_prompt, "two green spheres"]
    tokenizer = open_clip.get_tokenizer(TINY_CLIP)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths]))
        text = model.encode_text(tokenizer(prompts))
    assert np.allclose(ours.compute(paths), image.numpy(), rtol=1e-5, atol=1e-5)
    embeds, truncated = ours.encode_texts(prompts)
    assert np.allclose(embeds, text.numpy(), rtol=1e-5, atol=1e-5)
    # Independent count: the tokenizer's own rows with room for every token.
    full = (tokenizer(prompts, context_length=400) != 0).sum(dim=1)
    assert truncated == [bool(n > 77) for n in full] == [False, True, False]
    description = ours.description()
    assert description["normalised"] is False and description["dim"] == 32
    assert description["preprocessing"]["protocol"] == "open_clip" and description["weights_name"] is None


def test_prompt_of_exactly_the_context_length_is_not_truncated(clip_weights):
    import open_clip

    ours = create_extractor("clip", ExtractorOptions(weights=clip_weights, workers=0,
                                                     settings={"model": TINY_CLIP, "pretrained": "test"}))
    tokenizer = open_clip.get_tokenizer(TINY_CLIP)
    words = ["cube"] * 80
    lengths = {n: int((tokenizer(" ".join(words[:n]), context_length=400) != 0).sum()) for n in (75, 76)}
    assert lengths == {75: 77, 76: 78}  # one token per word, plus start and end
    _, truncated = ours.encode_texts([" ".join(words[:75]), " ".join(words[:76])])
    assert truncated == [False, True]


def test_openai_torchscript_clip_equals_torch_fidelity_network(openai_clip_weights, mixed_size_folder):
    import open_clip

    paths = list_images(mixed_size_folder)
    ours = openai_extractor("clip", openai_clip_weights)
    _, _, preprocess = open_clip.create_model_and_transforms(TINY_OPENAI_CLIP, pretrained=None)
    visual = torch_fidelity_visual(openai_clip_weights)
    with torch.no_grad():
        theirs = visual(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])).numpy()
    feats = ours.compute(paths)
    assert np.allclose(feats, theirs, rtol=1e-4, atol=1e-5)
    assert feats.std(axis=0).mean() > 1e-2  # informative: images differ
    assert "QuickGELU" in ours.description()["network"]


@pytest.fixture
def cleanfid_with_clip_package(monkeypatch, openai_clip_weights):
    """Import cleanfid.clip_features with a ``clip`` module whose load() returns torch-fidelity's OpenAI CLIP."""
    visual = torch_fidelity_visual(openai_clip_weights)

    class OpenAiClip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = visual

        def encode_image(self, x):
            return self.visual(x)

    fake = types.ModuleType("clip")
    fake.load = lambda name, device="cpu": (OpenAiClip().to(device), None)
    monkeypatch.setitem(sys.modules, "clip", fake)
    monkeypatch.delitem(sys.modules, "cleanfid.clip_features", raising=False)
    yield importlib.import_module("cleanfid.clip_features")
    sys.modules.pop("cleanfid.clip_features", None)


def test_clip_cleanfid_equals_clean_fid_code_path(cleanfid_with_clip_package, openai_clip_weights, mixed_size_folder):
    from cleanfid.fid import get_files_features

    clip_features = cleanfid_with_clip_package
    paths = list_images(mixed_size_folder)
    theirs = get_files_features([str(p) for p in paths], model=clip_features.CLIP_fx("ViT-B/32", device="cpu"),
                                num_workers=0, batch_size=2, device=torch.device("cpu"), mode="clean",
                                custom_fn_resize=clip_features.img_preprocess_clip, verbose=False)
    ours = openai_extractor("clip-cleanfid", openai_clip_weights)
    feats = ours.compute(paths)
    assert np.allclose(feats, theirs, rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.linalg.norm(feats, axis=1), 1.0)  # clean-fid does not normalise
    assert ours.description()["preprocessing"]["protocol"] == "clean-fid clip_vit_b_32"


def cmmd_reference_input(path, size):
    """cmmd/io_util.py _center_crop_and_resize + /255, embedding.py normalize_image (CLIP mean/std)."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), resample=Image.BICUBIC)
    x = torch.from_numpy(np.asarray(image).astype(np.float32) / 255.0).permute(2, 0, 1)
    return (x - CLIP_MEAN) / CLIP_STD


def test_clip_cmmd_equals_cmmd_steps(openai_clip_weights, mixed_size_folder):
    paths = list_images(mixed_size_folder)
    visual = torch_fidelity_visual(openai_clip_weights)
    with torch.no_grad():
        theirs = visual(torch.stack([cmmd_reference_input(p, 224) for p in paths]))
    theirs = (theirs / theirs.norm(dim=-1, keepdim=True)).numpy()
    ours = openai_extractor("clip-cmmd", openai_clip_weights)
    feats = ours.compute(paths)
    assert np.allclose(feats, theirs, rtol=1e-4, atol=1e-5)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert ours.description()["normalised"] is True
    # the crop is what tells CMMD's protocol from clean-fid's shorter-side resize on non-square images
    cleanfid = openai_extractor("clip-cleanfid", openai_clip_weights).compute(paths)
    cleanfid /= np.linalg.norm(cleanfid, axis=1, keepdims=True)
    assert not np.allclose(feats, cleanfid, atol=1e-4)


def test_clip_protocol_defaults_and_refusals(clip_weights):
    assert extractor_weights("clip-cmmd") == ["clip-ViT-L-14-336-openai"]
    assert extractor_weights("clip-cleanfid") == extractor_weights("clip") == ["clip-ViT-B-32-openai"]
    with pytest.raises(EvalkitError, match="resizes to 224 x 224"):  # TINY_CLIP takes 32 x 32 inputs
        create_extractor("clip-cleanfid", ExtractorOptions(weights=clip_weights,
                                                           settings={"model": TINY_CLIP, "pretrained": "test"}))
    with pytest.raises(EvalkitError, match=r"pass --weights clip=FILE"):
        create_extractor("clip", ExtractorOptions(settings={"model": TINY_CLIP, "pretrained": "test"}))
    with pytest.raises(EvalkitError, match="unknown open_clip model"):
        create_extractor("clip", ExtractorOptions(weights=clip_weights, settings={"model": "ViT-Q-99"}))
