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

    from evalkit.metrics.images import list_images, load_rgb

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
