"""`evalkit run`: generate a benchmark's images with a model into a (resumable) run directory."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from evalkit.cli.args import (MAX_IMAGES_PER_PROMPT, MAX_IMAGES_PER_RUN, MAX_SIDE, batch_size, int_range, key_value,
                              positive_int, seed, threads)
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

    options = AdapterOptions(model_path=args.model_path, device=resolve_device(args.device), extra=dict(args.opt))
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
    record_truncations(run, adapter, rows)
    print(f"{run.run_id}: {total} images ({written} new), {len(rows)} prompts x {args.images_per_prompt}", file=sys.stderr)
    print(run.path)
    return 0
