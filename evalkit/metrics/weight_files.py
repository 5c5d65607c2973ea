"""Reading network weight files without running code from them: the one place the extractors open a weights file.

A file is read by what its bytes are, whatever its name:
  safetensors   ``safetensors.torch.load_file`` (an 8-byte header length, then a JSON header: no code at all)
  TorchScript   ``torch.jit.load`` and its ``state_dict()``, only where the caller allows it (OpenAI's CLIP files
                are TorchScript archives). Recognised by torch's own rule, a ``constants.pkl`` record at the top of
                the archive; TorchScript's deserializer does not run Python's unpickler
  anything else ``torch.load(weights_only=True)``: tensors, plain containers and numbers only. A pickle of any other
                object (one whose ``__reduce__`` would run code) is refused before that object is built
There is no fallback to a full unpickle. Every refusal is one ``EvalkitError`` line naming the file: not a
weights file (text, zero bytes, truncated, corrupt), a pickle of other objects, a TorchScript archive where a
state dict is expected, or no mapping of names to tensors. Whether the tensors fit the network (names, shapes)
is checked by the caller's ``load_state_dict``; ``load_error`` turns its error into one line.
"""

from __future__ import annotations

import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path

import torch

from evalkit.errors import EvalkitError

_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
_REFUSED = "only safetensors and torch.load(weights_only=True) files are read, so it was not unpickled"


def file_kind(path: Path) -> str:
    """``safetensors``, ``torchscript`` or ``torch`` (anything else: torch.load decides whether it is one)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < path.stat().st_size:
        return "safetensors"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.count("/") == 1 and name.endswith("/constants.pkl") for name in archive.namelist()):
                return "torchscript"
    return "torch"


def read_state_dict(path: str | Path, what: str, unwrap: tuple[str, ...] = (), torchscript: bool = False
                    ) -> dict[str, torch.Tensor]:
    """{name: tensor} of a weights file on the CPU. ``what`` names the expected content in errors ("an Inception
    FID state dict"); ``unwrap``: keys whose dict value is the state dict (``{"model": {...}, "epoch": 3}``)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise EvalkitError(f"{path} is not {what} (the file is empty)")
        kind = file_kind(path)
        if kind == "torchscript" and not torchscript:
            raise EvalkitError(f"{path} is a TorchScript archive, not {what}")
        loaded = _load(path, kind)
    except EvalkitError:
        raise
    except pickle.UnpicklingError as error:
        found = _GLOBAL.search(str(error))
        if found:
            raise EvalkitError(f"{path} is not {what}: it pickles {found.group(1)}, not only tensors; {_REFUSED}"
                               ) from None
        raise EvalkitError(f"{path} is not {what} (not a safetensors or torch file torch.load(weights_only=True) "
                           "reads)") from None
    except Exception as error:  # torch and safetensors raise many types for a foreign or damaged file
        raise EvalkitError(f"{path} is not {what} ({_first_line(error)})") from None
    return _tensor_mapping(path, loaded, what, unwrap)


def _load(path: Path, kind: str):
    if kind == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if kind == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.* is deprecated")
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    return torch.load(path, map_location="cpu", weights_only=True)


def _tensor_mapping(path: Path, loaded, what: str, unwrap: tuple[str, ...]) -> dict[str, torch.Tensor]:
    for key in unwrap:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not loaded:
        raise EvalkitError(f"{path} is not {what} (it holds a {type(loaded).__name__}, not names and tensors)")
    for name, value in loaded.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise EvalkitError(f"{path} is not {what} (entry {str(name)[:60]!r} is a {type(value).__name__}, "
                               "not a tensor)")
    return dict(loaded)


def load_error(error: BaseException) -> str:
    """One line of a ``load_state_dict`` error: its first specific line (the first only names the module)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    return (lines[1] if len(lines) > 1 else lines[0])[:200]


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]
