"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) of generated
features against real ones, from k-nearest-neighbour balls.

Real features X = {x_1..x_N}, generated Y = {y_1..y_M}; NND_k(x_i) is the distance from x_i to its k-th nearest
neighbour among the other points of its own set (ties and duplicates counted: the (k+1)-th smallest of
|x_i - x_j| over all j, the point itself at distance 0 included); B(x, r) is the ball of radius r around x.

    precision = 1/M sum_j 1[exists i: |y_j - x_i| <= NND_k(x_i)]        k = k_pr (3)
    recall    = 1/N sum_i 1[exists j: |x_i - y_j| <= NND_k(y_j)]        k = k_pr
    density   = 1/(k M) sum_j sum_i 1[|y_j - x_i| < NND_k(x_i)]        k = k_dc (5)
    coverage  = 1/N sum_i 1[exists j: |x_i - y_j| < NND_k(x_i)]         k = k_dc

The two pairs follow their references, which differ: precision/recall as torch-fidelity
(``torch_fidelity.metric_prc``: k = 3, a point on the sphere is inside, "<="); density/coverage as the ``prdc``
package of Naeem et al. (k = 5, strictly inside, "<"). The comparison only matters for exact ties.

Why our own implementation: both references hold whole n x n distance matrices (3.6 GB each in float32 at
n = 30,000) and compute distances in the precision of their input. Here every matrix is visited in row blocks,
O(chunk x n) memory, and each decision is the exact one:
  - Distances are screened in float32 (|a|^2 + |b|^2 - 2 a.b, one float32 matrix product, 1.8x faster than
    float64 on our CPUs) on copies centred on the common mean (distances do not move; |a|^2 + |b|^2 shrinks
    for features with a large common component, as post-ReLU ones have) and scaled by a power of two (exact;
    float32 neither overflows nor loses small values).
  - The float32 error has a rigorous bound |e| <= c (|a|^2 + |b|^2), c = 2 (gamma_d + 16 u),
    gamma_d = d u / (1 - d u), u = 2^-24: the worst case of a d-term dot product, the roundings around it and
    the float32 copy, doubled.
  - A pair is decided in float32 only when it lies farther than the bound from the radius it is compared with;
    the rest (a few per row), and the k-NN candidates the bound leaves undecided, are recomputed in float64 as
    sum (a - b)^2 from the given values (knn_sq_radii says how).
So results do not depend on the chunk, and equal the references' when those are given float64 features. Given
float32 features the references work in float32 (torch-fidelity) or round distances to float32 (prdc), which can
flip pairs within rounding of a radius; none flipped at 10,000 x 2048 per side on Inception-like features.

``max_samples`` caps each side by a seeded subsample without replacement (dgm-eval computes PRDC on at most
10,000 samples per side, and also shrinks both sides to the smaller one; here each side is capped on its own).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from evalkit.errors import EvalkitError
from evalkit.metrics.cmmd import check_same_dims, default_chunk, feature_matrix

_U32 = 2.0 ** -24
_TINY = 2.0 ** -100  # absolute slack (float32 subnormals); a wider band only means more exact recomputation
_BLOCK_ELEMENTS = 1 << 25  # float32 distances per block (128 MiB) when chunk is not given
_PREPARE_ROWS = 4096  # rows per block while making the float32 copies
_PAIR_ELEMENTS = 1 << 21  # values per batch of exact recomputation (16 MiB in float64)


@contextlib.contextmanager
def _ieee_float32_matmul():
    """Full float32 products (no TF32 or bfloat16 shortcuts), which the error bound assumes."""
    precision, tf32 = torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cuda.matmul.allow_tf32 = tf32


def screening_error_coefficient(dim: int) -> float:
    """c with |float32 |a-b|^2 - exact| <= c (|a|^2 + |b|^2) (module docstring); inf when no bound holds."""
    du = dim * _U32
    return math.inf if du >= 0.5 else 2.0 * (du / (1.0 - du) + 16.0 * _U32)


