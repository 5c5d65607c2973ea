"""Short run labels: what tells each run of a report apart from the others, used in every table header, chart
legend and grid column in place of the run id.

A run's settings are its manifest's benchmark (name and prompts), seed, images per prompt and size, and its
adapter config flattened to dotted paths the way sweeps do it (``evalkit.reports.sweeps.run_settings``: the
checkpoint hash stands for where the weights were found). A label names only the settings that differ among the
runs, each as ``name=value`` (``name: absent`` where a run's config lacks it), ``name`` being the shortest dotted
suffix that no other setting of these runs ends with (``base.steps``, as ``sampling.sr1.steps`` exists too):

- runs of different adapters: the adapter name first; config fields are compared only among runs of one adapter;
- a value that a strict majority of three or more runs share is left out of those runs' labels, so a run changed
  in one setting reads ``base.steps=4``; the run that holds every shared value (and is not the only run of its
  adapter) is labelled by those values;
- the checkpoint is left out of a label that names another config field (the hash tells a reader nothing new),
  string values are cut to their last path part and 32 characters, and three settings at most are named;
- nothing differs (one run, or runs of the same settings): the run id; two equal labels get their run ids'
  last part (``... #315b59b36d49``), and equal run ids a number.

Labels depend on the runs' manifests alone, not on their order. ``label_runs`` applies explicit labels
(``--label RUN=TEXT``) over the derived ones and refuses two runs with one label.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.errors import EvalkitError
from evalkit.reports.sweeps import ABSENT, run_settings, value_text

MAX_PARTS = 3
MAX_VALUE = 32


def meta_settings(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest facts besides the adapter config that set what a run made."""
    bench = manifest.get("benchmark") or {}
    size = f"{manifest.get('width')}x{manifest.get('height')}" if manifest.get("width") else None
    return {"benchmark": bench.get("name"), "prompts": bench.get("prompts"), "seed": manifest.get("seed"),
            "images per prompt": manifest.get("images_per_prompt"), "size": size}


def _canonical(value: Any) -> str:
    return "\0absent" if value is ABSENT else json.dumps(value, sort_keys=True, default=str)


def _adapter(manifest: Mapping[str, Any]) -> str:
    return str((manifest.get("adapter") or {}).get("name") or "?")


def short_names(fields: Sequence[str]) -> dict[str, str]:
    """Each dotted path's shortest suffix (whole dotted parts) that no other path of ``fields`` ends with."""
    out = {}
    for name in fields:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            suffix = ".".join(parts[-k:])
            if not any(other != name and (other == suffix or other.endswith("." + suffix)) for other in fields):
                out[name] = suffix
                break
        else:
            out[name] = name
    return out


def _value(field: str, value: Any) -> str:
    if field == "checkpoint":
        return str(value)[:8]
    if isinstance(value, list):
        return value_text(value[0], field, {}) if len(value) == 1 else "[" + ",".join(map(str, value)) + "]"
    text = value_text(value, field, {})
    if isinstance(value, str) and "/" in text.rstrip("/"):
        text = "\u2026/" + text.rstrip("/").rpartition("/")[2]
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "\u2026"


def part(name: str, field: str, value: Any) -> str:
    return f"{name}: absent" if value is ABSENT else f"{name}={_value(field, value)}"


def differing(settings: Sequence[Mapping[str, Any]]) -> list[str]:
    """The fields whose value (absent included) is not the same in every one of ``settings``, sorted."""
    fields = sorted({f for s in settings for f in s})
    return [f for f in fields if len({_canonical(s.get(f, ABSENT)) for s in settings}) > 1]


