"""The built-in metrics, declared as data: each is a ``FeatureMetric`` (a name, a direction, an extractor, options,
and the function that turns the two sides' features into numbers) or the CLIP score. They are registered through
the ``evalkit.metrics`` entry-point group like any third-party metric (see pyproject.toml).

Per-group numbers (DrawBench / Parti category, Parti challenge) are computed for a run by default where they are
cheap (FID, KID, CLIP); CMMD and PRDC recompute the reference side's kernel / neighbourhoods per group, so there
they are opt-in (``--opt cmmd.groups=true``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from evalkit.estimate import Estimate
from evalkit.metrics.base import (Needs, Option, Stat, parse_bool, parse_non_negative_int, parse_positive_float,
                                  parse_positive_int)
from evalkit.metrics.bootstrap import percentile_interval, prompt_resamples, prompts_hash, recentred_interval



def _extractor_option(default: str) -> Option:
    return Option(default, str, "feature extractor (see `evalkit metrics list`)")


def _groups_option(default: bool) -> Option:
    return Option(default, parse_bool, "also compute per category / challenge (true/false)")


def _bootstrap_option() -> Option:
    return Option(0, parse_non_negative_int, "replicates of a bootstrap over prompts for a 95% interval, stored for the "
                  "regression gate's paired comparison (0: none; each replicate recomputes the metric)")


@dataclass(frozen=True)
class FeatureMetric:
    """A metric of the two sides' features. ``measure(ctx, reference_side, generated_features, options)`` returns
    {stat name: Estimate} for one set of generated features; it is called overall and per group."""

    name: str
    higher_is_better: bool
    description: str
    extractor: str
    stats: tuple[str, ...]
    measure: Callable[..., dict[str, Estimate]]
    prepare: Callable[..., Any]  # (ctx, extractor, options) -> the reference side, computed once per scoring
    min_group: int = 2
    options: Mapping[str, Option] = field(default_factory=dict)
    details: Callable[..., dict] = lambda ctx, prepared, options: {}
    extractor_settings: Callable[[Mapping[str, Any]], dict[str, str]] = lambda options: {}

    @property
    def needs(self) -> Needs:
        return Needs(extractor=self.extractor, reference=True)

    def compute(self, ctx, options: Mapping[str, Any]) -> list[Stat]:
        extractor = ctx.extractor(options.get("extractor", self.extractor), self.extractor_settings(options))
        generated = ctx.features(extractor)
        prepared = self.prepare(ctx, extractor, options)
        overall = self.measure(prepared, generated, options, ctx)
        groups: dict[str, dict[str, dict[str, Estimate]]] = {}
        if options.get("groups", True):
            for group, labels in ctx.groups.items():
                groups[group] = {label: self.measure(prepared, generated[idx], options, ctx)
                                 for label, idx in labels.items() if len(idx) >= self.min_group}
        details = self.details(ctx, prepared, options)
        replicates = self._bootstrap(ctx, prepared, generated, options)
        stats = []
        for name in self.stats:
            estimate, stat_details = overall[name], dict(details)
            if replicates:
                low, high = recentred_interval(replicates["values"][name], estimate.value)
                estimate = Estimate(estimate.value, low, high, estimate.n, "bootstrap-prompts")
                stat_details["bootstrap"] = {**replicates["about"], "replicates": replicates["values"][name]}
            stats.append(Stat(name, estimate,
                              {g: {label: values[name] for label, values in found.items()} for g, found in groups.items()},
                              extractor.description(), stat_details))
        return stats

    def _bootstrap(self, ctx, prepared, generated, options) -> dict | None:
        """With ``--opt METRIC.bootstrap=B`` on a run: B replicates over resampled prompts (the reference side
        fixed), stored so the regression gate can pair two runs' replicates (see bootstrap.prompt_resamples)."""
        resamples = options.get("bootstrap", 0)
        if not resamples or not ctx.records:
            return None
        keys = [r.prompt_index for r in ctx.records]
        values: dict[str, list[float]] = {name: [] for name in self.stats}
        for idx in prompt_resamples(keys, resamples, ctx.seed):
            found = self.measure(prepared, generated[idx], options, ctx)
            for name in self.stats:
                values[name].append(float(found[name].value))
        about = {"unit": "prompt", "resamples": resamples, "seed": ctx.seed, "prompts_hash": prompts_hash(keys)}
        return {"values": values, "about": about}


# --- Frechet distance (FID, FD-DINOv2, FID-CLIP, FD on any extractor) ---------------------------------------------

def _frechet_reference(ctx, extractor, options):
    from evalkit.metrics.frechet import FrechetReference

    stats, feats = ctx.reference_stats(extractor, "Frechet distance")
    return FrechetReference(stats.mu, stats.sigma, feats), stats.n


def _frechet_measure(name: str):
    def measure(prepared, generated, options, ctx) -> dict[str, Estimate]:
        from evalkit.metrics.score import gaussian

        reference, _ = prepared
        stats = gaussian(generated, name)
        return {name: Estimate.point(reference.distance(stats.mu, stats.sigma, generated), len(generated))}

    return measure


