"""Image files for every stage (adapters, runs, metrics, rating): suffixes, naming, decoding to 8-bit RGB.

It sits below all stages (benchmarks -> adapters -> runs -> metrics -> reports), so each can use it without
importing a later one.

Naming: the image of prompt row ``prompt_index`` (its position in the full benchmark) and sample ``sample`` is
``PPPPP_SS.png`` (5 and 2 digits, more when the number needs them: 00012_03.png). ``parse_image_file_name`` also
reads the same without zero padding and with any image suffix (12_3.jpg), for images made elsewhere.

Conversions (the same as pytorch-fid, clean-fid and torchmetrics users get from ``Image.convert("RGB")``):
grayscale / palette / CMYK / YCbCr -> RGB; an alpha channel is dropped (colour kept, not composited), as those
libraries do; 16-bit grayscale is scaled to 8 bits (value / 257, rounded) instead of PIL's clipping to 255.
Unreadable or truncated files raise ``UnreadableImage`` (an EvalkitError) that names the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from evalkit.errors import EvalkitError
from evalkit.hashing import sha256_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_KEYED_NAME = re.compile(r"^(\d+)_(\d+)(\.[A-Za-z]+)$")


class UnreadableImage(EvalkitError):
    """A file that does not decode as an image; ``reason`` is the decoder's own words."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: unreadable or truncated image ({reason})")
        self.path, self.reason = Path(path), reason


def image_file_name(prompt_index: int, sample: int) -> str:
    """The file name of one generated image: ``PPPPP_SS.png``."""
    if prompt_index < 0 or sample < 0:
        raise ValueError(f"prompt_index and sample must be >= 0, got ({prompt_index}, {sample})")
    return f"{prompt_index:05d}_{sample:02d}.png"


def parse_image_file_name(name: str) -> tuple[int, int] | None:
    """(prompt_index, sample) of a name like 00012_03.png or 12_3.JPG; None for any other name."""
    match = _KEYED_NAME.match(name)
    if match is None or match.group(3).lower() not in IMAGE_SUFFIXES:
        return None
    return int(match.group(1)), int(match.group(2))


def is_image_file(path: Path) -> bool:
    """A visible regular file with an image suffix (temp files of evalkit.atomic start with a dot)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), ignoring hidden and temp files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalkitError(f"{folder} is not a directory")
    files = sorted(p for p in folder.rglob("*") if is_image_file(p))
    if not files:
        raise EvalkitError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {folder}")
    return files


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """HxWx3 uint8 array of a decoded PIL image (see the module docstring for conversions)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        raise EvalkitError("floating-point images are not supported; save them as 8-bit RGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def to_rgb_image(image: Image.Image) -> Image.Image:
    """The same conversion as ``to_rgb_array``, as a PIL RGB image (returned unchanged when already RGB)."""
    return image if image.mode == "RGB" else Image.fromarray(to_rgb_array(image))


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode one file to an HxWx3 uint8 array; the file is closed before returning."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UnreadableImage(path, str(error)) from None


def open_rgb(path: str | Path) -> Image.Image:
    """Decode one file to a PIL RGB image whose pixels are loaded (the file is closed)."""
    return Image.fromarray(load_rgb(path))


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes."""
    try:
        return sha256_file(path)
    except OSError as error:
        raise EvalkitError(f"{path}: cannot read ({error.strerror or error})") from None


def center_crop_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Square centre crop, then PIL bicubic resize to size x size (the COCO reference protocol)."""
    image = Image.fromarray(rgb)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return np.asarray(image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC))
