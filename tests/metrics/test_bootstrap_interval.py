"""The bias-corrected percentile interval of a distance's bootstrap replicates."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.metrics.bootstrap import percentile_interval, recentred_interval


def test_recentred_interval_is_the_percentile_interval_shifted_by_the_bootstrap_bias():
    replicates = np.arange(101, dtype=float) / 10 + 6.0  # 6.0 .. 16.0, mean 11.0
    # numpy's linear percentiles of 0..100 are 2.5 and 97.5 exactly: 6.25 and 15.75
    assert percentile_interval(replicates) == pytest.approx((6.25, 15.75))
    assert recentred_interval(replicates, 5.0) == pytest.approx((0.25, 9.75))  # bias 11.0 - 5.0 = 6.0


def test_a_biased_bootstrap_interval_covers_its_value_after_recentring():
    rng = np.random.default_rng(0)
    value = 5.68
    replicates = value + 1.6 + rng.normal(0, 0.45, 400)  # FD-like: every replicate above the full-set value
    low, high = percentile_interval(replicates)
    assert low > value  # the plain interval misses the value
    low, high = recentred_interval(replicates, value)
    assert low < value < high and high - low == pytest.approx(np.diff(percentile_interval(replicates))[0])
