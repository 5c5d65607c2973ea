"""The library API that `evalkit score` and `evalkit distance` wrap:

    evalkit.score_run(run_dir, metrics=["fid", "kid", "clip"], reference="coco_val2014_256.npz",
                      options={"kid.subsets": 50}) -> dict     # the metrics.json written into the run
    evalkit.distance(a, b, metrics=["fid", "cmmd"]) -> dict        # a: the reference (real) side, b: the generated

One scoring call builds each feature extractor once and extracts each side's features once (cached on disk), and
every metric reads them through a ``ScoreContext``; options are checked against each metric's declared options
before anything is computed. Results follow the versioned metrics.json schema (``schema.json`` beside this file,
``metrics_file.py`` writes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from evalkit.errors import EvalkitError
from evalkit.metrics import extractors as extractor_seam
from evalkit.metrics import metrics_file
from evalkit.metrics.base import Metric, metric_options, split_options
from evalkit.metrics.registry import resolve_metric_names
from evalkit.metrics.sides import ImageSide, open_side
from evalkit.metrics.stats import FeatureStats, GaussianStats


@dataclass(frozen=True)
class ScoringConfig:
    """How features are computed (not what is measured): device, batching, caching, weights."""

    device: str | None = None  # None: cuda when available, else cpu
    batch_size: int = 32
    workers: int = 2
    use_cache: bool = True
    download: bool = False
    weights: Mapping[str, Path] = field(default_factory=dict)  # registry weight name -> local file
    extractor_settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # e.g. {"inception": {"resize": "clean"}}
    seed: int = 0  # random subsets (KID), bootstrap resampling
    bootstrap: int = 1000  # resamples for bootstrap intervals
    progress: bool = True


def group_indices(records, key) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        value = key(record)
        if value not in (None, ""):
            groups.setdefault(str(value), []).append(i)
    return dict(sorted(groups.items()))


def _challenge(record) -> str | None:
    return record.extra.get("challenge") if isinstance(record.extra, dict) else None


class ScoreContext:
    """What a metric may read: the generated side's images, index rows and groups, the reference side, and cached
    features of both sides for any extractor."""

    def __init__(self, generated: ImageSide, reference: ImageSide | None, config: ScoringConfig):
        if generated.paths is None:
            raise EvalkitError(f"{generated.label} is a statistics file; the generated side must be images or a run")
        self.generated, self.reference, self.config = generated, reference, config
        self.images: list[Path] = generated.paths
        self.records = generated.records
        self.seed, self.bootstrap, self.progress = config.seed, config.bootstrap, config.progress
        self.device = _device(config.device)
        self.warnings: list[str] = []
        self._extractors: dict[tuple, Any] = {}
        self._features: dict[tuple, np.ndarray] = {}

    @property
    def groups(self) -> dict[str, dict[str, list[int]]]:
        """{"category": {label: image indices}, "challenge": {...}} for a run; empty for a folder."""
        if not self.records:
            return {}
        found = {"category": group_indices(self.records, lambda r: r.category),
                 "challenge": group_indices(self.records, _challenge)}
        return {name: groups for name, groups in found.items() if groups}

    def prompts(self) -> list[str]:
        if self.records is None:
            raise EvalkitError(f"{self.generated.label} is an image folder: this metric needs each image's prompt (a run)")
        return [r.prompt for r in self.records]

    def extractor(self, name: str, settings: Mapping[str, str] | None = None):
        merged = {**self.config.extractor_settings.get(name, {}), **(settings or {})}
        key = (name, tuple(sorted(merged.items())))
        if key not in self._extractors:
            wanted = extractor_seam.extractor_weights(name, merged)
            explicit = self.config.weights.get(name) or next(
                (self.config.weights[w] for w in wanted if w in self.config.weights), None)
            options = extractor_seam.ExtractorOptions(
                weights=explicit, device=self.device, batch_size=self.config.batch_size, workers=self.config.workers,
                download=self.config.download, settings=merged)
            self._extractors[key] = extractor_seam.create_extractor(name, options)
        return self._extractors[key]

    def _side_features(self, side: ImageSide, extractor) -> np.ndarray:
        key = (id(side), extractor.name, _frozen(extractor.description()))
        if key not in self._features:
            self._features[key] = extractor_seam.features(side.paths, extractor, use_cache=self.config.use_cache,
                                                          desc=f"{extractor.name} {Path(side.label).name}")
        return self._features[key]

    def features(self, extractor) -> np.ndarray:
        return self._side_features(self.generated, extractor)

    def require_reference(self, metric: str) -> ImageSide:
        if self.reference is None:
            raise EvalkitError(f"{metric} needs a reference set: pass --ref FILE.npz, an image folder or a run")
        return self.reference

    def reference_features(self, extractor, metric: str) -> np.ndarray:
        ref = self.require_reference(metric)
        if ref.paths is None:
            raise EvalkitError(f"{metric} needs reference images (a folder or a run), not a statistics file "
                               f"({ref.label} holds only a mean and covariance)")
        return self._side_features(ref, extractor)

    def reference_stats(self, extractor, metric: str) -> tuple[GaussianStats, np.ndarray | None]:
        """The reference Gaussian (and its features when it has images) in this extractor's space."""
        ref = self.require_reference(metric)
        if ref.paths is not None:
            feats = self._side_features(ref, extractor)
            return gaussian(feats, metric), feats
        stats = ref.saved_stats
        problem = stats_mismatch(stats.meta, extractor.description())
        if problem:
            raise EvalkitError(f"{ref.label} was computed with {problem}; refusing to compare features of different "
                               "extractors, weights or preprocessing (recompute it with `evalkit ref-stats`)")
        if not stats.meta:
            self.warnings.append(f"{ref.label} records no extractor, weights or resize mode: assuming "
                                 f"{extractor.name} with this scoring's settings")
        if stats.mu.shape[0] != extractor.dim:
            raise EvalkitError(f"{ref.label} holds {stats.mu.shape[0]}-d statistics, {extractor.name} features are "
                               f"{extractor.dim}-d")
        return stats, None


