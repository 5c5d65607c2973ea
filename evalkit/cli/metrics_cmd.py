"""`evalkit fid`, `evalkit ref-stats` and `evalkit score`: image-quality metrics from the command line."""

from __future__ import annotations

import json
from pathlib import Path
import sys

from evalkit.cli.args import non_negative_int, positive_int

RESIZE_CHOICES = ("torchmetrics", "tf1", "clean", "pytorch-fid")  # mirrors evalkit.metrics.inception.RESIZE_MODES


def _add_extractor_args(parser) -> None:
    parser.add_argument("--weights", metavar="FILE", help="Inception FID weights file (default: the registry lookup)")
    parser.add_argument("--resize", choices=RESIZE_CHOICES, default="torchmetrics",
                        help="how images become 299x299 network inputs (default: torchmetrics)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="image decode/resize threads (0: none)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    parser.add_argument("--download", action="store_true", help="download missing weights (sha256-verified)")


def build_extractor(args):
    import torch

    from evalkit.metrics import weights
    from evalkit.metrics.features import InceptionExtractor

    path = weights.resolve(weights.INCEPTION, args.weights, download=args.download)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return InceptionExtractor(path, resize=args.resize, device=device, batch_size=args.batch_size,
                              workers=max(0, args.workers), use_cache=not args.no_cache)


def register(subparsers) -> None:
    fid = subparsers.add_parser("fid", help="FID (and KID) between two image sets",
                                description="A and B are each a run directory, an image folder or a .npz stats file.")
    fid.add_argument("a", metavar="A")
    fid.add_argument("b", metavar="B")
    _add_extractor_args(fid)
    fid.add_argument("--no-kid", action="store_true", help="skip KID")
    fid.add_argument("--kid-subsets", type=positive_int, default=100)
    fid.add_argument("--kid-subset-size", type=positive_int, default=1000)
    fid.add_argument("--seed", type=int, default=0, help="seed of KID's random subsets")
    fid.add_argument("--json", action="store_true", help="print one JSON object")
    fid.set_defaults(handler=run_fid)

    ref = subparsers.add_parser("ref-stats", help="reference Inception statistics (.npz) of a folder of real images",
                                description="COCO protocol: centre-crop and resize real images to --size before "
                                "feature extraction, exactly as generated images are, then save mu/sigma "
                                "(pytorch-fid format).")
    ref.add_argument("--images", required=True, metavar="DIR")
    ref.add_argument("--out", required=True, metavar="FILE.npz")
    ref.add_argument("--size", type=non_negative_int, default=256, help="centre-crop + resize side first (0: keep)")
    _add_extractor_args(ref)
    ref.set_defaults(handler=run_ref_stats)

    score = subparsers.add_parser("score", help="score a run: FID/KID vs a reference, CLIP score, toy-world checks",
                                  description="Writes <run>/metrics.json, merged with metrics already there.")
    score.add_argument("run", metavar="RUN")
    score.add_argument("--metrics", help="comma list of fid,kid,clip,toyworld (default: fid,kid,clip with --ref, "
                       "else clip)")
    score.add_argument("--ref", metavar="FILE.npz|DIR|RUN", help="reference set for fid/kid")
    _add_extractor_args(score)
    score.add_argument("--clip-model", default="ViT-B-32", help="open_clip model name (default ViT-B-32)")
    score.add_argument("--clip-pretrained", default="openai", help="open_clip pretrained tag (default openai)")
    score.add_argument("--clip-weights", metavar="FILE", help="CLIP checkpoint file (default: the registry lookup)")
    score.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples for 95%% CIs")
    score.add_argument("--seed", type=int, default=0)
    score.add_argument("--json", action="store_true", help="print the new metrics as JSON")
    score.set_defaults(handler=run_score)


def _print_warnings(warnings) -> None:
    for line in warnings:
        print(f"evalkit: warning: {line}", file=sys.stderr)


def run_fid(args) -> int:
    from evalkit.metrics.compare import compare
    from evalkit.metrics.sources import load_image_set

    extractor = build_extractor(args)
    a = load_image_set(args.a, extractor)
    b = load_image_set(args.b, extractor)
    result = compare(a, b, extractor, kid=not args.no_kid, kid_subsets=args.kid_subsets,
                     kid_subset_size=args.kid_subset_size, seed=args.seed)
    _print_warnings(result["warnings"])
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"FID {result['fid']:.4f}  (n_a={result['n_a']}, n_b={result['n_b']}, resize={result['resize']})")
        if "kid" in result:
            print(f"KID {result['kid']:.6f} +- {result['kid_std']:.6f}  "
                  f"({result['kid_subsets']} subsets of {result['kid_subset_size']})")
    return 0


def run_ref_stats(args) -> int:
    from evalkit.metrics.reference import write_reference_stats

    extractor = build_extractor(args)
    stats = write_reference_stats(args.images, args.out, extractor, size=args.size)
    print(f"wrote {args.out}: n={stats.n}, d={stats.mu.shape[0]}, resize={extractor.resize}, crop+resize={args.size}")
    return 0


def run_score(args) -> int:
    from evalkit.metrics.scoring import score_run

    result = score_run(args, build_extractor)
    _print_warnings(result.pop("_warnings", []))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for name, value in result.items():
            print("\n".join(format_metric(name, value)))
        print(f"wrote {Path(args.run) / 'metrics.json'}")
    return 0


def _stat(stat) -> str:
    """One number with its interval and N, whatever metric produced it."""
    if not isinstance(stat, dict):
        return str(stat)
    n = f"  n={stat['n']}" if "n" in stat else ""
    if "accuracy" in stat:
        low, high = stat.get("ci95") or (None, None)
        ci = f" [{low:6.1%}, {high:6.1%}]" if low is not None else ""
        return f"{stat['accuracy']:6.1%}{ci}{n}"
    if "fid" in stat:
        return f"{stat['fid']:.4f}{n}"
    if "kid" in stat:
        return f"{stat['kid']:.6f} +- {stat.get('kid_std', 0):.6f}{n}"
    if "mean" in stat and stat["mean"] is not None:
        ci = f" [{stat['ci_low']:.2f}, {stat['ci_high']:.2f}]" if stat.get("ci_low") is not None else ""
        return f"{stat['mean']:.2f}{ci}{n}"
    return json.dumps(stat, sort_keys=True)


def format_metric(name: str, value) -> list[str]:
    """A metric's overall and per-category numbers as an aligned table (the full record is in metrics.json)."""
    if not isinstance(value, dict) or "overall" not in value:
        return [f"{name}: {value}"]
    lines = []
    for group, rows in [("overall", {"all": value["overall"]}), *[(g, value[g]) for g in ("per_category", "per_challenge") if g in value]]:
        for label, stat in rows.items():
            title = f"{name} {label}" if group != "overall" else name
            # toyworld nests one accuracy per question; other metrics have one number per group
            if isinstance(stat, dict) and stat and all(isinstance(v, dict) and "accuracy" in v for v in stat.values()):
                chance = (value.get("chance") or {}).get("overall" if group == "overall" else group, {})
                chance = chance if group == "overall" else chance.get(label, {})
                lines.append(f"{title}:")
                lines.extend(
                    f"  {question:10s} {_stat(q)}" + (f"   (chance {chance[question]:.1%})" if question in chance else "")
                    for question, q in stat.items()
                )
            else:
                lines.append(f"{title:30s} {_stat(stat)}")
    return lines
