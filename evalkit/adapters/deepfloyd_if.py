"""The ``deepfloyd-if`` adapter: DeepFloyd IF, the open Imagen-style pixel cascade (T5 text encoder, a 64x64 base
model, a x4 super-resolution model conditioned on a noised low-resolution image), stage I + stage II.

    evalkit run --model deepfloyd-if --benchmark drawbench --device cuda --opt dtype=fp16
    evalkit run --model deepfloyd-if --model-path ./if --opt steps=100 --opt sr_steps=50 --opt sr_noise_level=250

Where the weights are, first match wins:

    --opt stage_1=PATH / --opt stage_2=PATH   a pipeline directory, or a Hub repository id (ORG/NAME) in the cache
    --model-path DIR                          DIR/stage_1 (an IFPipeline) and DIR/stage_2 (an IFSuperResolutionPipeline),
                                              each written by save_pretrained or copied from a Hub snapshot
    the user's Hugging Face cache             DeepFloyd/IF-I-XL-v1.0 and DeepFloyd/IF-II-L-v1.0 (local files only,
                                              ``evalkit.adapters.hf_cache``)

Nothing is downloaded; a stage that is not found is one line naming what was looked for and where.

What one image is: the prompts' T5 embeddings (and the negative prompt's, for guidance) are computed once, by
stage I's encoder, and shared by both stages (``encode_prompt``; stage II's own text encoder is never loaded).
Stage I samples an image of (height/u, width/u), u the upscale factor (stage II's sample size over stage I's: 4
for IF); stage II upsamples it bilinearly to (height, width), adds noise at level ``sr_noise_level`` with its
``image_noising_scheduler`` (noise-conditioning augmentation: the level is also given to its UNet) and denoises to
the output. Each image has one CPU ``torch.Generator`` seeded with its evalkit seed that both stages draw from, so
an image depends only on its own seed, and has the same noise on any device.

Options (``--opt key=value``; unset ones report the pipelines' own defaults in the manifest):

    steps / sr_steps         denoising steps of stage I / stage II (100 / 50)
    guidance / sr_guidance   classifier-free guidance weight of stage I / stage II (7.0 / 4.0; <= 1 turns it off)
    sr_noise_level           stage II's augmentation noise level, 0 <= N < its noising schedule's length (250)
    negative_prompt          text used as the negative prompt of every image, in both stages
    dtype                    float32 (default), float16 or bfloat16 (fp32/fp16/bf16): the UNets' weights
    text_encoder_dtype       the T5 encoder's dtype, float32 by default: T5's feed-forward activations overflow in
                             float16 (transformers keeps its ``wo`` layers in float32 for that reason); bfloat16
                             halves T5-XXL's ~19 GB if memory is short. Its embeddings are cast to ``dtype``.
    variant                  weight-file variant to load, e.g. fp16 for ``*.fp16.safetensors``
    resize                   false (default): both stages run at the run's --size (a multiple of u); true: the
                             cascade makes its native size (64 -> 256) and the result is resized to --size (PIL
                             Lanczos), e.g. IF's 256x256 images scored at 64x64
    clean_caption            IF's caption cleaning before T5 (needs beautifulsoup4 and ftfy); default false, so the
                             same prompt gives the same embedding whatever is installed

The safety checker and the watermarker are not loaded: the checker replaces images it flags with black ones and
the watermarker stamps a mark into a corner of every image, and either would change FID, KID and CLIP scores
without saying so; evalkit scores what the model drew (images from the IF weights stay under their licence's
terms). ``checkpoint_hash()`` covers both stage directories, minus the components that are not loaded.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, NamedTuple

from PIL import Image

from evalkit.adapters.base import AdapterOptions, GenerationBatch, check_known_options, parse_bool, read_option
from evalkit.adapters.base import finite_float, require_model_dir, steps_count
from evalkit.adapters.diffusers import _import_diffusers, _read_json, cpu_generators, directory_hash, load_pipeline
from evalkit.adapters.gpu import out_of_memory_guard, parse_dtype, torch_dtype
from evalkit.adapters.hf_cache import PipelineLocation, cached_snapshot, locate_pipeline, require_pipeline_dir
from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError

STAGES = ("stage_1", "stage_2")
STAGE_CLASSES = {"stage_1": "IFPipeline", "stage_2": "IFSuperResolutionPipeline"}
DEFAULT_REPOS = {"stage_1": "DeepFloyd/IF-I-XL-v1.0", "stage_2": "DeepFloyd/IF-II-L-v1.0"}
OPTIONS = {
    "stage_1", "stage_2", "steps", "sr_steps", "guidance", "sr_guidance", "sr_noise_level", "negative_prompt",
    "dtype", "text_encoder_dtype", "variant", "resize", "clean_caption",
}
# Components that are never loaded: left out of the checkpoint hash.
UNUSED = {
    "stage_1": ("safety_checker", "feature_extractor", "watermarker"),
    "stage_2": ("safety_checker", "feature_extractor", "watermarker", "text_encoder", "tokenizer"),
}
NO_SAFETY = dict(safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)


class Cascade(NamedTuple):
    encoder: Any  # stage I's pipeline as loaded: its T5 encodes the prompts
    stage_1: Any  # the same UNet and scheduler without the text encoder: denoises from given embeddings
    stage_2: Any


def locate_stages(options: AdapterOptions) -> dict[str, PipelineLocation]:
    """Each stage's pipeline directory: --opt stage_N, else --model-path DIR/stage_N, else the Hugging Face cache."""
    root = None
    if options.model_path:
        root = require_model_dir(options, "deepfloyd-if", "a folder holding stage_1/ and stage_2/ pipelines")
    found = {}
    for stage in STAGES:
        if stage in options.extra:
            found[stage] = locate_pipeline(options.extra[stage], f"--opt {stage}")
        elif root is not None:
            if not (root / stage).is_dir():
                raise EvalkitError(
                    f"--model-path {root}: no {stage}/ folder (the deepfloyd-if adapter reads {root}/stage_1, an "
                    f"IFPipeline, and {root}/stage_2, an IFSuperResolutionPipeline; or give --opt {stage}=PATH)"
                )
            found[stage] = PipelineLocation(require_pipeline_dir(root / stage, stage).resolve())
        else:
            instead = f"give --model-path DIR holding stage_1/ and stage_2/, or --opt {stage}=PATH"
            found[stage] = cached_snapshot(DEFAULT_REPOS[stage], f"deepfloyd-if {stage}", instead=instead)
    return found