class _FeatureSet:
    """One side: the given values (for exact recomputation) and, for screening, a float32 copy of them centred on
    ``centre`` and scaled by ``scale`` (a power of two), with its float64 squared norms."""

    def __init__(self, values: np.ndarray, centre: torch.Tensor, scale: float, device):
        self.source, self.scale = torch.as_tensor(values, device=device), scale
        self.f32 = torch.empty(self.source.shape, dtype=torch.float32, device=self.source.device)
        self.sq64 = torch.empty(len(values), dtype=torch.float64, device=self.source.device)
        for rows in _blocks(len(values), _PREPARE_ROWS):
            shifted = (self.source[rows].to(torch.float64) - centre) * scale
            self.f32[rows] = shifted
            self.sq64[rows] = (shifted * shifted).sum(1)
        self.sq32 = self.sq64.to(torch.float32)

    def __len__(self) -> int:
        return self.source.shape[0]


def _blocks(n: int, chunk: int):
    return (slice(start, min(start + chunk, n)) for start in range(0, n, chunk))


def _centre_and_scale(real: np.ndarray, fake: np.ndarray, device) -> tuple[torch.Tensor, float]:
    """The common mean (distances do not change when both sets move, and centring shrinks |a|^2 + |b|^2, which
    the screening error is proportional to, for features with a large common component such as post-ReLU ones),
    and the power of two that brings the largest centred magnitude into [0.5, 1) (exact: no comparison changes,
    and float32 can neither overflow nor lose small values)."""
    total = real.sum(0, dtype=np.float64) + fake.sum(0, dtype=np.float64)
    centre = torch.as_tensor(total / (len(real) + len(fake)), device=device)
    peak = 0.0
    for values in (real, fake):
        source = torch.as_tensor(values, device=device)
        for rows in _blocks(len(values), _PREPARE_ROWS):
            peak = max(peak, float((source[rows].to(torch.float64) - centre).abs().max()))
    return centre, (1.0 if peak == 0 else 2.0 ** -math.floor(math.log2(peak) + 1))


def _screened_sq_dists(a: _FeatureSet, rows: slice, b: _FeatureSet) -> torch.Tensor:
    """float32 |a_i|^2 + |b_j|^2 - 2 a_i.b_j for a row block of ``a`` against all of ``b``."""
    block = torch.addmm(b.sq32.unsqueeze(0), a.f32[rows], b.f32.T, beta=1, alpha=-2)
    return block.add_(a.sq32[rows].unsqueeze(1))


