"""Preference rates with confidence intervals from a crossed bootstrap over prompts and raters.

Votes are not independent: the same prompt is judged by many raters and each rater judges many prompts. Resampling
whole prompts and, independently, whole raters (each vote weighted by how often its prompt and its rater were
drawn) makes the interval reflect both sources of variation; resampling votes alone would be too narrow.

Rates are ``evalkit.estimate.Estimate`` values with method ``bootstrap-prompts-raters``, the shape every evalkit
number has: value None when there is nothing to rate (no votes, or only ties once ties are excluded), and no
interval (method ``none``) when no bootstrap replicate could be computed.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from evalkit.estimate import Estimate

METHOD = "bootstrap-prompts-raters"

CHUNK = 200  # replicates per block: keeps the (replicates x votes) weight matrix small


def crossed_weights(
    prompt_codes: np.ndarray, rater_codes: np.ndarray, n_boot: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield blocks of bootstrap weights, shape (block, votes): prompt draw count x rater draw count."""
    n_prompts, n_raters = int(prompt_codes.max()) + 1, int(rater_codes.max()) + 1
    for start in range(0, n_boot, CHUNK):
        block = min(CHUNK, n_boot - start)
        prompt_draws = rng.multinomial(n_prompts, np.full(n_prompts, 1 / n_prompts), size=block)
        rater_draws = rng.multinomial(n_raters, np.full(n_raters, 1 / n_raters), size=block)
        yield (prompt_draws[:, prompt_codes] * rater_draws[:, rater_codes]).astype(float)


def _codes(labels) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel()


def preference_rates(
    scores: np.ndarray, prompts, raters, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[Estimate, Estimate]:
    """Preference for A from vote scores (1 = A, 0.5 = tie, 0 = B): (ties counted as half, ties excluded)."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        return Estimate.empty(), Estimate.empty()
    decisive = scores != 0.5
    prompt_codes, rater_codes = _codes(prompts), _codes(raters)
    rng = np.random.default_rng(seed)
    half, strict = [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        for weights in crossed_weights(prompt_codes, rater_codes, n_boot, rng):
            half.append(weights @ scores / weights.sum(axis=1))
            decisive_weights = weights[:, decisive]
            strict.append(decisive_weights @ scores[decisive] / decisive_weights.sum(axis=1))
    tail = (1 - level) / 2 * 100

    def rate(point: float | None, replicates: list[np.ndarray], n: int) -> Estimate:
        values = np.concatenate(replicates)
        values = values[~np.isnan(values)]
        if n == 0 or values.size == 0:
            return Estimate(point, None, None, n, "none")
        low, high = np.percentile(values, [tail, 100 - tail])
        return Estimate(point, float(low), float(high), n, METHOD)

    strict_point = float(scores[decisive].mean()) if decisive.any() else None
    return rate(float(scores.mean()), half, scores.size), rate(strict_point, strict, int(decisive.sum()))
