"""``dinov2-vitb14`` and ``dinov2-vitl14``: DINOv2 features as dgm-eval computes them for FD-DINOv2 (Stein et al.,
"Exposing flaws of generative model evaluation metrics", layer6ai-labs/dgm-eval, models/dinov2.py).

dgm-eval's protocol: decode to RGB, resize to 224 x 224 with torchvision's bicubic ``Resize`` on the PIL image (PIL's
antialiased filter; no crop, so the aspect ratio is not kept), ``ToTensor`` (x/255), ImageNet mean/std, then the
torch.hub backbone's ``forward``: the CLS token after the final LayerNorm (768-d for ViT-B/14, 1024-d for ViT-L/14),
not L2-normalised. Setting ``resize=clean`` is dgm-eval's ``--clean_resize``: per-channel float PIL bicubic, clipped
to 0..255, then /255.

Network: facebookresearch/dinov2's ViT-B/14 and ViT-L/14 from their ``dinov2_vit*14_pretrain.pth`` state dicts, run
as timm's ``vit_base_patch14_dinov2`` / ``vit_large_patch14_dinov2`` built for 224 x 224 inputs. The checkpoints hold
position embeddings for a 37 x 37 patch grid (518 px); for a 16 x 16 grid the hub model interpolates them bicubically
without antialiasing at scale factor (16 + 0.1) / 37 (the offset is DINO's historical guard against rounding), and
that exact interpolation is done here once at load time. timm's own loader (antialiased resampling to the exact size)
and transformers' Dinov2Model (exact size, no offset) both give slightly different embeddings, so neither is used
as is. The depth is read from the file (tests use shallow random networks in the same key layout).

torch-fidelity's ``FeatureExtractorDinoV2`` (``dinov2-vit-b-14`` etc.) runs the same hub network but resizes the
uint8 tensor to 224 with its TensorFlow-1-compatible bilinear interpolation (no antialias) before the ImageNet
normalisation, so its FD-DINOv2 numbers differ from dgm-eval's, and from these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from evalkit.errors import EvalkitError
from evalkit import images as image_io
from evalkit.metrics import weights as weight_registry
from evalkit.metrics.extractors.base import ExtractorOptions, ExtractorSpec, Setting
from evalkit.metrics.extractors.batching import embed_files
from evalkit.metrics.weight_files import read_state_dict

INPUT_SIZE = 224
PATCH = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("dgm-eval", "clean")
POS_EMBED_OFFSET = 0.1  # facebookresearch/dinov2 interpolate_pos_encoding's interpolate_offset


@dataclass(frozen=True)
class Arch:
    timm_name: str
    width: int
    label: str


ARCHS = {
    "dinov2-vitb14": Arch("vit_base_patch14_dinov2", 768, "ViT-B/14"),
    "dinov2-vitl14": Arch("vit_large_patch14_dinov2", 1024, "ViT-L/14"),
}


def dgm_eval_input(rgb: np.ndarray, resize: str = "dgm-eval") -> torch.Tensor:
    """HxWx3 uint8 -> 3x224x224 float32 input, as dgm-eval's DINOv2Encoder.transform."""
    if resize == "clean":
        channels = [
            np.asarray(Image.fromarray(rgb[:, :, c].astype(np.float32), mode="F").resize(
                (INPUT_SIZE, INPUT_SIZE), resample=Image.BICUBIC))
            for c in range(3)
        ]
        x = torch.from_numpy(np.clip(np.stack(channels), 0, 255).astype(np.float32)) / 255
    else:
        image = TF.resize(Image.fromarray(rgb), [INPUT_SIZE, INPUT_SIZE], interpolation=InterpolationMode.BICUBIC)
        x = TF.to_tensor(image)
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def hub_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """1 x (1 + M*M) x D position embeddings for a grid x grid input, as the DINOv2 hub model interpolates them."""
    patches = pos_embed.shape[1] - 1
    side = int(round(patches**0.5))
    if side * side != patches:
        raise EvalkitError(f"DINOv2 position embeddings for {patches} patches are not a square grid")
    if side == grid:
        return pos_embed
    cls, patch = pos_embed[:, :1].float(), pos_embed[:, 1:].float()
    dim = pos_embed.shape[-1]
    scale = (grid + POS_EMBED_OFFSET) / side
    patch = F.interpolate(patch.reshape(1, side, side, dim).permute(0, 3, 1, 2), scale_factor=(scale, scale),
                          mode="bicubic", align_corners=False)
    if patch.shape[-2:] != (grid, grid):
        raise EvalkitError(f"DINOv2 position embeddings of a {side} x {side} grid do not interpolate to "
                           f"{grid} x {grid}")
    return torch.cat([cls, patch.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)


def read_backbone(path: Path, arch: Arch) -> tuple[dict, int]:
    """(state dict in timm's names at 224 px, depth) of a facebookresearch DINOv2 ``*_pretrain.pth`` file."""
    state = read_state_dict(path, "a DINOv2 state dict", unwrap=("model",))
    needed = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "norm.weight")
    missing = [k for k in needed if not isinstance(state, dict) or k not in state]
    if missing:
        raise EvalkitError(f"{path} is not a DINOv2 backbone state dict (no {missing[0]!r}; expected the layout of "
                           "facebookresearch's dinov2_vit*14_pretrain.pth)")
    if "register_tokens" in state:
        raise EvalkitError(f"{path} is a DINOv2 with registers; dgm-eval's FD-DINOv2 uses the model without")
    width = state["cls_token"].shape[-1]
    if width != arch.width:
        raise EvalkitError(f"{path} holds a {width}-wide ViT; DINOv2 {arch.label} is {arch.width}-wide")
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    converted = {k: v for k, v in state.items() if k != "mask_token"}
    converted["pos_embed"] = hub_pos_embed(state["pos_embed"], INPUT_SIZE // PATCH)
    return converted, depth


def load_backbone(path: Path, arch: Arch):
    """(timm VisionTransformer in eval mode, depth) holding the file's weights."""
    import timm

    state, depth = read_backbone(path, arch)
    # Built on the meta device and then given the file's tensors: a random init of ViT-L costs ~25 s on CPU
    # only to be overwritten (the ViT has no buffers, so every tensor comes from the file).
    with torch.device("meta"):
        net = timm.create_model(arch.timm_name, pretrained=False, img_size=INPUT_SIZE, depth=depth, num_classes=0)
    try:
        net.load_state_dict({k: v.float().contiguous() for k, v in state.items()}, strict=True, assign=True)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or ["mismatch"]
        detail = lines[1] if len(lines) > 1 else lines[0]  # the first line only names the module class
        raise EvalkitError(f"{path} does not fit DINOv2 {arch.label} ({detail[:200]})") from None
    left = [n for n, t in [*net.named_parameters(), *net.named_buffers()] if t.is_meta]
    if left:
        raise EvalkitError(f"{path} leaves DINOv2 {arch.label} tensors unset ({left[0]})")
    return net.eval().requires_grad_(False), depth


class Dinov2Features:
    def __init__(self, name: str, weights_path: Path, resize: str, options: ExtractorOptions):
        self.name, self.arch, self.resize = name, ARCHS[name], resize
        self.weights_path = Path(weights_path)
        self.weights_sha256 = weight_registry.sha256_file(self.weights_path)
        self.device, self.batch_size, self.workers = options.device, options.batch_size, options.workers
        net, self.depth = load_backbone(self.weights_path, self.arch)
        self.net = net.to(self.device)
        self.dim = self.arch.width

    def description(self) -> dict:
        resize = ("224 x 224 bicubic (PIL via torchvision, antialias), no crop" if self.resize == "dgm-eval"
                  else "224 x 224 per-channel float PIL bicubic, clipped to 0..255 (dgm-eval --clean_resize), no crop")
        return {
            "extractor": self.name,
            "network": f"DINOv2 {self.arch.label} CLS token after the final norm ({self.arch.timm_name}, "
                       f"{self.depth} blocks, hub position-embedding interpolation)",
            "weights_sha256": self.weights_sha256,
            "weights_name": self.name,
            "preprocessing": {"protocol": "dgm-eval dinov2", "resize": resize, "scale": "x/255",
                              "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "input_size": INPUT_SIZE},
            "normalised": False,
            "dim": self.dim,
        }

    def preprocess_file(self, path: Path) -> torch.Tensor:
        return dgm_eval_input(image_io.load_rgb(path), self.resize)

    def compute(self, paths: Sequence[Path], desc: str | None = None) -> np.ndarray:
        """N x dim float32 CLS features in the order of ``paths`` (no cache)."""
        return embed_files(paths, self.preprocess_file, self.net, self.dim, device=self.device,
                           batch_size=self.batch_size, workers=self.workers, desc=desc or self.name)


def _builder(name: str):
    def build(options: ExtractorOptions, settings: dict[str, str]) -> Dinov2Features:
        path = weight_registry.resolve(name, options.weights, download=options.download)
        return Dinov2Features(name, path, settings["resize"], options)

    return build


def _spec(name: str) -> ExtractorSpec:
    return ExtractorSpec(
        name=name,
        summary=f"DINOv2 {ARCHS[name].label} CLS features, dgm-eval preprocessing (FD-DINOv2)",
        settings={"resize": Setting("dgm-eval", RESIZE_MODES, "dgm-eval's default resize or its --clean_resize")},
        build=_builder(name),
        weights=lambda settings: [name],
    )


VITB14_SPEC = _spec("dinov2-vitb14")
VITL14_SPEC = _spec("dinov2-vitl14")
