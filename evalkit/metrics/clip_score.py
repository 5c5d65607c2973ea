"""CLIP score with open_clip: 100 * max(cos(image embedding, text embedding), 0) per image, torchmetrics' convention.

(torchmetrics' CLIPScore clamps the mean rather than each image; the two agree whenever no cosine is negative,
which is the case for real CLIP models on image/caption pairs.)
The embeddings come from the ``clip`` feature extractor (evalkit.metrics.extractors.clip), which owns loading
(registry ``clip-<model>-<pretrained>`` or an explicit file; OpenAI's TorchScript archives and QuickGELU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from evalkit.errors import EvalkitError
from evalkit.metrics import weights as weight_registry
from evalkit.metrics.extractors.base import ExtractorOptions
from evalkit.metrics.extractors.clip import ClipFeatures


def clip_scores(image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
    """Per-row 100 * max(cos(image_i, text_i), 0), in float64."""
    image = torch.nn.functional.normalize(torch.as_tensor(image_embeds, dtype=torch.float64), dim=-1)
    text = torch.nn.functional.normalize(torch.as_tensor(text_embeds, dtype=torch.float64), dim=-1)
    return (100 * (image * text).sum(dim=-1).clamp(min=0)).numpy()


class ClipScorer:
    """CLIP score of images against their prompts (the pre-seam interface; scoring code uses the ``clip``
    extractor's ``compute`` and ``encode_texts`` directly)."""

    def __init__(self, model: str = "ViT-B-32", pretrained: str = "openai", weights_path: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 32, workers: int = 2, download: bool = False):
        name = weight_registry.clip_weights_name(model, pretrained)
        registered = name in weight_registry.REGISTRY
        if weights_path is None and not registered:
            raise EvalkitError(f"no registry entry for CLIP {model}/{pretrained}; pass --clip-weights FILE "
                               f"(known: {', '.join(n for n in weight_registry.REGISTRY if n.startswith('clip-'))})")
        path = weight_registry.resolve(name, weights_path, download=download)
        options = ExtractorOptions(device=device, batch_size=batch_size, workers=workers)
        self.extractor = ClipFeatures("clip", model, pretrained, path, name if registered else None, options)
        self.model_name, self.pretrained, self.weights_path = model, pretrained, path
        self.weights_sha256 = self.extractor.weights_sha256
        self.net, self.tokenizer = self.extractor.net, self.extractor.tokenizer

    @property
    def description(self) -> dict:
        return {"model": self.model_name, "pretrained": self.pretrained, "weights_sha256": self.weights_sha256}

    def image_embeddings(self, paths: Sequence[Path]) -> torch.Tensor:
        embeds = self.extractor.compute(paths, desc="clip images")
        return torch.nn.functional.normalize(torch.from_numpy(embeds), dim=-1)

    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.from_numpy(self.extractor.encode_texts(texts)[0]), dim=-1)

    def scores(self, paths: Sequence[Path], prompts: Sequence[str]) -> np.ndarray:
        """Per-image CLIP score of image i against prompt i (each distinct prompt is encoded once)."""
        if len(paths) != len(prompts):
            raise ValueError("one prompt per image is required")
        if not paths:
            raise EvalkitError("no images to score")
        distinct = sorted(set(prompts))
        text, _ = self.extractor.encode_texts(distinct)
        row = {p: i for i, p in enumerate(distinct)}
        image = self.extractor.compute(paths, desc="clip images")
        return clip_scores(image, text[[row[p] for p in prompts]])
