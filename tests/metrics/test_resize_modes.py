"""Each resize mode reproduces the features of the implementation it is named after, on the same network."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

from evalkit.metrics.inception import load_network, pool3_features, preprocess


@pytest.fixture(scope="module")
def rgb_images():
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8) for _ in range(2)]


def ours(network, images, mode):
    with torch.inference_mode():
        return pool3_features(network, torch.stack([preprocess(x, mode) for x in images]))


def test_tf1_mode_equals_torch_fidelity_forward(inception_weights, rgb_images):
    network = load_network(inception_weights)
    with torch.inference_mode():
        (theirs,) = network(torch.stack([torch.tensor(x).permute(2, 0, 1) for x in rgb_images]))
    assert torch.allclose(ours(network, rgb_images, "tf1"), theirs, rtol=1e-4, atol=1e-5)


def test_torchmetrics_mode_equals_torchmetrics_extractor(inception_weights, rgb_images):
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(inception_weights))
    with torch.inference_mode():
        theirs = net(torch.stack([torch.tensor(x).permute(2, 0, 1) for x in rgb_images]))
    assert torch.allclose(ours(load_network(inception_weights), rgb_images, "torchmetrics"), theirs, rtol=1e-4,
                          atol=1e-5)


def test_pytorch_fid_mode_equals_pytorch_fid_network(inception_weights, rgb_images):
    import pytorch_fid.inception as pfi

    state = torch.load(inception_weights, weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", return_value=state):
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    batch = torch.stack([torch.tensor(x).permute(2, 0, 1).float() / 255 for x in rgb_images])
    with torch.inference_mode():
        theirs = model(batch)[0].flatten(1)
    assert torch.allclose(ours(load_network(inception_weights), rgb_images, "pytorch-fid"), theirs, rtol=1e-4,
                          atol=1e-5)


def test_clean_mode_equals_clean_fid_resize(rgb_images):
    resize = pytest.importorskip("cleanfid.resize")
    resizer = resize.make_resizer("PIL", False, "bicubic", (299, 299))  # clean-fid's "clean" mode
    for x in rgb_images:
        theirs = torch.from_numpy(np.asarray(resizer(x), dtype=np.float32)).permute(2, 0, 1)
        assert torch.allclose(preprocess(x, "clean") * 128 + 128, theirs, atol=1e-4)
