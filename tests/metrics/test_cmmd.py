"""CMMD equals a direct port of the published formula (google-research/cmmd distance.py, full kernel matrices)
for both estimators; blocks change nothing; known values; bad input is an EvalkitError. The slow test measures
time and peak memory at 30,000 x 2048 per side."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evalkit.errors import EvalkitError
from evalkit.metrics.cmmd import cmmd
from tests.metrics.test_prdc import measure_cost


def published_cmmd(x: np.ndarray, y: np.ndarray, unbiased: bool = False, sigma: float = 10.0) -> float:
    """The published code's arithmetic in numpy float64: whole kernel matrices from the norm expansion, plain means
    (diagonal included); ``unbiased`` drops the self-term diagonals as the paper's formula does."""
    gamma = 1 / (2 * sigma**2)

    def kernel(a, b):
        sq = -2 * a @ b.T + (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :]
        return np.exp(-gamma * sq)

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    if not unbiased:
        return 1000 * (k_xx.mean() + k_yy.mean() - 2 * k_xy.mean())
    n, m = len(x), len(y)
    off_xx = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    off_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return 1000 * (off_xx + off_yy - 2 * k_xy.mean())


def unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def clip_like(rng, n, dim=64, shift=0.0):
    """Unit embeddings clustered around a common direction, as CLIP image embeddings are."""
    centre = np.ones(dim)
    return unit_rows(centre * 0.3 + rng.normal(shift, 1, size=(n, dim)) / math.sqrt(dim))


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("n, m, dim, shift", [(40, 40, 8, 0.5), (60, 35, 64, 0.2), (25, 90, 768, 0.1)])
def test_equals_published_formula(estimator, n, m, dim, shift):
    rng = np.random.default_rng(n + m + dim)
    x, y = clip_like(rng, n, dim), clip_like(rng, m, dim, shift)
    expected = published_cmmd(x, y, unbiased=estimator == "unbiased")
    assert cmmd(x, y, estimator=estimator) == pytest.approx(expected, rel=1e-9)


def test_unnormalised_features_and_other_sigma_match_too():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 16)) * 4, rng.normal(1, 4, size=(45, 16))
    for sigma in (2.0, 10.0, 30.0):
        for unbiased in (False, True):
            expected = published_cmmd(x, y, unbiased=unbiased, sigma=sigma)
            got = cmmd(x, y, estimator="unbiased" if unbiased else "biased", sigma=sigma)
            assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_blocks_do_not_change_the_value(estimator):
    rng = np.random.default_rng(7)
    x, y = clip_like(rng, 123, 32), clip_like(rng, 77, 32, 0.3)
    whole = cmmd(x, y, estimator=estimator, chunk=10_000)
    for chunk in (1, 3, 7, 64, 122):
        assert cmmd(x, y, estimator=estimator, chunk=chunk) == pytest.approx(whole, rel=1e-10)


def test_float32_input_is_computed_in_float64():
    rng = np.random.default_rng(8)
    x, y = clip_like(rng, 80, 32).astype(np.float32), clip_like(rng, 70, 32, 0.3).astype(np.float32)
    expected = published_cmmd(x.astype(np.float64), y.astype(np.float64))
    assert cmmd(x, y) == pytest.approx(expected, rel=1e-9)


def test_identical_sets_give_zero_biased_and_iid_halves_give_zero_unbiased_on_average():
    rng = np.random.default_rng(11)
    x = clip_like(rng, 100, 16)
    assert abs(cmmd(x, x)) < 1e-12
    biased, unbiased = [], []
    for _ in range(40):
        a, b = clip_like(rng, 30, 16), clip_like(rng, 30, 16)
        biased.append(cmmd(a, b))
        unbiased.append(cmmd(a, b, estimator="unbiased"))
    biased, unbiased = np.array(biased), np.array(unbiased)
    # the biased estimator carries a positive bias (the self-term diagonals are k = 1); the unbiased one does not
    assert abs(unbiased.mean()) < 3 * unbiased.std() / math.sqrt(len(unbiased))
    assert biased.mean() > unbiased.mean() + 10 * unbiased.std() / math.sqrt(len(unbiased))
    assert (biased > 0).all()


