"""Run directories on disk.

    <run>/manifest.json        spec, benchmark + adapter provenance, versions, status, timestamps
    <run>/index.csv            one row per planned image: prompt_index, sample, seed, file, prompt, category, extra
    <run>/images/PPPPP_SS.png  prompt row index (5 digits) and sample number (2 digits)
    <run>/metrics.json         written later by `evalkit score`

Every file is written atomically, so after a crash a file is either absent or complete; resuming means
generating exactly the images whose files are absent.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from evalkit import atomic
from evalkit.errors import EvalkitError
from evalkit.images import image_file_name

MANIFEST = "manifest.json"
INDEX = "index.csv"
IMAGES = "images"
INDEX_COLUMNS = ["prompt_index", "sample", "seed", "file", "prompt", "category", "extra"]


@dataclass(frozen=True)
class ImageRecord:
    prompt_index: int
    sample: int
    seed: int
    file: str  # relative to the run directory
    prompt: str
    category: str
    extra: dict[str, Any] = field(default_factory=dict)


def image_file(prompt_index: int, sample: int) -> str:
    """Where a run keeps an image, relative to the run directory: images/PPPPP_SS.png."""
    return f"{IMAGES}/{image_file_name(prompt_index, sample)}"


def _index_csv(records: Iterable[ImageRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for r in records:
        writer.writerow(
            [r.prompt_index, r.sample, r.seed, r.file, r.prompt, r.category, json.dumps(r.extra, ensure_ascii=False)]
        )
    return buffer.getvalue()


class Run:
    """An existing run directory. Use ``open_run`` to open one, ``Run.create`` to start one."""

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def benchmark(self) -> str:
        return self.manifest["benchmark"]["name"]

    @classmethod
    def create(cls, path: Path, manifest: dict[str, Any], records: list[ImageRecord]) -> "Run":
        path = Path(path)
        try:
            (path / IMAGES).mkdir(parents=True, exist_ok=True)
            atomic.write_text(path / INDEX, _index_csv(records))
            atomic.write_json(path / MANIFEST, manifest)
        except OSError as error:
            raise EvalkitError(f"cannot write run directory {path}: {error.strerror or error}") from None
        return cls(path, manifest)

    def records(self) -> list[ImageRecord]:
        """All planned images, in generation order (whether or not their file exists yet)."""
        try:
            text = (self.path / INDEX).read_text(encoding="utf-8")
        except OSError as error:
            raise EvalkitError(f"{self.path}: cannot read {INDEX}: {error.strerror or error}") from None
        rows = list(csv.DictReader(io.StringIO(text)))
        try:
            return [
                ImageRecord(
                    prompt_index=int(row["prompt_index"]),
                    sample=int(row["sample"]),
                    seed=int(row["seed"]),
                    file=row["file"],
                    prompt=row["prompt"],
                    category=row["category"],
                    extra=json.loads(row["extra"] or "{}"),
                )
                for row in rows
            ]
        except (KeyError, ValueError, TypeError) as error:
            raise EvalkitError(f"{self.path / INDEX} is malformed ({error}); delete the run and rerun it") from None

    def completed_records(self) -> list[ImageRecord]:
        """The planned images whose file exists (complete, thanks to atomic writes)."""
        return [r for r in self.records() if (self.path / r.file).is_file()]

    def image_path(self, record: ImageRecord) -> Path:
        return self.path / record.file

    def save_image(self, record: ImageRecord, image) -> None:
        atomic.save_image(self.path / record.file, image)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        atomic.write_json(self.path / MANIFEST, self.manifest)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a result file (metrics.json, ...) atomically into the run directory."""
        target = self.path / name
        atomic.write_json(target, obj)
        return target


def is_run_dir(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file() and (Path(path) / INDEX).is_file()


def open_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.exists():
        raise EvalkitError(f"run directory {path} does not exist")
    if not is_run_dir(path):
        raise EvalkitError(f"{path} is not an evalkit run (no {MANIFEST} and {INDEX})")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvalkitError(f"{path / MANIFEST} is unreadable or not JSON ({error})") from None
    if not isinstance(manifest, dict) or "run_id" not in manifest:
        raise EvalkitError(f"{path / MANIFEST} is not an evalkit manifest (no run_id)")
    return Run(path, manifest)


def list_runs(root: str | Path) -> list[Run]:
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for child in sorted(root.iterdir()):
        if is_run_dir(child):
            try:
                runs.append(open_run(child))
            except EvalkitError:
                continue
    return runs
