"""MS-COCO val2014 caption lists for zero-shot FID-30K (one caption per image, image ids kept).

`coco` is the BK-SDM list (a random caption per image, closest to the Imagen protocol); `coco-esd` the ESD list
(first caption per image). Captions are whitespace-normalised (the ESD list has stray spaces and newlines).
The image id goes into each row's `extra` so FID reference statistics can be built from the same images."""

from __future__ import annotations

from pathlib import Path

from evalkit.benchmarks import files, sources
from evalkit.benchmarks.registry import BenchmarkSpec, LoadedBenchmark, PromptRow, content_hash, normalise_text
from evalkit.errors import EvalkitError


def _rows(path: Path, id_column: str, text_column: str, to_id) -> list[PromptRow]:
    rows = []
    for line, record in files.read_table(path, ","):
        if id_column not in record or text_column not in record:
            raise EvalkitError(f"{path}: expected columns {id_column!r} and {text_column!r}")
        try:
            image_id = to_id(record[id_column])
        except ValueError:
            raise EvalkitError(f"{path}, line {line}: bad image id {record[id_column]!r}") from None
        caption = normalise_text(record[text_column])
        if not caption:
            raise EvalkitError(f"{path}, line {line}: empty caption")
        rows.append(PromptRow(len(rows), caption, "", {"image_id": image_id}))
    return rows


def _hash(rows: list[PromptRow]) -> str:
    return content_hash([(str(r.extra["image_id"]), r.prompt) for r in rows])


def parse_bksdm(path: Path) -> tuple[list[PromptRow], str]:
    # file_name is COCO_val2014_<12-digit id>.jpg
    rows = _rows(path, "file_name", "text", lambda name: int(name.rsplit("_", 1)[-1].split(".")[0]))
    return rows, _hash(rows)


def parse_esd(path: Path) -> tuple[list[PromptRow], str]:
    rows = _rows(path, "image_id", "prompt", int)
    return rows, _hash(rows)


def load(prompts_file: str | None = None) -> LoadedBenchmark:
    return sources.load_official("coco", parse_bksdm, prompts_file)


def load_esd(prompts_file: str | None = None) -> LoadedBenchmark:
    return sources.load_official("coco-esd", parse_esd, prompts_file)


BENCHMARK = BenchmarkSpec("MS-COCO val2014 30k captions (BK-SDM list), for zero-shot FID-30K", load)
ESD_BENCHMARK = BenchmarkSpec("MS-COCO val2014 30k captions (ESD list: first caption per image)", load_esd)
