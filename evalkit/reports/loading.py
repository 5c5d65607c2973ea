"""The runs a report is made from: each run directory's manifest, index rows and scored metrics, read once.

``load_runs(paths)`` opens every path with the run store (evalkit.runs.store.open_run: manifest.json and
index.csv) and its metrics.json with evalkit.reports.records (the schema-checked ``RunMetrics``). A report shows
numbers, so an unscored run is an error unless ``allow_unscored`` (then ``metrics`` is None and only its images and
provenance are shown). Every problem is a one-line ``EvalkitError`` naming the path: a missing directory, a
directory that is not a run, a run without metrics.json, an invalid metrics.json, or a metrics.json that belongs
to another run (its ``run.run_id`` is not the manifest's).

Besides what ``RunMetrics`` keeps, a report needs two more parts of the same metrics.json document: each stat's
per-group Estimates (``groups``: {"category": {label: Estimate}, "challenge": {...}}) and the ``generation``
block (seconds per image). They are read here from the document ``parse_metrics`` checked, not from a second read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.errors import EvalkitError
from evalkit.estimate import Estimate
from evalkit.reports.records import RunMetrics, metrics_path, parse_metrics, read_json
from evalkit.reports.run_labels import label_runs
from evalkit.runs.store import ImageRecord, Run, open_run

Groups = dict[str, dict[str, dict[str, Estimate]]]  # stat -> group kind -> label -> Estimate


@dataclass(frozen=True)
class ReportRun:
    path: Path
    manifest: dict[str, Any]
    records: tuple[ImageRecord, ...]  # index.csv rows, in generation order
    metrics: RunMetrics | None  # None only when loaded with allow_unscored
    groups: Groups = field(default_factory=dict)
    generation: dict[str, Any] | None = None  # metrics.json's "generation" block, else from generation.jsonl
    label: str = ""  # unique among the report's runs: what tells it apart (evalkit.reports.run_labels)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id"))

    @property
    def benchmark(self) -> str:
        return str((self.manifest.get("benchmark") or {}).get("name") or "unknown")

    def image_path(self, record: ImageRecord) -> Path:
        return self.path / record.file


def _estimate(data: Any, where: str) -> Estimate:
    try:
        return Estimate.from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        raise EvalkitError(f"{where} is not an Estimate ({error})") from None


def _groups(document: dict[str, Any], path: Path) -> Groups:
    out: Groups = {}
    for stat, body in (document.get("metrics") or {}).items():
        groups = body.get("groups") if isinstance(body, dict) else None
        if not groups:
            continue
        if not isinstance(groups, dict):
            raise EvalkitError(f"{path}: stat {stat!r}: groups must be an object")
        kinds: dict[str, dict[str, Estimate]] = {}
        for kind, labels in groups.items():
            if not isinstance(labels, dict):
                raise EvalkitError(f"{path}: stat {stat!r}: groups.{kind} must be an object of Estimates")
            kinds[str(kind)] = {str(label): _estimate(est, f"{path}: stat {stat!r}: groups.{kind}.{label}")
                                for label, est in labels.items()}
        out[stat] = kinds
    return out


def _generation(document: dict[str, Any] | None, run: Run) -> dict[str, Any] | None:
    block = document.get("generation") if document else None
    if isinstance(block, dict):
        return block
    from evalkit.runs.efficiency import generation_efficiency

    timings = run.generation_timings()  # an unscored run (or one scored before the block existed)
    return generation_efficiency(timings) if timings else None


def load_run(path: str | Path, allow_unscored: bool = False) -> ReportRun:
    """One run directory, read and checked (see the module docstring)."""
    run = open_run(path)
    records = tuple(run.records())
    document: dict[str, Any] | None = None
    metrics = None
    found = run.path / "metrics.json"
    if found.is_file() or not allow_unscored:
        file = metrics_path(run.path)  # the one-line "score it first" error when absent
        document = read_json(file, "metrics file")
        metrics = parse_metrics(document, file)
        if metrics.run_id is not None and metrics.run_id != run.run_id:
            raise EvalkitError(f"{file} belongs to run {metrics.run_id}, not to {run.run_id} (copied from another "
                               f"run?); rescore the run")
    return ReportRun(run.path, dict(run.manifest), records, metrics,
                     _groups(document, found) if document else {}, _generation(document, run))


def load_runs(paths: Sequence[str | Path], allow_unscored: bool = False,
              labels: Mapping[str, str] | None = None) -> list[ReportRun]:
    """The runs of a report, in the order given, each labelled (evalkit.reports.run_labels: what tells it apart
    from the others, or ``labels``' {run directory or run id: label}); the same directory twice is an error."""
    if not paths:
        raise EvalkitError("a report needs at least one run directory")
    seen: dict[Path, str] = {}
    runs = []
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise EvalkitError(f"run {path} is given twice (as {seen[resolved]} too)")
        seen[resolved] = str(path)
        runs.append(load_run(path, allow_unscored))
    names = label_runs([run.manifest for run in runs], [str(p) for p in paths], labels)
    return [replace(run, label=name) for run, name in zip(runs, names)]
