"""The ``diffusers`` adapter: any diffusers text-to-image pipeline saved in a local directory.

    evalkit run drawbench --model diffusers --model-path ./stable-diffusion-v1-5 \\
        --opt steps=50 --opt guidance_scale=7.5 --opt scheduler=ddim

``--model-path`` is a directory written by ``pipeline.save_pretrained`` (or a downloaded Hub snapshot): it must
hold ``model_index.json``. Nothing is downloaded; loading uses local files only. Options (``--opt key=value``):

    steps            number of denoising steps (default: the pipeline's own default, 50 for Stable Diffusion)
    guidance_scale   classifier-free guidance weight (default: the pipeline's own default, 7.5 for SD)
    scheduler        swap the sampler for one compatible with the pipeline's own, by class name; case, "_",
                     and the "Scheduler"/"Discrete" suffixes are optional: ddim, euler_ancestral, pndm,
                     DPMSolverMultistepScheduler, ... (an unknown name lists the known ones)
    negative_prompt  text used as the negative prompt for every image
    dtype            float32 (default), float16 or bfloat16 (fp32, fp16, bf16): the weights are loaded in it
    variant          weight-file variant to load, e.g. fp16 for ``*.fp16.safetensors``

Every image gets its own CPU ``torch.Generator`` seeded with its evalkit seed, so its starting noise (and the
noise of ancestral samplers) depends only on its own seed: the same (prompt, seed) gives the same image whatever
else is in the batch, and the same noise on CPU or GPU. The safety checker is never loaded: it replaces flagged
images with black squares, which would silently corrupt FID and CLIP scores; evaluate what the model drew. For the
same reason SDXL-style pipelines get ``add_watermarker=False`` (their invisible watermark alters every image).

On ``--device cuda`` / ``cuda:N`` an out-of-memory error is one line naming a smaller ``--batch-size`` to try
(``evalkit.adapters.gpu``). ``load_pipeline`` and ``DiffusersAdapter``'s hooks (``_locate``, ``_pipeline_class``,
``CALL_OPTIONS``) are what the ``stable-diffusion`` and ``deepfloyd-if`` adapters build on.

``checkpoint_hash()`` is a SHA-256 over the directory's weight and config files (relative path + content), cached
on disk by (path, size, mtime) in ``$EVALKIT_CACHE_DIR/file_hashes.json`` (default ``$XDG_CACHE_HOME/evalkit`` or
``~/.cache/evalkit``) so multi-GB checkpoints are read once.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from evalkit import atomic, paths
from evalkit.hashing import sha256_file
from evalkit.adapters.base import (AdapterOptions, GenerationBatch, check_known_options, finite_float, read_option,
                                   require_model_dir, steps_count)
from evalkit.adapters.gpu import out_of_memory_guard, parse_dtype, torch_dtype
from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError

# `--opt` name -> (pipeline call argument, type); an option is rejected when the pipeline has no such argument.
CALL_OPTIONS = {
    "steps": ("num_inference_steps", steps_count),
    "guidance_scale": ("guidance_scale", finite_float),
    "negative_prompt": ("negative_prompt", str),
}
OPTIONS = set(CALL_OPTIONS) | {"scheduler", "dtype", "variant"}
PER_PROMPT_ARGUMENTS = {"negative_prompt", "negative_prompt_2"}  # repeated once per prompt of the batch
# Files that determine the pipeline's behaviour; README, images and hidden dirs (.cache, .git) are ignored.
HASHED_SUFFIXES = {
    ".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx", ".gguf", ".json", ".txt", ".model"
}


def _import_diffusers():
    try:
        import diffusers
    except ImportError:
        raise EvalkitError(
            "the diffusers adapter needs the diffusers package: pip install 'evalkit[diffusers]'"
        ) from None
    return diffusers


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvalkitError(f"{path} is unreadable or not JSON ({error})") from None
    if not isinstance(data, dict):
        raise EvalkitError(f"{path} is not a JSON object")
    return data


def _scheduler_key(name: str) -> str:
    """'EulerAncestralDiscreteScheduler', 'euler_ancestral' and 'EulerAncestral' all name the same scheduler."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for suffix in ("scheduler", "discrete"):
        key = key.removesuffix(suffix)
    return key


