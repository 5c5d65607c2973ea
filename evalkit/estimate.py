"""One result shape for every number evalkit reports: a value with its 95% interval, its N, and how the interval
was made. Metrics, the toy-world scorer and the human-study summaries all return ``Estimate``; metrics.json, the
reports and the regression gate read nothing else.

Interval methods (``method``) in use:
  ``bootstrap-prompts``  percentile bootstrap over prompts (per-prompt means resampled; samples of one prompt are
                         correlated, so prompts are the unit)
  ``bootstrap-prompts-raters``  the human-study bootstrap over prompts and raters
  ``wilson``             Wilson score interval of a proportion (images treated as independent trials)
  ``subsets-normal``     mean +- 1.96 x std over random subsets (KID: the spread of one subset's estimate, so a
                         conservative interval for the mean)
  ``none``               no interval is defined or computed (low and high are None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

INTERVAL_METHODS = ("bootstrap-prompts", "bootstrap-prompts-raters", "wilson", "subsets-normal", "none")


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Estimate:
    value: float | None  # None only when nothing could be measured (n == 0)
    low: float | None
    high: float | None
    n: int  # the units the value is computed over (images, votes, ...)
    method: str = "none"

    def __post_init__(self):
        if self.method not in INTERVAL_METHODS:
            raise ValueError(f"unknown interval method {self.method!r}")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"an estimate's value must be finite, got {self.value}")
        if (self.low is None) != (self.high is None):
            raise ValueError("an interval needs both ends or neither")

    @property
    def has_interval(self) -> bool:
        return self.low is not None

    def to_json(self) -> dict[str, Any]:
        return {"value": _finite_or_none(self.value), "low": _finite_or_none(self.low),
                "high": _finite_or_none(self.high), "n": int(self.n), "method": self.method}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Estimate":
        return cls(data["value"], data["low"], data["high"], int(data["n"]), data["method"])

    @classmethod
    def point(cls, value: float, n: int) -> "Estimate":
        """A value with no interval (FID, CMMD, PRDC unless bootstrapped)."""
        return cls(float(value), None, None, n, "none")

    @classmethod
    def empty(cls) -> "Estimate":
        return cls(None, None, None, 0, "none")