def _deviations(settings: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[list[str]]:
    """Per run, the fields of ``fields`` where it does not hold a value shared by a strict majority."""
    out: list[list[str]] = [[] for _ in settings]
    for field in fields:
        counts = Counter(_canonical(s.get(field, ABSENT)) for s in settings)
        common, count = counts.most_common(1)[0]
        shared = common if count * 2 > len(settings) else None
        for i, s in enumerate(settings):
            if _canonical(s.get(field, ABSENT)) != shared:
                out[i].append(field)
    return out


def _parts(settings: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> list[tuple[list[str], list[str]]]:
    """Per run, (the parts of the settings where it departs from a shared value, the parts of every setting that
    differs): a run with no departure anywhere is labelled by the second."""
    fields = differing(settings)
    return [([part(names.get(f, f), f, found.get(f, ABSENT)) for f in deviations],
             [part(names.get(f, f), f, found.get(f, ABSENT)) for f in fields])
            for found, deviations in zip(settings, _deviations(settings, fields))]


def _config_parts(manifests: Sequence[Mapping[str, Any]]) -> list[tuple[list[str], list[str]]]:
    """``_parts`` of the adapter configs, compared among the runs of one adapter."""
    out: list[tuple[list[str], list[str]]] = [([], []) for _ in manifests]
    by_adapter: dict[str, list[int]] = {}
    for i, manifest in enumerate(manifests):
        by_adapter.setdefault(_adapter(manifest), []).append(i)
    for members in by_adapter.values():
        settings = [run_settings(manifests[i]) for i in members]
        names = short_names(sorted({f for s in settings for f in s}))
        for i, parts in zip(members, _parts(settings, names)):
            out[i] = parts
    return out


def _without_checkpoint(parts: list[str]) -> list[str]:
    """The checkpoint hash is left out beside another config field: it tells a reader nothing more."""
    config = [p for p in parts if not p.startswith(("checkpoint=", "checkpoint:"))]
    return config if len(config) < len(parts) and len(config) > 0 else parts


def _joined(parts: Sequence[str]) -> str:
    if len(parts) > MAX_PARTS:
        parts = [*parts[:MAX_PARTS], f"+{len(parts) - MAX_PARTS} more"]
    return ", ".join(parts)


def _unique(labels: list[str], run_ids: Sequence[str]) -> list[str]:
    counts = Counter(labels)
    labels = [f"{label} #{run_id.rpartition('-')[2]}" if counts[label] > 1 and label != run_id else label
              for label, run_id in zip(labels, run_ids)]
    seen: Counter = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def derive_labels(manifests: Sequence[Mapping[str, Any]]) -> list[str]:
    """One unique label per manifest (see the module docstring)."""
    run_ids = [str(m.get("run_id") or "run") for m in manifests]
    adapters = [_adapter(m) for m in manifests]
    several = len(set(adapters)) > 1
    meta = _parts([meta_settings(m) for m in manifests], {})
    config = _config_parts(manifests)
    labels = []
    for run_id, adapter, (meta_own, meta_all), (config_own, config_all) in zip(run_ids, adapters, meta, config):
        if meta_own or config_own or (several and adapters.count(adapter) == 1):  # its adapter tells it apart
            parts = [*meta_own, *_without_checkpoint(config_own)]
        else:
            parts = [*meta_all, *_without_checkpoint(config_all)]
        text = _joined(parts)
        if several:
            text = f"{adapter}, {text}" if text else adapter
        labels.append(text or run_id)
    return _unique(labels, run_ids)


def differences(manifests: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per run, every setting that differs among the runs of its adapter (and the manifest facts that differ
    among all runs), with its full name: the Runs table's "differs" column."""
    meta_all = [meta_settings(m) for m in manifests]
    meta_fields = differing(meta_all)
    out = []
    for manifest, meta in zip(manifests, meta_all):
        peers = [run_settings(m) for m in manifests if _adapter(m) == _adapter(manifest)]
        own = run_settings(manifest)
        parts = [part(f, f, meta.get(f, ABSENT)) for f in meta_fields]
        parts += [part(f, f, own.get(f, ABSENT)) for f in differing(peers)]
        out.append("; ".join(parts) or "nothing")
    return out


def _match(key: str, paths: Sequence[Path], given: Sequence[str], run_ids: Sequence[str]) -> int:
    """The index of the run ``key`` names: the path as given, the same directory, or the run id."""
    by_path = [i for i, (path, text) in enumerate(zip(paths, given)) if key == text or Path(key).resolve() == path]
    found = by_path or [i for i, run_id in enumerate(run_ids) if run_id == key]
    if not found:
        raise EvalkitError(f"--label {key}=...: {key} is none of the report's runs (give its directory or run id)")
    if len(found) > 1:
        raise EvalkitError(f"--label {key}=...: run id {key} names {len(found)} runs; give the run directory")
    return found[0]


def label_runs(manifests: Sequence[Mapping[str, Any]], given: Sequence[str],
               explicit: Mapping[str, str] | None = None) -> list[str]:
    """Derived labels with ``explicit`` ({run directory or run id: label}) applied over them; unique."""
    labels = derive_labels(manifests)
    run_ids = [str(m.get("run_id")) for m in manifests]
    paths = [Path(p).resolve() for p in given]
    named: dict[int, str] = {}
    for key, text in (explicit or {}).items():
        index = _match(str(key), paths, [str(p) for p in given], run_ids)
        text = " ".join(str(text).split())
        if not text:
            raise EvalkitError(f"--label {key}=: a label must not be empty")
        if index in named:
            raise EvalkitError(f"--label: run {given[index]} is labelled twice ({named[index]!r}, {text!r})")
        named[index] = text
    for index, text in named.items():
        labels[index] = text
    counts = Counter(labels)
    clash = next((label for label in labels if counts[label] > 1), None)
    if clash is not None:
        which = ", ".join(str(given[i]) for i, label in enumerate(labels) if label == clash)
        raise EvalkitError(f"--label: {clash!r} would label more than one run ({which}); choose another")
    return labels
