"""`evalkit report RUN [RUN ...] [--study FILE] [--label RUN=TEXT ...] --out DIR`: the runs (and a human study) as
report.html (one self-contained file), report.md (images beside it) and report.json: the command-line face of
evalkit.reports.report."""

from __future__ import annotations

from evalkit.cli.args import MAX_IMAGES_PER_PROMPT, int_range
from evalkit.errors import EvalkitError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write report.html, report.md and report.json for one or more scored runs",
        description="Metric tables with intervals, N and comparability keys, per-category breakdowns with charts, "
        "sweeps, the human study, published COCO FID-30K numbers beside evalkit's (coco runs), image grids, "
        "generation efficiency and provenance, made from the runs' metrics.json and manifests. report.html is one "
        "self-contained file (no network); report.md links its figures and images written beside it.")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="scored run directories (evalkit score RUN ...)")
    parser.add_argument("--study", metavar="FILE", help="human-study database (evalkit study create) to include")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write the report into (created)")
    parser.add_argument("--prompts-per-category", type=int_range(1, 10_000), default=3,
                        help="prompts per category in the image grids (default 3: the lowest prompt indices)")
    parser.add_argument("--samples", type=int_range(1, MAX_IMAGES_PER_PROMPT), default=2, help="samples per prompt in the grids (default 2)")
    parser.add_argument("--title", help="the report's title (default: from the runs)")
    parser.add_argument("--label", action="append", default=[], metavar="RUN=TEXT",
                        help="show RUN (its directory as given, or its run id) as TEXT in every table, chart and "
                        "grid (repeatable; default: the settings that tell each run apart, e.g. base.guidance=1)")
    parser.set_defaults(handler=run_report)


def parse_labels(items: list[str]) -> dict[str, str]:
    """``RUN=TEXT`` items as {RUN: TEXT}, split at the first '=' (a label may hold '=' itself)."""
    labels: dict[str, str] = {}
    for item in items:
        run, sep, text = item.partition("=")
        if not sep or not run:
            raise EvalkitError(f"--label {item!r}: expected RUN=TEXT (a run directory or run id, '=', the label)")
        if run in labels:
            raise EvalkitError(f"--label: {run} is labelled twice ({labels[run]!r}, {text!r})")
        labels[run] = text
    return labels


def run_report(args) -> int:
    from evalkit.reports.report import build_report, write_report

    report = build_report(args.runs, study=args.study, prompts_per_category=args.prompts_per_category,
                          samples=args.samples, title=args.title, labels=parse_labels(args.label))
    for path in write_report(report, args.out).values():
        print(path)
    return 0
