"""CMMD (Jayasumana et al., CVPR 2024, "Rethinking FID"): the squared maximum mean discrepancy between two sets
of (CLIP) embeddings under a Gaussian RBF kernel, scaled for readability.

    k(x, y) = exp(-|x - y|^2 / (2 sigma^2)),   sigma = 10
    biased:   MMD_b^2 = 1/n^2 sum_{i,j} k(x_i, x_j) + 1/m^2 sum_{i,j} k(y_i, y_j) - 2/(nm) sum_{i,j} k(x_i, y_j)
    unbiased: MMD_u^2 = 1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j)
                        - 2/(nm) sum_{i,j} k(x_i, y_j)
    CMMD = scale * MMD^2,   scale = 1000

x: n reference embeddings, y: m generated ones (L2-normalised by the extractor, not here). The published code
(google-research/cmmd, distance.py) computes the biased estimator (plain means over the kernel matrices, diagonal
included) in float32, although the paper states the unbiased one; both are offered, biased by default.

Why not the published code: it is JAX (not a dependency) and holds three n x m kernel matrices at once (3.6 GB
each in float32 at n = m = 30,000). Here the sums are taken over row blocks, O(chunk x n) memory, in float64.
Every kernel value lies in (0, 1] and, for unit embeddings, in [exp(-4/200), 1] ~ [0.98, 1], so the three means
are ~0.99 and MMD^2 is their small difference: the sums are taken over k - 1 = expm1(-|x - y|^2 / (2 sigma^2))
instead (the constant 1s cancel exactly: 1 + 1 - 2 = 0), which keeps full relative precision in each sum. The
diagonal of a self-term contributes k - 1 = 0, so one pair of self-sums serves both estimators, and each self-sum
visits only the upper block triangle (off-diagonal blocks counted twice): two thirds of the full work.
"""

from __future__ import annotations

import numpy as np
import torch

from evalkit.errors import EvalkitError

ESTIMATORS = ("biased", "unbiased")
_BLOCK_ELEMENTS = 1 << 24  # ~128 MiB per float64 block when chunk is not given


def feature_matrix(values, name: str, min_rows: int, why: str = "") -> np.ndarray:
    """``values`` as a finite 2-D float array with at least ``min_rows`` rows, else EvalkitError."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise EvalkitError(f"{name} features are not a numeric array ({error})") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise EvalkitError(f"{name} features are not numeric (dtype {array.dtype})")
    if array.ndim != 2 or array.shape[1] == 0:
        raise EvalkitError(f"{name} features must be a 2-D array (samples x dimensions), got shape {array.shape}")
    if array.shape[0] < min_rows:
        because = f" {why}" if why else ""
        raise EvalkitError(f"{name} features: need at least {min_rows} samples{because}, got {array.shape[0]}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise EvalkitError(f"{name} features contain NaN or infinite values")
    return array


def check_same_dims(reference: np.ndarray, generated: np.ndarray) -> None:
    if reference.shape[1] != generated.shape[1]:
        raise EvalkitError(
            f"feature dimensions differ: reference {reference.shape[1]}, generated {generated.shape[1]}")


def default_chunk(columns: int, block_elements: int = _BLOCK_ELEMENTS) -> int:
    """Rows per block so that a block of ``columns`` columns holds about ``block_elements`` values."""
    return max(1, block_elements // max(1, columns))


def _check_chunk(chunk: int | None, columns: int) -> int:
    if chunk is None:
        return default_chunk(columns)
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise EvalkitError(f"chunk must be a positive number of rows, got {chunk!r}")
    return int(chunk)


def _excess_kernel_sum(a: torch.Tensor, b: torch.Tensor, gamma: float, chunk: int, self_term: bool) -> float:
    """sum_{i,j} (k(a_i, b_j) - 1) over row blocks of ``a``; with ``self_term`` (b is a) the upper block
    triangle only, off-diagonal blocks twice, and the diagonal exactly 0 (k(x, x) - 1 = 0)."""
    a_sq, b_sq = (a * a).sum(1), (b * b).sum(1)
    total = 0.0
    for start in range(0, a.shape[0], chunk):
        stop = min(start + chunk, a.shape[0])
        first = start if self_term else 0
        # |a|^2 + |b|^2 - 2 a.b, written in place into one block
        sq_dist = torch.addmm(b_sq[first:].unsqueeze(0), a[start:stop], b[first:].T, beta=1, alpha=-2)
        sq_dist.add_(a_sq[start:stop].unsqueeze(1)).clamp_(min=0)
        if self_term:
            sq_dist[:, : stop - start].fill_diagonal_(0)
        excess = torch.expm1_(sq_dist.mul_(-gamma))
        if self_term:
            total += float(excess[:, : stop - start].sum()) + 2 * float(excess[:, stop - start:].sum())
        else:
            total += float(excess.sum())
    return total


def cmmd(
    reference,
    generated,
    estimator: str = "biased",
    sigma: float = 10.0,
    scale: float = 1000.0,
    chunk: int | None = None,
    device: str | torch.device | None = None,
) -> float:
    """CMMD = scale * MMD^2 between ``reference`` (n x d) and ``generated`` (m x d) embeddings (module docstring).

    ``estimator``: "biased" (the published code's) or "unbiased" (the paper's formula). ``chunk``: rows per block
    (default: about 2^24 values per block); the result does not depend on it beyond float64 rounding.
    ``device``: where the float64 matrix products run (default CPU).
    """
    if estimator not in ESTIMATORS:
        raise EvalkitError(f"unknown CMMD estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}")
    if not (np.isfinite(sigma) and sigma > 0) or not np.isfinite(scale):
        raise EvalkitError(f"CMMD needs a positive finite sigma and a finite scale, got sigma={sigma}, scale={scale}")
    x = feature_matrix(reference, "reference", min_rows=2)
    y = feature_matrix(generated, "generated", min_rows=2)
    check_same_dims(x, y)
    n, m = len(x), len(y)
    rows = _check_chunk(chunk, max(n, m))
    gamma = 1.0 / (2.0 * float(sigma) ** 2)
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)
    yt = torch.as_tensor(y, dtype=torch.float64, device=device)
    s_xx = _excess_kernel_sum(xt, xt, gamma, rows, self_term=True)
    s_yy = _excess_kernel_sum(yt, yt, gamma, rows, self_term=True)
    s_xy = _excess_kernel_sum(xt, yt, gamma, rows, self_term=False)
    if estimator == "biased":
        mmd2 = s_xx / (n * n) + s_yy / (m * m) - 2 * s_xy / (n * m)
    else:
        mmd2 = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2 * s_xy / (n * m)
    return float(scale * mmd2)
