"""Which fields of two comparability keys differ (metrics_file.py writes the key of every stat).

Two numbers are compared only when every field of their keys agrees: benchmark name and content hash, number of
images, images per prompt, extractor name, weights sha256 and every preprocessing setting (the resize mode among
them), the reference set's kind, content hash and size, and every metric option. A difference is reported as its
dotted field path (``extractor.preprocessing.resize``) with both values, so a refusal says exactly what differs.

Three kinds of field are not refusals:
  - options that change what is stored, not the value compared (``VALUE_NEUTRAL_OPTIONS``: per-group numbers,
    bootstrap replicates, per-image scores, the toy-world random-scenes baseline);
  - ``reference.id``, where the reference was found (a path or a run id): the content hash identifies it;
  - ``evalkit_version``: the gate exists to catch a change in evalkit's own code (a sampler, a metric) as much as
    in a model, so a new version is compared and the difference is reported as a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

VALUE_NEUTRAL_OPTIONS = frozenset({"groups", "bootstrap", "per_image", "baseline", "baseline_samples",
                                   "baseline_split"})
NOTED_FIELDS = frozenset({"evalkit_version", "reference.id"})
_MISSING = object()


@dataclass(frozen=True)
class KeyDifference:
    field: str  # dotted path inside the key
    first: Any
    second: Any

    @property
    def blocking(self) -> bool:
        """True when the two numbers must not be compared."""
        if self.field in NOTED_FIELDS:
            return False
        parts = self.field.split(".")
        return not (len(parts) == 2 and parts[0] == "options" and parts[1] in VALUE_NEUTRAL_OPTIONS)

    def describe(self, first_label: str = "baseline", second_label: str = "run") -> str:
        return (f"{self.field} differs: {_short(self.first)} ({first_label}) vs {_short(self.second)} "
                f"({second_label})")


def _short(value: Any) -> str:
    if value is _MISSING:
        return "absent"
    text = "none" if value is None else str(value)
    return text if len(text) <= 24 else text[:20] + "..."


def _walk(first: Any, second: Any, prefix: str, out: list[KeyDifference]) -> None:
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        for name in sorted(set(first) | set(second), key=str):
            field = f"{prefix}.{name}" if prefix else str(name)
            _walk(first.get(name, _MISSING), second.get(name, _MISSING), field, out)
    elif first != second or (type(first) is not type(second) and not _both_numbers(first, second)):
        out.append(KeyDifference(prefix or "key", first, second))


def _both_numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))


def key_differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[KeyDifference]:
    """Every leaf field that differs between two keys, in field order (blocking or not)."""
    out: list[KeyDifference] = []
    _walk(first, second, "", out)
    return out


def blocking_differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[KeyDifference]:
    return [d for d in key_differences(first, second) if d.blocking]


def noted_differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[KeyDifference]:
    """Differences worth a note but no refusal (evalkit version, where the reference was found)."""
    return [d for d in key_differences(first, second) if d.field in NOTED_FIELDS]
