"""The runs of a report: the overview at its top, generation efficiency and provenance of every run.

The overview (section ``runs``) maps each run's label (evalkit.reports.run_labels: what tells it apart, or the
one given with ``--label``) to its run id, adapter, checkpoint hash, benchmark, N images, images per prompt, seed
and every setting that differs among the runs, under its full name.

Efficiency (HEIM's efficiency aspect) comes from metrics.json's ``generation`` block, or from the run's
generation.jsonl when it was not scored with one (evalkit.runs.efficiency): seconds per image as the median over
batches, the fastest batch ("denoised" runtime), batches, images, total seconds and the device(s). Both describe
the run as it was made (its batch size and device), not the model in general.

Provenance is the manifest: run id, adapter and its configuration, checkpoint hash, seed, images per prompt, size,
benchmark name and content hash, library versions, git commit (and whether the tree was dirty), the command, and
when the run was created and completed.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Sequence

from evalkit.reports.document import KeyValues, Paragraph, Section, Table
from evalkit.reports.loading import ReportRun
from evalkit.reports.report_format import compact, short_hash, slug
from evalkit.reports.run_labels import differences

NOT_RECORDED = "not recorded"


RUNS_CAPTION = ("Each run's label heads its column in every table, chart and grid below: the settings that tell "
                "it apart from the other runs (a value most of them share is left out of their labels), or the "
                "label given with --label; \"differs\" lists every setting that differs among the runs.")


def _overview_row(run: ReportRun, differs: str) -> tuple[str, ...]:
    manifest = run.manifest
    adapter = manifest.get("adapter") or {}
    bench = manifest.get("benchmark") or {}
    return (run.label, run.run_id, str(adapter.get("name", "?")), short_hash(adapter.get("checkpoint_hash"), 8),
            f"{run.benchmark} ({bench.get('prompts', '?')} prompts)", str(manifest.get("n_images", "?")),
            str(manifest.get("images_per_prompt", "?")), str(manifest.get("seed", "?")), differs)


def runs_section(runs: Sequence[ReportRun]) -> Section:
    """The table that maps each label to its run (see the module docstring)."""
    differs = differences([run.manifest for run in runs]) if len(runs) > 1 else ["(one run)"] * len(runs)
    header = ("label", "run id", "adapter", "checkpoint", "benchmark", "N images", "images / prompt", "seed",
              "differs")
    table = Table(header, tuple(_overview_row(run, d) for run, d in zip(runs, differs)), RUNS_CAPTION)
    data = {"runs": [{"label": run.label, "run_id": run.run_id, "path": str(run.path), "differs": d}
                     for run, d in zip(runs, differs)]}
    return Section("Runs", "runs", (table,), data=data)


def _seconds(value: Any) -> str:
    return NOT_RECORDED if value is None else f"{value:.3f}"


def _efficiency_row(run: ReportRun) -> tuple[str, ...]:
    block = run.generation
    if not block:
        return (run.label, *([NOT_RECORDED] * 6))
    total = block.get("seconds_total")
    return (run.label, _seconds(block.get("seconds_per_image")), _seconds(block.get("denoised_seconds_per_image")),
            str(block.get("n_batches", 0)), str(block.get("n_images", 0)),
            NOT_RECORDED if total is None else f"{total:.1f}", ", ".join(block.get("devices") or []) or "?")


def efficiency_section(runs: Sequence[ReportRun]) -> Section:
    header = ("run", "s / image (median)", "s / image (fastest batch)", "batches", "images", "total s", "device")
    blocks: list[Any] = [Table(header, tuple(_efficiency_row(run) for run in runs),
                               "Wall time of the model's generate call per batch, divided by the batch's images: "
                               "the median over batches, and the fastest batch (warm-up and contention removed).")]
    for run in runs:
        by_device = (run.generation or {}).get("by_device")
        if by_device:
            parts = "; ".join(f"{device}: {_seconds(s.get('seconds_per_image'))} s / image over "
                              f"{s.get('n_batches')} batches" for device, s in sorted(by_device.items()))
            blocks.append(Paragraph(f"{run.label} was made on more than one device ({parts}); the median above "
                                    f"mixes them.", "warning"))
    return Section("Generation efficiency", "efficiency", tuple(blocks),
                   data={run.label: run.generation for run in runs})


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)


def provenance_items(manifest: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    adapter = manifest.get("adapter") or {}
    bench = manifest.get("benchmark") or {}
    git = manifest.get("git") or {}
    command = manifest.get("command")
    size = (f"{manifest.get('width')} x {manifest.get('height')}" if manifest.get("width") else "?")
    git_text = "unknown" if not git.get("commit") else f"{git['commit']}" + (" (dirty tree)" if git.get("dirty")
                                                                             else "")
    images = manifest.get("n_images")
    done = manifest.get("completed_images")
    return (
        ("run id", str(manifest.get("run_id", "?"))),
        ("status", f"{manifest.get('status', '?')}" + (f", {done} of {images} images" if images is not None else "")),
        ("model (adapter)", str(adapter.get("name", "?"))),
        ("adapter config", _json(adapter.get("config") or {})),
        ("checkpoint hash", str(adapter.get("checkpoint_hash") or "none")),
        ("seed", str(manifest.get("seed", "?"))),
        ("images per prompt", str(manifest.get("images_per_prompt", "?"))),
        ("size", size),
        ("benchmark", f"{bench.get('name', '?')} ({bench.get('prompts', '?')} prompts, "
                      f"{bench.get('source', 'source unknown')})"),
        ("benchmark content hash", str(bench.get("content_hash") or "none")),
        ("versions", compact(manifest.get("versions"))),
        ("git commit", git_text),
        ("command", shlex.join(str(c) for c in command) if isinstance(command, list) else str(command or "?")),
        ("created", str(manifest.get("created_at", "?"))),
        ("completed", str(manifest.get("completed_at", "not completed"))),
    )


def provenance_section(runs: Sequence[ReportRun]) -> Section:
    children = tuple(Section(run.label if run.label == run.run_id else f"{run.label} ({run.run_id})",
                             slug("provenance", run.run_id, index),
                             (KeyValues(provenance_items(run.manifest), f"{run.path}"),),
                             data={"path": str(run.path), "manifest": run.manifest})
                     for index, run in enumerate(runs))
    return Section("Provenance", "provenance", (), children)
