"""The inception extractor's fast paths (OpenVINO fp32, BatchNorm-folded torch) against the plain torch-fidelity
network, run by torch-fidelity itself on the same images and the same random weights.

Tolerance: max |ours - theirs| <= 1e-5 x max |theirs| per feature matrix (float32 sums in another order: measured
~7e-7 for both backends), i.e. far below what moves FID at 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.metrics.extractors import ExtractorOptions, create_extractor
from evalkit.metrics.extractors import inception_runtime
from evalkit.metrics.extractors.inception import InceptionFeatures

RELATIVE = 1e-5


@pytest.fixture(scope="module")
def images_299(tmp_path_factory):
    """Five 299x299 colour fields: at the network's input size every resize mode is the identity, so torch-fidelity's
    own forward (uint8 in, its tf1 resize, its normalisation) sees exactly what the extractor feeds the layers."""
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("images-299")
    paths = []
    for i in range(5):
        coarse = rng.uniform(0, 255, size=(7, 7, 3)).astype(np.uint8)
        paths.append(folder / f"{i}.png")
        Image.fromarray(coarse).resize((299, 299), Image.BICUBIC).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights whose BatchNorms are not the identity (fresh ones have mean 0, var 1, scale 1, shift 0), so
    folding them into the convolutions is really exercised; saved as a state dict like the real file."""
    from evalkit.metrics.inception import random_network

    net = random_network(seed=5)
    generator = torch.Generator().manual_seed(5)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.3, 0.3), (module.running_var, 0.5, 2.0),
                                      (module.weight.data, 0.5, 1.5), (module.bias.data, -0.2, 0.2)):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    path = tmp_path_factory.mktemp("bn-weights") / "inception-bn.pth"
    torch.save(net.state_dict(), path)
    return path


def torch_fidelity_features(weights, paths) -> np.ndarray:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    batch = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths])
    with torch.inference_mode():
        return net.eval()(batch)[0].numpy()


def assert_same_features(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape == (len(theirs), 2048)
    assert np.abs(theirs).max() > 0.1  # informative features, not a near-zero network
    assert np.abs(ours - theirs).max() <= RELATIVE * np.abs(theirs).max()


def backends() -> list:
    skip = pytest.mark.skipif(not inception_runtime.openvino_available(), reason="openvino is not installed")
    return ["torch", pytest.param("openvino", marks=skip)]


@pytest.mark.parametrize("backend", backends())
def test_backend_gives_torch_fidelity_features(backend, weights, images_299):
    theirs = torch_fidelity_features(weights, images_299)
    # batch_size 2 with 5 images: a last batch of one, which two OpenVINO streams split into a single part
    ours = create_extractor("inception", ExtractorOptions(weights=weights, batch_size=2, workers=1,
                                                          settings={"resize": "tf1", "backend": backend}))
    assert ours.description()["backend"] == backend
    assert_same_features(ours.compute(images_299), theirs)


def test_auto_picks_openvino_on_cpu_only_when_installed(inception_weights):
    expected = "openvino" if inception_runtime.openvino_available() else "torch"
    assert InceptionFeatures(inception_weights).backend == expected
    assert inception_runtime.resolve_backend("auto", "cuda:0") == "torch"


def test_bad_backend_is_a_clear_error(inception_weights):
    with pytest.raises(EvalkitError, match="backend"):
        create_extractor("inception", ExtractorOptions(weights=inception_weights, settings={"backend": "tensorrt"}))
    with pytest.raises(EvalkitError, match="CPU only"):
        inception_runtime.resolve_backend("openvino", "cuda")


def test_folding_batchnorm_keeps_the_maths(weights):
    """The torch path's folding alone against the unfolded layers, on a random input batch."""
    from evalkit.metrics.inception import load_network, pool3_features

    plain_net, folded = load_network(weights), inception_runtime.torch_forward(load_network(weights), "cpu")
    x = torch.randn(3, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert_same_features(folded(x).numpy(), pool3_features(plain_net, x).numpy())


@pytest.mark.skipif(not inception_runtime.openvino_available(), reason="openvino is not installed")
def test_openvino_conversion_is_cached_and_a_damaged_entry_replaced(weights, images_299, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(inception_runtime, "_COMPILED", {})

    def features():
        inception_runtime._COMPILED.clear()  # as in a new process
        return InceptionFeatures(weights, resize="tf1", backend="openvino", workers=0).compute(images_299[:2])

    first = features()
    cached = inception_runtime.converted_model_path(InceptionFeatures(weights).weights_sha256)
    assert cached.is_file() and cached.with_suffix(".bin").is_file()
    convert = inception_runtime._convert
    monkeypatch.setattr(inception_runtime, "_convert", lambda net: pytest.fail("converted again despite the cache"))
    assert np.array_equal(features(), first)
    cached.write_text("<not an IR")
    monkeypatch.setattr(inception_runtime, "_convert", convert)
    assert np.array_equal(features(), first) and cached.read_text().startswith("<?xml")
