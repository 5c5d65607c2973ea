"""Precision/recall equal torch-fidelity's, density/coverage (and precision/recall at k = 5) the prdc package's on
the same features; ties follow each reference's convention; blocks, float32 input and rescaling change nothing;
bad input is an EvalkitError. The slow test measures time and peak memory at 30,000 x 2048 per side."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from prdc import compute_prdc
from torch_fidelity.metric_prc import prc_features_to_metric

import evalkit.metrics.prdc as prdc_module
from evalkit.errors import EvalkitError
from evalkit.metrics.prdc import prdc

KEYS = ("precision", "recall", "density", "coverage")


def manifold_features(rng, n, dim, shift=0.0, intrinsic=8):
    """Non-negative features near a low-dimensional manifold (as pooled CNN features are), so k-NN balls vary."""
    basis = np.random.default_rng(1234).normal(size=(intrinsic, dim))
    z = rng.normal(shift, 1, size=(n, intrinsic))
    return np.maximum(z @ basis / 3 + 0.3 * rng.normal(size=(n, dim)) + 0.5, 0)


def naver_prdc(real, fake, k):
    return {key: float(value) for key, value in compute_prdc(real, fake, nearest_k=k).items()}


def fidelity_pr(real, fake, k):
    """torch-fidelity's feature-level precision/recall; its convention: features_1 generated, features_2 real."""
    out = prc_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), prc_neighborhood=k,
                                 prc_batch_size=10_000, save_cpu_ram=False, verbose=False)
    return out["precision"], out["recall"]


CASES = [(300, 250, 16, 0.0), (400, 500, 64, 0.3), (250, 200, 512, 0.5), (200, 220, 2048, 0.2)]


@pytest.mark.parametrize("n, m, dim, shift", CASES)
def test_density_coverage_and_k5_precision_recall_equal_prdc_package(n, m, dim, shift):
    rng = np.random.default_rng(n + dim)
    real, fake = manifold_features(rng, n, dim), manifold_features(rng, m, dim, shift)
    expected = naver_prdc(real, fake, 5)
    ours = prdc(real, fake, k_pr=5, k_dc=5)
    assert {key: ours[key] for key in KEYS} == pytest.approx(expected, abs=1e-12)
    assert 0 < ours["density"] and 0 < ours["coverage"] < 1  # not a degenerate case


@pytest.mark.parametrize("n, m, dim, shift", CASES)
def test_k3_precision_recall_equal_torch_fidelity(n, m, dim, shift):
    rng = np.random.default_rng(n + dim + 1)
    real, fake = manifold_features(rng, n, dim), manifold_features(rng, m, dim, shift)
    precision, recall = fidelity_pr(real, fake, 3)
    ours = prdc(real, fake)
    # (torch-fidelity averages in float32)
    assert ours["precision"] == pytest.approx(precision, abs=1e-6) and ours["recall"] == pytest.approx(recall, abs=1e-6)
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1


def test_ties_follow_each_reference():
    """On a small integer lattice many distances tie exactly with a k-NN radius: torch-fidelity counts the sphere
    as inside ("<="), the prdc package does not ("<"), and the numbers differ a lot; each half matches its own."""
    rng = np.random.default_rng(0)
    real = rng.integers(0, 3, size=(200, 4)).astype(np.float64)
    fake = rng.integers(0, 3, size=(150, 4)) + (rng.random((150, 4)) < 0.1).astype(np.float64)
    for k in (3, 5):
        ours = prdc(real, fake, k_pr=k, k_dc=k)
        naver = naver_prdc(real, fake, k)
        precision, recall = fidelity_pr(real, fake, k)
        assert (ours["precision"], ours["recall"]) == pytest.approx((precision, recall), abs=1e-6)
        assert (ours["density"], ours["coverage"]) == pytest.approx((naver["density"], naver["coverage"]), abs=1e-12)
        assert abs(naver["precision"] - precision) > 0.1  # the conventions really differ here


