"""Sweeps: runs that differ in exactly one setting, as a table, metric-vs-setting plots and a Pareto plot.

Detection. Runs are grouped by benchmark (name + content hash), adapter name, images per prompt and seed. A run's
settings are its adapter config flattened to dotted paths (``sampling.base.guidance``; a list is one value), and,
when the adapter records a checkpoint hash, ``checkpoint`` = that hash in place of the config fields that only say
where the weights were found (``checkpoint``, ``model_path``): the hash identifies them, as a reference's content
hash does in keys.py. For each setting F, the runs of a group whose other settings are all equal and which take
>= 2 distinct values of F are a sweep of F. So two runs differing in two settings are never a sweep, and one run
may sit in several sweeps (guidance at 16 steps, steps at guidance 3).

Stats. A stat enters a sweep when its comparability keys agree across the runs holding it (keys.py); otherwise it
is left out with a note naming the fields that differ. A different evalkit version is compared, with a note.

Pareto plot (Imagen, Fig. 4): x = an alignment stat (higher is better: clip, toyworld.all), y = a distribution
distance (lower is better: fid, kid, cmmd, fd-*). Setting i is dominated when some j has x_j >= x_i and
y_j <= y_i, one strictly; the front is the settings no other dominates.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from evalkit.estimate import Estimate
from evalkit.reports import sweep_plots
from evalkit.reports.document import Cell, Figure, KeyValues, Paragraph, Section, Table
from evalkit.reports.keys import blocking_differences, noted_differences
from evalkit.reports.records import RunMetrics, StatRecord
from evalkit.reports.tables import format_estimate, format_number

LOCATION_FIELDS = ("checkpoint", "model_path")  # where the weights were found; the checkpoint hash says what
DISTANCE_ORDER = ("fid", "fd-dinov2", "cmmd", "kid", "fid-clip", "fd")
ALIGNMENT_ORDER = ("clip", "toyworld.all")
ALIGNMENT_FAMILIES = ("clip", "toyworld")


class _Absent:
    """The value of a setting a run's config does not have."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = _Absent()


@dataclass(frozen=True)
class SweepRun:
    label: str
    value: Any  # the swept setting's value (JSON), ABSENT when the config lacks it
    text: str  # the value as shown
    metrics: RunMetrics


