"""Bradley-Terry scores for many models from pairwise votes, with crossed-bootstrap intervals.

P(i beats j) = sigmoid(theta_i - theta_j). A tie counts as half a win for each side. The fit maximises the
weighted log-likelihood with a small L2 penalty (so a model that never wins in some bootstrap replicate still gets
a finite score) by damped Newton steps; K is a handful of models, so K x K linear algebra is instant.
Scores are centred (mean 0); ``elo`` rescales them to the familiar arena scale (1000 + 400 log10-odds).
"""

from __future__ import annotations

import math

import numpy as np

from evalkit.rating.bootstrap import _codes, crossed_weights

ELO_SCALE = 400 / math.log(10)


def _objective(theta, pair_i, pair_j, wins, totals, l2):
    diff = theta[pair_i] - theta[pair_j]
    # wins * log sigmoid(d) + (totals - wins) * log sigmoid(-d), written stably
    loglik = -(wins * np.logaddexp(0, -diff) + (totals - wins) * np.logaddexp(0, diff)).sum()
    return -loglik + 0.5 * l2 * float(theta @ theta)


def fit_pairs(n_models: int, pair_i, pair_j, wins, totals, l2: float = 1e-3, tol: float = 1e-10) -> np.ndarray:
    """Fit from aggregated counts: for each (i, j) row, ``wins`` of i over j out of ``totals`` comparisons."""
    pair_i, pair_j = np.asarray(pair_i), np.asarray(pair_j)
    wins, totals = np.asarray(wins, float), np.asarray(totals, float)
    theta = np.zeros(n_models)
    centre = np.ones((n_models, n_models)) / n_models  # fixes the free shift without changing the optimum
    value = _objective(theta, pair_i, pair_j, wins, totals, l2)
    for _ in range(200):
        p = 1 / (1 + np.exp(-(theta[pair_i] - theta[pair_j])))
        residual = wins - totals * p
        grad = l2 * theta
        np.add.at(grad, pair_i, -residual)
        np.add.at(grad, pair_j, residual)
        curvature = totals * p * (1 - p)
        hessian = l2 * np.eye(n_models) + centre
        np.add.at(hessian, (pair_i, pair_i), curvature)
        np.add.at(hessian, (pair_j, pair_j), curvature)
        np.add.at(hessian, (pair_i, pair_j), -curvature)
        np.add.at(hessian, (pair_j, pair_i), -curvature)
        step = np.linalg.solve(hessian, grad)
        scale = 1.0
        while True:  # halve the step until the objective does not get worse
            candidate = theta - scale * step
            candidate_value = _objective(candidate, pair_i, pair_j, wins, totals, l2)
            if candidate_value <= value + 1e-12 or scale < 1e-8:
                break
            scale /= 2
        theta, previous, value = candidate, value, candidate_value
        if abs(previous - value) < tol and np.abs(step).max() * scale < 1e-8:
            break
    return theta - theta.mean()


def _pair_table(model_i, model_j, n_models):
    """Index each vote's unordered pair, so per-replicate counts are one matrix product."""
    lo, hi = np.minimum(model_i, model_j), np.maximum(model_i, model_j)
    pair_codes = lo * n_models + hi
    unique, inverse = np.unique(pair_codes, return_inverse=True)
    return unique // n_models, unique % n_models, inverse.ravel()


def bradley_terry(
    model_i, model_j, scores, prompts, raters, n_models: int,
    n_boot: int = 1000, seed: int = 0, level: float = 0.95, l2: float = 1e-3,
) -> dict[str, np.ndarray]:
    """Scores and bootstrap intervals. ``scores`` is 1 when model_i won, 0.5 for a tie, 0 when model_j won."""
    model_i, model_j = np.asarray(model_i, int), np.asarray(model_j, int)
    scores = np.asarray(scores, float)
    # orient every vote as (lower id, higher id) so it lands on one aggregated pair row
    flip = model_i > model_j
    oriented = np.where(flip, 1 - scores, scores)
    pair_i, pair_j, vote_pair = _pair_table(model_i, model_j, n_models)
    indicator = np.zeros((scores.size, pair_i.size))
    indicator[np.arange(scores.size), vote_pair] = 1.0

    def fit(weights: np.ndarray) -> np.ndarray:
        return fit_pairs(n_models, pair_i, pair_j, (weights * oriented) @ indicator, weights @ indicator, l2)

    theta = fit(np.ones(scores.size))
    replicates = []
    rng = np.random.default_rng(seed)
    for block in crossed_weights(_codes(prompts), _codes(raters), n_boot, rng):
        replicates.extend(fit(weights) for weights in block)
    replicates = np.array(replicates)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return {"theta": theta, "low": low, "high": high}
