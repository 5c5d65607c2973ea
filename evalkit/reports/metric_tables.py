"""The metric table of each benchmark: every stat of the runs' metrics.json (rows) by run (columns), each cell
the value with its 95% interval and N, a direction arrow per row and the best value of the row marked; beneath
it the comparability key of every stat and a warning wherever two runs' keys differ.

"Best" is only marked between numbers that may be compared: when two runs' keys for a stat differ in a blocking
field (evalkit.reports.keys: another benchmark hash, N, extractor weights, resize mode, reference, option), the
row is not marked and the warning names the field. A row with one number has no best.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from evalkit.reports.document import Paragraph, Section, Table
from evalkit.reports.keys import blocking_differences, noted_differences
from evalkit.reports.loading import ReportRun
from evalkit.reports.records import StatRecord
from evalkit.reports.report_format import (compact, direction, estimate_cell, extractor_texts, reference_text,
                                           row_scale, short_hash, slug)

CELL_NOTE = ("Each cell: value [95% interval] \u00b7 n = the units it is computed over (images, prompts or votes). "
             "\u2191 higher is better, \u2193 lower is better; bold: the best of the row among runs whose "
             "comparability keys agree.")


def by_benchmark(runs: Sequence[ReportRun]) -> dict[str, list[ReportRun]]:
    """Runs grouped by benchmark name, in the order first seen."""
    out: dict[str, list[ReportRun]] = {}
    for run in runs:
        out.setdefault(run.benchmark, []).append(run)
    return out


def stat_names(runs: Sequence[ReportRun]) -> list[str]:
    """Every stat of the runs' metrics.json, in file order (first run first)."""
    names: dict[str, None] = {}
    for run in runs:
        if run.metrics is not None:
            names.update(dict.fromkeys(run.metrics.stats))
    return list(names)


def _record(run: ReportRun, stat: str) -> StatRecord | None:
    return None if run.metrics is None else run.metrics.stats.get(stat)


def _direction_of(records: list[StatRecord]) -> bool | None:
    directions = {r.higher_is_better for r in records}
    return directions.pop() if len(directions) == 1 else None


def _blocking_pairs(runs: Sequence[ReportRun], stat: str) -> list[tuple[ReportRun, ReportRun, list]]:
    """(first run with the stat, another run, its blocking key differences) for each run whose key differs."""
    having = [run for run in runs if _record(run, stat) is not None]
    if not having:
        return []
    first = having[0]
    out = []
    for other in having[1:]:
        found = blocking_differences(_record(first, stat).key, _record(other, stat).key)
        if found:
            out.append((first, other, found))
    return out


def _best_columns(runs: Sequence[ReportRun], stat: str, higher: bool | None) -> set[int]:
    values = [(i, _record(run, stat).overall.value) for i, run in enumerate(runs)
              if _record(run, stat) is not None and _record(run, stat).overall.value is not None]
    if higher is None or len(values) < 2 or _blocking_pairs(runs, stat):
        return set()
    best = (max if higher else min)(v for _, v in values)
    return {i for i, v in values if v == best}


def metric_table(runs: Sequence[ReportRun], stats: Sequence[str]) -> Table:
    rows, marked = [], set()
    for r, stat in enumerate(stats):
        records = [rec for rec in (_record(run, stat) for run in runs) if rec is not None]
        higher = _direction_of(records)
        estimates = [None if _record(run, stat) is None else _record(run, stat).overall for run in runs]
        scale = row_scale(estimates)
        cells = [estimate_cell(est, scale) for est in estimates]
        rows.append((stat, direction(higher), *cells))
        marked |= {(r, 2 + c) for c in _best_columns(runs, stat, higher)}
    return Table(("stat", "better", *(run.label for run in runs)), tuple(rows), CELL_NOTE, frozenset(marked))


def _key_cells(record: StatRecord) -> tuple[str, ...]:
    key = record.key
    name, weights, preprocessing = extractor_texts(key.get("extractor"))
    bench = key.get("benchmark") or {}
    return (record.overall.method, str(key.get("n_images", "?")), name, weights, preprocessing,
            reference_text(key.get("reference")), compact(key.get("options")),
            f"{bench.get('name', '?')} {short_hash(bench.get('content_hash'), 8)}")


