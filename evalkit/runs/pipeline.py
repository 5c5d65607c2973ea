"""Benchmark rows -> per-image seeds -> adapter batches -> run directory.

The run id is a hash of the spec, so rerunning the same command finds the same directory and generates only the
images whose files are missing: that is both "reuse" and "resume after a crash".
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from evalkit import __version__, atomic
from evalkit.adapters.base import Adapter, GenerationBatch, adapter_device, adapter_image_details
from evalkit.benchmarks.registry import LoadedBenchmark, PromptRow
from evalkit.errors import EvalkitError
from evalkit.images import to_rgb_image
from evalkit.runs.integrity import HashRecorder, record_missing_hashes
from evalkit.runs.spec import RunSpec, image_seed
from evalkit.runs.store import IMAGES, INDEX, MANIFEST, ImageRecord, Run, image_file, is_run_dir, open_run
from evalkit.runs.provenance import machine_block, resumed_on
from evalkit.runs.validate import check_image_file, record_key, records_hash, require_resumable


def plan_records(rows: list[PromptRow], images_per_prompt: int, seed: int) -> list[ImageRecord]:
    return [
        ImageRecord(
            prompt_index=row.index,
            sample=sample,
            seed=image_seed(seed, row.index, sample),
            file=image_file(row.index, sample),
            prompt=row.prompt,
            category=row.category,
            extra=row.extra,
        )
        for row in rows
        for sample in range(images_per_prompt)
    ]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git_state() -> dict[str, Any]:
    """The evalkit source commit, so a number can be traced back to the code that produced it."""
    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def build_manifest(spec: RunSpec, benchmark: LoadedBenchmark, adapter: Adapter, n_prompts: int) -> dict[str, Any]:
    rows_used = set(spec.prompt_indices)
    categories: dict[str, int] = {}
    for row in benchmark.rows:
        if row.index in rows_used:
            categories[row.category] = categories.get(row.category, 0) + 1
    return {
        "run_id": spec.run_id(),
        "spec_fingerprint": spec.fingerprint(),
        "benchmark": {
            "name": benchmark.name,
            "content_hash": benchmark.content_hash,
            "source": benchmark.source,
            "total_prompts": len(benchmark.rows),
            "prompts": n_prompts,
            "categories": dict(sorted(categories.items())),
        },
        "adapter": {"name": adapter.name, "config": spec.adapter_config, "checkpoint_hash": spec.checkpoint_hash},
        "seed": spec.seed,
        "images_per_prompt": spec.images_per_prompt,
        "height": spec.height,
        "width": spec.width,
        "n_images": n_prompts * spec.images_per_prompt,
        "versions": {
            "evalkit": __version__,
            "python": platform.python_version(),
            "torch": _package_version("torch"),
            "diffusers": _package_version("diffusers"),
        },
        "git": _git_state(),
        "machine": machine_block(adapter_device(adapter)),
        "command": sys.argv,
        "created_at": _now(),
        "status": "running",
    }


def prepare_run(
    out_root: Path, spec: RunSpec, benchmark: LoadedBenchmark, adapter: Adapter, rows: list[PromptRow]
) -> tuple[Run, list[ImageRecord]]:
    """Create the run directory, or reopen it when the same spec ran before; returns the run and its missing images."""
    path = Path(out_root) / spec.run_id()
    records = plan_records(rows, spec.images_per_prompt, spec.seed)
    if is_run_dir(path):
        run = open_run(path)
        if run.manifest.get("spec_fingerprint") != spec.fingerprint():
            raise EvalkitError(f"{path} holds a different run (spec mismatch); move it away or use another --out")
        require_resumable(run.manifest, path)
        if [record_key(r) for r in run.records()] != [record_key(r) for r in records]:
            raise EvalkitError(f"{path / INDEX} does not list this run's images; delete the run and rerun it")
        for record in records:  # before anything reads or hashes an image: no symbolic link out of the run
            check_image_file(path, record.file)
        atomic.remove_stale_temps(path / IMAGES)
        atomic.remove_stale_temps(path)  # a killed manifest, index or metrics.json write
        record_missing_hashes(run)  # images written just before a crash, whose hash the index did not get
        run.update_manifest(status="running", resumed_at=_now(), **resumed_on(run.manifest, adapter_device(adapter)))
    elif (path / MANIFEST).exists():  # Run.create writes the index first: this is not a killed create
        raise EvalkitError(f"{path} has a {MANIFEST} but no {INDEX}; move it away or delete it to rerun")
    else:
        atomic.remove_stale_temps(path)  # a create killed between its index and its manifest
        manifest = build_manifest(spec, benchmark, adapter, len(rows))
        manifest["records_hash"] = records_hash(record_key(r) for r in records)
        run = Run.create(path, manifest, records)
    missing = [record for record in records if not check_image_file(run.path, record.file)]
    return run, missing


def _checked_images(adapter: Adapter, images: list, batch: GenerationBatch) -> list:
    if len(images) != len(batch.prompts):
        raise EvalkitError(f"model {adapter.name!r} returned {len(images)} images for {len(batch.prompts)} prompts")
    checked = []
    for image in images:
        if image.size != (batch.width, batch.height):
            raise EvalkitError(
                f"model {adapter.name!r} returned a {image.size[0]}x{image.size[1]} image, "
                f"expected {batch.width}x{batch.height} (width x height); choose a --size the model supports"
            )
        checked.append(to_rgb_image(image))
    return checked


def image_key(record: ImageRecord) -> tuple[int, int]:
    """(prompt index, sample): unique within a run (its index is checked for duplicates)."""
    return record.prompt_index, record.sample


def plan_batches(run: Run, missing: list[ImageRecord], batch_size: int) -> list[tuple[list[ImageRecord], set]]:
    """The batches that make `missing`, each with the keys of its images to write.

    Batches are the run's plan cut every `batch_size` images from its first, not the missing images packed together:
    a model whose results depend on its batch (bfloat16 kernels round by batch shape, GPU kernels choose by batch
    size) then makes the same bytes for an image whether the run went in one go or was resumed, with any number of
    ranks. A batch's images already on disk are made again with it and not written; a fresh run remakes nothing.
    """
    plan = run.records()
    position = {image_key(record): index for index, record in enumerate(plan)}
    wanted: dict[int, set] = {}
    for record in missing:
        index = position[image_key(record)]
        wanted.setdefault(index // batch_size, set()).add(image_key(record))
    return [(plan[k * batch_size : (k + 1) * batch_size], wanted[k]) for k in sorted(wanted)]


def generate_missing(run: Run, adapter: Adapter, missing: list[ImageRecord], batch_size: int, progress: bool = True,
                     record_hashes: bool = True, timings: list[dict] | None = None) -> int:
    """Generate and atomically save each missing image, in the plan's batches (plan_batches); returns how many were
    written (see generate_batches)."""
    return generate_batches(run, adapter, plan_batches(run, missing, batch_size), len(missing), progress,
                            record_hashes, timings)


def generate_batches(run: Run, adapter: Adapter, batches: list[tuple[list[ImageRecord], set]], n_missing: int,
                     progress: bool = True, record_hashes: bool = True, timings: list[dict] | None = None) -> int:
    """Make each of ``batches`` (from plan_batches) and atomically save its wanted images; returns how many were
    written.

    Each batch's wall time in ``adapter.generate`` (with its image count, device, keys and the adapter's optional
    per-image details) is appended to the run's generation.jsonl once its images are saved, so a resumed run adds
    only the batches it made. Each image's sha256 goes into index.csv after its batch (see runs.integrity).

    Under torchrun (evalkit.dist) only rank 0 writes index.csv and generation.jsonl: other ranks pass
    ``record_hashes=False`` (rank 0 hashes their images when it finishes the run) and a ``timings`` list that
    collects their batches' entries for rank 0 to append.
    """
    from tqdm import tqdm

    total = run.manifest["n_images"]
    height, width = run.manifest["height"], run.manifest["width"]
    device = adapter_device(adapter)
    written = 0
    hashes = HashRecorder(run)
    with tqdm(total=total, initial=total - n_missing, unit="img", desc=run.run_id, disable=not progress,
              dynamic_ncols=True) as bar:
        for chunk, wanted in batches:
            batch = GenerationBatch(
                prompts=[r.prompt for r in chunk],
                seeds=[r.seed for r in chunk],
                height=height,
                width=width,
                keys=tuple((r.prompt_index, r.sample) for r in chunk),
            )
            started = time.perf_counter()
            images = adapter.generate(batch)
            seconds = time.perf_counter() - started
            details = adapter_image_details(adapter, len(chunk))
            for record, image in zip(chunk, _checked_images(adapter, images, batch)):
                if image_key(record) in wanted:
                    hashes.add(record.file, run.save_image(record, image))
                    written += 1
                    bar.update(1)
            entry = dict(images=len(chunk), seconds=seconds, device=device, keys=list(batch.keys), at=_now(),
                         image_details=details)
            if timings is None:
                run.append_generation_timing(**entry)
            else:
                timings.append(entry)
            if record_hashes:
                hashes.after_batch()
    if record_hashes:
        hashes.flush()
    return written


def finish_run(run: Run, after_error: bool = False) -> None:
    """Record the run's status (and any image hashes not recorded yet). ``after_error``: generation already failed
    (a full disk, a model error, Ctrl-C); then this is best effort, so the first error is the one reported."""
    try:
        record_missing_hashes(run)
        done = len(run.completed_records())
        status = "complete" if done == run.manifest["n_images"] else "incomplete"
        run.update_manifest(status=status, completed_images=done, completed_at=_now())
    except (EvalkitError, OSError):
        if not after_error:
            raise
