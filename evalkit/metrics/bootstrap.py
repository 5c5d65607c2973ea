"""Percentile-bootstrap 95% intervals over prompts (seeded, so reruns give the same interval and two runs over
the same prompts draw the same resamples)."""

from __future__ import annotations

import numpy as np


def prompts_hash(prompt_keys) -> str:
    """Identity of a set of prompts (their benchmark row indices), recorded beside bootstrap replicates: two
    runs' replicates pair only when they resampled the same prompts."""
    import hashlib

    keys = sorted({int(k) for k in prompt_keys})
    return "sha256:" + hashlib.sha256(",".join(map(str, keys)).encode()).hexdigest()


def prompt_draws(prompt_keys, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct prompt keys (sorted) and a ``resamples`` x P matrix of indices into them, each row P prompts
    drawn with replacement. Depends only on P and ``seed``: two runs over the same prompts draw the same rows."""
    distinct = np.unique(np.asarray(prompt_keys))
    rng = np.random.default_rng(seed)
    return distinct, rng.integers(0, len(distinct), size=(resamples, len(distinct)))


def prompt_resamples(prompt_keys, resamples: int, seed: int) -> list[np.ndarray]:
    """Bootstrap over prompts: for each of ``resamples`` replicates, the image indices of P prompts drawn with
    replacement from the P distinct prompts (all samples of a drawn prompt come along; samples of one prompt are
    correlated, so prompts are the unit).

    The draw depends only on the sorted distinct prompt keys' count and ``seed`` (``prompt_draws``), so two runs
    over the same prompts (same benchmark rows, any model) draw the same prompts in replicate i: differences of
    their replicates are a paired bootstrap of the difference, far tighter than two independent intervals when
    the runs share seeds."""
    keys = np.asarray(prompt_keys)
    distinct, draws = prompt_draws(keys, resamples, seed)
    members = [np.flatnonzero(keys == k) for k in distinct]
    return [np.concatenate([members[i] for i in row]) for row in draws]


def percentile_interval(replicates, level: float = 0.95) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(replicates, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


def recentred_interval(replicates, value: float, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval shifted by the bootstrap's own bias, ``mean(replicates) - value``.

    A resample over prompts repeats some images; for a distance between distributions (FID, KID, CMMD, PRDC)
    duplicates are not new information, so replicates sit systematically above (or below) the full-set value, and
    the plain percentile interval can miss the value itself (FD of 128 toy images: 5.68 with a percentile interval
    of [6.40, 8.24]). Subtracting the estimated bias is the bias-corrected percentile interval (Efron & Tibshirani
    1993, ch. 10, without the acceleration term); its width is the percentile interval's."""
    data = np.asarray(replicates, dtype=np.float64)
    bias = float(data.mean()) - float(value)
    low, high = percentile_interval(data, level)
    return low - bias, high - bias
