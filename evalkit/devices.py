"""One rule for turning a `--device` value into a torch device name, used by every command and adapter.

    None | "auto" -> "cuda" when a CUDA device is available, else "cpu"
    "cpu"         -> "cpu"
    "cuda"        -> "cuda"      (a CUDA device must be available)
    "cuda:N"      -> "cuda:N"    (N < torch.cuda.device_count())
    "mps"         -> "mps"       (Apple's Metal backend must be available)

Anything else, or a device that is not present, is an `EvalkitError` with one line that says what is available.
torch is imported only when the answer depends on the hardware, so "cpu" costs nothing.
"""

from __future__ import annotations

import re

from evalkit.errors import EvalkitError

CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str | None) -> str:
    """The torch device name for `name` (see the module docstring), checked against this machine."""
    if name is not None and not isinstance(name, str):
        raise EvalkitError(f"--device must be {CHOICES}, got {name!r}")
    spec = "auto" if name is None else name.strip().lower()
    if spec == "cpu":
        return "cpu"
    match = re.fullmatch(r"auto|cuda(?::(\d+))?|mps", spec)
    if match is None:
        raise EvalkitError(f"--device must be {CHOICES}, got {name!r}")
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise EvalkitError("--device mps: Apple's MPS backend is not available here (use --device cpu)")
        return "mps"
    if not torch.cuda.is_available():
        raise EvalkitError(f"--device {spec}: no CUDA device is available here (use --device cpu)")
    if match.group(1) is not None:
        index, count = int(match.group(1)), torch.cuda.device_count()
        if index >= count:
            raise EvalkitError(f"--device {spec}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return spec
