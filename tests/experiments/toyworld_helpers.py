"""A tiny MiniLM-conditioned two-stage cascade (8 -> 16 px) saved as a checkpoint, for the toy-world experiments'
smoke tests (they load checkpoints from disk as users do, so the text encoder must be a real, loadable one)."""

from __future__ import annotations

from pathlib import Path

from evalkit.imagen.cascade import ImagenCascade, Stage
from evalkit.imagen.diffusion import Schedule
from evalkit.imagen.efficient_unet import EfficientUNetConfig, build_model
from evalkit.imagen.sampling import SamplerConfig
from evalkit.imagen.unet import UNetConfig

from ..imagen.helpers import randomize

MINILM = {"kind": "minilm", "max_tokens": 32, "dim": 384}


def tiny_minilm_checkpoint(folder: Path) -> Path:
    base = UNetConfig(image_size=8, dim=8, channel_mults=(1, 2), num_res_blocks=1, attn_levels=(1,), text_dim=384,
                      cond_dim=16, heads=2).to_dict()
    sr = EfficientUNetConfig(image_size=16, lowres_size=8, dim=8, channel_mults=(1, 2), num_res_blocks=(1, 1),
                             attn_levels=(1,), text_dim=384, cond_dim=16, heads=2).to_dict()
    stages = [Stage("base", randomize(build_model(base)), base, Schedule("cosine"),
                    SamplerConfig("ddim", 2, 3.0, "static"), MINILM),
              Stage("sr1", randomize(build_model(sr), 1), sr, Schedule("cosine"),
                    SamplerConfig("ddim", 2, 1.0, "static", aug_level=0.0, start_t=0.5), MINILM)]
    ImagenCascade(stages).save_pretrained(folder)
    return folder
