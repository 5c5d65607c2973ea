"""Token grounding: a training loss that puts each object word's text attention on that object's pixels.

After TokenCompose (Wang et al., CVPR 2024), which supervises a diffusion U-Net's cross-attention maps of noun
tokens with segmentation masks; the toy world has exact masks, so none have to be predicted.

Why: relation prompts come out with the right axis but the two colours in a coin-flip order (reports/imagen/README.md,
"2026-12-03"). The diffusion loss says only how far the whole image is from the target, so near t = 1 the signal
that "red" is the subject of "left of" is one number per image, shared by every pixel and word. This loss gives
each word a target at every pixel and every noise level: attention from the left pixels should go to "red".

Targets (`word_targets`): each colour, shape (singular or plural) and, when the caption names sizes, size word
that occurs once in the caption; its mask is the union of the objects with that colour / shape / size. Every
toy-world object is named in its caption, so that union is exactly what the word refers to. A word said twice
("a red circle left of a blue circle") is left out: which circle it means is the thing being learned.

Loss (`grounding_loss`), per word and per text-attention layer, the word's map being the head-mean of its
subword tokens' attention probabilities over the image positions:
    L = 1 - sum_p A(p) M(p) / sum_p A(p)
with M the word's mask area-pooled to the layer's resolution; averaged over words and layers. 0 when all of a
word's attention is on its object, 1 when none is.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from evalkit.errors import EvalkitError
from evalkit.toyworld.captions import PLURALS
from evalkit.toyworld.palette import BACKGROUND, COLOURS, SIZES
from evalkit.toyworld.render import render_array
from evalkit.toyworld.scenes import Scene

_SHAPE_OF_WORD = {**{shape: shape for shape in PLURALS}, **{plural: shape for shape, plural in PLURALS.items()}}


@dataclass(frozen=True)
class WordTarget:
    start: int  # character span of the word in the caption
    end: int
    mask: np.ndarray  # [size, size] bool: the pixels of the objects the word names


def object_masks(scene: Scene, size: int) -> list[np.ndarray]:
    """Each object's pixels at `size`, rendered alone exactly as `render_array` draws it in the scene."""
    background = np.asarray(BACKGROUND, dtype=np.uint8)
    return [(render_array(Scene(objects=(obj,), category=scene.category), size) != background).any(-1)
            for obj in scene.objects]


def word_targets(scene: Scene, caption: str, size: int) -> list[WordTarget]:
    """The caption's once-said colour / shape / size words with the pixels they name (module docstring)."""
    masks = object_masks(scene, size)
    found: list[tuple[str, str, int, int]] = []  # (kind, value, start, end)
    for match in re.finditer(r"[a-z]+", caption.lower()):
        word = match.group()
        if word in COLOURS:
            found.append(("colour", word, match.start(), match.end()))
        elif word in _SHAPE_OF_WORD:
            found.append(("shape", _SHAPE_OF_WORD[word], match.start(), match.end()))
        elif word in SIZES and scene.say_size:
            found.append(("size", word, match.start(), match.end()))
    said = [(kind, value) for kind, value, _, _ in found]
    targets = []
    for kind, value, start, end in found:
        if said.count((kind, value)) != 1:
            continue
        mask = np.zeros((size, size), dtype=bool)
        for obj, obj_mask in zip(scene.objects, masks):
            if getattr(obj, kind) == value:
                mask |= obj_mask
        if mask.any():
            targets.append(WordTarget(start, end, mask))
    return targets


@dataclass
class GroundingTargets:
    """A batch's words as tensors: `selection` [B, K, T] (a word's weight on each context position, 1/n over
    its n subword tokens; position 0 is the U-Net's null token), `masks` [B, K, S, S] float, `valid` [B, K]."""

    selection: torch.Tensor
    masks: torch.Tensor
    valid: torch.Tensor

    def to(self, device) -> "GroundingTargets":
        return GroundingTargets(self.selection.to(device), self.masks.to(device), self.valid.to(device))


def build_targets(tokenizer, captions: list[str], words: list[list[WordTarget]], context_length: int,
                  max_tokens: int) -> GroundingTargets:
    """Align each word's characters with the tokenizer's tokens (a fast tokenizer's offsets) for a batch whose
    text context has `context_length` positions (the null token, then the encoder's tokens)."""
    if not getattr(tokenizer, "is_fast", False):
        raise EvalkitError("--grounding-weight needs a text encoder with a fast (offset-mapping) tokenizer")
    offsets = tokenizer(captions, truncation=True, max_length=max_tokens, return_offsets_mapping=True)["offset_mapping"]
    k = max(1, max(len(w) for w in words))
    size = next((t.mask.shape[0] for w in words for t in w), 1)
    selection = torch.zeros(len(captions), k, context_length)
    masks = torch.zeros(len(captions), k, size, size)
    valid = torch.zeros(len(captions), k, dtype=torch.bool)
    for b, (spans, targets) in enumerate(zip(offsets, words)):
        for j, target in enumerate(targets):
            tokens = [i for i, (s, e) in enumerate(spans) if e > s and s >= target.start and e <= target.end]
            tokens = [i for i in tokens if i + 1 < context_length]
            if not tokens:  # truncated away
                continue
            selection[b, j, [i + 1 for i in tokens]] = 1.0 / len(tokens)
            masks[b, j] = torch.from_numpy(target.mask.astype(np.float32))
            valid[b, j] = True
    return GroundingTargets(selection, masks, valid)


def grounding_loss(maps: list[torch.Tensor], targets: GroundingTargets) -> torch.Tensor:
    """Mean of 1 - (word attention on its mask) / (word attention on the image) over valid words and `maps`
    (each [B, heads, H*W, T]: probabilities of the image positions' queries for the T text positions)."""
    if not maps:
        raise EvalkitError("--grounding-weight: this U-Net has no text-attention layer to ground")
    valid = targets.valid.float()
    count = valid.sum()
    if count == 0:
        return maps[0].sum() * 0.0
    losses = []
    for probs in maps:
        side = int(round(probs.shape[2] ** 0.5))
        word_map = torch.einsum("bhpt,bkt->bkp", probs.float(), targets.selection) / probs.shape[1]
        mask = F.adaptive_avg_pool2d(targets.masks, side).flatten(2)  # area share of each cell
        inside = (word_map * mask).sum(-1)
        total = word_map.sum(-1).clamp_min(1e-12)
        losses.append((((1.0 - inside / total) * valid).sum() / count))
    return torch.stack(losses).mean()


@contextmanager
def recorded_text_attention(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """While open, every TextAttention layer of `model` appends its text-attention probabilities to the list."""
    from evalkit.imagen.layers import TextAttention

    maps: list[torch.Tensor] = []
    layers = [m for m in model.modules() if isinstance(m, TextAttention)]
    for layer in layers:
        layer.recorded = maps
    try:
        yield maps
    finally:
        for layer in layers:
            layer.recorded = None
