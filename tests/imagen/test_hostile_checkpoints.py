"""Hostile Imagen checkpoints through the real CLI (``evalkit run --model imagen --model-path CKPT``) and a hostile
training state (``evalkit train imagen`` resuming): each is refused with exit 2 and one line naming the file,
before anything is built from it; a pickle that would run code never does. The untouched tiny checkpoint runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from evalkit.imagen.cascade import ImagenCascade, Stage
from evalkit.imagen.diffusion import Schedule
from evalkit.imagen.efficient_unet import build_model
from evalkit.imagen.sampling import SamplerConfig
from evalkit.imagen.unet import UNetConfig
from tests.hostile_cli import assert_refused, cli
from tests.hostile_payloads import Payload, assert_payload_is_live, torch_zip
from tests.imagen.helpers import randomize

MINILM_DIM = 384


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A one-stage 8-px cascade on the real (offline) MiniLM encoder, two DDIM steps: runs in seconds."""
    config = UNetConfig(image_size=8, dim=8, channel_mults=(1, 2), num_res_blocks=1, attn_levels=(1,),
                        text_dim=MINILM_DIM, cond_dim=16, heads=2).to_dict()
    stage = Stage("base", randomize(build_model(config)), config, Schedule("cosine"),
                  SamplerConfig("ddim", 2, 1.0, "none"), {"kind": "minilm", "max_tokens": 8, "dim": MINILM_DIM})
    folder = tmp_path_factory.mktemp("tiny-imagen")
    ImagenCascade([stage]).save_pretrained(folder)
    return folder


def run_argv(folder: Path, tmp_path: Path) -> list:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n")
    return ["run", "--model", "imagen", "--model-path", folder, "--prompts", prompts, "--images-per-prompt", "1",
            "--out", tmp_path / "runs", "--device", "cpu", "--quiet"]


def _edit(section: str | None, key: str, value):
    def apply(meta: dict) -> dict:
        target = meta if section is None else meta[section]
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value
        return meta

    return apply


_DELETE = object()

JSON_EDITS = {  # name -> (edit of base.json's dict, or its raw text, and a fragment of the error)
    "not-json": ("{not json", "is not valid JSON"),
    "a-list": ("[1, 2]", "has no format"),
    "other-format": (_edit(None, "format", "something-else"), "has no format"),
    "other-version": (_edit(None, "version", 2), "version 2 is not supported"),
    "unknown-key": (_edit(None, "extra", 1), "unknown key 'extra'"),
    "other-stage-name": (_edit(None, "stage", "sr1"), "'stage' is 'sr1'"),
    "no-model": (_edit(None, "model", _DELETE), "no model config"),
    "model-type": (_edit("model", "type", "transformer"), "model 'type' is 'transformer'"),
    "model-unknown-key": (_edit("model", "dims", 8), "model: unknown key 'dims'"),
    "dim-a-string": (_edit("model", "dim", "8"), "model: dim = '8' is not an integer"),
    "dim-a-bool": (_edit("model", "dim", True), "model: dim = 'True' is not an integer"),
    "dim-a-float": (_edit("model", "dim", 8.5), "is not an integer in 1..8192"),
    "dim-negative": (_edit("model", "dim", -8), "is not an integer in 1..8192"),
    "dim-huge": (_edit("model", "dim", 10**9), "is not an integer in 1..8192"),
    "heads-zero": (_edit("model", "heads", 0), "model: heads = '0' is not an integer in 1..256"),
    "heads-not-dividing": (_edit("model", "heads", 3), "corrupt Imagen checkpoint"),
    "dim-zero": (_edit("model", "dim", 0), "is not an integer in 1..8192"),
    "res-blocks-too-many": (_edit("model", "num_res_blocks", 33), "is not an integer in 0..32"),
    "channel-mults-huge": (_edit("model", "channel_mults", [1, 1000000]), "not integers in 1..64"),
    "channel-mults-a-string": (_edit("model", "channel_mults", "12"), "is not a list"),
    "too-many-levels": (_edit("model", "channel_mults", [1] * 40), "at most 8 entries"),
    "res-blocks-huge": (_edit("model", "num_res_blocks", 10**6), "is not an integer in 0..32"),
    "dim-disagrees-with-weights": (_edit("model", "dim", 16), "does not match its config base.json"),
    "text-dim-disagrees": (_edit("model", "text_dim", 768), "does not match its config base.json"),
    "sampling-steps-huge": (_edit("sampling", "steps", 10**9), "sampling: steps"),
    "sampling-steps-zero": (_edit("sampling", "steps", 0), "sampling: steps = '0' is not an integer in 1..8192"),
    "sampling-unknown-key": (_edit("sampling", "eta", 0.5), "sampling: unknown key 'eta'"),
    "sampling-sampler": (_edit("sampling", "sampler", "magic"), "unknown sampler 'magic'"),
    "sampling-guidance-a-string": (_edit("sampling", "guidance", "high"), "is not a finite number"),
    "sampling-a-list": (_edit(None, "sampling", [1]), "'sampling' is a list"),
    "schedule-a-number": (_edit(None, "schedule", 5), "'schedule' is not a string"),
    "schedule-unknown": (_edit(None, "schedule", "quadratic"), "unknown noise schedule"),
    "band-backwards": (_edit(None, "band", [0.9, 0.5]), "is not a range of times"),
    "band-a-string": (_edit(None, "band", "x"), "corrupt Imagen checkpoint"),
    "training-a-list": (_edit(None, "training", []), "'training' is a list"),
    "text-encoder-a-string": (_edit(None, "text_encoder", "minilm"), "'text_encoder' is a str"),
    "text-encoder-unknown-key": (_edit("text_encoder", "vocab", 5), "text_encoder: unknown key 'vocab'"),
    "text-encoder-max-tokens-huge": (_edit("text_encoder", "max_tokens", 10**9), "max_tokens"),
    "text-encoder-layers": (_edit("text_encoder", "layers", "last"), "layers"),
    "text-encoder-kind": (_edit("text_encoder", "kind", "gpt"), "text encoder 'gpt' is not one of"),
}


