"""The adapter protocol: the one seam between evalkit and a model.

An adapter is built from ``AdapterOptions`` by a factory registered under the entry-point group
``evalkit.adapters`` (``name = "package.module:factory"``). Its ``generate`` gets a batch of prompts with one
seed per image and returns one PIL RGB image per prompt, in order. The same (prompt, seed, size, config) must give
the same image: evalkit derives seeds per (prompt, sample) and relies on this to resume and reproduce runs.
``config()`` is JSON-serialisable and goes into the run manifest, so it must name everything that changes images.
An adapter may also say where it computes images with a ``device`` attribute ("cpu", "cuda:0", ...); the run
records it beside each batch's generation time (``adapter_device``), and adapters without one are "unknown".
An adapter may also have an ``image_details()`` method: one JSON-serialisable dict per image of its last
``generate`` call (a hosted model's latency and cost, say), recorded with that batch (``adapter_image_details``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True)
class AdapterOptions:
    """What the CLI knows about the model to build; adapters read what they need and reject what is wrong."""

    model_path: str | None = None
    device: str = "cpu"
    extra: dict[str, str] = field(default_factory=dict)  # `--opt key=value`, adapter-specific


@dataclass(frozen=True)
class GenerationBatch:
    prompts: list[str]
    seeds: list[int]
    height: int
    width: int
    # (prompt_index, sample) of each image: lets adapters that look images up (folder, command) find them.
    keys: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if len(self.prompts) != len(self.seeds):
            raise ValueError("one seed per prompt is required")
        if self.keys is not None and len(self.keys) != len(self.prompts):
            raise ValueError("one key per prompt is required")


@runtime_checkable
class Adapter(Protocol):
    """What every adapter has. Optional, not part of the check: ``device: str``, where images are computed."""

    name: str
    default_size: tuple[int, int]  # (height, width) used when the user gives no --size

    def config(self) -> dict[str, Any]:
        """Everything that determines the images, JSON-serialisable; stored in the manifest."""

    def checkpoint_hash(self) -> str | None:
        """A content hash of the weights (or None when there are none), stored in the manifest."""

    def generate(self, batch: GenerationBatch) -> list[Image.Image]:
        """One RGB image of size (batch.width, batch.height) per prompt, in order."""


UNKNOWN_DEVICE = "unknown"


def adapter_device(adapter: Adapter) -> str:
    """The adapter's optional ``device`` (a non-empty string), else "unknown" (third-party adapters may not say)."""
    device = getattr(adapter, "device", None)
    return str(device) if isinstance(device, str) and device else UNKNOWN_DEVICE


def adapter_image_details(adapter: Adapter, count: int) -> list[dict[str, Any]] | None:
    """The optional ``image_details()`` of the batch the adapter just made, or None when it has no such method."""
    from evalkit.errors import EvalkitError

    method = getattr(adapter, "image_details", None)
    if not callable(method):
        return None
    details = method()
    if not isinstance(details, list) or len(details) != count or not all(isinstance(d, dict) for d in details):
        raise EvalkitError(f"model {adapter.name!r}: image_details() must return one dict per image of the batch")
    return details


TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError(text)


parse_bool.__name__ = "boolean (true/false)"  # read_option names the expected type by __name__

MAX_STEPS = 10_000  # sampler steps: more is a typo, and would run for days


def finite_float(text: str) -> float:
    """A number that is not nan or infinite (guidance weights, noise levels)."""
    import math

    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


finite_float.__name__ = "float (a finite number)"


def steps_count(text: str) -> int:
    """A count of sampler steps, at most MAX_STEPS (each adapter still says why 0 or fewer is wrong)."""
    value = int(text)
    if value > MAX_STEPS:
        raise ValueError(text)
    return value


steps_count.__name__ = f"int (at most {MAX_STEPS:,} steps)"


def read_option(options: AdapterOptions, key: str, default: Any, convert=str) -> Any:
    """Read one `--opt` value with a clear error when it does not parse."""
    from evalkit.errors import EvalkitError

    if key not in options.extra:
        return default
    raw = options.extra[key]
    try:
        return convert(raw)
    except (TypeError, ValueError):
        raise EvalkitError(f"--opt {key}={raw[:40]!r} is not a valid {getattr(convert, '__name__', 'value')}") from None


def require_model_dir(options: AdapterOptions, adapter: str, what: str) -> Path:
    """The `--model-path` directory an adapter reads from, or a clear error naming what it should be."""
    from evalkit.errors import EvalkitError

    if not options.model_path:
        raise EvalkitError(f"the {adapter} adapter needs --model-path DIR ({what})")
    path = Path(options.model_path).expanduser()
    if not path.is_dir():
        raise EvalkitError(f"--model-path {options.model_path}: no such directory")
    return path


def check_known_options(options: AdapterOptions, known: set[str], adapter: str) -> None:
    from evalkit.errors import EvalkitError

    unknown = sorted(set(options.extra) - known)
    if unknown:
        raise EvalkitError(
            f"adapter {adapter!r} does not take option(s) {', '.join(unknown)}; it takes: {', '.join(sorted(known)) or 'none'}"
        )
