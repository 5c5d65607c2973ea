"""Prompt files: csv, tsv, jsonl and txt, read with errors that name the file, the line and the problem.

- csv / tsv: a header row with a `prompt` (or `prompts`) column, any case; optional `category`; other columns are
  kept in each row's `extra`. RFC-4180 quoting for csv; tsv is read without quoting (as PartiPrompts needs).
- jsonl: one JSON object per line with a `prompt` key (any case), optional `category`.
- txt: one prompt per non-empty line.

What is read, and what is refused (each refusal is one ``EvalkitError`` line naming the file and, where there is
one, the line):

- Encoding: UTF-8, with or without a byte-order mark. A file that starts with a UTF-16 or UTF-32 byte-order mark
  (what spreadsheet programs write as "Unicode text") is decoded as such: the mark says which it is, so this is
  a safe conversion. Anything else that is not UTF-8 (latin-1, cp1252, UTF-16 without a mark) is refused, and so
  is a NUL byte anywhere (binary data, or UTF-16 without its mark).
- Lines end with LF, CRLF or CR. Nothing else ends a line: a U+2028 or a form feed inside a prompt stays in it.
- Fields may be of any length, but a prompt of more than ``MAX_PROMPT_CHARS`` (10,000) characters is refused:
  text encoders read 32 to 77 tokens of it, and BPE tokenizers take time quadratic in a word's length (measured:
  open_clip's took 44 s for one 20,000-letter word, so a 2 MB prompt would never finish). Shorter prompts that are
  too long for a text encoder are truncated by it, and the run records which (manifest ``prompts_truncated``;
  CLIP score counts its own). Blank lines are skipped, before the header too. A header naming one column twice
  is refused.
- jsonl: strict JSON (no NaN / Infinity), nested at most as deep as Python's parser allows; `prompt` must be text
  and `category` text, a number or absent; keys that differ only in case are refused (they would collide).
- Unpaired UTF-16 surrogates (only JSON's ``\\ud800`` escapes can make them) are refused: they cannot be written
  back as UTF-8.
- Repeated prompts are kept, each its own row with its own seeds (COCO's caption lists repeat some captions);
  one warning says how many repeat and where the first one is.
- Files over ``MAX_FILE_BYTES`` (1 GiB) are refused before they are read: the reader holds a file whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

from evalkit.benchmarks.registry import BenchmarkSpec, LoadedBenchmark, PromptRow, content_hash
from evalkit.errors import EvalkitError

PROMPT_COLUMNS = ("prompt", "prompts")
CATEGORY_COLUMNS = ("category", "categories")
SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")
MAX_FILE_BYTES = 1 << 30
MAX_PROMPT_CHARS = 10_000
LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def short(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters for an error line (a header can be megabytes long)."""
    return text if len(text) <= limit else text[:limit] + "..."


def _line_of(text: str, position: int) -> int:
    return len(LINE_BREAK.findall(text, 0, position)) + 1


