"""`evalkit score`: a run's metrics.json — overall and per-category (and Parti challenge) numbers with N, CIs,
weights hashes, resize mode and library versions. New metrics are merged into an existing metrics.json."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from importlib import metadata

import torch

from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError
from evalkit.metrics.bootstrap import mean_ci
from evalkit.metrics.compare import compare, sample_size_warnings
from evalkit.metrics.frechet import FrechetReference
from evalkit.metrics.sources import ImageSet, load_image_set, stats_of
from evalkit.runs.store import open_run

KNOWN_METRICS = ("fid", "kid", "clip", "toyworld")
METRICS_FILE = "metrics.json"
_LIBRARIES = ("torch", "torchmetrics", "torch-fidelity", "open_clip_torch", "numpy", "scipy", "pillow")


def parse_metrics(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in KNOWN_METRICS]
    if unknown or not names:
        raise EvalkitError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(KNOWN_METRICS)}")
    return names


def library_versions() -> dict:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def group_indices(records, key) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        value = key(record)
        if value not in (None, ""):
            groups[str(value)].append(i)
    return dict(sorted(groups.items()))


def _challenge(record):
    return record.extra.get("challenge") if isinstance(record.extra, dict) else None


def fid_kid(records, paths, args, extractor, metrics) -> tuple[dict, list[str]]:
    if not args.ref:
        raise EvalkitError("fid/kid need a reference: pass --ref FILE.npz, an image folder or a run")
    feats = extractor.features(paths, desc="inception run")
    ref = load_image_set(args.ref, extractor)
    reference = FrechetReference(ref.stats.mu, ref.stats.sigma, ref.features)  # its factor is reused for every group
    want_kid = "kid" in metrics and ref.features is not None

    def measure(indices) -> dict:
        subset = feats[indices]
        side = ImageSet("run", "run", len(indices), stats_of(subset, extractor), subset)
        return compare(side, ref, extractor, kid=want_kid, seed=args.seed, reference=reference)

    overall = measure(list(range(len(records))))
    warnings = list(overall["warnings"])
    groups = {"per_category": group_indices(records, lambda r: r.category),
              "per_challenge": group_indices(records, _challenge)}
    per_group = {name: {label: measure(idx) for label, idx in found.items() if len(idx) >= 2}
                 for name, found in groups.items() if found}
    common = {"ref": str(args.ref), "n_ref": ref.n, **extractor.description}
    out = {}
    if "fid" in metrics:
        pick = lambda r: {"fid": r["fid"], "n": r["n_a"]}  # noqa: E731
        out["fid"] = {"overall": pick(overall), **common, "warnings": sample_size_warnings(overall["n_a"], ref.n),
                      **{g: {k: pick(v) for k, v in vals.items()} for g, vals in per_group.items()}}
    if "kid" in metrics:
        if not want_kid:
            warnings.append("KID needs reference images (a folder or run), not a .npz; KID skipped")
        else:
            pick = lambda r: {k: r[k] for k in ("kid", "kid_std", "kid_subsets", "kid_subset_size")} | {  # noqa: E731
                "n": r["n_a"]}
            out["kid"] = {"overall": pick(overall), **common, "seed": args.seed,
                          **{g: {k: pick(v) for k, v in vals.items()} for g, vals in per_group.items()}}
    return out, warnings


def clip(records, paths, args, device) -> dict:
    from evalkit.metrics.clip_score import ClipScorer

    scorer = ClipScorer(args.clip_model, args.clip_pretrained, args.clip_weights, device=device,
                        batch_size=args.batch_size, workers=max(0, args.workers), download=args.download)
    scores = scorer.scores(paths, [r.prompt for r in records])
    by_prompt = group_indices(records, lambda r: r.prompt_index)
    prompt_means = {k: float(scores[idx].mean()) for k, idx in by_prompt.items()}

    def clustered(indices) -> dict:
        # Samples of one prompt are correlated, so the CI resamples prompts (their means), N counts images.
        prompts = sorted({str(records[i].prompt_index) for i in indices})
        summary = mean_ci([prompt_means[p] for p in prompts], args.bootstrap, args.seed)
        return summary | {"mean": float(scores[indices].mean()), "n": len(indices), "n_prompts": len(prompts)}

    out = {"overall": clustered(list(range(len(records)))), **scorer.description, "convention": "100*max(cos,0)",
           "bootstrap_resamples": args.bootstrap, "seed": args.seed}
    for group, key in (("per_category", lambda r: r.category), ("per_challenge", _challenge)):
        found = group_indices(records, key)
        if found:
            out[group] = {label: clustered(idx) for label, idx in found.items()}
    out["per_prompt"] = {k: mean_ci(scores[idx], args.bootstrap, args.seed) for k, idx in by_prompt.items()}
    out["per_image"] = {records[i].file: float(s) for i, s in enumerate(scores)}
    return out


def score_run(args, build_extractor) -> dict:
    metrics = parse_metrics(args.metrics or ("fid,kid,clip" if args.ref else "clip"))
    run = open_run(args.run)
    records = run.completed_records()
    if not records:
        raise EvalkitError(f"run {run.path} has no generated images to score")
    paths = [run.image_path(r) for r in records]
    results, warnings = {}, []
    planned = len(run.records())
    if len(records) < planned:
        warnings.append(f"scoring the {len(records)} of {planned} planned images that exist; the run is incomplete")
    if "fid" in metrics or "kid" in metrics:
        extractor = build_extractor(args)
        found, fid_warnings = fid_kid(records, paths, args, extractor, metrics)
        results.update(found)
        warnings += fid_warnings
    if "clip" in metrics:
        device = resolve_device(args.device)
        results["clip"] = clip(records, paths, args, device)
    if "toyworld" in metrics:
        from evalkit.metrics.toyworld import score_toyworld

        results["toyworld"] = score_toyworld(run)
    stamp = {"computed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "n_images": len(records),
             "n_planned": planned, "versions": library_versions()}
    for value in results.values():
        if isinstance(value, dict):
            value.update(stamp)
    merged = _existing(run.path / METRICS_FILE)
    merged.update(results)
    run.write_json(METRICS_FILE, merged)
    results["_warnings"] = warnings
    return results


def _existing(path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise EvalkitError(f"{path} exists but is not JSON; move it away to rescore") from None
    return data if isinstance(data, dict) else {}
