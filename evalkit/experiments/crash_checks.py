"""What ``evalkit.experiments.crash_safety`` checks after each kill and rerun. Each check returns the problems it
found as one-line strings (an empty list: the state is what an uninterrupted run leaves)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.atomic import is_temp
from evalkit.errors import EvalkitError
from evalkit.runs.integrity import verify_run
from evalkit.runs.store import GENERATION_LOG, INDEX, open_run


def temp_files(root: Path) -> list[str]:
    """Every atomic-write temp file (``.tmp-*``: evalkit.atomic's naming) anywhere below ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if is_temp(p.name))


def check_run(run_dir: Path, reference: Path) -> list[str]:
    """Complete, images and index.csv byte-identical to the uninterrupted run, verify clean, generation log whole."""
    try:
        run = open_run(run_dir)
        verification = verify_run(run)
    except EvalkitError as error:
        return [f"unreadable run: {error}"]
    problems = []
    manifest = run.manifest
    if manifest.get("status") != "complete" or manifest.get("completed_images") != manifest.get("n_images"):
        problems.append(f"status {manifest.get('status')}, {manifest.get('completed_images')} of "
                        f"{manifest.get('n_images')} images")
    names = sorted(p.name for p in (reference / "images").iterdir())
    found = sorted(p.name for p in (run_dir / "images").iterdir()) if (run_dir / "images").is_dir() else []
    if found != names:
        problems.append(f"{len(set(names) - set(found))} images missing, {len(set(found) - set(names))} extra")
    differing = [n for n in set(names) & set(found)
                 if (run_dir / "images" / n).read_bytes() != (reference / "images" / n).read_bytes()]
    if differing:
        problems.append(f"{len(differing)} images differ from the uninterrupted run (e.g. {sorted(differing)[0]})")
    if (run_dir / INDEX).read_bytes() != (reference / INDEX).read_bytes():
        problems.append("index.csv differs from the uninterrupted run's")
    if not verification.ok:
        problems.append("runs verify: " + verification.lines()[-1])
    problems += _check_generation_log(run)
    return problems


def _check_generation_log(run) -> list[str]:
    path = run.path / GENERATION_LOG
    if path.is_file() and not path.read_bytes().endswith(b"\n"):
        return [f"{GENERATION_LOG} ends in a torn line"]
    try:
        run.generation_timings()
    except EvalkitError as error:
        return [str(error)]
    return []


def comparable_metrics(path: Path) -> dict[str, Any]:
    """metrics.json without the time each stat was computed (all that may differ between two identical scorings)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    for stat in document.get("metrics", {}).values():
        stat.pop("computed_at", None)
    return document


def check_metrics(run_dir: Path, reference: dict[str, Any]) -> list[str]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return ["no metrics.json"]
    try:
        found = comparable_metrics(path)
    except ValueError as error:
        return [f"metrics.json is not JSON ({error})"]
    if found == reference:
        return []
    differing = sorted(k for k in set(found.get("metrics", {})) | set(reference.get("metrics", {}))
                       if found.get("metrics", {}).get(k) != reference.get("metrics", {}).get(k))
    return [f"metrics.json differs from the uninterrupted scoring ({', '.join(differing) or 'outside the stats'})"]


def check_cache(cache: Path) -> list[str]:
    """Every feature-cache entry loads as a finite float32 array (a partial entry would not)."""
    problems = []
    for entry in sorted(Path(cache).glob("*.npy")) if Path(cache).is_dir() else []:
        try:
            feats = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            problems.append(f"cache entry {entry.name} does not load ({error})")
            continue
        if feats.dtype != np.float32 or not np.isfinite(feats).all():
            problems.append(f"cache entry {entry.name} holds {feats.dtype} or non-finite values")
    return problems


def check_one_spec_per_directory(root: Path) -> list[str]:
    """Every run directory below ``root`` is named by its own run id, which ends in its spec's fingerprint: no run
    directory holds another spec's images (and so no spec has two directories under one --out)."""
    problems = []
    for manifest in sorted(Path(root).rglob("manifest.json")):
        run_dir = manifest.parent
        data = json.loads(manifest.read_text(encoding="utf-8"))
        run_id, fingerprint = str(data.get("run_id")), str(data.get("spec_fingerprint", ""))
        if run_dir.name != run_id or not fingerprint or not run_id.endswith(fingerprint[:12]):
            problems.append(f"{run_dir} holds run {run_id} (spec {fingerprint[:12]})")
    return problems
