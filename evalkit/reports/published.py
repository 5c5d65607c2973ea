"""Published zero-shot COCO FID-30K numbers, shown beside evalkit's own FID of a run on the coco benchmark.

These numbers were reported elsewhere and are not measured by evalkit: other code, other Inception ports and
resize, other caption samples and reference statistics. The table says so, and shows evalkit's FID with its N and
reference: an FID on N != 30,000 generated images is not comparable with FID-30K at all (the Frechet distance is
biased upward, strongly at small N), and even at N = 30,000 the protocol differences move FID by points.

Each entry records where in the paper the number stands and where it was checked. Checked against the papers'
text (arXiv versions): the table named in ``where``; ``checked`` says which text was read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from evalkit.reports.document import Paragraph, Section, Table
from evalkit.reports.loading import ReportRun
from evalkit.reports.report_format import reference_text
from evalkit.reports.tables import format_number

FID_30K = 30_000


@dataclass(frozen=True)
class PublishedFID:
    model: str
    fid_30k: float
    citation: str
    where: str  # where in the paper the number stands
    checked: str  # which text it was checked against


PUBLISHED_COCO_FID_30K: tuple[PublishedFID, ...] = (
    PublishedFID("Imagen", 7.27, "Saharia et al. 2022, arXiv:2205.11487",
                 "Table 1 (MS-COCO 256x256 FID-30K, not trained on COCO); Section 4.2",
                 "paper text: Table 1 caption and Section 4.2 ('state of the art zero-shot FID on COCO at 7.27')"),
    PublishedFID("Parti-20B", 7.23, "Yu et al. 2022, arXiv:2206.10789",
                 "abstract (zero-shot MS-COCO FID 7.23)",
                 "Parti abstract; restated as zero-shot FID-30K for Parti-20B in Chang et al. 2023, Table 2"),
    PublishedFID("Muse-3B", 7.88, "Chang et al. 2023, arXiv:2301.00704",
                 "Table 2 (MS-COCO 256x256, zero-shot FID-30K column)",
                 "paper text: Table 2 and Section 3.2 ('FID score of 7.88')"),
    PublishedFID("DALL-E 2 (unCLIP, diffusion prior)", 10.39, "Ramesh et al. 2022, arXiv:2204.06125",
                 "Table 2 (MS-COCO 256x256, zero-shot FID column)",
                 "paper text: Table 2 and Section 5.4 ('new state-of-the-art FID of 10.39')"),
    PublishedFID("GLIDE", 12.24, "Nichol et al. 2021, arXiv:2112.10741",
                 "Table 2 (MS-COCO 256x256, zero-shot FID; 30k captions, guidance scale 1.5)",
                 "paper text: Table 2 and its caption"),
    PublishedFID("LDM-KL-8-G", 12.63, "Rombach et al. 2022, arXiv:2112.10752",
                 "Table 2 (text-conditional synthesis on 256x256 MS-COCO; trained on LAION-400M)",
                 "paper text (arXiv v2): Table 2 and Section 4.3.1; Table 2 does not state the number of samples "
                 "(Chang et al. 2023, Table 2, lists it as zero-shot FID-30K)"),
)

MARK = "Reported elsewhere, not measured by evalkit"


def _fid_runs(runs: Sequence[ReportRun]) -> list[tuple[ReportRun, Any]]:
    out = []
    for run in runs:
        if run.metrics is None or not run.benchmark.startswith("coco"):
            continue
        for name, record in run.metrics.stats.items():
            if record.metric == "fid":
                out.append((run, record))
    return out


def _evalkit_row(run: ReportRun, record: Any) -> tuple[tuple[str, ...], str | None]:
    est = record.overall
    n = est.n
    reference = reference_text(record.key.get("reference"))
    if n != FID_30K:
        note = f"N = {n}, not 30,000: not comparable with FID-30K"
    else:
        note = "N = 30,000; protocol (Inception port, resize, captions, reference) may still differ"
    row = (f"evalkit: {run.label} ({record.name})", format_number(est.value, 1.0),
           f"measured by evalkit on {run.benchmark}, reference {reference}", note)
    warning = (f"{run.label}: {record.name} is computed on {n} images; FID at N != 30,000 is not comparable with "
               f"the published FID-30K numbers (the Frechet distance is biased upward at small N)."
               if n != FID_30K else None)
    return row, warning


def published_section(runs: Sequence[ReportRun]) -> Section | None:
    """The published table beside evalkit's FID rows; None unless a run is on coco and has an fid stat."""
    found = _fid_runs(runs)
    if not found:
        return None
    rows = [(p.model, f"{p.fid_30k:.2f}", p.citation, p.where) for p in PUBLISHED_COCO_FID_30K]
    warnings = []
    for run, record in found:
        row, warning = _evalkit_row(run, record)
        rows.append(row)
        if warning:
            warnings.append(Paragraph(warning, "warning"))
    table = Table(("model", "zero-shot COCO FID-30K \u2193", "source", "where / note"), tuple(rows),
                  f"{MARK}: the first {len(PUBLISHED_COCO_FID_30K)} rows are copied from the papers cited; the "
                  f"evalkit rows are this report's runs.")
    intro = Paragraph(f"{MARK}. The published rows used their authors' code and protocol; evalkit's own FID "
                      f"is shown beside them for orientation, with its N.", "warning")
    data = {"published": [asdict(p) for p in PUBLISHED_COCO_FID_30K],
            "evalkit": [{"run": run.label, "stat": record.name, "overall": record.overall.to_json()}
                        for run, record in found]}
    return Section("Published zero-shot COCO FID-30K (reported elsewhere)", "published-coco-fid",
                   (intro, table, *warnings), data=data)
