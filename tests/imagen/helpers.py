"""Tiny models and a deterministic fake text encoder, so imagen tests run in seconds on a CPU."""

from __future__ import annotations

import hashlib

import torch

from evalkit.imagen.cascade import ImagenCascade, Stage
from evalkit.imagen.diffusion import Schedule
from evalkit.imagen.efficient_unet import EfficientUNetConfig, build_model
from evalkit.imagen.sampling import SamplerConfig
from evalkit.imagen.text_encoders import FrozenTextEncoder
from evalkit.imagen.unet import UNetConfig

TEXT_DIM = 16


class HashTextEncoder(FrozenTextEncoder):
    """One pseudo-random vector per word (seeded by its hash): deterministic and offline.

    `layers=2` mimics an encoder asked for two hidden states: each token gets a second vector after the first.
    """

    kind = "hash"

    def __init__(self, max_tokens: int = 8, layers: int = 1):
        super().__init__(max_tokens)
        self.calls = 0
        self.width, self.layers = TEXT_DIM, layers
        self.dim = TEXT_DIM * layers

    def spec(self) -> dict:
        spec = super().spec()
        if self.layers > 1:
            spec["layers"] = [-1] + list(range(self.layers - 1))
        return spec

    def _encode_batch(self, prompts):
        self.calls += 1
        words = [p.split() for p in prompts]
        for prompt, w in zip(prompts, words):
            self._note_truncation(prompt, len(w))
        length = max(1, min(self.max_tokens, max(len(w) for w in words)))
        tokens = torch.zeros(len(prompts), length, self.dim)
        mask = torch.zeros(len(prompts), length, dtype=torch.bool)
        for i, w in enumerate(words):
            for j, word in enumerate(w[:length]):
                seed = int(hashlib.sha256(word.encode()).hexdigest()[:8], 16)
                tokens[i, j] = torch.cat([torch.randn(TEXT_DIM, generator=torch.Generator().manual_seed(seed + k))
                                          for k in range(self.layers)])
                mask[i, j] = True
        return tokens, mask, tokens.mean(1)


def tiny_base_config() -> dict:
    return UNetConfig(image_size=8, dim=8, channel_mults=(1, 2), num_res_blocks=1, attn_levels=(1,),
                      text_dim=TEXT_DIM, cond_dim=16, heads=2).to_dict()


def tiny_sr_config(size: int = 16, lowres: int = 8) -> dict:
    return EfficientUNetConfig(image_size=size, lowres_size=lowres, dim=8, channel_mults=(1, 2), num_res_blocks=(1, 2),
                               attn_levels=(1,), text_dim=TEXT_DIM, cond_dim=16, heads=2).to_dict()


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Zero-initialised output layers make an untrained model trivial; give every weight a random value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def tiny_cascade(seed: int = 0) -> ImagenCascade:
    encoder = HashTextEncoder()
    spec = encoder.spec()
    stages = [
        Stage("base", randomize(build_model(tiny_base_config()), seed), tiny_base_config(), Schedule("cosine"),
              SamplerConfig("dpm++2m", 4, 3.0, "dynamic"), spec),
        Stage("sr1", randomize(build_model(tiny_sr_config()), seed + 1), tiny_sr_config(), Schedule("cosine"),
              SamplerConfig("ddim", 3, 2.0, "static", aug_level=0.1), spec),
    ]
    return ImagenCascade(stages, text_encoder=encoder)
