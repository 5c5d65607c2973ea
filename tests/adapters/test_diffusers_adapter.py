"""The diffusers adapter against a tiny random StableDiffusionPipeline saved to a temp dir (offline, ~0.2 s/image)."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.adapters import diffusers as diffusers_adapter
from evalkit.errors import EvalkitError
from tests.fixtures_tiny_pipeline import make_tiny_pipeline

pytest.importorskip("diffusers")

FAST = {"steps": "2"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):  # tests/adapters/conftest.py
    yield


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    return make_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


def make(path, **extra):
    return create_adapter("diffusers", AdapterOptions(model_path=str(path), device="cpu", extra={**FAST, **extra}))


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_generates_rgb_images_of_the_requested_size(pipeline_dir):
    adapter = make(pipeline_dir)
    assert adapter.default_size == (64, 64)  # unet sample_size 32 x VAE downscale 2
    images = adapter.generate(GenerationBatch(["a red cube", "two blue balls"], [1, 2], 64, 64))
    assert [(im.mode, im.size) for im in images] == [("RGB", (64, 64))] * 2
    assert np.abs(pixels(images[0]) - pixels(images[1])).mean() > 5  # different prompt and seed: different noise
    wide = adapter.generate(GenerationBatch(["a red cube"], [1], 32, 48))
    assert wide[0].size == (48, 32)


def test_config_names_everything_that_changes_images(pipeline_dir):
    config = make(pipeline_dir, guidance_scale="3.5", negative_prompt="blurry").config()
    assert config == {
        "pipeline": "StableDiffusionPipeline",
        "model_path": str(pipeline_dir.resolve()),
        "scheduler": "DDIMScheduler",
        "steps": 2,
        "guidance_scale": 3.5,
        "negative_prompt": "blurry",
        "dtype": "float32",
        "variant": None,
        "safety_checker": "disabled",
    }
    json.dumps(config)
    # Unset options report the pipeline's own defaults (StableDiffusionPipeline: 50 steps, guidance 7.5).
    defaults = create_adapter("diffusers", AdapterOptions(model_path=str(pipeline_dir))).config()
    assert (defaults["steps"], defaults["guidance_scale"]) == (50, 7.5)


def test_same_seed_gives_the_same_bytes_across_adapter_instances(pipeline_dir):
    batch = GenerationBatch(["a red cube", "a green cone"], [7, 8], 32, 32)
    first = make(pipeline_dir).generate(batch)
    second = make(pipeline_dir).generate(batch)
    assert [im.tobytes() for im in first] == [im.tobytes() for im in second]


def test_an_image_depends_on_its_own_seed_not_on_the_rest_of_the_batch(pipeline_dir):
    adapter = make(pipeline_dir)
    alone = adapter.generate(GenerationBatch(["a red cube"], [11], 64, 64))[0]
    batched = adapter.generate(GenerationBatch(["a green cone", "a red cube", "a cat"], [5, 11, 6], 64, 64))
    other_seed = adapter.generate(GenerationBatch(["a red cube"], [12], 64, 64))[0]
    same = np.abs(pixels(alone) - pixels(batched[1]))
    # Batched matmuls may round differently from single ones; the seed-driven content must not change.
    assert same.max() <= 2 and same.mean() < 0.05
    assert np.abs(pixels(alone) - pixels(other_seed)).mean() > 5


def test_options_reach_the_pipeline(pipeline_dir):
    batch = GenerationBatch(["a red cube"], [3], 32, 32)
    base = pixels(make(pipeline_dir).generate(batch)[0])
    # euler_ancestral: its per-step noise makes the change visible even after 2 steps of a random model.
    changes = [{"negative_prompt": "a dog"}, {"steps": "3"}, {"guidance_scale": "1.5"}]
    changes.append({"scheduler": "euler_ancestral"})
    for extra in changes:
        changed = pixels(make(pipeline_dir, **extra).generate(batch)[0])
        assert np.abs(base - changed).mean() > 0.5, extra


def test_scheduler_names_resolve_to_compatible_classes(pipeline_dir):
    for name, expected in [
        ("euler_ancestral", "EulerAncestralDiscreteScheduler"),
        ("DPMSolverMultistepScheduler", "DPMSolverMultistepScheduler"),
        ("ddim", "DDIMScheduler"),
        ("LMS", "LMSDiscreteScheduler"),
    ]:
        assert make(pipeline_dir, scheduler=name).config()["scheduler"] == expected
    adapter = make(pipeline_dir, scheduler="euler_ancestral")
    adapter.generate(GenerationBatch(["a cat"], [1], 32, 32))
    assert type(adapter._pipeline.scheduler).__name__ == "EulerAncestralDiscreteScheduler"


def test_checkpoint_hash_covers_weights_and_is_cached(pipeline_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    copy = shutil.copytree(pipeline_dir, tmp_path / "copy")
    digest = make(copy).checkpoint_hash()
    assert len(digest) == 64 and make(pipeline_dir).checkpoint_hash() == digest  # content, not location
    assert (tmp_path / "cache" / "file_hashes.json").is_file()

    def no_reads(path):
        raise AssertionError(f"{path} was re-read although its size and mtime did not change")

    with monkeypatch.context() as patched:
        patched.setattr(diffusers_adapter, "sha256_file", no_reads)
        assert make(copy).checkpoint_hash() == digest

    weights = next((copy / "unet").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert make(copy).checkpoint_hash() != digest


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"scheduler": "warp_drive"}, "known schedulers: DDIMScheduler, DDPMScheduler"),
        ({"steps": "many"}, "--opt steps='many' is not a valid int"),
        ({"steps": "0"}, "positive integer"),
        ({"dtype": "float8"}, "float32, float16, bfloat16"),
        ({"strength": "0.5"}, "does not take option(s) strength"),
    ],
)
def test_bad_options_are_clear_errors(pipeline_dir, extra, message):
    with pytest.raises(EvalkitError) as error:
        make(pipeline_dir, **extra)
    assert message in str(error.value)


def test_bad_model_paths_are_clear_errors(tmp_path):
    with pytest.raises(EvalkitError, match="needs --model-path"):
        create_adapter("diffusers", AdapterOptions())
    with pytest.raises(EvalkitError, match="no such directory"):
        make(tmp_path / "missing")
    with pytest.raises(EvalkitError, match="no model_index.json"):
        make(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "NoSuchPipeline"}))
    with pytest.raises(EvalkitError, match="NoSuchPipeline"):
        make(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionImg2ImgPipeline"}))
    with pytest.raises(EvalkitError, match="not a text-to-image pipeline"):
        make(tmp_path)


def test_unloadable_weights_and_bad_sizes_are_clear_errors(pipeline_dir, tmp_path):
    broken = shutil.copytree(pipeline_dir, tmp_path / "broken")
    shutil.rmtree(broken / "unet")
    with pytest.raises(EvalkitError, match="cannot load the diffusers pipeline"):
        make(broken).generate(GenerationBatch(["a cat"], [1], 64, 64))
    with pytest.raises(EvalkitError, match="divisible by 8"):
        make(pipeline_dir).generate(GenerationBatch(["a cat"], [1], 60, 60))


def test_missing_diffusers_package_says_how_to_install(pipeline_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` raise ImportError
    with pytest.raises(EvalkitError, match=r"pip install 'evalkit\[diffusers\]'"):
        make(pipeline_dir)