def _sample_size(config: dict[str, Any], what: str) -> tuple[int, int]:
    size = config.get("sample_size")
    if isinstance(size, int) and size > 0:
        return size, size
    if isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        return size[0], size[1]
    raise EvalkitError(f"{what}: unet/config.json has no usable sample_size ({size!r})")


def _call_defaults(pipeline_class: str) -> dict[str, Any]:
    signature = inspect.signature(getattr(_import_diffusers(), pipeline_class).__call__)
    return {name: p.default for name, p in signature.parameters.items()}


class DeepFloydIFAdapter:
    name = "deepfloyd-if"

    def __init__(self, options: AdapterOptions):
        check_known_options(options, OPTIONS, self.name)
        self.stages = locate_stages(options)
        _import_diffusers()
        configs = {stage: self._checked_stage(stage) for stage in STAGES}
        self._check_embedding_width(configs)

        (h1, w1), (h2, w2) = (_sample_size(configs[s]["unet"], s) for s in STAGES)
        if h2 % h1 or w2 % w1 or h2 // h1 != w2 // w1:
            raise EvalkitError(f"stage_2's sample size {h2}x{w2} is not a whole multiple of stage_1's {h1}x{w1}")
        self.native_sizes = ((h1, w1), (h2, w2))
        self.upscale = h2 // h1
        self.default_size = (h2, w2)

        first, second = _call_defaults(STAGE_CLASSES["stage_1"]), _call_defaults(STAGE_CLASSES["stage_2"])
        self.steps = self._positive(options, "steps", first["num_inference_steps"], steps_count)
        self.sr_steps = self._positive(options, "sr_steps", second["num_inference_steps"], steps_count)
        self.guidance = read_option(options, "guidance", first["guidance_scale"], finite_float)
        self.sr_guidance = read_option(options, "sr_guidance", second["guidance_scale"], finite_float)
        self.noise_level = read_option(options, "sr_noise_level", second["noise_level"], int)
        levels = configs["stage_2"]["image_noising_scheduler"].get("num_train_timesteps", 1000)
        if not 0 <= self.noise_level < levels:
            raise EvalkitError(f"--opt sr_noise_level={self.noise_level} must be in [0, {levels}) (stage II's noising schedule)")
        self.negative_prompt = read_option(options, "negative_prompt", None)
        self.dtype = parse_dtype(options)
        self.text_encoder_dtype = parse_dtype(options, "text_encoder_dtype")
        self.variant = read_option(options, "variant", None)
        self.resize = read_option(options, "resize", False, parse_bool)
        self.clean_caption = read_option(options, "clean_caption", False, parse_bool)
        if self.clean_caption:
            from diffusers.utils import is_bs4_available, is_ftfy_available

            if not (is_bs4_available() and is_ftfy_available()):
                raise EvalkitError("--opt clean_caption=true needs beautifulsoup4 and ftfy: pip install beautifulsoup4 ftfy")
        self.schedulers = {stage: configs[stage]["scheduler"].get("_class_name") for stage in STAGES}
        self.device = resolve_device(options.device)
        self._pipelines = None
        self._checkpoint_hash: str | None = None

    def _checked_stage(self, stage: str) -> dict[str, dict[str, Any]]:
        """The stage's model_index class checked, and the component configs the adapter reads before loading."""
        path = self.stages[stage].path
        found = str(_read_json(path / "model_index.json").get("_class_name", ""))
        if found != STAGE_CLASSES[stage]:
            raise EvalkitError(
                f"{stage}: {path} holds a {found or 'unnamed'} pipeline; it must be an {STAGE_CLASSES[stage]} "
                f"(e.g. {DEFAULT_REPOS[stage]})"
            )
        needed = {"unet": "config.json", "scheduler": "scheduler_config.json"}
        if stage == "stage_1":
            needed["text_encoder"] = "config.json"
        else:
            needed["image_noising_scheduler"] = "scheduler_config.json"
        configs = {}
        for component, file_name in needed.items():
            if not (path / component / file_name).is_file():
                raise EvalkitError(f"{stage}: {path} has no {component}/{file_name} (an incomplete pipeline directory?)")
            configs[component] = _read_json(path / component / file_name)
        return configs

    @staticmethod
    def _check_embedding_width(configs: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Stage II consumes stage I's T5 embeddings, so its UNet must expect their width."""
        width = configs["stage_1"]["text_encoder"].get("d_model")
        unet = configs["stage_2"]["unet"]
        expected = unet.get("encoder_hid_dim") or unet.get("cross_attention_dim")
        if isinstance(width, int) and isinstance(expected, int) and width != expected:
            raise EvalkitError(
                f"stage_2's UNet expects {expected}-wide text embeddings but stage_1's T5 encoder makes {width}-wide "
                "ones; the two stages are not from the same IF release"
            )

    @staticmethod
    def _positive(options: AdapterOptions, key: str, default: int, convert) -> int:
        value = read_option(options, key, default, convert)
        if value <= 0:
            raise EvalkitError(f"--opt {key} must be a positive integer, got {value}")
        return value

    def config(self) -> dict[str, Any]:
        (h1, w1), (h2, w2) = self.native_sizes
        return {
            "cascade": "DeepFloyd IF stage I + stage II",
            "stage_1": {
                **self.stages["stage_1"].describe(),
                "pipeline": STAGE_CLASSES["stage_1"],
                "scheduler": self.schedulers["stage_1"],
                "steps": self.steps,
                "guidance": self.guidance,
                "sample_size": [h1, w1],
            },
            "stage_2": {
                **self.stages["stage_2"].describe(),
                "pipeline": STAGE_CLASSES["stage_2"],
                "scheduler": self.schedulers["stage_2"],
                "steps": self.sr_steps,
                "guidance": self.sr_guidance,
                "noise_level": self.noise_level,
                "sample_size": [h2, w2],
            },
            "upscale": self.upscale,
            "text_encoder": {"from": "stage_1", "dtype": self.text_encoder_dtype, "clean_caption": self.clean_caption},
            "negative_prompt": self.negative_prompt,
            "dtype": self.dtype,
            "variant": self.variant,
            "resize": "lanczos" if self.resize else None,
            "safety_checker": "disabled",
            "watermarker": "disabled",
        }

    def checkpoint_hash(self) -> str | None:
        if self._checkpoint_hash is None:
            combined = hashlib.sha256()
            for stage in STAGES:
                combined.update(f"{stage}\0{directory_hash(self.stages[stage].path, UNUSED[stage])}\n".encode())
            self._checkpoint_hash = combined.hexdigest()
        return self._checkpoint_hash

    def _load(self) -> Cascade:
        unets = torch_dtype(self.dtype)
        encoder = load_pipeline(
            STAGE_CLASSES["stage_1"], self.stages["stage_1"].path, self.device,
            {"default": unets, "text_encoder": torch_dtype(self.text_encoder_dtype)}, self.variant, **NO_SAFETY,
        )
        # Stage I's denoiser as its own pipeline sharing the UNet and scheduler, without the text encoder: a
        # pipeline with one casts given embeddings back to the encoder's dtype, which float16/bfloat16 UNets reject.
        stage_1 = type(encoder)(**{**encoder.components, "text_encoder": None, "tokenizer": None, **NO_SAFETY})
        stage_1.set_progress_bar_config(disable=True)
        stage_2 = load_pipeline(
            STAGE_CLASSES["stage_2"], self.stages["stage_2"].path, self.device, unets, self.variant,
            text_encoder=None, tokenizer=None, **NO_SAFETY,
        )
        return Cascade(encoder, stage_1, stage_2)

    def stage_sizes(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(stage I size, stage II size) for a run of height x width."""
        if self.resize:
            return self.native_sizes
        u = self.upscale
        if height % u or width % u:
            (h2, w2) = self.native_sizes[1]
            raise EvalkitError(
                f"--size {height}x{width}: stage II upscales stage I x{u}, so height and width must be multiples of "
                f"{u} (native: {h2}x{w2}); or --opt resize=true to make {h2}x{w2} images and resize them"
            )
        return (height // u, width // u), (height, width)

    def _embeddings(self, encoder, prompts: list[str]):
        """T5 embeddings of the prompts (and of the negative prompt when either stage guides), computed once."""
        guided = self.guidance > 1 or self.sr_guidance > 1
        negative = [self.negative_prompt] * len(prompts) if self.negative_prompt is not None else None
        embeds, negative_embeds = encoder.encode_prompt(
            prompts, do_classifier_free_guidance=guided, negative_prompt=negative, clean_caption=self.clean_caption
        )
        unet_dtype = encoder.unet.dtype
        return embeds.to(unet_dtype), None if negative_embeds is None else negative_embeds.to(unet_dtype)

    def _cascade(self, batch: GenerationBatch, sizes) -> list[Image.Image]:
        (h1, w1), (h2, w2) = sizes
        generators = cpu_generators(batch.seeds)
        embeds, negative = self._embeddings(self._pipelines.encoder, list(batch.prompts))
        low = self._pipelines.stage_1(
            prompt_embeds=embeds, negative_prompt_embeds=negative, height=h1, width=w1, generator=generators,
            num_inference_steps=self.steps, guidance_scale=self.guidance, output_type="pt",
        ).images
        return self._pipelines.stage_2(
            image=low, prompt_embeds=embeds, negative_prompt_embeds=negative, height=h2, width=w2,
            generator=generators, num_inference_steps=self.sr_steps, guidance_scale=self.sr_guidance,
            noise_level=self.noise_level, output_type="pil",
        ).images

    def generate(self, batch: GenerationBatch) -> list[Image.Image]:
        import torch

        sizes = self.stage_sizes(batch.height, batch.width)  # a bad --size fails before any loading
        if self._pipelines is None:
            self._pipelines = self._load()
        guard = out_of_memory_guard(self.device, len(batch.prompts), batch.height, batch.width, "DeepFloyd IF",
                                    self.dtype)
        try:
            with guard, torch.inference_mode():
                images = self._cascade(batch, sizes)
        except ValueError as error:  # diffusers validates sizes, prompts and noise levels with ValueError
            raise EvalkitError(f"DeepFloyd IF rejected the request: {error}") from None
        images = [image.convert("RGB") for image in images]
        if self.resize and images and images[0].size != (batch.width, batch.height):
            images = [image.resize((batch.width, batch.height), Image.Resampling.LANCZOS) for image in images]
        return images


def create(options: AdapterOptions) -> DeepFloydIFAdapter:
    return DeepFloydIFAdapter(options)
