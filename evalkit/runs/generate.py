"""What ``evalkit run`` does, for code that already holds an adapter object (``evalkit train``'s periodic
evaluation wraps the cascade it is training; ``evalkit.experiments`` wrap a cascade with changed sampling settings).

The run directory, its id, the hashed per-image seeds and resuming are exactly those of ``evalkit run``, so a run
made here is scored, listed and reproduced like any other, and the same adapter config gives the same images.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.adapters.base import Adapter
from evalkit.benchmarks.registry import LoadedBenchmark, PromptRow
from evalkit.runs.pipeline import finish_run, generate_missing, prepare_run
from evalkit.runs.spec import RunSpec
from evalkit.runs.store import Run


def generate_run(adapter: Adapter, benchmark: LoadedBenchmark, out_root: Path, rows: list[PromptRow] | None = None,
                 images_per_prompt: int = 1, seed: int = 0, size: tuple[int, int] | None = None,
                 batch_size: int = 8, progress: bool = False) -> Run:
    """Generate ``rows`` (default: all of ``benchmark``) x ``images_per_prompt`` into ``out_root/<run-id>/``;
    images already there are kept (the run resumes). ``size`` is (height, width), default the adapter's."""
    rows = list(benchmark.rows) if rows is None else rows
    height, width = size or adapter.default_size
    spec = RunSpec(
        benchmark=benchmark.name, benchmark_hash=benchmark.content_hash, adapter=adapter.name,
        adapter_config=adapter.config(), checkpoint_hash=adapter.checkpoint_hash(),
        images_per_prompt=images_per_prompt, seed=seed, height=height, width=width,
        prompt_indices=tuple(row.index for row in rows),
    )
    run, missing = prepare_run(Path(out_root), spec, benchmark, adapter, rows)
    try:
        generate_missing(run, adapter, missing, batch_size, progress=progress)
    except BaseException:
        finish_run(run, after_error=True)  # best effort: the generation error is the one reported
        raise
    finish_run(run)
    return run
