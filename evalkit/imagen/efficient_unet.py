"""Efficient U-Net for super-resolution (paper App. B.1, scaled down).

Differences from the base U-Net, as in the paper: more residual blocks at the low resolutions (where they are
cheap), skip connections scaled by 1/sqrt(2), downsampling *before* a stage's convolutions and upsampling *after*
them, text cross-attention only at the low resolutions (none in the last, full-resolution stage). The low-res
image is upsampled to the target size and concatenated on channels; the noise-augmentation level is embedded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evalkit.imagen.layers import ResBlock, ScalarEmbedding, TextAttention, TextConditioner, group_norm


@dataclass
class EfficientUNetConfig:
    image_size: int = 64
    lowres_size: int = 32
    dim: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: tuple[int, ...] = (1, 2, 3)  # per stage, full resolution first
    attn_levels: tuple[int, ...] = (2,)  # stages with text cross-attention; never stage 0
    text_dim: int = 384
    extra_text_dim: int = 0  # features from earlier encoder layers after the text_dim ones (TextConditioner)
    cond_dim: int = 128
    heads: int = 4

    def to_dict(self) -> dict:
        return {"type": "efficient_unet", **asdict(self)}


SKIP_SCALE = 1 / math.sqrt(2)


class EfficientUNet(nn.Module):
    def __init__(self, config: EfficientUNetConfig):
        super().__init__()
        if 0 in config.attn_levels:
            raise ValueError("the Efficient U-Net has no attention in its full-resolution stage")
        if len(config.num_res_blocks) != len(config.channel_mults):
            raise ValueError("num_res_blocks needs one entry per stage")
        self.config = config
        dim, emb_dim = config.dim, config.dim * 4
        self.time_emb = ScalarEmbedding(dim, emb_dim)
        self.aug_emb = ScalarEmbedding(dim, emb_dim)
        self.text = TextConditioner(config.text_dim, config.cond_dim, emb_dim, config.heads, config.extra_text_dim)
        self.stem = nn.Conv2d(6, dim, 3, padding=1)  # noisy image + upsampled low-res conditioning image

        chans = [dim * m for m in config.channel_mults]
        self.downsample = nn.ModuleList()
        self.down_blocks = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        ch = dim
        for stage, out_ch in enumerate(chans):
            # DBlock: strided conv first (stage 0 keeps the resolution), then residual blocks, then attention.
            self.downsample.append(nn.Conv2d(ch, out_ch, 3, stride=2 if stage else 1, padding=1))
            self.down_blocks.append(nn.ModuleList(ResBlock(out_ch, out_ch, emb_dim) for _ in range(config.num_res_blocks[stage])))
            self.down_attn.append(self._attention(out_ch, stage))
            ch = out_ch
        self.up_blocks = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for stage in reversed(range(len(chans))):
            out_ch = chans[stage]
            # UBlock: residual blocks on [h, skip/sqrt(2)], attention, then upsample after the convolutions.
            blocks = [ResBlock(ch + out_ch, out_ch, emb_dim)]
            blocks += [ResBlock(out_ch, out_ch, emb_dim) for _ in range(config.num_res_blocks[stage] - 1)]
            self.up_blocks.append(nn.ModuleList(blocks))
            self.up_attn.append(self._attention(out_ch, stage))
            prev = chans[stage - 1] if stage else out_ch
            self.upsample.append(
                nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(out_ch, prev, 3, padding=1))
                if stage else nn.Identity()
            )
            ch = prev
        self.head = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv2d(ch, 3, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def _attention(self, ch: int, stage: int) -> nn.Module:
        if stage in self.config.attn_levels:
            return TextAttention(ch, self.config.cond_dim, self.config.heads, self_attention=False)
        return nn.Identity()

    def forward(self, x, t, tokens, mask, lowres=None, aug_level=None):
        if lowres is None or aug_level is None:
            raise ValueError("a super-resolution U-Net needs the low-res image and its augmentation level")
        context, context_mask, pooled = self.text(tokens, mask)
        emb = self.time_emb(t) + self.aug_emb(aug_level) + pooled
        up = F.interpolate(lowres, size=x.shape[-2:], mode="bilinear", align_corners=False, antialias=False)
        h = self.stem(torch.cat([x, up], dim=1))
        skips = []
        for down, blocks, attn in zip(self.downsample, self.down_blocks, self.down_attn):
            h = down(h)
            for block in blocks:
                h = block(h, emb)
            if isinstance(attn, TextAttention):
                h = attn(h, context, context_mask)
            skips.append(h)
        for blocks, attn, upsample in zip(self.up_blocks, self.up_attn, self.upsample):
            h = torch.cat([h, skips.pop() * SKIP_SCALE], dim=1)
            for block in blocks:
                h = block(h, emb)
            if isinstance(attn, TextAttention):
                h = attn(h, context, context_mask)
            h = upsample(h)
        return self.head(h)


def build_model(config: dict) -> nn.Module:
    """Instantiate a U-Net from its saved JSON config (`type` picks the architecture)."""
    from evalkit.imagen.unet import UNet, UNetConfig

    config = dict(config)
    kind = config.pop("type", None)
    tuples = {k: tuple(v) for k, v in config.items() if isinstance(v, list)}
    config.update(tuples)
    if kind == "unet":
        return UNet(UNetConfig(**config))
    if kind == "efficient_unet":
        return EfficientUNet(EfficientUNetConfig(**config))
    raise ValueError(f"unknown U-Net type {kind!r}")
