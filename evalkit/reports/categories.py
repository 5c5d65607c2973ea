"""Per-category breakdown: for every stat with groups in metrics.json (DrawBench's 11 categories, Parti's
categories and challenges, the toy world's categories for each question), a table (rows: the group's labels,
columns: runs, each cell the value with its 95% interval and N, one number style per table) and a horizontal bar
chart with the intervals as error bars, runs side by side.

Numbers come from each stat's ``groups`` block exactly as scored; a label one run lacks is a dash (no such
prompts in that run). Labels are sorted as metrics.json sorts them (alphabetically).
"""

from __future__ import annotations

from typing import Any, Sequence

from evalkit.estimate import Estimate
from evalkit.reports.charts import interval_bars
from evalkit.reports.document import Figure, Section, Table
from evalkit.reports.loading import ReportRun
from evalkit.reports.metric_tables import by_benchmark, stat_names
from evalkit.reports.report_format import direction, estimate_cell, row_scale, slug, unique_slug

GROUP_TITLES = {"category": "category", "challenge": "challenge"}


def _kinds(runs: Sequence[ReportRun], stat: str) -> list[str]:
    kinds: dict[str, None] = {}
    for run in runs:
        kinds.update(dict.fromkeys(run.groups.get(stat, {})))
    return list(kinds)


def _labels(runs: Sequence[ReportRun], stat: str, kind: str) -> list[str]:
    labels: dict[str, None] = {}
    for run in runs:
        labels.update(dict.fromkeys(run.groups.get(stat, {}).get(kind, {})))
    return sorted(labels)


def _estimate(run: ReportRun, stat: str, kind: str, label: str) -> Estimate | None:
    return run.groups.get(stat, {}).get(kind, {}).get(label)


def _higher(runs: Sequence[ReportRun], stat: str) -> bool | None:
    found = {run.metrics.stats[stat].higher_is_better for run in runs
             if run.metrics is not None and stat in run.metrics.stats}
    return found.pop() if len(found) == 1 else None


def group_section(runs: Sequence[ReportRun], benchmark: str, stat: str, kind: str, taken: set[str]) -> Section:
    labels = _labels(runs, stat, kind)
    title = GROUP_TITLES.get(kind, kind)
    grid = [[_estimate(run, stat, kind, label) for run in runs] for label in labels]
    scale = row_scale([est for row in grid for est in row])  # one number style for the stat's whole table
    rows = tuple((label, *(estimate_cell(est, scale) for est in row)) for label, row in zip(labels, grid))
    higher = _higher(runs, stat)
    table = Table((title, *(run.label for run in runs)), rows,
                  f"{stat} per {title} ({direction(higher)} is better): value [95% interval] \u00b7 n.")
    name = unique_slug(slug("categories", benchmark, stat, kind), taken)
    series = [(run.label, [_estimate(run, stat, kind, label) for label in labels]) for run in runs]
    png = interval_bars(labels, series, f"{stat} ({direction(higher)} is better), 95% interval")
    figure = Figure(png, f"{stat} per {title}, with 95% intervals; runs side by side.",
                    f"Bar chart of {stat} per {title} for {len(runs)} run(s)", f"{name}.png")
    values = {run.label: {label: est.to_json() for label, est in run.groups.get(stat, {}).get(kind, {}).items()}
              for run in runs if run.groups.get(stat, {}).get(kind)}
    data = {"stat": stat, "group": kind, "values": values}
    return Section(f"{stat} by {title}", name, (table, figure), data=data)


def category_sections(runs: Sequence[ReportRun]) -> list[Section]:
    """One section per benchmark with grouped stats, one child per (stat, group kind)."""
    out = []
    taken: set[str] = set()
    for benchmark, group in by_benchmark(runs).items():
        scored = [run for run in group if run.metrics is not None]
        children = [group_section(scored, benchmark, stat, kind, taken)
                    for stat in stat_names(scored) for kind in _kinds(scored, stat) if _labels(scored, stat, kind)]
        if children:
            data: dict[str, Any] = {"benchmark": benchmark}
            out.append(Section(f"Per-category breakdown: {benchmark}", slug("categories", benchmark), (),
                               tuple(children), data))
    return out
