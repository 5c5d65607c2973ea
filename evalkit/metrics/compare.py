"""FID and KID between two image sets, from one pass of cached features."""

from __future__ import annotations

import torch

from evalkit.metrics.frechet import FrechetReference
from evalkit.metrics.kid import kernel_inception_distance
from evalkit.metrics.sources import ImageSet

# Below this many images the 2048x2048 covariance is rank-deficient and FID is strongly biased upwards.
FID_MIN_IMAGES = 2048


def sample_size_warnings(n_a: int | None, n_b: int | None) -> list[str]:
    small = [n for n in (n_a, n_b) if n is not None and n < FID_MIN_IMAGES]
    if not small:
        return []
    return [
        f"FID from {min(small)} images (< {FID_MIN_IMAGES}) uses a rank-deficient covariance and is biased upwards; "
        "compare only FIDs with the same N, or use KID, which is unbiased at small N"
    ]


def meta_warnings(a: ImageSet, b: ImageSet, extractor) -> list[str]:
    """Statistics computed with another resize mode or network are not comparable; say so."""
    out = []
    for side in (a, b):
        for key in ("resize", "weights_sha256"):
            value = side.meta.get(key)
            if side.kind == "stats" and value is not None and value != extractor.description[key]:
                out.append(f"{side.label} was computed with {key}={value}, this comparison uses "
                           f"{extractor.description[key]}")
    return out


def compare(
    a: ImageSet,
    b: ImageSet,
    extractor,
    kid: bool = True,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    reference: FrechetReference | None = None,
) -> dict:
    """FID (and KID when both sides have features) of a against b; b is the reference side."""
    ref = reference or FrechetReference(b.stats.mu, b.stats.sigma, b.features)
    result = {
        "fid": ref.distance(a.stats.mu, a.stats.sigma, a.features),
        "n_a": a.n,
        "n_b": b.n,
        "a": a.label,
        "b": b.label,
        **{k: v for k, v in extractor.description.items()},
    }
    warnings = sample_size_warnings(a.n, b.n) + meta_warnings(a, b, extractor)
    if kid and a.features is not None and b.features is not None:
        generator = torch.Generator().manual_seed(seed)
        result.update(kernel_inception_distance(b.features, a.features, kid_subsets, kid_subset_size, generator))
        result["kid_seed"] = seed
    elif kid:
        warnings.append("KID needs image features on both sides; a .npz statistics file has none, so KID is skipped")
    result["warnings"] = warnings
    return result