def _copy(checkpoint: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    return folder


@pytest.mark.parametrize("name", sorted(JSON_EDITS))
def test_an_edited_stage_json_is_refused(tmp_path, capsys, checkpoint, name):
    edit, fragment = JSON_EDITS[name]
    folder = _copy(checkpoint, tmp_path)
    meta_path = folder / "base.json"
    text = edit if isinstance(edit, str) else json.dumps(edit(json.loads(meta_path.read_text())))
    meta_path.write_text(text)
    named = "base.safetensors" if "disagree" in name else "base.json"
    assert_refused(capsys, run_argv(folder, tmp_path), folder / named if named != "base.json" else meta_path,
                   fragment)


def _tensors(checkpoint: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "base.safetensors"))


def _saved(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in tensors.items()})


def _resized(tensors: dict) -> dict:
    key = sorted(tensors)[0]
    return {**tensors, key: torch.zeros(*(s + 1 for s in tensors[key].shape), dtype=tensors[key].dtype)}


def _with_nan(tensors: dict) -> dict:
    key = sorted(tensors)[0]
    broken = tensors[key].clone()
    broken.view(-1)[0] = float("nan")
    return {**tensors, key: broken}


WEIGHT_EDITS = {  # name -> (bytes from the tensors and the file's bytes, fragment)
    "empty": (lambda t, raw: b"", "is empty"),
    "truncated": (lambda t, raw: raw[: len(raw) // 2], "cannot read"),
    "text": (lambda t, raw: b"not weights at all\n", "cannot read"),
    "a-torch-pickle": (lambda t, raw: torch_zip(t), "cannot read"),
    "wrong-shape": (lambda t, raw: _saved(_resized(t)), "in the weights"),
    "extra-tensor": (lambda t, raw: _saved({**t, "extra.weight": torch.zeros(2)}), "the weights have extra.weight"),
    "missing-tensor": (lambda t, raw: _saved(dict(sorted(t.items())[1:])), "the config's network has"),
    "nan": (lambda t, raw: _saved(_with_nan(t)), "NaN or infinite values"),
}


@pytest.mark.parametrize("name", sorted(WEIGHT_EDITS))
def test_a_broken_stage_weights_file_is_refused(tmp_path, capsys, checkpoint, name):
    make, fragment = WEIGHT_EDITS[name]
    folder = _copy(checkpoint, tmp_path)
    weights = folder / "base.safetensors"
    weights.write_bytes(make(_tensors(checkpoint), weights.read_bytes()))
    assert_refused(capsys, run_argv(folder, tmp_path), weights, fragment)


def test_missing_weights_are_refused(tmp_path, capsys, checkpoint):
    folder = _copy(checkpoint, tmp_path)
    (folder / "base.safetensors").unlink()
    assert_refused(capsys, run_argv(folder, tmp_path), folder / "base.safetensors", "is missing")


def test_a_pickle_in_place_of_the_weights_is_not_unpickled(tmp_path, capsys, checkpoint):
    assert_payload_is_live(torch_zip, "w", tmp_path)
    folder = _copy(checkpoint, tmp_path)
    marker = tmp_path / "unpickled"
    (folder / "base.safetensors").write_bytes(torch_zip({"w": Payload(marker)}))
    assert_refused(capsys, run_argv(folder, tmp_path), folder / "base.safetensors", "cannot read")
    assert not marker.exists()


def test_the_untouched_checkpoint_runs(tmp_path, capsys, checkpoint):
    code, lines, out = cli(capsys, run_argv(checkpoint, tmp_path))
    assert code == 0, lines
    assert len(list(Path(out.strip().splitlines()[-1]).glob("images/*.png"))) == 1


def _train_argv(out: Path) -> list:
    return ["train", "imagen", "--stage", "base", "--data", "toyworld", "--out", out, "--steps", "1",
            "--batch-size", "2", "--device", "cpu", "--model-opt", "dim=8", "--model-opt", "image_size=8",
            "--model-opt", "channel_mults=[1]", "--model-opt", "attn_levels=[]"]


@pytest.mark.parametrize("kind", ["payload", "truncated"])
def test_a_hostile_training_state_is_not_resumed(tmp_path, capsys, kind):
    out = tmp_path / "train-out"
    state = out / "train" / "base" / "state.pt"
    state.parent.mkdir(parents=True)
    marker = tmp_path / "unpickled"
    if kind == "payload":
        assert_payload_is_live(torch_zip, "model", tmp_path)
        state.write_bytes(torch_zip({"model": Payload(marker), "step": 3}))
        fragment = "was not unpickled"
    else:
        state.write_bytes(torch_zip({"model": {}, "step": 3})[:200])
        fragment = "cannot resume from"
    assert_refused(capsys, _train_argv(out), state, fragment)
    assert not marker.exists()
