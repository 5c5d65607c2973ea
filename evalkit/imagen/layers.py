"""Building blocks shared by the base U-Net and the Efficient U-Net (paper App. F.1 / B.1)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    # 32 groups as in the paper when the width allows it; tiny CPU widths need fewer.
    groups = math.gcd(32, channels)
    return nn.GroupNorm(min(groups, channels), channels)


def sinusoidal_embedding(values: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Transformer-style embedding of a continuous scalar per sample (time t in [0, 1] or an aug level)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=values.device, dtype=torch.float32) / half)
    args = values.float()[:, None] * scale * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class ScalarEmbedding(nn.Sequential):
    """Sinusoidal features -> MLP; used for the diffusion time and the noise-augmentation level."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))
        self.dim = dim

    def forward(self, values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(sinusoidal_embedding(values, self.dim))


class TextConditioner(nn.Module):
    """LayerNorm + projection of the frozen encoder's tokens, and attention pooling into one vector.

    A learned null token is always appended (and never masked) so that attention stays defined when the
    conditioning is dropped for classifier-free guidance (tokens zeroed, mask all False).

    Tokens may carry `extra_dim` more features after the first `text_dim` (earlier encoder layers, see
    HFTextEncoder.layers): they get their own LayerNorm and a zero-initialised projection added to the main one,
    so a model fine-tuned from a checkpoint without them starts out computing exactly what the checkpoint did.
    """

    def __init__(self, text_dim: int, cond_dim: int, emb_dim: int, heads: int = 4, extra_dim: int = 0,
                 refiner_layers: int = 0):
        super().__init__()
        self.text_dim = text_dim
        self.norm = nn.LayerNorm(text_dim)
        self.proj = nn.Linear(text_dim, cond_dim)
        self.extra_norm = nn.LayerNorm(extra_dim) if extra_dim else None
        self.extra_proj = nn.Linear(extra_dim, cond_dim) if extra_dim else None
        if self.extra_proj is not None:
            nn.init.zeros_(self.extra_proj.weight)
            nn.init.zeros_(self.extra_proj.bias)
        self.null_token = nn.Parameter(torch.randn(1, 1, cond_dim) * 0.02)
        self.refiner = nn.ModuleList([TokenRefinerBlock(cond_dim, heads) for _ in range(refiner_layers)])
        self.pool_query = nn.Parameter(torch.randn(1, 1, cond_dim) * 0.02)
        self.pool = nn.MultiheadAttention(cond_dim, heads, batch_first=True)
        self.to_emb = nn.Sequential(nn.LayerNorm(cond_dim), nn.Linear(cond_dim, emb_dim))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (context [B, L+1, C], context mask [B, L+1], pooled embedding [B, emb_dim])."""
        batch = tokens.shape[0]
        expected = self.text_dim + (self.extra_proj.in_features if self.extra_proj is not None else 0)
        if tokens.shape[-1] != expected:
            raise ValueError(f"text tokens have {tokens.shape[-1]} features; this U-Net takes {expected}")
        context = self.proj(self.norm(tokens[..., : self.text_dim]))
        if self.extra_proj is not None:
            context = context + self.extra_proj(self.extra_norm(tokens[..., self.text_dim:]))
        context = context * mask[..., None].to(tokens.dtype)
        context = torch.cat([self.null_token.expand(batch, -1, -1).to(context.dtype), context], dim=1)
        context_mask = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=mask.device), mask.bool()], dim=1)
        for block in self.refiner:
            context = block(context, context_mask)
        query = self.pool_query.expand(batch, -1, -1).to(context.dtype)
        pooled, _ = self.pool(query, context, context, key_padding_mask=~context_mask, need_weights=False)
        return context, context_mask, self.to_emb(pooled[:, 0])


class TokenRefinerBlock(nn.Module):
    """A small trainable pre-LN transformer layer over the projected tokens (the encoder itself stays frozen).

    A linear probe on frozen MiniLM tokens tells whether a colour word's object is the left/top one of a relation
    73% of the time, an MLP 93-95% (held-out prompts, reports/imagen/text_probe.md): the role is in the features
    but not linearly, and the U-Net's attention reads tokens linearly. The residual branches start at zero, so an older checkpoint loads
    and computes exactly what it did.
    """

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        for layer in (self.attn.out_proj, self.mlp[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(tokens)
        tokens = tokens + self.attn(h, h, h, key_padding_mask=~mask, need_weights=False)[0]
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens * mask[..., None].to(tokens.dtype)  # padding stays zero, as without the refiner


COORDINATE_FREQUENCIES = 4
COORDINATE_FEATURES = 2 + 4 * COORDINATE_FREQUENCIES


def coordinate_features(h: int, w: int, device=None, dtype=None, frequencies: int = COORDINATE_FREQUENCIES) -> torch.Tensor:
    """[H*W, 2 + 4 * frequencies]: each pixel centre's (x, y) in [-1, 1] and their sines/cosines."""
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(h * w, 2)
    scaled = grid[:, None, :] * (math.pi * 2.0 ** torch.arange(frequencies, device=device, dtype=dtype))[None, :, None]
    return torch.cat([grid, scaled.sin().flatten(1), scaled.cos().flatten(1)], dim=1)


class ResBlock(nn.Module):
    """BigGAN-style residual block with scale-shift norm: GN(h) * (1 + scale) + shift from the embedding.

    ``resample`` ("up"/"down"/None) rescales inside the block, as in BigGAN, for the base U-Net.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0, resample: str | None = None):
        super().__init__()
        self.resample = resample
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # residual starts as identity: stabler early training
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def _rescale(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(x))
        h = self.conv1(self._rescale(h))
        scale, shift = self.emb(F.silu(emb))[..., None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(self._rescale(x)) + h


class TextAttention(nn.Module):
    """Multi-head attention over the image positions whose keys/values also include the text tokens.

    With ``self_attention=True`` the text keys are concatenated to the image's own keys (the base U-Net,
    App. F.1); with False it is pure cross-attention to the text (Efficient U-Net, App. B.1).
    """

    def __init__(self, channels: int, cond_dim: int, heads: int = 4, self_attention: bool = True,
                 position: bool = False):
        super().__init__()
        self.heads = heads
        # Optional absolute position of each pixel, added where queries and keys are formed (zero at start), so
        # a query can ask "which object goes on the left" without relying on zero padding seen through the convs.
        self.position = nn.Linear(COORDINATE_FEATURES, channels) if position else None
        if self.position is not None:
            nn.init.zeros_(self.position.weight)
            nn.init.zeros_(self.position.bias)
        self.self_attention = self_attention
        self.norm = group_norm(channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_kv = nn.Linear(channels, 2 * channels) if self_attention else None
        self.text_kv = nn.Linear(cond_dim, 2 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # A list while `grounding.recorded_text_attention` is open: the text part of each forward's attention
        # probabilities is appended to it (training with --grounding-weight); None: the fused kernel alone.
        self.recorded: list | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)  # [B, HW, C]
        if self.position is not None:
            seq = seq + self.position(coordinate_features(h, w, x.device, x.dtype))[None]
        q = self.to_q(seq)
        k_text, v_text = self.text_kv(context).chunk(2, dim=-1)
        if self.self_attention:
            k_img, v_img = self.to_kv(seq).chunk(2, dim=-1)
            k = torch.cat([k_img, k_text], dim=1)
            v = torch.cat([v_img, v_text], dim=1)
            mask = torch.cat([torch.ones(b, h * w, dtype=torch.bool, device=x.device), context_mask], dim=1)
        else:
            k, v, mask = k_text, v_text, context_mask

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, t.shape[1], self.heads, c // self.heads).transpose(1, 2)

        if self.recorded is None:
            attn = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask[:, None, None, :])
        else:  # the same attention written out, to keep its probabilities
            scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(c // self.heads)
            probs = scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)
            self.recorded.append(probs[..., h * w:] if self.self_attention else probs)
            attn = probs @ split(v)
        attn = attn.transpose(1, 2).reshape(b, h * w, c)
        return x + self.out(attn).transpose(1, 2).reshape(b, c, h, w)
