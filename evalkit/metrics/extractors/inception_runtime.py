"""How the Inception pool3 network runs: the batch -> features function that ``InceptionFeatures`` batches over.

Backends (the inception extractor's ``backend`` setting):

  auto      openvino on a CPU when the package is installed, else torch
  openvino  the same torch-fidelity modules converted by OpenVINO (``torch.export`` graph -> ``ov.convert_model``),
            run in fp32 (``INFERENCE_PRECISION_HINT=f32``: OpenVINO would otherwise pick bf16 on CPUs that have it)
            with one single-threaded stream per torch thread, the batch split across the streams; the converted
            network is cached (``$EVALKIT_CACHE_DIR/openvino``, keyed by the weights' sha256 and OpenVINO's version)
  torch     torch-fidelity's modules with each BatchNorm folded into its convolution (``fuse_conv_bn_eval``: the
            same affine maps, one pass less over every activation), channels_last; always the path on CUDA/MPS

Why (2 CPU cores, AMD EPYC with AVX-512, shared; reports/perf/metrics.md, parts v and a of
``python benchmarks/perf/metrics_bench.py``). The network alone, batch 32, variants interleaved round by round,
median images/s at load average ~2 (torch's 4096^3 fp32 matmul: 152-185 GFLOP/s, i.e. ~15.5 images/s at 11.4
GFLOP an image): torch eager channels_last (the earlier path) 12.6, BatchNorm folded 14.1, TorchScript
trace + freeze 13.7 (and deprecated), OpenVINO one 2-thread stream 17.6, two 1-thread streams 18.7; at load
average 6-10 the order was the same (2.4, 2.7, 2.6, 4.2-4.5, 5.8) with ONNX Runtime at 3.9 and TorchScript's
optimize_for_inference at 2.0 behind OpenVINO. The whole feature pipeline (files, decode and resize in 2 threads,
network) at N = 400: OpenVINO 11.6-16.7 images/s, torch 6.9-12.8, across two rounds. Every variant's features
agree with eager torch to <= 1e-6 relative (max |diff| / max |feature|); FID from files differs from
torchmetrics' by 2.4e-5 relative for both backends. OpenVINO is a ~180 MB wheel: worth ~1.3x on the network
over the best torch path, so ``auto`` uses it when installed and falls back to torch without it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from evalkit import paths
from evalkit.errors import EvalkitError
from evalkit.metrics import inception

BACKENDS = ("auto", "openvino", "torch")
Forward = Callable[[torch.Tensor], torch.Tensor]


class Pool3(torch.nn.Module):
    """torch-fidelity's layers up to the 2048-d pool3 output, as one module (what OpenVINO converts)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.layers = torch.nn.Sequential(*(getattr(net, name) for name in inception._LAYERS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.layers(x), 1)


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def resolve_backend(backend: str, device: str) -> str:
    """The backend that will run: ``auto`` picks openvino on a CPU when installed; a GPU always runs torch."""
    if backend not in BACKENDS:
        raise EvalkitError(f"extractor inception: backend={backend!r} is not one of {', '.join(BACKENDS)}")
    on_cpu = str(device).split(":")[0] == "cpu"
    if backend == "auto":
        return "openvino" if on_cpu and openvino_available() else "torch"
    if backend == "openvino":
        if not on_cpu:
            raise EvalkitError(f"extractor inception: backend=openvino runs on the CPU only (device is {device})")
        if not openvino_available():
            raise EvalkitError("extractor inception: backend=openvino needs the openvino package "
                               "(pip install openvino), or use backend=torch")
    return backend


