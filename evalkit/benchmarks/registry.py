"""Named prompt sets. Each benchmark module exposes ``load(prompts_file) -> LoadedBenchmark``.

Rows keep their position in the full benchmark as ``index``: it names the images of a run
(``images/<index>_<sample>.png``) and is how runs of different models are matched prompt by prompt.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable

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


GROUP = "evalkit.benchmarks"


@dataclass(frozen=True)
class BenchmarkSpec:
    """What an entry point of the ``evalkit.benchmarks`` group refers to: a one-line description and a loader
    ``load(prompts_file or None) -> LoadedBenchmark``. evalkit's own benchmarks are registered the same way, so
    another package adds a prompt set without touching evalkit."""

    description: str
    load: Callable[[str | None], LoadedBenchmark]


def _spec(name: str) -> BenchmarkSpec:
    from evalkit import plugins

    spec = plugins.load(GROUP, name, "benchmark")
    if not isinstance(spec, BenchmarkSpec):
        raise EvalkitError(f"entry point {name!r} of {GROUP} is not a BenchmarkSpec")
    return spec


def list_benchmarks() -> dict[str, str]:
    from evalkit import plugins

    return {name: _spec(name).description for name in plugins.names(GROUP)}


def load_benchmark(name: str, prompts_file: str | None = None) -> LoadedBenchmark:
    return _spec(name).load(prompts_file)


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