def test_known_values():
    # two copies of a against two copies of b with |a - b|^2 = 2 sigma^2: 1000 (1 + 1 - 2 e^-1), both estimators
    a, b = np.zeros(3), np.array([10.0, 10.0, 0.0])
    x, y = np.stack([a, a]), np.stack([b, b])
    expected = 1000 * (2 - 2 * math.exp(-1))
    assert cmmd(x, y) == pytest.approx(expected, rel=1e-14)
    assert cmmd(x, y, estimator="unbiased") == pytest.approx(expected, rel=1e-14)
    # x = {0, e1}, y = {0, 2 e1}, sigma = 1, scale = 1: biased keeps the self-pairs, unbiased drops them
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
    k = lambda sq: math.exp(-sq / 2)  # noqa: E731
    biased = (2 + 2 * k(1)) / 4 + (2 + 2 * k(4)) / 4 - 2 * (k(0) + k(4) + k(1) + k(1)) / 4
    unbiased = k(1) + k(4) - 2 * (k(0) + k(4) + k(1) + k(1)) / 4
    assert cmmd(x, y, sigma=1.0, scale=1.0) == pytest.approx(biased, rel=1e-13)
    assert cmmd(x, y, estimator="unbiased", sigma=1.0, scale=1.0) == pytest.approx(unbiased, rel=1e-13)


@pytest.mark.parametrize(
    "x, y, kwargs, message",
    [
        (np.full((4, 3), np.nan), np.ones((4, 3)), {}, "NaN"),
        (np.ones((4, 3)), np.array([[1.0, np.inf, 0]] * 4), {}, "NaN or infinite"),
        (np.ones((4, 3)), np.ones((4, 5)), {}, "dimensions differ"),
        (np.ones((1, 3)), np.ones((4, 3)), {}, "at least 2"),
        (np.ones((4, 3)), np.ones((1, 3)), {"estimator": "unbiased"}, "at least 2"),
        (np.ones(4), np.ones((4, 1)), {}, "2-D"),
        (np.ones((4, 0)), np.ones((4, 0)), {}, "2-D"),
        (np.array([["a", "b"]] * 3), np.ones((3, 2)), {}, "not numeric"),
        (np.ones((4, 3)), np.ones((4, 3)), {"estimator": "median"}, "unknown CMMD estimator"),
        (np.ones((4, 3)), np.ones((4, 3)), {"chunk": 0}, "chunk"),
        (np.ones((4, 3)), np.ones((4, 3)), {"sigma": 0.0}, "sigma"),
    ],
)
def test_bad_input_is_a_clear_error(x, y, kwargs, message):
    with pytest.raises(EvalkitError, match=message):
        cmmd(x, y, **kwargs)


_rows = st.integers(2, 12)
_values = st.floats(-3, 3, allow_nan=False, width=64)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), estimator=st.sampled_from(["biased", "unbiased"]), chunk=st.integers(1, 13))
def test_properties_symmetry_blocks_translation(data, estimator, chunk):
    dim = data.draw(st.integers(1, 6))
    x = data.draw(arrays(np.float64, (data.draw(_rows), dim), elements=_values))
    y = data.draw(arrays(np.float64, (data.draw(_rows), dim), elements=_values))
    value = cmmd(x, y, estimator=estimator)
    tolerance = dict(rel=1e-9, abs=1e-10)
    assert cmmd(y, x, estimator=estimator) == pytest.approx(value, **tolerance)
    assert cmmd(x, y, estimator=estimator, chunk=chunk) == pytest.approx(value, **tolerance)
    assert cmmd(x + 5.0, y + 5.0, estimator=estimator) == pytest.approx(value, rel=1e-7, abs=1e-8)
    assert value == pytest.approx(published_cmmd(x, y, unbiased=estimator == "unbiased"), **tolerance)
    if estimator == "biased":
        assert value >= -1e-10  # the biased estimate is a squared RKHS norm


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_peak_memory_at_30k_by_2048_stays_under_4_gib(estimator):
    cost = measure_cost(f"cmmd-{estimator}")
    print(cost)
    assert cost["peak_rss_mib"] < 4096
