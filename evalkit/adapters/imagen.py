"""The ``imagen`` adapter: the built-in Imagen cascade (evalkit/imagen), offline on a CPU.

    evalkit run --model imagen --benchmark drawbench [--model-path CHECKPOINT_DIR] [--opt steps=20 --opt guidance=4 ...]

Without --model-path it loads the checkpoint shipped in the package (toy-world, 32 -> 64 -> 128). Options:
  stages=1|2|3                   how many cascade stages to run (final size 32, 64 or 128)
  steps, guidance, sampler, threshold           base stage (sampler: ddpm, ddim, dpm++2m;
                                                threshold: none, static, dynamic)
  sr_steps, sr_guidance, sr_sampler, sr_threshold, sr_aug_level, sr_start_t   both super-resolution stages
  text_encoder_path              local folder/file with the text encoder's weights (T5/CLIP checkpoints)
  expert=false                   sample without the base's high-noise expert, if the checkpoint has one
Each image uses its own seed-derived torch.Generator for all its noise, so an image depends on its seed and
prompt only, not on the rest of its batch. A requested size other than the cascade's is reached by resizing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from evalkit.adapters.base import AdapterOptions, GenerationBatch, check_known_options, parse_bool, read_option
from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "imagen" / "checkpoints" / "toyworld-32-64-128"
BASE_OPTIONS = {"steps": int, "guidance": float, "sampler": str, "threshold": str}
SR_OPTIONS = {"sr_steps": int, "sr_guidance": float, "sr_sampler": str, "sr_threshold": str,
              "sr_aug_level": float, "sr_start_t": float}
OPTIONS = set(BASE_OPTIONS) | set(SR_OPTIONS) | {"stages", "text_encoder_path", "expert"}


class ImagenAdapter:
    name = "imagen"

    def __init__(self, options: AdapterOptions):
        from evalkit.imagen.cascade import ImagenCascade

        check_known_options(options, OPTIONS, self.name)
        self.model_path = Path(options.model_path) if options.model_path else DEFAULT_CHECKPOINT
        stages = read_option(options, "stages", None, int)
        device = resolve_device(options.device)
        experts = read_option(options, "expert", True, parse_bool)
        self.cascade = ImagenCascade.from_pretrained(self.model_path, device=device, num_stages=stages, experts=experts)
        self.cascade.text_encoder_path = read_option(options, "text_encoder_path", None, str)
        self.sampling = {}
        try:
            for stage in self.cascade.stages:
                table = BASE_OPTIONS if stage.name == "base" else SR_OPTIONS
                changes = {key.removeprefix("sr_"): read_option(options, key, None, convert)
                           for key, convert in table.items()}
                self.sampling[stage.name] = replace(stage.sampling, **{k: v for k, v in changes.items() if v is not None}).validate()
        except ValueError as error:
            raise EvalkitError(f"imagen adapter: {error}") from None
        size = self.cascade.image_size
        self.default_size = (size, size)

    def config(self) -> dict[str, Any]:
        config = {
            # The shipped checkpoint is named, not located, so the run id is the same on every machine.
            "checkpoint": f"shipped:{DEFAULT_CHECKPOINT.name}" if self.model_path == DEFAULT_CHECKPOINT else str(self.model_path.resolve()),
            "stages": [s.name for s in self.cascade.stages],
            "image_size": self.cascade.image_size,
            "text_encoder": self.cascade.stages[0].text_encoder,
            "sampling": {name: cfg.to_dict() for name, cfg in self.sampling.items()},
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

    def generate(self, batch: GenerationBatch):
        from PIL import Image

        from evalkit.imagen.cascade import to_pil

        images = to_pil(self.cascade.generate(list(batch.prompts), list(batch.seeds), self.sampling))
        if (batch.height, batch.width) != self.default_size:
            images = [im.resize((batch.width, batch.height), Image.BICUBIC) for im in images]
        return images


def create(options: AdapterOptions) -> ImagenAdapter:
    return ImagenAdapter(options)
