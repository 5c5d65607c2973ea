"""metrics.json documents built directly, without images: simulated runs of a model over the same prompts, with
per-prompt difficulty shared by every run of that model and per-image noise that a run's seeds redraw.

Replicates are made the way the clip metric makes them (evalkit.metrics.bootstrap.prompt_resamples over the
images' prompt keys, the mean of each resample), and a Frechet distance the way FeatureMetric._bootstrap does
(the reference side fixed, the generated features of each resample), so the gate reads what `evalkit score`
writes.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import numpy as np

from evalkit import __version__
from evalkit.metrics.bootstrap import percentile_interval, prompt_resamples, prompts_hash, recentred_interval

HASH = "sha256:" + "ab" * 32
KEY = {
    "benchmark": {"name": "drawbench", "content_hash": HASH},
    "n_images": None,
    "images_per_prompt": None,
    "extractor": {"name": "clip", "weights_sha256": "cd" * 32, "preprocessing": {"resize": "bicubic"}},
    "reference": None,
    "options": {"model": "ViT-B-32", "pretrained": "openai", "per_image": False},
    "evalkit_version": __version__,
}


def prompt_keys(prompts: int, per_prompt: int) -> np.ndarray:
    return np.repeat(np.arange(prompts), per_prompt)


def bootstrap_stat(value: float, keys: np.ndarray, replicates: list[float], resamples: int, seed: int,
                   higher_is_better: bool = True, metric: str = "clip", key: dict | None = None) -> dict[str, Any]:
    """One stat of metrics.json with a bootstrap-prompts interval and its replicates."""
    # as `evalkit score` does: CLIP score's clustered mean is unbiased, a distance's replicates are recentred
    low, high = percentile_interval(replicates) if metric == "clip" else recentred_interval(replicates, value)
    stat_key = copy.deepcopy(key or KEY)
    stat_key["n_images"], stat_key["images_per_prompt"] = len(keys), int(len(keys) // len(set(keys.tolist())))
    return {"metric": metric, "higher_is_better": higher_is_better,
            "overall": {"value": float(value), "low": low, "high": high, "n": len(keys), "method": "bootstrap-prompts"},
            "groups": {}, "key": stat_key, "options": dict(stat_key["options"]),
            "details": {"bootstrap": {"unit": "prompt", "resamples": resamples, "seed": seed,
                                      "prompts_hash": prompts_hash(keys), "replicates": replicates}},
            "computed_at": "2026-01-01T00:00:00Z", "versions": {}}


@lru_cache(maxsize=8)
def _draws(keys: tuple[int, ...], resamples: int, seed: int) -> np.ndarray:
    """prompt_resamples' image indices as one array (every prompt has the same number of images here); the draws
    depend only on the prompts and the seed, so every simulated run of one prompt set shares them."""
    return np.stack(prompt_resamples(np.asarray(keys), resamples, seed))


def mean_stat(scores: np.ndarray, keys: np.ndarray, resamples: int = 200, seed: int = 0, **kw) -> dict[str, Any]:
    """A mean of per-image scores (CLIP score) with replicates over resampled prompts, as the clip metric makes
    them: the mean score of each resample's images."""
    replicates = scores[_draws(tuple(keys.tolist()), resamples, seed)].mean(axis=1).tolist()
    return bootstrap_stat(scores.mean(), keys, replicates, resamples, seed, **kw)


def frechet_stat(features: np.ndarray, keys: np.ndarray, reference, resamples: int = 100, seed: int = 0,
                 **kw) -> dict[str, Any]:
    """A Frechet distance of per-image features to a fixed reference, with replicates over resampled prompts."""
    from evalkit.metrics.stats import FeatureStats

    def distance(x):
        stats = FeatureStats.of(x).compute()
        return reference.distance(stats.mu, stats.sigma, x)

    replicates = [float(distance(features[draw])) for draw in prompt_resamples(keys, resamples, seed)]
    return bootstrap_stat(distance(features), keys, replicates, resamples, seed, higher_is_better=False,
                          metric="fid", **kw)


def wilson_stat(successes: int, trials: int, name: str = "toyworld.all") -> dict[str, Any]:
    from evalkit.metrics.toyworld import wilson

    key = copy.deepcopy(KEY)
    key.update(extractor=None, options={"baseline": True}, n_images=trials, images_per_prompt=1)
    return {"metric": "toyworld", "higher_is_better": True, "overall": wilson(successes, trials).to_json(),
            "groups": {}, "key": key, "options": {"baseline": True}, "details": {},
            "computed_at": "2026-01-01T00:00:00Z", "versions": {}}


def document(stats: dict[str, dict[str, Any]], run_id: str = "sim-run") -> dict[str, Any]:
    """A schema-valid metrics.json holding ``stats``."""
    n = max((s["overall"]["n"] for s in stats.values()), default=0)
    return {"schema_version": 1, "evalkit_version": __version__,
            "generated": {"id": run_id, "kind": "run", "hash": HASH, "n": n},
            "run": {"run_id": run_id, "benchmark": {"name": "drawbench", "content_hash": HASH},
                    "images_per_prompt": None, "n_prompts": None, "n_images": n, "n_planned": n, "adapter": "sim"},
            "generation": None, "metrics": stats, "warnings": []}


class SimulatedModel:
    """Per-prompt true scores drawn once (the model's difficulty profile over the prompts); each run adds
    independent per-image noise (its own seeds) and an optional shift (a real change)."""

    def __init__(self, prompts: int = 200, per_prompt: int = 4, prompt_sd: float = 3.0, image_sd: float = 2.0,
                 mean: float = 30.0, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.keys = prompt_keys(prompts, per_prompt)
        self.prompt_scores = mean + prompt_sd * self.rng.standard_normal(prompts)
        self.image_sd = image_sd

    def scores(self, shift: float = 0.0) -> np.ndarray:
        noise = self.image_sd * self.rng.standard_normal(len(self.keys))
        return self.prompt_scores[self.keys] + noise + shift

    @property
    def standard_error_of_change(self) -> float:
        """sd of the mean difference of two runs over the same prompts: only the image noise differs."""
        return self.image_sd * np.sqrt(2 / len(self.keys))
