"""Inter-rater agreement: Krippendorff's alpha for nominal answers.

Chosen over Fleiss' kappa because raters see different subsets of trials: alpha allows any number of ratings per
unit and simply ignores units rated once. 1 = perfect agreement, 0 = chance level, < 0 = systematic disagreement.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Hashable, Iterable

import numpy as np


def krippendorff_alpha_nominal(pairs: Iterable[tuple[Hashable, Hashable]]) -> float:
    """Alpha from (unit, value) ratings. NaN if there is no unit with two ratings or only one value was ever used."""
    by_unit: dict[Hashable, list[Hashable]] = defaultdict(list)
    for unit, value in pairs:
        by_unit[unit].append(value)
    values = sorted({v for unit_values in by_unit.values() for v in unit_values}, key=str)
    code = {value: i for i, value in enumerate(values)}
    coincidence = np.zeros((len(values), len(values)))
    for unit_values in by_unit.values():
        m = len(unit_values)
        if m < 2:
            continue
        counts = Counter(code[v] for v in unit_values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                # ordered pairs of distinct ratings within the unit, each weighted 1 / (m - 1)
                coincidence[c, k] += (n_c * (n_k - (c == k))) / (m - 1)
    marginals = coincidence.sum(axis=1)
    n = marginals.sum()
    if n < 2:
        return float("nan")
    observed = coincidence.sum() - np.trace(coincidence)
    expected = (marginals.sum() ** 2 - (marginals**2).sum()) / (n - 1)
    if expected == 0:
        return float("nan")
    return float(1 - observed / expected)