@dataclass(frozen=True)
class Sweep:
    field: str
    group: dict[str, Any]  # benchmark, content_hash, adapter, images_per_prompt, seed
    runs: tuple[SweepRun, ...]  # ordered by value

    @property
    def numeric(self) -> bool:
        return all(_is_number(r.value) for r in self.runs)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted paths; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for name, value in config.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def run_settings(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a sweep may vary: the flattened adapter config, the checkpoint hash standing for its location."""
    adapter = manifest.get("adapter") or {}
    settings = flatten(adapter.get("config") or {})
    if adapter.get("checkpoint_hash"):
        for name in LOCATION_FIELDS:
            settings.pop(name, None)
        settings["checkpoint"] = adapter["checkpoint_hash"]
    return settings


def _group_key(manifest: Mapping[str, Any]) -> tuple:
    bench = manifest.get("benchmark") or {}
    return (bench.get("name"), bench.get("content_hash"), (manifest.get("adapter") or {}).get("name"),
            manifest.get("images_per_prompt"), manifest.get("seed"))


def _canonical(value: Any) -> str:
    return "\0absent" if value is ABSENT else json.dumps(value, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_text(value: Any, field: str, manifest: Mapping[str, Any]) -> str:
    """A setting's value as a short label (a checkpoint: where it was found and its hash)."""
    if field == "checkpoint":
        config = (manifest.get("adapter") or {}).get("config") or {}
        where = next((str(config[n]) for n in LOCATION_FIELDS if config.get(n)), "")
        return f"{where} ({str(value)[:12]})" if where else str(value)[:12]
    if value is ABSENT:
        return "absent"
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    return "none" if value is None else str(value)


def _order(run: SweepRun, numeric: bool) -> tuple:
    return (run.value, run.label) if numeric else (run.text, run.label)


def find_sweeps(runs: Sequence[tuple[dict, RunMetrics]]) -> list[Sweep]:
    """Every sweep among ``runs`` (see the module docstring), in input order of groups, then by setting name."""
    groups: dict[tuple, list[tuple[str, dict, RunMetrics]]] = defaultdict(list)
    seen: set[str] = set()
    for manifest, metrics in runs:
        label = str(manifest.get("run_id") or metrics.label)
        if label not in seen:  # the same run listed twice is one run
            seen.add(label)
            groups[_group_key(manifest)].append((label, manifest, metrics))
    sweeps = []
    for key, members in groups.items():
        settings = [run_settings(m) for _, m, _ in members]
        for field in sorted({f for s in settings for f in s}):
            sweeps.extend(_sweeps_of(field, key, members, settings))
    return sweeps


def _sweeps_of(field, key, members, settings) -> list[Sweep]:
    classes: dict[str, list[int]] = defaultdict(list)
    for i, found in enumerate(settings):
        classes[_canonical({k: v for k, v in found.items() if k != field})].append(i)
    group = dict(zip(("benchmark", "content_hash", "adapter", "images_per_prompt", "seed"), key))
    out = []
    for indices in classes.values():
        values = [settings[i].get(field, ABSENT) for i in indices]
        if len({_canonical(v) for v in values}) < 2:
            continue
        runs = [SweepRun(members[i][0], v, value_text(v, field, members[i][1]), members[i][2])
                for i, v in zip(indices, values)]
        numeric = all(_is_number(r.value) for r in runs)
        out.append(Sweep(field, group, tuple(sorted(runs, key=lambda r: _order(r, numeric)))))
    return out


def comparable_stats(sweep: Sweep) -> tuple[list[str], dict[str, str], list[str]]:
    """(stats whose keys agree across the sweep, {left-out stat: why}, notes on compared-anyway fields)."""
    names = list(dict.fromkeys(n for r in sweep.runs for n in r.metrics.stats))
    kept, left_out, noted = [], {}, {}
    for name in names:
        holders = [(r.label, r.metrics.stats[name]) for r in sweep.runs if name in r.metrics.stats]
        first_label, first = holders[0]
        refusal = next(((label, found) for label, rec in holders[1:]
                        if (found := blocking_differences(first.key, rec.key))), None)
        if refusal is not None:
            label, found = refusal
            left_out[name] = "; ".join(d.describe(first_label, label) for d in found)
            continue
        kept.append(name)
        for label, rec in holders[1:]:
            for d in noted_differences(first.key, rec.key):
                if d.field == "evalkit_version":  # reference.id: found elsewhere, same content hash
                    noted.setdefault(d.field, d.describe(first_label, label))
    notes = [f"{text}; compared anyway (a change may come from evalkit's own code)" for text in noted.values()]
    return kept, left_out, notes


def headline(names: Sequence[str], records: Mapping[str, StatRecord]) -> list[str]:
    """The stat that names its metric family (fid, clip, toyworld.all), or every stat of a family with none
    (prdc's precision, recall, density, coverage)."""
    families: dict[str, list[str]] = defaultdict(list)
    for name in names:
        families[records[name].metric].append(name)
    out = []
    for family, members in families.items():
        main = [n for n in members if n in (family, f"{family}.all")]
        out.extend(main or members)
    return out


def _first_by(order: Sequence[str], candidates: Sequence[str]) -> str | None:
    ranked = [n for n in order if n in candidates] + sorted(n for n in candidates if n not in order)
    return ranked[0] if ranked else None


def pareto_pair(names: Sequence[str], records: Mapping[str, StatRecord]) -> tuple[str, str] | None:
    """(alignment stat, distance stat) for the Pareto plot, or None when the sweep lacks one of them."""
    alignment = _first_by(ALIGNMENT_ORDER, [n for n in names if records[n].higher_is_better
                                            and records[n].metric in ALIGNMENT_FAMILIES
                                            and n in (records[n].metric, f"{records[n].metric}.all")])
    distance = _first_by(DISTANCE_ORDER, [n for n in names if not records[n].higher_is_better])
    return None if alignment is None or distance is None else (alignment, distance)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (x higher better, y lower better) points no other point dominates."""
    def dominates(q, p):
        return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])

    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def _records(sweep: Sweep) -> dict[str, StatRecord]:
    """One record per stat name (the first run's holding it): family and direction, the same for every run."""
    out: dict[str, StatRecord] = {}
    for run in sweep.runs:
        for name, record in run.metrics.stats.items():
            out.setdefault(name, record)
    return out


def _estimate(run: SweepRun, name: str) -> Estimate | None:
    record = run.metrics.stats.get(name)
    return None if record is None else record.overall


def _arrow(record: StatRecord) -> str:
    return f"{record.name} {'↑' if record.higher_is_better else '↓'}"


def _cell(est: Estimate | None) -> str:
    """``value [low, high]``, the interval shown under the value (a narrow column)."""
    text = format_estimate(est)
    if est is None or est.value is None or not est.has_interval:
        return text
    return Cell(format_number(est.value), f"[{format_number(est.low, est.value)}, "
                f"{format_number(est.high, est.value)}]", text)


def sweep_table(sweep: Sweep, names: Sequence[str], records: Mapping[str, StatRecord]) -> Table:
    """One row per run (its setting's value), one column per stat; the best of each column marked."""
    rows = tuple((r.text, r.label, *(_cell(_estimate(r, n)) for n in names)) for r in sweep.runs)
    marked = set()
    for column, name in enumerate(names, start=2):
        values = [(i, e.value) for i, r in enumerate(sweep.runs) if (e := _estimate(r, name)) and e.value is not None]
        if len(values) >= 2:
            best = (max if records[name].higher_is_better else min)(v for _, v in values)
            marked.update((i, column) for i, v in values if v == best)
    return Table((sweep.field, "run", *(_arrow(records[n]) for n in names)), rows,
                 caption=f"{len(sweep.runs)} runs differing only in {sweep.field}; 95% intervals in brackets "
                         "where the metric has one; ↑ higher is better, ↓ lower is better; marked: the best of each "
                         "column",
                 marked=frozenset(marked))


def _series(sweep: Sweep, name: str) -> list[tuple[int, Estimate]]:
    return [(i, e) for i, r in enumerate(sweep.runs) if (e := _estimate(r, name)) is not None and e.value is not None]


def _pareto(sweep: Sweep, pair, anchor: str) -> tuple[Figure | None, dict[str, Any] | None]:
    x_name, y_name = pair
    xs, ys = dict(_series(sweep, x_name)), dict(_series(sweep, y_name))
    both = [i for i in range(len(sweep.runs)) if i in xs and i in ys]
    if len(both) < 2:
        return None, None
    front = [both[k] for k in pareto_front([(xs[i].value, ys[i].value) for i in both])]
    png = sweep_plots.pareto_png([sweep.runs[i].text for i in both], [xs[i] for i in both], [ys[i] for i in both],
                                 [i in front for i in both], x_name, y_name, sweep.field)
    figure = Figure(png, caption=f"{y_name} (lower is better) against {x_name} (higher is better) for each "
                                 f"{sweep.field}; the line joins the Pareto front: the settings no other beats on both",
                    alt=f"Scatter plot of {y_name} against {x_name}, one labelled point per {sweep.field} value",
                    name=f"{anchor}-pareto.png")
    return figure, {"alignment": x_name, "distance": y_name, "front": [sweep.runs[i].label for i in front]}


def _metric_figure(sweep: Sweep, names: Sequence[str], records, anchor: str) -> Figure | None:
    panels = [(n, records[n].higher_is_better, _series(sweep, n)) for n in names]
    panels = [(n, better, [(sweep.runs[i].value, sweep.runs[i].text, e) for i, e in series])
              for n, better, series in panels if len(series) >= 2]
    if not panels:
        return None
    png = sweep_plots.metrics_png(panels, sweep.field, sweep.numeric)
    shown = ", ".join(n for n, _, _ in panels)
    return Figure(png, caption=f"{shown} against {sweep.field}; bars: 95% intervals where the metric has one",
                  alt=f"Line plots of {shown} against {sweep.field}", name=f"{anchor}.png")


def sweep_data(sweep: Sweep, names, records, left_out, pareto) -> dict[str, Any]:
    """The numbers of a sweep for report.json."""
    return {"field": sweep.field, "kind": "numeric" if sweep.numeric else "categorical", "group": sweep.group,
            "runs": [{"run": r.label, "value": None if r.value is ABSENT else r.value, "label": r.text}
                     for r in sweep.runs],
            "stats": {n: {"metric": records[n].metric, "higher_is_better": records[n].higher_is_better,
                          "overall": [None if (e := _estimate(r, n)) is None else e.to_json() for r in sweep.runs]}
                      for n in names},
            "left_out": left_out, "pareto": pareto}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _left_out_notes(left_out: Mapping[str, str]) -> list[Paragraph]:
    """One note per reason, naming every stat it leaves out."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for name, why in left_out.items():
        by_reason[why].append(name)
    return [Paragraph(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} left out (comparability keys "
                      f"differ: {why}).", "note") for why, names in by_reason.items()]


def sweep_section(sweep: Sweep, anchor: str) -> Section:
    names, left_out, notes = comparable_stats(sweep)
    records = _records(sweep)
    blocks: list = [Paragraph(f"{len(sweep.runs)} runs of {sweep.group['adapter']} on {sweep.group['benchmark']} "
                              f"differ only in {sweep.field}: " + ", ".join(r.text for r in sweep.runs) + ".")]
    blocks.append(KeyValues(tuple((k.replace("_", " "), "none" if v is None else str(v))
                                  for k, v in sweep.group.items()), caption="what every run of the sweep shares"))
    if not names:
        blocks.append(Paragraph("No stat of these runs can be compared across the sweep.", "note"))
    else:
        blocks.append(sweep_table(sweep, names, records))
    blocks += _left_out_notes(left_out)
    blocks += [Paragraph(text + ".", "note") for text in notes]
    figure = _metric_figure(sweep, headline(names, records), records, anchor)
    pair = pareto_pair(names, records)
    pareto_figure, pareto = _pareto(sweep, pair, anchor) if pair else (None, None)
    blocks += [f for f in (figure, pareto_figure) if f is not None]
    return Section(f"Sweep of {sweep.field}: {sweep.group['adapter']} on {sweep.group['benchmark']}", anchor,
                   tuple(blocks), data=sweep_data(sweep, names, records, left_out, pareto))


def sweep_sections(runs: Sequence[tuple[dict, RunMetrics]]) -> list[Section]:
    """One section per sweep found among ``runs`` (manifest, metrics); [] when there is none."""
    sections, used = [], set()
    for sweep in find_sweeps(runs):
        base = _slug(f"sweep-{sweep.group['benchmark']}-{sweep.group['adapter']}-{sweep.field}")
        anchor, number = base, 2
        while anchor in used:
            anchor, number = f"{base}-{number}", number + 1
        used.add(anchor)
        sections.append(sweep_section(sweep, anchor))
    return sections
