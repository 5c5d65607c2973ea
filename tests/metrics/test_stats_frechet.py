"""Streaming statistics merge exactly; the eigenvalue Frechet distance equals scipy's sqrtm form."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from evalkit.errors import EvalkitError
from evalkit.metrics.frechet import FrechetReference, frechet_distance
from evalkit.metrics.stats import FeatureStats, GaussianStats


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_stats_equal_numpy_mean_and_cov():
    feats = np.random.default_rng(0).normal(size=(300, 16))
    stats = FeatureStats.of(feats, chunk=37).compute()
    assert np.allclose(stats.mu, feats.mean(0)) and np.allclose(stats.sigma, np.cov(feats, rowvar=False))
    assert stats.n == 300


def test_merge_of_partial_stats_equals_stats_of_union():
    rng = np.random.default_rng(1)
    part_a, part_b = rng.normal(size=(120, 8)), rng.normal(2, 3, size=(70, 8))
    merged = FeatureStats.of(part_a).merge(FeatureStats.of(part_b)).compute()
    union = FeatureStats.of(np.concatenate([part_a, part_b])).compute()
    assert merged.n == 190
    assert np.allclose(merged.mu, union.mu, rtol=1e-12) and np.allclose(merged.sigma, union.sigma, rtol=1e-12)
    with pytest.raises(ValueError):
        FeatureStats(8).merge(FeatureStats(4))


@pytest.mark.parametrize("dim", [4, 64, 256])
def test_frechet_equals_scipy_sqrtm_on_well_conditioned_inputs(dim):
    rng = np.random.default_rng(dim)
    x, y = rng.normal(size=(4 * dim, dim)), rng.normal(0.3, 1.2, size=(4 * dim, dim)) @ rng.normal(size=(dim, dim))
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    expected = scipy_frechet(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    # the cached reference square root gives the same answer on every later comparison
    reference = FrechetReference(mu1, s1)
    assert reference.distance(mu2, s2) == reference.distance(mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_cholesky_and_eigen_factors_agree(monkeypatch):
    import torch

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(200, 32)), rng.normal(0.5, 2, size=(200, 32))
    args = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    with_cholesky = frechet_distance(*args)
    failed = lambda a: (a, torch.tensor(1))  # noqa: E731  (as if the covariance were singular)
    monkeypatch.setattr(torch.linalg, "cholesky_ex", failed)
    assert frechet_distance(*args) == pytest.approx(with_cholesky, rel=1e-9)
    assert with_cholesky == pytest.approx(scipy_frechet(*args), rel=1e-8)


@pytest.mark.parametrize("n1, n2", [(10, 12), (12, 10), (40, 300), (300, 40)])
def test_feature_factor_path_equals_covariance_path(n1, n2):
    rng = np.random.default_rng(n1 + n2)
    x, y = rng.normal(size=(n1, 64)), rng.normal(0.5, 1.5, size=(n2, 64))
    sx, sy = FeatureStats.of(x).compute(), FeatureStats.of(y).compute()
    from_covariances = FrechetReference(sx.mu, sx.sigma).distance(sy.mu, sy.sigma)
    from_features = FrechetReference(sx.mu, sx.sigma, x).distance(sy.mu, sy.sigma, y)
    # (the covariance path takes square roots of rounding noise in the null space: ~1e-8 relative here)
    assert from_features == pytest.approx(from_covariances, rel=1e-7)
    if min(n1, n2) > 64:
        return
    assert from_features == pytest.approx(scipy_frechet(sx.mu, sx.sigma, sy.mu, sy.sigma), rel=1e-6)


def test_frechet_is_real_and_finite_on_singular_covariances():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 64)), rng.normal(1, 1, size=(12, 64))  # rank 9 and 11 in 64 dimensions
    value = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert isinstance(value, float) and np.isfinite(value) and value > 0
    same = frechet_distance(x.mean(0), np.cov(x, rowvar=False), x.mean(0), np.cov(x, rowvar=False))
    assert abs(same) < 1e-8 * np.trace(np.cov(x, rowvar=False)) * 64


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(EvalkitError, match="dimensions differ"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(EvalkitError, match=r"\(d, d\)"):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))


def test_npz_round_trip_and_pytorch_fid_format(tmp_path):
    rng = np.random.default_rng(4)
    stats = FeatureStats.of(rng.normal(size=(50, 6))).compute()
    stats.meta = {"resize": "clean"}
    stats.save(tmp_path / "ours.npz")
    back = GaussianStats.load(tmp_path / "ours.npz")
    assert np.array_equal(back.mu, stats.mu) and back.n == 50 and back.meta == {"resize": "clean"}
    # pytorch-fid / clean-fid files hold just mu and sigma
    np.savez(tmp_path / "theirs.npz", mu=stats.mu.astype(np.float32), sigma=stats.sigma)
    theirs = GaussianStats.load(tmp_path / "theirs.npz")
    assert theirs.n is None and theirs.mu.dtype == np.float64


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"mu": np.zeros(4)}, "no 'mu' and 'sigma'"),
        ({"mu": np.zeros(4), "sigma": np.zeros((4, 3))}, "expected mu of shape"),
        ({"mu": np.zeros((2, 2)), "sigma": np.zeros((2, 2))}, "expected mu of shape"),
        ({"mu": np.full(2, np.nan), "sigma": np.eye(2)}, "NaN"),
    ],
)
def test_bad_npz_files_are_clear_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(EvalkitError, match=message):
        GaussianStats.load(tmp_path / "bad.npz")


def test_non_npz_bytes_are_a_clear_error(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(EvalkitError, match="not a readable"):
        GaussianStats.load(tmp_path / "junk.npz")
