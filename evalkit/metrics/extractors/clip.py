"""``clip``: open_clip image embeddings with open_clip's own preprocessing (the image side of CLIP score), and the
matching text embeddings (:meth:`ClipFeatures.encode_texts`).

Neither side is L2-normalised here (the description says so): CLIP score = 100 * max(cos(image, text), 0) is formed
from the two by the caller. Settings: ``model`` (open_clip name, default ViT-B-32), ``pretrained`` (default openai).
Weights come from the registry entry ``clip-<model>-<pretrained>`` or an explicit ``--weights clip=FILE``; OpenAI's
checkpoints are TorchScript archives and need QuickGELU, both handled here. The other CLIP protocols (clean-fid's,
CMMD's) reuse this loading with their own preprocessing (extractors/clip_protocols.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence
from unittest import mock

import numpy as np
import torch
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit import images as image_io
from evalkit.metrics import weights as weight_registry
from evalkit.metrics.extractors.base import ExtractorOptions, ExtractorSpec, Setting
from evalkit.metrics.extractors.batching import embed_files
from evalkit.metrics.weight_files import load_error, read_state_dict


def clip_weights(extractor: str, model: str, pretrained: str, options: ExtractorOptions) -> tuple[Path, str | None]:
    """(local file, registry name or None) of the CLIP weights for ``model``/``pretrained``."""
    name = weight_registry.clip_weights_name(model, pretrained)
    registered = name in weight_registry.REGISTRY
    if options.weights is None and not registered:
        known = ", ".join(n for n in weight_registry.REGISTRY if n.startswith("clip-"))
        raise EvalkitError(f"no registry entry for CLIP {model}/{pretrained}; pass --weights {extractor}=FILE "
                           f"(registered: {known})")
    return weight_registry.resolve(name, options.weights, download=options.download), name if registered else None


def load_open_clip(model: str, pretrained: str, path: Path, device: str):
    """(network, open_clip's eval preprocess, tokenizer) for an open_clip model name and a checkpoint file.

    The file is read by ``weight_files.read_state_dict`` (safetensors, ``torch.load(weights_only=True)``, or a
    TorchScript archive as OpenAI ships CLIP) before the network is built; open_clip then converts and loads it."""
    import open_clip

    if model not in open_clip.list_models():
        raise EvalkitError(f"unknown open_clip model {model!r} (e.g. ViT-B-32, ViT-L-14, ViT-L-14-336; "
                           "open_clip.list_models() lists all)")
    # big_vision .npz/.npy weights (SigLIP) are read by open_clip with numpy, which never unpickles
    state = None if path.suffix in (".npz", ".npy") else read_clip_state(path, model)
    net, _, preprocess = open_clip.create_model_and_transforms(
        model, pretrained=None, force_quick_gelu=(pretrained == "openai"), device="cpu"
    )
    try:
        # open_clip's load_checkpoint does the layout conversions; its file reading is replaced by the state read
        # above, so the file is never opened by a loader that could unpickle it in full.
        if state is None:
            open_clip.load_checkpoint(net, str(path))
        else:
            with mock.patch.object(open_clip.factory, "load_state_dict", lambda *args, **kwargs: state):
                open_clip.load_checkpoint(net, str(path))
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise EvalkitError(f"{path} is not a checkpoint of open_clip {model} ({load_error(error)})") from None
    return net.to(device).eval().requires_grad_(False), preprocess, open_clip.get_tokenizer(model)


def read_clip_state(path: Path, model: str) -> dict:
    """A CLIP checkpoint's tensors as open_clip's own reader returns them (a training checkpoint's ``state_dict``
    unwrapped, a ``module.`` prefix dropped, a TorchScript archive's non-weight entries removed)."""
    state = read_state_dict(path, f"a checkpoint of open_clip {model}", unwrap=("state_dict",), torchscript=True)
    for key in ("input_resolution", "context_length", "vocab_size"):
        state.pop(key, None)
    if state and next(iter(state)).startswith("module."):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def token_counts(tokenizer, texts: Sequence[str]) -> list[int]:
    """How many tokens each text has with its start/end tokens, before any truncation to the context length."""
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    if isinstance(tokenizer, SimpleTokenizer) and tokenizer.reduction_fn is None:
        return [len(tokenizer.encode(text)) + 2 for text in texts]  # + start-of-text and end-of-text
    if isinstance(tokenizer, HFTokenizer):
        return [len(tokenizer.tokenizer(tokenizer.clean_fn(text))["input_ids"]) for text in texts]
    raise EvalkitError(f"cannot count tokens for {type(tokenizer).__name__}: truncation would go unreported")


class ClipFeatures:
    """Image embeddings of one open_clip network under one preprocessing protocol (see the module docstring)."""

    def __init__(self, name: str, model: str, pretrained: str, weights_path: Path, weights_name: str | None,
                 options: ExtractorOptions, protocol: Callable | None = None, normalise: bool = False):
        self.name, self.model_name, self.pretrained = name, model, pretrained
        self.weights_path, self.weights_name = Path(weights_path), weights_name
        self.weights_sha256 = weight_registry.sha256_file(self.weights_path)
        self.device, self.batch_size, self.workers = options.device, options.batch_size, options.workers
        self.net, self._open_clip_preprocess, self.tokenizer = load_open_clip(model, pretrained, self.weights_path,
                                                                              options.device)
        self.normalise = normalise
        self.input_size = _side(self.net.visual.image_size)
        self.dim = int(self.net.visual.output_dim)
        # protocol(self) -> (load: path -> tensor, preprocessing description); default: open_clip's own transform
        self._load, self.preprocessing = (protocol or _open_clip_protocol)(self)

    def description(self) -> dict:
        return {
            "extractor": self.name,
            "network": f"open_clip {self.model_name} ({self.pretrained}{self._activation_note()}) encode_image",
            "weights_sha256": self.weights_sha256,
            "weights_name": self.weights_name,
            "preprocessing": self.preprocessing,
            "normalised": self.normalise,
            "dim": self.dim,
        }

    def _activation_note(self) -> str:
        return ", QuickGELU" if self.pretrained == "openai" else ""

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        embeds = self.net.encode_image(batch)
        return torch.nn.functional.normalize(embeds, dim=-1) if self.normalise else embeds

    def compute(self, paths: Sequence[Path], desc: str | None = None) -> np.ndarray:
        """N x dim float32 image embeddings in the order of ``paths`` (no cache)."""
        return embed_files(paths, self._load, self._forward, self.dim, device=self.device,
                           batch_size=self.batch_size, workers=self.workers, desc=desc or self.name)

    def encode_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """(N x dim float32 text embeddings, not normalised; truncated[i]: text i had more tokens than the context
        length and was cut to it, as open_clip's tokenizer does)."""
        texts = list(texts)
        limit = int(getattr(self.tokenizer, "context_length", None) or self.net.context_length)
        truncated = [count > limit for count in token_counts(self.tokenizer, texts)]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(texts[start : start + self.batch_size]).to(self.device)
                out[start : start + len(tokens)] = self.net.encode_text(tokens).float().cpu().numpy()
        if not np.isfinite(out).all():
            raise EvalkitError(f"{self.name}: non-finite text embeddings")
        return out, truncated


def _side(size) -> int:
    if isinstance(size, (tuple, list)):
        if size[0] != size[1]:
            raise EvalkitError(f"non-square CLIP input {tuple(size)} is not supported")
        return int(size[0])
    return int(size)


def _open_clip_protocol(features: ClipFeatures):
    preprocess = features._open_clip_preprocess
    cfg = dict(getattr(features.net.visual, "preprocess_cfg", {}) or {})
    described = {"protocol": "open_clip", "input_size": features.input_size,
                 **{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}}
    return (lambda path: preprocess(Image.fromarray(image_io.load_rgb(path)))), described


def _build(options: ExtractorOptions, settings: dict[str, str]) -> ClipFeatures:
    path, registered = clip_weights("clip", settings["model"], settings["pretrained"], options)
    return ClipFeatures("clip", settings["model"], settings["pretrained"], path, registered, options)


def clip_settings(default_model: str) -> dict[str, Setting]:
    return {
        "model": Setting(default_model, None, "open_clip model name"),
        "pretrained": Setting("openai", None, "open_clip pretrained tag (names the registry weights)"),
    }


def clip_weight_names(settings: dict[str, str]) -> list[str]:
    return [weight_registry.clip_weights_name(settings["model"], settings["pretrained"])]


SPEC = ExtractorSpec(
    name="clip",
    summary="open_clip image embeddings, open_clip preprocessing (CLIP score); text embeddings too",
    settings=clip_settings("ViT-B-32"),
    build=_build,
    weights=clip_weight_names,
)
