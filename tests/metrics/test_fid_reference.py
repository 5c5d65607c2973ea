"""FID and KID agree with torchmetrics and pytorch-fid on the same images and the same (random) network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evalkit.cli import metrics_cmd
from evalkit.metrics import extractors
from evalkit.metrics.kid import kernel_inception_distance
from evalkit.metrics.score import ScoringConfig, distance
from tests.metrics.conftest import load_uint8_batch


@pytest.fixture(scope="module")
def config(inception_weights):
    return ScoringConfig(weights={"inception-2015-12-05": inception_weights}, progress=False)


@pytest.fixture(scope="module")
def features(folders, inception_weights):
    """Each folder's features through the extractor seam (cached: the distance() calls below reuse them)."""
    from evalkit.images import list_images

    net = extractors.create_extractor("inception", extractors.ExtractorOptions(weights=inception_weights))
    return [extractors.features(list_images(folder), net) for folder in folders]


def fid_of(folders, config, a=0, b=1) -> float:
    # distance(A, B): A the reference side, B the generated side; FID is symmetric
    return distance(folders[a], folders[b], ["fid"], config=config)["metrics"]["fid"]["overall"]["value"]


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


def test_fid_equals_torchmetrics(folders, config, torchmetrics_fid):
    ours = fid_of(folders, config)
    assert torchmetrics_fid > 1.0  # informative random features, not the ~1e-12 of a default-initialised net
    assert ours == pytest.approx(torchmetrics_fid, rel=1e-4)


def test_fid_equals_pytorch_fid_on_same_features(folders, config, features):
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = features
    ours = fid_of(folders, config)
    # pytorch-fid computes statistics with np.cov on the feature matrix; sqrtm on rank-deficient inputs needs its
    # eps fallback, so compare on its own statistics.
    theirs = calculate_frechet_distance(a.astype(np.float64).mean(0), np.cov(a, rowvar=False),
                                        b.astype(np.float64).mean(0), np.cov(b, rowvar=False))
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_kid_equals_torchmetrics(torchmetrics_features, features):
    from torchmetrics.image.kid import KernelInceptionDistance

    fake, real = torchmetrics_features
    metric = KernelInceptionDistance(feature=_Precomputed(), subsets=10, subset_size=8)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(123)
    theirs_mean, theirs_std = (float(v) for v in metric.compute())
    # Same subsets: torchmetrics draws them from the global generator, real side first, as we do.
    torch.manual_seed(123)
    ours = kernel_inception_distance(features[1], features[0], subsets=10, subset_size=8)
    assert abs(theirs_mean) > 1e-6
    assert ours["kid"] == pytest.approx(theirs_mean, rel=1e-4)
    assert ours["kid_std"] == pytest.approx(theirs_std, rel=1e-3)


def test_kid_of_identical_sets_is_near_zero_and_seeded(folders, inception_weights):
    config = ScoringConfig(weights={"inception-2015-12-05": inception_weights}, seed=7, progress=False)
    options = {"kid.subsets": 5, "kid.subset_size": 6}
    first = distance(folders[0], folders[0], ["fid", "kid"], options, config)["metrics"]
    again = distance(folders[0], folders[0], ["fid", "kid"], options, config)["metrics"]
    assert first["kid"]["overall"] == again["kid"]["overall"]
    assert abs(first["fid"]["overall"]["value"]) < 1e-4  # rounding only (the traces are ~1e2)


def test_cli_fid_json_matches_torchmetrics(folders, inception_weights, torchmetrics_fid, capsys):
    parser = __import__("argparse").ArgumentParser()
    metrics_cmd.register(parser.add_subparsers())
    # `evalkit fid A B`: A the reference side, B the generated side
    args = parser.parse_args(["fid", str(folders[1]), str(folders[0]), "--weights", str(inception_weights), "--json",
                              "--kid-subset-size", "8", "--kid-subsets", "5"])
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    fid = result["metrics"]["fid"]
    assert fid["overall"]["value"] == pytest.approx(torchmetrics_fid, rel=1e-4)
    assert (fid["key"]["reference"]["n"], fid["overall"]["n"]) == (12, 10)
    assert fid["key"]["extractor"]["preprocessing"]["resize"] == "torchmetrics"
    assert result["metrics"]["kid"]["details"]["subset_size"] == 8
    assert "rank-deficient" in captured.err
