"""Adapter discovery through the ``evalkit.adapters`` entry-point group.

Built-in adapters are declared in evalkit's own pyproject, so third-party packages register exactly the same way.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from evalkit.adapters.base import Adapter, AdapterOptions
from evalkit.errors import EvalkitError

GROUP = "evalkit.adapters"


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_adapters() -> list[str]:
    return sorted(_entry_points())


def create_adapter(name: str, options: AdapterOptions) -> Adapter:
    found = _entry_points()
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is evalkit installed with `pip install -e .`?)"
        raise EvalkitError(f"unknown model {name!r}; known models: {known}")
    try:
        factory = found[name].load()
    except ImportError as error:
        raise EvalkitError(f"model {name!r} cannot be loaded: {error} (is its package installed?)") from None
    return factory(options)
