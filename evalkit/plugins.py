"""One way every kind of plug-in enters evalkit: an entry point in a named group (``evalkit.adapters``,
``evalkit.metrics``, ``evalkit.extractors``). evalkit's own built-ins are declared in its pyproject the same way, so
a third-party package is found exactly like them. Loading failures are one-line ``EvalkitError``s."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from evalkit.errors import EvalkitError

NOT_INSTALLED = "none (is evalkit installed with `pip install -e .`?)"


def names(group: str) -> list[str]:
    return sorted(ep.name for ep in entry_points(group=group))


def load(group: str, name: str, kind: str) -> Any:
    """The object entry point ``name`` of ``group`` refers to; ``kind`` names it in errors ("model", "metric")."""
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        raise EvalkitError(f"unknown {kind} {name!r}; known: {', '.join(sorted(found)) or NOT_INSTALLED}")
    try:
        return found[name].load()
    except (ImportError, AttributeError) as error:
        raise EvalkitError(f"{kind} {name!r} cannot be loaded: {error} (is its package installed?)") from None