def fold_batchnorm(net: torch.nn.Module) -> torch.nn.Module:
    """Each BasicConv2d's conv + BatchNorm (eval mode) as one convolution with a bias, in place:
    BN(W * x) = g (W * x - m) / sqrt(v + eps) + b = W' * x + b' with W' = W g / sqrt(v + eps) per output channel
    and b' = b - g m / sqrt(v + eps) (g, b: the BatchNorm's scale and shift; m, v: its running mean, variance)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in net.modules():
        if isinstance(getattr(module, "conv", None), torch.nn.Conv2d) and isinstance(
                getattr(module, "bn", None), torch.nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = torch.nn.Identity()
    return net


def torch_forward(net: torch.nn.Module, device: str) -> Forward:
    model = Pool3(fold_batchnorm(net)).to(device).to(memory_format=torch.channels_last).eval()
    return lambda batch: model(batch.contiguous(memory_format=torch.channels_last))


_COMPILED: dict[tuple[str, int], object] = {}  # (weights sha256, streams) -> compiled model, for this process


def converted_model_path(weights_sha256: str) -> Path:
    """Where the converted network (OpenVINO IR: .xml graph + .bin weights) is cached, per weights file and
    OpenVINO version."""
    import openvino as ov

    version = re.sub(r"[^0-9A-Za-z.]+", "_", ov.__version__.split("-")[0])
    return paths.cache_dir("openvino") / f"inception-pool3-{weights_sha256[:32]}-ov{version}.xml"


def _convert(net: torch.nn.Module):
    import openvino as ov

    batch = torch.export.Dim("batch", min=1, max=4096)
    example = (torch.zeros(2, 3, inception.INPUT_SIZE, inception.INPUT_SIZE),)
    return ov.convert_model(torch.export.export(Pool3(net).eval(), example, dynamic_shapes=({0: batch},)))


def _save_converted(model, target: Path) -> None:
    """Write .bin then .xml through renames from a temporary folder beside them, so a reader finds either no
    .xml or a complete pair; an unwritable cache only costs the next conversion."""
    import openvino as ov

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=target.parent) as tmp:
            ov.save_model(model, str(Path(tmp) / target.name), compress_to_fp16=False)
            os.replace(Path(tmp) / target.with_suffix(".bin").name, target.with_suffix(".bin"))
            os.replace(Path(tmp) / target.name, target)
    except OSError:
        pass


def _converted(net: torch.nn.Module, weights_sha256: str):
    """The network as an OpenVINO model: from the cache when converted before (a conversion takes ~10-40 s on
    2 cores, reading the cached IR well under a second), else converted and cached."""
    import openvino as ov

    target = converted_model_path(weights_sha256)
    if target.is_file() and target.with_suffix(".bin").is_file():
        try:
            return ov.Core().read_model(str(target))
        except RuntimeError:
            pass  # a damaged entry is converted again and replaced
    model = _convert(net)
    _save_converted(model, target)
    return model


def _openvino_compiled(net: torch.nn.Module, weights_sha256: str, streams: int):
    """Compile once per weights file and stream count in a process (tests and benchmarks build many extractors
    on one weights file)."""
    import openvino as ov

    key = (weights_sha256, streams)
    if key not in _COMPILED:
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams,
                  "INFERENCE_NUM_THREADS": streams}
        if len(_COMPILED) >= 2:
            _COMPILED.clear()
        _COMPILED[key] = ov.Core().compile_model(_converted(net, weights_sha256), "CPU", config)
    return _COMPILED[key]


def openvino_forward(net: torch.nn.Module, weights_sha256: str) -> Forward:
    """Split each batch across the streams (one thread each: no barrier between the two cores per layer, which
    is what made two streams faster than one two-thread stream), one infer request per stream, outputs in order.
    Plain requests, no AsyncInferQueue: with its Python callbacks a test run hung now and then (most likely an
    OpenVINO thread waiting for the GIL held by a thread destroying the queue); these need no GIL."""
    streams = max(1, torch.get_num_threads())
    compiled = _openvino_compiled(net, weights_sha256, streams)
    requests = [compiled.create_infer_request() for _ in range(streams)]

    def forward(batch: torch.Tensor) -> torch.Tensor:
        parts = [p.contiguous().numpy() for p in torch.chunk(batch.float().cpu(), streams)]
        for request, part in zip(requests, parts):
            request.start_async({0: part})
        outputs = []
        for request, _ in zip(requests, parts):
            request.wait()
            outputs.append(request.get_output_tensor(0).data.copy())
        return torch.from_numpy(np.concatenate(outputs))

    return forward


def make_forward(net: torch.nn.Module, backend: str, device: str, weights_sha256: str) -> Forward:
    """batch (N x 3 x 299 x 299 float32, already preprocessed) -> N x 2048 pool3 features."""
    if resolve_backend(backend, device) == "openvino":
        return openvino_forward(net, weights_sha256)
    return torch_forward(net, device)
