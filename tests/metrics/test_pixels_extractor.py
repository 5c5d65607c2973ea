"""The pixels extractor: block means computed independently with numpy, and FD/KID in its space equal to
torchmetrics / pytorch-fid on those same independent features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from evalkit.cli import main
from evalkit.metrics.extractors.base import ExtractorOptions, create_extractor


def _images(folder, seed, n, size=64):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return sorted(folder.iterdir())


def _block_means(paths, size):
    out = []
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
        k = rgb.shape[0] // size
        out.append(rgb.reshape(size, k, size, k, 3).mean(axis=(1, 3)).reshape(-1) / 255)
    return np.stack(out)


@pytest.mark.parametrize("size", ["8", "16"])
def test_features_are_the_block_means_of_the_image(tmp_path, size):
    paths = _images(tmp_path / "a", 0, 5)
    extractor = create_extractor("pixels", ExtractorOptions(settings={"size": size}))
    feats = extractor.compute(paths)
    assert feats.shape == (5, 3 * int(size) ** 2) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, _block_means(paths, int(size)), atol=1 / 255 + 1e-6)  # PIL rounds to uint8
    assert extractor.description()["weights_sha256"] == "none"


def test_fd_and_kid_in_pixel_space_match_independent_implementations(tmp_path, capsys):
    import torch
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torchmetrics.image.kid import KernelInceptionDistance

    a = _images(tmp_path / "a", 1, 60, size=32)
    b = _images(tmp_path / "b", 2, 50, size=32)
    code = main(["distance", str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "fd,kid", "--opt",
                 "fd.extractor=pixels", "--opt", "kid.extractor=pixels", "--opt", "kid.subset_size=40",
                 "--opt", "kid.subsets=20", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    stats = result["metrics"] if "metrics" in result else result
    fa, fb = _block_means(a, 16), _block_means(b, 16)
    expected = calculate_frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert stats["fd"]["overall"]["value"] == pytest.approx(expected, rel=2e-3)
    assert stats["fd"]["key"]["extractor"]["name"] == "pixels"

    class Features(torch.nn.Module):  # torchmetrics runs its own KID estimator on the independent features
        def forward(self, x):
            return x
    kid = KernelInceptionDistance(feature=Features(), subsets=20, subset_size=40)
    kid.update(torch.from_numpy(fa).float(), real=True)
    kid.update(torch.from_numpy(fb).float(), real=False)
    mean, _ = kid.compute()
    # both average random subsets: equal within the subsets' spread, not to the digit
    assert stats["kid"]["overall"]["value"] == pytest.approx(float(mean), abs=3 * float(_) + 1e-4)
