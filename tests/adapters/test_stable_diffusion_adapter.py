"""The stable-diffusion adapter on tiny random pipelines of the real classes (StableDiffusionPipeline as in
tests/fixtures_tiny_pipeline.py, StableDiffusionXLPipeline from tests/fixtures_tiny_cascades.py) saved to temp
dirs: `evalkit run` end to end, class mapping and refusals, the Hugging Face cache, out-of-memory. Offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.cli import main
from evalkit.errors import EvalkitError
from tests.fixtures_tiny_cascades import SNAPSHOT, fake_hf_cache, make_tiny_if, make_tiny_sdxl
from tests.fixtures_tiny_pipeline import make_tiny_pipeline

pytest.importorskip("diffusers")

FAST = {"steps": "2"}
PROMPTS = "prompt\na red cube\ntwo blue balls\nthe green cone\n"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):  # tests/adapters/conftest.py
    yield


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    return make_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory):
    return make_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl"))


def make(path, **extra):
    return create_adapter("stable-diffusion", AdapterOptions(model_path=str(path), device="cpu", extra={**FAST, **extra}))


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def edited_copy(source: Path, target: Path, component: str, **changes) -> Path:
    """A copy of a pipeline directory with some keys of one component's config (or of model_index.json) changed."""
    shutil.copytree(source, target)
    config = target / component if component == "model_index.json" else target / component / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **changes}))
    return target


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["run", "--model", "stable-diffusion", "--device", "cpu", "--quiet", "--opt", "steps=2", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evalkit_run_end_to_end(sd_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS)
    args = ["--model-path", str(sd_dir), "--prompts", str(prompts), "--limit", "2", "--images-per-prompt", "1"]
    code, out, err = run_cli(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 0, err
    manifest = json.loads((Path(out.strip()) / "manifest.json").read_text())
    adapter = manifest["adapter"]
    assert (adapter["name"], manifest["height"], manifest["width"]) == ("stable-diffusion", 64, 64)
    assert adapter["config"]["family"] == "stable-diffusion" and adapter["config"]["pipeline"] == "StableDiffusionPipeline"
    assert adapter["checkpoint_hash"] == make(sd_dir).checkpoint_hash()
    images = sorted(Path(out.strip(), "images").glob("*.png"))
    from PIL import Image

    assert len(images) == 2 and {Image.open(p).size for p in images} == {(64, 64)}
    code, again, err = run_cli(capsys, *args, "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert [p.read_bytes() for p in images] == [p.read_bytes() for p in sorted(Path(again.strip(), "images").glob("*.png"))]


def test_sdxl_pipeline_runs_with_its_options(sdxl_dir):
    adapter = make(sdxl_dir)
    config = adapter.config()
    assert (config["family"], config["pipeline"], adapter.default_size) == (
        "stable-diffusion-xl", "StableDiffusionXLPipeline", (64, 64))  # unet sample 32 x VAE downscale 2
    batch = GenerationBatch(["a red cube", "two blue balls"], [1, 2], 64, 64)
    images = adapter.generate(batch)
    assert [(im.mode, im.size) for im in images] == [("RGB", (64, 64))] * 2
    assert adapter._pipeline.watermark is None  # SDXL's invisible watermark stays off
    assert make(sdxl_dir).generate(batch)[0].tobytes() == images[0].tobytes()
    changed = make(sdxl_dir, negative_prompt="a dog", negative_prompt_2="a cat").generate(batch)[0]
    assert np.abs(pixels(changed) - pixels(images[0])).mean() > 0.5


def test_sd_options_reach_the_pipeline(sd_dir):
    batch = GenerationBatch(["a red cube"], [3], 32, 32)
    base = pixels(make(sd_dir).generate(batch)[0])
    rescaled = pixels(make(sd_dir, guidance_rescale="0.7").generate(batch)[0])
    assert np.abs(base - rescaled).mean() > 0.5
    config = make(sd_dir, guidance_rescale="0.7", dtype="bf16").config()
    assert (config["guidance_rescale"], config["dtype"]) == (0.7, "bfloat16")
    with pytest.raises(EvalkitError, match="StableDiffusionPipeline has no negative_prompt_2 argument"):
        make(sd_dir, negative_prompt_2="blurry")


def test_an_img2img_checkpoint_runs_as_text_to_image(sd_dir, tmp_path):
    copy = edited_copy(sd_dir, tmp_path / "img2img", "model_index.json", _class_name="StableDiffusionImg2ImgPipeline")
    adapter = make(copy)
    assert (adapter.config()["checkpoint_class"], adapter.config()["pipeline"]) == (
        "StableDiffusionImg2ImgPipeline", "StableDiffusionPipeline")
    batch = GenerationBatch(["a red cube"], [5], 32, 32)
    assert adapter.generate(batch)[0].tobytes() == make(sd_dir).generate(batch)[0].tobytes()


def test_other_pipelines_are_refused_with_the_adapter_to_use(sd_dir, tmp_path):
    inpainting = edited_copy(sd_dir, tmp_path / "inpaint", "unet", in_channels=9)
    with pytest.raises(EvalkitError, match="takes 9 input channels .*inpainting"):
        make(inpainting)
    other = edited_copy(sd_dir, tmp_path / "dit", "model_index.json", _class_name="DiTPipeline")
    with pytest.raises(EvalkitError, match="holds a DiTPipeline pipeline, not Stable Diffusion .*use --model diffusers"):
        make(other)
    cascade = make_tiny_if(tmp_path / "if")
    with pytest.raises(EvalkitError, match="use --model deepfloyd-if"):
        make(cascade / "stage_1")


def test_repo_found_in_the_hugging_face_cache(sd_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    fake_hf_cache(cache, "runwayml/stable-diffusion-v1-5", sd_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    adapter = create_adapter("stable-diffusion", AdapterOptions(
        device="cpu", extra={**FAST, "repo": "runwayml/stable-diffusion-v1-5"}))
    config = adapter.config()
    assert (config["repo"], config["revision"]) == ("runwayml/stable-diffusion-v1-5", SNAPSHOT)
    assert adapter.checkpoint_hash() == make(sd_dir).checkpoint_hash()
    batch = GenerationBatch(["a red cube"], [2], 32, 32)
    assert adapter.generate(batch)[0].tobytes() == make(sd_dir).generate(batch)[0].tobytes()


def test_missing_repo_and_bad_locations_are_one_line_errors(sd_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    prompts = tmp_path / "p.txt"
    prompts.write_text(PROMPTS)
    code, out, err = run_cli(capsys, "--opt", "repo=stabilityai/sdxl-turbo", "--prompts", str(prompts),
                             "--out", str(tmp_path / "runs"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"stabilityai/sdxl-turbo is not in the Hugging Face cache {tmp_path / 'empty'}" in err
    with pytest.raises(EvalkitError, match="needs --model-path DIR .* or --opt repo=ORG/NAME"):
        create_adapter("stable-diffusion", AdapterOptions())
    with pytest.raises(EvalkitError, match="not both"):
        make(sd_dir, repo="runwayml/stable-diffusion-v1-5")
    with pytest.raises(EvalkitError, match="is not a Hub repository id"):
        create_adapter("stable-diffusion", AdapterOptions(extra={"repo": "../somewhere"}))
    with pytest.raises(EvalkitError, match="no model_index.json"):
        make(tmp_path)


def test_out_of_memory_is_one_line_naming_a_smaller_batch(sd_dir, tmp_path, monkeypatch, capsys):
    import torch

    import evalkit.adapters.diffusers as diffusers_adapter

    def no_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    def load_then_run_out_of_memory(*args, _load=diffusers_adapter.load_pipeline, **kwargs):
        pipeline = _load(*args, **kwargs)
        monkeypatch.setattr(type(pipeline), "__call__", no_memory)  # the loaded pipeline's call raises
        return pipeline

    monkeypatch.setattr(diffusers_adapter, "load_pipeline", load_then_run_out_of_memory)
    prompts = tmp_path / "p.txt"
    prompts.write_text(PROMPTS)
    code, out, err = run_cli(capsys, "--model-path", str(sd_dir), "--prompts", str(prompts), "--batch-size", "3",
                             "--out", str(tmp_path / "runs"))
    assert code == 2 and err.count("\n") == 1
    assert err == ("evalkit: error: out of memory on cpu making 3 image(s) of 64x64 with StableDiffusionPipeline; "
                   "try --batch-size 1 (rerunning resumes: finished images are kept)\n")


def test_cuda_device_goes_through_evalkit_devices(sd_dir, monkeypatch):
    import torch

    import evalkit.adapters.deepfloyd_if as deepfloyd_if
    import evalkit.adapters.diffusers as diffusers_adapter
    from evalkit.devices import resolve_device

    assert diffusers_adapter.resolve_device is resolve_device and deepfloyd_if.resolve_device is resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EvalkitError, match="--device cuda:1: no CUDA device is available here"):
        create_adapter("stable-diffusion", AdapterOptions(model_path=str(sd_dir), device="cuda:1"))


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_half_precision_on_cuda_matches_float32_on_cpu(sd_dir):
    batch = GenerationBatch(["a red cube", "two blue balls"], [1, 2], 64, 64)
    cpu = make(sd_dir).generate(batch)
    cuda = create_adapter("stable-diffusion", AdapterOptions(
        model_path=str(sd_dir), device="cuda", extra={**FAST, "dtype": "fp16"})).generate(batch)
    for a, b in zip(cpu, cuda):  # the same CPU noise; only rounding differs
        assert np.abs(pixels(a) - pixels(b)).mean() < 3
