"""Checks of a stage's JSON and weights before anything is built from them (``cascade.Stage.load`` calls these).

A checkpoint folder may come from anywhere (``--model-path``), so its JSON is treated as untrusted input:
  keys      the stage JSON's top-level keys, its ``model`` config (the U-Net dataclass's fields plus ``type``),
            ``sampling`` (SamplerConfig's fields) and ``text_encoder`` spec: unknown keys are refused
  types     each value has its field's type (an int is not a bool or a float; tuples are JSON lists)
  bounds    ints in 0..8192 (sizes and widths from 1, heads 1..256, residual blocks per level 0..32),
            lists of 1 to 8 entries (U-Net levels; channel multipliers 1..64), sampling steps 1..8192, floats
            finite with |x| <= 1e6, text encoder ``max_tokens`` in 1..4096: a config cannot ask for a network or
            a sampling loop that would exhaust memory or never finish
  shapes    the network the config describes, built on the meta device (no memory), must have exactly the
            tensor names and shapes the safetensors header lists (read without loading the data), so a config
            edited to disagree with its weights is refused before any real allocation
Each problem raises ``ValueError`` with one line, which ``Stage.load`` turns into an EvalkitError naming the file.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import warnings
from pathlib import Path

MAX_INT = 8192
MAX_LIST = 8
MAX_LIST_ENTRY = 64
MAX_ABS_FLOAT = 1e6
# Fields with a narrower range than 0..MAX_INT (a size of 0 builds empty layers; more blocks than this would take
# minutes just to build on the meta device). List fields bound each entry.
RANGES = {"image_size": (1, MAX_INT), "dim": (1, MAX_INT), "text_dim": (1, MAX_INT), "cond_dim": (1, MAX_INT),
          "heads": (1, 256), "lowres_size": (1, MAX_INT), "work_size": (1, MAX_INT), "num_res_blocks": (0, 32),
          "text_refiner_layers": (0, 32), "steps": (1, MAX_INT), "channel_mults": (1, MAX_LIST_ENTRY),
          "attn_levels": (0, MAX_LIST - 1)}
STAGE_KEYS = {"format", "version", "stage", "model", "schedule", "sampling", "text_encoder", "training", "band"}
TEXT_ENCODER_KEYS = {"kind", "max_tokens", "dim", "layers", "path", "arch"}


def check_stage_json(meta: dict, name: str) -> None:
    """Keys and value types of a stage JSON (its format and version are checked by ``read_stage_metadata``)."""
    unknown = sorted(set(meta) - STAGE_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(STAGE_KEYS))})")
    if meta.get("stage", name) != name:
        raise ValueError(f"'stage' is {meta['stage']!r}, but the file is {name}.json")
    check_model_config(meta["model"])
    if not isinstance(meta.get("schedule", "cosine"), str):
        raise ValueError("'schedule' is not a string")
    _check_fields("sampling", _as_dict("sampling", meta.get("sampling", {})), _sampler_config_class())
    check_text_encoder_spec(_as_dict("text_encoder", meta.get("text_encoder", {})))
    _as_dict("training", meta.get("training", {}))


def check_model_config(config: dict) -> None:
    from evalkit.imagen.efficient_unet import EfficientUNetConfig
    from evalkit.imagen.unet import UNetConfig

    kinds = {"unet": UNetConfig, "efficient_unet": EfficientUNetConfig}
    kind = config.get("type")
    if kind not in kinds:
        raise ValueError(f"model 'type' is {kind!r}, expected one of {', '.join(kinds)}")
    _check_fields("model", {k: v for k, v in config.items() if k != "type"}, kinds[kind])


def check_text_encoder_spec(spec: dict) -> None:
    unknown = sorted(set(spec) - TEXT_ENCODER_KEYS)
    if unknown:
        raise ValueError(f"text_encoder: unknown key {unknown[0]!r} (known: {', '.join(sorted(TEXT_ENCODER_KEYS))})")
    if not isinstance(spec.get("kind", "minilm"), str):  # an unknown kind is refused when the encoder is loaded
        raise ValueError(f"text_encoder: kind {spec.get('kind')!r} is not a string")
    tokens = spec.get("max_tokens", 32)
    if not _is_int(tokens) or not 1 <= tokens <= 4096:
        raise ValueError(f"text_encoder: max_tokens {tokens!r} is not an integer in 1..4096")
    if "dim" in spec and (not _is_int(spec["dim"]) or not 1 <= spec["dim"] <= 65536):
        raise ValueError(f"text_encoder: dim {spec['dim']!r} is not a positive integer")
    layers = spec.get("layers", [-1])
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LIST or not all(
            _is_int(v) and abs(v) <= 1024 for v in layers):
        raise ValueError(f"text_encoder: layers {layers!r} is not a list of layer numbers")
    for key in ("path", "arch"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise ValueError(f"text_encoder: {key} is not a string")


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header; the data is not read."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}


def shape_mismatch(config: dict, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The first difference between the network ``config`` builds (on the meta device) and the file's tensors."""
    import torch

    from evalkit.imagen.efficient_unet import build_model

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. torch's note on zero-element tensors: the shapes are what matter
        expected = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    for key in sorted(set(expected) | set(shapes)):
        if key not in shapes:
            return f"the config's network has {key}, the weights do not"
        if key not in expected:
            return f"the weights have {key}, the config's network does not"
        if expected[key] != shapes[key]:
            return f"{key} is {list(shapes[key])} in the weights, {list(expected[key])} in the config's network"
    return None


def _sampler_config_class():
    from evalkit.imagen.sampling import SamplerConfig

    return SamplerConfig


def _as_dict(what: str, value) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"'{what}' is a {type(value).__name__}, expected an object")
    return value


def _check_fields(what: str, values: dict, cls) -> None:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"{what}: unknown key {key!r} (known: {', '.join(sorted(fields))})")
        problem = _type_problem(value, hints[key], RANGES.get(key, (0, MAX_INT)))
        if problem:
            raise ValueError(f"{what}: {key} = {str(value)[:60]!r} {problem}")


def _type_problem(value, hint, bounds: tuple[int, int]) -> str | None:
    low, high = bounds
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or len(value) > MAX_LIST:
            return f"is not a list of at most {MAX_LIST} entries"
        if not all(_is_int(v) and low <= v <= min(high, MAX_LIST_ENTRY) for v in value):
            return f"has entries that are not integers in {low}..{min(high, MAX_LIST_ENTRY)}"
        return None
    if hint is bool:
        return None if isinstance(value, bool) else "is not true or false"
    if hint is int:
        return None if _is_int(value) and low <= value <= high else f"is not an integer in {low}..{high}"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok and abs(value) <= MAX_ABS_FLOAT else f"is not a finite number within +-{MAX_ABS_FLOAT:g}"
    if hint is str:
        return None if isinstance(value, str) and len(value) <= 200 else "is not a short string"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
