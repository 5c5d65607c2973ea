"""The checks a run directory's files pass before anything reads them: one place, so every command (`runs show`,
`score`, `report`, `check`, a resumed `run`) refuses the same damage with the same one line.

manifest.json must be a JSON object with ``run_id`` (a plain directory name) and ``benchmark`` {name,
content_hash}; every other field it has must have its type: ``benchmark.prompts`` >= 1, ``adapter`` {name,
config}, ``seed`` >= 0, ``images_per_prompt``, ``height``, ``width`` >= 1, ``n_images`` = prompts x
images_per_prompt. Resuming a run needs them all (``require_resumable``); readers take a shorter manifest, as
runs made with the library API (``Run.create``) may have.

index.csv must have the columns ``INDEX_COLUMNS`` (more are allowed and ignored), UTF-8 and well-formed CSV, one
row per planned image: integers where integers belong, ``extra`` a JSON object, no (prompt, sample) twice, as
many rows as the manifest's ``n_images`` and samples below its ``images_per_prompt``. The ``file`` column must be
exactly the name the run gives that image (``images/PPPPP_SS.png``): anything else -- ``../../etc/passwd``, an
absolute path, another image's name -- is refused, never opened, so no command reads or writes outside the run.
When the manifest holds ``records_hash`` (runs made since it was added), the rows must hash to it: an edited
prompt or seed cannot silently change a score.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable

from evalkit.errors import EvalkitError

# A run id names a directory: evalkit makes [A-Za-z0-9_.-] slugs; any other text is read (reports escape it), but
# never a path separator, a control character, '.' or '..', or more than a file name holds.
RUN_ID = re.compile(r"(?!\.{1,2}$)[^/\\\x00-\x1f\x7f]{1,200}")
MAX_JSON_DEPTH_HINT = "nested too deeply"


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def load_json(path: Path, what: str) -> Any:
    """A JSON file, or one line saying why it is not one (unreadable, not UTF-8, not JSON, nested too deeply)."""
    try:
        text = path.read_bytes().decode("utf-8")
        return json.loads(text)
    except OSError as error:
        raise EvalkitError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise EvalkitError(f"{what} {path} is not UTF-8 text") from None
    except ValueError as error:
        raise EvalkitError(f"{what} {path} is not valid JSON ({error})") from None
    except RecursionError:
        raise EvalkitError(f"{what} {path} is not valid JSON ({MAX_JSON_DEPTH_HINT})") from None


def _typed_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the fields a manifest has (absent optional fields are not checked here), or None."""
    run_id = manifest.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        return f"run_id must be a plain directory name (no '/', no control characters), got {str(run_id)[:80]!r}"
    benchmark = manifest.get("benchmark")
    if not isinstance(benchmark, dict):
        return "benchmark must be an object"
    for key in ("name", "content_hash"):
        if not isinstance(benchmark.get(key), str):
            return f"benchmark.{key} must be text"
    if "prompts" in benchmark and not _is_int(benchmark["prompts"], 1):
        return "benchmark.prompts must be a positive integer"
    if not isinstance(benchmark.get("categories", {}), dict):
        return "benchmark.categories must be an object"
    adapter = manifest.get("adapter", {"name": "?"})
    if not isinstance(adapter, dict) or not isinstance(adapter.get("name"), str):
        return "adapter must be an object with a name"
    if not isinstance(adapter.get("config", {}), dict):
        return "adapter.config must be an object"
    for key, minimum in INTEGER_FIELDS.items():
        if key in manifest and not _is_int(manifest[key], minimum):
            return f"{key} must be an integer >= {minimum}, got {str(manifest[key])[:40]!r}"
    n, prompts, per_prompt = manifest.get("n_images"), benchmark.get("prompts"), manifest.get("images_per_prompt")
    if None not in (n, prompts, per_prompt) and n != prompts * per_prompt:
        return f"n_images is {n}, but {prompts} prompts x {per_prompt} images per prompt is {prompts * per_prompt}"
    for key in ("status", "spec_fingerprint", "records_hash"):
        if key in manifest and not isinstance(manifest[key], str):
            return f"{key} must be text"
    return None


INTEGER_FIELDS = {"seed": 0, "images_per_prompt": 1, "height": 1, "width": 1, "n_images": 1}
RESUME_FIELDS = ("spec_fingerprint", "adapter", *INTEGER_FIELDS)


