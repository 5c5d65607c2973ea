"""`evalkit fid`, `evalkit ref-stats` and `evalkit score`: image-quality metrics from the command line."""

from __future__ import annotations

import json
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
            overall = value.get("overall", value) if isinstance(value, dict) else value
            print(f"{name}: {json.dumps(overall, sort_keys=True)[:300]}")
    return 0
