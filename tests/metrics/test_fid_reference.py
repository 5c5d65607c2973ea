"""FID and KID agree with torchmetrics and pytorch-fid on the same images and the same (random) network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evalkit.cli import metrics_cmd
from evalkit.metrics.compare import compare
from evalkit.metrics.features import InceptionExtractor
from evalkit.metrics.kid import kernel_inception_distance
from evalkit.metrics.sources import load_image_set
from tests.metrics.conftest import load_uint8_batch


@pytest.fixture(scope="module")
def extractor(inception_weights):
    return InceptionExtractor(inception_weights, resize="torchmetrics", workers=2)


@pytest.fixture(scope="module")
def sides(folders, extractor):
    return load_image_set(folders[0], extractor), load_image_set(folders[1], extractor)


class _Precomputed(torch.nn.Module):
    """Lets torchmetrics' FID/KID consume features torchmetrics' own Inception already extracted (one pass)."""

    num_features = 2048

    def forward(self, features):
        return features


@pytest.fixture(scope="module")
def torchmetrics_features(folders, inception_weights):
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(inception_weights))
    with torch.no_grad():
        return [net(load_uint8_batch(folder)).double() for folder in folders]


@pytest.fixture(scope="module")
def torchmetrics_fid(torchmetrics_features):
    from torchmetrics.image.fid import FrechetInceptionDistance

    fake, real = torchmetrics_features
    metric = FrechetInceptionDistance(feature=_Precomputed())
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def test_fid_equals_torchmetrics(sides, extractor, torchmetrics_fid):
    ours = compare(*sides, extractor, kid=False)["fid"]
    assert torchmetrics_fid > 1.0  # informative random features, not the ~1e-12 of a default-initialised net
    assert ours == pytest.approx(torchmetrics_fid, rel=1e-4)


def test_fid_equals_pytorch_fid_on_same_features(sides, extractor):
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = sides
    ours = compare(a, b, extractor, kid=False)["fid"]
    # pytorch-fid computes statistics with np.cov on the feature matrix; sqrtm on rank-deficient inputs needs its
    # eps fallback, so compare on its own statistics.
    theirs = calculate_frechet_distance(a.features.astype(np.float64).mean(0), np.cov(a.features, rowvar=False),
                                        b.features.astype(np.float64).mean(0), np.cov(b.features, rowvar=False))
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_kid_equals_torchmetrics(torchmetrics_features, sides):
    from torchmetrics.image.kid import KernelInceptionDistance

    fake, real = torchmetrics_features
    metric = KernelInceptionDistance(feature=_Precomputed(), subsets=10, subset_size=8)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(123)
    theirs_mean, theirs_std = (float(v) for v in metric.compute())
    # Same subsets: torchmetrics draws them from the global generator, real side first, as we do.
    torch.manual_seed(123)
    ours = kernel_inception_distance(sides[1].features, sides[0].features, subsets=10, subset_size=8)
    assert abs(theirs_mean) > 1e-6
    assert ours["kid"] == pytest.approx(theirs_mean, rel=1e-4)
    assert ours["kid_std"] == pytest.approx(theirs_std, rel=1e-3)


def test_kid_of_identical_sets_is_near_zero_and_seeded(sides, extractor):
    a, _ = sides
    first = compare(a, a, extractor, kid_subsets=5, kid_subset_size=6, seed=7)
    again = compare(a, a, extractor, kid_subsets=5, kid_subset_size=6, seed=7)
    assert first["kid"] == again["kid"]
    assert abs(first["fid"]) < 1e-4  # rounding only (the traces are ~1e2)


def test_cli_fid_json_matches_torchmetrics(folders, inception_weights, torchmetrics_fid, capsys):
    parser = __import__("argparse").ArgumentParser()
    metrics_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["fid", str(folders[0]), str(folders[1]), "--weights", str(inception_weights), "--json",
                              "--kid-subset-size", "8", "--kid-subsets", "5"])
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["fid"] == pytest.approx(torchmetrics_fid, rel=1e-4)
    assert (result["n_a"], result["n_b"]) == (10, 12)
    assert result["resize"] == "torchmetrics"
    assert "rank-deficient" in captured.err and "KID" in captured.err
