"""The sampling noise of a change between two runs of one stat, and bounds on the change.

For a stat measured on a baseline run and a new run, let ``D = new - base``. How far D strays from 0 when nothing
changed but the random seeds is estimated by the first of these rules that the two stats allow:

``paired-bootstrap``
    Both stats carry bootstrap replicates over the same resampled prompts (equal ``prompts_hash``, ``seed`` and
    ``resamples``; see evalkit.metrics.bootstrap.prompt_resamples), so ``d_i = new_i - base_i`` is the change
    measured on resample i. What the runs share (which prompts were drawn, and with the same model how hard each
    prompt is) cancels in ``d_i``; its spread is that of D alone. Bounds come from the bootstrap distribution
    recentred on the observed change,

        bound(q) = D + Q_q(d - mean(d)),        Q_q: the q-quantile over the B replicates,

    because resampling prompts with replacement duplicates images, which moves a distance such as FID in every
    replicate (fewer distinct images); that offset is not a change of the model and must not enter the bound.
``two-proportion``
    Shares with Wilson intervals (toy-world accuracies) and no pairable replicates: ``k = round(value * n)`` right
    answers of ``n`` on each side, pooled ``p = (k1 + k2) / (n1 + n2)``,
    ``se = sqrt(p (1 - p) (1 / n1 + 1 / n2))``, ``bound(q) = D + z_q se`` (the pooled two-proportion z test).
``unpaired``
    Otherwise each side's standard error (the replicates' standard deviation, else the 95% interval's width /
    (2 x 1.96)), combined as for independent runs: ``bound(q) = D + z_q sqrt(se_base^2 + se_new^2)``.
``none``
    No replicates and no interval on a side (FID, CMMD, PRDC scored without ``--opt METRIC.bootstrap=B``).

The last two treat the runs as independent. Two runs over the same prompts are positively correlated (a prompt
that is hard is hard for both), so the true spread of D is smaller: these rules are conservative, with fewer false
alarms than nominal and far less power than the paired bootstrap. ``two-proportion`` also treats images as
independent trials; several images of one prompt are correlated, which makes it somewhat optimistic within a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from evalkit.reports.records import Bootstrap, StatRecord

PAIRED, TWO_PROPORTION, UNPAIRED, NONE = "paired-bootstrap", "two-proportion", "unpaired", "none"
Z95 = NormalDist().inv_cdf(0.975)  # the Estimate intervals are 95% two-sided


@dataclass(frozen=True)
class ChangeNoise:
    """The null spread of a change: recentred paired deviations, or a normal standard error."""

    method: str
    deviations: tuple[float, ...] = ()  # paired-bootstrap: d_i - mean(d)
    se: float | None = None  # two-proportion / unpaired
    note: str = ""  # why replicates were not paired, when both sides had some

    @property
    def known(self) -> bool:
        return self.method != NONE

    def quantile(self, q: float) -> float:
        if self.method == PAIRED:
            return float(np.quantile(np.asarray(self.deviations), q))
        if self.se is None:
            raise ValueError("no noise estimate")
        return self.se * NormalDist().inv_cdf(q)

    def bounds(self, delta: float, alpha: float) -> tuple[float, float]:
        """(low, high): each a one-sided (1 - alpha) confidence bound on the true change; together a
        (1 - 2 alpha) interval."""
        return delta + self.quantile(alpha), delta + self.quantile(1 - alpha)


def pairing_problem(base: Bootstrap | None, new: Bootstrap | None) -> str | None:
    """Why two stats' replicates are not a paired bootstrap (None when they are)."""
    if base is None and new is None:
        return "no bootstrap replicates"
    if base is None or new is None:
        return f"bootstrap replicates on the {'new run' if base is None else 'baseline'} only"
    for field in ("unit", "prompts_hash", "seed", "resamples"):
        a, b = getattr(base, field), getattr(new, field)
        if a != b:
            return f"bootstrap {field} differs ({_short(a)} vs {_short(b)})"
    return None


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 20 else text[:16] + "..."


def _standard_error(stat: StatRecord) -> float | None:
    if stat.bootstrap is not None and len(stat.bootstrap.replicates) >= 2:
        return float(np.std(stat.bootstrap.replicates, ddof=1))
    est = stat.overall
    if est.has_interval:
        return (est.high - est.low) / (2 * Z95)
    return None


def _two_proportion_se(base: StatRecord, new: StatRecord) -> float | None:
    n1, n2 = base.overall.n, new.overall.n
    if n1 <= 0 or n2 <= 0:
        return None
    k1, k2 = round(base.overall.value * n1), round(new.overall.value * n2)
    pooled = (k1 + k2) / (n1 + n2)
    return math.sqrt(max(pooled * (1 - pooled), 0.0) * (1 / n1 + 1 / n2))


def change_noise(base: StatRecord, new: StatRecord) -> ChangeNoise:
    """The best noise estimate the two stats allow (module docstring, in order)."""
    problem = pairing_problem(base.bootstrap, new.bootstrap)
    if problem is None:
        d = np.asarray(new.bootstrap.replicates) - np.asarray(base.bootstrap.replicates)
        return ChangeNoise(PAIRED, tuple((d - d.mean()).tolist()))
    note = problem if base.bootstrap is not None or new.bootstrap is not None else ""
    if base.overall.method == "wilson" and new.overall.method == "wilson":
        se = _two_proportion_se(base, new)
        if se is not None:
            return ChangeNoise(TWO_PROPORTION, se=se, note=note)
    ses = (_standard_error(base), _standard_error(new))
    if None in ses:
        return ChangeNoise(NONE, note=note)
    return ChangeNoise(UNPAIRED, se=math.hypot(*ses), note=note)
