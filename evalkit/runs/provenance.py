"""What a run records about where it ran: the manifest's ``machine`` block, and prompts a text encoder truncated.

None of this is part of the run's spec (evalkit.runs.spec): it describes a run, it does not define it, so the run
id is the same on every machine. It is what is needed to reproduce the run's bytes. Measured: the shipped cascade
at 1 and at 2 torch threads wrote 7 of 12 toy-world images differently, each by 1 grey level in 1 or 2 of its
16,384 pixels (float sums are added in another order), so the promise is

- the same spec, device, thread count and libraries give byte-identical images (tests/runs/test_reproducibility);
- anywhere else the images may differ in the last bit, and metrics agree within their noise.

``machine``: cpu model (``/proc/cpuinfo`` "model name", else ``platform.processor()``), cpu count, os, python;
torch's intra- and inter-op thread counts, whether deterministic algorithms are on, the device the adapter
computes on and, on CUDA, the GPU's name, CUDA and cuDNN versions; numpy, Pillow and zlib versions (PNG bytes
depend on zlib); and the thread environment variables that were set. A resumed run appends the machine it
resumed on when that differs (``resumed_on``), because its new images were made there.
"""

from __future__ import annotations

import os
import platform
import sys
import zlib
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG",
                    "CUDA_VISIBLE_DEVICES")


def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'AMD EPYC 7B13' (Linux: /proc/cpuinfo), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _torch_block(device: str) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch": None}
    block: dict[str, Any] = {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        block.update(gpu=torch.cuda.get_device_name(index), cuda=torch.version.cuda,
                     cudnn=torch.backends.cudnn.version())
    return block


def machine_block(device: str) -> dict[str, Any]:
    """Where and how a run's images are computed (see the module docstring); ``device`` is the adapter's."""
    return {
        "cpu": cpu_model(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "device": device,
        **_torch_block(device),
        "numpy": _version("numpy"),
        "pillow": _version("pillow"),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "environment": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
    }


def resumed_on(manifest: dict[str, Any], device: str) -> dict[str, Any]:
    """Manifest fields to update when a run resumes: the machine appended to ``resumed_on`` when it differs from
    the one the run was made on (or last resumed on)."""
    machine = machine_block(device)
    history = list(manifest.get("resumed_on") or [])
    last = history[-1]["machine"] if history else manifest.get("machine")
    if machine == last:
        return {}
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"resumed_on": [*history, {"at": at, "machine": machine}]}


def set_threads(threads: int | None) -> None:
    """`evalkit run --threads N`: torch's intra-op thread count for this process (None: leave torch's default)."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)


def record_truncations(run, adapter, rows) -> dict[str, Any] | None:
    """Record in the manifest (``prompts_truncated``) the prompt rows the adapter's text encoder cut short, merged
    with what earlier sessions of the run recorded, and warn once. Adapters say so through an optional
    ``truncated_prompts()`` -> {"encoder", "max_tokens", "prompts": [text, ...]} (None: nothing to say)."""
    report = getattr(adapter, "truncated_prompts", None)
    found = report() if callable(report) else None
    earlier = run.manifest.get("prompts_truncated") or {}
    if not found and not earlier:
        return None
    by_text: dict[str, list[int]] = {}
    for row in rows:
        by_text.setdefault(row.prompt, []).append(row.index)
    indices = set(earlier.get("prompt_indices", []))
    for prompt in (found or {}).get("prompts", ()):
        indices.update(by_text.get(prompt, ()))
    record = {"encoder": (found or earlier).get("encoder"), "max_tokens": (found or earlier).get("max_tokens"),
              "count": len(indices), "prompt_indices": sorted(indices)}
    if record != earlier:
        run.update_manifest(prompts_truncated=record)
    if record["count"]:
        print(f"evalkit: warning: {record['count']} of {len(rows)} prompts are longer than the text encoder's "
              f"{record['max_tokens']} tokens and were truncated (manifest.json: prompts_truncated)", file=sys.stderr)
    return record
