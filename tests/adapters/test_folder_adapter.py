"""The folder adapter: documented file naming, RGB conversion, size checks and opt-in resizing."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.errors import EvalkitError


def noise_image(seed: int, size=(24, 16), mode="RGB") -> Image.Image:
    """size is (width, height), as PIL has it."""
    channels = len(mode)
    data = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(data if channels > 1 else data[..., 0], mode)


def make(folder, **extra):
    return create_adapter("folder", AdapterOptions(model_path=str(folder), extra=extra))


def batch(keys, height=16, width=24):
    return GenerationBatch([f"prompt {i}" for i, _ in keys], [0] * len(keys), height, width, keys=tuple(keys))


@pytest.fixture
def folder(tmp_path):
    noise_image(1).save(tmp_path / "00000_00.png")  # the run store's naming
    noise_image(2).save(tmp_path / "0_1.PNG")  # unpadded, upper-case extension
    noise_image(3, mode="RGBA").save(tmp_path / "12_0.webp", lossless=True, exact=True)
    noise_image(4).save(tmp_path / "7_2.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    (tmp_path / "cover.png").write_bytes(b"ignored: does not follow the naming")
    return tmp_path


def test_finds_images_by_prompt_index_and_sample_in_every_documented_naming(folder):
    adapter = make(folder)
    assert adapter.default_size == (16, 24)  # (height, width) of the first file in name order
    images = adapter.generate(batch([(0, 0), (0, 1), (12, 0), (7, 2)]))
    assert [(im.mode, im.size) for im in images] == [("RGB", (24, 16))] * 4
    assert images[0].tobytes() == noise_image(1).tobytes()
    assert images[1].tobytes() == noise_image(2).tobytes()
    assert images[2].tobytes() == noise_image(3, mode="RGBA").convert("RGB").tobytes()  # lossless webp, alpha dropped
    with Image.open(folder / "7_2.jpg") as jpeg:
        assert images[3].tobytes() == jpeg.convert("RGB").tobytes()


def test_seeds_are_ignored_and_reads_are_repeatable(folder):
    adapter = make(folder)
    keys = ((0, 0), (12, 0))
    first = adapter.generate(GenerationBatch(["a", "b"], [1, 2], 16, 24, keys=keys))
    second = adapter.generate(GenerationBatch(["a", "b"], [99, 98], 16, 24, keys=keys))
    assert [im.tobytes() for im in first] == [im.tobytes() for im in second]
    config = adapter.config()
    assert config == {"folder": str(folder.resolve()), "resize": False, "uses_seeds": False}
    json.dumps(config)


def test_a_run_images_folder_is_valid_input(tmp_path):
    from evalkit.runs.store import image_file

    images = tmp_path / "run"
    for index, sample in [(3, 0), (3, 1), (104, 0)]:
        path = tmp_path / "run" / image_file(index, sample)
        path.parent.mkdir(parents=True, exist_ok=True)
        noise_image(index * 10 + sample).save(path)
    adapter = make(images / "images")
    got = adapter.generate(batch([(104, 0), (3, 1)]))
    assert got[0].tobytes() == noise_image(1040).tobytes() and got[1].tobytes() == noise_image(31).tobytes()


def test_missing_image_names_the_expected_file(folder):
    with pytest.raises(EvalkitError) as error:
        make(folder).generate(batch([(0, 0), (5, 3)]))
    assert str(folder.resolve() / "00005_03.png") in str(error.value)
    assert "5_3.png/.jpg/.jpeg/.webp" in str(error.value)


def test_images_added_after_creation_are_found(folder):
    adapter = make(folder)
    noise_image(9).save(folder / "00040_00.png")
    assert adapter.generate(batch([(40, 0)]))[0].tobytes() == noise_image(9).tobytes()


def test_size_mismatch_is_an_error_unless_resizing_is_asked_for(folder):
    with pytest.raises(EvalkitError) as error:
        make(folder).generate(batch([(0, 0)], height=32, width=32))
    message = str(error.value)
    assert "is 16x24 (height x width) but the run asks for 32x32" in message
    assert "--size 16x24" in message and "--opt resize=true" in message

    adapter = make(folder, resize="true")
    assert adapter.config()["resize"] == "bicubic"
    resized = adapter.generate(batch([(0, 0)], height=32, width=40))[0]
    expected = noise_image(1).resize((40, 32), Image.Resampling.BICUBIC)
    assert resized.size == (40, 32) and resized.tobytes() == expected.tobytes()
    # Same size: no resampling at all, even with resize on.
    assert adapter.generate(batch([(0, 0)]))[0].tobytes() == noise_image(1).tobytes()


def test_checkpoint_hash_changes_when_images_change(folder):
    before = make(folder).checkpoint_hash()
    assert before == make(folder).checkpoint_hash()
    path = folder / "00000_00.png"
    noise_image(5).save(path)
    os.utime(path, ns=(1, 1))  # a different modification time even on coarse-mtime file systems
    assert make(folder).checkpoint_hash() != before


def test_bad_inputs_are_clear_errors(folder, tmp_path_factory):
    with pytest.raises(EvalkitError, match="needs --model-path"):
        create_adapter("folder", AdapterOptions())
    with pytest.raises(EvalkitError, match="no such directory"):
        make(folder / "nope")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(EvalkitError, match="holds no images named like 00012_03.png"):
        make(empty)
    with pytest.raises(EvalkitError, match=r"--opt resize='maybe' is not a valid boolean"):
        make(folder, resize="maybe")
    with pytest.raises(EvalkitError, match="does not take option"):
        make(folder, steps="3")

    noise_image(6).save(folder / "00007_02.png")  # same key as 7_2.jpg
    with pytest.raises(EvalkitError, match="both 00007_02.png and 7_2.jpg are prompt 7 sample 2"):
        make(folder)
    (folder / "00007_02.png").unlink()

    (folder / "00008_00.png").write_bytes(b"not a png")
    with pytest.raises(EvalkitError, match="00008_00.png is not a readable image"):
        make(folder).generate(batch([(8, 0)]))


def test_requests_without_keys_are_a_programming_error(folder):
    with pytest.raises(ValueError, match="needs GenerationBatch.keys"):
        make(folder).generate(GenerationBatch(["a"], [0], 16, 24))