def test_blocks_do_not_change_anything():
    rng = np.random.default_rng(5)
    real, fake = manifold_features(rng, 157, 96), manifold_features(rng, 131, 96, 0.4)
    lattice = rng.integers(0, 3, size=(60, 3)).astype(np.float64), rng.integers(0, 3, size=(50, 3)).astype(float)
    for x, y in ((real, fake), lattice):
        whole = prdc(x, y, chunk=10_000)
        for chunk in (1, 5, 64):
            assert prdc(x, y, chunk=chunk) == whole


def test_float32_input_decides_as_its_float64_values():
    rng = np.random.default_rng(6)
    real, fake = manifold_features(rng, 300, 256).astype(np.float32), manifold_features(rng, 280, 256, 0.3)
    fake = fake.astype(np.float32)
    ours = prdc(real, fake, k_pr=5)
    assert ours == prdc(real.astype(np.float64), fake.astype(np.float64), k_pr=5)
    expected = naver_prdc(real.astype(np.float64), fake.astype(np.float64), 5)
    assert {key: ours[key] for key in KEYS} == pytest.approx(expected, abs=1e-12)


def test_every_pair_recomputed_in_float64_gives_the_same_result(monkeypatch):
    """The float32 screen only decides pairs its error bound makes certain: with an infinite bound every pair is
    recomputed in float64, and nothing changes."""
    rng = np.random.default_rng(7)
    real, fake = manifold_features(rng, 120, 64), manifold_features(rng, 100, 64, 0.3)
    screened = prdc(real, fake)
    monkeypatch.setattr(prdc_module, "screening_error_coefficient", lambda dim: float("inf"))
    assert prdc(real, fake) == screened


