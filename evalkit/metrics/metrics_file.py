"""metrics.json: the versioned file every later stage (reports, the regression gate) reads, and nothing else.

    {"schema_version": 1, "evalkit_version": ..., "generated": side identity, "run": {...} | null,
     "generation": seconds per image | null, "warnings": [...],
     "metrics": {STAT: {"metric": family, "higher_is_better": bool, "overall": Estimate,
                        "groups": {"category": {label: Estimate}, "challenge": {...}},
                        "key": comparability key, "options": {...}, "details": {...},
                        "computed_at": ..., "versions": {...}}}}

The comparability key of a number holds everything that must match before two such numbers may be compared:
benchmark name + content hash, images and images per prompt, extractor + weights sha256 + preprocessing (the
resize mode), reference set id + hash, the metric's options and the evalkit version. The JSON Schema is
``schema.json`` beside this module (shipped in the package); every file written here is checked against it when
``jsonschema`` is installed, and the tests always check.
"""

from __future__ import annotations

import json
import time
from importlib import metadata, resources
from typing import Any

from evalkit import __version__
from evalkit.errors import EvalkitError

SCHEMA_VERSION = 1
METRICS_FILE = "metrics.json"
_LIBRARIES = ("torch", "torchmetrics", "torch-fidelity", "open_clip_torch", "numpy", "scipy", "pillow")


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def schema() -> dict[str, Any]:
    return json.loads(resources.files("evalkit.metrics").joinpath("schema.json").read_text(encoding="utf-8"))


def validate(document: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``document`` does not follow the schema."""
    import jsonschema

    jsonschema.validate(document, schema())


def _run_block(side) -> dict[str, Any] | None:
    if side.run is None:
        return None
    manifest = side.run.manifest
    bench = manifest.get("benchmark", {})
    return {"run_id": side.run.run_id, "benchmark": {"name": bench.get("name"), "content_hash": bench.get("content_hash")},
            "images_per_prompt": manifest.get("images_per_prompt"), "n_prompts": bench.get("prompts"),
            "n_images": len(side.paths), "n_planned": manifest.get("n_images"),
            "adapter": (manifest.get("adapter") or {}).get("name")}


def _generation_block(side) -> dict[str, Any] | None:
    if side.run is None:
        return None
    from evalkit.runs.efficiency import generation_efficiency

    timings = side.run.generation_timings()
    return generation_efficiency(timings) if timings else None


def _key(run_block, generated, reference, metric, stat, options) -> dict[str, Any]:
    extractor = stat.extractor
    return {
        "benchmark": run_block["benchmark"] if run_block else None,
        "n_images": generated.n,
        "images_per_prompt": run_block["images_per_prompt"] if run_block else None,
        "extractor": None if extractor is None else {
            "name": extractor["extractor"], "weights_sha256": extractor.get("weights_sha256"),
            "preprocessing": extractor.get("preprocessing", {})},
        "reference": reference.identity() if reference is not None and metric.needs.reference else None,
        "options": options,
        "evalkit_version": __version__,
    }


def _group_json(groups) -> dict[str, dict[str, Any]]:
    return {name: {label: est.to_json() for label, est in found.items()} for name, found in groups.items()}


def build(generated, reference, results, warnings: list[str]) -> dict[str, Any]:
    """The metrics.json document for ``results`` = [(metric, options, [Stat, ...]), ...]."""
    run_block = _run_block(generated)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    versions = library_versions()
    stats: dict[str, Any] = {}
    for metric, options, found in results:
        for stat in found:
            stats[stat.name] = {
                "metric": metric.name, "higher_is_better": bool(metric.higher_is_better),
                "overall": stat.overall.to_json(), "groups": _group_json(stat.groups),
                "key": _key(run_block, generated, reference, metric, stat, options), "options": options,
                "details": stat.details, "computed_at": stamp, "versions": versions,
            }
    return {"schema_version": SCHEMA_VERSION, "evalkit_version": __version__, "generated": generated.identity(),
            "run": run_block, "generation": _generation_block(generated), "metrics": stats,
            "warnings": list(warnings)}


def read(path) -> dict[str, Any] | None:
    """An existing metrics.json of this schema version; None when absent. Anything else (not JSON, another schema
    version, stats that are not objects) is a one-line error: a file that cannot be merged is never replaced."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise EvalkitError(f"{path} exists but is not JSON; move it away to rescore") from None
    if not isinstance(data, dict):
        raise EvalkitError(f"{path} is not a metrics.json object; move it away to rescore")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise EvalkitError(f"{path} has schema version {str(data.get('schema_version'))[:20]!r}, this evalkit writes "
                           f"{SCHEMA_VERSION}; move it away to rescore")
    stats = data.get("metrics", {})
    if not isinstance(stats, dict) or not all(isinstance(stat, dict) for stat in stats.values()):
        raise EvalkitError(f"{path}: 'metrics' is not an object of stats; move it away to rescore")
    try:
        import jsonschema
    except ImportError:
        return data  # jsonschema is a test dependency; the structural checks above still hold what merging reads
    try:
        validate(data)
    except jsonschema.ValidationError as error:
        raise EvalkitError(f"{path} is not a valid metrics.json ({error.message[:120]}); move it away to rescore") \
            from None
    return data


def merge_and_write(run, document: dict[str, Any]) -> dict[str, Any]:
    """Merge ``document`` into the run's metrics.json (new stats replace same-named ones) and write it atomically.
    A file of another schema version, or not valid, is an error (read): never replaced, never half-merged."""
    path = run.path / METRICS_FILE
    existing = read(path)
    if existing is not None:
        kept = {k: v for k, v in existing.get("metrics", {}).items() if k not in document["metrics"]}
        document = {**document, "metrics": {**kept, **document["metrics"]}}
    try:
        validate(document)
    except ImportError:
        pass  # jsonschema is a test dependency; the tests validate every file written
    run.write_json(METRICS_FILE, document)
    return document
