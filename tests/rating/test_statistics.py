"""Preference rates, crossed bootstrap, Bradley-Terry and Krippendorff's alpha against hand-computed values and
independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from evalkit.estimate import Estimate
from evalkit.rating.agreement import krippendorff_alpha_nominal
from evalkit.rating.bootstrap import crossed_weights, preference_rates
from evalkit.rating.bradley_terry import bradley_terry, fit_pairs


def test_preference_by_hand():
    half, strict = preference_rates([1, 1, 0.5, 0], prompts=[0, 1, 2, 3], raters=[0, 0, 1, 1], n_boot=50)
    assert half.value == pytest.approx(2.5 / 4) and half.n == 4
    assert strict.value == pytest.approx(2 / 3) and strict.n == 3
    unanimous, _ = preference_rates([1.0] * 6, prompts=range(6), raters=[0, 1] * 3, n_boot=50)
    assert (unanimous.value, unanimous.low, unanimous.high) == (1.0, 1.0, 1.0)
    assert isinstance(unanimous, Estimate) and unanimous.method == "bootstrap-prompts-raters"
    _, only_ties = preference_rates([0.5, 0.5], prompts=[0, 1], raters=[0, 1], n_boot=20)
    assert only_ties == Estimate(None, None, None, 0, "none")
    assert preference_rates([], prompts=[], raters=[]) == (Estimate.empty(), Estimate.empty())


def test_crossed_weights_multiply_prompt_and_rater_draws():
    prompts, raters = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0])
    [block] = list(crossed_weights(prompts, raters, 5, np.random.default_rng(0)))
    rng = np.random.default_rng(0)
    prompt_draws = rng.multinomial(3, [1 / 3] * 3, size=5)
    rater_draws = rng.multinomial(2, [1 / 2] * 2, size=5)
    assert np.array_equal(block, prompt_draws[:, prompts] * rater_draws[:, raters])


def _simulated_votes(rng, n_prompts=40, n_raters=12, p=0.7, prompt_spread=0.0):
    prompt_effect = rng.normal(0, prompt_spread, n_prompts)
    base = np.log(p / (1 - p))
    prompts, raters, scores = [], [], []
    for prompt in range(n_prompts):
        for rater in range(n_raters):
            win = rng.random() < 1 / (1 + np.exp(-(base + prompt_effect[prompt])))
            prompts.append(prompt), raters.append(rater), scores.append(float(win))
    return np.array(scores), np.array(prompts), np.array(raters)


def test_interval_covers_truth_and_widens_with_prompt_effects():
    rng = np.random.default_rng(7)
    scores, prompts, raters = _simulated_votes(rng)
    half, _ = preference_rates(scores, prompts, raters, n_boot=400)
    assert half.low < 0.7 < half.high and half.high - half.low < 0.15
    # when prompts differ, votes on one prompt are correlated: resampling prompts must widen the interval
    scores, prompts, raters = _simulated_votes(rng, prompt_spread=1.5)
    crossed, _ = preference_rates(scores, prompts, raters, n_boot=400)
    naive, _ = preference_rates(scores, np.arange(scores.size), np.zeros(scores.size), n_boot=400)
    assert crossed.high - crossed.low > 1.5 * (naive.high - naive.low)


def test_bradley_terry_exact_hand_example():
    # strengths 4:2:1 give P(A>B)=2/3, P(B>C)=2/3, P(A>C)=4/5; counts in exactly those ratios make them the MLE
    theta = fit_pairs(3, [0, 1, 0], [1, 2, 2], wins=[2, 2, 4], totals=[3, 3, 5], l2=0)
    assert theta == pytest.approx(np.log([4, 2, 1]) - np.log([4, 2, 1]).mean(), abs=1e-7)
    two = fit_pairs(2, [0], [1], wins=[3], totals=[4], l2=0)
    assert two[0] - two[1] == pytest.approx(np.log(3), abs=1e-8)


def test_bradley_terry_matches_scipy_likelihood_fit():
    rng = np.random.default_rng(1)
    k, n = 5, 600
    i, j = rng.integers(0, k, n), rng.integers(0, k, n)
    keep = i != j
    i, j = i[keep], j[keep]
    truth = rng.normal(0, 1, k)
    scores = (rng.random(i.size) < 1 / (1 + np.exp(-(truth[i] - truth[j])))).astype(float)
    scores[rng.random(i.size) < 0.15] = 0.5  # some ties, counted as half a win each way

    def negative_loglik(free):
        theta = np.append(free, -free.sum())
        d = theta[i] - theta[j]
        return -(scores * -np.logaddexp(0, -d) + (1 - scores) * -np.logaddexp(0, d)).sum()

    reference = minimize(negative_loglik, np.zeros(k - 1), method="BFGS", options={"gtol": 1e-9}).x
    reference = np.append(reference, -reference.sum())
    ours = bradley_terry(i, j, scores, prompts=np.arange(i.size), raters=np.zeros(i.size), n_models=k,
                         n_boot=20, l2=0)["theta"]
    assert ours == pytest.approx(reference, abs=1e-4)


def test_bradley_terry_recovers_simulated_strengths_with_intervals():
    rng = np.random.default_rng(2)
    truth = np.array([1.0, 0.3, -0.2, -1.1])
    votes = []
    for prompt in range(60):
        for rater in range(8):
            a, b = rng.choice(4, 2, replace=False)
            p = 1 / (1 + np.exp(-(truth[a] - truth[b])))
            u = rng.random()
            score = 1.0 if u < p - 0.05 else (0.5 if u < p + 0.05 else 0.0)  # a thin band of ties
            votes.append((a, b, score, prompt, rater))
    a, b, score, prompt, rater = map(np.array, zip(*votes))
    fit = bradley_terry(a, b, score, prompt, rater, n_models=4, n_boot=200)
    assert list(np.argsort(-fit["theta"])) == [0, 1, 2, 3]
    assert fit["theta"] == pytest.approx(truth - truth.mean(), abs=0.25)
    assert np.all(fit["low"] < truth - truth.mean()) and np.all(truth - truth.mean() < fit["high"])


def test_bradley_terry_all_ties_and_a_model_that_never_wins_stay_finite():
    fit = bradley_terry([0, 1, 0], [1, 2, 2], [0.5, 0.5, 0.5], [0, 1, 2], [0, 0, 0], n_models=3, n_boot=20)
    assert fit["theta"] == pytest.approx(np.zeros(3), abs=1e-9)
    fit = bradley_terry([0, 0, 1, 1], [2, 2, 2, 2], [1, 1, 1, 1], [0, 1, 2, 3], [0, 0, 1, 1], n_models=3, n_boot=20)
    assert np.all(np.isfinite(fit["theta"])) and fit["theta"][2] == fit["theta"].min()


def test_krippendorff_alpha_by_hand():
    # units (a,a) (a,b) (b,b) (b,b): o_aa=2, o_ab=o_ba=1, o_bb=4; n_a=3, n_b=5 -> alpha = 1 - 7*2/30
    pairs = [(1, "a"), (1, "a"), (2, "a"), (2, "b"), (3, "b"), (3, "b"), (4, "b"), (4, "b")]
    assert krippendorff_alpha_nominal(pairs) == pytest.approx(1 - 14 / 30)
    assert krippendorff_alpha_nominal([(1, "A"), (1, "A"), (2, "B"), (2, "B"), (3, "tie")]) == pytest.approx(1.0)
    assert np.isnan(krippendorff_alpha_nominal([(1, "A"), (2, "B")]))  # no unit rated twice


def test_krippendorff_alpha_matches_reference_package():
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(4)
    data = rng.integers(0, 3, size=(6, 40)).astype(float)
    data[:4, :15] = 2  # some agreement
    data[rng.random(data.shape) < 0.35] = np.nan  # raters see different subsets
    pairs = [(unit, data[r, unit]) for r in range(6) for unit in range(40) if not np.isnan(data[r, unit])]
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert krippendorff_alpha_nominal(pairs) == pytest.approx(expected, abs=1e-9)
