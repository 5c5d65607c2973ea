"""Image grids: per benchmark and category, a few prompts (rows) x samples (columns), with several runs side by
side under each sample so that each group of columns shows the same prompt and sample: under "sample 0" the
columns "run A", "run B", ... Thumbnails shrink (down to THUMB_MIN) so that the columns fit a 1280 px window.

The choice is deterministic: the first ``prompts_per_category`` prompt indices of each category (in the first
run's index.csv, lowest index first) and samples 0..``samples``-1. Images are matched across runs by
(prompt_index, sample); a run that lacks the image leaves a gap. Runs of one benchmark normally share their seeds
(seeds derive from the run seed, prompt and sample); where they do not, the grid says how many cells differ, since
then a column no longer compares the models on the same noise. A prompt text that differs between two runs for
the same prompt index (another benchmark version) is said as well.
"""

from __future__ import annotations

from typing import Any, Sequence

from evalkit.reports.document import GridImage, ImageGrid, Paragraph, Section
from evalkit.reports.loading import ReportRun
from evalkit.reports.metric_tables import by_benchmark
from evalkit.reports.report_format import slug, unique_slug
from evalkit.runs.store import ImageRecord

UNCATEGORISED = "(no category)"
THUMBS_WIDTH = 940  # px beside the prompt column in a 1280 px window (report.html's content is 1116 px wide)
THUMB_MAX, THUMB_MIN, CELL_PADDING = 160, 72, 14


def thumbnail_size(columns: int) -> int:
    """The longest thumbnail side at which ``columns`` images fit THUMBS_WIDTH (wider grids scroll)."""
    return max(THUMB_MIN, min(THUMB_MAX, THUMBS_WIDTH // max(columns, 1) - CELL_PADDING))


def _by_key(run: ReportRun) -> dict[tuple[int, int], ImageRecord]:
    return {(r.prompt_index, r.sample): r for r in run.records}


def chosen_prompts(run: ReportRun, per_category: int) -> dict[str, list[ImageRecord]]:
    """Category -> the first ``per_category`` prompts (one record each, sample 0 or the lowest), by prompt index."""
    first: dict[int, ImageRecord] = {}
    for record in sorted(run.records, key=lambda r: (r.prompt_index, r.sample)):
        first.setdefault(record.prompt_index, record)
    out: dict[str, list[ImageRecord]] = {}
    for index in sorted(first):
        category = first[index].category or UNCATEGORISED
        chosen = out.setdefault(category, [])
        if len(chosen) < per_category:
            chosen.append(first[index])
    return dict(sorted(out.items()))


def _cell(run: ReportRun, record: ImageRecord | None) -> GridImage | None:
    if record is None or not run.image_path(record).is_file():
        return None
    return GridImage(run.image_path(record), f"{run.label} \u00b7 prompt {record.prompt_index} \u00b7 sample "
                     f"{record.sample} \u00b7 seed {record.seed}")


def category_grid(runs: Sequence[ReportRun], category: str, prompts: list[ImageRecord], samples: int,
                  taken: set[str]) -> Section:
    indexes = [_by_key(run) for run in runs]
    several = len(runs) > 1
    columns = tuple(run.label if several else f"sample {s}" for s in range(samples) for run in runs)
    groups = tuple((f"sample {s}", len(runs)) for s in range(samples)) if several else ()
    rows, cells = [], []
    seed_differs = prompt_differs = 0
    for prompt in prompts:
        row = []
        for s in range(samples):
            found = [index.get((prompt.prompt_index, s)) for index in indexes]
            present = [r for r in found if r is not None]
            seed_differs += len({r.seed for r in present}) > 1
            prompt_differs += len({r.prompt for r in present}) > 1
            row += [_cell(run, record) for run, record in zip(runs, found)]
        rows.append(prompt.prompt)
        cells.append(tuple(row))
    anchor = unique_slug(slug("grid", runs[0].benchmark, category), taken)
    caption = f"{category}: {len(prompts)} prompt(s) x {samples} sample(s)" + (
        f", the {len(runs)} runs side by side under each sample: one prompt and sample (normally one seed) across "
        f"each group" if several else "")
    blocks: list[Any] = [ImageGrid(caption, columns, tuple(rows), tuple(cells), thumbnail_size(len(columns)),
                                   groups)]
    if seed_differs:
        blocks.append(Paragraph(f"Seeds differ between the runs in {seed_differs} of {len(prompts) * samples} "
                                f"(prompt, sample) pairs here: those columns show the models on different noise.",
                                "warning"))
    if prompt_differs:
        blocks.append(Paragraph(f"The prompt text differs between the runs for {prompt_differs} (prompt, sample) "
                                f"pair(s): the runs used different versions of the benchmark.", "warning"))
    data = {"category": category, "prompt_indices": [p.prompt_index for p in prompts], "samples": samples,
            "seed_mismatches": seed_differs, "prompt_mismatches": prompt_differs}
    return Section(category, anchor, tuple(blocks), data=data)


def grid_sections(runs: Sequence[ReportRun], prompts_per_category: int = 3, samples: int = 2) -> list[Section]:
    """One section per benchmark, one child per category of its first run."""
    if prompts_per_category < 1 or samples < 1:
        raise ValueError("an image grid needs at least one prompt per category and one sample")
    out = []
    taken: set[str] = set()
    for benchmark, group in by_benchmark(runs).items():
        children = []
        made = max((r.sample + 1 for run in group for r in run.records), default=0)
        shown = min(samples, made)  # no columns of gaps past the runs' images per prompt
        for category, prompts in chosen_prompts(group[0], prompts_per_category).items():
            children.append(category_grid(group, category, prompts, shown, taken))
        if children:
            note = Paragraph(f"The first {prompts_per_category} prompt(s) of each category (lowest prompt index) and "
                             f"samples 0\u2013{shown - 1}; click a thumbnail for the full-size image.", "note")
            out.append(Section(f"Image grids: {benchmark}", slug("grids", benchmark), (note,), tuple(children),
                               {"benchmark": benchmark, "runs": [run.label for run in group]}))
    return out
