"""Prompt files: csv, tsv, jsonl and txt, read with errors that name the file, the line and the problem.

- csv / tsv: a header row with a `prompt` (or `prompts`) column, any case; optional `category`; other columns are
  kept in each row's `extra`. RFC-4180 quoting for csv; tsv is read without quoting (as PartiPrompts needs).
- jsonl: one JSON object per line with a `prompt` key (any case), optional `category`.
- txt: one prompt per non-empty line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from evalkit.benchmarks.registry import BenchmarkSpec, LoadedBenchmark, PromptRow, content_hash
from evalkit.errors import EvalkitError

PROMPT_COLUMNS = ("prompt", "prompts")
CATEGORY_COLUMNS = ("category", "categories")
SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")


def read_text(path: Path) -> str:
    path = Path(path)
    if not path.exists():
        raise EvalkitError(f"prompt file {path} does not exist")
    if not path.is_file():
        raise EvalkitError(f"prompt file {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EvalkitError(f"cannot read prompt file {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise EvalkitError(f"{path}, line {line}: not valid UTF-8 text") from None
    if not text.strip():
        raise EvalkitError(f"prompt file {path} is empty")
    return text


def read_table(path: Path, delimiter: str, quoting: int = csv.QUOTE_MINIMAL) -> list[tuple[int, dict[str, str]]]:
    """Rows of a delimited file as (line number, {lower-cased column: value}); ragged rows are errors."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    try:
        header = next(reader)
        columns = [name.strip().lower() for name in header]
        rows = []
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(columns):
                raise EvalkitError(
                    f"{path}, line {line}: expected {len(columns)} fields ({', '.join(columns)}), found {len(fields)}"
                )
            rows.append((line, dict(zip(columns, fields))))
    except csv.Error as error:
        raise EvalkitError(f"{path}, line {reader.line_num}: malformed {delimiter!r}-separated row ({error})") from None
    if not rows:
        raise EvalkitError(f"prompt file {path} has a header but no rows")
    return rows


def _pick(columns, wanted: tuple[str, ...]) -> str | None:
    for name in wanted:
        if name in columns:
            return name
    return None


def _rows_from_records(path: Path, records: list[tuple[int, dict[str, Any]]]) -> list[PromptRow]:
    columns = {key for _, record in records for key in record}
    prompt_key = _pick(columns, PROMPT_COLUMNS)
    if prompt_key is None:
        raise EvalkitError(f"{path}: no 'prompt' column (found: {', '.join(sorted(columns)) or 'none'})")
    category_key = _pick(columns, CATEGORY_COLUMNS)
    rows = []
    for line, record in records:
        prompt = record.get(prompt_key)
        if not isinstance(prompt, str) or not prompt.strip():
            raise EvalkitError(f"{path}, line {line}: empty or missing prompt")
        category = record.get(category_key, "") if category_key else ""
        extra = {k: v for k, v in record.items() if k not in (prompt_key, category_key)}
        rows.append(PromptRow(len(rows), prompt.strip(), str(category or "").strip(), extra))
    return rows


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records = []
    for line_number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise EvalkitError(f"{path}, line {line_number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise EvalkitError(f"{path}, line {line_number}: expected a JSON object with a 'prompt' key")
        records.append((line_number, {str(k).lower(): v for k, v in record.items()}))
    return records


def read_prompt_file(path: str | Path) -> list[PromptRow]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _rows_from_records(path, read_table(path, ","))
    if suffix == ".tsv":
        return _rows_from_records(path, read_table(path, "\t", csv.QUOTE_NONE))
    if suffix == ".jsonl":
        return _rows_from_records(path, read_jsonl(path))
    if suffix == ".txt":
        lines = [(n, {"prompt": line}) for n, line in enumerate(read_text(path).splitlines(), 1) if line.strip()]
        return _rows_from_records(path, lines)
    raise EvalkitError(f"prompt file {path}: unsupported type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}")


def load(prompts_file: str | None) -> LoadedBenchmark:
    if not prompts_file:
        raise EvalkitError("benchmark 'file' needs --prompts FILE")
    rows = read_prompt_file(prompts_file)
    digest = content_hash([(row.prompt, row.category) for row in rows])
    return LoadedBenchmark("file", rows, digest, str(Path(prompts_file).resolve()))


BENCHMARK = BenchmarkSpec("Any prompt file given with --prompts (csv, tsv, jsonl, txt)", load)
