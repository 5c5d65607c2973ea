"""Where an official benchmark's prompt file comes from, and the check that it is the right one.

Resolution order: ``--prompts FILE`` > ``$EVALKIT_DATA/<data_file>`` > user cache > download from the official
source. Whatever the origin, the rows are checked against the benchmark's manifest (``benchmarks/<name>/
manifest.json`` in the repository, shipped inside the package as ``evalkit/benchmarks/manifests/<name>.json``, a
link to it, so a wheel install has them: row count, per-category counts and a hash of the normalised rows), so a
truncated download, an edited copy or the wrong file fails loudly instead of silently changing every number.
Downloads are verified before they are cached; ``EVALKIT_OFFLINE=1`` forbids them (the tests set it).
"""

from __future__ import annotations

import json
import os
from importlib import resources
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable

from evalkit import atomic, paths
from evalkit.benchmarks.registry import LoadedBenchmark, PromptRow
from evalkit.errors import EvalkitError

DOWNLOAD_TIMEOUT_S = 30

Parser = Callable[[Path], tuple[list[PromptRow], str]]  # file -> (rows, content hash)


def manifest(name: str) -> dict:
    path = resources.files("evalkit.benchmarks").joinpath("manifests", f"{name}.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvalkitError(f"benchmark manifest {path} is missing or unreadable ({error}); reinstall evalkit") from None


def cache_dir() -> Path:
    return paths.cache_dir("benchmarks")


def mismatch(spec: dict, rows: list[PromptRow], digest: str) -> str | None:
    """Why these rows are not the benchmark the manifest describes (None when they are)."""
    if len(rows) != spec["rows"]:
        return f"{len(rows)} rows, expected {spec['rows']}"
    if spec.get("categories"):
        found = Counter(row.category for row in rows)
        for category, expected in spec["categories"].items():
            if found.get(category, 0) != expected:
                return f"category {category!r} has {found.get(category, 0)} rows, expected {expected}"
        extra = set(found) - set(spec["categories"])
        if extra:
            return f"unexpected categories: {', '.join(sorted(extra))}"
    if digest != spec["content_hash"]:
        return f"content hash {digest[:19]}... differs from the official {spec['content_hash'][:19]}..."
    return None


def _verified(name: str, spec: dict, path: Path, parse: Parser, origin: str) -> LoadedBenchmark:
    rows, digest = parse(path)
    problem = mismatch(spec, rows, digest)
    if problem:
        hint = " (for a custom prompt list use --benchmark file)" if origin == "--prompts" else ""
        raise EvalkitError(f"{path} is not the official {name} prompt list: {problem}{hint}")
    return LoadedBenchmark(name, rows, digest, str(path.resolve()))


def _download(url: str, target: Path) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "evalkit"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        atomic.write_bytes(target, response.read())


def load_official(name: str, parse: Parser, prompts_file: str | None) -> LoadedBenchmark:
    spec = manifest(name)
    if prompts_file:
        return _verified(name, spec, Path(prompts_file), parse, "--prompts")

    data_root = os.environ.get("EVALKIT_DATA")
    if data_root:
        candidate = Path(data_root) / spec["data_file"]
        if candidate.is_file():
            return _verified(name, spec, candidate, parse, "EVALKIT_DATA")

    cached = cache_dir() / spec["data_file"]
    if cached.is_file():
        try:
            return _verified(name, spec, cached, parse, "cache")
        except EvalkitError:
            pass  # a stale or damaged cache entry: fetch a fresh verified copy below

    where = f"set EVALKIT_DATA to a folder holding {spec['data_file']} (e.g. ../shared/benchmarks) or pass --prompts FILE"
    if os.environ.get("EVALKIT_OFFLINE") == "1":
        raise EvalkitError(f"{name} prompts not found locally and downloads are off (EVALKIT_OFFLINE=1): {where}")
    with tempfile.TemporaryDirectory() as tmp:
        downloaded = Path(tmp) / Path(spec["data_file"]).name
        try:
            _download(spec["source"]["url"], downloaded)
        except OSError as error:
            reason = getattr(error, "reason", None) or error
            raise EvalkitError(f"could not download {name} from {spec['source']['url']} ({reason}): {where}") from None
        loaded = _verified(name, spec, downloaded, parse, "download")
        atomic.write_bytes(cached, downloaded.read_bytes())
    return LoadedBenchmark(name, loaded.rows, loaded.content_hash, str(cached))
