"""The deepfloyd-if adapter on a tiny random IF cascade of the real classes (IFPipeline + IFSuperResolutionPipeline,
T5EncoderModel + T5Tokenizer) saved to a temp dir: `evalkit run` end to end, the cascade's contract, the Hugging
Face cache lookup and its one-line errors. Offline; ~0.2 s per image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.cli import main
from evalkit.errors import EvalkitError
from tests.fixtures_tiny_cascades import SNAPSHOT, fake_hf_cache, make_tiny_if

pytest.importorskip("diffusers")

FAST = {"steps": "2", "sr_steps": "2"}
PROMPTS = "prompt,category\na red cube,colors\ntwo blue balls,counting\nthe green cone,colors\n"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):  # tests/adapters/conftest.py
    yield


@pytest.fixture(scope="module")
def if_dir(tmp_path_factory):
    return make_tiny_if(tmp_path_factory.mktemp("tiny-if"))


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text(PROMPTS)
    return path


def make(path, **extra):
    return create_adapter("deepfloyd-if", AdapterOptions(model_path=str(path), device="cpu", extra={**FAST, **extra}))


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["run", "--model", "deepfloyd-if", "--device", "cpu", "--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evalkit_run_end_to_end(if_dir, prompts, tmp_path, capsys):
    args = ["--model-path", str(if_dir), "--prompts", str(prompts), "--limit", "2", "--images-per-prompt", "2",
            "--opt", "steps=2", "--opt", "sr_steps=2", "--opt", "sr_noise_level=100", "--batch-size", "3"]
    code, out, err = run_cli(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 0, err
    run = Path(out.strip())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and (manifest["height"], manifest["width"]) == (32, 32)  # native size
    adapter = manifest["adapter"]
    assert adapter["name"] == "deepfloyd-if"
    assert adapter["checkpoint_hash"] == make(if_dir).checkpoint_hash() and len(adapter["checkpoint_hash"]) == 64
    first, second = adapter["config"]["stage_1"], adapter["config"]["stage_2"]
    assert (first["pipeline"], first["steps"], first["guidance"], first["model_path"]) == (
        "IFPipeline", 2, 7.0, str((if_dir / "stage_1").resolve()))
    assert (second["pipeline"], second["steps"], second["guidance"], second["noise_level"]) == (
        "IFSuperResolutionPipeline", 2, 4.0, 100)
    assert adapter["config"]["safety_checker"] == adapter["config"]["watermarker"] == "disabled"
    images = sorted((run / "images").glob("*.png"))
    assert len(images) == 4
    from PIL import Image

    assert {Image.open(p).size for p in images} == {(32, 32)} and {Image.open(p).mode for p in images} == {"RGB"}

    code, again, err = run_cli(capsys, *args, "--out", str(tmp_path / "b"))  # same seed, another directory
    assert code == 0, err
    assert [p.read_bytes() for p in images] == [p.read_bytes() for p in sorted(Path(again.strip(), "images").glob("*.png"))]


def test_an_image_depends_on_its_own_seed_not_on_the_rest_of_the_batch(if_dir):
    adapter = make(if_dir)
    alone = adapter.generate(GenerationBatch(["a red cube"], [11], 32, 32))[0]
    batched = adapter.generate(GenerationBatch(["two blue balls", "a red cube", "a cat"], [5, 11, 6], 32, 32))
    other_seed = adapter.generate(GenerationBatch(["a red cube"], [12], 32, 32))[0]
    same = np.abs(pixels(alone) - pixels(batched[1]))
    assert same.max() <= 2 and same.mean() < 0.05  # batched matmuls may round differently, nothing more
    assert np.abs(pixels(alone) - pixels(other_seed)).mean() > 5


def test_t5_runs_once_per_batch_and_both_stages_use_its_embeddings(if_dir):
    adapter = make(if_dir)
    adapter.generate(GenerationBatch(["warm-up"], [0], 32, 32))
    encoder, stage_1, stage_2 = adapter._pipelines
    assert stage_1.unet is encoder.unet and stage_1.text_encoder is None  # stage I denoises from given embeddings
    assert stage_2.text_encoder is None and stage_2.tokenizer is None  # stage II's own encoder is never loaded
    t5_calls, unet_inputs = [], {}

    def record(stage):
        def hook(module, args, kwargs):
            unet_inputs.setdefault(stage, (kwargs["encoder_hidden_states"].clone(), kwargs.get("class_labels")))
        return hook

    encoder.text_encoder.register_forward_hook(lambda module, args, output: t5_calls.append(1))
    stage_1.unet.register_forward_pre_hook(record("stage_1"), with_kwargs=True)
    stage_2.unet.register_forward_pre_hook(record("stage_2"), with_kwargs=True)
    adapter.generate(GenerationBatch(["a red cube", "two blue balls"], [1, 2], 32, 32))
    assert len(t5_calls) == 2  # the prompts and the empty negative prompt, once each, for both stages
    (first, no_label), (second, noise_level) = unet_inputs["stage_1"], unet_inputs["stage_2"]
    assert first.shape == (4, 77, 24) and (first == second).all()  # [negative; prompts] x 77 tokens x T5 width
    assert no_label is None and noise_level.tolist() == [250] * 4  # the augmentation level reaches stage II's UNet


def test_options_reach_their_stage(if_dir):
    batch = GenerationBatch(["a red cube"], [3], 32, 32)
    base = pixels(make(if_dir).generate(batch)[0])
    for extra in [{"steps": "3"}, {"sr_steps": "3"}, {"guidance": "2.0"}, {"sr_guidance": "1.0"},
                  {"sr_noise_level": "900"}, {"negative_prompt": "a dog"}]:
        assert np.abs(base - pixels(make(if_dir, **extra).generate(batch)[0])).mean() > 0.5, extra


def test_sizes_follow_the_run_or_are_resized_only_when_asked(if_dir):
    adapter = make(if_dir)
    wide = adapter.generate(GenerationBatch(["a red cube"], [1], 16, 24))[0]
    assert wide.size == (24, 16)  # stage I made 4x6, stage II 16x24
    with pytest.raises(EvalkitError, match=r"multiples of 4 .*--opt resize=true"):
        adapter.generate(GenerationBatch(["a red cube"], [1], 30, 30))
    native = adapter.generate(GenerationBatch(["a red cube"], [1], 32, 32))[0]
    resized = make(if_dir, resize="true").generate(GenerationBatch(["a red cube"], [1], 30, 20))[0]
    from PIL import Image

    assert resized.size == (20, 30)
    assert resized.tobytes() == native.resize((20, 30), Image.Resampling.LANCZOS).tobytes()
    assert make(if_dir, resize="true").config()["resize"] == "lanczos"


def test_half_precision_unets_with_a_float32_text_encoder(if_dir):
    import torch

    adapter = make(if_dir, dtype="bf16")
    image = adapter.generate(GenerationBatch(["a red cube"], [1], 32, 32))[0]
    encoder, stage_1, stage_2 = adapter._pipelines
    assert (stage_1.unet.dtype, stage_2.unet.dtype, encoder.text_encoder.dtype) == (
        torch.bfloat16, torch.bfloat16, torch.float32)
    assert image.size == (32, 32) and pixels(image).std() > 0
    config = adapter.config()
    assert (config["dtype"], config["text_encoder"]["dtype"]) == ("bfloat16", "float32")


def test_out_of_memory_names_a_smaller_batch(if_dir, monkeypatch):
    import diffusers
    import torch

    def no_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    adapter = make(if_dir)
    monkeypatch.setattr(diffusers.IFSuperResolutionPipeline, "__call__", no_memory)
    with pytest.raises(EvalkitError) as caught:
        adapter.generate(GenerationBatch(["a", "b", "c", "d"], [1, 2, 3, 4], 32, 32))
    assert str(caught.value) == (
        "out of memory on cpu making 4 image(s) of 32x32 with DeepFloyd IF; try --batch-size 2 "
        "(rerunning resumes: finished images are kept)")


def test_stages_found_in_the_hugging_face_cache(if_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    fake_hf_cache(cache, "DeepFloyd/IF-I-XL-v1.0", if_dir / "stage_1")
    fake_hf_cache(cache, "DeepFloyd/IF-II-L-v1.0", if_dir / "stage_2")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    adapter = create_adapter("deepfloyd-if", AdapterOptions(device="cpu", extra=FAST))
    config = adapter.config()
    assert (config["stage_1"]["repo"], config["stage_1"]["revision"]) == ("DeepFloyd/IF-I-XL-v1.0", SNAPSHOT)
    assert config["stage_2"]["model_path"].startswith(str(cache.resolve()))
    assert adapter.checkpoint_hash() == make(if_dir).checkpoint_hash()  # the same files, found another way
    batch = GenerationBatch(["a red cube"], [4], 32, 32)
    assert adapter.generate(batch)[0].tobytes() == make(if_dir).generate(batch)[0].tobytes()
    # --opt stage_N takes a directory or a repository id, and wins over the default
    mixed = create_adapter("deepfloyd-if", AdapterOptions(device="cpu", extra={
        **FAST, "stage_1": str(if_dir / "stage_1"), "stage_2": "DeepFloyd/IF-II-L-v1.0"}))
    assert (mixed.config()["stage_1"]["repo"], mixed.config()["stage_2"]["repo"]) == (None, "DeepFloyd/IF-II-L-v1.0")


def test_missing_model_is_exit_2_and_one_line(prompts, tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "empty-hub")}
    done = subprocess.run(
        [sys.executable, "-m", "evalkit", "run", "--model", "deepfloyd-if", "--prompts", str(prompts), "--limit", "2",
         "--device", "cpu", "--out", str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "DeepFloyd/IF-I-XL-v1.0 is not in the Hugging Face cache " + str(tmp_path / "empty-hub") in done.stderr
    assert "models--DeepFloyd--IF-I-XL-v1.0/snapshots/" in done.stderr


def test_bad_locations_are_clear_errors(if_dir, tmp_path):
    with pytest.raises(EvalkitError, match=r"no stage_2/ folder .*IFSuperResolutionPipeline"):
        shutil.copytree(if_dir / "stage_1", tmp_path / "half" / "stage_1")
        make(tmp_path / "half")
    swapped = tmp_path / "swapped"
    shutil.copytree(if_dir / "stage_1", swapped / "stage_2")
    shutil.copytree(if_dir / "stage_2", swapped / "stage_1")
    with pytest.raises(EvalkitError, match="stage_1: .* holds a IFSuperResolutionPipeline pipeline; it must be an IFPipeline"):
        make(swapped)
    with pytest.raises(EvalkitError, match="--opt stage_2: not/here is neither a local directory nor in the Hugging Face cache"):
        make(if_dir, stage_2="not/here")
    with pytest.raises(EvalkitError, match="no such directory"):
        make(tmp_path / "missing")


def test_stages_from_different_releases_are_refused(if_dir, tmp_path):
    other = shutil.copytree(if_dir, tmp_path / "other")
    config_file = other / "stage_2" / "unet" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "encoder_hid_dim": 4096}))
    with pytest.raises(EvalkitError, match="expects 4096-wide text embeddings but stage_1's T5 encoder makes 24-wide"):
        make(other)


@pytest.mark.parametrize("extra, message", [
    ({"sr_noise_level": "1000"}, r"sr_noise_level=1000 must be in \[0, 1000\)"),
    ({"steps": "0"}, "--opt steps must be a positive integer"),
    ({"sr_guidance": "lots"}, "--opt sr_guidance='lots' is not a valid float"),
    ({"dtype": "float8"}, "float32, float16, bfloat16"),
    ({"resize": "maybe"}, "not a valid boolean"),
    ({"guidance_scale": "3"}, r"does not take option\(s\) guidance_scale"),
])
def test_bad_options_are_clear_errors(if_dir, extra, message):
    with pytest.raises(EvalkitError, match=message):
        make(if_dir, **extra)
