"""The feature-extractor seam: options, the protocol every extractor meets, and discovery by entry point.

An extractor is registered under the ``evalkit.extractors`` entry-point group as an :class:`ExtractorSpec` (built-ins
in evalkit's own pyproject, so a third-party package registers exactly the same way). The spec says which settings
the extractor takes and which registry weights it needs, so ``evalkit metrics list`` can tell whether weights are
present without building a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from evalkit import plugins
from evalkit.errors import EvalkitError

GROUP = "evalkit.extractors"


@dataclass(frozen=True)
class ExtractorOptions:
    weights: Path | None = None  # explicit local file (from --weights NAME=PATH); else registry lookup
    device: str = "cpu"
    batch_size: int = 32
    workers: int = 2  # decode/resize threads
    download: bool = False  # allow a sha256-verified download of missing weights
    settings: dict[str, str] = field(default_factory=dict)  # extractor-specific, e.g. {"resize": "clean"}


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    dim: int
    weights_sha256: str

    def description(self) -> dict:
        """JSON-able record of everything that changes the features (the cache key and metrics.json use it)."""

    def compute(self, paths: Sequence[Path]) -> np.ndarray:
        """N x dim float32 features in the order of ``paths``, with no cache."""


@dataclass(frozen=True)
class Setting:
    default: str
    choices: tuple[str, ...] | None = None  # None: any value (checked by the extractor itself, e.g. a model name)
    help: str = ""


@dataclass(frozen=True)
class ExtractorSpec:
    """What an entry point of the ``evalkit.extractors`` group loads."""

    name: str
    summary: str
    settings: Mapping[str, Setting]
    build: Callable[[ExtractorOptions, dict[str, str]], FeatureExtractor]  # (options, checked settings) -> extractor
    weights: Callable[[dict[str, str]], list[str]]  # checked settings -> registry weight names it needs

    def check_settings(self, given: Mapping[str, str] | None) -> dict[str, str]:
        """The given settings completed with defaults; an unknown key or value is an EvalkitError."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.settings))
        if unknown:
            known = ", ".join(f"{k} (default {s.default})" for k, s in self.settings.items()) or "none"
            raise EvalkitError(f"extractor {self.name}: unknown setting {unknown[0]!r}; settings: {known}")
        out = {}
        for key, setting in self.settings.items():
            value = str(setting.default if given.get(key) is None else given[key])
            if setting.choices is not None and value not in setting.choices:
                raise EvalkitError(f"extractor {self.name}: {key}={value!r} is not one of {', '.join(setting.choices)}")
            out[key] = value
        return out


def available_extractors() -> list[str]:
    return plugins.names(GROUP)


def extractor_spec(name: str) -> ExtractorSpec:
    spec = plugins.load(GROUP, name, "feature extractor")
    if not isinstance(spec, ExtractorSpec):
        raise EvalkitError(f"entry point {name!r} of {GROUP} is not an ExtractorSpec")
    return spec


def create_extractor(name: str, options: ExtractorOptions) -> FeatureExtractor:
    spec = extractor_spec(name)
    return spec.build(options, spec.check_settings(options.settings))


def extractor_weights(name: str, settings: Mapping[str, str] | None = None) -> list[str]:
    """Registry weight names the extractor needs with these settings (they may lack a registry entry when the
    settings pick a model evalkit has no file for: then only an explicit --weights file works)."""
    spec = extractor_spec(name)
    return spec.weights(spec.check_settings(settings))
