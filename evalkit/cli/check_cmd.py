"""`evalkit check` (the regression gate: exit 0 within tolerance, 1 on a regression, 2 on an error) and
`evalkit compare` (two runs side by side): the command-line face of evalkit.reports.gate and .compare."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.errors import EvalkitError


def register(subparsers) -> None:
    check = subparsers.add_parser(
        "check", help="regression gate: a run's metrics against a baseline (exit 0 ok, 1 regression, 2 error)",
        description="Compares RUN's metrics.json with BASELINE.json stat by stat: comparability keys must agree, "
        "and each stat's change must be within its tolerance (max_increase, max_rel_increase, or noise: outside "
        "the sampling noise by a paired bootstrap over prompts). Exit 0 within tolerance, 1 on a regression, 2 on "
        "an error (missing metrics, unreadable files, incompatible keys).")
    check.add_argument("run", metavar="RUN", help="run directory (or its metrics.json)")
    check.add_argument("--baseline", required=True, metavar="BASELINE.json")
    check.add_argument("--summary-md", metavar="FILE", help="also write a Markdown summary (a pull-request comment)")
    check.add_argument("--update-baseline", action="store_true",
                       help="write RUN's stats as the new baseline instead (keeps an existing file's tolerances)")
    check.add_argument("--metrics", metavar="STAT,STAT",
                       help="with --update-baseline: the stats to gate (default: the existing baseline's, else all)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(handler=run_check)

    compare = subparsers.add_parser(
        "compare", help="two runs' metrics side by side, with deltas and whether each is outside noise",
        description="Each stat of A and B with its 95% interval, the change B - A with its 95% interval (paired "
        "bootstrap over prompts when both runs resampled the same prompts), and whether it is outside noise. "
        "Stats with different comparability keys show which field differs instead of a number.")
    compare.add_argument("a", metavar="RUN_A")
    compare.add_argument("b", metavar="RUN_B")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(handler=run_compare)


def _write_summary(path: str, text: str) -> None:
    from evalkit import atomic

    try:
        atomic.write_text(Path(path), text)
    except OSError as error:
        raise EvalkitError(f"cannot write --summary-md {path}: {error.strerror or error}") from None


def _update(args) -> int:
    from evalkit.reports.gate import update_baseline

    if args.summary_md:
        raise EvalkitError("--summary-md reports a check; it has no meaning with --update-baseline")
    stats = [s.strip() for s in args.metrics.split(",") if s.strip()] if args.metrics else None
    baseline = update_baseline(args.run, args.baseline, stats)
    if args.json:
        print(json.dumps(baseline.to_json(), sort_keys=True))
        return 0
    for name, stat in baseline.stats.items():
        print(f"{name}: {stat.overall.value:g} (n={stat.overall.n}), tolerance {baseline.tolerance_for(name).describe()}")
    print(f"wrote baseline {args.baseline} ({len(baseline.stats)} stats)")
    return 0


def run_check(args) -> int:
    from evalkit.reports.gate import check_run
    from evalkit.reports.summary import check_lines, check_markdown, error_markdown

    if args.update_baseline:
        return _update(args)
    if args.metrics:
        raise EvalkitError("--metrics chooses the stats of a new baseline; use it with --update-baseline")
    try:
        result = check_run(args.run, args.baseline)
    except EvalkitError as error:
        if args.summary_md:
            _write_summary(args.summary_md, error_markdown(str(error)))
        raise
    if args.summary_md:
        _write_summary(args.summary_md, check_markdown(result))
    print(json.dumps(result.to_json(), sort_keys=True) if args.json else "\n".join(check_lines(result)))
    return result.exit_code


def run_compare(args) -> int:
    from evalkit.reports.compare import compare_runs, comparison_lines

    comparison = compare_runs(args.a, args.b)
    print(json.dumps(comparison.to_json(), sort_keys=True) if args.json else "\n".join(comparison_lines(comparison)))
    return 0
