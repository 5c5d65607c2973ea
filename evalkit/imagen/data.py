"""Training data for one stage: (target image at the stage size, low-res image or None, caption, word masks or None) batches.

Sources: the procedural toy world (`toyworld`), or a folder DIR of images (any of evalkit.images.IMAGE_SUFFIXES) each with a caption
in a same-stem `.txt` file beside it (`DIR/cat.png` + `DIR/cat.txt`); images are centre-cropped square and resized.
Batch `step` is a pure function of (seed, step), so a resumed run sees the same data it would have seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from evalkit.errors import EvalkitError
from evalkit.images import IMAGE_SUFFIXES, center_crop_resize, load_rgb


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


class StageBatches(torch.utils.data.Dataset):
    """Item `step` = one training batch; used through a DataLoader so workers render ahead of the GPU."""

    def __init__(self, source: str, size: int, lowres_size: int | None, batch_size: int, seed: int = 0,
                 toy_mix: dict[str, float] | None = None, grounding: bool = False):
        from evalkit.toyworld.scenes import category_weights

        self.size, self.lowres_size, self.batch_size, self.seed = size, lowres_size, batch_size, seed
        self.source = source
        if grounding and source != "toyworld":
            raise EvalkitError(f"--grounding-weight needs object masks: only --data toyworld has them, not {source}")
        self.grounding = grounding
        self.toy_weights = category_weights(toy_mix)
        self.files: list[Path] = []
        if source != "toyworld":
            folder = Path(source)
            if not folder.is_dir():
                raise EvalkitError(f"--data {source}: not 'toyworld' and not a folder")
            self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.with_suffix(".txt").is_file())
            if not self.files:
                raise EvalkitError(f"--data {source}: no image with a same-stem .txt caption found")

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int):
        """(images, low-res images or None, captions, each caption's grounding.word_targets or None)."""
        words = None
        if self.source == "toyworld":
            from evalkit.imagen.grounding import word_targets
            from evalkit.toyworld.data import training_scenes
            from evalkit.toyworld.render import render_array

            first = (self.seed * 1_000_003 + step) * self.batch_size
            pairs = training_scenes(range(first, first + self.batch_size), "train", self.toy_weights)
            array = np.stack([render_array(scene, self.size) for scene, _ in pairs])
            captions = [text for _, text in pairs]
            if self.grounding:
                words = [word_targets(scene, text, self.size) for scene, text in pairs]
        else:
            rng = np.random.default_rng([self.seed, step])
            picks = rng.integers(0, len(self.files), self.batch_size)
            array = np.stack([self._load(self.files[i]) for i in picks])
            captions = [self.files[i].with_suffix(".txt").read_text(encoding="utf-8").strip() for i in picks]
        images = to_tensor(array)
        lowres = downsample(images, self.lowres_size) if self.lowres_size else None
        return images, lowres, captions, words

    def _load(self, path: Path) -> np.ndarray:
        return center_crop_resize(load_rgb(path), self.size)


def collate(item):
    return item  # a dataset item is already a whole batch
