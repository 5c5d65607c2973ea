"""report.json: the report's numbers for programs (format 1), written atomically with sorted keys.

    {"evalkit_report": 1,                  format version; a change of meaning gets a new number
     "title": str,
     "data": {...},                        report-level facts: "runs" [{label, path, run_id, benchmark}] (the
                                           labels that key the sections' per-run data), "generated_at" (UTC),
                                           "evalkit_version", "study" (path or null)
     "sections": [{"anchor": str, "title": str, "data": {...}, "children": [...]}]}

Each section's ``data`` holds its numbers exactly as metrics.json holds them (Estimates as {value, low, high, n,
method}, comparability keys as written by evalkit score); the text, tables and images are in report.html and
report.md only. Section anchors are stable ids: ``runs``, ``metrics-BENCHMARK``, ``categories-BENCHMARK`` (children
``categories-BENCHMARK-STAT-GROUP``), ``grids-BENCHMARK``, ``published-coco-fid``, ``efficiency``, ``provenance``,
and those of the sweep and human-study sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit import atomic
from evalkit.reports.document import Report, Section

FORMAT = 1


def _section(section: Section) -> dict[str, Any]:
    return {"anchor": section.anchor, "title": section.title, "data": section.data,
            "children": [_section(child) for child in section.children]}


def report_json(report: Report) -> dict[str, Any]:
    return {"evalkit_report": FORMAT, "title": report.title, "data": report.data,
            "sections": [_section(s) for s in report.sections]}


def write_json(report: Report, path: str | Path) -> Path:
    path = Path(path)
    atomic.write_json(path, report_json(report))
    return path
