"""The noise tolerance's statistics, simulated without images: two runs of the same model over the same prompts
with different seeds must fail the gate at about the nominal rate alpha (a binomial band), and a real shift of
three standard errors of the change must be caught. metrics.json documents are built as `evalkit score` writes
them (tests/reports/simulate.py) and go through the same reading and gating code as a real run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from evalkit.metrics.frechet import FrechetReference
from evalkit.reports.baseline import baseline_from_run
from evalkit.reports.gate import check_metrics
from evalkit.reports.noise import PAIRED, UNPAIRED
from evalkit.reports.records import parse_metrics
from tests.reports.simulate import SimulatedModel, document, frechet_stat, mean_stat, prompt_keys

ALPHA = 0.05  # the default noise tolerance: one-sided 5%


def gate(base_doc: dict, new_doc: dict, check_schema: bool = False):
    """The gate's verdict on the new run's only stat, from documents (baseline made from the first)."""
    baseline = baseline_from_run(parse_metrics(base_doc, Path("base/metrics.json"), check_schema))
    result = check_metrics(baseline, parse_metrics(new_doc, Path("new/metrics.json"), check_schema))
    return result.checks[0]


def without_replicates(doc: dict) -> dict:
    for stat in doc["metrics"].values():
        stat["details"] = {}
    return doc


def clip_pairs(pairs: int, shift_se: float, paired: bool = True) -> tuple[int, set[str]]:
    """How many of ``pairs`` simulated (baseline, new) CLIP-score runs fail the gate; the new run is shifted down
    (worse) by ``shift_se`` standard errors of the change."""
    failures, methods = 0, set()
    for i in range(pairs):
        model = SimulatedModel(prompts=200, per_prompt=4, prompt_sd=3.0, image_sd=2.0, seed=1000 + i)
        shift = -shift_se * model.standard_error_of_change
        base = document({"clip": mean_stat(model.scores(), model.keys)})
        new = document({"clip": mean_stat(model.scores(shift), model.keys)})
        if not paired:
            base, new = without_replicates(base), without_replicates(new)
        check = gate(base, new, check_schema=i < 2)
        failures += check.verdict == "regression"
        methods.add(check.noise_method)
    return failures, methods


def binomial_band(pairs: int, rate: float = ALPHA, level: float = 0.99) -> tuple[float, float]:
    return binom.interval(level, pairs, rate)


def test_paired_bootstrap_false_alarm_rate_is_nominal():
    pairs = 400
    failures, methods = clip_pairs(pairs, shift_se=0.0)
    low, high = binomial_band(pairs)
    assert methods == {PAIRED}
    assert low <= failures <= high, f"false alarms {failures}/{pairs} = {failures / pairs:.3f}, band [{low}, {high}]"


def test_paired_bootstrap_catches_three_standard_errors_and_the_unpaired_rule_is_conservative():
    pairs = 200
    caught, _ = clip_pairs(pairs, shift_se=3.0)
    # one-sided z test at 5%: power = Phi(3 - 1.645) = 0.91
    assert caught / pairs >= 0.82, f"power {caught / pairs:.3f}"
    # Without replicates: two independent intervals, which count the prompts' spread (shared by both runs) twice.
    false_alarms, methods = clip_pairs(pairs, shift_se=0.0, paired=False)
    unpaired_caught, _ = clip_pairs(pairs, shift_se=3.0, paired=False)
    assert methods == {UNPAIRED}
    assert false_alarms <= binom.ppf(0.01, pairs, ALPHA), f"unpaired false alarms {false_alarms}/{pairs}"
    assert unpaired_caught / pairs < caught / pairs - 0.5, f"unpaired power {unpaired_caught / pairs:.3f}"


@pytest.fixture(scope="module")
def frechet_world():
    """8-d features: a prompt's mean (shared by runs of one model) plus per-image noise; a fixed reference."""
    rng = np.random.default_rng(123)
    dim, prompts, per_prompt = 8, 200, 4
    reference_features = rng.normal(0.3, np.sqrt(1 + 0.5 ** 2), size=(4000, dim))
    reference = FrechetReference(reference_features.mean(0), np.cov(reference_features, rowvar=False))
    return reference, prompt_keys(prompts, per_prompt), dim


def frechet_pairs(world, pairs: int, shift: float) -> tuple[int, list[float]]:
    reference, keys, dim = world
    failures, deltas = 0, []
    for i in range(pairs):
        rng = np.random.default_rng(i)
        prompt_means = rng.normal(0, 1, size=(len(set(keys.tolist())), dim))[keys]
        base = prompt_means + 0.5 * rng.standard_normal(prompt_means.shape)
        new = prompt_means + 0.5 * rng.standard_normal(prompt_means.shape) - shift  # away from the reference
        check = gate(document({"fid": frechet_stat(base, keys, reference)}),
                     document({"fid": frechet_stat(new, keys, reference)}))
        assert check.noise_method == PAIRED
        failures += check.verdict == "regression"
        deltas.append(check.delta)
    return failures, deltas


def test_paired_bootstrap_of_a_frechet_distance(frechet_world):
    """FID's replicates are biased upwards (resampled prompts duplicate images); recentred, the paired bound
    still fails two runs of one model at about alpha, and catches a shift of ~3 standard errors."""
    pairs = 120
    failures, deltas = frechet_pairs(frechet_world, pairs, shift=0.0)
    low, high = binomial_band(pairs)
    assert low <= failures <= high, f"false alarms {failures}/{pairs}, band [{low}, {high}]"
    se = float(np.std(deltas, ddof=1))
    caught, shifted = frechet_pairs(frechet_world, 60, shift=0.028)
    assert 2.5 < np.mean(shifted) / se < 4.0  # the shift is ~3 standard errors of the change
    assert caught / 60 >= 0.7, f"power {caught / 60:.3f}"
