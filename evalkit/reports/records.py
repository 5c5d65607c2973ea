"""A run's metrics.json read into typed records: the one way the gate and the comparison read numbers.

``read_metrics(path)`` takes a run directory (its ``metrics.json``) or the file itself. Anything that is not a
metrics.json of schema version 1 is a one-line ``EvalkitError`` naming the file and the offending field; the full
JSON Schema (evalkit/metrics/schema.json) is checked as well when ``jsonschema`` is installed.

A ``StatRecord`` keeps what a comparison needs of one stat: its metric family and direction, the overall
``Estimate``, the comparability key and, when the stat was scored with a bootstrap over prompts, the replicates
(``details.bootstrap``: unit, resamples, seed, prompts_hash, replicates). The baseline file stores stats in the
same JSON shape (``StatRecord.to_json``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from evalkit.errors import EvalkitError
from evalkit.estimate import Estimate
from evalkit.metrics.metrics_file import METRICS_FILE, SCHEMA_VERSION


@dataclass(frozen=True)
class Bootstrap:
    """Bootstrap replicates over prompts (evalkit.metrics.bootstrap.prompt_resamples): replicate i of two runs
    with the same prompts_hash, seed and resamples was computed on the same resampled prompts."""

    unit: str
    resamples: int
    seed: int
    prompts_hash: str
    replicates: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "resamples": self.resamples, "seed": self.seed,
                "prompts_hash": self.prompts_hash, "replicates": list(self.replicates)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Bootstrap | None":
        """The replicates of ``details.bootstrap``; None when the stat has none (no bootstrap, or an empty block)."""
        if not data:
            return None
        if not isinstance(data, dict):
            raise EvalkitError(f"{where}: bootstrap must be an object")
        if not data.get("replicates"):
            return None
        missing = [k for k in ("unit", "resamples", "seed", "prompts_hash", "replicates") if k not in data]
        if missing:
            raise EvalkitError(f"{where}: bootstrap lacks {', '.join(missing)}")
        replicates = data["replicates"]
        if not isinstance(replicates, list) or not all(_is_number(r) for r in replicates):
            raise EvalkitError(f"{where}: bootstrap replicates must be a list of finite numbers")
        if not all(isinstance(data[k], int) and not isinstance(data[k], bool) for k in ("resamples", "seed")):
            raise EvalkitError(f"{where}: bootstrap resamples and seed must be integers")
        if len(replicates) != data["resamples"]:
            raise EvalkitError(f"{where}: {len(replicates)} bootstrap replicates, but resamples says "
                               f"{data['resamples']}")
        return cls(str(data["unit"]), data["resamples"], data["seed"], str(data["prompts_hash"]),
                   tuple(float(r) for r in replicates))


@dataclass(frozen=True)
class StatRecord:
    name: str
    metric: str
    higher_is_better: bool
    overall: Estimate
    key: dict[str, Any]
    bootstrap: Bootstrap | None = None

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "higher_is_better": self.higher_is_better, "overall": self.overall.to_json(),
                "key": self.key, "bootstrap": None if self.bootstrap is None else self.bootstrap.to_json()}

    @classmethod
    def from_json(cls, name: str, data: Any, where: str, bootstrap: Any = None) -> "StatRecord":
        """One stat of a metrics.json (``bootstrap`` from its details) or of a baseline file (its own field)."""
        where = f"{where}: stat {name!r}"
        if not isinstance(data, dict):
            raise EvalkitError(f"{where} is not an object")
        missing = [k for k in ("metric", "higher_is_better", "overall", "key") if k not in data]
        if missing:
            raise EvalkitError(f"{where} lacks {', '.join(missing)}")
        if not isinstance(data["higher_is_better"], bool):
            raise EvalkitError(f"{where}: higher_is_better must be true or false")
        if not isinstance(data["key"], dict):
            raise EvalkitError(f"{where}: key must be an object")
        return cls(name, str(data["metric"]), data["higher_is_better"], _estimate(data["overall"], where),
                   data["key"], Bootstrap.from_json(bootstrap, where))


@dataclass(frozen=True)
class RunMetrics:
    """The stats of one run's metrics.json, with where they came from."""

    path: Path  # the metrics.json read
    run_id: str | None
    generated: dict[str, Any]
    stats: dict[str, StatRecord]

    @property
    def label(self) -> str:
        return self.run_id or str(self.generated.get("id") or self.path.parent.name)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _estimate(data: Any, where: str) -> Estimate:
    if not isinstance(data, dict) or any(k not in data for k in ("value", "low", "high", "n", "method")):
        raise EvalkitError(f"{where}: overall must be an Estimate (value, low, high, n, method)")
    for field in ("value", "low", "high"):
        if data[field] is not None and not _is_number(data[field]):
            raise EvalkitError(f"{where}: overall.{field} must be a finite number or null, got {data[field]!r}")
    try:
        return Estimate.from_json(data)
    except (TypeError, ValueError) as error:
        raise EvalkitError(f"{where}: {error}") from None


def metrics_path(run: str | Path) -> Path:
    """``RUN/metrics.json`` for a directory, the path itself for a file."""
    path = Path(run)
    if path.is_dir():
        found = path / METRICS_FILE
        if not found.is_file():
            raise EvalkitError(f"{path} has no {METRICS_FILE}: score it first (evalkit score {path} ...)")
        return found
    if not path.is_file():
        raise EvalkitError(f"{path} does not exist (expected a run directory or its {METRICS_FILE})")
    return path


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise EvalkitError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise EvalkitError(f"{what} {path} is not valid JSON ({error})") from None
    except RecursionError:
        raise EvalkitError(f"{what} {path} is not valid JSON (nested too deeply)") from None


def _schema_check(document: Mapping[str, Any], path: Path) -> None:
    try:
        import jsonschema
    except ImportError:
        return  # a test dependency; the structural checks below still hold every field read here
    from evalkit.metrics.metrics_file import schema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(document))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "the top level"
        raise EvalkitError(f"{path} is not a valid metrics.json: at {where}: {error.message}")


def read_metrics(run: str | Path) -> RunMetrics:
    """A run directory's (or a file's) metrics.json, checked and read into records."""
    path = metrics_path(run)
    return parse_metrics(read_json(path, "metrics file"), path)


def parse_metrics(document: Any, path: Path, check_schema: bool = True) -> RunMetrics:
    """A metrics.json document already loaded (``path`` names it in errors)."""
    if not isinstance(document, dict):
        raise EvalkitError(f"{path} is not a metrics.json object")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise EvalkitError(f"{path} has schema version {version!r}; this evalkit reads {SCHEMA_VERSION} "
                           f"(rescore the run with this evalkit)")
    if check_schema:
        _schema_check(document, path)
    stats = document.get("metrics")
    if not isinstance(stats, dict):
        raise EvalkitError(f"{path}: 'metrics' must be an object of stats")
    records = {}
    for name, stat in stats.items():
        details = stat.get("details") if isinstance(stat, dict) else None
        bootstrap = details.get("bootstrap") if isinstance(details, dict) else None
        records[name] = StatRecord.from_json(name, stat, str(path), bootstrap)
    run_block = document.get("run") if isinstance(document.get("run"), dict) else {}
    generated = document.get("generated") if isinstance(document.get("generated"), dict) else {}
    return RunMetrics(path, run_block.get("run_id"), generated, records)
