"""Hostile weight files through the real CLI (``evalkit distance A A --metrics M --weights NAME=FILE``): each is
refused with exit 2 and one line naming the file, and a file that would run code when unpickled never does.

The extractors read weights through evalkit/metrics/weight_files.py (safetensors, ``torch.load(weights_only=True)``,
TorchScript for CLIP); before it, torch-fidelity's Inception loader unpickled ``--weights inception=FILE`` in full.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.hostile_cli import assert_refused
from tests.hostile_payloads import FORMATS, Payload, assert_payload_is_live, torch_zip

EXTRACTORS = {  # extractor -> (metric, --weights name, a key its state dict has)
    "inception": ("fid", "inception", "Conv2d_1a_3x3.conv.weight"),
    "clip": ("fid-clip", "clip-cleanfid", "visual.conv1.weight"),
    "dinov2": ("fd-dinov2", "dinov2-vitl14", "cls_token"),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"i{i}.png")
    return folder


def argv(extractor: str, path: Path, images: Path) -> list:
    metric, name, _ = EXTRACTORS[extractor]
    return ["distance", images, images, "--metrics", metric, "--weights", f"{name}={path}", "--no-cache",
            "--workers", "0", "--device", "cpu"]


@pytest.mark.parametrize("extractor", sorted(EXTRACTORS))
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_weights_file_that_would_run_code_is_refused_without_running_it(tmp_path, capsys, images, extractor, fmt):
    key = EXTRACTORS[extractor][2]
    assert_payload_is_live(FORMATS[fmt], key, tmp_path)
    marker = tmp_path / "unpickled"
    path = tmp_path / f"{fmt}.pt"
    path.write_bytes(FORMATS[fmt]({key: Payload(marker), "other": torch.zeros(2)}))
    line = assert_refused(capsys, argv(extractor, path, images), path)
    assert not marker.exists(), line
    if fmt != "torchscript-lookalike":  # that one torch treats as TorchScript: refused as that, or by its reader
        assert "pickles builtins.open" in line or "pickles io.open" in line, line


def _inception_state(inception_weights: Path) -> dict:
    return torch.load(inception_weights, map_location="cpu", weights_only=True)


def _wrong_shape(state: dict) -> dict:
    return {**state, "Conv2d_1a_3x3.conv.weight": torch.zeros(8, 3, 3, 3)}


def _scripted() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buffer)
    return buffer.getvalue()


def _safetensors(state: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


INCEPTION_REFUSED = {  # name -> (bytes from the valid state dict, fragment)
    "text.pth": (lambda state, raw: b"not weights\n", "not a safetensors or torch file"),
    "empty.pth": (lambda state, raw: b"", "the file is empty"),
    "truncated.pth": (lambda state, raw: raw[: len(raw) // 2], "is not an Inception FID state dict"),
    "truncated.safetensors": (lambda state, raw: _safetensors(state)[:5000], "is not an Inception FID state dict"),
    "wrong-shape.pth": (lambda state, raw: torch_zip(_wrong_shape(state)), "size mismatch for Conv2d_1a_3x3"),
    "wrong-keys.pth": (lambda state, raw: torch_zip({"fc.weight": torch.zeros(3)}), "Missing key"),
    "number-not-tensor.pth": (lambda state, raw: torch_zip({**state, "extra": 3}), "entry 'extra' is a int"),
    "a-list.pth": (lambda state, raw: torch_zip([torch.zeros(2)]), "it holds a list"),
    "torchscript.pt": (lambda state, raw: _scripted(), "is a TorchScript archive"),
    "numpy.npz": (lambda state, raw: _npz(), "is not an Inception FID state dict"),
}


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, w=np.zeros(3))
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(INCEPTION_REFUSED))
def test_a_broken_inception_weights_file_is_refused(tmp_path, capsys, images, inception_weights, name):
    make, fragment = INCEPTION_REFUSED[name]
    path = tmp_path / name
    path.write_bytes(make(_inception_state(inception_weights), inception_weights.read_bytes()))
    assert_refused(capsys, argv("inception", path, images), path, fragment)


def test_inception_weights_as_safetensors_load_the_same_network(tmp_path, inception_weights):
    from evalkit.metrics.inception import load_network

    path = tmp_path / "inception.safetensors"
    path.write_bytes(_safetensors(_inception_state(inception_weights)))
    from_pth, from_safetensors = load_network(inception_weights).state_dict(), load_network(path).state_dict()
    assert from_pth.keys() == from_safetensors.keys()
    assert all(torch.equal(from_pth[k], from_safetensors[k]) for k in from_pth)


OTHER_REFUSED = {  # (extractor, name) -> (bytes, fragment)
    ("clip", "text.pt"): (lambda: b"not weights\n", "not a safetensors or torch file"),
    ("clip", "empty.pt"): (lambda: b"", "the file is empty"),
    ("clip", "number-not-tensor.pt"): (lambda: torch_zip({"visual.conv1.weight": 5}), "is a int, not a tensor"),
    ("clip", "wrong-shape.pt"): (lambda: torch_zip({"visual.conv1.weight": torch.zeros(2, 3, 4, 4)}),
                                 "is not a checkpoint of open_clip ViT-B-32"),
    ("dinov2", "text.pth"): (lambda: b"not weights\n", "not a safetensors or torch file"),
    ("dinov2", "missing-keys.pth"): (lambda: torch_zip({"cls_token": torch.zeros(1, 1, 8)}), "no 'pos_embed'"),
    ("dinov2", "number-not-tensor.pth"): (lambda: torch_zip({"model": {"cls_token": 3}}), "is a int, not a tensor"),
    ("dinov2", "wrong-width.pth"): (lambda: _tiny_dinov2(), "holds a 8-wide ViT"),
}


def _tiny_dinov2() -> bytes:
    from tests.metrics.conftest import save_random_dinov2

    buffer = io.BytesIO()
    save_random_dinov2(buffer, width=8, depth=1, grid=2)  # torch.save writes to the buffer
    return buffer.getvalue()


@pytest.mark.parametrize("extractor, name", sorted(OTHER_REFUSED))
def test_a_broken_clip_or_dinov2_weights_file_is_refused(tmp_path, capsys, images, extractor, name):
    make, fragment = OTHER_REFUSED[(extractor, name)]
    path = tmp_path / name
    path.write_bytes(make())
    assert_refused(capsys, argv(extractor, path, images), path, fragment)
