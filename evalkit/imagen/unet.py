"""The base U-Net (paper App. F.1, scaled down): BigGAN residual blocks, text in the embedding and attention.

With `lowres_size` set it is a plain super-resolution U-Net, the baseline for the Efficient U-Net (App. B.1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evalkit.imagen.diffusion import PREDICTIONS
from evalkit.imagen.layers import (COORDINATE_FEATURES, ResBlock, ScalarEmbedding, TextAttention, TextConditioner,
                                   coordinate_features, group_norm)


@dataclass
class UNetConfig:
    image_size: int = 32
    dim: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 3)
    num_res_blocks: int = 2
    attn_levels: tuple[int, ...] = (1, 2)  # levels (0 = full resolution) with text-conditioned self-attention
    text_dim: int = 384
    extra_text_dim: int = 0  # features from earlier encoder layers after the text_dim ones (TextConditioner)
    cond_dim: int = 256
    heads: int = 4
    dropout: float = 0.0
    # Feed (x, y) coordinate planes to the first layer. Attention has no position embedding and zero padding is a
    # weak hint, so without them this small U-Net placed objects by the noise alone and ignored "left"/"top".
    coord_channels: bool = False
    # Add text-dependent linear ramps in x and y (coefficients from the text+time embedding) at the stem and the
    # bottleneck: a first-order path from "left"/"top" to where things go (see TextCoordinateBias).
    text_coord_bias: bool = False
    # Trainable transformer layers over the frozen encoder's tokens (TokenRefinerBlock), and pixel positions in the
    # attention layers' queries and keys (TextAttention `position`): for relations ("a red circle left of ...").
    text_refiner_layers: int = 0
    attn_position: bool = False
    # What the network outputs: "eps" (the paper) or "v" (Salimans & Ho 2022, as in Imagen Video). From eps, x0 near
    # t = 1 divides a small eps error by alpha ~ 5e-5, so in this small base the noise, not the text, set where
    # objects go; from v, x0 = alpha * x_t - sigma * v stays well-conditioned (diffusion.predicted_x0).
    prediction: str = "eps"
    # Add a text-dependent spatial map, linear in the mean token and in fixed coordinate features, at the stem and
    # the bottleneck (TokenLayoutBias): a first-order path from "left"/"right" to where things go.
    text_layout_bias: bool = False
    # Run the U-Net at this lower resolution: x_t is average-pooled to it and the output upsampled back (bilinear).
    # Only for x0-prediction: a high-noise expert's x0 is a blurry layout, which 16 px hold at a quarter of the cost.
    work_size: int | None = None
    # Set for a super-resolution stage (the plain-U-Net baseline the Efficient U-Net is compared with): the
    # upsampled low-res image is concatenated on channels and the augmentation level embedded, as in EfficientUNet.
    lowres_size: int | None = None

    def to_dict(self) -> dict:
        return {"type": "unet", **asdict(self)}


def coordinate_planes(x: torch.Tensor) -> torch.Tensor:
    """[B, 2, H, W]: the x and y coordinate of each pixel centre, in [-1, 1]."""
    b, _, h, w = x.shape
    planes = coordinate_features(h, w, x.device, x.dtype, frequencies=0).T.reshape(2, h, w)
    return planes[None].expand(b, -1, -1, -1)


class TextCoordinateBias(nn.Module):
    """h += a(emb) * x + b(emb) * y per channel, with a, b linear in the conditioning embedding (zero at start).

    Coordinate planes alone sit at a saddle: a ramp helps "left" prompts as much as it hurts "right" ones, so
    its gradient averages out until the scale-shift path tells them apart, and in our runs it never grew. Making
    the ramp's sign a function of the text gives a gradient that does not cancel.
    """

    def __init__(self, emb_dim: int, channels: int):
        super().__init__()
        self.to_coeff = nn.Linear(emb_dim, 2 * channels)
        nn.init.zeros_(self.to_coeff.weight)
        nn.init.zeros_(self.to_coeff.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        coeff = self.to_coeff(F.silu(emb)).reshape(h.shape[0], h.shape[1], 2)
        return h + torch.einsum("bck,bkhw->bchw", coeff, coordinate_planes(h))


class TokenLayoutBias(nn.Module):
    """h += sum_f A_f(mean token) * feature_f(pixel), with A linear (zero at start), features from
    `layers.coordinate_features` (x, y and their sines and cosines).

    Position words move the pooled embedding by <1% (the learned pooling attends to colour and shape), and every
    path that multiplies a pixel's position with a word through attention or scale-shift starts at a saddle (its
    gradient for "left" prompts cancels the one for "right" prompts until another weight has grown). This path is
    linear in its weights given the tokens and the pixel, so the first gradient step already points the right way.
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.channels = channels
        self.to_coeff = nn.Linear(cond_dim, channels * COORDINATE_FEATURES)
        nn.init.zeros_(self.to_coeff.weight)
        nn.init.zeros_(self.to_coeff.bias)

    def forward(self, h: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        weights = context_mask[..., None].to(context.dtype)
        mean_token = (context * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        coeff = self.to_coeff(mean_token).reshape(h.shape[0], self.channels, COORDINATE_FEATURES)
        features = coordinate_features(h.shape[-2], h.shape[-1], h.device, h.dtype)  # [H*W, F]
        return h + torch.einsum("bcf,pf->bcp", coeff, features).reshape(h.shape)


class UNet(nn.Module):
    """eps(x_t, t, text); with `lowres_size` set also conditioned on the low-res image and its aug level."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        if config.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {config.prediction!r} (choose {', '.join(PREDICTIONS)})")
        if config.work_size is not None:
            if config.prediction != "x0" or config.lowres_size or config.image_size % config.work_size:
                raise ValueError(f"work_size {config.work_size}: needs prediction x0, no low-res input and a divisor "
                                 f"of image_size {config.image_size}")
        self.config = config
        dim, emb_dim = config.dim, config.dim * 4
        self.time_emb = ScalarEmbedding(dim, emb_dim)
        self.text = TextConditioner(config.text_dim, config.cond_dim, emb_dim, config.heads, config.extra_text_dim,
                                    config.text_refiner_layers)
        self.aug_emb = ScalarEmbedding(dim, emb_dim) if config.lowres_size else None
        self.stem = nn.Conv2d(6 if config.lowres_size else 3, dim, 3, padding=1)
        # A separate, zero-initialised conv (not extra stem channels) so older weights load and start unchanged.
        self.coord = nn.Conv2d(2, dim, 3, padding=1) if config.coord_channels else None
        if self.coord is not None:
            nn.init.zeros_(self.coord.weight)
            nn.init.zeros_(self.coord.bias)

        def attention(ch: int, level: int) -> nn.Module:
            if level in config.attn_levels:
                return TextAttention(ch, config.cond_dim, config.heads, True, config.attn_position)
            return nn.Identity()

        self.down = nn.ModuleList()
        skips, ch = [dim], dim
        levels = len(config.channel_mults)
        for level, mult in enumerate(config.channel_mults):
            out_ch = dim * mult
            for _ in range(config.num_res_blocks):
                self.down.append(nn.ModuleList([ResBlock(ch, out_ch, emb_dim, config.dropout), attention(out_ch, level)]))
                ch = out_ch
                skips.append(ch)
            if level < levels - 1:
                self.down.append(nn.ModuleList([ResBlock(ch, ch, emb_dim, config.dropout, "down"), nn.Identity()]))
                skips.append(ch)
        self.mid = nn.ModuleList([
            ResBlock(ch, ch, emb_dim, config.dropout),
            TextAttention(ch, config.cond_dim, config.heads, True, config.attn_position),
            ResBlock(ch, ch, emb_dim, config.dropout),
        ])
        self.coord_bias = nn.ModuleList([TextCoordinateBias(emb_dim, dim), TextCoordinateBias(emb_dim, ch)]) \
            if config.text_coord_bias else None
        self.layout_bias = nn.ModuleList([TokenLayoutBias(config.cond_dim, dim), TokenLayoutBias(config.cond_dim, ch)]) \
            if config.text_layout_bias else None
        self.up = nn.ModuleList()
        for level in reversed(range(levels)):
            out_ch = dim * config.channel_mults[level]
            for _ in range(config.num_res_blocks + 1):
                self.up.append(nn.ModuleList([ResBlock(ch + skips.pop(), out_ch, emb_dim, config.dropout), attention(out_ch, level)]))
                ch = out_ch
            if level > 0:
                self.up.append(nn.ModuleList([ResBlock(ch, ch, emb_dim, config.dropout, "up"), nn.Identity()]))
        self.head = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv2d(ch, 3, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @staticmethod
    def _run_block(block: nn.ModuleList, h, emb, context, context_mask):
        res, attn = block
        h = res(h, emb)
        return attn(h, context, context_mask) if isinstance(attn, TextAttention) else h

    def forward(self, x, t, tokens, mask, lowres=None, aug_level=None):
        size = x.shape[-1]
        work = self.config.work_size
        if work is not None and size != work:
            return F.interpolate(self._forward(F.avg_pool2d(x, size // work), t, tokens, mask), size=x.shape[-2:],
                                 mode="bilinear", align_corners=False)
        return self._forward(x, t, tokens, mask, lowres, aug_level)

    def _forward(self, x, t, tokens, mask, lowres=None, aug_level=None):
        context, context_mask, pooled = self.text(tokens, mask)
        emb = self.time_emb(t) + pooled
        if self.aug_emb is not None:
            if lowres is None or aug_level is None:
                raise ValueError("a super-resolution U-Net needs the low-res image and its augmentation level")
            emb = emb + self.aug_emb(aug_level)
            up = F.interpolate(lowres, size=x.shape[-2:], mode="bilinear", align_corners=False, antialias=False)
            x = torch.cat([x, up], dim=1)
        h = self.stem(x)
        if self.coord is not None:
            h = h + self.coord(coordinate_planes(x))
        if self.coord_bias is not None:
            h = self.coord_bias[0](h, emb)
        if self.layout_bias is not None:
            h = self.layout_bias[0](h, context, context_mask)
        hs = [h]
        for block in self.down:
            h = self._run_block(block, h, emb, context, context_mask)
            hs.append(h)
        if self.coord_bias is not None:
            h = self.coord_bias[1](h, emb)
        if self.layout_bias is not None:
            h = self.layout_bias[1](h, context, context_mask)
        h = self.mid[0](h, emb)
        h = self.mid[1](h, context, context_mask)
        h = self.mid[2](h, emb)
        for block in self.up:
            if block[0].resample != "up":
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run_block(block, h, emb, context, context_mask)
        return self.head(h)
