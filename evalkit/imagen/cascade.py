"""The cascade: base -> SR -> SR, each stage with its own sampler settings, and its on-disk format.

A checkpoint is a folder holding, per stage (`base`, then optionally `sr1`, then `sr2`):
  <stage>.json         {"format": "evalkit-imagen-stage", "version": 1, "stage", "model" (U-Net config),
                        "schedule", "sampling" (default SamplerConfig), "text_encoder" (spec), "training"}
  <stage>.safetensors  the (EMA) weights, stored as float16 to keep the shipped checkpoint small.
Stages are trained independently, so each writes only its own two files. A stage may have a noise-level expert
(experts.py) in `<stage>_expert.json/.safetensors`, whose JSON adds "band": [t_min, 1], the times it denoises;
it is loaded with its stage unless `experts=False`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from evalkit import atomic
from evalkit.errors import EvalkitError
from evalkit.imagen.checkpoint_check import check_stage_json, shape_mismatch, weight_shapes
from evalkit.imagen.diffusion import Schedule
from evalkit.imagen.efficient_unet import build_model
from evalkit.imagen.experts import NoiseBandEnsemble
from evalkit.imagen.sampling import SamplerConfig, sample
from evalkit.imagen.text_encoders import FrozenTextEncoder, load_text_encoder

FORMAT, VERSION = "evalkit-imagen-stage", 1
STAGE_NAMES = ("base", "sr1", "sr2")
EXPERT_SUFFIX = "_expert"
# Arithmetic of the U-Nets at sampling. bf16 runs them under torch.autocast (weights stay float32, convolutions and
# matmuls in bfloat16: oneDNN's AMX/AVX-512-BF16 kernels on a Xeon, tensor cores on a GPU); the sampler's own
# update arithmetic stays float32. Measured in reports/perf/imagen.md (speed) and reports/imagen/README.md (accuracy).
PRECISIONS = ("fp32", "bf16")


def native_bf16(device: str) -> bool:
    """Whether `device` multiplies bfloat16 natively: a CPU with AVX-512-BF16 or AMX tiles (oneDNN emulates bfloat16
    elsewhere, slower than float32). GPUs answer False: the cascade's GPU time is seconds either way, so float32."""
    if torch.device(device).type != "cpu":
        return False
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(probe is not None and probe() for probe in probes)


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` -> ``bf16`` where the device has native bfloat16 kernels (native_bf16), else ``fp32``."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def precision_context(device: str, precision: str):
    """What the U-Nets' forward passes run under for `precision` (checked by ImagenCascade) on `device`."""
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=precision == "bf16" and kind in ("cpu", "cuda"))


@dataclass
class Stage:
    name: str
    model: torch.nn.Module
    model_config: dict
    schedule: Schedule
    sampling: SamplerConfig
    text_encoder: dict
    training: dict = field(default_factory=dict)
    band: tuple[float, float] | None = None  # set on a noise-level expert: the times t it denoises
    expert: "Stage | None" = None  # this stage's high-noise expert, if it has one

    @property
    def denoiser(self) -> torch.nn.Module:
        """What sampling calls: the U-Net, or the U-Net with its expert taking the expert's band."""
        if self.expert is None:
            return self.model
        return NoiseBandEnsemble(self.model, self.expert.model, self.expert.band[0], self.schedule)

    @property
    def image_size(self) -> int:
        return int(self.model_config["image_size"])

    @property
    def is_super_resolution(self) -> bool:
        return bool(self.model_config.get("lowres_size"))

    def metadata(self) -> dict:
        meta = {"format": FORMAT, "version": VERSION, "stage": self.name, "model": self.model_config,
                "schedule": self.schedule.name, "sampling": self.sampling.to_dict(),
                "text_encoder": self.text_encoder, "training": self.training}
        if self.band is not None:
            meta["band"] = list(self.band)
        return meta

    def save(self, folder: Path, state_dict: dict | None = None) -> None:
        from safetensors.torch import save

        state = state_dict if state_dict is not None else self.model.state_dict()
        tensors = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in state.items()}
        folder = Path(folder)
        atomic.write_bytes(folder / f"{self.name}.safetensors", save(tensors, metadata={"format": FORMAT}))
        atomic.write_json(folder / f"{self.name}.json", self.metadata())

    @classmethod
    def load(cls, folder: Path, name: str, device: str = "cpu", experts: bool = True) -> "Stage":
        from safetensors.torch import load

        meta_path, weights_path = Path(folder) / f"{name}.json", Path(folder) / f"{name}.safetensors"
        meta = read_stage_metadata(folder, name)
        if not weights_path.is_file():
            raise EvalkitError(f"not an Imagen checkpoint: {weights_path} is missing")
        try:  # the JSON is untrusted input: keys, types and bounds first (checkpoint_check.py)
            check_stage_json(meta, name)
            schedule = Schedule(meta.get("schedule", "cosine"))
            sampling = SamplerConfig(**meta.get("sampling", {})).validate()
            band = _band(meta.get("band"))
            if not weights_path.stat().st_size:
                raise EvalkitError(f"corrupt Imagen checkpoint: {weights_path} is empty")
            shapes = weight_shapes(weights_path)
        except EvalkitError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise EvalkitError(f"corrupt Imagen checkpoint {meta_path}: {error}") from None
        except Exception as error:  # safetensors raises its own error types for truncated/garbled files
            raise EvalkitError(f"corrupt Imagen checkpoint: cannot read {weights_path} ({_first_line(error)})"
                               ) from None
        try:
            problem = shape_mismatch(meta["model"], shapes)
        except Exception as error:  # the U-Net classes refuse the config (ValueError, AssertionError, ...)
            raise EvalkitError(f"corrupt Imagen checkpoint {meta_path}: {_first_line(error)}") from None
        if problem:
            raise EvalkitError(f"{weights_path} does not match its config {meta_path.name}: {problem}")
        model = build_model(meta["model"])
        try:
            tensors = load(weights_path.read_bytes())
        except Exception as error:  # safetensors raises its own error types for truncated/garbled files
            raise EvalkitError(f"corrupt Imagen checkpoint: cannot read {weights_path} ({_first_line(error)})"
                               ) from None
        broken = next((key for key, value in tensors.items() if not torch.isfinite(value).all()), None)
        if broken is not None:
            raise EvalkitError(f"corrupt Imagen checkpoint: {weights_path} has NaN or infinite values in {broken}")
        try:
            model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise EvalkitError(f"{weights_path} does not match its config {meta_path.name}: {first}") from None
        model = model.to(device).eval().requires_grad_(False)
        stage = cls(name, model, meta["model"], schedule, sampling, meta.get("text_encoder", {}), meta.get("training", {}), band)
        expert_name = name + EXPERT_SUFFIX
        if experts and not name.endswith(EXPERT_SUFFIX) and (Path(folder) / f"{expert_name}.json").is_file():
            stage.attach_expert(cls.load(folder, expert_name, device, experts=False))
        return stage

    def attach_expert(self, expert: "Stage") -> None:
        """Use `expert` for its band of t; it must denoise the same images from the same text."""
        where = f"expert {expert.name} of {self.name}"
        if expert.band is None:
            raise EvalkitError(f"{where}: its JSON has no band")
        if expert.image_size != self.image_size or expert.is_super_resolution != self.is_super_resolution:
            raise EvalkitError(f"{where}: makes {expert.image_size}px images, the stage {self.image_size}px")
        if expert.text_encoder != self.text_encoder or expert.schedule.name != self.schedule.name:
            raise EvalkitError(f"{where}: trained with another text encoder or noise schedule than its stage")
        self.expert = expert


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]


def _band(value) -> tuple[float, float] | None:
    if value is None:
        return None
    low, high = (float(v) for v in value)
    if not 0.0 < low < high <= 1.0:
        raise ValueError(f"band {value} is not a range of times in (0, 1]")
    return low, high


def read_stage_metadata(folder: Path, name: str) -> dict:
    """A stage's JSON metadata, checked for format and version."""
    meta_path = Path(folder) / f"{name}.json"
    if not meta_path.is_file():
        raise EvalkitError(f"not an Imagen checkpoint: {meta_path} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise EvalkitError(f"corrupt Imagen checkpoint: {meta_path} is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise EvalkitError(f"not an Imagen checkpoint: {meta_path} has no format {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise EvalkitError(f"{meta_path}: checkpoint version {meta.get('version')} is not supported (expected {VERSION})")
    if not isinstance(meta.get("model"), dict):
        raise EvalkitError(f"corrupt Imagen checkpoint {meta_path}: no model config")
    return meta


def reads_prefix_of(spec: dict, base_spec: dict) -> bool:
    """Whether a stage trained with encoder `spec` can read the base's encoding: same encoder, and its hidden-state
    layers are the first of the base's (an SR stage may use the last layer only while the base adds early ones)."""
    def rest(s: dict) -> dict:
        return {k: v for k, v in s.items() if k not in ("layers", "dim")}

    layers, base_layers = list(spec.get("layers", [-1])), list(base_spec.get("layers", [-1]))
    return rest(spec) == rest(base_spec) and base_layers[: len(layers)] == layers


def stage_seed(seed: int, stage_index: int) -> int:
    """Distinct generator seed per (image seed, stage): an injective map, so no two stages share noise."""
    return (int(seed) * len(STAGE_NAMES) + stage_index) % (2**63)


class ImagenCascade:
    def __init__(self, stages: list[Stage], text_encoder: FrozenTextEncoder | None = None, device: str = "cpu",
                 precision: str = "fp32"):
        if not stages or stages[0].is_super_resolution:
            raise EvalkitError("an Imagen cascade starts with a base stage")
        for prev, stage in zip(stages, stages[1:]):
            if not stage.is_super_resolution or int(stage.model_config["lowres_size"]) != prev.image_size:
                raise EvalkitError(f"stage {stage.name} does not upsample the {prev.image_size}px output of {prev.name}")
            if not reads_prefix_of(stage.text_encoder, stages[0].text_encoder):
                raise EvalkitError(f"stage {stage.name} was trained with another text encoder than {stages[0].name}")
        if precision not in PRECISIONS:
            raise EvalkitError(f"unknown precision {precision!r} (choose {', '.join(PRECISIONS)})")
        self.stages = stages
        self.device = device
        self.precision = precision
        self._text_encoder = text_encoder
        self.text_encoder_path: str | None = None

    @property
    def text_encoder(self) -> FrozenTextEncoder:
        if self._text_encoder is None:
            self._text_encoder = load_text_encoder(self.stages[0].text_encoder, self.device, self.text_encoder_path)
        return self._text_encoder

    @property
    def image_size(self) -> int:
        return self.stages[-1].image_size

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str = "cpu", num_stages: int | None = None,
                        text_encoder: FrozenTextEncoder | None = None, experts: bool = True,
                        precision: str = "fp32") -> "ImagenCascade":
        folder = Path(folder)
        if not folder.is_dir():
            raise EvalkitError(f"Imagen checkpoint folder {folder} does not exist")
        names = [STAGE_NAMES[0]]
        for name in STAGE_NAMES[1:]:
            if (folder / f"{name}.json").exists():
                names.append(name)
            else:
                break
        if num_stages is not None:
            if not 1 <= num_stages <= len(names):
                raise EvalkitError(f"{folder} has {len(names)} stage(s); cannot use {num_stages}")
            names = names[:num_stages]
        return cls([Stage.load(folder, name, device, experts) for name in names], text_encoder, device, precision)

    def save_pretrained(self, folder: str | Path) -> None:
        for stage in self.stages:
            stage.save(Path(folder))
            if stage.expert is not None:
                stage.expert.save(Path(folder))

    def checkpoint_hash(self) -> str:
        digest = hashlib.sha256()
        for stage in [s for top in self.stages for s in (top, top.expert) if s is not None]:
            digest.update(json.dumps(stage.metadata(), sort_keys=True).encode())
            for key, value in sorted(stage.model.state_dict().items()):
                digest.update(key.encode())
                digest.update(value.detach().to("cpu", torch.float16).numpy().tobytes())
        return digest.hexdigest()[:16]

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], sampling: dict[str, SamplerConfig] | None = None,
                 progress=None) -> torch.Tensor:
        """Images in [-1, 1], [B, 3, S, S] at the last stage's size. `sampling` overrides stages' defaults by name."""
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt")
        text = self.text_encoder.encode(prompts).to(self.device)
        image = None
        for index, stage in enumerate(self.stages):
            config = (sampling or {}).get(stage.name, stage.sampling)
            image = self.run_stage(index, text, seeds, config, lowres=image, progress=progress)
        return image

    @torch.no_grad()
    def run_stage(self, index: int, text, seeds: list[int], config: SamplerConfig, lowres=None, progress=None):
        """One stage's samples for encoded prompts, with the same per-(seed, stage) noise as `generate`."""
        stage = self.stages[index]
        generators = [torch.Generator().manual_seed(stage_seed(seed, index)) for seed in seeds]
        features = int(stage.model_config["text_dim"]) + int(stage.model_config.get("extra_text_dim", 0))
        with precision_context(self.device, self.precision):  # the sampler's own arithmetic stays float32
            return sample(stage.denoiser, stage.schedule, text.tokens[..., :features], text.mask, generators,
                          stage.image_size, config, lowres=lowres, progress=progress)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    array = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(np.ascontiguousarray(a), mode="RGB") for a in array]


def with_overrides(config: SamplerConfig, **changes) -> SamplerConfig:
    return replace(config, **{k: v for k, v in changes.items() if v is not None}).validate()
