"""CLIP score with open_clip: 100 * max(cos(image embedding, text embedding), 0) per image, torchmetrics' convention.

(torchmetrics' CLIPScore clamps the mean rather than each image; the two agree whenever no cosine is negative,
which is the case for real CLIP models on image/caption pairs.)
Weights come from the registry (``clip-<model>-<pretrained>``) or an explicit file; OpenAI's checkpoints are
TorchScript archives and need QuickGELU, both handled here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from evalkit.errors import EvalkitError
from evalkit.metrics import images as image_io
from evalkit.metrics import weights as weight_registry
from evalkit.metrics.features import prefetch_batches


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


class ClipScorer:
    def __init__(self, model: str = "ViT-B-32", pretrained: str = "openai", weights_path: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 32, workers: int = 2, download: bool = False):
        import open_clip

        name = weight_registry.clip_weights_name(model, pretrained)
        if weights_path is None and name not in weight_registry.REGISTRY:
            raise EvalkitError(f"no registry entry for CLIP {model}/{pretrained}; pass --clip-weights FILE "
                               f"(known: {', '.join(n for n in weight_registry.REGISTRY if n.startswith('clip-'))})")
        path = weight_registry.resolve(name, weights_path, download=download)
        if model not in open_clip.list_models():
            raise EvalkitError(f"unknown open_clip model {model!r}")
        self.model_name, self.pretrained, self.weights_path = model, pretrained, path
        self.weights_sha256 = weight_registry.sha256_file(path)
        self.device, self.batch_size, self.workers = device, batch_size, workers
        net, _, self.preprocess = open_clip.create_model_and_transforms(
            model, pretrained=None, force_quick_gelu=(pretrained == "openai"), device="cpu"
        )
        try:
            # Hash checked (registry) or chosen by the user: TorchScript archives need the full unpickler.
            open_clip.load_checkpoint(net, str(path), weights_only=not _is_torchscript(path))
        except (RuntimeError, KeyError, ValueError, OSError, EOFError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise EvalkitError(f"{path} is not a checkpoint of open_clip {model} ({first})") from None
        self.net = net.to(device).eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model)

    @property
    def description(self) -> dict:
        return {"model": self.model_name, "pretrained": self.pretrained, "weights_sha256": self.weights_sha256}

    def _load(self, path: Path) -> torch.Tensor:
        return self.preprocess(Image.fromarray(image_io.load_rgb(path)))

    @torch.inference_mode()
    def image_embeddings(self, paths: Sequence[Path]) -> torch.Tensor:
        out = []
        with tqdm(total=len(paths), desc="clip images", unit="img", leave=False) as bar:
            for batch in prefetch_batches(list(paths), self._load, self.batch_size, self.workers):
                out.append(self.net.encode_image(torch.stack(batch).to(self.device)).float().cpu())
                bar.update(len(batch))
        return torch.nn.functional.normalize(torch.cat(out), dim=-1)

    @torch.inference_mode()
    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
            out.append(self.net.encode_text(tokens).float().cpu())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1)

    def scores(self, paths: Sequence[Path], prompts: Sequence[str]) -> np.ndarray:
        """Per-image CLIP score of image i against prompt i (each distinct prompt is encoded once)."""
        if len(paths) != len(prompts):
            raise ValueError("one prompt per image is required")
        if not paths:
            raise EvalkitError("no images to score")
        distinct = sorted(set(prompts))
        text = self.text_embeddings(distinct)
        row = {p: i for i, p in enumerate(distinct)}
        image = self.image_embeddings(paths)
        cosine = (image * text[[row[p] for p in prompts]]).sum(dim=-1)
        return (100 * cosine.clamp(min=0)).double().numpy()
