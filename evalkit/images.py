"""Image files for every stage (adapters, runs, metrics, rating): suffixes, naming, decoding to 8-bit RGB.

It sits below all stages (benchmarks -> adapters -> runs -> metrics -> reports), so each can use it without
importing a later one.

Naming: the image of prompt row ``prompt_index`` (its position in the full benchmark) and sample ``sample`` is
``PPPPP_SS.png`` (5 and 2 digits, more when the number needs them: 00012_03.png). ``parse_image_file_name`` also
reads the same without zero padding and with any image suffix (12_3.jpg), for images made elsewhere.

Decoding (``load_rgb``, ``open_rgb``, ``image_size``) is the one place evalkit reads pixels from a file:
  formats   PNG, JPEG, BMP, WebP, TIFF and PPM/PGM/PBM, recognised by content whatever the suffix; Pillow's other
            plugins (EPS would run Ghostscript) are never tried.
  size      at most ``MAX_IMAGE_PIXELS`` = 89,478,485 pixels (Pillow's default limit: ~9459 x 9459, 268 MB as 8-bit
            RGB), checked from the header before any pixel is decoded; more is ``ImageTooLarge``, naming the file
            and the size it claims (a decompression bomb, or an image far beyond any metric's input).
  warnings  a process that imports this module makes Pillow's ``DecompressionBombWarning`` an error and ignores
            its image plugins' ``UserWarning`` notes on malformed metadata (EXIF, TIFF tags, APNG chunks: not
            used here, and they name no file); the pixels then decode or the file is refused in one line.
            Warnings filters are process-wide; one scoped to each call would race with the decoder threads.
  pixels    as stored: EXIF orientation is not applied and ICC profiles are ignored, as pytorch-fid, clean-fid and
            torch-fidelity read files (``Image.open(...).convert("RGB")``; torchvision's ``decode_image`` by
            default), so features match theirs for the same file. Run images are re-encoded without EXIF, so
            raters see the pixels the metrics see. Multi-frame files (APNG, TIFF pages, MPO): the first frame.
Conversions to HxWx3 uint8, the same as those libraries' ``convert("RGB")`` except where noted:
  L, 1, CMYK, YCbCr, LAB, RGBX   PIL's conversion (CMYK naively, without an ICC profile)
  RGBA, LA                       alpha dropped: colour kept, not composited on any background
  P, PA                          the palette colours, transparency dropped (through RGBA, which gives the same
                                 colours without Pillow's warning for byte-string transparency)
  I;16, I;16B, I;16L, I;16N      value / 257, rounded (65535 -> 255), instead of PIL's clipping at 255
  I (32-bit integers)            the same when every value is in 0..65535 (16-bit files), else refused
  F (floating point)             refused: there is no agreed scale
Every failure is one line naming the file: ``UnreadableImage`` (empty, truncated, not an image, another format,
an unsupported mode, unreadable), ``ImageTooLarge`` (a subclass), both ``EvalkitError``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from evalkit.errors import EvalkitError
from evalkit.hashing import sha256_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}
DECODED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "PPM")  # Pillow's names for the suffixes above
MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default limit, enforced here whatever Image.MAX_IMAGE_PIXELS is set to
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}
_KEYED_NAME = re.compile(r"^(\d+)_(\d+)(\.[A-Za-z]+)$")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")



def install_decoder_warning_filters() -> None:
    """This process's warnings filters for decoding (see the module docstring): Pillow's bomb warning is an error;
    its image plugins' notes on malformed metadata are ignored (metadata is not used, and they name no file)."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.\w+ImagePlugin")
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


install_decoder_warning_filters()


class UnreadableImage(EvalkitError):
    """A file that does not decode as an image; ``reason`` is the decoder's own words (first line)."""

    def __init__(self, path: str | Path, reason: str, what: str = "unreadable or truncated image"):
        super().__init__(f"{path}: {what} ({reason})")
        self.path, self.reason = Path(path), reason


class ImageTooLarge(UnreadableImage):
    """A file whose header claims more than ``MAX_IMAGE_PIXELS`` pixels; nothing of it was decoded."""

    def __init__(self, path: str | Path, claimed: str):
        reason = f"claims {claimed}, over the limit of {MAX_IMAGE_PIXELS:,}"
        EvalkitError.__init__(self, f"{path}: image too large: {reason} (a decompression bomb, or far larger than "
                              "any metric's input; downscale it)")
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
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise EvalkitError("32-bit integer pixels outside 0..65535 (mode I) have no 8-bit scale; "
                               "save the image as 8- or 16-bit")
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        raise EvalkitError("floating-point pixels (mode F) have no agreed 8-bit scale; save the image as 8-bit RGB")
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def to_rgb_image(image: Image.Image) -> Image.Image:
    """The same conversion as ``to_rgb_array``, as a PIL RGB image (returned unchanged when already RGB)."""
    return image if image.mode == "RGB" else Image.fromarray(to_rgb_array(image))


def _reason(error: BaseException) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "not a PNG, JPEG, BMP, WebP, TIFF or PPM image"
    if isinstance(error, MemoryError):
        return "out of memory while decoding"
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _open(path: str | Path) -> Image.Image:
    """The file opened lazily (header read, no pixels yet), its claimed size within the limit."""
    try:
        image = Image.open(path, formats=DECODED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        found = _BOMB_PIXELS.search(str(error))
        raise ImageTooLarge(path, f"{int(found.group(1)):,} pixels" if found else "too many pixels") from None
    except Exception as error:  # Pillow's plugins raise many types (OSError, SyntaxError, struct.error...) on bad input
        raise UnreadableImage(path, _reason(error)) from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageTooLarge(path, f"{width} x {height} = {width * height:,} pixels")
    if width < 1 or height < 1:
        image.close()
        raise UnreadableImage(path, f"{width} x {height} pixels")
    return image


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header, checked like ``load_rgb`` checks it; no pixel is decoded."""
    with _open(path) as image:
        return image.size


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode one file to an HxWx3 uint8 array; the file is closed before returning."""
    with _open(path) as image:
        try:
            image.load()
        except Exception as error:  # truncated data, a corrupt stream, a decoder limit (see _open)
            raise UnreadableImage(path, _reason(error)) from None
        try:
            return to_rgb_array(image)
        except EvalkitError as error:
            raise UnreadableImage(path, str(error), what="unsupported image") from None
        except (ValueError, OSError, MemoryError) as error:  # a mode PIL cannot convert to RGB
            raise UnreadableImage(path, _reason(error), what="unsupported image") from None


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
