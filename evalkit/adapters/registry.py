"""Adapter discovery through the ``evalkit.adapters`` entry-point group.

Built-in adapters are declared in evalkit's own pyproject, so third-party packages register exactly the same way.
"""

from __future__ import annotations

from evalkit import plugins
from evalkit.adapters.base import Adapter, AdapterOptions

GROUP = "evalkit.adapters"


def available_adapters() -> list[str]:
    return plugins.names(GROUP)


def create_adapter(name: str, options: AdapterOptions) -> Adapter:
    return plugins.load(GROUP, name, "model")(options)