def _frechet_details(ctx, prepared, options) -> dict:
    # Fewer images than feature dimensions (2048 for Inception): the covariance is rank-deficient and the
    # distance strongly biased upwards.
    reference, n_ref = prepared
    dim = len(reference.mu)
    small = [n for n in (len(ctx.images), n_ref) if n is not None and n < dim]
    if small:
        ctx.warnings.append(
            f"Frechet distance from {min(small)} images (< {dim} feature dimensions) uses a rank-deficient covariance and "
            "is biased upwards; compare only values with the same N, or use KID, which is unbiased at small N")
    return {"n_reference": n_ref}


def _frechet(name: str, extractor: str, description: str, configurable: bool = False) -> FeatureMetric:
    options = {"extractor": _extractor_option(extractor)} if configurable else {}
    return FeatureMetric(name, False, description, extractor, (name,), _frechet_measure(name), _frechet_reference,
                         options={**options, "groups": _groups_option(True), "bootstrap": _bootstrap_option()},
                         details=_frechet_details)


FID = _frechet("fid", "inception", "Frechet Inception Distance (Heusel et al. 2017), Inception-v3 pool3")
FD_DINOV2 = _frechet("fd-dinov2", "dinov2-vitl14",
                     "Frechet distance in DINOv2 ViT-L/14 space (Stein et al. 2023, dgm-eval's preprocessing)")
FID_CLIP = _frechet("fid-clip", "clip-cleanfid", "Frechet distance in CLIP ViT-B/32 space (clean-fid's clip_vit_b_32)")
FD = _frechet("fd", "inception", "Frechet distance in any extractor's space (--opt fd.extractor=NAME)", configurable=True)


# --- KID --------------------------------------------------------------------------------------------------------

def _reference_features(ctx, extractor, options):
    return ctx.reference_features(extractor, "this metric")


def _kid_measure(prepared, generated, options, ctx) -> dict[str, Estimate]:
    from evalkit.metrics.kid import kernel_inception_distance

    generator = torch.Generator().manual_seed(ctx.seed)
    found = kernel_inception_distance(prepared, generated, options["subsets"], options["subset_size"], generator)
    mean, std = found["kid"], found["kid_std"]
    return {"kid": Estimate(mean, mean - 1.96 * std, mean + 1.96 * std, len(generated), "subsets-normal")}


def _kid_details(ctx, prepared, options) -> dict:
    return {"subset_size": min(options["subset_size"], len(prepared), len(ctx.images)), "seed": ctx.seed,
            "kernel": "(x.y / d + 1)^3", "n_reference": len(prepared)}


KID = FeatureMetric(
    "kid", False, "Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2, cubic kernel, random subsets",
    "inception", ("kid",), _kid_measure, _reference_features,
    options={"extractor": _extractor_option("inception"),
             "subsets": Option(100, parse_positive_int, "number of random subsets"),
             "subset_size": Option(1000, parse_positive_int, "images per subset (capped at the smaller side)"),
             "groups": _groups_option(True), "bootstrap": _bootstrap_option()},
    details=_kid_details)


# --- CMMD -------------------------------------------------------------------------------------------------------

def _cmmd_measure(prepared, generated, options, ctx) -> dict[str, Estimate]:
    from evalkit.metrics.cmmd import cmmd

    value = cmmd(prepared, generated, estimator=options["estimator"], sigma=options["sigma"], scale=options["scale"])
    return {"cmmd": Estimate.point(value, len(generated))}


def _cmmd_details(ctx, prepared, options) -> dict:
    return {"estimator": options["estimator"], "sigma": options["sigma"], "scale": options["scale"],
            "n_reference": len(prepared),
            "estimator_note": "biased = the published google-research code (means include the diagonal); "
                              "unbiased = the paper's formula"}


CMMD = FeatureMetric(
    "cmmd", False, "CLIP maximum mean discrepancy (Jayasumana et al. 2024): Gaussian RBF kernel on L2-normalised "
    "CLIP ViT-L/14@336 embeddings, sigma 10, x1000", "clip-cmmd", ("cmmd",), _cmmd_measure, _reference_features,
    options={"model": Option("ViT-L-14-336", str, "open_clip model of the CLIP embedding"),
             "pretrained": Option("openai", str, "open_clip pretrained tag"),
             "estimator": Option("biased", str, "biased (the published code) or unbiased (the paper)",
                                 choices=("biased", "unbiased")),
             "sigma": Option(10.0, parse_positive_float, "RBF kernel bandwidth"),
             "scale": Option(1000.0, parse_positive_float, "factor the MMD^2 is multiplied by"),
             "groups": _groups_option(False), "bootstrap": _bootstrap_option()},
    details=_cmmd_details,
    extractor_settings=lambda options: {"model": options["model"], "pretrained": options["pretrained"]})


# --- precision / recall / density / coverage --------------------------------------------------------------------

PRDC_STATS = ("precision", "recall", "density", "coverage")


