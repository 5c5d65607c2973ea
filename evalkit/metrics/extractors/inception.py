"""``inception``: the FID network's 2048-d pool3 features (torch-fidelity's FeatureExtractorInceptionV3, the network
torchmetrics, torch-fidelity, pytorch-fid and clean-fid all use), with a resize mode and an optional centre crop.

Settings: ``resize`` in torchmetrics (default), tf1, clean, pytorch-fid (see evalkit.metrics.inception, where each
mode's maths is written out); ``crop_size`` N: a square centre crop then PIL bicubic resize to N x N before the resize
mode, the treatment the COCO reference protocol gives real images (``none`` by default); ``backend`` auto (default),
openvino or torch: what runs the network (evalkit.metrics.extractors.inception_runtime: OpenVINO fp32 is ~1.3-1.5x
faster on a CPU, features equal to ~1e-6 relative).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from evalkit.errors import EvalkitError
from evalkit import images as image_io
from evalkit.metrics import inception
from evalkit.metrics import weights as weight_registry
from evalkit.metrics.extractors.base import ExtractorOptions, ExtractorSpec, Setting
from evalkit.metrics.extractors.batching import embed_files
from evalkit.metrics.extractors import inception_runtime

NAME = "inception"


def parse_crop_size(value: str | int | None) -> int | None:
    if value in (None, "", "none", "0", 0):
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise EvalkitError(f"extractor {NAME}: crop_size must be a positive number of pixels or none, got {value!r}")
    return size


class InceptionFeatures:
    """Inception pool3 features of image files."""

    name = NAME
    dim = inception.FEATURE_DIM

    def __init__(self, weights_path: str | Path, resize: str = inception.DEFAULT_RESIZE, crop_size: int | None = None,
                 device: str = "cpu", batch_size: int = 32, workers: int = 2, backend: str = "auto"):
        self.resize = inception.check_resize_mode(resize)
        self.backend = inception_runtime.resolve_backend(backend, device)  # auto -> what will actually run
        self.crop_size = parse_crop_size(crop_size)
        self.weights_path = Path(weights_path)
        self.weights_sha256 = weight_registry.sha256_file(self.weights_path)
        self.device, self.batch_size, self.workers = device, batch_size, workers
        self._net = None

    def description(self) -> dict:
        return {
            "extractor": NAME,
            "network": "inception-v3-compat pool3 (torch-fidelity FeatureExtractorInceptionV3)",
            "weights_sha256": self.weights_sha256,
            "weights_name": weight_registry.INCEPTION,
            "preprocessing": {"resize": self.resize, "crop_size": self.crop_size, "input_size": inception.INPUT_SIZE},
            "dim": self.dim,
            "backend": self.backend,
        }

    def network(self):
        """The batch -> pool3 features function (OpenVINO or BatchNorm-folded channels_last torch; see
        inception_runtime for the measured reasons)."""
        if self._net is None:
            net = inception.load_network(self.weights_path)
            self._net = inception_runtime.make_forward(net, self.backend, self.device, self.weights_sha256)
        return self._net

    def preprocess_file(self, path: Path) -> torch.Tensor:
        rgb = image_io.load_rgb(path)
        if self.crop_size:
            rgb = image_io.center_crop_resize(rgb, self.crop_size)
        return inception.preprocess(rgb, self.resize)

    def compute(self, paths: Sequence[Path], desc: str | None = None) -> np.ndarray:
        """N x 2048 float32 pool3 features, in the order of ``paths`` (no cache)."""
        forward = self.network()
        # The forward makes its own layout (channels_last for torch, plain NCHW arrays for OpenVINO).
        return embed_files(paths, self.preprocess_file, forward, self.dim, device=self.device,
                           batch_size=self.batch_size, workers=self.workers, desc=desc or NAME)


def _build(options: ExtractorOptions, settings: dict[str, str]) -> InceptionFeatures:
    crop_size = parse_crop_size(settings["crop_size"])  # checked before a weights lookup can fail
    path = weight_registry.resolve(weight_registry.INCEPTION, options.weights, download=options.download)
    return InceptionFeatures(path, resize=settings["resize"], crop_size=crop_size, device=options.device,
                             batch_size=options.batch_size, workers=options.workers, backend=settings["backend"])


SPEC = ExtractorSpec(
    name=NAME,
    summary="Inception-v3 pool3 (2048-d), the FID/KID network",
    settings={
        "resize": Setting(inception.DEFAULT_RESIZE, inception.RESIZE_MODES, "how images reach 299x299"),
        "crop_size": Setting("none", None, "centre crop + bicubic resize to N x N first (COCO reference protocol)"),
        "backend": Setting("auto", inception_runtime.BACKENDS, "what runs the network: openvino on a CPU when installed"),
    },
    build=_build,
    weights=lambda settings: [weight_registry.INCEPTION],
)