def _frozen(obj) -> str:
    import json

    return json.dumps(obj, sort_keys=True, default=str)


def _device(name: str | None) -> str:
    from evalkit.devices import resolve_device

    return resolve_device(name)


def gaussian(features: np.ndarray, metric: str) -> GaussianStats:
    if len(features) < 2:
        raise EvalkitError(f"{metric} needs at least 2 images on each side, got {len(features)}")
    return FeatureStats.of(features).compute()


# What must agree between a statistics file and the extractor it is compared in. The crop before the resize is a
# property of how a reference set was prepared (COCO protocol), not of the feature space, so it is not compared.
_COMPARED = ("extractor", "weights_sha256", "dim")


def stats_mismatch(meta: Mapping[str, Any], description: Mapping[str, Any]) -> str | None:
    """Why statistics with ``meta`` are not in the feature space of ``description`` (None when they are, or when
    the file records nothing, as published pytorch-fid statistics do)."""
    if not meta:
        return None
    legacy_resize = meta.get("resize")  # statistics written before extractors had names: Inception, resize at top level
    if "extractor" not in meta and legacy_resize is not None:
        meta = {**meta, "extractor": "inception", "preprocessing": {"resize": legacy_resize},
                "dim": meta.get("feature_dim")}
    for key in _COMPARED:
        if meta.get(key) is not None and description.get(key) is not None and meta[key] != description[key]:
            return f"{key}={meta[key]} (this comparison uses {description[key]})"
    theirs = {k: v for k, v in (meta.get("preprocessing") or {}).items() if k != "crop_size"}
    ours = {k: v for k, v in (description.get("preprocessing") or {}).items() if k != "crop_size"}
    for key in sorted(set(theirs) & set(ours)):
        if theirs[key] != ours[key]:
            return f"{key}={theirs[key]} (this comparison uses {ours[key]})"
    return None


def _plan(metrics: Sequence[str] | None, options: Mapping[str, Any] | None, has_reference: bool
          ) -> list[tuple[Metric, dict[str, Any]]]:
    names = list(metrics) if metrics else (["fid", "kid", "clip"] if has_reference else ["clip"])
    chosen = resolve_metric_names([n.strip().lower() for n in names])
    per_metric = split_options(dict(options or {}), [m.name for m in chosen])
    return [(m, metric_options(m, per_metric[m.name])) for m in chosen]


def _compute(plan, ctx: ScoreContext) -> list[tuple[Metric, dict, list]]:
    done = []
    for metric, opts in plan:
        if metric.needs.reference:
            ctx.require_reference(metric.name)
        done.append((metric, opts, metric.compute(ctx, opts)))
    return done


def score_run(run_dir: str | Path, metrics: Sequence[str] | None = None, reference: str | Path | None = None,
              options: Mapping[str, Any] | None = None, config: ScoringConfig | None = None) -> dict[str, Any]:
    """Score a run and merge the results into its metrics.json; returns the whole metrics.json content.

    ``metrics``: metric or stat names (default fid,kid,clip with a reference, else clip); ``reference``: a .npz
    statistics file, an image folder or a run; ``options``: {"METRIC.KEY": value}."""
    config = config or ScoringConfig()
    generated = open_side(run_dir, "run")
    if generated.kind != "run":
        raise EvalkitError(f"{run_dir} is not an evalkit run (no manifest.json and index.csv); "
                           "to compare two image folders use `evalkit distance A B`")
    plan = _plan(metrics, options, reference is not None)  # options are checked before any side is opened
    ref = open_side(reference, "reference") if reference is not None else None
    ctx = ScoreContext(generated, ref, config)
    planned = len(generated.run.records())
    if len(generated.paths) < planned:
        ctx.warnings.append(f"scoring the {len(generated.paths)} of {planned} planned images that exist; "
                            "the run is incomplete")
    results = _compute(plan, ctx)
    document = metrics_file.build(generated, ref, results, ctx.warnings)
    from evalkit import dist

    if not dist.active().is_main:  # every rank computed the same numbers; one writes them
        return document
    return metrics_file.merge_and_write(generated.run, document)


def distance(a: str | Path, b: str | Path, metrics: Sequence[str] = ("fid", "kid"),
             options: Mapping[str, Any] | None = None, config: ScoringConfig | None = None) -> dict[str, Any]:
    """Metrics between two image sets: ``a`` is the reference (real) side, ``b`` the generated side (what the
    asymmetric metrics — precision/recall, density/coverage, CMMD's estimator — treat them as). Nothing is written."""
    config = config or ScoringConfig()
    plan = _plan(metrics, options, True)
    for metric, _ in plan:
        if metric.needs.prompts or metric.needs.toyworld:
            raise EvalkitError(f"{metric.name} scores images against their prompts; use `evalkit score RUN`")
    ref, generated = open_side(a, "A"), open_side(b, "B")
    if generated.paths is None:
        raise EvalkitError(f"B ({b}) is a statistics file: the generated side must be images (swap A and B if "
                           "B is the reference)")
    ctx = ScoreContext(generated, ref, config)
    results = _compute(plan, ctx)
    return metrics_file.build(generated, ref, results, ctx.warnings)
