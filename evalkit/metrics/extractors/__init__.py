"""The one seam through which feature extractors enter evalkit's metrics, and one cached ``features()`` for all.

Built-ins (registered in evalkit's pyproject under the ``evalkit.extractors`` entry-point group): ``inception``,
``clip``, ``clip-cleanfid``, ``clip-cmmd``, ``dinov2-vitb14``, ``dinov2-vitl14``. A third-party extractor registers
an :class:`ExtractorSpec` under the same group.
"""

from evalkit.metrics.extractors.base import (
    GROUP,
    ExtractorOptions,
    ExtractorSpec,
    FeatureExtractor,
    Setting,
    available_extractors,
    create_extractor,
    extractor_spec,
    extractor_weights,
)
from evalkit.metrics.extractors.cache import feature_cache_dir, features

__all__ = [
    "GROUP", "ExtractorOptions", "ExtractorSpec", "FeatureExtractor", "Setting", "available_extractors",
    "create_extractor", "extractor_spec", "extractor_weights", "feature_cache_dir", "features",
]
