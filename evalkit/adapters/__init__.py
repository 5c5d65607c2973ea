"""Model adapters: anything that turns prompts + seeds into images."""

from evalkit.adapters.base import Adapter, AdapterOptions, GenerationBatch
from evalkit.adapters.registry import available_adapters, create_adapter

__all__ = ["Adapter", "AdapterOptions", "GenerationBatch", "available_adapters", "create_adapter"]
