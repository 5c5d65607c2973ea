"""`evalkit report`: runs (and optionally a human study) as one report, written as report.html, report.md and
report.json into one directory.

    report = build_report([run_a, run_b], study=Path("study.sqlite"))
    paths = write_report(report, Path("out"))     # {"html": out/report.html, "markdown": ..., "json": ...}

Every run is shown under its label (evalkit.reports.run_labels: the settings that tell it apart from the other
runs, e.g. ``base.guidance=1``, or one given in ``labels``); report.json's ``data.runs`` maps each label to its run
id and path, and the sections' data are keyed by label.

Sections, in order: the runs (label, run id, adapter, checkpoint, benchmark, N, seed, what differs; run_info),
the metric table of each benchmark (evalkit.reports.metric_tables), the per-category breakdown (categories),
sweeps among the runs (sweeps), the human study (study_section, with ``study``), published zero-shot COCO
FID-30K numbers beside evalkit's FID (published; only for a coco run with an fid stat), image grids (grids),
generation efficiency and provenance (run_info). Every builder returns document blocks
(evalkit.reports.document) and no markup; the three renderers escape text for their own format.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

from evalkit import __version__
from evalkit.errors import EvalkitError
from evalkit.reports.categories import category_sections
from evalkit.reports.document import Report, Section
from evalkit.reports.grids import grid_sections
from evalkit.reports.loading import ReportRun, load_runs
from evalkit.reports.metric_tables import metric_sections
from evalkit.reports.published import published_section
from evalkit.reports.run_info import efficiency_section, provenance_section, runs_section

REPORT_FILES = {"html": "report.html", "markdown": "report.md", "json": "report.json"}


def _title(runs: Sequence[ReportRun]) -> str:
    benchmarks = ", ".join(dict.fromkeys(run.benchmark for run in runs))
    if len(runs) == 1:
        return f"evalkit report: {runs[0].label} on {benchmarks}"
    return f"evalkit report: {len(runs)} runs on {benchmarks}"


def _count(runs: Sequence[ReportRun]) -> str:
    return "1 run" if len(runs) == 1 else f"{len(runs)} runs"


def _sweeps(runs: Sequence[ReportRun]) -> list[Section]:
    """Sweeps among the scored runs, each run shown under its label (one run listed twice is one run)."""
    from evalkit.reports.sweeps import sweep_sections

    seen: set[str] = set()
    chosen = []
    for run in runs:
        if run.metrics is not None and run.run_id not in seen:
            seen.add(run.run_id)
            chosen.append(({**run.manifest, "run_id": run.label}, run.metrics))  # sweeps name a run by run_id
    return sweep_sections(chosen)


def _study(study: Path) -> Section:
    from evalkit.reports.study_section import study_section

    return study_section(study)


def build_report(runs: Sequence[str | Path], study: str | Path | None = None, prompts_per_category: int = 3,
                 samples: int = 2, title: str | None = None, allow_unscored: bool = False,
                 labels: Mapping[str, str] | None = None) -> Report:
    """The report of ``runs`` (run directories) and, when given, the human study database ``study``; ``labels``
    ({run directory or run id: label}) replaces derived labels."""
    if prompts_per_category < 1:
        raise EvalkitError(f"prompts per category must be at least 1, got {prompts_per_category}")
    if samples < 1:
        raise EvalkitError(f"samples must be at least 1, got {samples}")
    loaded = load_runs(runs, allow_unscored, labels)
    sections: list[Section] = [runs_section(loaded), *metric_sections(loaded), *category_sections(loaded),
                               *_sweeps(loaded)]
    if study is not None:
        if not Path(study).is_file():
            raise EvalkitError(f"study database {study} does not exist")
        sections.append(_study(Path(study)))
    published = published_section(loaded)
    if published is not None:
        sections.append(published)
    sections += [*grid_sections(loaded, prompts_per_category, samples), efficiency_section(loaded),
                 provenance_section(loaded)]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = {"runs": [{"label": run.label, "path": str(run.path), "run_id": run.run_id, "benchmark": run.benchmark}
                     for run in loaded],
            "generated_at": stamp, "evalkit_version": __version__, "study": None if study is None else str(study),
            "subtitle": f"{_count(loaded)}, labelled as under Runs \u00b7 made {stamp} by evalkit {__version__} "
                        f"from the runs' metrics.json (no number recomputed)"}
    return Report(title or _title(loaded), tuple(sections), data)


def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """report.html, report.md (with figures/ and images/ beside it) and report.json in ``out_dir`` (created)."""
    from evalkit.reports.render_html import write_html
    from evalkit.reports.render_json import write_json
    from evalkit.reports.render_md import write_markdown

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EvalkitError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = {"html": write_html(report, out / REPORT_FILES["html"]),
                 "markdown": write_markdown(report, out),
                 "json": write_json(report, out / REPORT_FILES["json"])}
    except OSError as error:
        raise EvalkitError(f"cannot write the report into {out}: {error.strerror or error}") from None
    return paths