def _exact_sq_dists(a: _FeatureSet, b: _FeatureSet, a_index: torch.Tensor, b_index: torch.Tensor) -> torch.Tensor:
    """float64 sum (a_i - b_j)^2 (in the screened units) for the listed pairs, in batches through reused buffers
    (fresh large tensors per batch were 5x slower: page faults) of a few large operations (many small ones
    were slow when other processes compete for the cores)."""
    source, dim = a.source, a.source.shape[1]
    batch = max(1, min(len(a_index), _PAIR_ELEMENTS // dim))
    out = torch.empty(len(a_index), dtype=torch.float64, device=source.device)
    rows_a, rows_b = (torch.empty(batch, dim, dtype=source.dtype, device=source.device) for _ in range(2))
    wide = torch.empty(batch, dim, dtype=torch.float64, device=source.device)
    for part in _blocks(len(a_index), batch):
        size = part.stop - part.start
        diff = wide[:size]
        diff.copy_(torch.index_select(a.source, 0, a_index[part], out=rows_a[:size]))
        diff.sub_(torch.index_select(b.source, 0, b_index[part], out=rows_b[:size]))  # in float64: exact
        torch.linalg.vecdot(diff, diff, out=out[part])
    return out.mul_(a.scale * a.scale)  # a power of two: exact


def _bounds(coef: float, own_sq: torch.Tensor, other_sq_max: torch.Tensor, radius_sq: torch.Tensor):
    """float32 (lo, hi) around each squared radius, wide enough for the screening error and the float32 cast."""
    slack = coef * (own_sq + other_sq_max) + 2 * _U32 * radius_sq.abs() + _TINY
    return (radius_sq - slack).to(torch.float32), (radius_sq + slack).to(torch.float32)


def knn_sq_radii(features: _FeatureSet, ks: tuple[int, ...], chunk: int, coef: float) -> dict[int, torch.Tensor]:
    """Exact squared distance to the k-th nearest other point, for each k in ``ks``, in row blocks.

    With elementwise screening error <= e: if the (k+1)-th smallest screened value is more than 2e from both
    of its neighbours in the sorted row, that point is exactly the (k+1)-th nearest, and one exact distance
    gives the radius (~85% of rows for Inception-like features). Otherwise the (k+1)-th smallest screened value
    A is within e of the exact one, so each of the exact k+1 nearest has a screened value <= A + 2e and
    everything above is exactly farther: those candidates are recomputed exactly and sorted.
    """
    device, n = features.source.device, len(features)
    radii = {k: torch.empty(n, dtype=torch.float64, device=device) for k in ks}
    other_max = features.sq64.max()
    for rows in _blocks(n, chunk):
        block = _screened_sq_dists(features, rows, features)
        nearest = torch.topk(block, min(max(ks) + 2, n), dim=1, largest=False)
        values = nearest.values.to(torch.float64)
        error = coef * (features.sq64[rows] + other_max) + 2 * _U32 * values[:, -1].abs() + _TINY
        settled = torch.ones(len(values), dtype=torch.bool, device=device)
        for k in ks:
            settled &= values[:, k] - values[:, k - 1] > 2 * error
            if k + 1 < values.shape[1]:
                settled &= values[:, k + 1] - values[:, k] > 2 * error
        own = torch.arange(rows.start, rows.stop, device=device)
        picked = torch.stack([nearest.indices[settled, k] for k in ks], dim=1)
        exact = _exact_sq_dists(features, features, own[settled].repeat_interleave(len(ks)), picked.reshape(-1))
        for column, k in enumerate(exact.view(-1, len(ks)).unbind(1)):
            radii[ks[column]][own[settled]] = k
        if not settled.all():
            unsettled = ~settled
            ordered = _exact_nearest(features, block[unsettled], own[unsettled], values[unsettled, max(ks)],
                                     error[unsettled])
            for k in ks:
                radii[k][own[unsettled]] = ordered[:, k]
    return radii


def _exact_nearest(features: _FeatureSet, block: torch.Tensor, own: torch.Tensor, kth: torch.Tensor,
                   error: torch.Tensor) -> torch.Tensor:
    """Sorted exact squared distances of each row's candidates: every point screened within 2e of the k-th."""
    threshold = (kth + 2 * error).to(torch.float32)  # (error has room for the rounding of this cast)
    width = int((block <= threshold.unsqueeze(1)).sum(1).max())
    candidates = torch.topk(block, width, dim=1, largest=False).indices
    exact = _exact_sq_dists(features, features, own.repeat_interleave(width), candidates.reshape(-1))
    return exact.view(-1, width).sort(dim=1).values


def _ball_counts(real: _FeatureSet, fake: _FeatureSet, radii: dict, chunk: int, coef: float) -> dict:
    """One pass over the real x generated distances, deciding the three ball memberships per pair."""
    device = real.source.device
    precision_hit = torch.zeros(len(fake), dtype=torch.bool, device=device)
    recall_hit = torch.zeros(len(real), dtype=torch.bool, device=device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=device)
    density_count = 0
    fake_max = fake.sq64.max()
    for rows in _blocks(len(real), chunk):
        block = _screened_sq_dists(real, rows, fake)
        # (squared radius, which side it belongs to, strict "<"?) for precision, recall, density/coverage
        tests = [(radii["real_pr"][rows].unsqueeze(1), real.sq64[rows].unsqueeze(1), fake_max, False),
                 (radii["fake_pr"].unsqueeze(0), fake.sq64.unsqueeze(0), real.sq64[rows].max(), False),
                 (radii["real_dc"][rows].unsqueeze(1), real.sq64[rows].unsqueeze(1), fake_max, True)]
        inside, unsure = [], torch.zeros_like(block, dtype=torch.bool)
        for radius, own_sq, other_max, _ in tests:
            lo, hi = _bounds(coef, own_sq, other_max, radius)
            inside.append(block < lo)
            unsure |= (block >= lo) & (block <= hi)
        i, j = unsure.nonzero(as_tuple=True)
        if len(i):
            exact = _exact_sq_dists(real, fake, i + rows.start, j)
            for member, (radius, _, _, strict) in zip(inside, tests):
                bound = radius.expand_as(block)[i, j]
                member[i, j] = exact < bound if strict else exact <= bound
        in_pr, in_rc, in_dc = inside
        precision_hit |= in_pr.any(0)
        recall_hit[rows] = in_rc.any(1)
        covered[rows] = in_dc.any(1)
        density_count += int(in_dc.sum())
    return {"precision_hits": int(precision_hit.sum()), "recall_hits": int(recall_hit.sum()),
            "covered": int(covered.sum()), "density_count": density_count}


def _check_k(k, name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise EvalkitError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def _subsample(features: np.ndarray, max_samples: int | None, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    if max_samples is None or len(features) <= max_samples:
        return features, False
    return features[np.sort(rng.choice(len(features), max_samples, replace=False))], True


def prdc(
    reference,
    generated,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk: int | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict:
    """Precision, recall (k = ``k_pr``), density, coverage (k = ``k_dc``) of ``generated`` (M x d) against
    ``reference`` (N x d) real features (module docstring), and what was done.

    ``chunk``: rows per block (default: about 2^25 distances per block); results do not depend on it.
    ``max_samples``: cap on each side, by a subsample drawn with ``numpy.random.default_rng(seed)`` (real
    first, then generated). ``device``: where the matrix products run (default CPU).
    Returns precision, recall, density, coverage, k_pr, k_dc, n_real, n_fake (used), n_real_given,
    n_fake_given, subsampled_real, subsampled_fake, max_samples, seed.
    """
    k_pr, k_dc = _check_k(k_pr, "k_pr"), _check_k(k_dc, "k_dc")
    if max_samples is not None:
        max_samples = _check_k(max_samples, "max_samples")
    real = feature_matrix(reference, "reference", max(k_pr, k_dc) + 1, f"(k={max(k_pr, k_dc)} neighbours + itself)")
    fake = feature_matrix(generated, "generated", k_pr + 1, f"(k={k_pr} neighbours + itself)")
    check_same_dims(real, fake)
    rng = np.random.default_rng(seed)
    n_real_given, n_fake_given = len(real), len(fake)
    real, real_sub = _subsample(real, max_samples, rng)
    fake, fake_sub = _subsample(fake, max_samples, rng)
    if len(real) < max(k_pr, k_dc) + 1 or len(fake) < k_pr + 1:
        raise EvalkitError(f"max_samples={max_samples} leaves too few samples for k_pr={k_pr}, k_dc={k_dc}")
    if chunk is not None:
        _check_k(chunk, "chunk")
    coef = screening_error_coefficient(real.shape[1])
    with _ieee_float32_matmul(), torch.no_grad():
        centre, scale = _centre_and_scale(real, fake, device)
        real_set, fake_set = _FeatureSet(real, centre, scale, device), _FeatureSet(fake, centre, scale, device)
        rows = chunk or default_chunk(max(len(real), len(fake)), _BLOCK_ELEMENTS)
        real_radii = knn_sq_radii(real_set, tuple(sorted({k_pr, k_dc})), rows, coef)
        fake_radii = knn_sq_radii(fake_set, (k_pr,), rows, coef)
        radii = {"real_pr": real_radii[k_pr], "real_dc": real_radii[k_dc], "fake_pr": fake_radii[k_pr]}
        counts = _ball_counts(real_set, fake_set, radii, rows, coef)
    n, m = len(real), len(fake)
    return {
        "precision": counts["precision_hits"] / m,
        "recall": counts["recall_hits"] / n,
        "density": counts["density_count"] / (k_dc * m),
        "coverage": counts["covered"] / n,
        "k_pr": k_pr, "k_dc": k_dc, "n_real": n, "n_fake": m,
        "n_real_given": n_real_given, "n_fake_given": n_fake_given,
        "subsampled_real": real_sub, "subsampled_fake": fake_sub, "max_samples": max_samples, "seed": seed,
    }