def key_table(runs: Sequence[ReportRun], stats: Sequence[str]) -> Table:
    """One row per distinct key, with the stats and runs that share it (so a metric's stats share one row)."""
    rows: dict[tuple, tuple[list[str], list[str]]] = {}  # (key json, runs, cells) -> (stats, runs)
    for stat in stats:
        per_key: dict[str, tuple[list[str], StatRecord]] = {}
        for run in runs:
            record = _record(run, stat)
            if record is not None:
                per_key.setdefault(json.dumps(record.key, sort_keys=True, default=str), ([], record))[0].append(
                    run.label)
        for key_json, (labels, record) in per_key.items():
            rows.setdefault((key_json, tuple(labels), _key_cells(record)), ([], labels))[0].append(stat)
    table_rows = tuple((_stats_text(names), "all" if len(labels) == len(runs) > 1 else ", ".join(labels), *cells)
                       for (_, _, cells), (names, labels) in rows.items())
    header = ("stats", "runs", "interval", "N images", "extractor", "weights sha256", "preprocessing", "reference",
              "options", "benchmark")
    return Table(header, table_rows, "Comparability key of every stat: two numbers are compared only when all of "
                 "these agree (evalkit.reports.keys); stats and runs that share a key share a row.")


def _stats_text(stats: list[str]) -> str:
    return stats[0] if len(stats) == 1 else f"{', '.join(stats[:-1])} and {stats[-1]}"


def key_warnings(runs: Sequence[ReportRun], stats: Sequence[str]) -> list[Paragraph]:
    """One warning per distinct difference (the stats it concerns listed together), then notes."""
    blocking: dict[str, list[str]] = {}
    noted: dict[str, list[str]] = {}
    for stat in stats:
        for first, other, found in _blocking_pairs(runs, stat):
            what = "; ".join(d.describe(first.label, other.label) for d in found[:4])
            more = f" (and {len(found) - 4} more fields)" if len(found) > 4 else ""
            blocking.setdefault(f"{other.label} is not comparable with {first.label}: {what}{more}", []).append(stat)
        having = [run for run in runs if _record(run, stat) is not None]
        for other in having[1:]:
            for d in noted_differences(_record(having[0], stat).key, _record(other, stat).key):
                noted.setdefault(d.describe(having[0].label, other.label), []).append(stat)
    out = [Paragraph(f"{_stats_text(names)}: {text}. These rows mark no best value.", "warning")
           for text, names in blocking.items()]
    out += [Paragraph(f"{_stats_text(names)}: {text} (compared anyway).", "note") for text, names in noted.items()]
    mixed = [stat for stat in stats
             if _direction_of([r for r in (_record(run, stat) for run in runs) if r is not None]) is None]
    if mixed:
        out.append(Paragraph(f"{_stats_text(mixed)}: the runs disagree on whether higher is better; no best is "
                             f"marked.", "warning"))
    return out


def _data(runs: Sequence[ReportRun], stats: Sequence[str]) -> dict[str, Any]:
    """The numbers of the table, exactly as metrics.json holds them."""
    data: dict[str, Any] = {}
    for stat in stats:
        per_run = {}
        for run in runs:
            record = _record(run, stat)
            if record is not None:
                per_run[run.label] = {"overall": record.overall.to_json(), "key": record.key,
                                      "higher_is_better": record.higher_is_better, "metric": record.metric}
        data[stat] = per_run
    return {"runs": [run.label for run in runs], "stats": data}


def metric_sections(runs: Sequence[ReportRun]) -> list[Section]:
    """One section per benchmark whose runs have metrics."""
    out = []
    for benchmark, group in by_benchmark(runs).items():
        scored = [run for run in group if run.metrics is not None]
        stats = stat_names(scored)
        if not stats:
            continue
        blocks = [metric_table(scored, stats), *key_warnings(scored, stats), key_table(scored, stats)]
        out.append(Section(f"Metrics: {benchmark}", slug("metrics", benchmark), tuple(blocks),
                           data={"benchmark": benchmark, **_data(scored, stats)}))
    return out
