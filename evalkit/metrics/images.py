"""Finding and decoding images for the metrics, with one documented conversion to 8-bit RGB.

Conversions (the same as pytorch-fid, clean-fid and torchmetrics users get from ``Image.convert("RGB")``):
grayscale / palette / CMYK / YCbCr -> RGB; an alpha channel is dropped (colour kept, not composited), as those
libraries do; 16-bit grayscale is scaled to 8 bits (value / 257, rounded) instead of PIL's clipping to 255.
Unreadable or truncated files raise an EvalkitError that names the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from evalkit.errors import EvalkitError
from evalkit.hashing import sha256_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), ignoring hidden and temp files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalkitError(f"{folder} is not a directory")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )
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


def load_rgb(path: str | Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise EvalkitError(f"{path}: unreadable or truncated image ({error})") from None


def content_hash(path: str | Path) -> str:
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
