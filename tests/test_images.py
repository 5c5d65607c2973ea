"""evalkit.images: naming, listing and decoding shared by adapters, runs, metrics and rating."""

import numpy as np
import pytest
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.images import (
    IMAGE_SUFFIXES,
    PNG_MAGIC,
    UnreadableImage,
    center_crop_resize,
    content_hash,
    image_file_name,
    list_images,
    load_rgb,
    open_rgb,
    parse_image_file_name,
    to_rgb_image,
)


@pytest.mark.parametrize("key, name", [((12, 3), "00012_03.png"), ((0, 0), "00000_00.png"),
                                       ((123456, 100), "123456_100.png")])
def test_file_name_and_parser_round_trip(key, name):
    assert image_file_name(*key) == name
    assert parse_image_file_name(name) == key


@pytest.mark.parametrize("name, key", [("12_3.jpg", (12, 3)), ("7_2.JPEG", (7, 2)), ("00001_00.webp", (1, 0)),
                                       ("4_1.tif", (4, 1))])
def test_parser_reads_unpadded_names_and_any_image_suffix(name, key):
    assert parse_image_file_name(name) == key


@pytest.mark.parametrize("name", ["12_3.txt", "12-3.png", "a_3.png", "12_3", "12_3_1.png", ".00001_00.png",
                                  "12_3.png.tmp"])
def test_parser_rejects_other_names(name):
    assert parse_image_file_name(name) is None


def test_negative_keys_are_a_programming_error():
    with pytest.raises(ValueError):
        image_file_name(-1, 0)


def test_run_store_and_folder_adapter_use_the_one_naming():
    from evalkit.adapters import folder
    from evalkit.runs.store import image_file

    assert image_file(12, 3) == "images/" + image_file_name(12, 3)
    assert folder.image_file_name is image_file_name and folder.parse_image_file_name is parse_image_file_name


def test_list_images_skips_hidden_temp_and_other_files(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", ".tmp-x.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.JPG", "b.png", "sub/c.webp"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalkitError, match="no images"):
        list_images(tmp_path / "empty")
    with pytest.raises(EvalkitError, match="is not a directory"):
        list_images(tmp_path / "b.png")


def test_rgba_palette_and_grey_decode_as_pil_convert(tmp_path):
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (5, 7, 4), dtype=np.uint8), mode="RGBA")
    for image in (rgba, rgba.convert("P"), rgba.convert("L")):
        path = tmp_path / f"{image.mode}.png"
        image.save(path)
        with Image.open(path) as reference:
            expected = np.asarray(reference.convert("RGB"))
        assert np.array_equal(load_rgb(path), expected)
        assert np.array_equal(np.asarray(open_rgb(path)), expected) and open_rgb(path).mode == "RGB"
        assert np.array_equal(np.asarray(to_rgb_image(image)), np.asarray(image.convert("RGB")))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert load_rgb(path)[0, :, 0].tolist() == [0, 1, 255, 128]


def test_unreadable_file_names_the_file_and_keeps_the_reason(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(PNG_MAGIC + b"garbage")
    with pytest.raises(UnreadableImage, match="bad.png: unreadable or truncated image") as caught:
        load_rgb(path)
    assert isinstance(caught.value, EvalkitError) and caught.value.reason and caught.value.path == path


def test_center_crop_resize_matches_pil_crop_then_bicubic():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb[:, 12:52]).resize((16, 16), Image.BICUBIC))
    assert np.array_equal(center_crop_resize(rgb, 16), expected)


def test_content_hash_is_sha256_of_the_bytes(tmp_path):
    import hashlib

    path = tmp_path / "x.png"
    path.write_bytes(b"abc")
    assert content_hash(path) == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(EvalkitError, match="cannot read"):
        content_hash(tmp_path / "missing.png")