def _prdc_measure(prepared, generated, options, ctx) -> dict[str, Estimate]:
    from evalkit.metrics.prdc import prdc

    found = prdc(prepared, generated, k_pr=options["k_pr"], k_dc=options["k_dc"],
                 max_samples=options["max_samples"] or None, seed=ctx.seed)
    n = int(found.get("n_fake", len(generated)))
    return {name: Estimate.point(found[name], n) for name in PRDC_STATS}


def _prdc_details(ctx, prepared, options) -> dict:
    return {"k_pr": options["k_pr"], "k_dc": options["k_dc"], "n_reference": len(prepared),
            "max_samples": options["max_samples"] or None,
            "subsampled": bool(options["max_samples"]) and max(len(prepared), len(ctx.images)) > options["max_samples"]}


PRDC = FeatureMetric(
    "prdc", True, "precision / recall (Kynkaanniemi et al. 2019, k=3) and density / coverage (Naeem et al. 2020, k=5)",
    "inception", PRDC_STATS, _prdc_measure, _reference_features, min_group=6,
    options={"extractor": _extractor_option("inception"),
             "k_pr": Option(3, parse_positive_int, "k of the precision/recall k-NN balls"),
             "k_dc": Option(5, parse_positive_int, "k of the density/coverage k-NN balls"),
             "max_samples": Option(0, parse_non_negative_int, "subsample each side to this many (0: all)"),
             "groups": _groups_option(False), "bootstrap": _bootstrap_option()},
    details=_prdc_details)


# --- CLIP score -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipScoreMetric:
    """CLIP score, 100 * max(cos(image, text), 0) per image (torchmetrics' convention); the interval resamples
    prompts (samples of one prompt are correlated), N counts images. Prompts longer than the text tower's context
    (77 tokens) are truncated by the tokenizer: counted in details, never silent."""

    name: str = "clip"
    higher_is_better: bool = True
    description: str = "CLIP score (Hessel et al. 2021; torchmetrics' 100*max(cos,0)), open_clip, default ViT-B-32/openai"
    stats: tuple[str, ...] = ("clip",)
    needs: Needs = Needs(extractor="clip", prompts=True)
    options: Mapping[str, Option] = field(default_factory=lambda: {
        "model": Option("ViT-B-32", str, "open_clip model"), "pretrained": Option("openai", str, "open_clip tag"),
        "per_image": Option(True, parse_bool, "store every image's score in details (true/false)")})

    def compute(self, ctx, options) -> list[Stat]:
        prompts = ctx.prompts()
        extractor = ctx.extractor("clip", {"model": options["model"], "pretrained": options["pretrained"]})
        image = torch.nn.functional.normalize(torch.from_numpy(np.asarray(ctx.features(extractor))).double(), dim=-1)
        distinct = sorted(set(prompts))
        text_emb, truncated = extractor.encode_texts(distinct)
        text = torch.nn.functional.normalize(torch.from_numpy(np.asarray(text_emb)).double(), dim=-1)
        row = {p: i for i, p in enumerate(distinct)}
        scores = (100 * (image * text[[row[p] for p in prompts]]).sum(dim=-1).clamp(min=0)).numpy()
        records = ctx.records
        keys = np.array([r.prompt_index for r in records])

        def clustered(indices, keep: dict | None = None) -> Estimate:
            indices = np.asarray(indices)
            replicates = [float(scores[indices[draw]].mean())
                          for draw in prompt_resamples(keys[indices], ctx.bootstrap, ctx.seed)]
            if keep is not None:
                keep.update(unit="prompt", resamples=ctx.bootstrap, seed=ctx.seed,
                            prompts_hash=prompts_hash(keys[indices]), replicates=replicates)
            if len(set(keys[indices])) < 2:
                return Estimate(float(scores[indices].mean()), None, None, len(indices), "none")
            low, high = percentile_interval(replicates)
            return Estimate(float(scores[indices].mean()), low, high, len(indices), "bootstrap-prompts")

        groups = {g: {label: clustered(idx) for label, idx in found.items()} for g, found in ctx.groups.items()}
        n_truncated = sum(truncated)
        if n_truncated:
            ctx.warnings.append(f"{n_truncated} of {len(distinct)} prompts are longer than CLIP's 77-token context "
                                "and were truncated for the CLIP score (counted in metrics.json)")
        details = {"convention": "100*max(cos,0)", "bootstrap_resamples": ctx.bootstrap, "seed": ctx.seed,
                   "prompts": len(distinct), "prompts_truncated": n_truncated,
                   "truncated_prompt_indices": sorted({r.prompt_index for r in records if truncated[row[r.prompt]]})}
        if options["per_image"]:
            details["per_image"] = {r.file: float(s) for r, s in zip(records, scores)}
        bootstrap: dict = {}
        overall = clustered(range(len(records)), bootstrap)
        details["bootstrap"] = bootstrap
        return [Stat("clip", overall, groups, extractor.description(), details)]


CLIP = ClipScoreMetric()

