"""Compatibility names from before the extractor seam (evalkit.metrics.extractors): ``InceptionExtractor``,
``prefetch_batches`` and ``feature_cache_dir``. New code uses ``extractors.create_extractor("inception", ...)``
and ``extractors.features``; these names delegate to the same network code and the same disk cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from evalkit.metrics import inception
from evalkit.metrics.extractors.batching import prefetch_batches  # noqa: F401 (old import path)
from evalkit.metrics.extractors.cache import cache_key as _cache_key
from evalkit.metrics.extractors.cache import cached_features, feature_cache_dir  # noqa: F401 (old import path)
from evalkit.metrics.extractors.inception import InceptionFeatures


@dataclass
class InceptionExtractor:
    """Inception pool3 features for lists of image files, with a resize mode and a weights file."""

    weights_path: Path
    resize: str = inception.DEFAULT_RESIZE
    device: str = "cpu"
    batch_size: int = 32
    workers: int = 2
    use_cache: bool = True
    crop_size: int | None = None  # centre-crop + resize to this side before the resize mode (reference protocol)

    def __post_init__(self):
        self._features = InceptionFeatures(self.weights_path, resize=self.resize, crop_size=self.crop_size,
                                           device=self.device, batch_size=self.batch_size, workers=self.workers)
        self.weights_path = self._features.weights_path
        self.weights_sha256 = self._features.weights_sha256

    @property
    def description(self) -> dict:
        return {"network": "inception-v3-compat pool3 (torch-fidelity)", "weights_sha256": self.weights_sha256,
                "resize": self.resize, "feature_dim": inception.FEATURE_DIM, "crop_size": self.crop_size}

    def compute(self, paths: Sequence[Path], desc: str = "inception") -> np.ndarray:
        """N x 2048 float32 features, in the order of ``paths`` (no cache)."""
        return self._features.compute(paths, desc=desc)

    def cache_key(self, hashes: Sequence[str]) -> str:
        return _cache_key(self._features.description(), hashes)

    def features(self, paths: Sequence[Path], desc: str = "inception") -> np.ndarray:
        """Features of ``paths``, from the cache when this exact set was seen before (shared with the seam)."""
        return cached_features(paths, self._features.description(), inception.FEATURE_DIM,
                               lambda p: self.compute(p, desc), self.use_cache)
