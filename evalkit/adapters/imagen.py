"""The ``imagen`` adapter: the built-in Imagen cascade (evalkit/imagen), offline on a CPU.

    evalkit run --model imagen --benchmark drawbench [--model-path CHECKPOINT_DIR] [--opt steps=20 --opt guidance=4 ...]

Without --model-path it loads the checkpoint shipped in the package (toy-world, 32 -> 64 -> 128). Options:
  stages=1|2|3                   how many cascade stages to run (final size 32, 64 or 128)
  steps, guidance, sampler, threshold           base stage (sampler: ddpm, ddim, dpm++2m;
                                                threshold: none, static, dynamic)
  guidance_min_t                 base stage: guide only the steps from t >= this (below: the conditional
                                 prediction alone, one U-Net pass; 0 guides all steps)
  sr_steps, sr_guidance, sr_sampler, sr_threshold, sr_aug_level, sr_start_t   both super-resolution stages
  text_encoder_path              local folder/file with the text encoder's weights (T5/CLIP checkpoints)
  expert=false                   sample without the base's high-noise expert, if the checkpoint has one
  expert_guidance, expert_steps  base stage: w on the steps the high-noise expert takes (its band t >= t_min;
                                 default: guidance), and how many of the `steps` start there (>= 2; default:
                                 as many as the uniform grid puts there); need the expert
  precision=auto|fp32|bf16       the U-Nets' arithmetic. auto (default): bf16 on a CPU with native bfloat16 kernels
                                 (AVX-512-BF16 or AMX), fp32 elsewhere; the run config records which. bf16:
                                 autocast, oneDNN's bfloat16 kernels, 0.73x the time of fp32 (reports/perf/imagen.md)
                                 and scoring the same (reports/imagen/README.md); its kernels round by batch shape,
                                 so `evalkit run` makes images in batches fixed by the run's plan (a resumed run
                                 with the same --batch-size is byte-identical). fp32: an image's bytes depend on its
                                 seed and prompt only
Baseline ``guidance-0`` (the base stage without its text, so layout and colours ignore the prompt): --opt guidance=0.
Each image uses its own seed-derived torch.Generator for all its noise, so an image depends on its seed and
prompt only, not on the rest of its batch (in fp32; in bf16 also on the batch's shape, see precision). A requested size other than the cascade's is reached by resizing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from evalkit.adapters.base import (AdapterOptions, GenerationBatch, check_known_options, finite_float, parse_bool,
                                   read_option, steps_count)
from evalkit.adapters.gpu import out_of_memory_guard
from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "imagen" / "checkpoints" / "toyworld-32-64-128"
BASE_OPTIONS = {"steps": steps_count, "guidance": finite_float, "sampler": str, "threshold": str,
                "guidance_min_t": finite_float}
SR_OPTIONS = {"sr_steps": steps_count, "sr_guidance": finite_float, "sr_sampler": str, "sr_threshold": str,
              "sr_aug_level": finite_float, "sr_start_t": finite_float}
EXPERT_OPTIONS = {"expert_guidance": finite_float, "expert_steps": steps_count}
OPTIONS = set(BASE_OPTIONS) | set(SR_OPTIONS) | set(EXPERT_OPTIONS) | {"stages", "text_encoder_path", "expert",
                                                                        "precision"}
DEFAULT_PRECISION = "auto"


def checkpoint_label(folder: Path) -> str:
    """How a run's config names the checkpoint folder its cascade was loaded from. The shipped checkpoint is named,
    not located, so its run ids are the same on every machine."""
    folder = Path(folder)
    if folder.resolve() == DEFAULT_CHECKPOINT.resolve():
        return f"shipped:{DEFAULT_CHECKPOINT.name}"
    return str(folder.resolve())


class ImagenAdapter:
    """A cascade and the sampling settings of each stage. ``create(options)`` loads one from a checkpoint folder;
    code that already holds a cascade (``evalkit train``'s periodic evaluation) wraps it directly, naming the
    checkpoint it came from in ``checkpoint`` (what ``config()`` records)."""

    name = "imagen"

    def __init__(self, cascade, checkpoint: str, sampling: dict | None = None):
        self.cascade = cascade
        self.checkpoint = checkpoint
        self.sampling = {stage.name: (sampling or {}).get(stage.name, stage.sampling) for stage in cascade.stages}
        size = cascade.image_size
        self.default_size = (size, size)

    @classmethod
    def from_options(cls, options: AdapterOptions) -> "ImagenAdapter":
        from evalkit.imagen.cascade import PRECISIONS, ImagenCascade, resolve_precision
        from evalkit.imagen.text_encoders import ENCODER_KINDS

        check_known_options(options, OPTIONS, cls.name)
        # every value is parsed before the cascade loads, so a bad number costs nothing
        requested = {key: read_option(options, key, None, convert)
                     for key, convert in {**BASE_OPTIONS, **SR_OPTIONS, **EXPERT_OPTIONS}.items()}
        model_path = Path(options.model_path) if options.model_path else DEFAULT_CHECKPOINT
        stages = read_option(options, "stages", None, int)
        device = resolve_device(options.device)
        experts = read_option(options, "expert", True, parse_bool)
        precision = read_option(options, "precision", DEFAULT_PRECISION, str)
        if precision not in ("auto", *PRECISIONS):
            raise EvalkitError(f"imagen adapter: precision must be one of auto, {', '.join(PRECISIONS)}, "
                               f"got {precision!r}")
        precision = resolve_precision(precision, device)
        cascade = ImagenCascade.from_pretrained(model_path, device=device, num_stages=stages, experts=experts,
                                                precision=precision)
        kind = cascade.stages[0].text_encoder.get("kind", "minilm")
        if kind not in ENCODER_KINDS:  # loaded lazily: say now which file names an encoder evalkit does not have
            raise EvalkitError(f"{model_path / 'base.json'}: text encoder {kind!r} is not one of "
                               f"{', '.join(ENCODER_KINDS)}")
        cascade.text_encoder_path = read_option(options, "text_encoder_path", None, str)
        sampling = {}
        try:
            for stage in cascade.stages:
                table = BASE_OPTIONS if stage.name == "base" else SR_OPTIONS
                changes = {key.removeprefix("sr_"): requested[key] for key in table}
                if stage.name == "base":
                    changes.update(expert_band_changes(stage, requested))
                sampling[stage.name] = replace(stage.sampling, **{k: v for k, v in changes.items() if v is not None}).validate()
        except ValueError as error:
            raise EvalkitError(f"imagen adapter: {error}") from None
        return cls(cascade, checkpoint_label(model_path), sampling)

    def config(self) -> dict[str, Any]:
        config = {
            "checkpoint": self.checkpoint,
            "stages": [s.name for s in self.cascade.stages],
            "image_size": self.cascade.image_size,
            "text_encoder": self.cascade.stages[0].text_encoder,
            "sampling": {name: cfg.to_dict() for name, cfg in self.sampling.items()},
            "precision": self.cascade.precision,
        }
        experts = [stage.expert.name for stage in self.cascade.stages if stage.expert is not None]
        if experts:  # only then, so runs of expert-less checkpoints keep their ids
            config["experts"] = experts
        return config

    @property
    def device(self) -> str:
        """Where the cascade samples (recorded with each batch's generation time)."""
        return str(self.cascade.device)

    def checkpoint_hash(self) -> str | None:
        return self.cascade.checkpoint_hash()

    def truncated_prompts(self) -> dict[str, Any] | None:
        """The prompts the text encoder cut to its max_tokens (the run records them: evalkit.runs.provenance)."""
        encoder = getattr(self.cascade, "_text_encoder", None)  # None until a prompt was encoded
        if encoder is None or not encoder.truncated:
            return None
        return {"encoder": encoder.kind, "max_tokens": encoder.max_tokens, "prompts": sorted(encoder.truncated)}

    def generate(self, batch: GenerationBatch):
        from PIL import Image

        from evalkit.imagen.cascade import to_pil

        with out_of_memory_guard(self.device, len(batch.prompts), batch.height, batch.width, "the imagen cascade", None):
            images = to_pil(self.cascade.generate(list(batch.prompts), list(batch.seeds), self.sampling))
        if (batch.height, batch.width) != self.default_size:
            images = [im.resize((batch.width, batch.height), Image.BICUBIC) for im in images]
        return images


def expert_band_changes(stage, requested: dict) -> dict:
    """The base's sampler settings for its expert's band, from the expert_* options (none given: no change)."""
    guidance, steps = requested["expert_guidance"], requested["expert_steps"]
    if guidance is None and steps is None:
        return {}
    if stage.expert is None:
        raise EvalkitError("imagen adapter: expert_guidance and expert_steps need the base's high-noise expert "
                           "(this checkpoint has none, or --opt expert=false)")
    return {"band_t": stage.expert.band[0], "band_guidance": guidance, "band_steps": steps}


def create(options: AdapterOptions) -> ImagenAdapter:
    return ImagenAdapter.from_options(options)
