"""`evalkit score`, `evalkit distance` (and its FID-only alias `evalkit fid`), `evalkit ref-stats` and
`evalkit metrics list`: the command-line face of evalkit.metrics.score."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from evalkit.cli.args import MAX_SIDE, batch_size, int_range, key_value, repeats, seed, workers

RESIZE_CHOICES = ("torchmetrics", "tf1", "clean", "pytorch-fid")  # mirrors evalkit.metrics.inception.RESIZE_MODES


def _add_extractor_args(parser) -> None:
    parser.add_argument("--weights", action="append", default=[], metavar="NAME=FILE",
                        help="a local weights file for a registry entry or extractor, e.g. inception=FILE or "
                        "dinov2-vitl14=FILE (repeatable; a bare FILE means the Inception weights)")
    parser.add_argument("--resize", choices=RESIZE_CHOICES, default=None,
                        help="how images become Inception's 299x299 inputs (default: torchmetrics)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--batch-size", type=batch_size, default=32)
    parser.add_argument("--workers", type=workers, default=2, help="image decode/resize threads (0: none)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    parser.add_argument("--download", action="store_true", help="download missing weights (sha256-verified)")


def _add_metric_args(parser, default_help: str) -> None:
    parser.add_argument("--metrics", help=f"comma list of metric names ({default_help}; see `evalkit metrics list`)")
    parser.add_argument("--opt", action="append", default=[], type=key_value, metavar="METRIC.KEY=VALUE",
                        help="a metric option, e.g. kid.subsets=50 or cmmd.model=ViT-B-32 (repeatable)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of random subsets and bootstrap resampling")
    parser.add_argument("--bootstrap", type=repeats, default=1000, help="bootstrap resamples for 95%% intervals")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def scoring_config(args):
    """The one place CLI flags become a ScoringConfig (below the CLI nothing reads argparse fields)."""
    from evalkit.metrics.score import ScoringConfig
    from evalkit.metrics.weights import parse_weight_overrides

    pairs = [w if "=" in w else f"inception={w}" for w in args.weights]
    settings = {"inception": {"resize": args.resize}} if args.resize else {}
    return ScoringConfig(device=args.device, batch_size=args.batch_size, workers=args.workers,
                         use_cache=not args.no_cache, download=args.download, weights=parse_weight_overrides(pairs),
                         extractor_settings=settings, seed=getattr(args, "seed", 0),
                         bootstrap=getattr(args, "bootstrap", 1000), progress=True)


def _metric_names(args, default: list[str] | None):
    from evalkit.metrics.registry import parse_metric_list

    return parse_metric_list(args.metrics) if args.metrics else default


def register(subparsers) -> None:
    score = subparsers.add_parser("score", help="score a run (FID, KID, CMMD, PRDC, FD-DINOv2, CLIP, toy world, ...)",
                                  description="Writes <run>/metrics.json (schema version 1), merged with the "
                                  "metrics already there.")
    score.add_argument("run", metavar="RUN")
    score.add_argument("--ref", metavar="FILE.npz|DIR|RUN", help="reference (real) set for the distribution metrics")
    _add_metric_args(score, "default: fid,kid,clip with --ref, else clip")
    _add_extractor_args(score)
    score.set_defaults(handler=run_score)

    distance = subparsers.add_parser("distance", help="metrics between two image sets / runs / stats files",
                                     description="A is the reference (real) side, B the generated side. Each is a "
                                     "run directory, an image folder or a .npz statistics file (Frechet metrics only).")
    distance.add_argument("a", metavar="A")
    distance.add_argument("b", metavar="B")
    _add_metric_args(distance, "default: fid,kid")
    _add_extractor_args(distance)
    distance.set_defaults(handler=run_distance)

    fid = subparsers.add_parser("fid", help="FID (and KID) between two image sets: `evalkit distance` for FID",
                                description="A is the reference side, B the generated side; each a run directory, "
                                "an image folder or a .npz statistics file.")
    fid.add_argument("a", metavar="A")
    fid.add_argument("b", metavar="B")
    _add_extractor_args(fid)
    fid.add_argument("--no-kid", action="store_true", help="skip KID")
    fid.add_argument("--kid-subsets", type=repeats, default=100)
    fid.add_argument("--kid-subset-size", type=int_range(1, 10**7), default=1000)
    fid.add_argument("--seed", type=seed, default=0, help="seed of KID's random subsets")
    fid.add_argument("--json", action="store_true", help="print the result as JSON")
    fid.set_defaults(handler=run_fid)

    ref = subparsers.add_parser("ref-stats", help="reference Inception statistics (.npz) of a folder of real images",
                                description="COCO protocol: centre-crop and resize real images to --size before "
                                "feature extraction, exactly as generated images are, then save mu/sigma "
                                "(pytorch-fid format).")
    ref.add_argument("--images", required=True, metavar="DIR")
    ref.add_argument("--out", required=True, metavar="FILE.npz")
    ref.add_argument("--size", type=int_range(0, MAX_SIDE), default=256,
                     help=f"centre-crop + resize side first (0: keep; at most {MAX_SIDE})")
    _add_extractor_args(ref)
    ref.set_defaults(handler=run_ref_stats)

    metrics = subparsers.add_parser("metrics", help="the metrics evalkit knows")
    actions = metrics.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="every metric: direction, what it needs, options, weights present")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_metrics_list)


def _print_warnings(warnings) -> None:
    for line in warnings:
        print(f"evalkit: warning: {line}", file=sys.stderr)


def run_score(args) -> int:
    from evalkit.metrics.score import score_run

    names = _metric_names(args, None)
    document = score_run(args.run, names, args.ref, dict(args.opt), scoring_config(args))
    _print_warnings(document["warnings"])
    if args.json:
        print(json.dumps(document, sort_keys=True))
    else:
        print("\n".join(format_table(document)))
        print(f"wrote {Path(args.run) / 'metrics.json'}")
    return 0


def run_distance(args) -> int:
    from evalkit.metrics.score import distance

    document = distance(args.a, args.b, _metric_names(args, ["fid", "kid"]), dict(args.opt), scoring_config(args))
    _print_warnings(document["warnings"])
    print(json.dumps(document, sort_keys=True) if args.json else "\n".join(format_table(document)))
    return 0


def run_fid(args) -> int:
    from evalkit.metrics.score import distance

    with_kid = not args.no_kid and Path(args.a).suffix != ".npz"
    names = ["fid", "kid"] if with_kid else ["fid"]
    options = {"kid.subsets": args.kid_subsets, "kid.subset_size": args.kid_subset_size} if with_kid else {}
    document = distance(args.a, args.b, names, options, scoring_config(args))
    if not args.no_kid and not with_kid:
        document["warnings"].append(f"KID needs the reference images; {args.a} holds only statistics, so KID is skipped")
    _print_warnings(document["warnings"])
    print(json.dumps(document, sort_keys=True) if args.json else "\n".join(format_table(document)))
    return 0


def run_ref_stats(args) -> int:
    from evalkit.metrics.reference import write_reference_stats

    config = scoring_config(args)
    stats = write_reference_stats(args.images, args.out, config, size=args.size)
    print(f"wrote {args.out}: n={stats.n}, d={stats.mu.shape[0]}, "
          f"resize={stats.meta.get('preprocessing', {}).get('resize')}, crop+resize={args.size}")
    return 0


def run_metrics_list(args) -> int:
    from evalkit.metrics.registry import describe_metrics

    rows = describe_metrics()
    if args.json:
        print(json.dumps(rows, sort_keys=True, indent=1))
        return 0
    for row in rows:
        if "broken" in row:
            print(f"{row['name']}  (cannot be loaded)\n  {row['broken']}")
            continue
        arrow = "higher is better" if row["higher_is_better"] else "lower is better"
        stats = "" if row["stats"] == [row["name"]] else f"  [{', '.join(row['stats'])}]"
        print(f"{row['name']}{stats}  ({arrow})\n  {row['description']}\n  needs: {row['needs']}")
        if row["options"]:
            print("  options: " + ", ".join(f"{row['name']}.{k}={v}" for k, v in row["options"].items()))
        for weight in row["weights"]:
            print(f"  weights {weight['name']}: {weight['where']}")
    return 0


def _number(value, scale) -> str:
    """Fixed 4 decimals, or scientific notation when the estimate itself is tiny (KID ~1e-3): one style per row."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if scale is None or abs(scale) >= 0.01 or scale == 0 else f"{value:.3e}"


def format_estimate(est: dict) -> str:
    scale = est["value"]
    interval = f" [{_number(est['low'], scale)}, {_number(est['high'], scale)}]" if est.get("low") is not None else ""
    return f"{_number(est['value'], scale)}{interval}  n={est['n']}"


def format_table(document: dict) -> list[str]:
    """Every stat of a metrics.json document: overall, its baselines, then per group, one aligned row each."""
    lines = []
    for name, stat in document["metrics"].items():
        arrow = "^" if stat["higher_is_better"] else "v"
        lines.append(f"{name + ' ' + arrow:34s} {format_estimate(stat['overall'])}")
        for baseline, found in (stat["details"].get("baselines") or {}).items():
            lines.append(f"  {'(' + baseline + ')':32s} {format_estimate(found['overall'])}")
        for group, labels in stat["groups"].items():
            for label, est in labels.items():
                lines.append(f"  {group} {label:23s}"[:34].ljust(34) + f" {format_estimate(est)}")
    return lines
