"""Hostile image files through the real CLI: each is refused (exit 2, one line naming the file) or decoded by
the conversion evalkit/images.py documents, checked pixel for pixel in the run the folder adapter writes.

Routes: ``evalkit run --model folder`` (adapter -> run store) and ``evalkit distance`` with the pixels extractor
(metrics' feature pass); the toy-world analyzer reads through the same ``open_rgb``. Run with
``.venv/bin/python -m pytest tests/test_hostile_images.py tests/metrics/test_hostile_stats.py
tests/metrics/test_hostile_weights.py tests/imagen/test_hostile_checkpoints.py -q``.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from evalkit.images import MAX_IMAGE_PIXELS, UnreadableImage, install_decoder_warning_filters, load_rgb
from tests.hostile_cli import assert_refused, cli

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
H, W = RGB.shape[:2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with almost no data after it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def bilevel_bomb(width: int, height: int) -> bytes:
    """A complete, valid 1-bit PNG of zeros: kilobytes on disk, width x height pixels once decoded."""
    rows = zlib.compress(b"\0" * (height * (1 + (width + 7) // 8)), 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return PNG + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def bmp_claiming(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + b"\0" * 64


PNG = b"\x89PNG\r\n\x1a\n"


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _good_png() -> bytes:
    return encoded(Image.fromarray(RGB), "PNG")


def _bad_crc_png() -> bytes:
    data = bytearray(_good_png())
    data[29] ^= 0xFF  # the IHDR's CRC
    return bytes(data)


REFUSED = {  # file name -> (bytes, fragments the error line must contain)
    "zero-byte.png": (lambda: b"", "not a PNG, JPEG, BMP, WebP, TIFF or PPM image"),
    "truncated.png": (lambda: _good_png()[:600], "unreadable or truncated image"),
    "truncated.jpg": (lambda: encoded(Image.fromarray(RGB), "JPEG")[:300], "unreadable or truncated image"),
    "bad-crc.png": (_bad_crc_png, "unreadable or truncated image"),
    "text.png": (lambda: b"hello, not an image\n", "not a PNG, JPEG, BMP, WebP, TIFF or PPM image"),
    "gif-named.png": (lambda: encoded(Image.fromarray(RGB).convert("P"), "GIF"), "not a PNG, JPEG"),
    "eps-named.png": (lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n", "not a PNG, JPEG"),
    "zero-width.png": (lambda: png_claiming(0, 10), "unreadable or truncated image"),
    "float.tif": (lambda: encoded(Image.fromarray(RNG.random((H, W)).astype(np.float32), mode="F"), "TIFF"),
                  "unsupported image", "mode F"),
    "int32-wide.tif": (lambda: encoded(Image.fromarray(np.full((H, W), 70000, np.int32), mode="I"), "TIFF"),
                       "unsupported image", "outside 0..65535"),
    "bomb-header.png": (lambda: png_claiming(100_000, 100_000), "image too large", "10,000,000,000 pixels"),
    "bomb-header.bmp": (lambda: bmp_claiming(60_000, 60_000), "image too large", "3,600,000,000 pixels"),
    "bomb-valid.png": (lambda: bilevel_bomb(10_000, 9_500), "image too large", "95,000,000 pixels"),
}


def _palette_with_byte_transparency() -> Image.Image:
    rgba = np.dstack([RGB, RNG.integers(0, 256, (H, W), dtype=np.uint8)])
    return Image.fromarray(rgba, mode="RGBA").quantize(16)  # tRNS with one alpha per palette entry


def _sixteen_bit(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.rint(values / 257.0).astype(np.uint8)[:, :, None], 3, axis=2)


def _palette_colours(image: Image.Image) -> np.ndarray:
    palette = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
    return palette[np.asarray(image)]


def _cmyk_naive(cmyk: np.ndarray) -> np.ndarray:
    """R = (255 - C)(255 - K) / 255, the same for G (M) and B (Y): the ICC-free conversion (rounded as PIL does:
    (255 - K) - round(C (255 - K) / 255))."""
    c = cmyk.astype(np.int64)
    ink = 255 - c[:, :, 3:]
    product = c[:, :, :3] * ink + 128
    return (ink - ((product + (product >> 8)) >> 8)).astype(np.uint8)


def _converted_cases():
    """file name -> (bytes, the HxWx3 uint8 array the module docstring says it decodes to)."""
    gray16 = RNG.integers(0, 65536, (H, W)).astype(np.uint16)
    cmyk = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
    palette = _palette_with_byte_transparency()
    alpha = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    gray = RGB[:, :, 0]
    exif_image = Image.fromarray(RGB)
    exif = exif_image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": not applied
    jpeg = encoded(Image.fromarray(RGB), "JPEG", quality=95)
    frames = [Image.fromarray(RGB), Image.fromarray(255 - RGB)]
    tall = RNG.integers(0, 256, (1, 2000, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(jpeg)) as decoded:
        jpeg_pixels = np.asarray(decoded.convert("RGB"))
    cmyk_jpeg = encoded(Image.fromarray(cmyk, mode="CMYK"), "JPEG", quality=95)
    with Image.open(io.BytesIO(cmyk_jpeg)) as decoded:
        cmyk_jpeg_pixels = np.asarray(decoded.convert("RGB"))
    return {
        "gray16.png": (encoded(Image.fromarray(gray16), "PNG"), _sixteen_bit(gray16)),
        "gray16-big-endian.tif": (encoded(Image.frombytes("I;16B", (W, H), gray16.astype(">u2").tobytes()), "TIFF"),
                                  _sixteen_bit(gray16)),
        "int32-in-16-bit-range.tif": (encoded(Image.fromarray(gray16.astype(np.int32), mode="I"), "TIFF"),
                                      _sixteen_bit(gray16)),
        "cmyk.tif": (encoded(Image.fromarray(cmyk, mode="CMYK"), "TIFF"), _cmyk_naive(cmyk)),
        "cmyk.jpg": (cmyk_jpeg, cmyk_jpeg_pixels),
        "palette-transparent.png": (encoded(palette, "PNG"), _palette_colours(palette)),
        "la.png": (encoded(Image.fromarray(np.dstack([gray, alpha]), mode="LA"), "PNG"),
                   np.repeat(gray[:, :, None], 3, axis=2)),
        "rgba.png": (encoded(Image.fromarray(np.dstack([RGB, alpha]), mode="RGBA"), "PNG"), RGB),
        "gray.png": (encoded(Image.fromarray(gray), "PNG"), np.repeat(gray[:, :, None], 3, axis=2)),
        "bilevel.png": (encoded(Image.fromarray(gray > 127), "PNG"),
                        np.repeat(np.where(gray > 127, 255, 0).astype(np.uint8)[:, :, None], 3, axis=2)),
        "exif-rotated.jpg": (encoded(exif_image, "JPEG", quality=95, exif=exif), None),  # stored pixels: below
        "jpeg-named.png": (jpeg, jpeg_pixels),
        "two-pages.tif": (encoded(frames[0], "TIFF", save_all=True, append_images=frames[1:]), RGB),
        "one-by-2000.png": (encoded(Image.fromarray(tall), "PNG"), tall),
    }


CONVERTED = _converted_cases()


def _stored_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    for i in range(3):
        Image.fromarray(np.roll(RGB, 5 * i, axis=1)).save(folder / f"good_{i}.png")
    return folder


def _folder_run(tmp_path: Path, name: str, data: bytes, size: tuple[int, int]) -> tuple[list, Path]:
    images = tmp_path / "images"
    images.mkdir()
    path = images / f"0_0{Path(name).suffix}"
    path.write_bytes(data)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a hostile image\n")
    argv = ["run", "--model", "folder", "--model-path", images, "--prompts", prompts, "--images-per-prompt", "1",
            "--size", f"{size[0]}x{size[1]}", "--out", tmp_path / "runs", "--quiet"]
    return argv, path


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_image_is_refused_by_the_folder_adapter(tmp_path, capsys, name):
    make, *fragments = REFUSED[name]
    argv, path = _folder_run(tmp_path, name, make(), (H, W))
    started = time.perf_counter()
    what = ("unreadable or truncated image", "unsupported image", "image too large")  # the adapter says it its way
    assert_refused(capsys, argv, path, "is not a readable image", *(f for f in fragments if f not in what))
    assert time.perf_counter() - started < 20  # refused from the header: a bomb is never decoded
    assert not list((tmp_path / "runs").glob("*/images/*.png"))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_image_is_refused_by_the_feature_pass(tmp_path, capsys, good_folder, name):
    make, *fragments = REFUSED[name]
    folder = tmp_path / "set"
    folder.mkdir()
    for good in good_folder.iterdir():
        (folder / good.name).write_bytes(good.read_bytes())
    path = folder / name
    path.write_bytes(make())
    argv = ["distance", good_folder, folder, "--metrics", "fd", "--opt", "fd.extractor=pixels", "--no-cache",
            "--workers", "0"]
    assert_refused(capsys, argv, path, *fragments)


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_converted_image_gives_the_documented_pixels_in_the_run(tmp_path, capsys, name):
    data, expected = CONVERTED[name]
    expected = _stored_pixels(data) if expected is None else expected
    argv, _ = _folder_run(tmp_path, name, data, expected.shape[:2])
    code, lines, out = cli(capsys, argv)
    assert code == 0, lines
    (stored,) = Path(out.strip().splitlines()[-1]).glob("images/*.png")
    with Image.open(stored) as image:
        assert image.mode == "RGB"
        assert np.array_equal(np.asarray(image), expected)
    assert np.array_equal(load_rgb(_written(tmp_path / "x", name, data)), expected)


def _written(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def test_exif_orientation_is_not_applied(tmp_path):
    data, _ = CONVERTED["exif-rotated.jpg"]
    decoded = load_rgb(_written(tmp_path, "exif.jpg", data))
    with Image.open(io.BytesIO(data)) as image:
        assert image.getexif()[0x0112] == 6
        from PIL import ImageOps

        displayed = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    assert decoded.shape == (H, W, 3) and displayed.shape == (W, H, 3)  # stored, not rotated for display


def test_the_pixel_limit_holds_when_pillows_own_is_switched_off(tmp_path, capsys, monkeypatch, good_folder):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # what some libraries do on import
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    folder = tmp_path / "set"
    folder.mkdir()
    path = _written(folder, "big.png", png_claiming(side, side))
    assert_refused(capsys, ["distance", good_folder, folder, "--metrics", "fd", "--opt", "fd.extractor=pixels",
                            "--no-cache"], path, "image too large", f"{side} x {side} = {side * side:,} pixels")


def test_the_toyworld_analyzer_reads_through_the_same_decoder(tmp_path, capsys):
    from evalkit.metrics.toyworld import image_answers
    from evalkit.runs.store import open_run

    code, lines, out = cli(capsys, ["run", "--model", "toyworld-truth", "--benchmark", "toyworld", "--limit", "1",
                                    "--images-per-prompt", "1", "--out", tmp_path / "runs", "--quiet"])
    assert code == 0, lines
    run = open_run(out.strip().splitlines()[-1])
    (record,) = run.completed_records()
    path = run.image_path(record)
    path.write_bytes(_good_png()[:600])
    with pytest.raises(UnreadableImage, match=f"{path.name}: unreadable or truncated image"):
        image_answers([record], [path])
    assert_refused(capsys, ["score", run.path, "--metrics", "toyworld"], path)


def test_a_bomb_is_one_line_in_a_real_process(tmp_path, good_folder):
    """Outside pytest (which resets warnings filters): Pillow's bomb warning must not add a line of its own."""
    folder = tmp_path / "set"
    folder.mkdir()
    path = _written(folder, "bomb.png", bilevel_bomb(10_000, 9_500))
    result = subprocess.run([sys.executable, "-m", "evalkit", "distance", str(good_folder), str(folder), "--metrics",
                             "fd", "--opt", "fd.extractor=pixels", "--no-cache"],
                            capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("evalkit: error: ") and str(path) in lines[0] and "95,000,000 pixels" in lines[0]


def _seeds() -> list[bytes]:
    small = Image.fromarray(RGB[:8, :8])
    return [encoded(small, "PNG"), encoded(small, "JPEG"), encoded(small, "BMP"), encoded(small, "TIFF"),
            encoded(small, "WEBP"), encoded(small, "PPM"), encoded(small.convert("P"), "PNG")]


SEEDS = _seeds()


@pytest.mark.timeout(300)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(range(len(SEEDS))), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)),
                                                                max_size=6), cut=st.integers(0, 10_000))
def test_fuzzed_files_decode_or_are_refused_in_one_line(tmp_path, seed, flips, cut):
    data = bytearray(SEEDS[seed])
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    data = bytes(data[: max(1, len(data) - cut % len(data))])
    path = tmp_path / "fuzz.png"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as seen:  # as a plain process would show them (tests/hostile_cli.py)
        warnings.simplefilter("default")
        install_decoder_warning_filters()
        try:
            rgb = load_rgb(path)
        except UnreadableImage as error:
            assert "\n" not in str(error) and str(path) in str(error)
        else:
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.size > 0
    assert not [str(w.message) for w in seen]  # nothing but the one line (or nothing at all)
