"""The ``stable-diffusion`` adapter: Stable Diffusion 1.x, 2.x and XL pipelines, from a local directory or the
user's Hugging Face cache.

    evalkit run --model stable-diffusion --model-path ./stable-diffusion-v1-5 --opt steps=50 --benchmark coco
    evalkit run --model stable-diffusion --opt repo=stabilityai/stable-diffusion-xl-base-1.0 \\
        --device cuda --opt dtype=fp16 --batch-size 4

Where the weights are: ``--model-path DIR`` (a directory written by ``save_pretrained``, or any downloaded snapshot:
it holds ``model_index.json``), or ``--opt repo=org/name``, looked up in the Hugging Face cache with local files
only (``evalkit.adapters.hf_cache``); nothing is downloaded, and a repository that is not cached is one line naming
the repository and the cache folder searched.

Which pipeline runs: the checkpoint's ``model_index.json`` class is mapped to its family's text-to-image pipeline,
as ``AutoPipelineForText2Image`` does, so a checkpoint saved from StableDiffusionImg2ImgPipeline runs as
StableDiffusionPipeline and an SDXL one as StableDiffusionXLPipeline. Other families are refused with the adapter
to use instead (``diffusers`` runs any text-to-image pipeline; ``deepfloyd-if`` the IF cascade), and so is an
inpainting UNet (9 input channels), which cannot make an image from text alone.

Options (``--opt key=value``): all of the ``diffusers`` adapter's (steps, guidance_scale, scheduler, negative_prompt,
dtype, variant), and

    repo               a Hub repository id in the local Hugging Face cache, instead of --model-path
    guidance_rescale   rescale of the guided prediction (Lin et al. 2023, "Common Diffusion Noise Schedules and
                       Sample Steps are Flawed", eq. 16), default 0 (off)
    negative_prompt_2  SDXL only: the negative prompt of the second text encoder (default: negative_prompt)

Precision: ``dtype`` loads every component in it, the CLIP text encoders included (they are trained and shipped in
half precision). SDXL's VAE decoder overflows in float16; its pipeline upcasts it to float32 for decoding when the
VAE config sets ``force_upcast``, which is why evalkit does not wrap the call in ``torch.autocast`` (see
``evalkit.adapters.gpu``). Seeds, the disabled safety checker and the checkpoint hash are the ``diffusers``
adapter's: one CPU generator per image, so an image depends only on its own seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.adapters.base import AdapterOptions, finite_float, require_model_dir
from evalkit.adapters.diffusers import CALL_OPTIONS, OPTIONS, DiffusersAdapter, _read_json
from evalkit.adapters.hf_cache import PipelineLocation, cached_snapshot, is_repo_id, require_pipeline_dir
from evalkit.errors import EvalkitError

FAMILIES = ("stable-diffusion", "stable-diffusion-xl")  # AutoPipeline's names for SD 1.x/2.x and SDXL
SD_CALL_OPTIONS = {
    **CALL_OPTIONS,
    "guidance_rescale": ("guidance_rescale", finite_float),
    "negative_prompt_2": ("negative_prompt_2", str),
}
OTHER_ADAPTERS = {"IF": "deepfloyd-if"}  # class-name prefix -> the adapter that runs it


def sd_family(checkpoint_class: str) -> tuple[str, str] | None:
    """(family, text-to-image class name) of a Stable Diffusion 1.x/2.x/XL pipeline class, else None.

    Uses diffusers' AutoPipeline tables: a class belongs to a family when the family's text-to-image,
    image-to-image or inpainting entry is that class.
    """
    from diffusers.pipelines import auto_pipeline as auto

    tables = (
        auto.AUTO_TEXT2IMAGE_PIPELINES_MAPPING,
        auto.AUTO_IMAGE2IMAGE_PIPELINES_MAPPING,
        auto.AUTO_INPAINT_PIPELINES_MAPPING,
    )
    for family in FAMILIES:
        if any(family in table and table[family].__name__ == checkpoint_class for table in tables):
            return family, auto.AUTO_TEXT2IMAGE_PIPELINES_MAPPING[family].__name__
    return None


class StableDiffusionAdapter(DiffusersAdapter):
    name = "stable-diffusion"
    OPTIONS = OPTIONS | set(SD_CALL_OPTIONS) | {"repo"}
    CALL_OPTIONS = SD_CALL_OPTIONS

    def _locate(self, options: AdapterOptions) -> Path:
        repo = options.extra.get("repo")
        if repo and options.model_path:
            raise EvalkitError("give the stable-diffusion adapter --model-path DIR or --opt repo=ORG/NAME, not both")
        if repo:
            if not is_repo_id(repo):
                raise EvalkitError(f"--opt repo={repo!r} is not a Hub repository id (ORG/NAME)")
            self.location = cached_snapshot(repo, "--opt repo")
        elif options.model_path:
            path = require_model_dir(options, self.name, "a saved Stable Diffusion pipeline directory")
            self.location = PipelineLocation(require_pipeline_dir(path, "--model-path").resolve())
        else:
            raise EvalkitError(
                "the stable-diffusion adapter needs --model-path DIR (a saved SD 1.x/2.x/XL pipeline) "
                "or --opt repo=ORG/NAME (looked up in the local Hugging Face cache)"
            )
        return self.location.path

    def _pipeline_class(self, index: dict[str, Any], diffusers) -> str:
        self.checkpoint_class = str(index.get("_class_name", ""))
        found = sd_family(self.checkpoint_class)
        if found is None:
            other = next((a for prefix, a in OTHER_ADAPTERS.items() if self.checkpoint_class.startswith(prefix)), None)
            raise EvalkitError(
                f"{self.path} holds a {self.checkpoint_class or 'unnamed'} pipeline, not Stable Diffusion 1.x/2.x/XL; "
                f"use --model {other or 'diffusers'} for it"
            )
        self.family, text_to_image = found
        self._refuse_inpainting_unet()
        return text_to_image

    def _refuse_inpainting_unet(self) -> None:
        unet, vae = self.path / "unet" / "config.json", self.path / "vae" / "config.json"
        if not unet.is_file():
            return  # a broken directory is reported when it loads
        channels = _read_json(unet).get("in_channels")
        latent = _read_json(vae).get("latent_channels", 4) if vae.is_file() else 4
        if isinstance(channels, int) and channels != latent:
            raise EvalkitError(
                f"{self.path}: its UNet takes {channels} input channels (an inpainting model: latents + mask + "
                f"masked image), not {latent}; it cannot make images from text alone"
            )

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            **self.location.describe(),
            "family": self.family,
            "checkpoint_class": self.checkpoint_class,
            "guidance_rescale": self.call_values["guidance_rescale"],
            "negative_prompt_2": self.call_values["negative_prompt_2"],
        }


def create(options: AdapterOptions) -> StableDiffusionAdapter:
    return StableDiffusionAdapter(options)