def resolve_scheduler(name: str, current: str | None, diffusers) -> str:
    """The class name of the scheduler the user asked for, among those compatible with the pipeline's own."""
    if current is None:
        raise EvalkitError("--opt scheduler: this pipeline has no scheduler to replace")
    current_class = getattr(diffusers, current, None)
    compatible = {current} | {c.__name__ for c in getattr(current_class, "_get_compatibles", lambda: [])()}
    by_key = {_scheduler_key(c): c for c in compatible}
    wanted = _scheduler_key(name)
    if wanted not in by_key:
        known = ", ".join(sorted(compatible))
        raise EvalkitError(f"unknown scheduler {name!r} for this pipeline; known schedulers: {known}")
    return by_key[wanted]


def _default_size(path: Path, index: dict[str, Any]) -> tuple[int, int]:
    """The pipeline's native resolution: the denoiser's latent sample size times the VAE's downscale factor."""
    latent = None
    for denoiser in ("unet", "transformer", "prior"):
        config_file = path / denoiser / "config.json"
        if denoiser in index and config_file.is_file():
            latent = _read_json(config_file).get("sample_size")
            break
    factor = 8
    if (path / "vae" / "config.json").is_file():
        blocks = _read_json(path / "vae" / "config.json").get("block_out_channels")
        if isinstance(blocks, list) and blocks:
            factor = 2 ** (len(blocks) - 1)
    if isinstance(latent, int) and latent > 0:
        return latent * factor, latent * factor
    return 512, 512


def _dtype_argument(diffusers) -> str:
    """diffusers renamed from_pretrained's torch_dtype to dtype (the old name now warns); use what it has."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


@contextmanager
def _quiet_loading():
    """Silence the loaders' progress bars and advice (e.g. "install accelerate") while a pipeline loads:
    they would interleave with evalkit's own progress bar. Errors still surface as exceptions."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = (diffusers_logging, transformers_logging)
    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libraries]
    for lib, _, _ in saved:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


# -- checkpoint hashing -------------------------------------------------------------------------------------------


def _cache_file() -> Path:
    return paths.cache_dir("file_hashes.json")


def _load_hash_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def hashed_files(directory: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    """The files ``directory_hash`` covers, sorted, skipping hidden files and folders and the top-level folders
    in ``skip`` (components that are not loaded)."""
    found = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or relative.parts[0] in skip:
            continue
        if path.is_file() and path.suffix.lower() in HASHED_SUFFIXES:
            found.append(path)
    return found


def directory_hash(directory: Path, skip: tuple[str, ...] = ()) -> str:
    """SHA-256 over (relative path, file SHA-256) of every weight/config file; per-file hashes are cached on disk."""
    cache = _load_hash_cache()
    changed = False
    combined = hashlib.sha256()
    for path in hashed_files(directory, skip):
        stat = path.stat()
        key = str(path.resolve())
        entry = cache.get(key)
        stamp = (stat.st_size, stat.st_mtime_ns)
        if not (isinstance(entry, dict) and (entry.get("size"), entry.get("mtime_ns")) == stamp):
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256_file(path)}
            cache[key] = entry
            changed = True
        combined.update(f"{path.relative_to(directory).as_posix()}\0{entry['sha256']}\n".encode())
    if changed:
        try:
            atomic.write_json(_cache_file(), cache)
        except OSError:
            pass  # an unwritable cache only costs time on the next run
    return combined.hexdigest()


# -- loading --------------------------------------------------------------------------------------------------------


