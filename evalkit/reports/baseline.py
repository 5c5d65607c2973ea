"""The baseline file `evalkit check` gates a run against (format version 1): a run's stats, kept on purpose, and
one tolerance per stat.

    {
      "evalkit_baseline": 1,
      "written": "2026-01-31T12:00:00Z",
      "evalkit_version": "0.1.0",
      "source": {"run_id": "drawbench-imagen-...", "generated": {"id": ..., "kind": "run", "hash": ..., "n": ...}},
      "tolerances": {
        "*":      {"noise": {"alpha": 0.05, "min_effect": 0.0}},
        "fid":    {"max_rel_increase": 0.02},
        "clip":   {"max_increase": 0.5}
      },
      "stats": {
        "fid": {"metric": "fid", "higher_is_better": false,
                "overall": {"value": 31.2, "low": 30.1, "high": 32.6, "n": 800, "method": "bootstrap-prompts"},
                "key": {... the comparability key, as in metrics.json ...},
                "bootstrap": {"unit": "prompt", "resamples": 200, "seed": 0, "prompts_hash": "sha256:...",
                              "replicates": [200 numbers]} }
      }
    }

Every stat in ``stats`` is gated; ``tolerances`` maps a stat name (or ``"*"``, the default for the rest) to
exactly one rule, each measured in the stat's bad direction (an increase for lower-is-better stats such as FID,
a decrease for higher-is-better ones such as CLIP score):

  ``{"max_increase": X}``       fail when the change in the bad direction exceeds X (the stat's units)
  ``{"max_rel_increase": R}``   fail when it exceeds R x |baseline value| (0.02: 2%)
  ``{"noise": {"alpha": A, "min_effect": M}}``  fail only when the change is outside the stat's sampling noise at
                                this N: the one-sided (1 - A) confidence bound of the change (evalkit.reports.noise)
                                lies beyond M in the bad direction. Defaults A = 0.05, M = 0; ``{"noise": true}``
                                takes both defaults.

A stat with no tolerance and no ``"*"`` entry gets ``{"noise": {"alpha": 0.05, "min_effect": 0}}``.
`evalkit check RUN --update-baseline --baseline FILE` rewrites ``stats`` (and ``source``, ``written``) from RUN and
keeps the file's ``tolerances``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit import __version__, atomic
from evalkit.errors import EvalkitError
from evalkit.reports.records import RunMetrics, StatRecord, read_json

BASELINE_VERSION = 1
FORMAT_FIELD = "evalkit_baseline"
DEFAULT_KEY = "*"
RULES = ("max_increase", "max_rel_increase", "noise")


@dataclass(frozen=True)
class Tolerance:
    rule: str  # one of RULES
    limit: float = 0.0  # max_increase (stat units) or max_rel_increase (a fraction)
    alpha: float = 0.05  # noise: one-sided level
    min_effect: float = 0.0  # noise: a change smaller than this never fails

    def to_json(self) -> dict[str, Any]:
        if self.rule == "noise":
            return {"noise": {"alpha": self.alpha, "min_effect": self.min_effect}}
        return {self.rule: self.limit}

    def describe(self) -> str:
        if self.rule == "max_increase":
            return f"worse by <= {self.limit:g}"
        if self.rule == "max_rel_increase":
            return f"worse by <= {100 * self.limit:g}%"
        effect = f", > {self.min_effect:g}" if self.min_effect else ""
        return f"noise (alpha {self.alpha:g} one-sided{effect})"

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Tolerance":
        if not isinstance(data, dict) or len(data) != 1 or next(iter(data)) not in RULES:
            raise EvalkitError(f"{where}: a tolerance is one of {{\"max_increase\": X}}, {{\"max_rel_increase\": R}}, "
                               f"{{\"noise\": {{\"alpha\": A, \"min_effect\": M}}}}; got {data!r}")
        rule, value = next(iter(data.items()))
        if rule != "noise":
            return cls(rule, limit=_number(value, f"{where}.{rule}", minimum=0.0))
        if value is True:
            return cls("noise")
        if not isinstance(value, dict) or set(value) - {"alpha", "min_effect"}:
            raise EvalkitError(f"{where}.noise: expected true or {{\"alpha\": A, \"min_effect\": M}}, got {value!r}")
        alpha = _number(value.get("alpha", 0.05), f"{where}.noise.alpha", minimum=0.0)
        if not 0 < alpha < 0.5:
            raise EvalkitError(f"{where}.noise.alpha must be in (0, 0.5), got {alpha:g}")
        return cls("noise", alpha=alpha,
                   min_effect=_number(value.get("min_effect", 0.0), f"{where}.noise.min_effect", minimum=0.0))


DEFAULT_TOLERANCE = Tolerance("noise")


def _number(value: Any, where: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EvalkitError(f"{where} must be a finite number, got {value!r}")
    if value < minimum:
        raise EvalkitError(f"{where} must be >= {minimum:g}, got {value:g}")
    return float(value)


@dataclass(frozen=True)
class Baseline:
    stats: dict[str, StatRecord]
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    written: str = ""
    evalkit_version: str = __version__

    def tolerance_for(self, stat: str) -> Tolerance:
        return self.tolerances.get(stat) or self.tolerances.get(DEFAULT_KEY) or DEFAULT_TOLERANCE

    def to_json(self) -> dict[str, Any]:
        return {FORMAT_FIELD: BASELINE_VERSION, "written": self.written, "evalkit_version": self.evalkit_version,
                "source": self.source, "tolerances": {k: t.to_json() for k, t in self.tolerances.items()},
                "stats": {name: stat.to_json() for name, stat in self.stats.items()}}


def read_baseline(path: str | Path) -> Baseline:
    path = Path(path)
    if not path.is_file():
        raise EvalkitError(f"baseline {path} does not exist (write one with: evalkit check RUN --update-baseline "
                           f"--baseline {path})")
    data = read_json(path, "baseline")
    if not isinstance(data, dict) or FORMAT_FIELD not in data:
        raise EvalkitError(f"{path} is not an evalkit baseline (no {FORMAT_FIELD!r} field)")
    if data[FORMAT_FIELD] != BASELINE_VERSION:
        raise EvalkitError(f"{path} is baseline format {data[FORMAT_FIELD]!r}; this evalkit reads {BASELINE_VERSION}")
    stats, tolerances = data.get("stats"), data.get("tolerances", {})
    if not isinstance(stats, dict) or not stats:
        raise EvalkitError(f"{path}: 'stats' must be a non-empty object of stats")
    if not isinstance(tolerances, dict):
        raise EvalkitError(f"{path}: 'tolerances' must be an object (stat name or \"*\" -> rule)")
    records = {name: StatRecord.from_json(name, stat, str(path), stat.get("bootstrap") if isinstance(stat, dict)
                                          else None) for name, stat in stats.items()}
    for name, record in records.items():
        if record.overall.value is None:
            raise EvalkitError(f"{path}: stat {name!r} has no value")
    rules = {name: Tolerance.from_json(rule, f"{path}: tolerances.{name}") for name, rule in tolerances.items()}
    source = data.get("source") if isinstance(data.get("source"), dict) else {}
    return Baseline(records, rules, source, str(data.get("written", "")), str(data.get("evalkit_version", "")))


def write_baseline(path: str | Path, baseline: Baseline) -> None:
    atomic.write_json(Path(path), baseline.to_json())


def baseline_from_run(run: RunMetrics, tolerances: Mapping[str, Tolerance] | None = None,
                      stats: Sequence[str] | None = None) -> Baseline:
    """A baseline of ``stats`` (default: every stat of the run) with ``tolerances`` (default: noise for all)."""
    names = list(stats) if stats else list(run.stats)
    missing = [name for name in names if name not in run.stats]
    if missing:
        raise EvalkitError(f"{run.path} has no {', '.join(missing)} (it has: {', '.join(run.stats) or 'no stats'})")
    empty = [name for name in names if run.stats[name].overall.value is None]
    if empty:
        raise EvalkitError(f"{run.path}: {', '.join(empty)} measured nothing (n = 0); cannot be a baseline")
    rules = dict(tolerances) if tolerances is not None else {DEFAULT_KEY: DEFAULT_TOLERANCE}
    source = {"run_id": run.run_id, "generated": run.generated}
    return Baseline({name: run.stats[name] for name in names}, rules, source,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), __version__)
