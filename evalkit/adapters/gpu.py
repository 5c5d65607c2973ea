"""The GPU path shared by the torch-based adapters (``diffusers``, ``stable-diffusion``, ``deepfloyd-if``).

Precision: ``--opt dtype=`` float32 (default), float16 or bfloat16 (also written fp32, fp16, bf16). Half precision
is applied the way diffusers intends it, by loading the denoisers' weights in that dtype (half the memory and the
card's fast matmuls), not by wrapping the pipeline call in ``torch.autocast``: autocast would re-cast to float16
the VAE decoder that SDXL pipelines deliberately upcast to float32 (its float16 activations overflow into black
images), so it is not safe around whole pipelines. What stays float32 is each adapter's to say (DeepFloyd IF keeps
its T5 text encoder in float32 unless asked, see ``evalkit.adapters.deepfloyd_if``).

Out of memory: a CUDA (or MPS, or CPU allocator) out-of-memory error inside a batch (of these adapters and of the
built-in ``imagen`` cascade) becomes one line that names the
device, the batch and a smaller ``--batch-size`` to try; rerunning then resumes, keeping the finished images.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from evalkit.adapters.base import AdapterOptions
from evalkit.errors import EvalkitError

DTYPES = ("float32", "float16", "bfloat16")
DTYPE_ALIASES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}
# Messages of out-of-memory errors that torch raises as plain RuntimeError (CPU allocator, MPS, older CUDA paths).
_OOM_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def parse_dtype(options: AdapterOptions, key: str = "dtype", default: str = "float32") -> str:
    """The canonical dtype name of ``--opt key=...`` (aliases accepted), or a one-line error listing the choices."""
    raw = options.extra.get(key, default)
    name = DTYPE_ALIASES.get(raw.strip().lower())
    if name is None:
        raise EvalkitError(f"--opt {key}={raw!r} is not supported; use one of: {', '.join(DTYPES)} (or fp32, fp16, bf16)")
    return name


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    oom_types = tuple({getattr(torch, "OutOfMemoryError", RuntimeError), torch.cuda.OutOfMemoryError} - {RuntimeError})
    if oom_types and isinstance(error, oom_types):
        return True
    return isinstance(error, RuntimeError) and any(word in str(error).lower() for word in _OOM_WORDS)


def out_of_memory_message(device: str, images: int, height: int, width: int, model: str, dtype: str | None) -> str:
    """One line: what ran out of memory, and the next thing to try (a halved batch first). ``dtype`` is the
    adapter's ``--opt dtype`` (None when it has no such option)."""
    made = f"out of memory on {device} making {images} image(s) of {width}x{height} with {model}"
    if images > 1:
        return f"{made}; try --batch-size {images // 2} (rerunning resumes: finished images are kept)"
    smaller = "--opt dtype=float16 (or bfloat16), " if dtype == "float32" else ""
    return f"{made}; even one image does not fit: try {smaller}a smaller --size, or a device with more memory"


def release_cached_memory(device: str) -> None:
    """Hand the allocator's cached blocks back after an out-of-memory error, so the process can go on."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def out_of_memory_guard(device: str, images: int, height: int, width: int, model: str,
                        dtype: str | None) -> Iterator[None]:
    """Turn an out-of-memory error raised inside the block into an ``EvalkitError`` naming a batch size to try."""
    try:
        yield
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        release_cached_memory(device)
        raise EvalkitError(out_of_memory_message(device, images, height, width, model, dtype)) from None
