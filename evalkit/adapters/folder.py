"""The ``folder`` adapter: evaluate images that were made elsewhere, by any model in any environment.

    evalkit run drawbench --model folder --model-path ./my_model_images [--opt resize=true]

File naming: one file per (prompt row index, sample), directly inside the folder:

    PPPPP_SS.png          the run store's own naming (00012_03.png = prompt row 12, sample 3), or
    {index}_{sample}.EXT  the same without zero padding (12_3.jpg); EXT is any of evalkit.images.IMAGE_SUFFIXES
                          (png, jpg, jpeg, webp, bmp, tif, tiff, ppm; any case)

The prompt row index is the benchmark row's ``index`` (see ``evalkit benchmarks show``; the ``prompt_index``
column of a run's index.csv), and samples count from 0 up to ``--images-per-prompt`` - 1. So a run's
``images/`` folder is itself a valid input. Two files for the same (index, sample) are an error, and so is a
missing one: the message names the file that was expected.

Images are converted to RGB as evalkit.images documents (an alpha channel is dropped). They must already have the size the run asks for
(the default size is that of the first image, in name order); with ``--opt resize=true`` they are resized
with bicubic filtering instead, which distorts the aspect ratio if it differs. Since the images exist already,
the seeds evalkit derives are ignored and ``config()`` says so. ``checkpoint_hash()`` fingerprints the file
listing (names, sizes, modification times), so replacing images gives a new run id instead of a stale reuse.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from PIL import Image

from evalkit.adapters.base import AdapterOptions, GenerationBatch, check_known_options, parse_bool, read_option, require_model_dir
from evalkit.errors import EvalkitError
from evalkit.images import UnreadableImage, image_file_name, image_size, open_rgb, parse_image_file_name

OPTIONS = {"resize"}


def scan_folder(folder: Path) -> dict[tuple[int, int], Path]:
    """Map (prompt_index, sample) -> image file for every file that follows the naming; reject duplicates."""
    found: dict[tuple[int, int], Path] = {}
    for path in sorted(folder.iterdir()):
        key = parse_image_file_name(path.name)
        if key is None or not path.is_file():
            continue
        if key in found:
            raise EvalkitError(
                f"{folder}: both {found[key].name} and {path.name} are prompt {key[0]} sample {key[1]}; keep one"
            )
        found[key] = path
    return found


def read_image(path: Path) -> Image.Image:
    try:
        return open_rgb(path)
    except UnreadableImage as error:
        raise EvalkitError(f"{path} is not a readable image ({error.reason})") from None


class FolderAdapter:
    name = "folder"
    device = "none"  # nothing is computed: the run's generation timings of a folder measure file reading

    def __init__(self, options: AdapterOptions):
        check_known_options(options, OPTIONS, self.name)
        folder = require_model_dir(options, self.name, "the folder holding the images")
        self.folder = folder.resolve()
        self.resize = read_option(options, "resize", False, parse_bool)
        self._files = scan_folder(self.folder)
        if not self._files:
            raise EvalkitError(
                f"{self.folder} holds no images named like 00012_03.png or 12_3.jpg (prompt index _ sample)"
            )
        first = next(iter(self._files.values()))
        try:
            width, height = image_size(first)
        except UnreadableImage as error:
            raise EvalkitError(f"{first} is not a readable image ({error.reason})") from None
        self.default_size = (height, width)

    def config(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "resize": "bicubic" if self.resize else False,
            "uses_seeds": False,  # the images exist already: evalkit's per-image seeds cannot change them
        }

    def checkpoint_hash(self) -> str | None:
        digest = hashlib.sha256()
        for key, path in sorted(self._files.items()):
            stat = path.stat()
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def _path(self, prompt_index: int, sample: int) -> Path:
        key = (prompt_index, sample)
        if key not in self._files:
            self._files = scan_folder(self.folder)  # images may have been added since the adapter was made
        if key not in self._files:
            raise EvalkitError(
                f"no image for prompt {prompt_index} sample {sample}: expected {self.folder / image_file_name(*key)} "
                f"(or {prompt_index}_{sample}.png/.jpg/.jpeg/.webp)"
            )
        return self._files[key]

    def generate(self, batch: GenerationBatch) -> list[Image.Image]:
        if batch.keys is None:
            raise ValueError("the folder adapter needs GenerationBatch.keys (prompt_index, sample) to find images")
        images = []
        for prompt_index, sample in batch.keys:
            path = self._path(prompt_index, sample)
            image = read_image(path)
            if image.size != (batch.width, batch.height):
                if not self.resize:
                    raise EvalkitError(
                        f"{path} is {image.height}x{image.width} (height x width) but the run asks for "
                        f"{batch.height}x{batch.width}: pass --size {image.height}x{image.width} to use the images "
                        f"as they are, or --opt resize=true to resize them"
                    )
                image = image.resize((batch.width, batch.height), Image.Resampling.BICUBIC)
            images.append(image)
        return images


def create(options: AdapterOptions) -> FolderAdapter:
    return FolderAdapter(options)
