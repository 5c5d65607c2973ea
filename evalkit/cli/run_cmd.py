"""`evalkit run`: generate a benchmark's images with a model into a (resumable) run directory."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from evalkit.cli.args import (MAX_IMAGES_PER_PROMPT, MAX_IMAGES_PER_RUN, MAX_SIDE, batch_size, int_range, key_value,
                              positive_int, seed, threads)
from evalkit import dist
from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError

DEFAULT_OUT = "runs"


def parse_size(text: str) -> tuple[int, int]:
    """`64` or `64x96` (height x width)."""
    match = re.fullmatch(r"([0-9]{1,6})(?:x([0-9]{1,6}))?", text.strip())
    sides = [int(side) for side in match.groups() if side is not None] if match else []
    if not sides or not all(1 <= side <= MAX_SIDE for side in sides):
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH in pixels (1 to {MAX_SIDE} each), "
                                         f"got {text[:40]!r}")
    return sides[0], sides[-1]


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="generate images for a benchmark with a model")
    parser.add_argument("--model", required=True, help="adapter name (imagen, diffusers, folder, command, ...)")
    parser.add_argument("--model-path", help="checkpoint / pipeline directory / image folder / command, per adapter")
    parser.add_argument("--benchmark", help="benchmark name (default: drawbench, or 'file' when --prompts is given)")
    parser.add_argument("--prompts", help="prompt file (csv/tsv/jsonl/txt) or a local copy of the benchmark's file")
    parser.add_argument("--images-per-prompt", type=int_range(1, MAX_IMAGES_PER_PROMPT), default=4,
                        help=f"images per prompt (default 4, at most {MAX_IMAGES_PER_PROMPT}; at most "
                        f"{MAX_IMAGES_PER_RUN:,} images per run)")
    parser.add_argument("--limit", type=positive_int, help="use a fixed pseudo-random subset of N prompts")
    parser.add_argument("--seed", type=seed, default=0, help="run seed, 0 to 2**63-1; image seeds derive from it")
    parser.add_argument("--batch-size", type=batch_size, default=8, help="images per model call (default 8)")
    parser.add_argument("--threads", type=threads, default=None,
                        help="torch CPU threads (default: torch's); recorded in the manifest, not in the run id: "
                        "images are byte-identical only at the same thread count")
    parser.add_argument("--size", type=parse_size, help="image size SIZE or HxW (default: the model's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--opt", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="adapter option (repeatable), e.g. --opt steps=25")
    parser.add_argument("--out", default=os.environ.get("EVALKIT_RUNS", DEFAULT_OUT),
                        help="root folder of run directories (default: ./runs or $EVALKIT_RUNS)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle)


def check_writable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise EvalkitError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EvalkitError(f"cannot create output directory {out}: {error.strerror or error}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise EvalkitError(f"output directory {out} is not writable")


def _generate_distributed(world, out: Path, spec, benchmark, adapter, rows, args):
    """torchrun: rank 0 creates or reopens the run and lists the missing images; every rank makes its positional
    share of their batches into the one run directory (one file per image, written atomically: no collisions); after all
    ranks are done rank 0 records the hashes, the world size and the status. Seeds depend on (prompt, sample)
    only, so the images are those a single process makes on the same device and thread count."""
    from evalkit.runs.pipeline import finish_run, generate_batches, plan_batches, prepare_run
    import numpy as np

    from evalkit.runs.store import open_run

    run, missing, error = None, [], None
    if world.is_main:
        try:
            run, missing = prepare_run(out, spec, benchmark, adapter, rows)
        except EvalkitError as failure:
            error = failure
    dist.all_ok(error, world, "opening the run")
    run = run if world.is_main else open_run(out / spec.run_id())
    keys = dist.broadcast([(r.prompt_index, r.sample) for r in missing], world)
    by_key = {(r.prompt_index, r.sample): r for r in run.records()}
    # The plan's batches are shared out, not single images: each holds exactly the images a single process puts
    # together, and batch-mates can change a model's floating-point results (batched kernels).
    todo = [by_key[k] for k in keys]
    mine = dist.shard(plan_batches(run, todo, args.batch_size), world)
    if world.is_main and keys and len(keys) < run.manifest["n_images"]:
        print(f"resuming {run.run_id}: {run.manifest['n_images'] - len(keys)} of {run.manifest['n_images']} "
              f"images already done", file=sys.stderr)
    written, error, timings = 0, None, []
    from tqdm import tqdm

    with tqdm(total=sum(len(wanted) for _, wanted in mine), unit="img", desc=f"{run.run_id} rank 0 of {world.size}",
              dynamic_ncols=True, disable=not world.is_main or args.quiet) as bar:
        for batch, wanted in mine:
            try:
                written += generate_batches(run, adapter, [(batch, wanted)], len(wanted), progress=False,
                                            record_hashes=False, timings=timings)
            except EvalkitError as failure:  # named by its batch, so the message says which prompts failed
                first = batch[0]
                error = EvalkitError(f"the batch from prompt {first.prompt_index} sample {first.sample} "
                                     f"({len(batch)} images): {failure}")
                break
            bar.update(len(wanted))
    # Every rank's batches reach generation.jsonl (rank 0 appends them, with their rank), even when one failed.
    gathered = dist.gather_objects(timings, world)
    if world.is_main:
        for rank, entries in enumerate(gathered):
            for entry in entries:
                run.append_generation_timing(**entry, rank=rank)
    try:
        dist.all_ok(error, world, "generation")  # every rank's images are on disk, or every rank stops with the error
    except dist.RankFailure:
        if world.is_main:
            finish_run(run, after_error=True)  # 'incomplete': rerunning (with any number of ranks) resumes
        raise
    written = int(dist.all_reduce_sum(np.array([written]), world)[0])
    if world.is_main:
        run.update_manifest(world_size=world.size)
        finish_run(run)
    dist.barrier(world)
    return run, keys, written


def handle(args) -> int:
    from evalkit.adapters import AdapterOptions, available_adapters, create_adapter
    from evalkit.benchmarks.registry import load_benchmark, select_subset
    from evalkit.runs.pipeline import finish_run, generate_missing, prepare_run
    from evalkit.runs.provenance import record_truncations, set_threads
    from evalkit.runs.spec import RunSpec

    if args.model not in available_adapters():
        raise EvalkitError(f"unknown model {args.model!r}; known models: {', '.join(available_adapters())}")
    benchmark_name = args.benchmark or ("file" if args.prompts else "drawbench")
    benchmark = load_benchmark(benchmark_name, args.prompts)
    rows = select_subset(benchmark.rows, args.limit)
    if len(rows) * args.images_per_prompt > MAX_IMAGES_PER_RUN:
        raise EvalkitError(f"{len(rows):,} prompts x {args.images_per_prompt} images is more than the "
                           f"{MAX_IMAGES_PER_RUN:,} images a run holds; use --limit or fewer --images-per-prompt")
    out = Path(args.out)
    check_writable(out)
    set_threads(args.threads)

    options = AdapterOptions(model_path=args.model_path, device=dist.rank_device(resolve_device(args.device), dist.active()),
                             extra=dict(args.opt))
    adapter = create_adapter(args.model, options)
    height, width = args.size or adapter.default_size
    spec = RunSpec(
        benchmark=benchmark.name,
        benchmark_hash=benchmark.content_hash,
        adapter=adapter.name,
        adapter_config=adapter.config(),
        checkpoint_hash=adapter.checkpoint_hash(),
        images_per_prompt=args.images_per_prompt,
        seed=args.seed,
        height=height,
        width=width,
        prompt_indices=tuple(row.index for row in rows),
    )
    world = dist.active()
    if world.distributed:
        run, missing, written = _generate_distributed(world, out, spec, benchmark, adapter, rows, args)
        total = run.manifest["n_images"]
    else:
        run, missing = prepare_run(out, spec, benchmark, adapter, rows)
        total = run.manifest["n_images"]
        if missing and len(missing) < total:
            print(f"resuming {run.run_id}: {total - len(missing)} of {total} images already done", file=sys.stderr)
        try:
            written = generate_missing(run, adapter, missing, args.batch_size, progress=not args.quiet)
        except BaseException:
            finish_run(run, after_error=True)  # records 'incomplete' when the model fails, the disk fills or Ctrl-C
            raise
        finish_run(run)
    if not world.is_main:
        return 0
    record_truncations(run, adapter, rows)
    print(f"{run.run_id}: {total} images ({written} new), {len(rows)} prompts x {args.images_per_prompt}", file=sys.stderr)
    print(run.path)
    return 0