def require_resumable(manifest: dict[str, Any], path: Path) -> None:
    """What `evalkit run` wrote and needs to resume a run: every field present (readers accept less, so runs made
    through the library API with a short manifest can still be scored)."""
    missing = [key for key in RESUME_FIELDS if key not in manifest]
    if "prompts" not in manifest["benchmark"]:
        missing.append("benchmark.prompts")
    if missing:
        raise EvalkitError(f"{Path(path) / 'manifest.json'} lacks {', '.join(missing)}; it cannot be resumed: "
                           "delete the run and rerun it")


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest.json of the run directory ``path``."""
    file = Path(path) / "manifest.json"
    manifest = load_json(file, "run manifest")
    if not isinstance(manifest, dict):
        raise EvalkitError(f"{file} is not an evalkit manifest (not a JSON object)")
    if "run_id" not in manifest:
        raise EvalkitError(f"{file} is not an evalkit manifest (no run_id)")
    problem = _typed_problem(manifest)
    if problem:
        raise EvalkitError(f"{file} is damaged: {problem}; delete the run and rerun it")
    return manifest


def records_hash(rows: Iterable[tuple]) -> str:
    """sha256 of the index rows (prompt_index, sample, seed, file, prompt, category, extra), as the manifest keeps
    it: independent of CSV quoting and of any extra columns."""
    canonical = json.dumps([list(row) for row in rows], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _int_cell(row: dict[str, str], column: str, where: str, minimum: int = 0) -> int:
    text = row[column]
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum or not text.strip().lstrip("-").isdigit():
        raise EvalkitError(f"{where}: {column} must be an integer >= {minimum}, got {str(text)[:40]!r}")
    return value


def parse_index(path: Path, text: str, columns: list[str], manifest: dict[str, Any],
                expected_file) -> list[tuple[tuple, dict[str, str]]]:
    """The rows of index.csv's ``text`` (see the module docstring for the checks), each as (the values of
    ``columns``, parsed; all its cells by column name); ``expected_file(prompt_index, sample)`` is the one name
    an image may have."""
    if "\x00" in text:
        raise EvalkitError(f"{path} is damaged (a NUL byte); delete the run and rerun it")
    if len(text) + 1 > csv.field_size_limit():
        csv.field_size_limit(len(text) + 1)  # prompts of any length (see evalkit.benchmarks.files)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise EvalkitError(f"{path} is empty; delete the run and rerun it")
        missing = [c for c in columns if c not in header]
        if missing:
            raise EvalkitError(f"{path} lacks the column(s) {', '.join(missing)}; delete the run and rerun it")
        rows, seen = [], {}
        for fields in reader:
            where = f"{path}, line {reader.line_num}"
            if len(fields) != len(header):
                raise EvalkitError(f"{where}: expected {len(header)} fields, found {len(fields)}")
            cells = dict(zip(header, fields))
            rows.append((_index_row(cells, where, manifest, expected_file, seen, reader.line_num), cells))
    except csv.Error as error:
        raise EvalkitError(f"{path}, line {reader.line_num}: malformed CSV ({error}); delete the run and "
                           "rerun it") from None
    if "n_images" in manifest and len(rows) != manifest["n_images"]:
        raise EvalkitError(f"{path} lists {len(rows)} images, the manifest {manifest['n_images']}; the index is "
                           "damaged: delete the run and rerun it")
    if "records_hash" in manifest and records_hash(row for row, _ in rows) != manifest["records_hash"]:
        raise EvalkitError(f"{path} does not match its manifest (rows were edited, or the file is from another run); "
                           "delete the run and rerun it")
    return rows


def record_key(record) -> tuple:
    """An ImageRecord's planned fields in index order: what ``records_hash`` covers (not its sha256)."""
    return (record.prompt_index, record.sample, record.seed, record.file, record.prompt, record.category,
            record.extra)


def _index_row(row: dict[str, str], where: str, manifest: dict[str, Any], expected_file, seen: dict,
               line: int) -> tuple:
    prompt_index = _int_cell(row, "prompt_index", where)
    sample = _int_cell(row, "sample", where)
    seed = _int_cell(row, "seed", where)
    if sample >= manifest.get("images_per_prompt", sample + 1):
        raise EvalkitError(f"{where}: sample {sample}, but the run makes {manifest['images_per_prompt']} per prompt")
    key = (prompt_index, sample)
    if key in seen:
        raise EvalkitError(f"{where}: image {key} is listed twice (first at line {seen[key]})")
    seen[key] = line
    expected = expected_file(prompt_index, sample)
    if row["file"] != expected:
        raise EvalkitError(f"{where}: file {row['file'][:80]!r} is not this image's place in the run ({expected}); "
                           "refusing to read it")
    try:
        extra = json.loads(row["extra"] or "{}")
    except (ValueError, RecursionError):
        raise EvalkitError(f"{where}: extra is not JSON") from None
    if not isinstance(extra, dict):
        raise EvalkitError(f"{where}: extra must be a JSON object")
    return (prompt_index, sample, seed, row["file"], row["prompt"], row["category"], extra)


def check_image_file(run_path: Path, relative: str) -> bool:
    """Whether the run holds this image as a regular file of its own; a symbolic link (in or to images/) is
    refused: it would make a command read or overwrite something outside the run."""
    image = Path(run_path) / relative
    for part in (image.parent, image):
        if part.is_symlink():
            raise EvalkitError(f"{part} is a symbolic link; a run's images are files it wrote itself: delete the run "
                               "and rerun it")
    return image.is_file()
