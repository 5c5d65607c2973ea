"""DrawBench (Saharia et al. 2022): 200 prompts in 11 categories, from the official Google Sheet.

Accepts the sheet's CSV export (header `Prompts,Category`, one category with a trailing space) and the cleaned
copy (`prompt,category`): both normalise to the same rows and hash."""

from __future__ import annotations

from pathlib import Path

from evalkit.benchmarks import files, sources
from evalkit.benchmarks.registry import BenchmarkSpec, LoadedBenchmark, PromptRow, content_hash


def parse(path: Path) -> tuple[list[PromptRow], str]:
    rows = files.read_prompt_file(path)
    return rows, content_hash([(row.prompt, row.category) for row in rows])


def load(prompts_file: str | None = None) -> LoadedBenchmark:
    return sources.load_official("drawbench", parse, prompts_file)


BENCHMARK = BenchmarkSpec("DrawBench (Imagen): 200 prompts in 11 categories", load)
