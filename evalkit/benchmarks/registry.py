"""Named prompt sets. Each benchmark module exposes ``load(prompts_file) -> LoadedBenchmark``.

Rows keep their position in the full benchmark as ``index``: it names the images of a run
(``images/<index>_<sample>.png``) and is how runs of different models are matched prompt by prompt.
"""

from __future__ import annotations

import hashlib
import importlib
import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import EvalkitError


@dataclass(frozen=True)
class PromptRow:
    index: int
    prompt: str
    category: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedBenchmark:
    name: str
    rows: list[PromptRow]
    content_hash: str
    source: str  # where the rows were read from

    def categories(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.category] = counts.get(row.category, 0) + 1
        return dict(sorted(counts.items()))


# name -> (module:function, one-line description)
BUILTIN: dict[str, tuple[str, str]] = {
    "drawbench": ("evalkit.benchmarks.drawbench:load", "DrawBench (Imagen): 200 prompts in 11 categories"),
    "coco": ("evalkit.benchmarks.coco:load", "MS-COCO val2014 30k captions (BK-SDM list), for zero-shot FID-30K"),
    "coco-esd": ("evalkit.benchmarks.coco:load_esd", "MS-COCO val2014 30k captions (ESD list: first caption per image)"),
    "parti": ("evalkit.benchmarks.parti:load", "PartiPrompts: 1,632 prompts, 12 categories x 11 challenges"),
    "toyworld": ("evalkit.benchmarks.toyworld:load", "Toy world: 200 held-out checkable prompts (colour, count, position)"),
    "toyworld-validation": ("evalkit.benchmarks.toyworld:load_validation",
                            "Toy world: 200 validation prompts, disjoint from toyworld's, for choosing checkpoints"),
    "file": ("evalkit.benchmarks.files:load", "Any prompt file given with --prompts (csv, tsv, jsonl, txt)"),
}


def list_benchmarks() -> dict[str, str]:
    return {name: description for name, (_, description) in BUILTIN.items()}


def load_benchmark(name: str, prompts_file: str | None = None) -> LoadedBenchmark:
    if name not in BUILTIN:
        raise EvalkitError(f"unknown benchmark {name!r}; known benchmarks: {', '.join(BUILTIN)}")
    module_name, function_name = BUILTIN[name][0].split(":")
    loader = getattr(importlib.import_module(module_name), function_name)
    return loader(prompts_file)


def normalise_text(text: str) -> str:
    """The form rows are hashed in: Unicode NFC, whitespace runs collapsed, ends stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(rows: list[tuple[str, ...]]) -> str:
    """sha256 of normalised rows (fields joined by tab, rows by newline): independent of file format,
    header names, quoting and line endings, so a re-export of the same prompts verifies."""
    digest = hashlib.sha256()
    for fields in rows:
        digest.update(("\t".join(normalise_text(str(f)) for f in fields) + "\n").encode("utf-8"))
    return "sha256:" + digest.hexdigest()


def select_subset(rows: list[PromptRow], limit: int | None) -> list[PromptRow]:
    """`--limit N`: a fixed pseudo-random subset of N rows, returned in benchmark order.

    Seeded independently of the run seed, so every model evaluated with the same limit sees the same prompts, and
    subsets are nested (limit 100 contains limit 50). Random rather than the first N, so small limits still span
    the categories (DrawBench's first 25 rows are all 'Colors')."""
    if limit is None or limit >= len(rows):
        return list(rows)
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    keep = sorted(order[:limit])
    return [rows[i] for i in keep]