def _decode(path: Path, data: bytes) -> str:
    for mark, encoding in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            try:
                return data.decode(encoding).removeprefix("\ufeff")
            except UnicodeDecodeError:
                raise EvalkitError(f"{path}: not valid {encoding.upper()} (it starts with a {encoding.upper()} "
                                   "byte-order mark)") from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise EvalkitError(f"{path}, line {line}: NUL byte; a binary file, or UTF-16 text without a byte-order "
                           "mark? Save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise EvalkitError(f"{path}, line {line}: not valid UTF-8 text") from None


def read_text(path: Path) -> str:
    """The whole file as text (see the module docstring for encodings); NUL-free and never blank."""
    path = Path(path)
    if not path.exists():
        raise EvalkitError(f"prompt file {path} does not exist")
    if not path.is_file():
        raise EvalkitError(f"prompt file {path} is not a file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise EvalkitError(f"prompt file {path} is {size / (1 << 30):.1f} GiB; prompt files are read whole, "
                               f"at most {MAX_FILE_BYTES >> 30} GiB")
        data = path.read_bytes()
    except OSError as error:
        raise EvalkitError(f"cannot read prompt file {path}: {error.strerror or error}") from None
    text = _decode(path, data)
    if "\x00" in text:
        raise EvalkitError(f"{path}, line {_line_of(text, text.index(chr(0)))}: NUL byte in the text")
    if not text.strip():
        raise EvalkitError(f"prompt file {path} is empty")
    return text


def text_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line; LF, CRLF and CR end lines, nothing else does."""
    return list(enumerate(LINE_BREAK.split(text), start=1))


def allow_fields_of(length: int) -> None:
    """Let the csv module read fields up to ``length`` characters (its default stops at 128 KiB).
    The limit is process-wide and only ever raised, so other readers are unaffected."""
    if length > csv.field_size_limit():
        csv.field_size_limit(length)


def read_table(path: Path, delimiter: str, quoting: int = csv.QUOTE_MINIMAL) -> list[tuple[int, dict[str, str]]]:
    """Rows of a delimited file as (line number, {lower-cased column: value}); ragged rows are errors."""
    text = read_text(path)
    allow_fields_of(len(text) + 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    columns: list[str] | None = None
    rows = []
    start = 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields or all(not f.strip() for f in fields):
                continue
            if columns is None:
                columns = _header(path, line, fields)
                continue
            if len(fields) != len(columns):
                raise EvalkitError(f"{path}, line {line}: expected {len(columns)} fields "
                                   f"({short(', '.join(columns))}), found {len(fields)}")
            rows.append((line, dict(zip(columns, fields))))
    except csv.Error as error:
        hint = " (a quote opened here is never closed?)" if "end of data" in str(error) else ""
        raise EvalkitError(f"{path}, line {start}: malformed {delimiter!r}-separated row ({error}){hint}") from None
    if not rows:
        raise EvalkitError(f"prompt file {path} has a header but no rows")
    return rows


def _header(path: Path, line: int, fields: list[str]) -> list[str]:
    columns = [name.strip().lower() for name in fields]
    seen: set[str] = set()
    for name in columns:
        if name in seen and name:
            raise EvalkitError(f"{path}, line {line}: column {short(name, 60)!r} appears twice in the header")
        seen.add(name)
    return columns


def _pick(columns, wanted: tuple[str, ...]) -> str | None:
    for name in wanted:
        if name in columns:
            return name
    return None


def _check_text(path: Path, line: int, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise EvalkitError(f"{path}, line {line}: text holds an unpaired surrogate "
                           f"({text[error.start]!r}), which is not writable as UTF-8") from None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _rows_from_records(path: Path, records: list[tuple[int, dict[str, Any]]]) -> list[PromptRow]:
    columns = {key for _, record in records for key in record}
    prompt_key = _pick(columns, PROMPT_COLUMNS)
    if prompt_key is None:
        raise EvalkitError(f"{path}: no 'prompt' column (found: {short(', '.join(sorted(columns))) or 'none'})")
    category_key = _pick(columns, CATEGORY_COLUMNS)
    rows = []
    for line, record in records:
        prompt = record.get(prompt_key)
        if prompt is not None and not isinstance(prompt, str):
            raise EvalkitError(f"{path}, line {line}: prompt must be text, got {_kind(prompt)}")
        if not prompt or not prompt.strip():
            raise EvalkitError(f"{path}, line {line}: empty or missing prompt")
        if len(prompt.strip()) > MAX_PROMPT_CHARS:
            raise EvalkitError(f"{path}, line {line}: prompt is {len(prompt.strip()):,} characters long, more than the "
                               f"{MAX_PROMPT_CHARS:,} allowed (text encoders read a few hundred at most)")
        category = record.get(category_key) if category_key else None
        if category is not None and (not isinstance(category, (str, int, float)) or isinstance(category, bool)):
            raise EvalkitError(f"{path}, line {line}: category must be text, got {_kind(category)}")
        extra = {k: v for k, v in record.items() if k not in (prompt_key, category_key)}
        _check_text(path, line, json.dumps(record, ensure_ascii=False))
        rows.append(PromptRow(len(rows), prompt.strip(), str(category if category is not None else "").strip(), extra))
    _warn_repeats(path, rows, [line for line, _ in records])
    return rows


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is too large for a number")
    return value


def _json_object(path: Path, line_number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line, parse_constant=_no_constants, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        raise EvalkitError(f"{path}, line {line_number}: not valid JSON ({error.msg})") from None
    except ValueError as error:  # NaN / Infinity
        raise EvalkitError(f"{path}, line {line_number}: not valid JSON ({error})") from None
    except RecursionError:
        raise EvalkitError(f"{path}, line {line_number}: not valid JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        raise EvalkitError(f"{path}, line {line_number}: expected a JSON object with a 'prompt' key")
    lowered: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in record.items():
        low = key.lower()
        if low in lowered:
            first, second = sorted((spelled[low], key))
            raise EvalkitError(f"{path}, line {line_number}: keys {short(first, 60)!r} and {short(second, 60)!r} "
                               "differ only in case")
        lowered[low], spelled[low] = value, key
    return lowered


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return [(number, _json_object(path, number, line)) for number, line in text_lines(read_text(path)) if line.strip()]


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
        lines = [(n, {"prompt": line}) for n, line in text_lines(read_text(path)) if line.strip()]
        return _rows_from_records(path, lines)
    raise EvalkitError(f"prompt file {path}: unsupported type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}")


def _warn_repeats(path: Path, rows: list[PromptRow], lines: list[int]) -> None:
    """One warning when prompts repeat (they are kept: each row has its own index and seeds)."""
    first: dict[str, int] = {}
    repeats = []
    for row, line in zip(rows, lines):
        if row.prompt in first:
            repeats.append((line, first[row.prompt]))
        else:
            first[row.prompt] = line
    if repeats:
        noun = "prompt repeats" if len(repeats) == 1 else "prompts repeat"
        warnings.warn(f"{path}: {len(repeats)} {noun} an earlier row (line {repeats[0][0]} = line {repeats[0][1]}); "
                      "each is kept as its own row", stacklevel=3)


def load(prompts_file: str | None) -> LoadedBenchmark:
    if not prompts_file:
        raise EvalkitError("benchmark 'file' needs --prompts FILE")
    rows = read_prompt_file(prompts_file)
    digest = content_hash([(row.prompt, row.category) for row in rows])
    return LoadedBenchmark("file", rows, digest, str(Path(prompts_file).resolve()))


BENCHMARK = BenchmarkSpec("Any prompt file given with --prompts (csv, tsv, jsonl, txt)", load)
