"""PartiPrompts (Yu et al. 2022): 1,632 prompts; tab-separated with no quoting (a prompt starts with a '"')."""

from __future__ import annotations

import csv
from pathlib import Path

from evalkit.benchmarks import files, sources
from evalkit.benchmarks.registry import BenchmarkSpec, LoadedBenchmark, PromptRow, content_hash


def parse(path: Path) -> tuple[list[PromptRow], str]:
    table = files.read_table(path, "\t", csv.QUOTE_NONE)
    rows = []
    for line, record in table:
        if "prompt" not in record or "category" not in record:
            raise files.EvalkitError(f"{path}: expected columns Prompt, Category, Challenge, Note")
        rows.append(
            PromptRow(
                len(rows),
                record["prompt"].strip(),
                record["category"].strip(),
                {"challenge": record.get("challenge", "").strip(), "note": record.get("note", "").strip()},
            )
        )
    digest = content_hash([(r.prompt, r.category, r.extra["challenge"]) for r in rows])
    return rows, digest


def load(prompts_file: str | None = None) -> LoadedBenchmark:
    return sources.load_official("parti", parse, prompts_file)


BENCHMARK = BenchmarkSpec("PartiPrompts: 1,632 prompts, 12 categories x 11 challenges", load)
