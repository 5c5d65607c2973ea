"""`evalkit compare RUN_A RUN_B`: the two runs' stats side by side, the change B - A, and whether it is outside
the sampling noise (evalkit.reports.noise: paired bootstrap over prompts when both runs resampled the same
prompts, else the conservative unpaired rules), at a two-sided 95% level: "outside noise" means the 95% interval
of the change excludes 0.

A stat whose comparability keys differ (evalkit.reports.keys) gets no delta: its status is
``incomparable: <field>[, <field>...]``. Library API: ``compare_runs(run_a, run_b) -> Comparison``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.estimate import Estimate
from evalkit.reports.keys import blocking_differences, noted_differences
from evalkit.reports.noise import NONE, change_noise
from evalkit.reports.records import RunMetrics, StatRecord, read_metrics
from evalkit.reports.tables import aligned, format_estimate, format_number, format_signed

LEVEL = 0.95


@dataclass(frozen=True)
class CompareRow:
    stat: str
    higher_is_better: bool | None
    a: Estimate | None
    b: Estimate | None
    incomparable: tuple[str, ...] = ()  # key fields that differ ("metric" when the metric or direction does)
    only_in: str | None = None  # "A" or "B" when one run lacks the stat
    noise_method: str = NONE
    change_low: float | None = None  # the 95% interval of the true change B - A
    change_high: float | None = None
    note: str = ""

    @property
    def delta(self) -> float | None:
        if self.incomparable or self.only_in or self.a is None or self.b is None or None in (self.a.value, self.b.value):
            return None
        return self.b.value - self.a.value

    @property
    def outside_noise(self) -> bool | None:
        if self.delta is None or self.change_low is None:
            return None
        return self.change_low > 0 or self.change_high < 0

    @property
    def status(self) -> str:
        if self.only_in:
            return f"only in {self.only_in}"
        if self.incomparable:
            return "incomparable: " + ", ".join(self.incomparable)
        if self.delta is None:
            return "no value"
        if self.outside_noise is None:
            return "no noise estimate"
        if not self.outside_noise:
            return f"within noise ({self.noise_method})"
        better = (self.delta > 0) == bool(self.higher_is_better)
        return f"{'better' if better else 'worse'}: outside noise ({self.noise_method})"

    def to_json(self) -> dict[str, Any]:
        return {"stat": self.stat, "higher_is_better": self.higher_is_better,
                "a": None if self.a is None else self.a.to_json(), "b": None if self.b is None else self.b.to_json(),
                "delta": self.delta, "incomparable": list(self.incomparable), "only_in": self.only_in,
                "status": self.status,
                "noise": {"method": self.noise_method, "level": LEVEL, "change_low": self.change_low,
                          "change_high": self.change_high, "outside": self.outside_noise, "note": self.note}}


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    rows: tuple[CompareRow, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "level": LEVEL, "rows": [r.to_json() for r in self.rows],
                "notes": list(self.notes)}


def _row(name: str, a: StatRecord | None, b: StatRecord | None) -> CompareRow:
    if a is None or b is None:
        found = a or b
        return CompareRow(name, found.higher_is_better, a and a.overall, b and b.overall,
                          only_in="A" if b is None else "B")
    if a.metric != b.metric or a.higher_is_better != b.higher_is_better:
        return CompareRow(name, a.higher_is_better, a.overall, b.overall, ("metric",))
    fields = tuple(d.field for d in blocking_differences(a.key, b.key))
    if fields or a.overall.value is None or b.overall.value is None:
        return CompareRow(name, a.higher_is_better, a.overall, b.overall, fields)
    noise = change_noise(a, b)
    delta = b.overall.value - a.overall.value
    low, high = noise.bounds(delta, (1 - LEVEL) / 2) if noise.known else (None, None)
    return CompareRow(name, a.higher_is_better, a.overall, b.overall, noise_method=noise.method, change_low=low,
                      change_high=high, note=noise.note)


def compare_metrics(a: RunMetrics, b: RunMetrics) -> Comparison:
    names = list(a.stats) + [name for name in b.stats if name not in a.stats]
    rows = tuple(_row(name, a.stats.get(name), b.stats.get(name)) for name in names)
    notes: list[str] = []
    for name in names:
        if name in a.stats and name in b.stats:
            for difference in noted_differences(a.stats[name].key, b.stats[name].key):
                line = difference.describe("A", "B")
                if line not in notes:
                    notes.append(line)
    for name in names:
        if name in a.stats and name in b.stats:
            for difference in blocking_differences(a.stats[name].key, b.stats[name].key):
                notes.append(f"{name}: {difference.describe('A', 'B')}")
    return Comparison(a.label, b.label, rows, tuple(notes))


def compare_runs(run_a: str | Path, run_b: str | Path) -> Comparison:
    """Two run directories (or their metrics.json files) side by side."""
    return compare_metrics(read_metrics(run_a), read_metrics(run_b))


def comparison_lines(comparison: Comparison) -> list[str]:
    """The aligned terminal table (values with their 95% intervals, delta B - A with its 95% interval, status)."""
    arrows = {True: " ^", False: " v", None: ""}
    rows = []
    for row in comparison.rows:
        scale = row.a.value if row.a is not None and row.a.value is not None else None
        delta = "" if row.delta is None else format_signed(row.delta, scale)
        if row.delta is not None and row.change_low is not None:
            delta += f" [{format_number(row.change_low, scale)}, {format_number(row.change_high, scale)}]"
        rows.append([row.stat + arrows[row.higher_is_better], format_estimate(row.a), format_estimate(row.b),
                     delta, row.status])
    lines = [f"A = {comparison.a}", f"B = {comparison.b}", ""]
    lines += aligned(("metric", "A", "B", "B - A [95%]", "status"), rows)
    lines += [f"note: {note}" for note in comparison.notes]
    return lines