def load_pipeline(pipeline_class: str, path: Path, device: str, dtype, variant: str | None = None, **components):
    """``diffusers.<pipeline_class>.from_pretrained(path)`` from local files only, quiet, on ``device``.

    ``dtype`` is a torch dtype or diffusers' per-component dict ({"default": ..., "text_encoder": ...});
    ``components`` override loaded ones (``safety_checker=None``). Failures are one-line errors naming ``path``.
    """
    diffusers = _import_diffusers()
    kwargs: dict[str, Any] = {_dtype_argument(diffusers): dtype, "local_files_only": True, **components}
    if variant:
        kwargs["variant"] = variant
    try:
        with _quiet_loading():
            pipeline = getattr(diffusers, pipeline_class).from_pretrained(path, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise EvalkitError(f"cannot load the diffusers pipeline in {path}: {error}") from None
    pipeline.set_progress_bar_config(disable=True)  # evalkit shows its own progress over batches
    try:
        pipeline.to(device)
    except (RuntimeError, AssertionError, ValueError) as error:
        raise EvalkitError(f"cannot move the pipeline to device {device!r}: {error}") from None
    return pipeline


def cpu_generators(seeds: list[int]):
    """One CPU generator per image: its noise depends only on its own seed, and is the same on any device."""
    import torch

    return [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]


# -- the adapter --------------------------------------------------------------------------------------------------


class DiffusersAdapter:
    name = "diffusers"
    OPTIONS = OPTIONS
    CALL_OPTIONS = CALL_OPTIONS

    def __init__(self, options: AdapterOptions):
        check_known_options(options, self.OPTIONS, self.name)
        path = self._locate(options)
        diffusers = _import_diffusers()
        self.path = path.resolve()
        index = _read_json(path / "model_index.json")
        self.pipeline_class = self._pipeline_class(index, diffusers)
        pipeline_type = getattr(diffusers, self.pipeline_class)
        self._call_defaults = {
            name: p.default for name, p in inspect.signature(pipeline_type.__call__).parameters.items()
        }
        needed = {"prompt", "height", "width", "generator"}
        if not needed <= set(self._call_defaults) or "image" in self._call_defaults:
            raise EvalkitError(
                f"{self.pipeline_class} is not a text-to-image pipeline (it must take a prompt and a size, "
                "and no input image)"
            )

        scheduler_entry = index.get("scheduler")
        own_scheduler = scheduler_entry[1] if isinstance(scheduler_entry, list) and len(scheduler_entry) == 2 else None
        requested = read_option(options, "scheduler", None)
        self.scheduler = resolve_scheduler(requested, own_scheduler, diffusers) if requested else own_scheduler
        self._replace_scheduler = bool(requested) and self.scheduler != own_scheduler

        # Pipeline call arguments, defaulting to the pipeline's own defaults so config() reports what is used.
        self.call_values = {
            argument: self._call_option(options, key, argument, convert)
            for key, (argument, convert) in self.CALL_OPTIONS.items()
        }
        self.steps = self.call_values["num_inference_steps"]
        if self.steps is not None and self.steps <= 0:
            raise EvalkitError(f"--opt steps must be a positive integer, got {self.steps}")
        self.guidance_scale = self.call_values["guidance_scale"]
        self.negative_prompt = self.call_values["negative_prompt"]
        self.dtype = parse_dtype(options)
        self.variant = read_option(options, "variant", None)
        self.has_safety_checker = "safety_checker" in index
        self.default_size = _default_size(path, index)
        self.device = resolve_device(options.device)
        self._pipeline = None
        self._tokenized: set[str] = set()  # prompts whose token count was checked (see _note_truncations)
        self._truncated: set[str] = set()
        self._checkpoint_hash: str | None = None

    def _locate(self, options: AdapterOptions) -> Path:
        """The pipeline directory (hook: the stable-diffusion adapter also looks in the Hugging Face cache)."""
        path = require_model_dir(options, self.name, "a saved diffusers pipeline directory")
        if not (path / "model_index.json").is_file():
            raise EvalkitError(
                f"{path} is not a diffusers pipeline (no model_index.json); save one with pipeline.save_pretrained(DIR)"
            )
        return path

    def _pipeline_class(self, index: dict[str, Any], diffusers) -> str:
        """The diffusers class that loads and runs this directory (hook: stable-diffusion maps img2img to text2img)."""
        name = str(index.get("_class_name", ""))
        if getattr(diffusers, name, None) is None:
            raise EvalkitError(
                f"{self.path}/model_index.json names pipeline {name!r}, which diffusers {diffusers.__version__} does not have"
            )
        return name

    def _call_option(self, options: AdapterOptions, key: str, argument: str, convert):
        """An option that maps onto a pipeline call argument: rejected if the pipeline lacks that argument,
        defaulting to the pipeline's own default so config() reports what is actually used."""
        if argument not in self._call_defaults:
            if key in options.extra:
                raise EvalkitError(f"--opt {key}: {self.pipeline_class} has no {argument} argument")
            return None
        default = self._call_defaults[argument]
        return read_option(options, key, None if default is inspect.Parameter.empty else default, convert)

    def config(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline_class,
            "model_path": str(self.path),
            "scheduler": self.scheduler,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "negative_prompt": self.negative_prompt,
            "dtype": self.dtype,
            "variant": self.variant,
            "safety_checker": "disabled",
        }

    def checkpoint_hash(self) -> str | None:
        if self._checkpoint_hash is None:
            self._checkpoint_hash = directory_hash(self.path)
        return self._checkpoint_hash

    def _load(self):
        components = dict(safety_checker=None, requires_safety_checker=False) if self.has_safety_checker else {}
        pipeline_init = inspect.signature(getattr(_import_diffusers(), self.pipeline_class).__init__).parameters
        if "add_watermarker" in pipeline_init:  # SDXL: an invisible watermark would alter every image's pixels
            components["add_watermarker"] = False
        pipeline = load_pipeline(
            self.pipeline_class, self.path, self.device, torch_dtype(self.dtype), self.variant, **components
        )
        if self._replace_scheduler:
            scheduler_type = getattr(_import_diffusers(), self.scheduler)
            pipeline.scheduler = scheduler_type.from_config(pipeline.scheduler.config)
        return pipeline

    def _call_arguments(self, batch: GenerationBatch) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "prompt": list(batch.prompts),
            "height": batch.height,
            "width": batch.width,
            "generator": cpu_generators(batch.seeds),
            "output_type": "pil",
        }
        for argument, value in self.call_values.items():
            if value is not None:
                kwargs[argument] = [value] * len(batch.prompts) if argument in PER_PROMPT_ARGUMENTS else value
        return kwargs

    def generate(self, batch: GenerationBatch) -> list[Image.Image]:
        import torch

        if self._pipeline is None:
            self._pipeline = self._load()
        self._note_truncations(batch.prompts)
        kwargs = self._call_arguments(batch)
        guard = out_of_memory_guard(self.device, len(batch.prompts), batch.height, batch.width, self.pipeline_class,
                                    self.dtype)
        try:
            with guard, torch.inference_mode():
                images = self._pipeline(**kwargs).images
        except ValueError as error:  # diffusers validates sizes and prompts with ValueError
            raise EvalkitError(f"{self.pipeline_class} rejected the request: {error}") from None
        return [image.convert("RGB") for image in images]  # count and size are checked by the run pipeline


    def _note_truncations(self, prompts) -> None:
        """Which prompts the pipeline's tokenizer will cut to its model_max_length (the pipeline truncates them
        itself, saying so only in a log line): counted once per prompt, reported by truncated_prompts()."""
        tokenizer = getattr(self._pipeline, "tokenizer", None)
        limit = getattr(tokenizer, "model_max_length", None)
        if tokenizer is None or not isinstance(limit, int) or limit > 100_000:  # no tokenizer, or no stated limit
            return
        for prompt in set(prompts) - self._tokenized:
            self._tokenized.add(prompt)
            if len(tokenizer(prompt)["input_ids"]) > limit:
                self._truncated.add(prompt)

    def truncated_prompts(self) -> dict[str, Any] | None:
        """The prompts longer than the text encoder's context (the run records them: evalkit.runs.provenance)."""
        if not self._truncated:
            return None
        tokenizer = self._pipeline.tokenizer
        return {"encoder": type(tokenizer).__name__, "max_tokens": tokenizer.model_max_length,
                "prompts": sorted(self._truncated)}


def create(options: AdapterOptions) -> DiffusersAdapter:
    return DiffusersAdapter(options)
