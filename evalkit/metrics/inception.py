"""The Inception-v3 FID network (torch-fidelity's ``FeatureExtractorInceptionV3``, the one torchmetrics uses)
and the resize modes that turn an RGB image into its 299x299 input.

Resize modes (the mode is recorded next to every number, because it alone moves FID by points):
  torchmetrics  bilinear with antialias on the uint8 values, then (x-128)/128  (torchmetrics FID default)
  tf1           TensorFlow-1.x-compatible bilinear, then (x-128)/128           (torch-fidelity default)
  clean         PIL bicubic per channel on float values, clipped to 0..255, then (x-128)/128  (clean-fid)
  pytorch-fid   bilinear without antialias on x/255, then 2x-1                 (pytorch-fid)
Preprocessing runs per image (so folders of mixed sizes work and it can run in worker threads); the network then
runs batched, channels_last, under inference_mode.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from evalkit.errors import EvalkitError

INPUT_SIZE = 299
FEATURE_DIM = 2048
RESIZE_MODES = ("torchmetrics", "tf1", "clean", "pytorch-fid")
DEFAULT_RESIZE = "torchmetrics"

# The layers the 2048-d pool3 feature goes through, in order (the logits head is not needed).
_LAYERS = [
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool",
]  # fmt: skip


def check_resize_mode(mode: str) -> str:
    if mode not in RESIZE_MODES:
        raise EvalkitError(f"unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}")
    return mode


def preprocess(rgb: np.ndarray, mode: str) -> torch.Tensor:
    """HxWx3 uint8 -> 3x299x299 float32 network input, normalised as the reference implementation does."""
    if mode == "clean":
        from PIL import Image

        channels = [
            np.asarray(
                Image.fromarray(rgb[:, :, c].astype(np.float32), mode="F").resize(
                    (INPUT_SIZE, INPUT_SIZE), resample=Image.BICUBIC
                )
            )
            for c in range(3)
        ]
        x = torch.from_numpy(np.clip(np.stack(channels), 0, 255).astype(np.float32))
        return (x - 128) / 128
    x = torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0)
    if mode == "torchmetrics":
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
        return ((x - 128) / 128)[0]
    if mode == "tf1":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)
        return ((x - 128) / 128)[0]
    if mode == "pytorch-fid":
        x = F.interpolate(x / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return (2 * x - 1)[0]
    raise EvalkitError(f"unknown resize mode {mode!r}")


def load_network(weights_path: str | Path):
    """torch-fidelity's Inception-v3 with the given state-dict file, ready for CPU/GPU inference.

    The file is read by ``weight_files.read_state_dict`` (safetensors or ``torch.load(weights_only=True)``), not
    by torch-fidelity's own loader, which unpickles in full (``weights_only=False``)."""
    from evalkit.metrics.weight_files import load_error, read_state_dict

    state = read_state_dict(weights_path, "an Inception FID state dict")
    net = _unloaded_network()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        raise EvalkitError(f"{weights_path} is not an Inception FID state dict ({load_error(error)})") from None
    return net.float().eval().requires_grad_(False)


def _unloaded_network():
    """torch-fidelity's module built without its weight download or load step (every tensor is set afterwards)."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    with mock.patch.object(fe, "load_state_dict_from_url", return_value={}), mock.patch.object(
        fe.FeatureExtractorInceptionV3, "load_state_dict", return_value=None
    ):
        return fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])


def pool3_features(net, batch: torch.Tensor) -> torch.Tensor:
    """N x 2048 pool3 features of already-preprocessed N x 3 x 299 x 299 inputs."""
    x = batch
    for name in _LAYERS:
        x = getattr(net, name)(x)
    return torch.flatten(x, 1)


def random_network(seed: int = 0):
    """An untrained network of the same architecture, with Kaiming-normal convolutions: PyTorch's default init
    gives near-zero pool3 features (FIDs of ~1e-12), useless for testing; these give informative features."""
    torch.manual_seed(seed)
    net = _unloaded_network()  # every convolution is then initialised here
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net


def save_random_weights(path: str | Path, seed: int = 0) -> Path:
    """Write a random-initialised network in the same file format as the real weights (a torch state dict)."""
    from evalkit import atomic
    import io

    buffer = io.BytesIO()
    torch.save(random_network(seed).state_dict(), buffer)
    atomic.write_bytes(Path(path), buffer.getvalue())
    return Path(path)