@pytest.mark.parametrize("centred", [False, True])
def test_float32_screening_error_is_within_its_bound(centred):
    """The bound the exactness rests on, also where the norm expansion cancels most (large offsets, close points,
    not centred)."""
    rng = np.random.default_rng(8)
    for dim in (16, 512, 2048):
        base = 100 + rng.normal(size=(1, dim))
        a = base + 1e-2 * rng.normal(size=(64, dim))
        b = base + 1e-2 * rng.normal(size=(80, dim))
        centre = torch.from_numpy(base[0] if centred else np.zeros(dim))
        side_a, side_b = (prdc_module._FeatureSet(v, centre, 1.0, None) for v in (a, b))
        screened = prdc_module._screened_sq_dists(side_a, slice(0, 64), side_b).double()
        exact = torch.from_numpy(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        bound = prdc_module.screening_error_coefficient(dim) * (side_a.sq64[:, None] + side_b.sq64[None, :])
        ratio = float(((screened - exact).abs() / bound).max())
        assert 0 < ratio < 0.5  # real rounding error, comfortably inside the bound (which has a 2x margin)


@pytest.mark.parametrize("factor", [2.0**70, 2.0**-70, 1e-30, 3e25])
def test_tiny_and_huge_features_give_the_same_result(factor):
    rng = np.random.default_rng(9)
    real, fake = manifold_features(rng, 80, 32), manifold_features(rng, 70, 32, 0.3)
    expected = prdc(real, fake, k_pr=5)
    scaled = prdc(real * factor, fake * factor, k_pr=5)
    assert {key: scaled[key] for key in KEYS} == pytest.approx({key: expected[key] for key in KEYS}, abs=1e-12)
    assert {key: scaled[key] for key in KEYS} == pytest.approx(naver_prdc(real * factor, fake * factor, 5), abs=1e-12)


def test_subsampling_is_seeded_recorded_and_what_it_says():
    rng = np.random.default_rng(10)
    real, fake = manifold_features(rng, 200, 32), manifold_features(rng, 90, 32, 0.3)
    out = prdc(real, fake, max_samples=120, seed=3)
    assert (out["n_real"], out["n_fake"], out["n_real_given"], out["n_fake_given"]) == (120, 90, 200, 90)
    assert out["subsampled_real"] and not out["subsampled_fake"] and (out["max_samples"], out["seed"]) == (120, 3)
    # the documented draw: numpy.random.default_rng(seed), real side first, without replacement
    chosen = np.random.default_rng(3).choice(200, 120, replace=False)
    direct = prdc(real[chosen], fake)
    assert {key: out[key] for key in KEYS} == {key: direct[key] for key in KEYS}
    assert prdc(real, fake, max_samples=120, seed=3) == out
    other_seeds = [prdc(real, fake, max_samples=120, seed=s) for s in range(4, 8)]
    assert any(o["density"] != out["density"] for o in other_seeds)
    full = prdc(real, fake, max_samples=500)
    assert not full["subsampled_real"] and not full["subsampled_fake"] and full["n_real"] == 200


@pytest.mark.parametrize(
    "real, fake, kwargs, message",
    [
        (np.full((10, 3), np.nan), np.ones((10, 3)), {}, "NaN"),
        (np.ones((10, 3)), np.ones((10, 3)) * np.inf, {}, "NaN or infinite"),
        (np.ones((10, 3)), np.ones((10, 4)), {}, "dimensions differ"),
        (np.ones((5, 3)), np.ones((10, 3)), {}, r"at least 6 samples \(k=5"),
        (np.ones((10, 3)), np.ones((3, 3)), {}, r"at least 4 samples \(k=3"),
        (np.ones((10, 3)), np.ones((10, 3)), {"k_pr": 0}, "k_pr"),
        (np.ones((10, 3)), np.ones((10, 3)), {"k_dc": 2.5}, "k_dc"),
        (np.ones((10, 3)), np.ones((10, 3)), {"chunk": 0}, "chunk"),
        (np.ones((10, 3)), np.ones((10, 3)), {"max_samples": 4}, "too few samples"),
        (np.ones(10), np.ones((10, 1)), {}, "2-D"),
    ],
)
def test_bad_input_is_a_clear_error(real, fake, kwargs, message):
    with pytest.raises(EvalkitError, match=message):
        prdc(real, fake, **kwargs)


_MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    metric, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(32, dim)).astype(np.float32)
    def features(shift):
        z = rng.normal(shift, 1, size=(n, 32)).astype(np.float32)
        noise = rng.normal(size=(n, dim)).astype(np.float32)
        return np.maximum(z @ basis / 6 + 0.3 * noise + 0.4, 0, dtype=np.float32)
    real, fake = features(0.0), features(0.2)
    if metric.startswith("cmmd"):
        real /= np.linalg.norm(real, axis=1, keepdims=True)
        fake /= np.linalg.norm(fake, axis=1, keepdims=True)
    import torch
    from evalkit.metrics.cmmd import cmmd
    from evalkit.metrics.prdc import prdc
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    if metric == "prdc":
        value = {k: v for k, v in prdc(real, fake).items() if k in ("precision", "recall", "density", "coverage")}
    else:
        value = cmmd(real, fake, estimator=metric.split("-")[1])
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu
    print(json.dumps({"metric": metric, "n": n, "dim": dim, "seconds": round(seconds, 1),
                      "cpu_seconds": round(cpu, 1), "value": value,
                      "peak_rss_mib": round(peak / 1024), "inputs_rss_mib": round(before / 1024),
                      "threads": torch.get_num_threads()}))
""")


def measure_cost(metric: str, n: int = 30_000, dim: int = 2048) -> dict:
    """Wall and CPU time and peak RSS (resource.getrusage, in a fresh process) of one metric on n x dim float32
    features per side; ``metric``: "prdc", "cmmd-biased" or "cmmd-unbiased". For the perf benchmark and the slow
    test. (peak_rss_mib includes the inputs, torch and the data generation's temporaries: inputs_rss_mib.)"""
    done = subprocess.run([sys.executable, "-c", _MEASURE, metric, str(n), str(dim)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_at_30k_by_2048_stays_under_4_gib():
    cost = measure_cost("prdc")
    print(cost)
    assert cost["peak_rss_mib"] < 4096
