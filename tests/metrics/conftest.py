"""Shared fixtures: random-initialised networks saved in the real file formats, and small synthetic image sets.

Inception on CPU runs at ~10 images/s, so image sets are tens of images and the weights file is made once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def synthetic_images(folder: Path, count: int, seed: int, brightness: float = 0.0, size: int = 48) -> Path:
    """Smooth random colour fields (upsampled noise), so Inception features vary between images."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        coarse = rng.uniform(0, 255, size=(6, 6, 3)) + brightness
        image = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
        image.save(folder / f"img_{i:03d}.png")
    return folder


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    from evalkit.metrics.inception import save_random_weights

    return save_random_weights(tmp_path_factory.mktemp("weights") / "random-inception.pth", seed=0)


@pytest.fixture(scope="session")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("images")
    return synthetic_images(root / "a", 10, seed=1), synthetic_images(root / "b", 12, seed=2, brightness=60)


def load_uint8_batch(folder: Path):
    """The images of a folder as an N x 3 x H x W uint8 tensor (for the reference implementations)."""
    import torch

    from evalkit.images import list_images, load_rgb

    return torch.stack([torch.tensor(load_rgb(p)).permute(2, 0, 1) for p in list_images(folder)])


TINY_CLIP = "evalkit-test-tiny-clip"


@pytest.fixture(scope="session")
def clip_weights(tmp_path_factory) -> Path:
    """A tiny open_clip model (registered as a custom config) with random weights saved as a state dict."""
    import json

    import open_clip
    import torch

    config_dir = tmp_path_factory.mktemp("clip-config")
    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (config_dir / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(config_dir)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP, pretrained=None)
    path = tmp_path_factory.mktemp("clip-weights") / "tiny-clip.pt"
    torch.save(model.state_dict(), path)
    return path


TINY_OPENAI_CLIP = "evalkit-test-openai-clip"


def save_openai_torchscript(state_dict: dict, path: Path) -> Path:
    """Write a state dict as OpenAI's CLIP files are: a TorchScript archive whose state_dict() holds the model's
    tensors plus input_resolution / context_length / vocab_size."""
    import torch

    class Holder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Holder()
    for key, value in state_dict.items():
        *parents, leaf = key.split(".")
        module = root
        for part in parents:
            if part not in module._modules:
                module.add_module(part, Holder())
            module = module._modules[part]
        module.register_buffer(leaf, value.clone())
    torch.jit.script(root).save(str(path))
    return path


@pytest.fixture(scope="session")
def openai_clip_weights(tmp_path_factory) -> Path:
    """A small CLIP in OpenAI's layout and file format (TorchScript, float16-exact values, QuickGELU, 64-wide heads
    so torch-fidelity's vendored OpenAI CLIP code can build it too), taking 224 x 224 inputs like ViT-B/32."""
    import json

    import open_clip
    import torch

    config_dir = tmp_path_factory.mktemp("openai-clip-config")
    config = {
        "embed_dim": 48,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 64, "patch_size": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
    }
    (config_dir / f"{TINY_OPENAI_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(config_dir)
    torch.manual_seed(1)
    model = open_clip.create_model(TINY_OPENAI_CLIP, pretrained=None)
    with torch.no_grad():  # a larger patch projection than the default init, so embeddings differ between images
        model.visual.conv1.weight.mul_(8)
    state = {k: v.half().float() for k, v in model.state_dict().items()}  # OpenAI ships float16 values
    state.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    return save_openai_torchscript(state, tmp_path_factory.mktemp("openai-clip") / "tiny-openai-clip.pt")


def save_random_dinov2(path: Path, width: int, depth: int, grid: int = 37, seed: int = 0) -> Path:
    """Random weights in facebookresearch/dinov2's ``dinov2_vit*14_pretrain.pth`` layout (a plain state dict with
    mask_token, layer-scale gammas and position embeddings for a grid x grid patch grid: 37 for 518 px)."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, std=0.02, mean=0.0):
        return mean + std * torch.randn(*shape, generator=gen)

    d = width
    state = {
        "cls_token": rand(1, 1, d), "pos_embed": rand(1, 1 + grid * grid, d, std=0.1), "mask_token": torch.zeros(1, d),
        "patch_embed.proj.weight": rand(d, 3, 14, 14, std=0.1), "patch_embed.proj.bias": rand(d),
        "norm.weight": rand(d, std=0.1, mean=1.0), "norm.bias": rand(d),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        state.update({
            p + "norm1.weight": rand(d, std=0.1, mean=1.0), p + "norm1.bias": rand(d),
            p + "attn.qkv.weight": rand(3 * d, d, std=0.1), p + "attn.qkv.bias": rand(3 * d),
            p + "attn.proj.weight": rand(d, d), p + "attn.proj.bias": rand(d), p + "ls1.gamma": rand(d, std=0.5),
            p + "norm2.weight": rand(d, std=0.1, mean=1.0), p + "norm2.bias": rand(d),
            p + "mlp.fc1.weight": rand(4 * d, d), p + "mlp.fc1.bias": rand(4 * d),
            p + "mlp.fc2.weight": rand(d, 4 * d), p + "mlp.fc2.bias": rand(d), p + "ls2.gamma": rand(d, std=0.5),
        })
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def mixed_size_folder(tmp_path_factory) -> Path:
    """Images of several shapes (landscape, portrait, square, tiny), so resize and crop rules are exercised."""
    folder = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(7)
    for i, (w, h) in enumerate([(64, 48), (50, 80), (40, 40), (300, 200), (17, 23)]):
        coarse = rng.uniform(0, 255, size=(5, 5, 3))
        image = Image.fromarray(coarse.astype(np.uint8)).resize((w, h), Image.BILINEAR)
        image.save(folder / f"img_{i}.png")
    return folder
